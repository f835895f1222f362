package dicomnet

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// PDU types (PS3.8 9.3).
const (
	pduAssociateRQ byte = 0x01
	pduAssociateAC byte = 0x02
	pduAssociateRJ byte = 0x03
	pduPData       byte = 0x04
	pduReleaseRQ   byte = 0x05
	pduReleaseRP   byte = 0x06
	pduAbort       byte = 0x07
)

// Item types of the A-ASSOCIATE PDUs (PS3.8 9.3.2, 9.3.3, Annex D).
const (
	itemAppContext     byte = 0x10
	itemPresContextRQ  byte = 0x20
	itemPresContextAC  byte = 0x21
	itemAbstractSyntax byte = 0x30
	itemTransferSyntax byte = 0x40
	itemUserInfo       byte = 0x50
	itemMaxLength      byte = 0x51
	itemImplClassUID   byte = 0x52
	itemAsyncWindow    byte = 0x53
	itemRoleSelection  byte = 0x54
	itemImplVersion    byte = 0x55
)

// Limits on what is read from the wire.
const (
	// maxPDUHard bounds every PDU whatever was negotiated.
	maxPDUHard = 64 << 20
	// maxAssociatePDU bounds A-ASSOCIATE-RQ and -AC PDUs: 128 contexts
	// with a dozen transfer syntaxes each take about 40 KiB.
	maxAssociatePDU = 1 << 20
	// maxTransferSyntaxes bounds the transfer syntaxes of one context.
	maxTransferSyntaxes = 64
	// maxRoleItems bounds the role selection items kept.
	maxRoleItems = 128
	// defaultMaxPDU is the maximum P-DATA-TF length we advertise unless
	// configured otherwise.
	defaultMaxPDU = 256 << 10
	// maxSendPDU caps the P-DATA-TF PDUs we send to a peer that accepts
	// any length.
	maxSendPDU = 1 << 20
)

// A-ABORT reasons for source 2, service provider (PS3.8 table 9-26).
const (
	abortNotSpecified      byte = 0
	abortUnrecognizedPDU   byte = 1
	abortUnexpectedPDU     byte = 2
	abortUnrecognizedParam byte = 4
	abortUnexpectedParam   byte = 5
	abortInvalidParam      byte = 6
)

// A-ABORT sources (PS3.8 table 9-26).
const (
	abortSourceUser     byte = 0
	abortSourceProvider byte = 2
)

// protocolError is malformed or unexpected input from the peer; reason is
// the A-ABORT reason it warrants.
type protocolError struct {
	reason byte
	msg    string
}

func (e *protocolError) Error() string { return "dicomnet: protocol error: " + e.msg }

