package dicomout

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sentinel-pacs/sentinel"
)

// SOP Classes of the outputs (PS3.4 B.5).
const (
	SOPClassComprehensiveSR  = "1.2.840.10008.5.1.4.1.1.88.33"
	SOPClassSecondaryCapture = "1.2.840.10008.5.1.4.1.1.7"
)

// Equipment identity written into every output, by which IsOwnOutput
// recognises them.
const (
	Manufacturer = "Sentinel"
	ModelName    = "Sentinel anomaly detector"
)

// Disclaimer is the sentence every output carries: as a TEXT item of the
// report, and burned into the heatmap.
const Disclaimer = "Not for diagnostic use; a triage aid."

// Series of the outputs. The numbers are fixed so that a PACS sorts
// Sentinel's series after the modality's; they need not be unique.
const (
	reportSeriesDescription  = "Sentinel report"
	heatmapSeriesDescription = "Sentinel heatmap"
	reportSeriesNumber       = "9001"
	heatmapSeriesNumber      = "9002"
)

// Kinds of output, part of every UID derived for one.
const (
	kindReport  = "sr"
	kindHeatmap = "sc"
)

// seriesUID returns the series of the outputs of one kind made by one
// model version for the images of one source series. A series never mixes
// model versions, whose equipment attributes (Software Versions) differ.
func seriesUID(kind string, src Source, modelVersion string) string {
	return derivedUID("series", kind, src.StudyInstanceUID, src.SeriesInstanceUID, modelVersion)
}

// instanceUID returns the SOP Instance UID of an output: the same source
// image, model version, revision and kind always give the same UID, so
// that an output made again after a crash is a duplicate of the one sent,
// not a second object.
func instanceUID(kind string, src Source, modelVersion string, revision int) string {
	return derivedUID("instance", kind, src.SOPInstanceUID, modelVersion, strconv.Itoa(revision))
}

// ReportReference returns the reference of the structured report that
// StructuredReport makes for src with a report of the given model version
// and revision. Its UIDs are derived, not stored, so the predecessor of a
// revised report is ReportReference(src, rep.Supersedes.ModelVersion,
// rep.Supersedes.Revision), as long as the superseded revision's report
// was made by this package.
func ReportReference(src Source, modelVersion string, revision int) Reference {
	revision = max(revision, 1)
	return Reference{
		StudyInstanceUID:  src.StudyInstanceUID,
		SeriesInstanceUID: seriesUID(kindReport, src, modelVersion),
		SOPClassUID:       SOPClassComprehensiveSR,
		SOPInstanceUID:    instanceUID(kindReport, src, modelVersion, revision),
	}
}

// checkInputs reports what stops an output from being made of src and rep.
func checkInputs(src Source, rep sentinel.Report) error {
	if err := src.check(); err != nil {
		return err
	}
	if rep.SOPInstanceUID != "" && rep.SOPInstanceUID != src.SOPInstanceUID {
		return fmt.Errorf("report is about instance %s, the source is %s", rep.SOPInstanceUID, src.SOPInstanceUID)
	}
	if clean(rep.ModelVersion, maxLO) == "" {
		return fmt.Errorf("report has no model version")
	}
	return nil
}

// instanceNumber is the output's Instance Number: the source's, so that
// outputs sort like their images, or 1.
func instanceNumber(src Source) string {
	if n, err := strconv.ParseInt(strings.TrimSpace(src.InstanceNumber), 10, 32); err == nil && n > 0 {
		return strconv.FormatInt(n, 10)
	}
	return "1"
}

// header holds what both outputs write into their shared modules.
type header struct {
	src         Source
	now         time.Time
	sopClass    string
	sopInstance string
	series      string
	seriesNum   string
	seriesDesc  string
	modality    string
	version     string
}

