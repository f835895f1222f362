package dicomnet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"testing"
)

// sampleRQ is a request like storescu's, with a role selection item.
func sampleRQ() *associate {
	return &associate{version: 1, called: "SENTINEL", calling: "MODALITY", appContext: ApplicationContext,
		contexts: []pcItem{
			{id: 1, abstractSyntax: VerificationSOPClass, transferSyntaxes: []string{ImplicitVRLittleEndian}},
			{id: 3, abstractSyntax: CRImageStorage, transferSyntaxes: []string{ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGLosslessSV1}},
		},
		user: userInfo{maxLength: 16384, implClassUID: "1.2.3.4", implVersion: "TEST_1",
			roles: []roleItem{{sopClass: CRImageStorage, scu: 1, scp: 0}}},
	}
}

func TestAssociateRoundTrip(t *testing.T) {
	for _, typ := range []byte{pduAssociateRQ, pduAssociateAC} {
		a := sampleRQ()
		if typ == pduAssociateAC {
			a.contexts = []pcItem{
				{id: 1, result: pcAccepted, transferSyntaxes: []string{ImplicitVRLittleEndian}},
				{id: 3, result: pcAbstractNotSupported, transferSyntaxes: []string{ExplicitVRLittleEndian}},
			}
		}
		var buf []byte
		gotTyp, body, err := readPDU(bytes.NewReader(a.encode(typ)), &buf, 0)
		if err != nil || gotTyp != typ {
			t.Fatalf("read back: type %d, %v", gotTyp, err)
		}
		b, err := parseAssociate(typ, body)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("type %d: read back\n%+v\nwant\n%+v", typ, b, a)
		}
	}
}

func TestFixedPDUs(t *testing.T) {
	var buf []byte
	for _, p := range [][]byte{rejectPDU(1, 1, 3), abortPDU(2, 6), fixedPDU(pduReleaseRQ, 0, 0, 0), fixedPDU(pduReleaseRP, 0, 0, 0)} {
		typ, body, err := readPDU(bytes.NewReader(p), &buf, 0)
		if err != nil || typ != p[0] || !bytes.Equal(body, p[6:]) {
			t.Errorf("% X: type %d body % X, %v", p, typ, body, err)
		}
	}
}

// reasonOf is the A-ABORT reason of a protocol error, or -1.
func reasonOf(err error) int {
	var pe *protocolError
	if errors.As(err, &pe) {
		return int(pe.reason)
	}
	return -1
}

func TestReadPDULimits(t *testing.T) {
	hdr := func(typ byte, n uint32) []byte { return binary.BigEndian.AppendUint32([]byte{typ, 0}, n) }
	cases := []struct {
		name   string
		in     []byte
		max    uint32
		reason int
		err    error
	}{
		{"unknown type", append(hdr(0x09, 4), 0, 0, 0, 0), 0, int(abortUnrecognizedPDU), nil},
		{"P-DATA over the limit", hdr(pduPData, 60<<20), 1 << 20, int(abortInvalidParam), nil},
		{"P-DATA over the hard limit", hdr(pduPData, 65<<20), 0xFFFFFFFF, int(abortInvalidParam), nil},
		{"P-DATA too short", append(hdr(pduPData, 5), 1, 2, 3, 4, 5), 1 << 20, int(abortInvalidParam), nil},
		{"A-ASSOCIATE-RQ over 1 MiB", hdr(pduAssociateRQ, 2<<20), 0, int(abortInvalidParam), nil},
		{"A-ASSOCIATE-RJ of 5 bytes", append(hdr(pduAssociateRJ, 5), 0, 1, 1, 1, 0), 0, int(abortInvalidParam), nil},
		{"truncated header", []byte{4, 0, 0}, 0, -1, io.ErrUnexpectedEOF},
		{"empty", nil, 0, -1, io.EOF},
		{"truncated body", append(hdr(pduPData, 512<<10), make([]byte, 100)...), 1 << 20, -1, io.ErrUnexpectedEOF},
	}
	for _, c := range cases {
		var buf []byte
		_, _, err := readPDU(bytes.NewReader(c.in), &buf, c.max)
		if got := reasonOf(err); got != c.reason || (c.err != nil && !errors.Is(err, c.err)) || err == nil {
			t.Errorf("%s: %v (reason %d), want reason %d / %v", c.name, err, got, c.reason, c.err)
		}
		// Nothing is allocated for bytes that never came.
		if cap(buf) > 64<<10 {
			t.Errorf("%s: buffer of %d bytes for %d bytes of input", c.name, cap(buf), len(c.in))
		}
	}
}

