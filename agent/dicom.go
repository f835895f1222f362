package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/dicomnet"
)

// DICOMConfig makes the agent a DICOM node: a Storage SCP writing what it
// receives into the first inbox folder, and a sender of the outputs (a
// Structured Report and a Secondary Capture of each report, or the report
// itself to a webhook) to destinations, through a durable outbox.
type DICOMConfig struct {
	// Listen is the receiver's address; empty leaves the receiver off
	// (the outbox still runs when there are destinations).
	Listen string
	// AETitle is the called AE title the receiver answers to and the
	// calling AE title of what is sent.
	AETitle          string
	AllowedCallers   []dicomnet.Caller
	SOPClasses       []string
	TransferSyntaxes []string
	MaxAssociations  int
	MaxPDU           uint32
	// AssociationTimeout, IdleTimeout and WriteTimeout bound the
	// receiver's waits and the sender's.
	AssociationTimeout, IdleTimeout, WriteTimeout time.Duration
	// Destinations receive the outputs.
	Destinations []Destination
	// OutboxDir holds the outputs waiting to be sent (by default
	// <StateDir>/outbox).
	OutboxDir string
	// MaxAttempts sends are tried before an output is set aside; the wait
	// after a failure starts at Backoff and doubles up to MaxBackoff.
	MaxAttempts         int
	Backoff, MaxBackoff time.Duration
}

// Destination is where outputs go.
type Destination struct {
	Name string
	// Kind is DestinationDICOM, DestinationFolder or DestinationWebhook.
	Kind string
	// AETitle and Address (host:port) locate a DICOM destination.
	AETitle, Address string
	// Path is a folder destination's folder; URL a webhook's address.
	Path, URL string
	// Outputs are the outputs it takes: OutputSR and OutputSC, or
	// OutputReport for a webhook.
	Outputs []string
	// OnlyFlagged sends only reports decided abnormal or out of
	// distribution.
	OnlyFlagged bool
}

// takes reports whether the destination takes a report with this
// decision.
func (d Destination) takes(decision sentinel.Decision) bool {
	return !d.OnlyFlagged || decision == sentinel.DecisionAbnormal || decision == sentinel.DecisionOutOfDistribution
}

// Destination kinds and outputs.
const (
	DestinationDICOM   = "dicom"
	DestinationFolder  = "folder"
	DestinationWebhook = "webhook"

	OutputSR     = "sr"
	OutputSC     = "sc"
	OutputReport = "report"
)

func (d Destination) wants(output string) bool {
	for _, o := range d.Outputs {
		if o == output {
			return true
		}
	}
	return false
}

// dicomNode is the agent's DICOM state: the receiver while it runs and the
// sender's wake-up channel.
type dicomNode struct {
	server atomic.Pointer[dicomnet.Server]
	// wake asks the sender to look at the outbox now.
	wake chan struct{}
	once sync.Once
	// registered is set once the node's metrics are in the registry.
	registered atomic.Bool
}

func (n *dicomNode) wakeC() chan struct{} {
	n.once.Do(func() { n.wake = make(chan struct{}, 1) })
	return n.wake
}

// DICOMStats returns the receiver's counters; ok is false when it is not
// running.
func (a *Agent) DICOMStats() (dicomnet.Stats, bool) {
	s := a.node.server.Load()
	if s == nil {
		return dicomnet.Stats{}, false
	}
	return s.Stats(), true
}

// baseLog is the configured logger, without the agent's component tag,
// for the DICOM components to tag with their own.
func (a *Agent) baseLog() *slog.Logger {
	if a.cfg.Logger != nil {
		return a.cfg.Logger
	}
	return slog.Default()
}

// ingestPaused reports whether ingest is paused (the free-space floor, or
// the wait after a write on Sentinel's side failed): the receiver then
// answers every C-STORE "out of resources", and the sender retries later.
func (a *Agent) ingestPaused() bool { return a.paused.Load() || a.faulted() }

