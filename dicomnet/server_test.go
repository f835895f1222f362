package dicomnet

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var allNative = []string{ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian}

func TestOwnSCUStoresIntoSpool(t *testing.T) {
	s, addr, root := spoolServer(t, Config{TransferSyntaxes: allNative, MaxPDULength: 4096})
	var contexts []PresentationContext
	for _, ts := range allNative {
		contexts = append(contexts, PresentationContext{SecondaryCaptureImageStorage, []string{ts}})
	}
	a := mustDial(t, addr, contexts...)
	if got := len(a.Contexts()); got != len(allNative)+1 {
		t.Fatalf("%d contexts accepted, want %d: %+v", got, len(allNative)+1, a.Contexts())
	}
	if a.PeerMaxPDULength() != 4096 {
		t.Errorf("peer max PDU %d, want 4096", a.PeerMaxPDULength())
	}
	ctx := context.Background()
	if err := a.Echo(ctx); err != nil {
		t.Fatal(err)
	}
	var objs []testObject
	for i, ts := range allNative {
		// 10,001 pixel bytes span several 4 KiB PDUs.
		o := newTestObject(i, ts, 10001)
		objs = append(objs, o)
		status, err := a.Store(ctx, o.sopClass, o.sopInstance, o.ts, bytes.NewReader(o.dataset))
		if err != nil || status != StatusSuccess {
			t.Fatalf("store %s: status 0x%04X, %v", ts, status, err)
		}
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		path := filepath.Join(root, "TESTSCU", o.study, o.sopInstance+".dcm")
		fm, ds := datasetOf(t, path)
		if !bytes.Equal(ds, o.dataset) {
			t.Errorf("%s: data set differs from what was sent (%d bytes, sent %d)", o.ts, len(ds), len(o.dataset))
		}
		want := FileMeta{SOPClassUID: o.sopClass, SOPInstanceUID: o.sopInstance, TransferSyntaxUID: o.ts,
			ImplementationClassUID: ImplementationClassUID, ImplementationVersionName: ImplementationVersionName,
			SourceAETitle: "TESTSCU", DatasetOffset: fm.DatasetOffset}
		if fm != want {
			t.Errorf("meta %+v, want %+v", fm, want)
		}
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm() != 0o640 {
			t.Errorf("%s: mode %v, %v", path, st.Mode(), err)
		}
		dst, err := os.Stat(filepath.Dir(path))
		if err != nil || dst.Mode().Perm() != 0o750 {
			t.Errorf("%s: mode %v, %v", filepath.Dir(path), dst.Mode(), err)
		}
	}
	if n := len(spoolFiles(t, root)); n != len(objs) {
		t.Errorf("%d files in the spool, want %d: %v", n, len(objs), spoolFiles(t, root))
	}
	st := s.Stats()
	if st.Accepted != 1 || st.ObjectsReceived != uint64(len(objs)) || st.Echoes != 1 || st.Aborted != 0 {
		t.Errorf("stats %+v", st)
	}
	var sent uint64
	for _, o := range objs {
		sent += uint64(len(o.dataset))
	}
	if st.BytesReceived != sent {
		t.Errorf("bytes received %d, sent %d", st.BytesReceived, sent)
	}
	waitFor(t, "the association to end", func() bool { return s.Stats().Active == 0 })
}

