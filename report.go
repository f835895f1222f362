package sentinel

import "time"

// ReportSchemaVersion is the version of the instance report's JSON layout.
// It changes whenever a key is renamed or removed or its meaning changes;
// adding a key does not change it. Version 2: decisions below the
// threshold are "not_flagged" unless the labelled evidence allows
// "normal"; "out_of_distribution" is new; source_file is relative to its
// watched folder (or absent); the placement keys, intended_use and
// operating_point are new (docs/report-schema.md).
const ReportSchemaVersion = 2

// IntendedUse is the statement every report carries.
const IntendedUse = "A triage aid that flags chest radiographs unlike the normals it has learned; not for diagnosis, and not a rule-out unless the decision is \"normal\"."

// OperatingPoint is what the frozen labelled holdout last showed about a
// model's decision threshold and normal limit: the evidence behind a
// report's decision.
type OperatingPoint struct {
	ModelVersion string `json:"model_version"`
	// Normals and Abnormals count the holdout's labelled cases.
	Normals   int `json:"holdout_normals"`
	Abnormals int `json:"holdout_abnormals"`
	// Sensitivity is the share of abnormal holdout films flagged (above
	// the threshold), Specificity the share of normal ones not flagged,
	// each with its 95% Wilson interval.
	Sensitivity   float64    `json:"sensitivity"`
	SensitivityCI [2]float64 `json:"sensitivity_ci95"`
	Specificity   float64    `json:"specificity"`
	SpecificityCI [2]float64 `json:"specificity_ci95"`
	// NormalSensitivity is the share of abnormal holdout films NOT called
	// normal (above the normal limit): the sensitivity of "normal" as a
	// rule-out, with its interval. NormalAllowed says whether its lower
	// bound reached the configured bound with enough cases of each class.
	NormalSensitivity   float64    `json:"normal_sensitivity"`
	NormalSensitivityCI [2]float64 `json:"normal_sensitivity_ci95"`
	NormalAllowed       bool       `json:"normal_allowed"`
	MeasuredAt          time.Time  `json:"measured_at"`
}

// Timings records how long each stage of processing one instance took.
type Timings struct {
	DecodeMS float64 `json:"decode_ms"`
	ScoreMS  float64 `json:"score_ms"`
	TotalMS  float64 `json:"total_ms"`
}

// Report is the structured result for one instance, written as JSON beside
// the reports folder's heatmap PNG. Its keys are documented in the README.
type Report struct {
	SchemaVersion     int    `json:"schema_version"`
	InstanceID        string `json:"instance_id"`
	SOPInstanceUID    string `json:"sop_instance_uid"`
	StudyInstanceUID  string `json:"study_instance_uid"`
	SeriesInstanceUID string `json:"series_instance_uid"`
	Modality          string `json:"modality,omitempty"`
	// Placement's keys (accession number, study date and time, view,
	// laterality, body part, series and instance numbers) sit at the top
	// level of the JSON.
	Placement
	// SourceFile is the file's path relative to its watched folder, or
	// absent when reports.source_file is off.
	SourceFile     string   `json:"source_file,omitempty"`
	SHA256         string   `json:"sha256"`
	ModelVersion   string   `json:"model_version"`
	Score          float64  `json:"score"`
	Threshold      float64  `json:"threshold"`
	NormalLimit    *float64 `json:"normal_limit,omitempty"`
	Decision       Decision `json:"decision"`
	DecisionReason string   `json:"decision_reason,omitempty"`
	IntendedUse    string   `json:"intended_use"`
	// OperatingPoint is the evidence behind the decision, once the
	// labelled holdout has measured the model; absent before.
	OperatingPoint *OperatingPoint `json:"operating_point,omitempty"`
	Uncertainty    *float64        `json:"uncertainty"`
	// Appearance is the distribution check's deviation and limit.
	Appearance *Appearance        `json:"appearance,omitempty"`
	Components map[string]float64 `json:"components,omitempty"`
	Heatmap    string             `json:"heatmap,omitempty"`
	Timings    Timings            `json:"timings"`
	CreatedAt  time.Time          `json:"created_at"`
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

// StudyReportSchemaVersion is the version of the study report's JSON
// layout. Version 2: the decisions of instance schema 2, and source_file
// relative to its watched folder.
const StudyReportSchemaVersion = 2

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
	SourceFile        string   `json:"source_file,omitempty"`
	ModelVersion      string   `json:"model_version"`
	Score             float64  `json:"score"`
	Threshold         float64  `json:"threshold"`
	Decision          Decision `json:"decision"`
	Uncertainty       *float64 `json:"uncertainty"`
	Report            string   `json:"report"`
}
