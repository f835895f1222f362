package dicomnet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// PresentationContext is an abstract syntax proposed with its transfer
// syntaxes, most preferred first.
type PresentationContext struct {
	AbstractSyntax   string
	TransferSyntaxes []string
}

// AcceptedContext is a presentation context the peer accepted.
type AcceptedContext struct {
	ID             byte
	AbstractSyntax string
	TransferSyntax string
}

// DialOptions configure Dial. Zero values take the defaults given.
type DialOptions struct {
	// Contexts are proposed in this order; a Verification context is
	// added if none is given.
	Contexts []PresentationContext
	// MaxPDULength is the maximum P-DATA-TF length we advertise (default
	// 256 KiB).
	MaxPDULength uint32
	// AssociationTimeout bounds connecting and the negotiation (default
	// 30 s); ReadTimeout the wait for each PDU later (default 60 s);
	// WriteTimeout each write (default 60 s).
	AssociationTimeout, ReadTimeout, WriteTimeout time.Duration
	Logger                                        *slog.Logger
}

// RejectError is an A-ASSOCIATE-RJ from the peer.
type RejectError struct {
	Result, Source, Reason byte
}

func (e *RejectError) Error() string {
	kind := "permanent"
	if e.Result == 2 {
		kind = "transient"
	}
	return fmt.Sprintf("dicomnet: association rejected (%s, source %d, reason %d: %s)", kind, e.Source, e.Reason, rejectReasonName(e.Source, e.Reason))
}

// rejectReasonName names a rejection reason (PS3.8 table 9-21).
func rejectReasonName(source, reason byte) string {
	switch {
	case source == 1 && reason == 1, source == 2 && reason == 1:
		return "no-reason-given"
	case source == 1 && reason == 2:
		return RejectAppContext
	case source == 1 && reason == 3:
		return RejectCallingAE
	case source == 1 && reason == 7:
		return RejectCalledAE
	case source == 2 && reason == 2:
		return RejectProtocolVersion
	case source == 3 && reason == 1:
		return "temporary-congestion"
	case source == 3 && reason == 2:
		return RejectLocalLimit
	}
	return "unknown"
}

// Association is an association we requested, as a Storage and
// Verification SCU. Its methods may be called from several goroutines but
// run one at a time.
type Association struct {
	c        *pconn
	log      *slog.Logger
	contexts []AcceptedContext
	peerMax  uint32
	peerImpl string

	mu     sync.Mutex
	msgID  uint16
	broken error // set once the association can no longer be used
	stream *pdvStream
}

