// Package learn holds the decisions of Sentinel's learning loop: which cases
// to ask radiologists about (query strategies), which unlabelled cases may
// join the normal set without anyone (admission gates), which label counts
// when readers disagree, which cases form the frozen holdout and which train,
// and whether a retrained model may replace the current one.
//
// It is pure logic over detector outputs (scores, uncertainties,
// embeddings) and labels. It does no I/O, imports neither the detector nor
// the store, and never trains a model: storage and training come in through
// small interfaces and plain values from the agent.
package learn

import "github.com/sentinel-pacs/sentinel"

// Case is one instance as the learning loop sees it: what the current model
// says about it and where it sits among the others.
type Case struct {
	InstanceID string
	// Score is the anomaly score (higher is less normal) and Threshold the
	// decision threshold it is compared with, in the same units.
	Score     float64
	Threshold float64
	// Uncertainty is the detector's epistemic uncertainty (SWAG spread),
	// nil when the model gives none.
	Uncertainty *float64
	// OutOfDistribution marks a film the detector found unlike its
	// normals in any direction: it is never admitted as a normal, and
	// never asked about as one.
	OutOfDistribution bool
	// Embedding places the case in a feature space where near-identical
	// images are close; see Embedder.
	Embedding []float32
	// Group is the patient the case belongs to (or its study when the
	// patient is unknown); "" is a group of its own. Select asks about one
	// film of a group at a time: a radiologist answers for the patient,
	// and a second film of the same patient in a round mostly asks the
	// same question again.
	Group string
	// HeadLogit is the supervised head's logit for the case (positive:
	// abnormal), nil when the model in use has no head it trusts (no
	// labels yet, or a head weighed at zero). Admission's head gate reads it.
	HeadLogit *float64
}

// Embedder maps an image to a feature vector in which near-identical images
// are close. The diverse strategy and the supervised head use it. Thumbnail
// is a cheap stand-in until the detector exposes its own embedding.
type Embedder interface {
	Embed(img sentinel.Image) []float32
}
