package dicomnet

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// DIMSE status codes (PS3.7 Annex C, PS3.4 B.2.3).
const (
	StatusSuccess uint16 = 0x0000
	// StatusSOPClassNotSupported is "Refused: SOP Class not supported".
	StatusSOPClassNotSupported uint16 = 0x0122
	// StatusUnrecognizedOperation answers a DIMSE service we do not offer.
	StatusUnrecognizedOperation uint16 = 0x0211
	// StatusOutOfResources is "Refused: Out of Resources" (A7xx).
	StatusOutOfResources uint16 = 0xA700
	// StatusDataSetDoesNotMatchSOPClass is the error A9xx.
	StatusDataSetDoesNotMatchSOPClass uint16 = 0xA900
	// StatusCannotUnderstand is the error Cxxx.
	StatusCannotUnderstand uint16 = 0xC000
	// StatusCoercionOfDataElements is the warning B000.
	StatusCoercionOfDataElements uint16 = 0xB000
	// StatusElementsDiscarded is the warning B006.
	StatusElementsDiscarded uint16 = 0xB006
	// StatusDataSetDoesNotMatchSOPClassWarning is the warning B007.
	StatusDataSetDoesNotMatchSOPClassWarning uint16 = 0xB007
)

// StatusOK reports whether a C-STORE status means the object was stored:
// success or a warning (PS3.7 C.1).
func StatusOK(s uint16) bool {
	return s == StatusSuccess || s == 0x0001 || s&0xF000 == 0xB000 || s == 0x0107 || s == 0x0116
}

// Command fields (PS3.7 E.1).
const (
	cmdCStoreRQ  uint16 = 0x0001
	cmdCStoreRSP uint16 = 0x8001
	cmdCEchoRQ   uint16 = 0x0030
	cmdCEchoRSP  uint16 = 0x8030
	cmdCCancelRQ uint16 = 0x0FFF
)

// noDataSet is the Command Data Set Type of a message without a data set;
// any other value means one follows.
const noDataSet uint16 = 0x0101

// Command element tags (group 0000), as element numbers.
const (
	tagGroupLength      uint16 = 0x0000
	tagAffectedSOPClass uint16 = 0x0002
	tagCommandField     uint16 = 0x0100
	tagMessageID        uint16 = 0x0110
	tagRespondedTo      uint16 = 0x0120
	tagPriority         uint16 = 0x0700
	tagDataSetType      uint16 = 0x0800
	tagStatus           uint16 = 0x0900
	tagErrorComment     uint16 = 0x0902
	tagAffectedInstance uint16 = 0x1000
)

// maxCommandSet bounds a command set: real ones are a few hundred bytes.
const maxCommandSet = 64 << 10

// command is a DIMSE command set; the fields not used by C-ECHO and
// C-STORE are not kept.
type command struct {
	field            uint16
	messageID        uint16
	respondedTo      uint16
	affectedClass    string
	affectedInstance string
	priority         uint16
	dataSetType      uint16
	status           uint16
	errorComment     string
	has              map[uint16]bool
}

// hasDataSet reports whether a data set follows the command.
func (c *command) hasDataSet() bool { return c.dataSetType != noDataSet }

// isResponse reports whether the command field is a response's.
func (c *command) isResponse() bool { return c.field&0x8000 != 0 }

// parseCommand parses a command set: Implicit VR Little Endian elements
// of group 0000, the first of them (0000,0000) Command Group Length, which
// must match the rest.
func parseCommand(b []byte) (*command, error) {
	c := &command{has: map[uint16]bool{}}
	first := true
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, fmt.Errorf("dicomnet: command set: element header truncated (%d bytes)", len(b))
		}
		group, elem := binary.LittleEndian.Uint16(b[0:2]), binary.LittleEndian.Uint16(b[2:4])
		n := binary.LittleEndian.Uint32(b[4:8])
		if group != 0 {
			return nil, fmt.Errorf("dicomnet: command set: element (%04X,%04X) outside group 0000", group, elem)
		}
		if uint64(n) > uint64(len(b)-8) {
			return nil, fmt.Errorf("dicomnet: command set: element (0000,%04X) length %d with %d bytes left", elem, n, len(b)-8)
		}
		v := b[8 : 8+n]
		b = b[8+n:]
		if first && elem == tagGroupLength {
			if n != 4 || binary.LittleEndian.Uint32(v) != uint32(len(b)) {
				return nil, fmt.Errorf("dicomnet: command set: group length does not match the %d bytes that follow", len(b))
			}
		}
		first = false
		us := func() (uint16, error) {
			if n != 2 {
				return 0, fmt.Errorf("dicomnet: command set: US element (0000,%04X) of length %d", elem, n)
			}
			return binary.LittleEndian.Uint16(v), nil
		}
		var err error
		switch elem {
		case tagCommandField:
			c.field, err = us()
		case tagMessageID:
			c.messageID, err = us()
		case tagRespondedTo:
			c.respondedTo, err = us()
		case tagPriority:
			c.priority, err = us()
		case tagDataSetType:
			c.dataSetType, err = us()
		case tagStatus:
			c.status, err = us()
		case tagAffectedSOPClass:
			c.affectedClass = itemString(v)
		case tagAffectedInstance:
			c.affectedInstance = itemString(v)
		case tagErrorComment:
			c.errorComment = strings.TrimRight(string(v[:min(len(v), 64)]), " \x00")
		}
		if err != nil {
			return nil, err
		}
		c.has[elem] = true
	}
	if !c.has[tagCommandField] || !c.has[tagDataSetType] {
		return nil, fmt.Errorf("dicomnet: command set without command field or data set type")
	}
	return c, nil
}

// encodeCommand returns the command set of c, elements in ascending order,
// with the group length.
func encodeCommand(c *command) []byte {
	b := make([]byte, 12, 160)
	us := func(elem, v uint16) {
		b = binary.LittleEndian.AppendUint16(b, 0)
		b = binary.LittleEndian.AppendUint16(b, elem)
		b = binary.LittleEndian.AppendUint32(b, 2)
		b = binary.LittleEndian.AppendUint16(b, v)
	}
	str := func(elem uint16, s string, pad byte) {
		if s == "" {
			return
		}
		n := len(s) + len(s)%2
		b = binary.LittleEndian.AppendUint16(b, 0)
		b = binary.LittleEndian.AppendUint16(b, elem)
		b = binary.LittleEndian.AppendUint32(b, uint32(n))
		b = append(b, s...)
		if len(s)%2 == 1 {
			b = append(b, pad)
		}
	}
	str(tagAffectedSOPClass, c.affectedClass, 0)
	us(tagCommandField, c.field)
	if c.isResponse() {
		us(tagRespondedTo, c.respondedTo)
	} else {
		us(tagMessageID, c.messageID)
	}
	if c.field == cmdCStoreRQ {
		us(tagPriority, c.priority)
	}
	us(tagDataSetType, c.dataSetType)
	if c.isResponse() {
		us(tagStatus, c.status)
		str(tagErrorComment, c.errorComment, ' ')
	}
	str(tagAffectedInstance, c.affectedInstance, 0)
	// (0000,0000) UL: the length of everything after it.
	binary.LittleEndian.PutUint32(b[4:8], 4)
	binary.LittleEndian.PutUint32(b[8:12], uint32(len(b)-12))
	return b
}
