package dicomnet

import (
	"maps"
	"sync"
	"sync/atomic"
)

// Reasons an association is rejected, as counted in Stats.Rejected.
const (
	RejectCalledAE        = "called-AE-title-not-recognized"
	RejectCallingAE       = "calling-AE-title-not-recognized"
	RejectLocalLimit      = "local-limit-exceeded"
	RejectNoContext       = "no-acceptable-presentation-context"
	RejectAppContext      = "application-context-name-not-supported"
	RejectProtocolVersion = "protocol-version-not-supported"
)

// Stats are a Server's counters since it was made.
type Stats struct {
	// Accepted counts associations accepted; Active those open now.
	Accepted uint64
	Active   int64
	// Rejected counts associations rejected, by reason (the Reject*
	// constants).
	Rejected map[string]uint64
	// Aborted counts accepted associations that ended in an A-ABORT (sent
	// or received) or a dropped connection rather than a release;
	// ProtocolErrors the aborts we sent for malformed or unexpected input.
	Aborted        uint64
	ProtocolErrors uint64
	// ContextsRejected counts proposed presentation contexts answered
	// with a rejection (in accepted or rejected associations).
	ContextsRejected uint64
	// Echoes counts C-ECHO requests answered.
	Echoes uint64
	// ObjectsReceived counts C-STOREs answered with success or a warning;
	// BytesReceived the data set bytes of all C-STOREs read.
	ObjectsReceived uint64
	BytesReceived   uint64
	// StoresFailed counts C-STOREs answered with a failure, by status; a
	// store cut off by an abort is counted under Aborted only.
	StoresFailed map[uint16]uint64
}

// counters is the live form of Stats.
type counters struct {
	accepted, aborted, protocolErrors, contextsRejected atomic.Uint64
	echoes, objects, bytes                              atomic.Uint64
	active                                              atomic.Int64

	mu       sync.Mutex
	rejected map[string]uint64
	failed   map[uint16]uint64
}

func (c *counters) reject(reason string) {
	c.mu.Lock()
	if c.rejected == nil {
		c.rejected = map[string]uint64{}
	}
	c.rejected[reason]++
	c.mu.Unlock()
}

func (c *counters) storeFailed(status uint16) {
	c.mu.Lock()
	if c.failed == nil {
		c.failed = map[uint16]uint64{}
	}
	c.failed[status]++
	c.mu.Unlock()
}

func (c *counters) snapshot() Stats {
	s := Stats{
		Accepted:         c.accepted.Load(),
		Active:           c.active.Load(),
		Aborted:          c.aborted.Load(),
		ProtocolErrors:   c.protocolErrors.Load(),
		ContextsRejected: c.contextsRejected.Load(),
		Echoes:           c.echoes.Load(),
		ObjectsReceived:  c.objects.Load(),
		BytesReceived:    c.bytes.Load(),
	}
	c.mu.Lock()
	s.Rejected = maps.Clone(c.rejected)
	s.StoresFailed = maps.Clone(c.failed)
	c.mu.Unlock()
	if s.Rejected == nil {
		s.Rejected = map[string]uint64{}
	}
	if s.StoresFailed == nil {
		s.StoresFailed = map[uint16]uint64{}
	}
	return s
}