func TestParseAssociateErrors(t *testing.T) {
	fixed := func() []byte {
		b := binary.BigEndian.AppendUint16(nil, 1)
		b = append(b, 0, 0)
		b = appendAE(b, "SENTINEL")
		b = appendAE(b, "MODALITY")
		return append(b, make([]byte, 32)...)
	}
	app := appendItem(nil, itemAppContext, []byte(ApplicationContext))
	pc := func(id byte, subs ...[]byte) []byte {
		v := []byte{id, 0, 0, 0}
		for _, s := range subs {
			v = append(v, s...)
		}
		return appendItem(nil, itemPresContextRQ, v)
	}
	as := appendItem(nil, itemAbstractSyntax, []byte(CRImageStorage))
	ts := appendItem(nil, itemTransferSyntax, []byte(ImplicitVRLittleEndian))
	user := func(subs ...[]byte) []byte { return appendItem(nil, itemUserInfo, bytes.Join(subs, nil)) }
	maxLen := appendItem(nil, itemMaxLength, []byte{0, 0, 0x40, 0})
	cases := []struct {
		name string
		body []byte
		ok   bool
	}{
		{"valid", bytes.Join([][]byte{fixed(), app, pc(1, as, ts), user(maxLen)}, nil), true},
		{"unknown items skipped", bytes.Join([][]byte{fixed(), app, appendItem(nil, 0x77, []byte("x")), pc(1, as, ts),
			user(maxLen, appendItem(nil, 0x58, []byte{1, 0, 0, 1, 'u', 0, 0}), appendItem(nil, 0x99, nil))}, nil), true},
		{"short", fixed()[:60], false},
		{"item past the end", append(fixed(), itemAppContext, 0, 0, 30, '1'), false},
		{"item header cut", append(append(fixed(), app...), 0x20, 0), false},
		{"no application context", bytes.Join([][]byte{fixed(), pc(1, as, ts)}, nil), false},
		{"two application contexts", bytes.Join([][]byte{fixed(), app, app}, nil), false},
		{"even context ID", bytes.Join([][]byte{fixed(), app, pc(2, as, ts)}, nil), false},
		{"context ID twice", bytes.Join([][]byte{fixed(), app, pc(1, as, ts), pc(1, as, ts)}, nil), false},
		{"context without transfer syntax", bytes.Join([][]byte{fixed(), app, pc(1, as)}, nil), false},
		{"context without abstract syntax", bytes.Join([][]byte{fixed(), app, pc(1, ts)}, nil), false},
		{"two abstract syntaxes", bytes.Join([][]byte{fixed(), app, pc(1, as, as, ts)}, nil), false},
		{"unknown sub-item in a context", bytes.Join([][]byte{fixed(), app, pc(1, as, ts, appendItem(nil, 0x31, nil))}, nil), false},
		{"acceptance item in a request", bytes.Join([][]byte{fixed(), app, appendItem(nil, itemPresContextAC, []byte{1, 0, 0, 0})}, nil), false},
		{"maximum length of 3 bytes", bytes.Join([][]byte{fixed(), app, pc(1, as, ts), user(appendItem(nil, itemMaxLength, []byte{0, 0, 1}))}, nil), false},
		{"role item with a wrong UID length", bytes.Join([][]byte{fixed(), app, pc(1, as, ts), user(appendItem(nil, itemRoleSelection, []byte{0, 9, '1', 1, 0}))}, nil), false},
		{"two user information items", bytes.Join([][]byte{fixed(), app, user(maxLen), user(maxLen)}, nil), false},
	}
	for _, c := range cases {
		_, err := parseAssociate(pduAssociateRQ, c.body)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
		if err != nil && reasonOf(err) < 0 {
			t.Errorf("%s: %v is not a protocol error", c.name, err)
		}
	}
	// Many transfer syntaxes in one context: bounded.
	subs := [][]byte{as}
	for range maxTransferSyntaxes + 1 {
		subs = append(subs, ts)
	}
	if _, err := parseAssociate(pduAssociateRQ, bytes.Join([][]byte{fixed(), app, pc(1, subs...)}, nil)); err == nil {
		t.Errorf("%d transfer syntaxes in a context accepted", maxTransferSyntaxes+1)
	}
}