// write sets the SOP Common, Patient, General Study, series and General
// Equipment attributes of both outputs.
func (h header) write(d *dataset) {
	src := h.src
	// SOP Common (PS3.3 C.12.1).
	if needsCharset(src) {
		d.text(0x00080005, "CS", src.SpecificCharacterSet)
	}
	d.text(0x00080012, "DA", dicomDate(h.now))
	d.text(0x00080013, "TM", dicomTime(h.now))
	d.uid(0x00080016, h.sopClass)
	d.uid(0x00080018, h.sopInstance)
	d.text(0x00080201, "SH", timezoneOffset(h.now))
	d.seq(0x0018A001, h.contributingEquipment())

	// Patient (C.7.1.1): type 2 attributes are written empty when the
	// source had none; the issuer only when it had one.
	d.text(0x00100010, "PN", src.PatientName)
	d.text(0x00100020, "LO", src.PatientID)
	d.textIf(0x00100021, "LO", src.IssuerOfPatientID)
	d.text(0x00100030, "DA", src.PatientBirthDate)
	d.text(0x00100040, "CS", src.PatientSex)

	// General Study (C.7.2.1).
	d.uid(0x0020000D, src.StudyInstanceUID)
	d.text(0x00080020, "DA", src.StudyDate)
	d.text(0x00080030, "TM", src.StudyTime)
	d.text(0x00080090, "PN", src.ReferringPhysicianName)
	d.text(0x00200010, "SH", src.StudyID)
	d.text(0x00080050, "SH", src.AccessionNumber)

	// Series: the parts SR Document Series (C.17.1) and General Series
	// (C.7.3.1) share.
	d.text(0x00080060, "CS", h.modality)
	d.uid(0x0020000E, h.series)
	d.text(0x00200011, "IS", h.seriesNum)
	d.text(0x0008103E, "LO", h.seriesDesc)

	// General Equipment (C.7.5.1).
	d.text(0x00080070, "LO", Manufacturer)
	d.text(0x00081090, "LO", ModelName)
	d.text(0x00181020, "LO", h.version)
}

// contributingEquipment is the Contributing Equipment Sequence item naming
// Sentinel as the processing equipment (CID 7005) that made the object.
func (h header) contributingEquipment() *dataset {
	d := newDataset()
	d.text(0x00080070, "LO", Manufacturer)
	d.text(0x00081090, "LO", ModelName)
	d.text(0x00181020, "LO", h.version)
	d.text(0x0018A002, "DT", h.now.Format("20060102150405.000000-0700"))
	d.text(0x0018A003, "ST", "Anomaly scoring of the source image by model version "+h.version)
	d.seq(0x0040A170, codeProcessingEquipment.item())
	return d
}

// needsCharset reports whether the text copied from src holds bytes
// outside the default repertoire (ISO-IR 6), so that the source's
// Specific Character Set must be copied with it.
func needsCharset(src Source) bool {
	if src.SpecificCharacterSet == "" {
		return false
	}
	for _, v := range []string{src.PatientName, src.PatientID, src.IssuerOfPatientID,
		src.ReferringPhysicianName, src.StudyID, src.AccessionNumber, src.StudyDate,
		src.StudyTime, src.PatientBirthDate, src.PatientSex, src.PatientOrientation} {
		for i := 0; i < len(v); i++ {
			if v[i] >= 0x80 || v[i] == 0x1b {
				return true
			}
		}
	}
	return false
}

// item returns a hierarchical SOP instance reference item (PS3.3
// Table C.17-3): the study, its series, and the instance in it.
func (r Reference) item() *dataset {
	sop := newDataset()
	sop.uid(0x00081150, r.SOPClassUID)
	sop.uid(0x00081155, r.SOPInstanceUID)
	series := newDataset()
	series.uid(0x0020000E, r.SeriesInstanceUID)
	series.seq(0x00081199, sop)
	study := newDataset()
	study.uid(0x0020000D, r.StudyInstanceUID)
	study.seq(0x00081115, series)
	return study
}

// reference returns the reference of the source image.
func (s Source) reference() Reference {
	return Reference{StudyInstanceUID: s.StudyInstanceUID, SeriesInstanceUID: s.SeriesInstanceUID,
		SOPClassUID: s.SOPClassUID, SOPInstanceUID: s.SOPInstanceUID}
}

// revision is the report's revision, 1 for a first report.
func revision(rep sentinel.Report) int { return max(rep.Revision, 1) }

// contentTime is when the report's content was made: its creation time,
// or now for a report that has none.
func contentTime(rep sentinel.Report, now time.Time) time.Time {
	if rep.CreatedAt.IsZero() {
		return now
	}
	return rep.CreatedAt.In(now.Location())
}
