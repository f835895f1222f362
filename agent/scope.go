package agent

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/dicomout"
)

// Scope says which images Sentinel scores: the films it was trained on
// and no others. A DICOM file outside it is valid, not broken: it is
// recorded as out of scope with its reason, and is not scored, reported,
// queued again or quarantined. The zero Scope scores everything (the
// agent's tests); the configuration's defaults are chest radiographs.
type Scope struct {
	// Enabled turns the gate on; the lists below apply only then.
	Enabled bool
	// Modalities, SOPClasses and Photometrics list the values accepted;
	// an empty list accepts any.
	Modalities   []string
	SOPClasses   []string
	Photometrics []string
	// BodyParts lists the Body Part Examined values accepted; a film
	// without one is accepted (many radiographs leave it out).
	BodyParts []string
	// ViewPositions lists the View Position values accepted; a film
	// without one is accepted.
	ViewPositions []string
	// MinSize is the smallest number of rows and of columns accepted.
	MinSize int
	// ResearchImages lets PNG and JPEG files, which carry no header to
	// check, be scored.
	ResearchImages bool
}

// scopeSkippable are the decode errors of a file whose header was read
// and that may still be out of scope: an out-of-scope object is recorded
// as such, whatever its pixel data.
func scopeSkippable(err error) bool {
	return err == nil || errors.Is(err, sentinel.ErrNoPixels) || errors.Is(err, sentinel.ErrUnsupported) ||
		errors.Is(err, sentinel.ErrUnsupportedTransferSyntax) || errors.Is(err, sentinel.ErrTooLarge)
}

// sopClassNames names the SOP classes a reason is likely to mention.
var sopClassNames = map[string]string{
	"1.2.840.10008.5.1.4.1.1.1":      "CR Image Storage",
	"1.2.840.10008.5.1.4.1.1.1.1":    "Digital X-Ray Image Storage - For Presentation",
	"1.2.840.10008.5.1.4.1.1.1.1.1":  "Digital X-Ray Image Storage - For Processing",
	"1.2.840.10008.5.1.4.1.1.7":      "Secondary Capture Image Storage",
	"1.2.840.10008.5.1.4.1.1.2":      "CT Image Storage",
	"1.2.840.10008.5.1.4.1.1.4":      "MR Image Storage",
	"1.2.840.10008.5.1.4.1.1.88.11":  "Basic Text SR",
	"1.2.840.10008.5.1.4.1.1.88.22":  "Enhanced SR",
	"1.2.840.10008.5.1.4.1.1.88.33":  "Comprehensive SR",
	"1.2.840.10008.5.1.4.1.1.11.1":   "Grayscale Softcopy Presentation State",
	"1.2.840.10008.5.1.4.1.1.104.1":  "Encapsulated PDF",
	"1.2.840.10008.5.1.4.1.1.481.1":  "RT Image Storage",
	"1.2.840.10008.5.1.4.1.1.1.2":    "Digital Mammography X-Ray Image Storage - For Presentation",
	"1.2.840.10008.5.1.4.1.1.12.1":   "X-Ray Angiographic Image Storage",
	"1.2.840.10008.5.1.4.1.1.6.1":    "Ultrasound Image Storage",
	"1.2.840.10008.5.1.4.1.1.128":    "Positron Emission Tomography Image Storage",
	"1.2.840.10008.5.1.4.1.1.20":     "Nuclear Medicine Image Storage",
	"1.2.840.10008.5.1.4.1.1.77.1.4": "VL Photographic Image Storage",
	"1.2.840.10008.5.1.4.1.1.88.59":  "Key Object Selection Document",
	"1.2.840.10008.5.1.4.1.1.66":     "Raw Data Storage",
	"1.2.840.10008.5.1.4.1.1.2.1":    "Enhanced CT Image Storage",
	"1.2.840.10008.5.1.4.1.1.4.1":    "Enhanced MR Image Storage",
	"1.2.840.10008.5.1.4.1.1.13.1.3": "Breast Tomosynthesis Image Storage",
	"1.2.840.10008.5.1.4.1.1.3.1":    "Ultrasound Multi-frame Image Storage",
	"1.2.840.10008.5.1.4.1.1.7.4":    "Multi-frame True Color Secondary Capture Image Storage",
	"1.2.840.10008.5.1.4.1.1.7.2":    "Multi-frame Grayscale Byte Secondary Capture Image Storage",
	"1.2.840.10008.5.1.4.1.1.7.3":    "Multi-frame Grayscale Word Secondary Capture Image Storage",
	"1.2.840.10008.5.1.4.1.1.1.3":    "Digital Intra-Oral X-Ray Image Storage - For Presentation",
	"1.2.840.10008.5.1.4.1.1.88.34":  "Comprehensive 3D SR",
	"1.2.840.10008.5.1.4.1.1.11.2":   "Color Softcopy Presentation State",
	"1.2.840.10008.5.1.4.1.1.104.2":  "Encapsulated CDA",
	"1.2.840.10008.5.1.4.1.1.88.67":  "X-Ray Radiation Dose SR",
	"1.2.840.10008.5.1.4.1.1.481.2":  "RT Dose Storage",
	"1.2.840.10008.5.1.4.1.1.66.4":   "Segmentation Storage",
	"1.2.840.10008.5.1.4.1.1.12.2":   "X-Ray Radiofluoroscopic Image Storage",
	"1.2.840.10008.5.1.4.1.1.6.2":    "Enhanced US Volume Storage",
	"1.2.840.10008.5.1.4.1.1.130":    "Enhanced PET Image Storage",
	"1.2.840.10008.5.1.4.1.1.77.1.6": "VL Whole Slide Microscopy Image Storage",
	"1.2.840.10008.5.1.4.1.1.88.71":  "Acquisition Context SR",
}