// serveDICOM starts the receiver, when one is configured, and the
// outbox's sender, when there are destinations, in goroutines counted in
// wg. The receiver's port is bound before it returns, so that a port in use
// fails the start. The returned function stops both and waits for them.
func (a *Agent) serveDICOM(ctx context.Context, wg *sync.WaitGroup) (func(), error) {
	dc := a.cfg.DICOM
	if dc == nil || (dc.Listen == "" && len(dc.Destinations) == 0) {
		return func() {}, nil
	}
	a.registerDICOMMetrics()
	ctx, cancel := context.WithCancel(ctx)
	var mine sync.WaitGroup
	stop := func() { cancel(); mine.Wait() }
	if dc.Listen != "" {
		srv, ln, err := a.newReceiver(dc)
		if err != nil {
			cancel()
			return nil, err
		}
		a.node.server.Store(srv)
		wg.Add(1)
		mine.Add(1)
		go func() {
			defer wg.Done()
			defer mine.Done()
			if err := srv.Serve(ctx, ln); err != nil && ctx.Err() == nil {
				a.log.Error("dicom receiver stopped", slog.Any("error", err))
			}
		}()
		if len(dc.AllowedCallers) == 0 {
			a.log.Warn("dicom receiver accepts any calling AE title: set dicom.allowed_callers", slog.String("addr", ln.Addr().String()))
		}
		a.log.Info("dicom receiver listening", slog.String("addr", ln.Addr().String()), slog.String("ae_title", dc.AETitle),
			slog.String("inbox", a.cfg.Inbox[0]), slog.Int("allowed_callers", len(dc.AllowedCallers)))
	}
	if len(dc.Destinations) > 0 {
		ob, err := a.newOutbox()
		if err != nil {
			stop()
			return nil, err
		}
		wg.Add(1)
		mine.Add(1)
		go func() {
			defer wg.Done()
			defer mine.Done()
			ob.run(ctx)
		}()
	}
	return stop, nil
}

// newReceiver makes the Storage SCP, spooling into the first inbox
// folder, and binds its port.
func (a *Agent) newReceiver(dc *DICOMConfig) (*dicomnet.Server, net.Listener, error) {
	log := a.baseLog().With(slog.String("component", "dicom"))
	spool, err := dicomnet.NewSpoolHandler(dicomnet.SpoolConfig{Root: a.cfg.Inbox[0], Paused: a.ingestPaused, Logger: log})
	if err != nil {
		return nil, nil, fmt.Errorf("agent: dicom receiver: %w", err)
	}
	srv, err := dicomnet.NewServer(dicomnet.Config{
		Address:            dc.Listen,
		AETitle:            dc.AETitle,
		AllowedCallers:     dc.AllowedCallers,
		SOPClasses:         dc.SOPClasses,
		TransferSyntaxes:   dc.TransferSyntaxes,
		MaxAssociations:    dc.MaxAssociations,
		MaxPDULength:       dc.MaxPDU,
		AssociationTimeout: dc.AssociationTimeout,
		IdleTimeout:        dc.IdleTimeout,
		WriteTimeout:       dc.WriteTimeout,
		Handler:            spool,
		Logger:             log,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("agent: dicom receiver: %w", err)
	}
	ln, err := net.Listen("tcp", dc.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("agent: dicom receiver: %w", err)
	}
	return srv, ln, nil
}

// registerDICOMMetrics adds the receiver's and the outbox's series to the
// agent's registry, once.
func (a *Agent) registerDICOMMetrics() {
	if a.node.registered.Swap(true) {
		return
	}
	if err := a.metrics.reg.Register(dicomCollector{a}); err != nil {
		var already prometheus.AlreadyRegisteredError
		if !errors.As(err, &already) {
			a.log.Warn("dicom metrics", slog.Any("error", err))
		}
	}
}

// dicomCollector exports the receiver's counters and the outbox's counts
// as they are when /metrics is read.
type dicomCollector struct{ a *Agent }

var (
	descAssocAccepted = prometheus.NewDesc("sentinel_dicom_associations_total",
		"DICOM associations accepted by the receiver.", nil, nil)
	descAssocActive = prometheus.NewDesc("sentinel_dicom_associations_active",
		"DICOM associations open now.", nil, nil)
	descAssocRejected = prometheus.NewDesc("sentinel_dicom_associations_rejected_total",
		"DICOM associations rejected, by reason.", []string{"reason"}, nil)
	descAssocAborted = prometheus.NewDesc("sentinel_dicom_associations_aborted_total",
		"DICOM associations that ended in an abort or a dropped connection.", nil, nil)
	descReceived = prometheus.NewDesc("sentinel_dicom_objects_received_total",
		"Objects received by C-STORE and written into the inbox.", nil, nil)
	descReceivedBytes = prometheus.NewDesc("sentinel_dicom_received_bytes_total",
		"Data set bytes received by C-STORE.", nil, nil)
	descStoresFailed = prometheus.NewDesc("sentinel_dicom_stores_refused_total",
		"C-STOREs answered with a failure, by DIMSE status.", []string{"status"}, nil)
	descEchoes = prometheus.NewDesc("sentinel_dicom_echoes_total", "C-ECHO requests answered.", nil, nil)
	descOutbox = prometheus.NewDesc("sentinel_outbox_objects",
		"Outputs in the outbox, by destination and state (pending, sent, failed: set aside after the last attempt).",
		[]string{"destination", "state"}, nil)
)

func (c dicomCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAssocAccepted, descAssocActive, descAssocRejected, descAssocAborted,
		descReceived, descReceivedBytes, descStoresFailed, descEchoes, descOutbox} {
		ch <- d
	}
}