// Dial connects to addr and negotiates an association.
func Dial(ctx context.Context, addr, callingAE, calledAE string, opts DialOptions) (*Association, error) {
	if !validAE(callingAE) || !validAE(calledAE) {
		return nil, fmt.Errorf("dicomnet: dial: AE titles %q, %q: 1 to 16 characters, no backslash or control characters", callingAE, calledAE)
	}
	if opts.MaxPDULength == 0 {
		opts.MaxPDULength = defaultMaxPDU
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.AssociationTimeout, 30*time.Second)
	def(&opts.ReadTimeout, 60*time.Second)
	def(&opts.WriteTimeout, 60*time.Second)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	contexts := slices.Clone(opts.Contexts)
	if !slices.ContainsFunc(contexts, func(pc PresentationContext) bool { return pc.AbstractSyntax == VerificationSOPClass }) {
		contexts = append(contexts, PresentationContext{VerificationSOPClass, []string{ImplicitVRLittleEndian, ExplicitVRLittleEndian}})
	}
	if len(contexts) > 128 {
		return nil, fmt.Errorf("dicomnet: dial: %d presentation contexts, at most 128", len(contexts))
	}
	rq := &associate{version: 1, called: strings.TrimSpace(calledAE), calling: strings.TrimSpace(callingAE), appContext: ApplicationContext,
		user: userInfo{maxLength: opts.MaxPDULength, implClassUID: ImplementationClassUID, implVersion: ImplementationVersionName}}
	for i, pc := range contexts {
		if !validUID(pc.AbstractSyntax) || len(pc.TransferSyntaxes) == 0 || len(pc.TransferSyntaxes) > maxTransferSyntaxes {
			return nil, fmt.Errorf("dicomnet: dial: presentation context %q with %d transfer syntaxes", pc.AbstractSyntax, len(pc.TransferSyntaxes))
		}
		for _, ts := range pc.TransferSyntaxes {
			if !validUID(ts) {
				return nil, fmt.Errorf("dicomnet: dial: transfer syntax %q is not a UID", ts)
			}
		}
		rq.contexts = append(rq.contexts, pcItem{id: byte(2*i + 1), abstractSyntax: pc.AbstractSyntax, transferSyntaxes: pc.TransferSyntaxes})
	}

	dctx, cancel := context.WithTimeout(ctx, opts.AssociationTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dicomnet: dial %s: %w", addr, err)
	}
	c := newPConn(nc, opts.AssociationTimeout, opts.WriteTimeout)
	stop := context.AfterFunc(dctx, c.cancel)
	defer stop()
	fail := func(err error) (*Association, error) {
		var pe *protocolError
		if errors.As(err, &pe) {
			c.abort(abortSourceProvider, pe.reason)
		} else {
			nc.Close()
		}
		if ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
		return nil, fmt.Errorf("dicomnet: associate with %s at %s: %w", calledAE, addr, err)
	}
	if err := c.write(rq.encode(pduAssociateRQ)); err != nil {
		return fail(err)
	}
	typ, body, err := c.readPDU()
	if err != nil {
		return fail(err)
	}
	switch typ {
	case pduAssociateAC:
	case pduAssociateRJ:
		nc.Close()
		return nil, &RejectError{Result: body[1], Source: body[2], Reason: body[3]}
	case pduAbort:
		nc.Close()
		return nil, fmt.Errorf("dicomnet: associate with %s at %s: %w", calledAE, addr, &AbortError{Source: body[2], Reason: body[3]})
	default:
		return fail(protoErrorf(abortUnexpectedPDU, "PDU type 0x%02X in answer to the A-ASSOCIATE-RQ", typ))
	}
	ac, err := parseAssociate(typ, body)
	if err != nil {
		return fail(err)
	}
	a := &Association{c: c, log: opts.Logger.With(LogKeyRemote, addr, LogKeyCalledAE, calledAE), peerMax: ac.user.maxLength, peerImpl: ac.user.implClassUID}
	for _, pc := range ac.contexts {
		i := slices.IndexFunc(rq.contexts, func(p pcItem) bool { return p.id == pc.id })
		if i < 0 {
			return fail(protoErrorf(abortInvalidParam, "answer for presentation context %d, which was not proposed", pc.id))
		}
		if pc.result != pcAccepted {
			continue
		}
		if !slices.Contains(rq.contexts[i].transferSyntaxes, pc.transferSyntaxes[0]) {
			return fail(protoErrorf(abortInvalidParam, "context %d accepted with transfer syntax %s, which was not proposed", pc.id, pc.transferSyntaxes[0]))
		}
		a.contexts = append(a.contexts, AcceptedContext{ID: pc.id, AbstractSyntax: rq.contexts[i].abstractSyntax, TransferSyntax: pc.transferSyntaxes[0]})
	}
	c.readTimeout = opts.ReadTimeout
	c.maxPData = pdataLimit(opts.MaxPDULength)
	a.stream = &pdvStream{c: c, allowed: func(id byte) bool {
		return slices.ContainsFunc(a.contexts, func(x AcceptedContext) bool { return x.ID == id })
	}}
	if !stop() {
		return fail(errCancelled)
	}
	a.log.Debug("dicomnet: association accepted", "contexts", len(a.contexts), "peer_max_pdu", a.peerMax)
	return a, nil
}