// sopClassName returns a SOP class's name, or its UID.
func sopClassName(uid string) string {
	if n, ok := sopClassNames[uid]; ok {
		return n
	}
	return uid
}

// outOfScope returns why the instance read from path is not one Sentinel
// scores, or "" when it is. decodeErr is the decoder's error (nil, or one
// that left the header readable). ownOutput reports whether the file is
// one of Sentinel's own SR or Secondary Capture outputs come back from
// the PACS.
func (s Scope) outOfScope(inst sentinel.Instance, path string, decodeErr error) string {
	if inst.Format != sentinel.FormatDICOM {
		if s.Enabled && !s.ResearchImages {
			return fmt.Sprintf("a %s research image; scope.research_images is off", strings.ToUpper(string(inst.Format)))
		}
		return ""
	}
	if isOwnOutputClass(inst.SOPClassUID) {
		if src, err := dicomout.ReadSource(path); err == nil && dicomout.IsOwnOutput(src) {
			return "one of Sentinel's own outputs (" + sopClassName(inst.SOPClassUID) + "), not scored"
		}
	}
	if errors.Is(decodeErr, sentinel.ErrNoPixels) {
		// An object without an image (a report, a presentation state)
		// is never scored, whatever the settings.
		return "no image to score (" + sopClassName(inst.SOPClassUID) + ")"
	}
	if !s.Enabled {
		return ""
	}
	in := func(list []string, v string) bool {
		return len(list) == 0 || slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, v) })
	}
	p := inst.Placement
	switch {
	case !in(s.SOPClasses, inst.SOPClassUID):
		return fmt.Sprintf("SOP class %s is not in scope", sopClassName(inst.SOPClassUID))
	case !in(s.Modalities, inst.Modality):
		return fmt.Sprintf("modality %s is not in scope (%s)", orNone(inst.Modality), strings.Join(s.Modalities, ", "))
	case p.BodyPartExamined != "" && !in(s.BodyParts, p.BodyPartExamined):
		return fmt.Sprintf("body part %s is not in scope (%s)", p.BodyPartExamined, strings.Join(s.BodyParts, ", "))
	case p.ViewPosition != "" && !in(s.ViewPositions, p.ViewPosition):
		return fmt.Sprintf("view position %s is not in scope (%s)", p.ViewPosition, strings.Join(s.ViewPositions, ", "))
	case inst.Photometric != "" && !in(s.Photometrics, inst.Photometric):
		return fmt.Sprintf("photometric interpretation %s is not in scope (%s)", inst.Photometric, strings.Join(s.Photometrics, ", "))
	case decodeErr == nil && (inst.Rows < s.MinSize || inst.Columns < s.MinSize):
		return fmt.Sprintf("%d×%d pixels, smaller than the %d in scope", inst.Columns, inst.Rows, s.MinSize)
	case inst.Frames > 1:
		return fmt.Sprintf("%d frames: a radiograph has one", inst.Frames)
	}
	return ""
}

// isOwnOutputClass reports whether a SOP class is one Sentinel writes.
func isOwnOutputClass(uid string) bool {
	return uid == dicomout.SOPClassComprehensiveSR || uid == dicomout.SOPClassSecondaryCapture
}
