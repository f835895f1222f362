package dicomout

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/sentinel-pacs/sentinel/dicomio"
)

// Source holds the attributes of a source image that its outputs copy, so
// that a PACS files them with the same patient and study and can show
// where they came from. Values are the raw strings of the file, trailing
// padding removed: person names are not parsed and no character set is
// decoded (SpecificCharacterSet says which one the bytes are in).
//
// It holds patient data. It must not be logged: its String, GoString,
// Format and LogValue methods print the UIDs and redact every patient
// attribute, so that a stray log line or %v does not leak them.
type Source struct {
	// Patient module (PS3.3 C.7.1.1).
	PatientName       string // (0010,0010)
	PatientID         string // (0010,0020)
	IssuerOfPatientID string // (0010,0021)
	PatientBirthDate  string // (0010,0030)
	PatientSex        string // (0010,0040)

	// General Study module (PS3.3 C.7.2.1).
	StudyInstanceUID       string // (0020,000D)
	StudyDate              string // (0008,0020)
	StudyTime              string // (0008,0030)
	ReferringPhysicianName string // (0008,0090)
	StudyID                string // (0020,0010)
	AccessionNumber        string // (0008,0050)

	// The source image itself.
	SOPClassUID        string // (0008,0016), or the file meta's (0002,0002)
	SOPInstanceUID     string // (0008,0018), or the file meta's (0002,0003)
	SeriesInstanceUID  string // (0020,000E)
	Modality           string // (0008,0060)
	Laterality         string // (0020,0060), of the series
	ImageLaterality    string // (0020,0062)
	ViewPosition       string // (0018,5101)
	BodyPartExamined   string // (0018,0015)
	PatientOrientation string // (0020,0020)
	InstanceNumber     string // (0020,0013)

	// SpecificCharacterSet (0008,0005) names the character sets of the
	// text values above.
	SpecificCharacterSet string

	// Equipment and series attributes, read so that IsOwnOutput can
	// recognise the objects this package made when they come back.
	Manufacturer          string // (0008,0070)
	ManufacturerModelName string // (0008,1090)
	SoftwareVersions      string // (0018,1020)
	SeriesDescription     string // (0008,103E)
}

// sourceFields maps each tag ReadSource reads to its field.
var sourceFields = []struct {
	tag   uint32
	field func(*Source) *string
}{
	{0x00080005, func(s *Source) *string { return &s.SpecificCharacterSet }},
	{0x00080016, func(s *Source) *string { return &s.SOPClassUID }},
	{0x00080018, func(s *Source) *string { return &s.SOPInstanceUID }},
	{0x00080020, func(s *Source) *string { return &s.StudyDate }},
	{0x00080030, func(s *Source) *string { return &s.StudyTime }},
	{0x00080050, func(s *Source) *string { return &s.AccessionNumber }},
	{0x00080060, func(s *Source) *string { return &s.Modality }},
	{0x00080070, func(s *Source) *string { return &s.Manufacturer }},
	{0x00080090, func(s *Source) *string { return &s.ReferringPhysicianName }},
	{0x0008103E, func(s *Source) *string { return &s.SeriesDescription }},
	{0x00081090, func(s *Source) *string { return &s.ManufacturerModelName }},
	{0x00100010, func(s *Source) *string { return &s.PatientName }},
	{0x00100020, func(s *Source) *string { return &s.PatientID }},
	{0x00100021, func(s *Source) *string { return &s.IssuerOfPatientID }},
	{0x00100030, func(s *Source) *string { return &s.PatientBirthDate }},
	{0x00100040, func(s *Source) *string { return &s.PatientSex }},
	{0x00180015, func(s *Source) *string { return &s.BodyPartExamined }},
	{0x00181020, func(s *Source) *string { return &s.SoftwareVersions }},
	{0x00185101, func(s *Source) *string { return &s.ViewPosition }},
	{0x0020000D, func(s *Source) *string { return &s.StudyInstanceUID }},
	{0x0020000E, func(s *Source) *string { return &s.SeriesInstanceUID }},
	{0x00200010, func(s *Source) *string { return &s.StudyID }},
	{0x00200013, func(s *Source) *string { return &s.InstanceNumber }},
	{0x00200020, func(s *Source) *string { return &s.PatientOrientation }},
	{0x00200060, func(s *Source) *string { return &s.Laterality }},
	{0x00200062, func(s *Source) *string { return &s.ImageLaterality }},
}

// File meta copies of the SOP Class and Instance UIDs, used when the data
// set lacks them.
const (
	tagMediaStorageSOPClassUID    = 0x00020002
	tagMediaStorageSOPInstanceUID = 0x00020003
)

// ReadSource reads the attributes a source image's outputs copy from its
// DICOM file. It reads the header only, never the pixel data (see
// dicomio.ReadTextAttributes), and does not check that the attributes
// needed to file an output are there: StructuredReport and
// SecondaryCapture do.
func ReadSource(path string) (Source, error) {
	tags := []uint32{tagMediaStorageSOPClassUID, tagMediaStorageSOPInstanceUID}
	for _, f := range sourceFields {
		tags = append(tags, f.tag)
	}
	vals, err := dicomio.ReadTextAttributes(path, tags)
	if err != nil {
		return Source{}, fmt.Errorf("dicomout: read source: %w", err)
	}
	var src Source
	for _, f := range sourceFields {
		*f.field(&src) = vals[f.tag]
	}
	if src.SOPClassUID == "" {
		src.SOPClassUID = vals[tagMediaStorageSOPClassUID]
	}
	if src.SOPInstanceUID == "" {
		src.SOPInstanceUID = vals[tagMediaStorageSOPInstanceUID]
	}
	return src, nil
}