func TestPDVs(t *testing.T) {
	var body []byte
	for _, p := range []pdv{{1, true, true, []byte("cmd")}, {3, false, false, nil}, {3, false, true, []byte{1, 2}}} {
		body = binary.BigEndian.AppendUint32(body, uint32(len(p.data)+2))
		h := byte(0)
		if p.command {
			h |= 1
		}
		if p.last {
			h |= 2
		}
		body = append(body, p.pcid, h)
		body = append(body, p.data...)
	}
	var got []pdv
	for rest := body; len(rest) > 0; {
		p, r, err := nextPDV(rest)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
		rest = r
	}
	if len(got) != 3 || !got[0].command || !got[0].last || string(got[0].data) != "cmd" || got[1].pcid != 3 || got[1].last || len(got[2].data) != 2 {
		t.Errorf("PDVs %+v", got)
	}
	for _, bad := range [][]byte{{0, 0, 0, 1, 1, 0}, {0, 0, 0, 9, 1, 0, 1}, {0, 0, 0}} {
		if _, _, err := nextPDV(bad); reasonOf(err) != int(abortInvalidParam) {
			t.Errorf("% X: %v", bad, err)
		}
	}
}

func TestCommandRoundTrip(t *testing.T) {
	for _, c := range []*command{
		{field: cmdCStoreRQ, messageID: 7, affectedClass: CRImageStorage, affectedInstance: "1.2.3", priority: 0, dataSetType: 0},
		{field: cmdCStoreRSP, respondedTo: 7, affectedClass: CRImageStorage, affectedInstance: "1.2.34", dataSetType: noDataSet, status: 0xA700, errorComment: "full"},
		{field: cmdCEchoRQ, messageID: 65535, affectedClass: VerificationSOPClass, dataSetType: noDataSet},
	} {
		b := encodeCommand(c)
		if len(b)%2 != 0 {
			t.Errorf("odd command set length %d", len(b))
		}
		got, err := parseCommand(b)
		if err != nil {
			t.Fatal(err)
		}
		got.has = nil
		if !reflect.DeepEqual(got, c) {
			t.Errorf("read back %+v, want %+v", got, c)
		}
	}
}

func TestParseCommandErrors(t *testing.T) {
	good := encodeCommand(&command{field: cmdCEchoRQ, messageID: 1, affectedClass: VerificationSOPClass, dataSetType: noDataSet})
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for name, b := range map[string][]byte{
		"group length too big":  mod(func(b []byte) []byte { b[8]++; return b }),
		"truncated":             good[:len(good)-3],
		"element past the end":  mod(func(b []byte) []byte { b[16] = 0xFF; return b }),
		"other group":           mod(func(b []byte) []byte { b[12] = 8; return b }),
		"US of 4 bytes":         append(good[12:], 0, 0, 0x10, 0x01, 4, 0, 0, 0, 1, 0, 0, 0),
		"no command field":      good[12 : 12+8+len(VerificationSOPClass)+1],
		"header cut":            good[:5],
		"no data set type item": encodeCommand(&command{field: cmdCEchoRQ})[:12],
	} {
		if _, err := parseCommand(b); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}
