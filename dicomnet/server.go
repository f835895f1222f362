package dicomnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Log attribute keys.
const (
	LogKeyAssociation = "assoc"
	LogKeyRemote      = "remote"
	LogKeyCallingAE   = "calling_ae"
	LogKeyCalledAE    = "called_ae"
)

// Caller is a calling application entity allowed to associate.
type Caller struct {
	AETitle string
	// Host is an IP address, a CIDR prefix or a host name (resolved at
	// each association); empty means any host.
	Host string
}

// Config configures a Server. Zero durations and limits take the
// defaults given.
type Config struct {
	// Address is where ListenAndServe listens, e.g. ":11112".
	Address string
	// AETitle is our AE title; the called AE title must equal it.
	AETitle string
	// AllowedCallers lists who may associate; empty: anyone.
	AllowedCallers []Caller
	// SOPClasses are the storage SOP classes accepted (Verification is
	// always accepted), e.g. RadiographSOPClasses.
	SOPClasses []string
	// TransferSyntaxes are those accepted, most preferred first; default
	// UncompressedTransferSyntaxes.
	TransferSyntaxes []string
	// MaxAssociations bounds the associations open at once (default 8).
	MaxAssociations int
	// MaxPDULength is the maximum P-DATA-TF length we advertise (default
	// 256 KiB, at least 4096, at most 16 MiB).
	MaxPDULength uint32
	// AssociationTimeout (ARTIM) bounds the wait for the A-ASSOCIATE-RQ
	// (default 30 s); IdleTimeout the wait for each later PDU (default
	// 60 s); WriteTimeout each write (default 60 s).
	AssociationTimeout, IdleTimeout, WriteTimeout time.Duration
	// ShutdownGrace is how long open associations may go on once Serve's
	// context is cancelled (default 10 s).
	ShutdownGrace time.Duration
	// Handler receives each C-STORE; required when SOPClasses is not
	// empty.
	Handler StoreHandler
	// Logger receives the log (default slog.Default()). Nothing from a
	// data set is ever logged.
	Logger *slog.Logger
}

// StoreRequest is one C-STORE as the handler sees it.
type StoreRequest struct {
	AssociationID                                  uint64
	MessageID                                      uint16
	CallingAE, CalledAE, RemoteAddr                string
	SOPClassUID, SOPInstanceUID, TransferSyntaxUID string
	// Dataset streams the data set bytes exactly as received, fragment
	// after fragment. It returns io.EOF after the last one, and an error
	// matching ErrAborted or another error (never io.EOF) if the
	// association is aborted or the connection drops first. It must not
	// be used after the handler returns; what the handler leaves unread
	// is discarded.
	Dataset io.Reader
}

// StoreHandler stores what a C-STORE carries and returns the DIMSE status
// of the response. It runs in the association's goroutine, one call at a
// time per association; it must return once ctx is cancelled (the server
// is giving up on the association) or its Dataset reader fails.
type StoreHandler interface {
	HandleStore(ctx context.Context, req *StoreRequest) uint16
}

// StoreHandlerFunc adapts a function to StoreHandler.
type StoreHandlerFunc func(ctx context.Context, req *StoreRequest) uint16

// HandleStore calls f.
func (f StoreHandlerFunc) HandleStore(ctx context.Context, req *StoreRequest) uint16 {
	return f(ctx, req)
}

// Server is a Storage SCP (and Verification SCP).
type Server struct {
	cfg        Config
	log        *slog.Logger
	sopClasses map[string]bool
	c          counters
	nextID     atomic.Uint64
	conns      atomic.Int64

	mu   sync.Mutex
	addr net.Addr
}

// NewServer checks cfg and fills in its defaults.
func NewServer(cfg Config) (*Server, error) {
	if !validAE(cfg.AETitle) {
		return nil, fmt.Errorf("dicomnet: server AE title %q: 1 to 16 characters, no backslash or control characters", cfg.AETitle)
	}
	cfg.AETitle = strings.TrimSpace(cfg.AETitle)
	for _, c := range cfg.AllowedCallers {
		if !validAE(c.AETitle) {
			return nil, fmt.Errorf("dicomnet: allowed caller AE title %q is not a valid AE title", c.AETitle)
		}
	}
	if len(cfg.SOPClasses) > 0 && cfg.Handler == nil {
		return nil, errors.New("dicomnet: storage SOP classes configured without a Handler")
	}
	if len(cfg.TransferSyntaxes) == 0 {
		cfg.TransferSyntaxes = UncompressedTransferSyntaxes
	}
	for _, uid := range slices.Concat(cfg.SOPClasses, cfg.TransferSyntaxes) {
		if !validUID(uid) {
			return nil, fmt.Errorf("dicomnet: %q is not a valid UID", uid)
		}
	}
	if cfg.MaxAssociations <= 0 {
		cfg.MaxAssociations = 8
	}
	switch {
	case cfg.MaxPDULength == 0:
		cfg.MaxPDULength = defaultMaxPDU
	case cfg.MaxPDULength < 4096 || cfg.MaxPDULength > 16<<20:
		return nil, fmt.Errorf("dicomnet: MaxPDULength %d outside 4096..16 MiB", cfg.MaxPDULength)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.AssociationTimeout, 30*time.Second)
	def(&cfg.IdleTimeout, 60*time.Second)
	def(&cfg.WriteTimeout, 60*time.Second)
	def(&cfg.ShutdownGrace, 10*time.Second)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, log: cfg.Logger, sopClasses: map[string]bool{}}
	for _, uid := range cfg.SOPClasses {
		s.sopClasses[uid] = true
	}
	return s, nil
}