// check reports what stops an output of src from being filed.
func (s Source) check() error {
	var errs []error
	for _, u := range []struct{ name, uid string }{
		{"Study Instance UID", s.StudyInstanceUID},
		{"Series Instance UID", s.SeriesInstanceUID},
		{"SOP Class UID", s.SOPClassUID},
		{"SOP Instance UID", s.SOPInstanceUID},
	} {
		if !validUID(u.uid) {
			errs = append(errs, fmt.Errorf("source has no valid %s", u.name))
		}
	}
	return errors.Join(errs...)
}

// redacted is how a Source prints: identifiers of the image, no patient.
func (s Source) redacted() string {
	return fmt.Sprintf("dicomout.Source{SOPInstanceUID:%q StudyInstanceUID:%q SeriesInstanceUID:%q Modality:%q patient:redacted}",
		s.SOPInstanceUID, s.StudyInstanceUID, s.SeriesInstanceUID, s.Modality)
}

// String returns the source's UIDs and modality; patient attributes are
// redacted.
func (s Source) String() string { return s.redacted() }

// GoString is String, so that %#v redacts too.
func (s Source) GoString() string { return s.redacted() }

// Format prints String for every verb, so that no verb (%d, %x, %+v…)
// reaches the fields.
func (s Source) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.redacted()) }

// LogValue gives log/slog the source's UIDs and modality; patient
// attributes are redacted.
func (s Source) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("sop_instance_uid", s.SOPInstanceUID),
		slog.String("study_instance_uid", s.StudyInstanceUID),
		slog.String("series_instance_uid", s.SeriesInstanceUID),
		slog.String("modality", s.Modality),
		slog.String("patient", "redacted"),
	)
}

// Reference identifies a stored object the way a hierarchical SOP
// instance reference does (PS3.3 C.17.2.1): study, series and instance.
type Reference struct {
	StudyInstanceUID  string
	SeriesInstanceUID string
	SOPClassUID       string
	SOPInstanceUID    string
}

func (r Reference) check() error {
	for _, u := range []string{r.StudyInstanceUID, r.SeriesInstanceUID, r.SOPClassUID, r.SOPInstanceUID} {
		if !validUID(u) {
			return fmt.Errorf("reference has an invalid or missing UID %q", u)
		}
	}
	return nil
}

// Object is one output: a complete DICOM Part 10 file and its identity.
// Bytes holds the patient attributes copied from the source, so an Object
// prints (String, Format, LogValue) as its UIDs and size only.
type Object struct {
	SOPClassUID       string
	SOPInstanceUID    string
	SeriesInstanceUID string
	StudyInstanceUID  string
	// Bytes is the Part 10 file.
	Bytes []byte
}

// Reference returns the reference to the object, as a later revision of
// it names its predecessor.
func (o Object) Reference() Reference {
	return Reference{StudyInstanceUID: o.StudyInstanceUID, SeriesInstanceUID: o.SeriesInstanceUID,
		SOPClassUID: o.SOPClassUID, SOPInstanceUID: o.SOPInstanceUID}
}

func (o Object) String() string {
	return fmt.Sprintf("dicomout.Object{SOPClassUID:%q SOPInstanceUID:%q SeriesInstanceUID:%q StudyInstanceUID:%q Bytes:%d}",
		o.SOPClassUID, o.SOPInstanceUID, o.SeriesInstanceUID, o.StudyInstanceUID, len(o.Bytes))
}

// GoString is String, so that %#v does not print the file's bytes.
func (o Object) GoString() string { return o.String() }

// Format prints String for every verb.
func (o Object) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, o.String()) }

// LogValue gives log/slog the object's UIDs and size.
func (o Object) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("sop_class_uid", o.SOPClassUID),
		slog.String("sop_instance_uid", o.SOPInstanceUID),
		slog.String("series_instance_uid", o.SeriesInstanceUID),
		slog.String("study_instance_uid", o.StudyInstanceUID),
		slog.Int("bytes", len(o.Bytes)),
	)
}

// IsOwnOutput reports whether attributes read from a file (by ReadSource)
// are those of an object this package made, so that Sentinel does not
// score its own heatmaps or report on its own reports when a PACS sends
// them back. It needs no private attributes: the SOP Class is
// Comprehensive SR or Secondary Capture, the Manufacturer is "Sentinel",
// the Manufacturer's Model Name is "Sentinel anomaly detector", and
// Software Versions names a model version. Other equipment that happened
// to call itself Sentinel would also need the model name to be taken for
// it.
func IsOwnOutput(src Source) bool {
	switch src.SOPClassUID {
	case SOPClassComprehensiveSR, SOPClassSecondaryCapture:
	default:
		return false
	}
	return src.Manufacturer == Manufacturer &&
		src.ManufacturerModelName == ModelName &&
		src.SoftwareVersions != ""
}
