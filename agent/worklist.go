package agent

import (
	"context"
	"encoding/csv"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/learn"
	"github.com/sentinel-pacs/sentinel/store"
)

// WorklistColumns are the worklist's CSV columns, in order; the JSON form
// (WorklistItem) has the same names.
var WorklistColumns = []string{"query_id", "instance_id", "file", "sop_instance_uid", "study_instance_uid",
	"accession_number", "score", "threshold", "decision", "uncertainty", "model_version", "heatmap", "strategy", "reason", "asked_at"}

// WorklistItem is one open query as a worklist gives it to radiologists:
// what identifies the case in the PACS, what the model made of it and why
// it was asked.
type WorklistItem struct {
	QueryID          int64    `json:"query_id"`
	InstanceID       string   `json:"instance_id"`
	File             string   `json:"file"`
	SOPInstanceUID   string   `json:"sop_instance_uid"`
	StudyInstanceUID string   `json:"study_instance_uid"`
	AccessionNumber  string   `json:"accession_number"`
	Score            float64  `json:"score"`
	Threshold        float64  `json:"threshold"`
	Decision         string   `json:"decision"`
	Uncertainty      *float64 `json:"uncertainty"`
	ModelVersion     string   `json:"model_version"`
	Heatmap          string   `json:"heatmap"`
	Strategy         string   `json:"strategy"`
	Reason           string   `json:"reason"`
	AskedAt          string   `json:"asked_at"`
}

// Worklist turns the store's open queries into worklist items. Each
// reason is restated with the item's own score and threshold (see
// learn.RestateReason), so that its words match the numbers beside it.
func Worklist(rows []store.WorklistRow) []WorklistItem {
	items := make([]WorklistItem, len(rows))
	for i, r := range rows {
		reason := r.Reason
		if r.ModelVersion != "" {
			reason = learn.RestateReason(reason, r.Score, r.Threshold)
		}
		items[i] = WorklistItem{r.QueryID, r.InstanceID, r.SourcePath, r.SOPInstanceUID, r.StudyInstanceUID, r.AccessionNumber,
			r.Score, r.Threshold, r.Decision, r.Uncertainty, r.ModelVersion, r.HeatmapPath, r.Strategy, reason,
			r.CreatedAt.UTC().Format(time.RFC3339)}
	}
	return items
}

// WriteWorklistCSV writes the items as CSV with a WorklistColumns header.
func WriteWorklistCSV(w io.Writer, items []WorklistItem) error {
	cw := csv.NewWriter(w)
	cw.Write(WorklistColumns)
	for _, it := range items {
		u := ""
		if it.Uncertainty != nil {
			u = strconv.FormatFloat(*it.Uncertainty, 'g', 6, 64)
		}
		cw.Write([]string{strconv.FormatInt(it.QueryID, 10), it.InstanceID, it.File, it.SOPInstanceUID, it.StudyInstanceUID,
			it.AccessionNumber, strconv.FormatFloat(it.Score, 'g', 6, 64), strconv.FormatFloat(it.Threshold, 'g', 6, 64),
			it.Decision, u, it.ModelVersion, it.Heatmap, it.Strategy, it.Reason, it.AskedAt})
	}
	cw.Flush()
	return cw.Error()
}

// StudyWorklistColumns are the study worklist's CSV columns, in order: one
// row per study, as a RIS lists its work by accession number. query_ids and
// sop_instance_uids name the films asked about, space-separated; reasons
// gives why each was asked, separated by " | ".
var StudyWorklistColumns = []string{"study_instance_uid", "accession_number", "films", "asked", "query_ids",
	"sop_instance_uids", "max_score", "decision", "reasons", "asked_at"}

