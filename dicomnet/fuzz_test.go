package dicomnet

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"reflect"
	"testing"
	"time"
)

// pdataPDU is a P-DATA-TF PDU with one PDV.
func pdataPDU(pcid byte, command, last bool, data []byte) []byte {
	b := []byte{pduPData, 0}
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)+6))
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)+2))
	h := byte(0)
	if command {
		h |= 1
	}
	if last {
		h |= 2
	}
	b = append(b, pcid, h)
	return append(b, data...)
}

// validStream is what an SCU sends for an echo and a store, then a
// release.
func validStream() []byte {
	rq := sampleRQ()
	rq.contexts[1].abstractSyntax = SecondaryCaptureImageStorage
	o := newTestObject(1, ExplicitVRLittleEndian, 64)
	var b []byte
	b = append(b, rq.encode(pduAssociateRQ)...)
	b = append(b, pdataPDU(1, true, true, encodeCommand(&command{field: cmdCEchoRQ, messageID: 1, affectedClass: VerificationSOPClass, dataSetType: noDataSet}))...)
	b = append(b, pdataPDU(3, true, true, encodeCommand(&command{field: cmdCStoreRQ, messageID: 2, affectedClass: o.sopClass, affectedInstance: o.sopInstance}))...)
	b = append(b, pdataPDU(3, false, false, o.dataset[:40])...)
	b = append(b, pdataPDU(3, false, true, o.dataset[40:])...)
	b = append(b, fixedPDU(pduReleaseRQ, 0, 0, 0)...)
	return b
}

// FuzzPDU reads PDUs from arbitrary bytes: no panic, memory bounded by
// what arrives, and whatever parses re-encodes to the same thing.
func FuzzPDU(f *testing.F) {
	rq := sampleRQ()
	f.Add(rq.encode(pduAssociateRQ))
	ac := sampleRQ()
	ac.contexts = []pcItem{{id: 1, result: 0, transferSyntaxes: []string{ImplicitVRLittleEndian}}, {id: 3, result: 3}}
	f.Add(ac.encode(pduAssociateAC))
	f.Add(rejectPDU(1, 1, 3))
	f.Add(abortPDU(2, 6))
	f.Add(fixedPDU(pduReleaseRQ, 0, 0, 0))
	f.Add(validStream())
	f.Add(pdataPDU(1, true, true, encodeCommand(&command{field: cmdCEchoRSP, respondedTo: 1, dataSetType: noDataSet})))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		var buf []byte
		for {
			typ, body, err := readPDU(r, &buf, 1<<20)
			if cap(buf) > 2*len(in)+64<<10 {
				t.Fatalf("buffer of %d bytes for %d bytes of input", cap(buf), len(in))
			}
			if err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || reasonOf(err) >= 0 {
					return
				}
				t.Fatalf("unexpected error kind: %v", err)
			}
			switch typ {
			case pduAssociateRQ, pduAssociateAC:
				a, err := parseAssociate(typ, body)
				if err != nil {
					if reasonOf(err) < 0 {
						t.Fatalf("not a protocol error: %v", err)
					}
					continue
				}
				_, body2, err := readPDU(bytes.NewReader(a.encode(typ)), new([]byte), 0)
				if err != nil {
					continue // a read-back beyond the PDU limits
				}
				b, err := parseAssociate(typ, body2)
				if err != nil || !reflect.DeepEqual(a, b) {
					t.Fatalf("re-encoding changed\n%+v\ninto\n%+v (%v)", a, b, err)
				}
			case pduPData:
				for rest := body; len(rest) > 0; {
					p, r, err := nextPDV(rest)
					if err != nil {
						break
					}
					if p.command && p.last {
						parseCommand(p.data)
					}
					rest = r
				}
			}
		}
	})
}

// FuzzDIMSE parses command sets: no panic, and parsing what was encoded
// from a parse gives the same command.
func FuzzDIMSE(f *testing.F) {
	f.Add(encodeCommand(&command{field: cmdCStoreRQ, messageID: 9, affectedClass: CRImageStorage, affectedInstance: "1.2.3.4"}))
	f.Add(encodeCommand(&command{field: cmdCStoreRSP, respondedTo: 9, affectedClass: CRImageStorage, affectedInstance: "1.2.3.4", dataSetType: noDataSet, status: 0xB000, errorComment: "x"}))
	f.Add(encodeCommand(&command{field: cmdCEchoRQ, messageID: 1, affectedClass: VerificationSOPClass, dataSetType: noDataSet}))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := parseCommand(in)
		if err != nil {
			return
		}
		once := encodeCommand(c)
		c2, err := parseCommand(once)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if twice := encodeCommand(c2); !bytes.Equal(once, twice) {
			t.Fatalf("encoding not stable:\n% X\n% X", once, twice)
		}
	})
}