// Contexts returns the presentation contexts the peer accepted.
func (a *Association) Contexts() []AcceptedContext { return slices.Clone(a.contexts) }

// PeerMaxPDULength is the maximum P-DATA-TF length the peer accepts (0:
// any).
func (a *Association) PeerMaxPDULength() uint32 { return a.peerMax }

// context finds an accepted context for abstract syntax as (and transfer
// syntax ts, unless empty).
func (a *Association) context(as, ts string) (AcceptedContext, bool) {
	for _, pc := range a.contexts {
		if pc.AbstractSyntax == as && (ts == "" || pc.TransferSyntax == ts) {
			return pc, true
		}
	}
	return AcceptedContext{}, false
}

// begin starts an operation: it takes the lock and arms ctx's
// cancellation, which breaks the association.
func (a *Association) begin(ctx context.Context) (func(), error) {
	a.mu.Lock()
	if a.broken != nil {
		a.mu.Unlock()
		return nil, a.broken
	}
	stop := context.AfterFunc(ctx, a.c.cancel)
	return func() {
		if !stop() && a.broken == nil {
			// Cancelled as the operation ended: the connection's
			// deadlines are spent, so the association is given up.
			a.broken = fmt.Errorf("dicomnet: association given up: %w", ctx.Err())
			a.c.abort(abortSourceUser, abortNotSpecified)
		}
		a.mu.Unlock()
	}, nil
}

// breakWith marks the association unusable after err, aborting it unless
// the peer did, and returns err with context.
func (a *Association) breakWith(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		err = errors.Join(ctx.Err(), err)
	}
	err = fmt.Errorf("dicomnet: %s: %w", op, err)
	a.broken = err
	var pe *protocolError
	switch {
	case errors.As(err, &pe):
		a.c.abort(abortSourceProvider, pe.reason)
	case errors.Is(err, ErrAborted):
		a.c.nc.Close()
	default:
		a.c.abort(abortSourceUser, abortNotSpecified)
	}
	return err
}

// Echo sends a C-ECHO and returns an error unless it succeeds.
func (a *Association) Echo(ctx context.Context) error {
	done, err := a.begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	pc, ok := a.context(VerificationSOPClass, "")
	if !ok {
		return errors.New("dicomnet: echo: the peer accepted no Verification context")
	}
	a.msgID++
	rq := &command{field: cmdCEchoRQ, messageID: a.msgID, affectedClass: VerificationSOPClass, dataSetType: noDataSet}
	if err := a.c.writeMessagePart(pc.ID, true, encodeCommand(rq), a.peerMax); err != nil {
		return a.breakWith(ctx, "echo", err)
	}
	rsp, err := a.response(pc.ID, cmdCEchoRSP)
	if err != nil {
		return a.breakWith(ctx, "echo", err)
	}
	if rsp.status != StatusSuccess {
		return fmt.Errorf("dicomnet: echo: status 0x%04X", rsp.status)
	}
	return nil
}

// Store sends a C-STORE of the data set read from dataset, encoded in
// transfer syntax ts, in fragments fitting the peer's maximum PDU length,
// and returns the status of the response. An error means the association
// is no longer usable.
func (a *Association) Store(ctx context.Context, sopClass, sopInstance, ts string, dataset io.Reader) (uint16, error) {
	done, err := a.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer done()
	pc, ok := a.context(sopClass, ts)
	if !ok {
		return 0, fmt.Errorf("dicomnet: store: no accepted presentation context for SOP class %s in transfer syntax %s", sopClass, ts)
	}
	if !validUID(sopInstance) {
		return 0, fmt.Errorf("dicomnet: store: SOP instance UID %q is not a valid UID", sopInstance)
	}
	a.msgID++
	rq := &command{field: cmdCStoreRQ, messageID: a.msgID, affectedClass: sopClass, affectedInstance: sopInstance, dataSetType: 0x0000}
	if err := a.c.writeMessagePart(pc.ID, true, encodeCommand(rq), a.peerMax); err != nil {
		return 0, a.breakWith(ctx, "store", err)
	}
	w := a.c.newFragmenter(pc.ID, false, a.peerMax)
	if _, err := w.ReadFrom(dataset); err != nil {
		return 0, a.breakWith(ctx, "store: sending the data set", err)
	}
	if err := w.close(); err != nil {
		return 0, a.breakWith(ctx, "store: sending the data set", err)
	}
	rsp, err := a.response(pc.ID, cmdCStoreRSP)
	if err != nil {
		return 0, a.breakWith(ctx, "store", err)
	}
	if rsp.affectedInstance != "" && rsp.affectedInstance != sopInstance {
		return rsp.status, a.breakWith(ctx, "store", protoErrorf(abortInvalidParam, "response for SOP instance %s", rsp.affectedInstance))
	}
	return rsp.status, nil
}

