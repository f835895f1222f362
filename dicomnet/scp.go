package dicomnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// scpAssoc is one association a Server accepted.
type scpAssoc struct {
	s               *Server
	c               *pconn
	log             *slog.Logger
	id              uint64
	calling, called string
	remote          string
	contexts        map[byte]pcItem // accepted contexts: abstract syntax and the one transfer syntax
	peerMax         uint32
}

// serveConn runs one connection from the A-ASSOCIATE-RQ to its end.
func (s *Server) serveConn(ctx context.Context, nc net.Conn) {
	id := s.nextID.Add(1)
	remote := nc.RemoteAddr().String()
	log := s.log.With(LogKeyAssociation, id, LogKeyRemote, remote)
	c := newPConn(nc, s.cfg.AssociationTimeout, s.cfg.WriteTimeout)
	// Aborted when the server gives up on its open associations.
	stop := context.AfterFunc(ctx, func() {
		if c.wmu.TryLock() {
			nc.SetWriteDeadline(time.Now().Add(time.Second))
			nc.Write(abortPDU(abortSourceUser, abortNotSpecified))
			c.wmu.Unlock()
		}
		nc.Close()
	})
	defer stop()

	typ, body, err := c.readPDU()
	if err == nil && typ != pduAssociateRQ {
		err = protoErrorf(abortUnexpectedPDU, "PDU type 0x%02X before the A-ASSOCIATE-RQ", typ)
	}
	var rq *associate
	if err == nil {
		rq, err = parseAssociate(typ, body)
	}
	if err != nil {
		var pe *protocolError
		if errors.As(err, &pe) {
			s.c.protocolErrors.Add(1)
			log.Warn("dicomnet: bad association request: aborting", "err", err)
			c.abort(abortSourceProvider, pe.reason)
			return
		}
		log.Info("dicomnet: no association request", "err", err)
		nc.Close()
		return
	}
	log = log.With(LogKeyCallingAE, rq.calling, LogKeyCalledAE, rq.called)
	ac, rej := s.negotiate(ctx, rq, nc.RemoteAddr())
	if rej == nil && !s.tryAcquire() {
		rej = &rejection{2, 3, 2, RejectLocalLimit}
	}
	if rej != nil {
		s.c.reject(rej.name)
		log.Warn("dicomnet: association rejected", "reason", rej.name)
		if err := c.write(rejectPDU(rej.result, rej.source, rej.reason)); err != nil {
			log.Info("dicomnet: sending the rejection failed", "err", err)
		}
		c.closeGracefully(min(s.cfg.AssociationTimeout, 2*time.Second))
		return
	}
	defer s.c.active.Add(-1)
	if err := c.write(ac.encode(pduAssociateAC)); err != nil {
		log.Info("dicomnet: sending the acceptance failed", "err", err)
		nc.Close()
		return
	}
	s.c.accepted.Add(1)
	a := &scpAssoc{s: s, c: c, log: log, id: id, calling: rq.calling, called: rq.called, remote: remote,
		contexts: map[byte]pcItem{}, peerMax: rq.user.maxLength}
	for i, pc := range ac.contexts {
		if pc.result == pcAccepted {
			a.contexts[pc.id] = pcItem{id: pc.id, abstractSyntax: rq.contexts[i].abstractSyntax, transferSyntaxes: pc.transferSyntaxes}
		}
	}
	log.Info("dicomnet: association accepted", "contexts", len(a.contexts), "peer_max_pdu", rq.user.maxLength,
		"peer_implementation", rq.user.implClassUID, "peer_version", rq.user.implVersion)
	c.readTimeout = s.cfg.IdleTimeout
	c.maxPData = pdataLimit(s.cfg.MaxPDULength)
	a.run(ctx)
}

// run reads and answers messages until the association ends.
func (a *scpAssoc) run(ctx context.Context) {
	stream := &pdvStream{c: a.c, allowed: func(id byte) bool { _, ok := a.contexts[id]; return ok }}
	for {
		pcid, cmd, ev, err := stream.readCommand()
		if err != nil {
			a.fail(ctx, err)
			return
		}
		if ev != nil {
			switch ev.typ {
			case pduReleaseRQ:
				if err := a.c.write(fixedPDU(pduReleaseRP, 0, 0, 0)); err != nil {
					a.log.Info("dicomnet: sending the release response failed", "err", err)
				}
				a.c.closeGracefully(min(a.s.cfg.AssociationTimeout, 2*time.Second))
				a.log.Info("dicomnet: association released")
				return
			case pduAbort:
				a.fail(ctx, eventError(ev, ""))
			default:
				a.fail(ctx, protoErrorf(abortUnexpectedPDU, "PDU type 0x%02X in an open association", ev.typ))
			}
			return
		}
		if err := a.handle(ctx, stream, pcid, cmd); err != nil {
			a.fail(ctx, err)
			return
		}
	}
}