func (c dicomCollector) Collect(ch chan<- prometheus.Metric) {
	if st, ok := c.a.DICOMStats(); ok {
		ch <- prometheus.MustNewConstMetric(descAssocAccepted, prometheus.CounterValue, float64(st.Accepted))
		ch <- prometheus.MustNewConstMetric(descAssocActive, prometheus.GaugeValue, float64(st.Active))
		for _, reason := range []string{dicomnet.RejectCalledAE, dicomnet.RejectCallingAE, dicomnet.RejectLocalLimit,
			dicomnet.RejectNoContext, dicomnet.RejectAppContext, dicomnet.RejectProtocolVersion} {
			ch <- prometheus.MustNewConstMetric(descAssocRejected, prometheus.CounterValue, float64(st.Rejected[reason]), reason)
		}
		ch <- prometheus.MustNewConstMetric(descAssocAborted, prometheus.CounterValue, float64(st.Aborted))
		ch <- prometheus.MustNewConstMetric(descReceived, prometheus.CounterValue, float64(st.ObjectsReceived))
		ch <- prometheus.MustNewConstMetric(descReceivedBytes, prometheus.CounterValue, float64(st.BytesReceived))
		for status, n := range st.StoresFailed {
			ch <- prometheus.MustNewConstMetric(descStoresFailed, prometheus.CounterValue, float64(n), fmt.Sprintf("0x%04X", status))
		}
		ch <- prometheus.MustNewConstMetric(descEchoes, prometheus.CounterValue, float64(st.Echoes))
	}
	if dc := c.a.cfg.DICOM; dc == nil || len(dc.Destinations) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.a.db.OutboxCounts(ctx)
	if err != nil {
		return
	}
	seen := map[string]bool{}
	for _, n := range counts {
		seen[n.Destination] = true
		ch <- prometheus.MustNewConstMetric(descOutbox, prometheus.GaugeValue, float64(n.Pending), n.Destination, "pending")
		ch <- prometheus.MustNewConstMetric(descOutbox, prometheus.GaugeValue, float64(n.Sent), n.Destination, "sent")
		ch <- prometheus.MustNewConstMetric(descOutbox, prometheus.GaugeValue, float64(n.Failed), n.Destination, "failed")
	}
	for _, d := range c.a.cfg.DICOM.Destinations {
		if !seen[d.Name] {
			for _, s := range []string{"pending", "sent", "failed"} {
				ch <- prometheus.MustNewConstMetric(descOutbox, prometheus.GaugeValue, 0, d.Name, s)
			}
		}
	}
}
