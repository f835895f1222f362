// Package sentinel holds the domain types shared by Sentinel's parts: the
// instances it receives, the images it scores, the scores and reports it
// produces, the labels radiologists give and the queries it asks, and the
// model versions it runs.
//
// The subpackages each own one concern and talk to one another only through
// these types: dicomio decodes files into an Instance and an Image, detector
// turns an Image into a Score, store persists everything, and agent wires
// them into a running service. Nothing here does I/O.
package sentinel

import (
	"time"
)

// Format names the container an input file came in.
type Format string

// Input formats Sentinel accepts.
const (
	FormatDICOM Format = "dicom"
	FormatPNG   Format = "png"
	FormatJPEG  Format = "jpeg"
)

// Instance identifies one input image and where it came from. For DICOM
// files the identity is the SOP Instance UID; for PNG and JPEG research
// images, which carry no UIDs, it is derived from the content hash.
type Instance struct {
	// ID is the key Sentinel uses for the instance everywhere: the SOP
	// Instance UID for DICOM, "sha256:<hex>" for PNG and JPEG.
	ID                string
	SOPInstanceUID    string
	StudyInstanceUID  string
	SeriesInstanceUID string
	SOPClassUID       string
	Modality          string
	AccessionNumber   string
	TransferSyntaxUID string
	Format            Format
	// SourcePath is the file the instance was read from.
	SourcePath string
	// SHA256 is the hex digest of the file's bytes.
	SHA256 string
	// Rows and Columns are the stored image size before resampling.
	Rows, Columns int
	Frames        int
	Photometric   string
	// Placement is what lets a reader find the film in the PACS.
	Placement Placement
	// PatientKey stands for the patient without naming them: a keyed hash
	// of the Patient ID and its issuer, made where the file is read (see
	// dicomio.Options.PatientKey); "" when the file has no Patient ID or
	// nothing asked for a key. The Patient ID itself is never kept. The
	// learning loop keeps a patient's films on one side of its holdout.
	PatientKey string
}

// Placement holds the attributes of a DICOM instance that let a
// radiologist find and orient the film without another lookup: never a
// name, an ID or a birth date. Values are as stored in the file (DA, TM,
// CS and IS strings), empty when the file has none.
type Placement struct {
	AccessionNumber  string `json:"accession_number,omitempty"`
	StudyDate        string `json:"study_date,omitempty"`
	StudyTime        string `json:"study_time,omitempty"`
	ViewPosition     string `json:"view_position,omitempty"`
	Laterality       string `json:"laterality,omitempty"`
	BodyPartExamined string `json:"body_part_examined,omitempty"`
	SeriesNumber     string `json:"series_number,omitempty"`
	InstanceNumber   string `json:"instance_number,omitempty"`
}

// Image is a single-channel image ready for display or scoring: Pix holds
// Width*Height values in [0, 1], row by row, where 1 is bright (bone) as a
// radiologist sees it, whatever the file's photometric interpretation.
type Image struct {
	Width, Height int
	Pix           []float32
}

// NewImage returns a black image of the given size.
func NewImage(w, h int) Image {
	return Image{Width: w, Height: h, Pix: make([]float32, w*h)}
}

// At returns the value at column x, row y.
func (m Image) At(x, y int) float32 { return m.Pix[y*m.Width+x] }

// Decision is the detector's verdict on one image.
type Decision string

// Decisions a score can carry.
const (
	// DecisionNormal is a rule-out: at or below the normal limit, at an
	// operating point whose sensitivity the site's labelled holdout has
	// shown to be at least the configured bound. Without that evidence a
	// film below the threshold is DecisionNotFlagged.
	DecisionNormal Decision = "normal"
	// DecisionNotFlagged is a film not above the threshold, which claims
	// nothing more: it is not a rule-out.
	DecisionNotFlagged Decision = "not_flagged"
	DecisionAbnormal   Decision = "abnormal"
	DecisionUncertain  Decision = "uncertain"
	// DecisionOutOfDistribution is a film in scope by its header that
	// does not look like the normals learned, in any direction (exposure,
	// contrast, polarity, cropping, another kind of image): its score
	// means nothing and it is never taken as a normal.
	DecisionOutOfDistribution Decision = "out_of_distribution"
)

