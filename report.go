package sentinel

import "time"

// ReportSchemaVersion is the version of the instance report's JSON layout.
// It changes whenever a key is renamed or removed or its meaning changes;
// adding a key does not change it.
const ReportSchemaVersion = 1

// Timings records how long each stage of processing one instance took.
type Timings struct {
	DecodeMS float64 `json:"decode_ms"`
	ScoreMS  float64 `json:"score_ms"`
	TotalMS  float64 `json:"total_ms"`
}

// Report is the structured result for one instance, written as JSON beside
// the reports folder's heatmap PNG. Its keys are documented in the README.
type Report struct {
	SchemaVersion     int                `json:"schema_version"`
	InstanceID        string             `json:"instance_id"`
	SOPInstanceUID    string             `json:"sop_instance_uid"`
	StudyInstanceUID  string             `json:"study_instance_uid"`
	SeriesInstanceUID string             `json:"series_instance_uid"`
	Modality          string             `json:"modality,omitempty"`
	SourceFile        string             `json:"source_file"`
	SHA256            string             `json:"sha256"`
	ModelVersion      string             `json:"model_version"`
	Score             float64            `json:"score"`
	Threshold         float64            `json:"threshold"`
	NormalLimit       *float64           `json:"normal_limit,omitempty"`
	Decision          Decision           `json:"decision"`
	DecisionReason    string             `json:"decision_reason,omitempty"`
	Uncertainty       *float64           `json:"uncertainty"`
	Components        map[string]float64 `json:"components,omitempty"`
	Heatmap           string             `json:"heatmap,omitempty"`
	Timings           Timings            `json:"timings"`
	CreatedAt         time.Time          `json:"created_at"`
	// Revision is 1 for an instance's first report. When a newer model in
	// use decides otherwise, the report is issued again as the next
	// revision, which names the one it supersedes and says why.
	Revision       int        `json:"revision"`
	Supersedes     *ReportRef `json:"supersedes,omitempty"`
	RevisionReason string     `json:"revision_reason,omitempty"`
}

// ReportRef names an earlier revision of an instance's report and what it
// said.
type ReportRef struct {
	Revision     int       `json:"revision"`
	Report       string    `json:"report"`
	ModelVersion string    `json:"model_version"`
	Score        float64   `json:"score"`
	Threshold    float64   `json:"threshold"`
	Decision     Decision  `json:"decision"`
	CreatedAt    time.Time `json:"created_at"`
}

// StudyReportSchemaVersion is the version of the study report's JSON layout.
const StudyReportSchemaVersion = 1

// StudyReport aggregates the instance reports of one study. A study is
// reported once it has been quiet for a while, and again, as a new revision,
// when late instances arrive.
type StudyReport struct {
	SchemaVersion    int       `json:"schema_version"`
	StudyInstanceUID string    `json:"study_instance_uid"`
	Revision         int       `json:"revision"`
	InstanceCount    int       `json:"instance_count"`
	MaxScore         float64   `json:"max_score"`
	Decision         Decision  `json:"decision"`
	CreatedAt        time.Time `json:"created_at"`
	// Instances lists every scored instance of the study, in the order they
	// were scored.
	Instances []StudyInstanceRow `json:"instances"`
	// PreviousDecision and Changes say, from the second revision on, what
	// the previous revision decided and what changed since: instances
	// added (late arrivals) and instance reports revised by a newer model.
	PreviousDecision Decision      `json:"previous_decision,omitempty"`
	Changes          []StudyChange `json:"changes,omitempty"`
}

// StudyChange is one instance that a study report's revision adds, or
// reports with another decision than the previous revision did.
type StudyChange struct {
	SOPInstanceUID string `json:"sop_instance_uid"`
	// Change is "added" or "revised".
	Change       string   `json:"change"`
	From         Decision `json:"from,omitempty"`
	To           Decision `json:"to"`
	ModelVersion string   `json:"model_version"`
}

// StudyInstanceRow is one instance in a study report.
type StudyInstanceRow struct {
	SOPInstanceUID    string   `json:"sop_instance_uid"`
	SeriesInstanceUID string   `json:"series_instance_uid"`
	SourceFile        string   `json:"source_file"`
	ModelVersion      string   `json:"model_version"`
	Score             float64  `json:"score"`
	Threshold         float64  `json:"threshold"`
	Decision          Decision `json:"decision"`
	Uncertainty       *float64 `json:"uncertainty"`
	Report            string   `json:"report"`
}