func protoErrorf(reason byte, format string, args ...any) error {
	return &protocolError{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// pdataLimit is the largest P-DATA-TF body accepted when we advertised
// maxLen (0: no limit): twice that plus slack, since some implementations
// count the maximum per PDV rather than per PDU, and never over
// maxPDUHard.
func pdataLimit(maxLen uint32) uint32 {
	if maxLen == 0 || maxLen >= maxPDUHard/2 {
		return maxPDUHard
	}
	return min(2*maxLen+64<<10, maxPDUHard)
}

// readPDU reads one PDU and returns its type and body. The body is read
// into *buf, which grows with the bytes actually received (never to a
// length announced by the peer before they arrive), so it is only valid
// until the next call. A clean end of stream before the header is io.EOF.
func readPDU(r io.Reader, buf *[]byte, maxPData uint32) (byte, []byte, error) {
	var hdr [6]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	typ, n := hdr[0], binary.BigEndian.Uint32(hdr[2:])
	var lo, hi uint32
	switch typ {
	case pduAssociateRQ, pduAssociateAC:
		lo, hi = 68, maxAssociatePDU
	case pduAssociateRJ, pduReleaseRQ, pduReleaseRP, pduAbort:
		lo, hi = 4, 4
	case pduPData:
		lo, hi = 6, min(maxPData, maxPDUHard)
	default:
		return typ, nil, protoErrorf(abortUnrecognizedPDU, "unrecognized PDU type 0x%02X", typ)
	}
	if n < lo || n > hi {
		return typ, nil, protoErrorf(abortInvalidParam, "PDU type 0x%02X: length %d outside %d..%d", typ, n, lo, hi)
	}
	body := (*buf)[:0]
	for uint32(len(body)) < n {
		if len(body) == cap(body) {
			grown := make([]byte, len(body), min(n, max(2*uint32(cap(body)), 64<<10)))
			copy(grown, body)
			body = grown
		}
		end := min(uint32(cap(body)), n)
		m, err := io.ReadFull(r, body[len(body):end])
		body = body[:len(body)+m]
		if err != nil {
			*buf = body
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return typ, nil, err
		}
	}
	*buf = body
	return typ, body, nil
}

// associate is the content of an A-ASSOCIATE-RQ or -AC PDU.
type associate struct {
	version         uint16
	called, calling string
	appContext      string
	contexts        []pcItem
	user            userInfo
}

// pcItem is a presentation context item: proposed (abstract syntax and
// transfer syntaxes) in a request, answered (result and one transfer
// syntax) in an acceptance.
type pcItem struct {
	id               byte
	result           byte
	abstractSyntax   string
	transferSyntaxes []string
}

// Presentation context results (PS3.8 table 9-18).
const (
	pcAccepted             byte = 0
	pcUserRejection        byte = 1
	pcNoReason             byte = 2
	pcAbstractNotSupported byte = 3
	pcTransferNotSupported byte = 4
)

// userInfo is the part of the user information item this package uses.
type userInfo struct {
	maxLength    uint32
	implClassUID string
	implVersion  string
	roles        []roleItem
}

// roleItem is an SCP/SCU role selection sub-item (PS3.7 D.3.3.4).
type roleItem struct {
	sopClass string
	scu, scp byte
}

// itemString is the text of a UID or name in an item: PS3.8 allows a
// trailing NUL, and some implementations pad with spaces.
func itemString(b []byte) string {
	return strings.TrimRight(string(b), "\x00 ")
}

// aeString is an AE title field: 16 bytes, leading and trailing spaces
// insignificant (PS3.5 6.2).
func aeString(b []byte) string {
	return strings.Trim(string(b), " \x00")
}

// nextItem splits the first item (type, reserved, 16-bit length, value)
// off b.
func nextItem(b []byte) (typ byte, value, rest []byte, err error) {
	if len(b) < 4 {
		return 0, nil, nil, protoErrorf(abortInvalidParam, "item header truncated: %d bytes left", len(b))
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n > len(b)-4 {
		return 0, nil, nil, protoErrorf(abortInvalidParam, "item 0x%02X: length %d but %d bytes left", b[0], n, len(b)-4)
	}
	return b[0], b[4 : 4+n], b[4+n:], nil
}

// parseAssociate parses the body of an A-ASSOCIATE-RQ (typ 1) or -AC
// (typ 2) PDU.
func parseAssociate(typ byte, b []byte) (*associate, error) {
	if len(b) < 68 {
		return nil, protoErrorf(abortInvalidParam, "A-ASSOCIATE body of %d bytes", len(b))
	}
	a := &associate{
		version: binary.BigEndian.Uint16(b[0:2]),
		called:  aeString(b[4:20]),
		calling: aeString(b[20:36]),
	}
	pcType := itemPresContextRQ
	if typ == pduAssociateAC {
		pcType = itemPresContextAC
	}
	var haveApp, haveUser bool
	seen := map[byte]bool{}
	for rest := b[68:]; len(rest) > 0; {
		it, v, r, err := nextItem(rest)
		if err != nil {
			return nil, err
		}
		rest = r
		switch it {
		case itemAppContext:
			if haveApp {
				return nil, protoErrorf(abortUnexpectedParam, "two application context items")
			}
			haveApp = true
			a.appContext = itemString(v)
		case itemPresContextRQ, itemPresContextAC:
			if it != pcType {
				return nil, protoErrorf(abortUnexpectedParam, "presentation context item 0x%02X in PDU type 0x%02X", it, typ)
			}
			pc, err := parsePresContext(it, v)
			if err != nil {
				return nil, err
			}
			if seen[pc.id] {
				return nil, protoErrorf(abortInvalidParam, "presentation context ID %d twice", pc.id)
			}
			seen[pc.id] = true
			a.contexts = append(a.contexts, pc)
		case itemUserInfo:
			if haveUser {
				return nil, protoErrorf(abortUnexpectedParam, "two user information items")
			}
			haveUser = true
			if err := parseUserInfo(v, &a.user); err != nil {
				return nil, err
			}
		default:
			// Unknown items are skipped by their length.
		}
	}
	if !haveApp {
		return nil, protoErrorf(abortInvalidParam, "no application context item")
	}
	return a, nil
}

// parsePresContext parses the value of a presentation context item.
func parsePresContext(it byte, v []byte) (pcItem, error) {
	if len(v) < 4 {
		return pcItem{}, protoErrorf(abortInvalidParam, "presentation context item of %d bytes", len(v))
	}
	pc := pcItem{id: v[0], result: v[2]}
	if pc.id%2 == 0 {
		return pcItem{}, protoErrorf(abortInvalidParam, "presentation context ID %d is even", pc.id)
	}
	if it == itemPresContextRQ {
		pc.result = 0
	}
	haveAbstract := false
	for rest := v[4:]; len(rest) > 0; {
		st, sv, r, err := nextItem(rest)
		if err != nil {
			return pcItem{}, err
		}
		rest = r
		switch {
		case st == itemAbstractSyntax && it == itemPresContextRQ:
			if haveAbstract {
				return pcItem{}, protoErrorf(abortUnexpectedParam, "context %d: two abstract syntaxes", pc.id)
			}
			haveAbstract = true
			pc.abstractSyntax = itemString(sv)
		case st == itemTransferSyntax:
			if len(pc.transferSyntaxes) == maxTransferSyntaxes || (it == itemPresContextAC && len(pc.transferSyntaxes) == 1) {
				return pcItem{}, protoErrorf(abortInvalidParam, "context %d: too many transfer syntaxes", pc.id)
			}
			pc.transferSyntaxes = append(pc.transferSyntaxes, itemString(sv))
		default:
			return pcItem{}, protoErrorf(abortUnrecognizedParam, "context %d: unexpected sub-item 0x%02X", pc.id, st)
		}
	}
	if it == itemPresContextRQ && (!haveAbstract || len(pc.transferSyntaxes) == 0) {
		return pcItem{}, protoErrorf(abortInvalidParam, "context %d: no abstract syntax or no transfer syntax", pc.id)
	}
	if it == itemPresContextAC && pc.result == pcAccepted && len(pc.transferSyntaxes) != 1 {
		return pcItem{}, protoErrorf(abortInvalidParam, "accepted context %d without a transfer syntax", pc.id)
	}
	return pc, nil
}

// parseUserInfo parses the sub-items of a user information item, skipping
// those it does not know.
func parseUserInfo(v []byte, u *userInfo) error {
	for rest := v; len(rest) > 0; {
		st, sv, r, err := nextItem(rest)
		if err != nil {
			return err
		}
		rest = r
		switch st {
		case itemMaxLength:
			if len(sv) != 4 {
				return protoErrorf(abortInvalidParam, "maximum length sub-item of %d bytes", len(sv))
			}
			u.maxLength = binary.BigEndian.Uint32(sv)
		case itemImplClassUID:
			u.implClassUID = itemString(sv)
		case itemImplVersion:
			u.implVersion = itemString(sv)
		case itemRoleSelection:
			if len(sv) < 4 {
				return protoErrorf(abortInvalidParam, "role selection sub-item of %d bytes", len(sv))
			}
			n := int(binary.BigEndian.Uint16(sv[0:2]))
			if 2+n+2 != len(sv) {
				return protoErrorf(abortInvalidParam, "role selection sub-item: UID length %d in %d bytes", n, len(sv))
			}
			if len(u.roles) < maxRoleItems {
				u.roles = append(u.roles, roleItem{sopClass: itemString(sv[2 : 2+n]), scu: sv[2+n], scp: sv[3+n]})
			}
		default:
			// Asynchronous operations window, extended negotiation, user
			// identity and unknown sub-items: not used.
		}
	}
	return nil
}

// appendItem appends an item of type typ with value v.
func appendItem(b []byte, typ byte, v []byte) []byte {
	b = append(b, typ, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

// appendAE appends a 16-byte AE title field, space padded.
func appendAE(b []byte, ae string) []byte {
	var f [16]byte
	for i := range f {
		f[i] = ' '
	}
	copy(f[:], ae)
	return append(b, f[:]...)
}

// encode returns the whole A-ASSOCIATE-RQ (typ 1) or -AC (typ 2) PDU.
func (a *associate) encode(typ byte) []byte {
	b := []byte{typ, 0, 0, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, a.version)
	b = append(b, 0, 0)
	b = appendAE(b, a.called)
	b = appendAE(b, a.calling)
	b = append(b, make([]byte, 32)...)
	b = appendItem(b, itemAppContext, []byte(a.appContext))
	for _, pc := range a.contexts {
		var v []byte
		if typ == pduAssociateRQ {
			v = append(v, pc.id, 0, 0, 0)
			v = appendItem(v, itemAbstractSyntax, []byte(pc.abstractSyntax))
			for _, ts := range pc.transferSyntaxes {
				v = appendItem(v, itemTransferSyntax, []byte(ts))
			}
			b = appendItem(b, itemPresContextRQ, v)
			continue
		}
		v = append(v, pc.id, 0, pc.result, 0)
		for _, ts := range pc.transferSyntaxes[:min(1, len(pc.transferSyntaxes))] {
			v = appendItem(v, itemTransferSyntax, []byte(ts))
		}
		b = appendItem(b, itemPresContextAC, v)
	}
	var u []byte
	u = appendItem(u, itemMaxLength, binary.BigEndian.AppendUint32(nil, a.user.maxLength))
	u = appendItem(u, itemImplClassUID, []byte(a.user.implClassUID))
	for _, r := range a.user.roles {
		v := binary.BigEndian.AppendUint16(nil, uint16(len(r.sopClass)))
		v = append(v, r.sopClass...)
		v = append(v, r.scu, r.scp)
		u = appendItem(u, itemRoleSelection, v)
	}
	if a.user.implVersion != "" {
		u = appendItem(u, itemImplVersion, []byte(a.user.implVersion))
	}
	b = appendItem(b, itemUserInfo, u)
	binary.BigEndian.PutUint32(b[2:6], uint32(len(b)-6))
	return b
}

// fixedPDU returns a PDU with a 4-byte body: A-ASSOCIATE-RJ, A-RELEASE-RQ
// and -RP, A-ABORT.
func fixedPDU(typ, b1, b2, b3 byte) []byte {
	return []byte{typ, 0, 0, 0, 0, 4, 0, b1, b2, b3}
}

// rejectPDU returns an A-ASSOCIATE-RJ.
func rejectPDU(result, source, reason byte) []byte {
	return fixedPDU(pduAssociateRJ, result, source, reason)
}

// abortPDU returns an A-ABORT.
func abortPDU(source, reason byte) []byte { return fixedPDU(pduAbort, 0, source, reason) }

// pdv is one presentation data value item of a P-DATA-TF PDU.
type pdv struct {
	pcid    byte
	command bool
	last    bool
	data    []byte
}

// nextPDV splits the first PDV off the body of a P-DATA-TF PDU.
func nextPDV(b []byte) (pdv, []byte, error) {
	if len(b) < 6 {
		return pdv{}, nil, protoErrorf(abortInvalidParam, "PDV header truncated: %d bytes left", len(b))
	}
	n := binary.BigEndian.Uint32(b[0:4])
	if n < 2 || uint64(n) > uint64(len(b)-4) {
		return pdv{}, nil, protoErrorf(abortInvalidParam, "PDV length %d with %d bytes left", n, len(b)-4)
	}
	h := b[5]
	return pdv{pcid: b[4], command: h&1 != 0, last: h&2 != 0, data: b[6 : 4+n]}, b[4+n:], nil
}