// StudyWorkItem is one study on the worklist: the films of it the loop
// asks about, and every film of it the workspace holds, as last reported,
// so that the reader sees the whole study. A film without a study (a PNG
// or JPEG research image) is a study of its own, with no study UID.
type StudyWorkItem struct {
	StudyInstanceUID string         `json:"study_instance_uid"`
	AccessionNumber  string         `json:"accession_number"`
	Asked            []WorklistItem `json:"asked"`
	Films            []StudyFilm    `json:"films"`
	// MaxScore and Decision are the highest score and the worst decision
	// of the study's films, as last reported.
	MaxScore float64 `json:"max_score"`
	Decision string  `json:"decision"`
	// AskedAt is when the first of its films was asked about.
	AskedAt string `json:"asked_at"`
}

// StudyFilm is one film of a study on the worklist, as last reported.
type StudyFilm struct {
	SOPInstanceUID    string  `json:"sop_instance_uid"`
	SeriesInstanceUID string  `json:"series_instance_uid"`
	File              string  `json:"file"`
	Score             float64 `json:"score"`
	Threshold         float64 `json:"threshold"`
	Decision          string  `json:"decision"`
	ModelVersion      string  `json:"model_version"`
	Report            string  `json:"report"`
}

// StudyWorklist groups worklist items by study, in the order their first
// film was asked about, and lists every film of each study.
func StudyWorklist(ctx context.Context, db *store.DB, items []WorklistItem) ([]StudyWorkItem, error) {
	var out []StudyWorkItem
	at := map[string]int{}
	for _, it := range items {
		key := it.StudyInstanceUID
		if key == "" {
			key = "instance:" + it.InstanceID
		}
		i, ok := at[key]
		if !ok {
			i = len(out)
			at[key] = i
			out = append(out, StudyWorkItem{StudyInstanceUID: it.StudyInstanceUID, AccessionNumber: it.AccessionNumber, AskedAt: it.AskedAt})
		}
		out[i].Asked = append(out[i].Asked, it)
	}
	for i := range out {
		s := &out[i]
		if s.StudyInstanceUID == "" {
			it := s.Asked[0]
			report, _, _, err := db.ReportPaths(ctx, it.InstanceID, 0)
			if err != nil {
				return nil, err
			}
			s.Films = []StudyFilm{{SOPInstanceUID: it.SOPInstanceUID, File: it.File, Score: it.Score, Threshold: it.Threshold,
				Decision: it.Decision, ModelVersion: it.ModelVersion, Report: report}}
		} else {
			rows, err := db.StudyInstances(ctx, s.StudyInstanceUID)
			if err != nil {
				return nil, err
			}
			for _, r := range rows {
				s.Films = append(s.Films, StudyFilm{SOPInstanceUID: r.SOPInstanceUID, SeriesInstanceUID: r.SeriesInstanceUID,
					File: r.SourceFile, Score: r.Score, Threshold: r.Threshold, Decision: r.Decision,
					ModelVersion: r.ModelVersion, Report: r.ReportPath})
			}
		}
		for j, f := range s.Films {
			if j == 0 || f.Score > s.MaxScore {
				s.MaxScore = f.Score
			}
			if j == 0 || sentinel.Decision(f.Decision).Severity() > sentinel.Decision(s.Decision).Severity() {
				s.Decision = f.Decision
			}
		}
	}
	return out, nil
}

// WriteStudyWorklistCSV writes the studies as CSV with a
// StudyWorklistColumns header.
func WriteStudyWorklistCSV(w io.Writer, studies []StudyWorkItem) error {
	cw := csv.NewWriter(w)
	cw.Write(StudyWorklistColumns)
	for _, s := range studies {
		var ids, uids, reasons []string
		for _, it := range s.Asked {
			ids = append(ids, strconv.FormatInt(it.QueryID, 10))
			uids = append(uids, it.SOPInstanceUID)
			reasons = append(reasons, it.Reason)
		}
		cw.Write([]string{s.StudyInstanceUID, s.AccessionNumber, strconv.Itoa(len(s.Films)), strconv.Itoa(len(s.Asked)),
			strings.Join(ids, " "), strings.Join(uids, " "), strconv.FormatFloat(s.MaxScore, 'g', 6, 64), s.Decision,
			strings.Join(reasons, " | "), s.AskedAt})
	}
	cw.Flush()
	return cw.Error()
}