func TestRejectionReasons(t *testing.T) {
	s, addr, _ := spoolServer(t, Config{
		AllowedCallers: []Caller{{AETitle: "GOOD"}, {AETitle: "LOCAL", Host: "127.0.0.0/8"}, {AETitle: "ELSEWHERE", Host: "192.0.2.7"}},
		SOPClasses:     []string{CRImageStorage},
	})
	sc := PresentationContext{SecondaryCaptureImageStorage, []string{ExplicitVRLittleEndian}}
	cases := []struct {
		calling, called string
		want            *RejectError
		reason          string
	}{
		{"GOOD", "SENTINEL", nil, ""},
		{"LOCAL", "SENTINEL", nil, ""},
		{"GOOD", "OTHER", &RejectError{1, 1, 7}, RejectCalledAE},
		{"BAD", "SENTINEL", &RejectError{1, 1, 3}, RejectCallingAE},
		{"ELSEWHERE", "SENTINEL", &RejectError{1, 1, 3}, RejectCallingAE},
	}
	for _, c := range cases {
		a, err := dial(t, addr, c.calling, c.called, sc)
		var rj *RejectError
		switch {
		case c.want == nil && err != nil:
			t.Errorf("%s → %s: %v", c.calling, c.called, err)
		case c.want == nil:
			if err := a.Echo(context.Background()); err != nil {
				t.Errorf("echo: %v", err)
			}
			if got := a.Contexts(); len(got) != 1 || got[0].AbstractSyntax != VerificationSOPClass {
				t.Errorf("contexts %+v: the SC context should have been refused", got)
			}
			a.Release(context.Background())
		case !errors.As(err, &rj) || *rj != *c.want:
			t.Errorf("%s → %s: %v, want %v", c.calling, c.called, err, c.want)
		case !strings.Contains(err.Error(), c.reason):
			t.Errorf("error %q does not name %s", err, c.reason)
		}
	}
	// Nothing acceptable at all: a Verification context with an
	// unsupported transfer syntax only.
	log, _ := testLogger(t)
	_, err := Dial(context.Background(), addr, "GOOD", "SENTINEL", DialOptions{Logger: log,
		Contexts: []PresentationContext{{VerificationSOPClass, []string{JPEGBaseline}}, sc}})
	var rj *RejectError
	if !errors.As(err, &rj) || *rj != (RejectError{1, 1, 1}) {
		t.Errorf("nothing acceptable: %v, want permanent, source 1, reason 1", err)
	}
	st := s.Stats()
	if st.Rejected[RejectCalledAE] != 1 || st.Rejected[RejectCallingAE] != 2 || st.Rejected[RejectNoContext] != 1 || st.Accepted != 2 {
		t.Errorf("stats %+v", st)
	}
	if st.ContextsRejected != 4 {
		t.Errorf("%d contexts rejected, want 4 (SC twice, then Verification and SC)", st.ContextsRejected)
	}
}

