package dicomout

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/dicomio"
)

// SecondaryCapture returns a Secondary Capture image of the film with the
// heatmap over it, filed in a new series of the source's study (one
// series per source series and model version).
//
// film is the source image as displayed, values in [0,1] with 1 bright,
// at the size it is to be shown (a film longer than MaxSide on a side is
// shrunk to fit). heat is a level map from HeatLevels at any size (1 is the
// threshold's level of evidence); it is resampled smoothly to the film's
// size, and levels above heatThreshold (DefaultHeatThreshold when it is not
// strictly between 0 and 1) are blended over the film from translucent
// yellow to orange at the threshold's level, and red only above it; levels
// at or below heatThreshold leave the film untouched, and a film not above
// its threshold shows no red. A colour legend with its scale
// and the threshold marked, the score, threshold, decision and model
// version, and the words NOT FOR DIAGNOSTIC USE are burned in, at a size
// that grows with the film's.
//
// The image is RGB, 8 bits a sample, interleaved, Conversion Type WSD
// (workstation), Image Type DERIVED\SECONDARY, Burned In Annotation YES,
// and references the source image in the Source Image Sequence. Its SOP
// Instance UID is derived from the source image, the model version,
// rep.Revision and the heat threshold: the same inputs give the same UID.
func SecondaryCapture(src Source, rep sentinel.Report, film, heat sentinel.Image, heatThreshold float64, now time.Time) (Object, error) {
	obj, err := secondaryCapture(src, rep, film, heat, heatThreshold, now)
	if err != nil {
		return Object{}, fmt.Errorf("dicomout: heatmap of %s: %w", src.SOPInstanceUID, err)
	}
	return obj, nil
}

func secondaryCapture(src Source, rep sentinel.Report, film, heat sentinel.Image, heatThreshold float64, now time.Time) (Object, error) {
	if err := checkInputs(src, rep); err != nil {
		return Object{}, err
	}
	if err := checkImage("film", film); err != nil {
		return Object{}, err
	}
	if err := checkImage("heatmap", heat); err != nil {
		return Object{}, err
	}
	finding, err := decisionCode(rep.Decision)
	if err != nil {
		return Object{}, err
	}
	t := heatThresholdOrDefault(heatThreshold)
	version := clean(rep.ModelVersion, maxLO)

	if w, h := fitSize(film.Width, film.Height); w != film.Width || h != film.Height {
		film = dicomio.Resample(film, w, h)
	}
	img := compose(film, heat, t)
	annotate(img, t, summary(rep, finding, version))
	cols, rows := img.Bounds().Dx(), img.Bounds().Dy()

	sop := derivedUID("instance", kindHeatmap, src.SOPInstanceUID, rep.ModelVersion,
		strconv.Itoa(revision(rep)), strconv.FormatFloat(t, 'g', -1, 64))
	series := seriesUID(kindHeatmap, src, rep.ModelVersion)
	content := contentTime(rep, now)
	hdr := header{src: src, now: now, sopClass: SOPClassSecondaryCapture, sopInstance: sop,
		series: series, seriesNum: heatmapSeriesNumber, seriesDesc: heatmapSeriesDescription,
		modality: "OT", version: version}
	d := newDataset()
	hdr.write(d)

	// General Series (C.7.3.1) beyond what header writes. Laterality is
	// required (type 2C) for a paired body part; when the source names
	// none, that cannot be ruled out, so it is written empty.
	if src.Laterality != "" || src.BodyPartExamined == "" {
		d.text(0x00200060, "CS", src.Laterality)
	}
	d.textIf(0x00180015, "CS", src.BodyPartExamined)

	// SC Equipment (C.8.6.1).
	d.text(0x00080064, "CS", "WSD")
	d.text(0x00181016, "LO", Manufacturer)
	d.text(0x00181018, "LO", ModelName)
	d.text(0x00181019, "LO", version)

	// General Image (C.7.6.1).
	d.text(0x00200013, "IS", instanceNumber(src))
	d.text(0x00200020, "CS", src.PatientOrientation)
	d.text(0x00080023, "DA", dicomDate(content))
	d.text(0x00080033, "TM", dicomTime(content))
	d.text(0x00080008, "CS", "DERIVED", "SECONDARY")
	d.text(0x00082111, "ST", clean(fmt.Sprintf(
		"Sentinel anomaly heatmap (model %s) over the source image: evidence above %.2f of the threshold's in yellow to orange, above the threshold in red; "+
			"score, threshold, decision and model burned in. %s", version, t, Disclaimer), maxST))
	ref := newDataset()
	ref.uid(0x00081150, src.SOPClassUID)
	ref.uid(0x00081155, src.SOPInstanceUID)
	ref.seq(0x0040A170, codeSourceForProcessing.item())
	d.seq(0x00082112, ref)
	d.text(0x00280301, "CS", "YES")

	// SC Image (C.8.6.2).
	d.text(0x00181012, "DA", dicomDate(now))
	d.text(0x00181014, "TM", dicomTime(now))

	// Image Pixel (C.7.6.3).
	d.us(0x00280002, 3)
	d.text(0x00280004, "CS", "RGB")
	d.us(0x00280006, 0)
	d.us(0x00280010, uint16(rows))
	d.us(0x00280011, uint16(cols))
	d.us(0x00280100, 8)
	d.us(0x00280101, 8)
	d.us(0x00280102, 7)
	d.us(0x00280103, 0)
	d.binary(0x7FE00010, "OB", rgbBytes(img))

	b, err := part10(SOPClassSecondaryCapture, sop, d)
	if err != nil {
		return Object{}, err
	}
	return Object{SOPClassUID: SOPClassSecondaryCapture, SOPInstanceUID: sop,
		SeriesInstanceUID: series, StudyInstanceUID: src.StudyInstanceUID, Bytes: b}, nil
}

// summary returns the lines of the burned-in text block.
func summary(rep sentinel.Report, finding code, version string) []string {
	row := func(label, value string) string { return fmt.Sprintf("%-12s%s", label, value) }
	lines := []string{row("Score", number(rep.Score)), row("Threshold", number(rep.Threshold))}
	if rep.Uncertainty != nil {
		lines = append(lines, row("Uncertainty", number(*rep.Uncertainty)))
	}
	return append(lines,
		row("Decision", strings.ToLower(finding.meaning)),
		row("Model", clean(version, 24)),
		"Sentinel: a triage aid",
	)
}

// number formats a score for reading: four significant digits.
func number(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }
