package agent

import (
	"errors"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sentinel-pacs/sentinel"
)

// metrics are the agent's Prometheus series. Each agent has its own
// registry, so several agents (in tests) never collide.
type metrics struct {
	reg        *prometheus.Registry
	seen       prometheus.Counter
	handled    *prometheus.CounterVec
	failed     *prometheus.CounterVec
	duplicates prometheus.Counter
	queue      prometheus.Gauge
	inflight   prometheus.Gauge
	latency    prometheus.Histogram
	model      *prometheus.GaugeVec
	paused     prometheus.Gauge
	ownFaults  prometheus.Counter
	revised    *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		seen: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_files_seen_total", Help: "Files found in the drop folders (each path once per agent run).",
		}),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentinel_files_processed_total", Help: "Files handled, by outcome (done, duplicate, conflict, failed, out_of_scope, skipped).",
		}, []string{"status"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentinel_files_failed_total", Help: "Files quarantined, by reason.",
		}, []string{"reason"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_duplicates_total", Help: "Files whose instance had already been scored with the same bytes.",
		}),
		queue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sentinel_queue_depth", Help: "Files found and not yet handled: waiting to be stable or for a worker.",
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sentinel_files_in_flight", Help: "Files being processed now.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sentinel_end_to_end_seconds",
			Help:    "Time from a file being found to its report being recorded (includes the stability wait).",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14),
		}),
		model: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sentinel_model_info", Help: "The model in use: 1 for its version.",
		}, []string{"version"}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sentinel_ingest_paused", Help: "1 while ingest is paused because free disk space is below the floor.",
		}),
		ownFaults: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentinel_own_write_failures_total", Help: "Files put back because a write on Sentinel's side failed (disk full, read-only, database unavailable); each pauses ingest.",
		}),
		revised: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentinel_reports_revised_total", Help: "Instance reports issued again because a newer model in use decided otherwise, by the decision before and after.",
		}, []string{"from", "to"}),
	}
	m.reg.MustRegister(m.seen, m.handled, m.failed, m.duplicates, m.queue, m.inflight, m.latency, m.model, m.paused, m.ownFaults, m.revised,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// failureReason names the class of a processing error for the failed
// counter, so its label set stays small.
func failureReason(err error) string {
	switch {
	case errors.Is(err, sentinel.ErrUnsupportedTransferSyntax):
		return "unsupported_transfer_syntax"
	case errors.Is(err, sentinel.ErrUnsupported):
		return "unsupported"
	case errors.Is(err, sentinel.ErrNotDICOM):
		return "not_dicom"
	case errors.Is(err, sentinel.ErrTooLarge):
		return "too_large"
	case errors.Is(err, sentinel.ErrNoPixels):
		return "no_pixels"
	case errors.Is(err, sentinel.ErrInvalid):
		return "invalid"
	case err != nil && strings.Contains(err.Error(), "quarantine"):
		return "quarantine"
	}
	return "other"
}
