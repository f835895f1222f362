package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/learn"
	"github.com/sentinel-pacs/sentinel/store"
)

// maxLabelsBody bounds a labels upload: a year of a busy department's
// readings is a few megabytes of CSV.
const maxLabelsBody = 16 << 20

func (a *Agent) apiQueries(w http.ResponseWriter, r *http.Request) {
	rows, err := a.db.Worklist(r.Context())
	if err != nil {
		a.log.Warn("api queries", slog.Any("error", err))
		http.Error(w, "database error", http.StatusInternalServerError)
		return
	}
	a.writeWorklist(w, r, rows)
}

// writeWorklist answers with the open worklist: {"queries": [...]}, or with
// ?by=study {"studies": [...]}, one item per study (see StudyWorklist).
func (a *Agent) writeWorklist(w http.ResponseWriter, r *http.Request, rows []store.WorklistRow) {
	items := Worklist(rows)
	switch r.URL.Query().Get("by") {
	case "":
		writeJSON(w, http.StatusOK, map[string]any{"queries": items})
	case "study":
		studies, err := StudyWorklist(r.Context(), a.db, items)
		if err != nil {
			a.log.Warn("api queries", slog.Any("error", err))
			http.Error(w, "database error", http.StatusInternalServerError)
			return
		}
		if studies == nil {
			studies = []StudyWorkItem{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"studies": studies})
	default:
		http.Error(w, "by must be study, or absent", http.StatusBadRequest)
	}
}

// apiChooseQueries chooses a new round of queries (?n=N, default the
// configured budget) and answers with the open worklist, as GET does.
func (a *Agent) apiChooseQueries(w http.ResponseWriter, r *http.Request) {
	if a.cfg.ChooseQueries == nil {
		http.Error(w, "choosing queries is not configured on this agent", http.StatusNotImplemented)
		return
	}
	n := 0
	if v := r.URL.Query().Get("n"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			http.Error(w, "n must be between 1 and 1000", http.StatusBadRequest)
			return
		}
	}
	if by := r.URL.Query().Get("by"); by != "" && by != "study" {
		http.Error(w, "by must be study, or absent", http.StatusBadRequest)
		return
	}
	// Two rounds at once cannot ask for twice the budget: the second finds
	// the queries lease held (ErrRoundRunning).
	rows, err := a.cfg.ChooseQueries(r.Context(), n)
	switch {
	case errors.Is(err, sentinel.ErrNoModel):
		http.Error(w, "no model yet: train one first", http.StatusConflict)
		return
	case errors.Is(err, ErrRoundRunning):
		http.Error(w, err.Error(), http.StatusConflict)
		return
	case err != nil:
		a.log.Warn("api choose queries", slog.Any("error", err))
		http.Error(w, "choosing queries failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	a.writeWorklist(w, r, rows)
}

// LabelsResponse is what POST /api/labels answers: what the import did and
// each rejected row by line.
type LabelsResponse struct {
	Rows      int          `json:"rows"`
	Added     int          `json:"added"`
	Unchanged int          `json:"unchanged"`
	Rejected  int          `json:"rejected"`
	Undone    []string     `json:"undone"`
	Errors    []LabelError `json:"errors"`
}

// LabelError is one rejected row of a labels upload.
type LabelError struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// apiLabels imports the labels file in the body, CSV (Content-Type
// text/csv) or JSON (application/json or application/x-ndjson); without a
// type, a body starting with [ or { is JSON. The good rows are imported
// even when others are rejected: 200 when none was, 422 with the rejected
// rows by line otherwise; 400 when the body is not a labels file at all.
func (a *Agent) apiLabels(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxLabelsBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		http.Error(w, "labels body larger than 16 MiB: split it", http.StatusRequestEntityTooLarge)
		return
	}
	if err != nil {
		http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	format, ok := labelsFormat(r.Header.Get("Content-Type"), body)
	if !ok {
		http.Error(w, "Content-Type must be text/csv, application/json or application/x-ndjson", http.StatusUnsupportedMediaType)
		return
	}
	rows, bad, err := learn.ParseLabels(bytes.NewReader(body), format)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rep, err := ImportLabels(r.Context(), a.db, rows, bad, "api")
	if err != nil {
		a.log.Warn("api labels", slog.Any("error", err))
		http.Error(w, "database error", http.StatusInternalServerError)
		return
	}
	resp := LabelsResponse{Rows: rep.Rows, Added: rep.Added, Unchanged: rep.Unchanged, Rejected: len(rep.Errors),
		Undone: rep.Undone, Errors: []LabelError{}}
	if resp.Undone == nil {
		resp.Undone = []string{}
	}
	for _, e := range rep.Errors {
		resp.Errors = append(resp.Errors, LabelError{e.Line, e.Err.Error()})
	}
	a.log.Info("labels imported over the API", slog.Int("rows", resp.Rows), slog.Int("added", resp.Added),
		slog.Int("rejected", resp.Rejected), slog.Int("admissions_undone", len(resp.Undone)))
	code := http.StatusOK
	if resp.Rejected > 0 {
		code = http.StatusUnprocessableEntity
	}
	writeJSON(w, code, resp)
}

func labelsFormat(contentType string, body []byte) (string, bool) {
	if contentType == "" {
		if t := bytes.TrimSpace(body); len(t) > 0 && (t[0] == '[' || t[0] == '{') {
			return "json", true
		}
		return "csv", true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", false
	}
	switch mt {
	case "text/csv":
		return "csv", true
	case "application/json", "application/x-ndjson":
		return "json", true
	}
	return "", false
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