// validAE reports whether ae is a usable AE title (PS3.5 6.2).
func validAE(ae string) bool {
	t := strings.TrimSpace(ae)
	if t == "" || len(ae) > 16 {
		return false
	}
	for i := 0; i < len(ae); i++ {
		if ae[i] < 0x20 || ae[i] == '\\' || ae[i] >= 0x7F {
			return false
		}
	}
	return true
}

// Stats returns the counters.
func (s *Server) Stats() Stats { return s.c.snapshot() }

// Addr is the address Serve is listening on (nil before).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// ListenAndServe listens on Config.Address and serves until ctx is
// cancelled.
func (s *Server) ListenAndServe(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Address)
	if err != nil {
		return fmt.Errorf("dicomnet: listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve accepts associations on ln, each in its own goroutine, until ctx
// is cancelled; then it closes ln, gives open associations
// Config.ShutdownGrace to finish, aborts those left, and returns once all
// have ended: nil after a cancellation, or the listener's error.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	s.addr = ln.Addr()
	s.mu.Unlock()
	hard, abortAll := context.WithCancel(context.WithoutCancel(ctx))
	defer abortAll()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	s.log.Info("dicomnet: listening", "addr", ln.Addr().String(), "ae_title", s.cfg.AETitle)

	var wg sync.WaitGroup
	var serveErr error
	backoff := time.Duration(0)
	maxConns := int64(2*s.cfg.MaxAssociations + 16)
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.Is(err, net.ErrClosed) {
				serveErr = fmt.Errorf("dicomnet: accept: %w", err)
				break
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("dicomnet: accept failed", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
			continue
		}
		backoff = 0
		if s.conns.Load() >= maxConns {
			// A flood of connections: do not even read their requests.
			s.c.reject(RejectLocalLimit)
			nc.Close()
			continue
		}
		s.conns.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.conns.Add(-1)
			s.serveConn(hard, nc)
		}()
	}
	ln.Close()

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	timer := time.NewTimer(s.cfg.ShutdownGrace)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		s.log.Warn("dicomnet: aborting associations still open after the shutdown grace", "active", s.c.active.Load())
		abortAll()
		<-done
	}
	s.log.Info("dicomnet: stopped", "addr", ln.Addr().String())
	return serveErr
}

// rejection is an A-ASSOCIATE-RJ to send.
type rejection struct {
	result, source, reason byte
	name                   string
}

// negotiate answers an A-ASSOCIATE-RQ: the A-ASSOCIATE-AC, or why not.
func (s *Server) negotiate(ctx context.Context, rq *associate, remote net.Addr) (*associate, *rejection) {
	switch {
	case rq.version&1 == 0:
		return nil, &rejection{1, 2, 2, RejectProtocolVersion}
	case rq.appContext != ApplicationContext:
		return nil, &rejection{1, 1, 2, RejectAppContext}
	case rq.called != s.cfg.AETitle:
		return nil, &rejection{1, 1, 7, RejectCalledAE}
	case !s.callerAllowed(ctx, rq.calling, remote):
		return nil, &rejection{1, 1, 3, RejectCallingAE}
	}
	ac := &associate{version: 1, called: rq.called, calling: rq.calling, appContext: ApplicationContext}
	ac.user = userInfo{maxLength: s.cfg.MaxPDULength, implClassUID: ImplementationClassUID, implVersion: ImplementationVersionName}
	accepted := 0
	for _, pc := range rq.contexts {
		ans := pcItem{id: pc.id, result: pcAbstractNotSupported, transferSyntaxes: pc.transferSyntaxes[:1]}
		if pc.abstractSyntax == VerificationSOPClass || s.sopClasses[pc.abstractSyntax] {
			ans.result = pcTransferNotSupported
			for _, ts := range s.cfg.TransferSyntaxes {
				if slices.Contains(pc.transferSyntaxes, ts) {
					ans.result, ans.transferSyntaxes = pcAccepted, []string{ts}
					break
				}
			}
		}
		if ans.result == pcAccepted {
			accepted++
		} else {
			s.c.contextsRejected.Add(1)
		}
		ac.contexts = append(ac.contexts, ans)
	}
	if accepted == 0 {
		return nil, &rejection{1, 1, 1, RejectNoContext}
	}
	for _, r := range rq.user.roles {
		if s.sopClasses[r.sopClass] || r.sopClass == VerificationSOPClass {
			ac.user.roles = append(ac.user.roles, roleItem{sopClass: r.sopClass, scu: r.scu, scp: 0})
		}
	}
	return ac, nil
}

// callerAllowed checks the calling AE title and the remote host against
// Config.AllowedCallers.
func (s *Server) callerAllowed(ctx context.Context, calling string, remote net.Addr) bool {
	if len(s.cfg.AllowedCallers) == 0 {
		return true
	}
	var ip netip.Addr
	if ap, err := netip.ParseAddrPort(remote.String()); err == nil {
		ip = ap.Addr().Unmap()
	}
	for _, c := range s.cfg.AllowedCallers {
		if strings.TrimSpace(c.AETitle) != calling {
			continue
		}
		if c.Host == "" || hostMatches(ctx, c.Host, ip) {
			return true
		}
	}
	return false
}

// hostMatches reports whether ip is host: an address, a prefix, or a name
// resolving to it.
func hostMatches(ctx context.Context, host string, ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap() == ip
	}
	if p, err := netip.ParsePrefix(host); err == nil {
		return p.Contains(ip)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if a.Unmap() == ip {
			return true
		}
	}
	return false
}

// tryAcquire takes one of the MaxAssociations places.
func (s *Server) tryAcquire() bool {
	for {
		n := s.c.active.Load()
		if n >= int64(s.cfg.MaxAssociations) {
			return false
		}
		if s.c.active.CompareAndSwap(n, n+1) {
			return true
		}
	}
}
