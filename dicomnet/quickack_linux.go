package dicomnet

import (
	"net"
	"syscall"
)

// quickAck asks Linux to acknowledge received segments at once rather than
// after the delayed-ACK timer. A sender with Nagle's algorithm on (dcmtk's
// tools, among others) holds a PDU's small segment until the previous one
// is acknowledged, so delayed ACKs would stall each message by some 40 ms.
// The kernel leaves quick-ack mode by itself, so it is asked again before
// each PDU is read.
func quickAck(nc net.Conn) {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
