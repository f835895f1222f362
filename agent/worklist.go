package agent

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"strconv"
	"time"

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

// Worklist turns the store's open queries into worklist items.
func Worklist(rows []store.WorklistRow) []WorklistItem {
	items := make([]WorklistItem, len(rows))
	for i, r := range rows {
		items[i] = WorklistItem{r.QueryID, r.InstanceID, r.SourcePath, r.SOPInstanceUID, r.StudyInstanceUID, r.AccessionNumber,
			r.Score, r.Threshold, r.Decision, r.Uncertainty, r.ModelVersion, r.HeatmapPath, r.Strategy, r.Reason,
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

// WriteWorklistJSON writes the items as an indented JSON array.
func WriteWorklistJSON(w io.Writer, items []WorklistItem) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(items)
}
