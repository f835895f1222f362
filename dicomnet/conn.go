package dicomnet

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrAborted is matched (errors.Is) by every error that reports an
// association aborted by the peer or by us.
var ErrAborted = errors.New("dicomnet: association aborted")

// AbortError is an A-ABORT received from the peer.
type AbortError struct {
	Source, Reason byte
}

func (e *AbortError) Error() string {
	return fmt.Sprintf("dicomnet: association aborted by the peer (source %d, reason %d)", e.Source, e.Reason)
}

// Is makes errors.Is(err, ErrAborted) true.
func (e *AbortError) Is(target error) bool { return target == ErrAborted }

// pconn is a connection carrying PDUs: reads from one goroutine, writes
// serialised, each with its deadline.
type pconn struct {
	nc           net.Conn
	br           *bufio.Reader
	rbuf         []byte
	maxPData     uint32 // largest P-DATA-TF body accepted
	readTimeout  time.Duration
	writeTimeout time.Duration

	// cancelled is set, before the deadlines are moved to now, when the
	// operation under way is cancelled, so that a later deadline set for
	// the next read or write cannot undo the cancellation.
	cancelled atomic.Bool

	wmu  sync.Mutex
	wbuf []byte
}

// errCancelled reports an operation cut short by its context.
var errCancelled = errors.New("dicomnet: operation cancelled")

// cancel makes the reads and writes under way, and all later ones, fail.
func (c *pconn) cancel() {
	c.cancelled.Store(true)
	c.nc.SetDeadline(time.Now())
}

func newPConn(nc net.Conn, readTimeout, writeTimeout time.Duration) *pconn {
	return &pconn{
		nc:           nc,
		br:           bufio.NewReaderSize(nc, 64<<10),
		maxPData:     maxAssociatePDU,
		readTimeout:  readTimeout,
		writeTimeout: writeTimeout,
	}
}

// readPDU reads the next PDU within the read timeout. The body is valid
// until the next call.
func (c *pconn) readPDU() (byte, []byte, error) {
	if c.readTimeout > 0 {
		c.nc.SetReadDeadline(time.Now().Add(c.readTimeout))
	}
	if c.cancelled.Load() {
		return 0, nil, errCancelled
	}
	if c.br.Buffered() == 0 {
		quickAck(c.nc)
	}
	return readPDU(c.br, &c.rbuf, c.maxPData)
}

// write writes whole PDUs within the write timeout.
func (c *pconn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(b)
}

func (c *pconn) writeLocked(b []byte) error {
	if c.writeTimeout > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	}
	if c.cancelled.Load() {
		return errCancelled
	}
	_, err := c.nc.Write(b)
	return err
}

// abort sends an A-ABORT, unless a write is under way (it would be cut
// by the close anyway), then closes the connection after giving the peer
// a moment to read it.
func (c *pconn) abort(source, reason byte) {
	if c.wmu.TryLock() {
		c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		c.nc.Write(abortPDU(source, reason))
		c.wmu.Unlock()
	}
	c.closeGracefully(500 * time.Millisecond)
}

// closeGracefully half-closes the connection and waits up to wait for the
// peer to close its side, discarding what it still sends, so that a final
// PDU is not lost to a reset; then closes.
func (c *pconn) closeGracefully(wait time.Duration) {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		tc.CloseWrite()
		tc.SetReadDeadline(time.Now().Add(wait))
		io.Copy(io.Discard, io.LimitReader(tc, 4<<20))
	}
	c.nc.Close()
}

// writeMessagePart sends data (a command set, or a whole data set) as PDVs
// of context pcid in P-DATA-TF PDUs of at most peerMax bytes (0: any).
func (c *pconn) writeMessagePart(pcid byte, command bool, data []byte, peerMax uint32) error {
	if len(data) <= chunkSize(peerMax) {
		// One PDU, without the fragmenter's buffer of a whole PDU.
		f := &fragmenter{c: c, pcid: pcid, command: command, chunk: len(data), buf: make([]byte, 12, 12+len(data))}
		f.buf = append(f.buf, data...)
		return f.close()
	}
	w := c.newFragmenter(pcid, command, peerMax)
	if _, err := w.Write(data); err != nil {
		return err
	}
	return w.close()
}

// fragmenter writes a message part as a sequence of PDVs, holding back
// one PDU so that the last one can carry the last-fragment bit.
type fragmenter struct {
	c       *pconn
	pcid    byte
	command bool
	chunk   int
	buf     []byte // a PDU being filled: 12 bytes of headers, then data
}

// chunkSize is the data that fits in one PDV of a P-DATA-TF PDU of at
// most peerMax bytes (0: any, capped at maxSendPDU).
func chunkSize(peerMax uint32) int {
	limit := uint32(maxSendPDU)
	if peerMax != 0 {
		limit = min(peerMax, maxSendPDU)
	}
	return max(int(limit)-6, 1)
}

func (c *pconn) newFragmenter(pcid byte, command bool, peerMax uint32) *fragmenter {
	chunk := chunkSize(peerMax)
	c.wmu.Lock()
	if cap(c.wbuf) < 12+chunk {
		c.wbuf = make([]byte, 0, 12+chunk)
	}
	f := &fragmenter{c: c, pcid: pcid, command: command, chunk: chunk, buf: c.wbuf[:12]}
	c.wmu.Unlock()
	return f
}

