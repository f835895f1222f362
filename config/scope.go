package config

import (
	"fmt"
	"strings"
)

// Scope says which images Sentinel scores. A DICOM file outside it is
// recorded as out of scope with its reason and is not scored, reported,
// queued again or quarantined.
type Scope struct {
	// Enabled turns the gate on.
	Enabled bool `toml:"enabled"`
	// Modalities lists the Modality values scored.
	Modalities []string `toml:"modalities"`
	// BodyParts lists the Body Part Examined values scored; a film
	// without one is scored.
	BodyParts []string `toml:"body_parts"`
	// ViewPositions lists the View Position values scored; a film
	// without one is scored.
	ViewPositions []string `toml:"view_positions"`
	// SOPClasses lists the SOP Class UIDs scored.
	SOPClasses []string `toml:"sop_classes"`
	// Photometrics lists the Photometric Interpretations scored.
	Photometrics []string `toml:"photometric_interpretations"`
	// MinSize is the least number of rows and of columns scored.
	MinSize int `toml:"min_size"`
	// ResearchImages lets PNG and JPEG files, which carry no header to
	// check, be scored.
	ResearchImages bool `toml:"research_images"`
}

// DefaultScope is chest radiographs: CR and DX, chest or unstated, PA or
// AP or unstated, greyscale, at least 256 pixels a side.
func DefaultScope() Scope {
	return Scope{
		Enabled:       true,
		Modalities:    []string{"CR", "DX"},
		BodyParts:     []string{"CHEST"},
		ViewPositions: []string{"PA", "AP"},
		SOPClasses: []string{
			"1.2.840.10008.5.1.4.1.1.1",     // CR Image Storage
			"1.2.840.10008.5.1.4.1.1.1.1",   // Digital X-Ray Image Storage - For Presentation
			"1.2.840.10008.5.1.4.1.1.1.1.1", // Digital X-Ray Image Storage - For Processing
			"1.2.840.10008.5.1.4.1.1.7",     // Secondary Capture (digitised films), still CR or DX by modality
		},
		Photometrics:   []string{"MONOCHROME1", "MONOCHROME2"},
		MinSize:        256,
		ResearchImages: true,
	}
}

// Decisions says when a film may be called "normal".
type Decisions struct {
	// NormalSensitivity is the least rule-out sensitivity, at the lower
	// end of its 95% interval on the frozen labelled holdout, that allows
	// a "normal" decision; below it a film under the threshold is
	// "not_flagged". Above 1 never allows one.
	NormalSensitivity float64 `toml:"normal_sensitivity"`
	// MinPerClass is the least number of labelled normal and abnormal
	// holdout cases before "normal" is allowed at all.
	MinPerClass int `toml:"min_per_class"`
}

// DefaultDecisions allows "normal" at a rule-out sensitivity of 0.98 over
// at least 50 labelled cases of each class.
func DefaultDecisions() Decisions {
	return Decisions{NormalSensitivity: 0.98, MinPerClass: 50}
}

// Reports sets what reports say about their source.
type Reports struct {
	// SourceFile is "relative" (the path below its watched folder) or
	// "none" (left out: PACS exports often name files after the patient).
	SourceFile string `toml:"source_file"`
}

func (s Scope) validate() error {
	if s.MinSize < 0 {
		return invalid("scope.min_size", "must not be negative, got %d", s.MinSize)
	}
	for _, m := range s.Modalities {
		if strings.TrimSpace(m) == "" {
			return invalid("scope.modalities", "must not hold an empty value")
		}
	}
	return nil
}

func (d Decisions) validate() error {
	switch {
	case !(d.NormalSensitivity > 0):
		return invalid("decisions.normal_sensitivity", "must be above 0, got %g", d.NormalSensitivity)
	case d.MinPerClass < 1:
		return invalid("decisions.min_per_class", "must be at least 1, got %d", d.MinPerClass)
	}
	return nil
}

func (r Reports) validate() error {
	switch r.SourceFile {
	case "relative", "none":
		return nil
	}
	return invalid("reports.source_file", "must be relative or none, got %q", r.SourceFile)
}

// invalid is a *ValidationError for key.
func invalid(key, format string, args ...any) error {
	return &ValidationError{Key: key, Reason: fmt.Sprintf(format, args...)}
}
