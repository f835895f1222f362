package agent

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/sentinel-pacs/sentinel/store"
)

// outboxJSON is an outbox item as /api/outbox shows it: what was sent
// where, and why it was not. It names instances and studies by UID only.
type outboxJSON struct {
	ID          int64     `json:"id"`
	Destination string    `json:"destination"`
	Output      string    `json:"output"`
	Object      string    `json:"object"`
	InstanceID  string    `json:"instance"`
	Revision    int       `json:"revision"`
	Study       string    `json:"study,omitempty"`
	State       string    `json:"state"`
	Attempts    int       `json:"attempts"`
	NextTry     time.Time `json:"next_try,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// apiOutbox serves GET /api/outbox: the counts per destination, the
// receiver's counters when it runs, and the latest items (?state=pending,
// sent or failed; ?limit=N).
func (a *Agent) apiOutbox(w http.ResponseWriter, r *http.Request) {
	limit, ok := limitParam(w, r)
	if !ok {
		return
	}
	state := r.URL.Query().Get("state")
	switch state {
	case "", store.OutboxPending, store.OutboxSent, store.OutboxFailed:
	default:
		http.Error(w, "state must be pending, sent or failed", http.StatusBadRequest)
		return
	}
	counts, err := a.db.OutboxCounts(r.Context())
	if err == nil {
		var items []store.OutboxItem
		items, err = a.db.OutboxItems(r.Context(), state, limit)
		if err == nil {
			out := map[string]any{"destinations": outboxDestinations(a.cfg.DICOM, counts), "items": outboxList(items)}
			if st, ok := a.DICOMStats(); ok {
				out["receiver"] = st
			}
			writeJSON(w, http.StatusOK, out)
			return
		}
	}
	a.log.Warn("api outbox", slog.Any("error", err))
	http.Error(w, "database error", http.StatusInternalServerError)
}

// outboxDestinations gives the counts of every configured destination
// (zero when nothing was queued for it yet) and of any other with items.
func outboxDestinations(dc *DICOMConfig, counts []store.OutboxCount) []store.OutboxCount {
	out := []store.OutboxCount{}
	have := map[string]bool{}
	for _, c := range counts {
		have[c.Destination] = true
	}
	if dc != nil {
		for _, d := range dc.Destinations {
			if !have[d.Name] {
				out = append(out, store.OutboxCount{Destination: d.Name})
			}
		}
	}
	return append(out, counts...)
}

func outboxList(items []store.OutboxItem) []outboxJSON {
	out := make([]outboxJSON, 0, len(items))
	for _, it := range items {
		j := outboxJSON{ID: it.ID, Destination: it.Destination, Output: it.Output, Object: it.Object,
			InstanceID: it.InstanceID, Revision: it.Revision, Study: it.StudyInstanceUID, State: it.State,
			Attempts: it.Attempts, LastError: it.LastError, CreatedAt: it.CreatedAt, UpdatedAt: it.UpdatedAt}
		if it.State == store.OutboxPending {
			j.NextTry = it.NextTry.UTC()
		}
		out = append(out, j)
	}
	return out
}