func TestLocalLimit(t *testing.T) {
	s, addr, _ := spoolServer(t, Config{MaxAssociations: 2})
	a := mustDial(t, addr)
	b := mustDial(t, addr)
	_, err := dial(t, addr, "TESTSCU", "SENTINEL")
	var rj *RejectError
	if !errors.As(err, &rj) || *rj != (RejectError{2, 3, 2}) {
		t.Fatalf("third association: %v, want transient, source 3, reason 2", err)
	}
	if err := a.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a place", func() bool { return s.Stats().Active < 2 })
	c := mustDial(t, addr)
	if err := c.Echo(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.Echo(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().Rejected[RejectLocalLimit]; got != 1 {
		t.Errorf("%d local-limit rejections, want 1", got)
	}
}

func TestNegotiatePrefersOurOrder(t *testing.T) {
	log, _ := testLogger(t)
	s, err := NewServer(Config{AETitle: "SENTINEL", SOPClasses: []string{CRImageStorage}, Logger: log,
		TransferSyntaxes: []string{JPEGLosslessSV1, ExplicitVRLittleEndian, ImplicitVRLittleEndian},
		Handler:          StoreHandlerFunc(func(context.Context, *StoreRequest) uint16 { return 0 })})
	if err != nil {
		t.Fatal(err)
	}
	rq := &associate{version: 1, called: "SENTINEL", calling: "X", appContext: ApplicationContext, contexts: []pcItem{
		{id: 1, abstractSyntax: CRImageStorage, transferSyntaxes: []string{ImplicitVRLittleEndian, ExplicitVRLittleEndian}},
		{id: 3, abstractSyntax: CRImageStorage, transferSyntaxes: []string{ExplicitVRBigEndian, JPEGLosslessSV1}},
		{id: 5, abstractSyntax: CRImageStorage, transferSyntaxes: []string{JPEG2000}},
		{id: 7, abstractSyntax: SecondaryCaptureImageStorage, transferSyntaxes: []string{ExplicitVRLittleEndian}},
	}, user: userInfo{roles: []roleItem{{sopClass: CRImageStorage, scu: 1, scp: 1}, {sopClass: "1.2.3", scu: 1}}}}
	ac, rej := s.negotiate(context.Background(), rq, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1})
	if rej != nil {
		t.Fatalf("rejected: %+v", rej)
	}
	want := []struct {
		result byte
		ts     string
	}{{pcAccepted, ExplicitVRLittleEndian}, {pcAccepted, JPEGLosslessSV1}, {pcTransferNotSupported, ""}, {pcAbstractNotSupported, ""}}
	for i, w := range want {
		got := ac.contexts[i]
		if got.id != rq.contexts[i].id || got.result != w.result || (w.ts != "" && got.transferSyntaxes[0] != w.ts) {
			t.Errorf("context %d: %+v, want result %d with %s", rq.contexts[i].id, got, w.result, w.ts)
		}
	}
	if len(ac.user.roles) != 1 || ac.user.roles[0] != (roleItem{CRImageStorage, 1, 0}) {
		t.Errorf("roles %+v, want CR with the SCU role only", ac.user.roles)
	}
	// What the peer reads back is what was meant.
	var buf []byte
	typ, body, err := readPDU(bytes.NewReader(ac.encode(pduAssociateAC)), &buf, 0)
	if err != nil {
		t.Fatal(err)
	}
	back, err := parseAssociate(typ, body)
	if err != nil || len(back.contexts) != 4 || back.contexts[1].transferSyntaxes[0] != JPEGLosslessSV1 || back.user.maxLength != defaultMaxPDU {
		t.Errorf("read back %+v, %v", back, err)
	}
	for _, c := range []struct {
		mod  func(*associate)
		want string
	}{
		{func(a *associate) { a.version = 2 }, RejectProtocolVersion},
		{func(a *associate) { a.appContext = "1.2.3" }, RejectAppContext},
		{func(a *associate) { a.called = "sentinel" }, RejectCalledAE},
		{func(a *associate) { a.contexts = a.contexts[2:] }, RejectNoContext},
	} {
		r := *rq
		c.mod(&r)
		if _, rej := s.negotiate(context.Background(), &r, &net.TCPAddr{}); rej == nil || rej.name != c.want {
			t.Errorf("rejection %+v, want %s", rej, c.want)
		}
	}
}

// storeOn sends a C-STORE on a chosen context, whatever its abstract
// syntax, and returns the response status.
func storeOn(t *testing.T, a *Association, pcid byte, o testObject) uint16 {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.msgID++
	rq := &command{field: cmdCStoreRQ, messageID: a.msgID, affectedClass: o.sopClass, affectedInstance: o.sopInstance}
	if err := a.c.writeMessagePart(pcid, true, encodeCommand(rq), a.peerMax); err != nil {
		t.Fatal(err)
	}
	if err := a.c.writeMessagePart(pcid, false, o.dataset, a.peerMax); err != nil {
		t.Fatal(err)
	}
	rsp, err := a.response(pcid, cmdCStoreRSP)
	if err != nil {
		t.Fatal(err)
	}
	return rsp.status
}

func TestStoreOnWrongContext(t *testing.T) {
	s, addr, root := spoolServer(t, Config{SOPClasses: []string{CRImageStorage, DXImageStorageForPresentation}})
	a := mustDial(t, addr, PresentationContext{CRImageStorage, []string{ExplicitVRLittleEndian}})
	cr := a.Contexts()[0]
	if cr.AbstractSyntax != CRImageStorage {
		t.Fatalf("contexts %+v", a.Contexts())
	}
	o := newTestObject(1, ExplicitVRLittleEndian, 100)
	o.sopClass = DXImageStorageForPresentation // accepted, but not on this context
	if got := storeOn(t, a, cr.ID, o); got != StatusDataSetDoesNotMatchSOPClass {
		t.Errorf("accepted class on another class's context: 0x%04X, want 0xA900", got)
	}
	o.sopClass = SecondaryCaptureImageStorage // not accepted at all
	if got := storeOn(t, a, cr.ID, o); got != StatusSOPClassNotSupported {
		t.Errorf("unaccepted class: 0x%04X, want 0x0122", got)
	}
	if err := a.Echo(context.Background()); err != nil {
		t.Fatalf("echo after refused stores: %v", err)
	}
	if files := spoolFiles(t, root); len(files) != 0 {
		t.Errorf("refused stores left files: %v", files)
	}
	st := s.Stats()
	if st.StoresFailed[StatusDataSetDoesNotMatchSOPClass] != 1 || st.StoresFailed[StatusSOPClassNotSupported] != 1 || st.ObjectsReceived != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestDuplicateAndConflict(t *testing.T) {
	_, addr, root := spoolServer(t, Config{})
	a := mustDial(t, addr, PresentationContext{SecondaryCaptureImageStorage, []string{ExplicitVRLittleEndian}})
	ctx := context.Background()
	o := newTestObject(4, ExplicitVRLittleEndian, 500)
	other := newTestObject(4, ExplicitVRLittleEndian, 700)
	other.sopInstance = o.sopInstance
	other.dataset = bytes.Replace(other.dataset, []byte("2.25.10004.700"), []byte(o.sopInstance), 1)
	for i, x := range []testObject{o, o, other, other, o} {
		if st, err := a.Store(ctx, x.sopClass, x.sopInstance, x.ts, bytes.NewReader(x.dataset)); err != nil || st != StatusSuccess {
			t.Fatalf("store %d: 0x%04X %v", i, st, err)
		}
	}
	dir := filepath.Join("TESTSCU", o.study)
	want := []string{filepath.Join(dir, o.sopInstance+".1.dcm"), filepath.Join(dir, o.sopInstance+".dcm")}
	if got := spoolFiles(t, root); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("files %v, want %v", got, want)
	}
	if _, ds := datasetOf(t, filepath.Join(root, want[0])); !bytes.Equal(ds, other.dataset) {
		t.Error("the conflicting object was not kept under .1.dcm")
	}
	if _, ds := datasetOf(t, filepath.Join(root, want[1])); !bytes.Equal(ds, o.dataset) {
		t.Error("the first object was changed")
	}
}

func TestSpoolPausedAndFailing(t *testing.T) {
	var paused atomic.Bool
	paused.Store(true)
	root := t.TempDir()
	log, _ := testLogger(t)
	h, err := NewSpoolHandler(SpoolConfig{Root: root, Paused: paused.Load, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	s, addr := startServer(t, Config{AETitle: "SENTINEL", SOPClasses: RadiographSOPClasses, Handler: h})
	a := mustDial(t, addr, PresentationContext{SecondaryCaptureImageStorage, []string{ExplicitVRLittleEndian}})
	ctx := context.Background()
	o := newTestObject(6, ExplicitVRLittleEndian, 3000)
	if st, err := a.Store(ctx, o.sopClass, o.sopInstance, o.ts, bytes.NewReader(o.dataset)); err != nil || st != StatusOutOfResources {
		t.Fatalf("paused: 0x%04X %v, want 0xA700", st, err)
	}
	if files := spoolFiles(t, root); len(files) != 0 {
		t.Fatalf("paused spool wrote %v", files)
	}
	paused.Store(false)
	// A regular file where the caller's folder should be: the write fails.
	if err := os.WriteFile(filepath.Join(root, "TESTSCU"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if st, err := a.Store(ctx, o.sopClass, o.sopInstance, o.ts, bytes.NewReader(o.dataset)); err != nil || st != StatusOutOfResources {
		t.Fatalf("unwritable: 0x%04X %v, want 0xA700", st, err)
	}
	os.Remove(filepath.Join(root, "TESTSCU"))
	if st, err := a.Store(ctx, o.sopClass, o.sopInstance, o.ts, bytes.NewReader(o.dataset)); err != nil || st != StatusSuccess {
		t.Fatalf("resumed: 0x%04X %v", st, err)
	}
	if files := spoolFiles(t, root); len(files) != 1 {
		t.Errorf("files %v, want one", files)
	}
	if got := s.Stats().StoresFailed[StatusOutOfResources]; got != 2 {
		t.Errorf("%d stores failed with 0xA700, want 2", got)
	}
}

func TestHandlerReturnsEarly(t *testing.T) {
	var got atomic.Int64
	s, addr := startServer(t, Config{AETitle: "SENTINEL", SOPClasses: RadiographSOPClasses,
		Handler: StoreHandlerFunc(func(_ context.Context, req *StoreRequest) uint16 {
			var b [10]byte
			n, _ := io.ReadFull(req.Dataset, b[:])
			got.Add(int64(n))
			return StatusSuccess
		})})
	a := mustDial(t, addr, PresentationContext{SecondaryCaptureImageStorage, []string{ExplicitVRLittleEndian}})
	ctx := context.Background()
	for i := range 3 {
		o := newTestObject(i, ExplicitVRLittleEndian, 300000)
		if st, err := a.Store(ctx, o.sopClass, o.sopInstance, o.ts, bytes.NewReader(o.dataset)); err != nil || st != StatusSuccess {
			t.Fatalf("store: 0x%04X %v", st, err)
		}
	}
	if err := a.Echo(ctx); err != nil {
		t.Fatal(err)
	}
	if got.Load() != 30 || s.Stats().ObjectsReceived != 3 {
		t.Errorf("handler read %d bytes; stats %+v", got.Load(), s.Stats())
	}
}

func TestDroppedMidDataset(t *testing.T) {
	for _, how := range []string{"close", "abort"} {
		t.Run(how, func(t *testing.T) {
			root := t.TempDir()
			log, _ := testLogger(t)
			spool, err := NewSpoolHandler(SpoolConfig{Root: root, Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			handlerErr := make(chan error, 1)
			s, addr := startServer(t, Config{AETitle: "SENTINEL", SOPClasses: RadiographSOPClasses,
				Handler: StoreHandlerFunc(func(ctx context.Context, req *StoreRequest) uint16 {
					// The spool, watching what the reader says.
					r := &stickyReader{r: req.Dataset}
					req.Dataset = r
					st := spool.HandleStore(ctx, req)
					handlerErr <- r.err
					return st
				})})
			a := mustDial(t, addr, PresentationContext{SecondaryCaptureImageStorage, []string{ExplicitVRLittleEndian}})
			o := newTestObject(7, ExplicitVRLittleEndian, 1<<20)
			pc := a.Contexts()[0]
			rq := &command{field: cmdCStoreRQ, messageID: 1, affectedClass: o.sopClass, affectedInstance: o.sopInstance}
			if err := a.c.writeMessagePart(pc.ID, true, encodeCommand(rq), a.peerMax); err != nil {
				t.Fatal(err)
			}
			w := a.c.newFragmenter(pc.ID, false, a.peerMax)
			if _, err := w.Write(o.dataset[:len(o.dataset)/2]); err != nil {
				t.Fatal(err)
			}
			if err := w.flush(false); err != nil {
				t.Fatal(err)
			}
			// Let the server write the first half into its part file.
			waitFor(t, "the part file", func() bool {
				files := spoolFiles(t, root)
				return len(files) == 1 && strings.HasSuffix(files[0], ".dcm.part")
			})
			if how == "abort" {
				a.Abort()
			} else {
				a.c.nc.Close()
			}
			select {
			case err := <-handlerErr:
				if err == nil || errors.Is(err, io.EOF) {
					t.Errorf("the handler's reader said %v, want an error other than EOF", err)
				}
				if how == "abort" && !errors.Is(err, ErrAborted) {
					t.Errorf("after an A-ABORT the reader said %v, want ErrAborted", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the handler did not return")
			}
			waitFor(t, "the association to end", func() bool { return s.Stats().Active == 0 })
			if files := spoolFiles(t, root); len(files) != 0 {
				t.Errorf("files left: %v", files)
			}
			st := s.Stats()
			if st.Aborted != 1 || st.ObjectsReceived != 0 || len(st.StoresFailed) != 0 {
				t.Errorf("stats %+v", st)
			}
			// The server still serves.
			b := mustDial(t, addr)
			if err := b.Echo(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestShutdownAbortsAfterGrace(t *testing.T) {
	log, _ := testLogger(t)
	s, err := NewServer(Config{AETitle: "SENTINEL", ShutdownGrace: 200 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	a := mustDial(t, ln.Addr().String())
	if err := a.Echo(context.Background()); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if err := a.Echo(context.Background()); err == nil {
		t.Error("echo on an association the server aborted succeeded")
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("the listener still accepts")
	}
	if st := s.Stats(); st.Aborted != 1 || st.Active != 0 {
		t.Errorf("stats %+v", st)
	}
}