// fail ends the association after err: an A-ABORT for a protocol error or
// a timeout, a plain close otherwise.
func (a *scpAssoc) fail(ctx context.Context, err error) {
	a.s.c.aborted.Add(1)
	var pe *protocolError
	var ne net.Error
	switch {
	case ctx.Err() != nil:
		a.log.Warn("dicomnet: association aborted at shutdown")
		a.c.nc.Close()
	case errors.As(err, &pe):
		a.s.c.protocolErrors.Add(1)
		a.log.Warn("dicomnet: protocol error: aborting the association", "err", err)
		a.c.abort(abortSourceProvider, pe.reason)
	case errors.Is(err, ErrAborted):
		a.log.Warn("dicomnet: association aborted by the peer", "err", err)
		a.c.nc.Close()
	case errors.As(err, &ne) && ne.Timeout():
		a.log.Warn("dicomnet: association timed out: aborting", "err", err)
		a.c.abort(abortSourceProvider, abortNotSpecified)
	default:
		a.log.Warn("dicomnet: connection lost", "err", err)
		a.c.nc.Close()
	}
}

// handle answers one DIMSE request.
func (a *scpAssoc) handle(ctx context.Context, stream *pdvStream, pcid byte, cmd *command) error {
	pc := a.contexts[pcid]
	var ds *datasetReader
	if cmd.hasDataSet() {
		ds = &datasetReader{s: stream, pcid: pcid}
	}
	discard := func() error {
		if ds == nil {
			return nil
		}
		err := ds.drain()
		a.s.c.bytes.Add(uint64(ds.n))
		return err
	}
	switch {
	case cmd.isResponse():
		return protoErrorf(abortUnexpectedParam, "DIMSE response 0x%04X sent to an SCP", cmd.field)
	case cmd.field == cmdCCancelRQ:
		return discard()
	case cmd.field == cmdCEchoRQ:
		if err := discard(); err != nil {
			return err
		}
		status := StatusSuccess
		if pc.abstractSyntax != VerificationSOPClass || cmd.affectedClass != VerificationSOPClass {
			status = StatusSOPClassNotSupported
		}
		a.s.c.echoes.Add(1)
		a.log.Debug("dicomnet: C-ECHO", "status", status)
		return a.respond(pcid, cmd, cmdCEchoRSP, status)
	case cmd.field == cmdCStoreRQ:
		return a.store(ctx, pc, cmd, ds, discard)
	default:
		if err := discard(); err != nil {
			return err
		}
		a.log.Warn("dicomnet: unsupported DIMSE request", "command_field", fmt.Sprintf("0x%04X", cmd.field))
		return a.respond(pcid, cmd, cmd.field|0x8000, StatusUnrecognizedOperation)
	}
}

// store answers a C-STORE-RQ, calling the handler when the request is
// consistent with its context.
func (a *scpAssoc) store(ctx context.Context, pc pcItem, cmd *command, ds *datasetReader, discard func() error) error {
	status := StatusSuccess
	switch {
	case ds == nil || cmd.affectedClass == "" || cmd.affectedInstance == "":
		status = StatusCannotUnderstand
	case cmd.affectedClass != pc.abstractSyntax && a.s.sopClasses[cmd.affectedClass]:
		status = StatusDataSetDoesNotMatchSOPClass
	case cmd.affectedClass != pc.abstractSyntax:
		status = StatusSOPClassNotSupported
	}
	start := time.Now()
	if status == StatusSuccess {
		status = a.callHandler(ctx, &StoreRequest{
			AssociationID: a.id, MessageID: cmd.messageID,
			CallingAE: a.calling, CalledAE: a.called, RemoteAddr: a.remote,
			SOPClassUID: cmd.affectedClass, SOPInstanceUID: cmd.affectedInstance,
			TransferSyntaxUID: pc.transferSyntaxes[0], Dataset: ds,
		})
	}
	if err := discard(); err != nil {
		return err
	}
	if StatusOK(status) {
		a.s.c.objects.Add(1)
	} else {
		a.s.c.storeFailed(status)
	}
	level := slog.LevelDebug
	if !StatusOK(status) {
		level = slog.LevelWarn
	}
	var n int64
	if ds != nil {
		n = ds.n
	}
	a.log.Log(ctx, level, "dicomnet: C-STORE", "sop_class", cmd.affectedClass, "sop_instance", cmd.affectedInstance,
		"bytes", n, "status", fmt.Sprintf("0x%04X", status), "ms", time.Since(start).Milliseconds())
	return a.respond(pc.id, cmd, cmdCStoreRSP, status)
}

// callHandler runs the handler, turning a panic into a failure status.
func (a *scpAssoc) callHandler(ctx context.Context, req *StoreRequest) (status uint16) {
	defer func() {
		if r := recover(); r != nil {
			a.log.Error("dicomnet: store handler panicked", "panic", fmt.Sprint(r))
			status = StatusCannotUnderstand
		}
	}()
	return a.s.cfg.Handler.HandleStore(ctx, req)
}

// respond sends the response to cmd.
func (a *scpAssoc) respond(pcid byte, cmd *command, field, status uint16) error {
	rsp := &command{field: field, respondedTo: cmd.messageID, affectedClass: cmd.affectedClass,
		dataSetType: noDataSet, status: status}
	if field == cmdCStoreRSP {
		rsp.affectedInstance = cmd.affectedInstance
	}
	if err := a.c.writeMessagePart(pcid, true, encodeCommand(rsp), a.peerMax); err != nil {
		return fmt.Errorf("dicomnet: sending the response: %w", err)
	}
	return nil
}