// FuzzDataset walks arbitrary data sets for the study UID and reads
// arbitrary file metas: errors, never a panic or an unbounded read.
func FuzzDataset(f *testing.F) {
	for i, ts := range allNative {
		o := newTestObject(i, ts, 32)
		f.Add(o.dataset, uint8(i))
		f.Add(append(encodeFileMeta(o.sopClass, o.sopInstance, ts, "AE"), o.dataset...), uint8(i))
	}
	f.Fuzz(func(t *testing.T, in []byte, tsi uint8) {
		ts := allNative[int(tsi)%len(allNative)]
		cr := &countingReader{r: bytes.NewReader(in)}
		findStudyUID(cr, ts)
		if cr.n > int64(len(in)) {
			t.Fatalf("read %d of %d bytes", cr.n, len(in))
		}
		ReadMeta(bufio.NewReader(bytes.NewReader(in)))
	})
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// fuzzServer is a Server for feeding streams to serveConn.
func fuzzServer(t testing.TB) *Server {
	s, err := NewServer(Config{AETitle: "SENTINEL", SOPClasses: RadiographSOPClasses,
		AssociationTimeout: time.Second, IdleTimeout: time.Second, WriteTimeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handler: StoreHandlerFunc(func(_ context.Context, req *StoreRequest) uint16 {
			io.Copy(io.Discard, req.Dataset)
			return StatusSuccess
		})})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// FuzzServerStream feeds arbitrary bytes, as from an SCU over loopback
// TCP, to the server's association state machine: it must answer or
// abort, and end once the input has ended.
func FuzzServerStream(f *testing.F) {
	f.Add(validStream())
	s := validStream()
	f.Add(s[:len(s)/2])
	f.Add(append(sampleRQ().encode(pduAssociateRQ), pdataPDU(9, true, true, []byte{1, 2})...))
	srv := fuzzServer(f)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer ln.Close()
	f.Fuzz(func(t *testing.T, in []byte) {
		go func() {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			c.Write(in)
			c.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, c)
		}()
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
		server, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { srv.serveConn(context.Background(), server); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("serveConn did not end")
		}

	})
}

// TestGarbageOverTCP sends malformed streams to a live server over TCP and
// checks that it answers with an A-ABORT (or closes) and keeps serving.
func TestGarbageOverTCP(t *testing.T) {
	s, addr, root := spoolServer(t, Config{AssociationTimeout: 500 * time.Millisecond, IdleTimeout: 500 * time.Millisecond})
	rq := sampleRQ()
	rq.contexts[1].abstractSyntax = SecondaryCaptureImageStorage
	assoc := rq.encode(pduAssociateRQ)
	hdr := func(typ byte, n uint32) []byte { return binary.BigEndian.AppendUint32([]byte{typ, 0}, n) }
	echo := pdataPDU(1, true, true, encodeCommand(&command{field: cmdCEchoRQ, messageID: 1, affectedClass: VerificationSOPClass, dataSetType: noDataSet}))
	cases := []struct {
		name  string
		in    []byte
		abort bool // an A-ABORT must come back
	}{
		{"unknown PDU type", append(hdr(0x42, 4), 0, 0, 0, 0), true},
		{"huge A-ASSOCIATE-RQ", hdr(pduAssociateRQ, 1<<30), true},
		{"P-DATA before association", echo, true},
		{"truncated request then close", assoc[:40], false},
		{"request then unknown context", append(bytes.Clone(assoc), pdataPDU(7, true, true, []byte{0, 0})...), true},
		{"request then bad command", append(bytes.Clone(assoc), pdataPDU(1, true, true, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9})...), true},
		{"request then second request", append(bytes.Clone(assoc), assoc...), true},
		{"request then oversized P-DATA", append(bytes.Clone(assoc), hdr(pduPData, 60<<20)...), true},
		{"request then data set without command", append(bytes.Clone(assoc), pdataPDU(3, false, true, []byte{1, 2})...), true},
		{"request, echo, then silence", append(bytes.Clone(assoc), echo...), true},
		{"request then DIMSE response", append(bytes.Clone(assoc), pdataPDU(1, true, true, encodeCommand(&command{field: cmdCEchoRSP, respondedTo: 1, dataSetType: noDataSet}))...), true},
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 40 {
		// Random bytes, and valid streams with random bytes changed.
		b := make([]byte, rng.IntN(300))
		for j := range b {
			b[j] = byte(rng.UintN(256))
		}
		if i%2 == 1 {
			b = validStream()
			for range 1 + rng.IntN(4) {
				b[rng.IntN(len(b))] = byte(rng.UintN(256))
			}
		}
		cases = append(cases, struct {
			name  string
			in    []byte
			abort bool
		}{"random", b, false})
	}
	for _, c := range cases {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		conn.Write(c.in)
		reply, _ := io.ReadAll(conn)
		conn.Close()
		if c.abort {
			// Skip an A-ASSOCIATE-AC and P-DATA answers: the last PDU
			// must be an A-ABORT from the service provider.
			if len(reply) < 10 || !bytes.Equal(reply[len(reply)-10:len(reply)-2], []byte{pduAbort, 0, 0, 0, 0, 4, 0, 0}) || reply[len(reply)-2] != abortSourceProvider {
				t.Errorf("%s: reply ends % X, want an A-ABORT from the provider", c.name, reply[max(0, len(reply)-10):])
			}
		}
	}
	a := mustDial(t, addr)
	if err := a.Echo(context.Background()); err != nil {
		t.Fatalf("echo after the garbage: %v", err)
	}
	if st := s.Stats(); st.ProtocolErrors < 9 {
		t.Errorf("%d protocol errors counted, want at least 9", st.ProtocolErrors)
	}
	if files := spoolFiles(t, root); len(files) > 20 {
		t.Errorf("%d files from garbage", len(files))
	}
	for _, f := range spoolFiles(t, root) {
		if len(f) > 5 && f[len(f)-5:] == ".part" {
			t.Errorf("part file left: %s", f)
		}
	}
}
