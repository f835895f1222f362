package web

import (
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/learn"
	"github.com/sentinel-pacs/sentinel/store"
)

// Findings are the short list an abnormal answer may name; anything else
// is typed as free text.
var Findings = []string{"nodule or mass", "consolidation", "effusion", "pneumothorax", "cardiomegaly", "atelectasis"}

// maxFinding bounds a free-text finding.
const maxFinding = 120

// question is one open query as the worklist shows it.
type question struct {
	Index            int
	QueryID          int64
	InstanceID       string
	AccessionNumber  string
	StudyInstanceUID string
	Film, Films      int
	Score, Threshold float64
	Decision         string
	Uncertainty      *float64
	ModelVersion     string
	Strategy, Reason string
	AskedAt          time.Time
	Heatmap          bool
}

// studyQuestions are a study's open questions, in the order asked.
type studyQuestions struct {
	AccessionNumber  string
	StudyInstanceUID string
	Questions        []question
}

type worklistData struct {
	Studies  []studyQuestions
	Count    int
	Findings []string
	Undoable []store.PageLabel
	Model    string
	Revised  []store.RevisedReport
}

// questions groups the open queries by study, each study where its first
// film was asked, each film's reason in the numbers shown beside it.
func questions(rows []store.WorklistRow) ([]studyQuestions, int) {
	var out []studyQuestions
	at := map[string]int{}
	for _, r := range rows {
		key := r.StudyInstanceUID
		if key == "" {
			key = "instance:" + r.InstanceID
		}
		i, ok := at[key]
		if !ok {
			i = len(out)
			at[key] = i
			out = append(out, studyQuestions{AccessionNumber: r.AccessionNumber, StudyInstanceUID: r.StudyInstanceUID})
		}
		reason := r.Reason
		if r.ModelVersion != "" {
			reason = learn.RestateReason(reason, r.Score, r.Threshold)
		}
		out[i].Questions = append(out[i].Questions, question{QueryID: r.QueryID, InstanceID: r.InstanceID,
			AccessionNumber: r.AccessionNumber, StudyInstanceUID: r.StudyInstanceUID, Score: r.Score, Threshold: r.Threshold,
			Decision: r.Decision, Uncertainty: r.Uncertainty, ModelVersion: r.ModelVersion, Strategy: r.Strategy,
			Reason: reason, AskedAt: r.CreatedAt, Heatmap: r.HeatmapPath != ""})
	}
	n := 0
	for i := range out {
		qs := out[i].Questions
		for j := range qs {
			qs[j].Index, qs[j].Film, qs[j].Films = n, j+1, len(qs)
			n++
		}
	}
	return out, n
}

func (s *Server) worklist(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	rows, err := s.db.Worklist(ctx)
	if err != nil {
		s.fail(w, r, "worklist", err)
		return
	}
	d := worklistData{Findings: Findings}
	d.Studies, d.Count = questions(rows)
	if d.Undoable, err = s.db.UndoableLabels(ctx, sessionOf(r).Reader.Name); err != nil {
		s.fail(w, r, "worklist", err)
		return
	}
	if m, err := s.db.ActiveModel(ctx); err == nil {
		d.Model = m.Version
	}
	if d.Revised, err = s.db.RevisedReports(ctx, 5); err != nil {
		s.fail(w, r, "worklist", err)
		return
	}
	s.render(w, r, http.StatusOK, "worklist", page{Title: "Worklist", Nav: "worklist", Data: d})
}

// answerResult is what a script's answer gets back.
type answerResult struct {
	Instance string `json:"instance"`
	Label    string `json:"label"`
	Finding  string `json:"finding,omitempty"`
	Added    bool   `json:"added"`
}

// answer stores a reader's answer at once: normal, or abnormal with an
// optional finding; skip stores nothing. A script gets JSON back, a form
// the worklist again.
func (s *Server) answer(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sess := sessionOf(r)
	id := r.PostFormValue("instance")
	value := r.PostFormValue("label")
	finding := strings.TrimSpace(r.PostFormValue("finding"))
	if finding == "other" || finding == "" {
		finding = strings.TrimSpace(r.PostFormValue("finding_text"))
	}
	if len(finding) > maxFinding {
		http.Error(w, "finding longer than 120 characters", http.StatusBadRequest)
		return
	}
	switch value {
	case learn.Normal:
		finding = ""
	case learn.Abnormal:
	case "skip":
		s.answered(w, r, answerResult{Instance: id, Label: "skip"})
		return
	default:
		http.Error(w, "label must be normal, abnormal or skip", http.StatusBadRequest)
		return
	}
	f, ok, err := s.db.InstanceFilesOf(ctx, id)
	if err != nil {
		s.fail(w, r, "answer", err)
		return
	}
	if !ok || f.InstanceID != id {
		http.Error(w, "no such instance", http.StatusNotFound)
		return
	}
	l := sentinel.Label{InstanceID: id, Value: value, Finding: finding, Reader: sess.Reader.Name,
		Time: time.Now().UTC(), Source: "page"}
	added, err := s.db.LabelAudited(ctx, l, remote(r))
	if err != nil {
		s.fail(w, r, "answer", err)
		return
	}
	s.log.Info("answer stored", slog.String("instance", id), slog.String("label", value), slog.String("reader", sess.Reader.Name))
	s.answered(w, r, answerResult{Instance: id, Label: value, Finding: finding, Added: added})
}

func (s *Server) answered(w http.ResponseWriter, r *http.Request, res answerResult) {
	if wantsJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(res)
		return
	}
	http.Redirect(w, r, "/worklist", http.StatusSeeOther)
}

func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

// undo takes back the reader's latest answer about an instance, while no
// retraining has used it.
func (s *Server) undo(w http.ResponseWriter, r *http.Request) {
	id := r.PostFormValue("instance")
	l, err := s.db.UndoLabel(r.Context(), id, sessionOf(r).Reader.Name, remote(r))
	switch {
	case errors.Is(err, store.ErrTooLate):
		http.Error(w, "a retraining has used that answer since: it can no longer be undone", http.StatusConflict)
		return
	case errors.Is(err, sql.ErrNoRows):
		http.Error(w, "you have no answer about that film", http.StatusNotFound)
		return
	case err != nil:
		s.fail(w, r, "undo", err)
		return
	}
	if wantsJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(answerResult{Instance: id, Label: l.Value, Finding: l.Finding})
		return
	}
	http.Redirect(w, r, "/worklist", http.StatusSeeOther)
}