// Severity orders decisions from least to most concerning, so that a study
// can report its worst instance.
func (d Decision) Severity() int {
	switch d {
	case DecisionNormal:
		return 0
	case DecisionNotFlagged:
		return 1
	case DecisionUncertain:
		return 2
	case DecisionOutOfDistribution:
		// A film the model cannot judge needs a person before a film it
		// is unsure of: unlike the normals may well mean abnormal.
		return 3
	case DecisionAbnormal:
		return 4
	}
	return -1
}

// Below reports whether d says the film was not above the threshold
// (normal or not flagged).
func (d Decision) Below() bool { return d == DecisionNormal || d == DecisionNotFlagged }

// Score is what the detector says about one image.
type Score struct {
	// Value is the anomaly score: higher is less like the normals learned.
	Value float64
	// Threshold is the calibrated decision threshold the value is compared to.
	Threshold float64
	// NormalLimit, if set, is the value at or below which the decision is
	// normal; between it and Threshold the decision is uncertain. Nil when
	// the model calls normal anything at or below the threshold.
	NormalLimit *float64
	Decision    Decision
	// Reason says in words which rule made the decision.
	Reason string
	// Uncertainty is the epistemic uncertainty of Value, or nil when the
	// model cannot estimate one.
	Uncertainty *float64
	// Components holds the partial scores the value was made from, by name
	// (for example "reconstruction").
	Components map[string]float64
	// Appearance is the distribution check's measure of how unlike the
	// training normals the image looks, nil when the model has none.
	Appearance *Appearance
	// Heatmap, when not empty, is a per-pixel anomaly map at the model's
	// input size, scaled so that 1 is the most anomalous pixel expected.
	Heatmap Image
}

// Appearance is how far an image's appearance (exposure, contrast,
// texture, layout) lies from the training normals', in the units of the
// model's distribution check, and the limit above which it is out of
// distribution.
type Appearance struct {
	Deviation float64 `json:"deviation"`
	Limit     float64 `json:"limit"`
	// Unlike says why the image is out of distribution ("" when it is
	// not): the deviation above its limit, a rotation or a crop, or a
	// score far below every normal. Such a film is decided
	// out_of_distribution.
	Unlike string `json:"unlike,omitempty"`
}

// ModelInfo describes one trained model version.
type ModelInfo struct {
	Version   string    `json:"version"`
	Path      string    `json:"path,omitempty"`
	Kind      string    `json:"kind"`
	CreatedAt time.Time `json:"created_at"`
	InputSize int       `json:"input_size"`
	Threshold float64   `json:"threshold"`
	TargetFPR float64   `json:"target_fpr"`
	// TrainImages and CalibImages count the normals used to fit the model
	// and the held-out normals its threshold was set on.
	TrainImages int `json:"train_images"`
	CalibImages int `json:"calib_images"`
	// Fingerprint is a digest of the training images' identities.
	Fingerprint string             `json:"fingerprint"`
	Metrics     map[string]float64 `json:"metrics,omitempty"`
}

// Label is a reader's answer about one instance.
type Label struct {
	InstanceID string
	// Value is "normal" or "abnormal".
	Value   string
	Finding string
	Reader  string
	Time    time.Time
	Source  string
}

// Query states.
const (
	QueryOpen     = "open"
	QueryAnswered = "answered"
	QueryExpired  = "expired"
)

// Query is a case Sentinel asks radiologists about.
type Query struct {
	ID         int64
	InstanceID string
	Strategy   string
	Reason     string
	// Random says the case was drawn at random rather than chosen for
	// being informative (see learn.Pick.Random).
	Random    bool
	State     string
	CreatedAt time.Time
}

// TrainingRun records one training of a model.
type TrainingRun struct {
	ID           int64
	ModelVersion string
	StartedAt    time.Time
	FinishedAt   time.Time
	Images       int
	Status       string
	Metrics      map[string]float64
}