// Write buffers p, sending each full fragment once more data follows it.
func (f *fragmenter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if len(f.buf)-12 == f.chunk {
			if err := f.flush(false); err != nil {
				return n, err
			}
		}
		m := copy(f.buf[len(f.buf):12+f.chunk], p)
		f.buf = f.buf[:len(f.buf)+m]
		p = p[m:]
		n += m
	}
	return n, nil
}

// ReadFrom fills fragments straight from r.
func (f *fragmenter) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		if len(f.buf)-12 == f.chunk {
			if err := f.flush(false); err != nil {
				return total, err
			}
		}
		m, err := r.Read(f.buf[len(f.buf) : 12+f.chunk])
		f.buf = f.buf[:len(f.buf)+m]
		total += int64(m)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// close sends the buffered data as the last fragment.
func (f *fragmenter) close() error { return f.flush(true) }

func (f *fragmenter) flush(last bool) error {
	n := len(f.buf) - 12
	b := f.buf
	b[0], b[1] = pduPData, 0
	binary.BigEndian.PutUint32(b[2:6], uint32(n+6))
	binary.BigEndian.PutUint32(b[6:10], uint32(n+2))
	b[10] = f.pcid
	b[11] = 0
	if f.command {
		b[11] |= 1
	}
	if last {
		b[11] |= 2
	}
	err := f.c.write(b)
	f.buf = f.buf[:12]
	return err
}

// event is a PDU other than P-DATA-TF met while reading messages.
type event struct {
	typ  byte
	body []byte
}

// pdvStream yields the PDVs of successive P-DATA-TF PDUs.
type pdvStream struct {
	c       *pconn
	body    []byte
	allowed func(pcid byte) bool
}

// next returns the next PDV, or the next other PDU as an event.
func (s *pdvStream) next() (pdv, *event, error) {
	for len(s.body) == 0 {
		typ, body, err := s.c.readPDU()
		if err != nil {
			return pdv{}, nil, err
		}
		if typ != pduPData {
			return pdv{}, &event{typ: typ, body: body}, nil
		}
		s.body = body
	}
	p, rest, err := nextPDV(s.body)
	if err != nil {
		s.body = nil
		return pdv{}, nil, err
	}
	s.body = rest
	if s.allowed != nil && !s.allowed(p.pcid) {
		return pdv{}, nil, protoErrorf(abortInvalidParam, "PDV on presentation context %d, which was not accepted", p.pcid)
	}
	return p, nil, nil
}

// readCommand reads the fragments of the next command set. A PDU other
// than P-DATA-TF before the first fragment is returned as an event;
// one after it is a protocol error.
func (s *pdvStream) readCommand() (byte, *command, *event, error) {
	var buf []byte
	var pcid byte
	started := false
	for {
		p, ev, err := s.next()
		if err != nil {
			return 0, nil, nil, err
		}
		if ev != nil {
			if started {
				return 0, nil, nil, eventError(ev, "in the middle of a command")
			}
			return 0, nil, ev, nil
		}
		if !p.command {
			return 0, nil, nil, protoErrorf(abortUnexpectedParam, "data set fragment where a command was expected")
		}
		if started && p.pcid != pcid {
			return 0, nil, nil, protoErrorf(abortInvalidParam, "command fragments on contexts %d and %d", pcid, p.pcid)
		}
		started, pcid = true, p.pcid
		if len(buf)+len(p.data) > maxCommandSet {
			return 0, nil, nil, protoErrorf(abortInvalidParam, "command set over %d bytes", maxCommandSet)
		}
		buf = append(buf, p.data...)
		if p.last {
			cmd, err := parseCommand(buf)
			if err != nil {
				return 0, nil, nil, &protocolError{reason: abortInvalidParam, msg: err.Error()}
			}
			return pcid, cmd, nil, nil
		}
	}
}

// eventError is the error for a PDU met where a P-DATA-TF fragment was
// expected: an A-ABORT is an AbortError, anything else a protocol error.
func eventError(ev *event, where string) error {
	if ev.typ == pduAbort {
		return &AbortError{Source: ev.body[2], Reason: ev.body[3]}
	}
	return protoErrorf(abortUnexpectedPDU, "PDU type 0x%02X %s", ev.typ, where)
}

// datasetReader streams the data set fragments that follow a command,
// as they arrive. Its errors are never io.EOF unless the last fragment
// was read.
type datasetReader struct {
	s    *pdvStream
	pcid byte
	cur  []byte
	done bool
	err  error
	n    int64
}

func (d *datasetReader) Read(p []byte) (int, error) {
	for len(d.cur) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		if d.done {
			return 0, io.EOF
		}
		f, ev, err := d.s.next()
		switch {
		case err != nil:
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			d.err = fmt.Errorf("dicomnet: data set interrupted: %w", err)
		case ev != nil:
			d.err = fmt.Errorf("dicomnet: data set interrupted: %w", eventError(ev, "in the middle of a data set"))
		case f.command:
			d.err = fmt.Errorf("dicomnet: data set interrupted: %w", protoErrorf(abortUnexpectedParam, "command fragment in the middle of a data set"))
		case f.pcid != d.pcid:
			d.err = fmt.Errorf("dicomnet: data set interrupted: %w", protoErrorf(abortInvalidParam, "data set fragments on contexts %d and %d", d.pcid, f.pcid))
		default:
			d.cur, d.done = f.data, f.last
		}
	}
	n := copy(p, d.cur)
	d.cur = d.cur[n:]
	d.n += int64(n)
	return n, nil
}

// drain discards the rest of the data set; it returns nil once the last
// fragment has been read.
func (d *datasetReader) drain() error {
	var buf [32 << 10]byte
	for {
		_, err := d.Read(buf[:])
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