// StoreFile sends the data set of a Part 10 file in the file's own
// transfer syntax, which must have been accepted for its SOP class.
func (a *Association) StoreFile(ctx context.Context, path string) (uint16, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("dicomnet: store file: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 256<<10)
	meta, err := ReadMeta(br)
	if err != nil {
		return 0, fmt.Errorf("dicomnet: store file %s: %w", path, err)
	}
	if _, ok := a.context(meta.SOPClassUID, meta.TransferSyntaxUID); !ok {
		return 0, fmt.Errorf("dicomnet: store file %s: no accepted presentation context for SOP class %s in the file's transfer syntax %s",
			path, meta.SOPClassUID, meta.TransferSyntaxUID)
	}
	return a.Store(ctx, meta.SOPClassUID, meta.SOPInstanceUID, meta.TransferSyntaxUID, br)
}

// response reads the response to the message just sent.
func (a *Association) response(pcid byte, field uint16) (*command, error) {
	gotPC, cmd, ev, err := a.stream.readCommand()
	if err != nil {
		return nil, err
	}
	if ev != nil {
		return nil, eventError(ev, "while waiting for a response")
	}
	if cmd.hasDataSet() {
		ds := &datasetReader{s: a.stream, pcid: gotPC}
		if err := ds.drain(); err != nil {
			return nil, err
		}
	}
	if cmd.field != field || cmd.respondedTo != a.msgID || gotPC != pcid {
		return nil, protoErrorf(abortUnexpectedParam, "response 0x%04X to message %d on context %d, expected 0x%04X to %d on %d",
			cmd.field, cmd.respondedTo, gotPC, field, a.msgID, pcid)
	}
	return cmd, nil
}

// Release releases the association and closes the connection.
func (a *Association) Release(ctx context.Context) error {
	done, err := a.begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := a.c.write(fixedPDU(pduReleaseRQ, 0, 0, 0)); err != nil {
		return a.breakWith(ctx, "release", err)
	}
	for {
		_, ev, err := a.stream.next()
		if err != nil {
			return a.breakWith(ctx, "release", err)
		}
		if ev == nil {
			continue // a late P-DATA: ignored
		}
		switch ev.typ {
		case pduReleaseRP:
			a.broken = errors.New("dicomnet: association released")
			a.c.nc.Close()
			return nil
		case pduReleaseRQ:
			// Release collision (PS3.8 9.2.3): as requestor, answer it
			// and wait for the peer's answer.
			if err := a.c.write(fixedPDU(pduReleaseRP, 0, 0, 0)); err != nil {
				return a.breakWith(ctx, "release", err)
			}
		default:
			return a.breakWith(ctx, "release", eventError(ev, "while waiting for the release response"))
		}
	}
}

// Abort aborts the association and closes the connection.
func (a *Association) Abort() error {
	a.c.abort(abortSourceUser, abortNotSpecified)
	a.mu.Lock()
	if a.broken == nil {
		a.broken = errors.New("dicomnet: association aborted by us")
	}
	a.mu.Unlock()
	return nil
}
