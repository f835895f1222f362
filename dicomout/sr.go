package dicomout

import (
	"fmt"
	"time"

	"github.com/sentinel-pacs/sentinel"
)

// Relationship types (PS3.3 C.17.3.2.4).
const (
	relContains   = "CONTAINS"
	relConceptMod = "HAS CONCEPT MOD"
	relObsContext = "HAS OBS CONTEXT"
	relAcqContext = "HAS ACQ CONTEXT"
	relInferred   = "INFERRED FROM"
)

// node is one content item of an SR content tree (PS3.3 C.17.3).
type node struct {
	rel, valueType string
	name           *code
	// value sets the item's value attributes.
	value    func(d *dataset)
	children []*node
}

func container(rel string, name code, children ...*node) *node {
	return &node{rel: rel, valueType: "CONTAINER", name: &name, value: func(d *dataset) {
		d.text(0x0040A050, "CS", "SEPARATE")
	}, children: children}
}

func textItem(rel string, name code, s string) *node {
	return &node{rel: rel, valueType: "TEXT", name: &name, value: func(d *dataset) {
		d.text(0x0040A160, "UT", s)
	}}
}

func codeItem(rel string, name, value code) *node {
	return &node{rel: rel, valueType: "CODE", name: &name, value: func(d *dataset) {
		d.seq(0x0040A168, value.item())
	}}
}

func uidItem(rel string, name code, uid string) *node {
	return &node{rel: rel, valueType: "UIDREF", name: &name, value: func(d *dataset) {
		d.uid(0x0040A124, uid)
	}}
}

// imageItem references an image; name may be nil (an Image Library entry
// has no concept name).
func imageItem(rel string, name *code, r Reference, children ...*node) *node {
	return &node{rel: rel, valueType: "IMAGE", name: name, value: func(d *dataset) {
		sop := newDataset()
		sop.uid(0x00081150, r.SOPClassUID)
		sop.uid(0x00081155, r.SOPInstanceUID)
		d.seq(0x00081199, sop)
	}, children: children}
}

// numItem is a NUM content item. The value goes in Numeric Value (DS, at
// most 16 characters) and, exactly, in Floating Point Value (FD).
func numItem(rel string, name code, v float64, units code, children ...*node) (*node, error) {
	ds, err := shortestDecimal(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name.meaning, err)
	}
	return &node{rel: rel, valueType: "NUM", name: &name, value: func(d *dataset) {
		mv := newDataset()
		mv.seq(0x004008EA, units.item())
		mv.text(0x0040A30A, "DS", ds)
		mv.fd(0x0040A161, v)
		d.seq(0x0040A300, mv)
	}, children: children}, nil
}

// item returns the content item as a Content Sequence item.
func (n *node) item() *dataset {
	d := newDataset()
	n.fill(d)
	d.text(0x0040A010, "CS", n.rel)
	return d
}

// fill sets the attributes a content item and the root share.
func (n *node) fill(d *dataset) {
	d.text(0x0040A040, "CS", n.valueType)
	if n.name != nil {
		d.seq(0x0040A043, n.name.item())
	}
	n.value(d)
	if len(n.children) > 0 {
		items := make([]*dataset, len(n.children))
		for i, c := range n.children {
			items[i] = c.item()
		}
		d.seq(0x0040A730, items...)
	}
}

// StructuredReport returns a Comprehensive SR of rep, the score Sentinel
// gave the image src describes, filed in a new series of the source's
// study (one series per source series and model version). Its content
// follows TID 1500 (see the package documentation). With pred set, the
// report supersedes that earlier report, which it names in the Predecessor
// Documents Sequence. now is the instance creation time; the content
// time is rep.CreatedAt when set.
//
// The SOP Instance UID is derived from the source image, the model
// version and rep.Revision: the same inputs give the same UID.
func StructuredReport(src Source, rep sentinel.Report, pred *Reference, now time.Time) (Object, error) {
	obj, err := structuredReport(src, rep, pred, now)
	if err != nil {
		return Object{}, fmt.Errorf("dicomout: structured report of %s: %w", src.SOPInstanceUID, err)
	}
	return obj, nil
}

func structuredReport(src Source, rep sentinel.Report, pred *Reference, now time.Time) (Object, error) {
	if err := checkInputs(src, rep); err != nil {
		return Object{}, err
	}
	if pred != nil {
		if err := pred.check(); err != nil {
			return Object{}, fmt.Errorf("predecessor: %w", err)
		}
	}
	version := clean(rep.ModelVersion, maxLO)
	ref := ReportReference(src, rep.ModelVersion, revision(rep))
	if pred != nil && pred.SOPInstanceUID == ref.SOPInstanceUID {
		return Object{}, fmt.Errorf("report cannot supersede itself (revision %d)", revision(rep))
	}
	root, err := reportContent(src, rep, version)
	if err != nil {
		return Object{}, err
	}
	content := contentTime(rep, now)
	h := header{src: src, now: now, sopClass: SOPClassComprehensiveSR,
		sopInstance: ref.SOPInstanceUID, series: ref.SeriesInstanceUID, seriesNum: reportSeriesNumber,
		seriesDesc: reportSeriesDescription, modality: "SR", version: version}
	d := newDataset()
	h.write(d)
	d.seq(0x00080110, codingSchemeIdentification())

	// SR Document Series (C.17.1): no performed procedure step is known.
	d.seq(0x00081111)

	// SR Document General (C.17.2).
	d.text(0x00200013, "IS", instanceNumber(src))
	d.text(0x0040A491, "CS", "COMPLETE")
	d.text(0x0040A493, "CS", "UNVERIFIED")
	d.text(0x00080023, "DA", dicomDate(content))
	d.text(0x00080033, "TM", dicomTime(content))
	if pred != nil {
		d.seq(0x0040A360, pred.item())
	}
	d.seq(0x0040A372)
	d.seq(0x0040A375, src.reference().item())

	// SR Document Content (C.17.3): the root container.
	root.fill(d)
	tmpl := newDataset()
	tmpl.text(0x00080105, "CS", "DCMR")
	tmpl.uid(0x00080118, "1.2.840.10008.8.1.1")
	tmpl.text(0x0040DB00, "CS", "1500")
	d.seq(0x0040A504, tmpl)

	b, err := part10(SOPClassComprehensiveSR, ref.SOPInstanceUID, d)
	if err != nil {
		return Object{}, err
	}
	return Object{SOPClassUID: ref.SOPClassUID, SOPInstanceUID: ref.SOPInstanceUID,
		SeriesInstanceUID: ref.SeriesInstanceUID, StudyInstanceUID: ref.StudyInstanceUID, Bytes: b}, nil
}

// codingSchemeIdentification identifies the private coding scheme (PS3.3
// C.12.1.1.1.1), which PS3.16 does not list.
func codingSchemeIdentification() *dataset {
	d := newDataset()
	d.text(0x00080102, "SH", CodingScheme)
	d.text(0x00080115, "ST", "Sentinel anomaly detector codes")
	d.text(0x00080116, "ST", Manufacturer)
	return d
}

// reportContent builds the content tree of TID 1500 for one image-level
// score.
func reportContent(src Source, rep sentinel.Report, version string) (*node, error) {
	group, err := measurementGroup(src, rep, version)
	if err != nil {
		return nil, err
	}
	return container("", codeImagingMeasurementReport,
		// TID 1204 Language of Content Item and Descendants.
		codeItem(relConceptMod, codeLanguage, codeEnglishUS),
		// TID 1001 Observation Context: TID 1002 and TID 1004 for a
		// device observer.
		codeItem(relObsContext, codeObserverType, codeDevice),
		uidItem(relObsContext, codeDeviceObserverUID, deviceObserverUID),
		textItem(relObsContext, codeDeviceObserverName, Manufacturer),
		textItem(relObsContext, codeDeviceObserverMaker, Manufacturer),
		textItem(relObsContext, codeDeviceObserverModel, ModelName),
		codeItem(relConceptMod, codeProcedureReported, codePlainChestXRay),
		imageLibrary(src),
		container(relContains, codeImagingMeasurements, group),
		textItem(relContains, codeComment, Disclaimer),
	), nil
}

// deviceObserverUID identifies Sentinel as the observer (TID 1004). It is
// fixed: the device is the software, whatever its model version.
const deviceObserverUID = "2.25.225283487219066092406207476261300937278"

// imageLibrary is TID 1600 with the source image as its one entry and the
// descriptors of TID 1602 and 1603 that can be coded from its header.
func imageLibrary(src Source) *node {
	var desc []*node
	if c, ok := modalityCode(src.Modality); ok {
		desc = append(desc, codeItem(relAcqContext, codeModality, c))
	}
	if c, ok := regionCode(src.BodyPartExamined); ok {
		desc = append(desc, codeItem(relAcqContext, codeTargetRegion, c))
	}
	lat := src.ImageLaterality
	if lat == "" {
		lat = src.Laterality
	}
	if c, ok := lateralityCode(lat); ok {
		desc = append(desc, codeItem(relAcqContext, codeImageLaterality, c))
	}
	if c, ok := viewCode(src.ViewPosition); ok {
		desc = append(desc, codeItem(relAcqContext, codeImageView, c))
	}
	entry := imageItem(relContains, nil, src.reference(), desc...)
	return container(relContains, codeImageLibrary, container(relContains, codeImageLibraryGroup, entry))
}

// measurementGroup is TID 1501 holding the score, the threshold, the
// normal limit and uncertainty when the model has them (each a TID 300
// measurement with its TID 4019 algorithm identification, the score and
// uncertainty inferred from the source image), and the decision as the
// finding.
func measurementGroup(src Source, rep sentinel.Report, version string) (*node, error) {
	finding, err := decisionCode(rep.Decision)
	if err != nil {
		return nil, err
	}
	algorithm := func() []*node {
		return []*node{
			textItem(relConceptMod, codeAlgorithmName, ModelName),
			textItem(relConceptMod, codeAlgorithmVersion, version),
		}
	}
	sourceImage := func() *node {
		name := codeSourceOfMeasurement
		return imageItem(relInferred, &name, src.reference())
	}
	items := []*node{
		textItem(relObsContext, codeTrackingIdentifier, "Sentinel anomaly score"),
		uidItem(relObsContext, codeTrackingUID, derivedUID("tracking", src.SOPInstanceUID)),
		codeItem(relContains, codeFinding, finding),
	}
	add := func(name code, v float64, children ...*node) error {
		n, err := numItem(relContains, name, v, codeNoUnits, children...)
		if err == nil {
			items = append(items, n)
		}
		return err
	}
	if err := add(codeAnomalyScore, rep.Score, append(algorithm(), sourceImage())...); err != nil {
		return nil, err
	}
	if err := add(codeThreshold, rep.Threshold, algorithm()...); err != nil {
		return nil, err
	}
	if rep.NormalLimit != nil {
		if err := add(codeNormalLimit, *rep.NormalLimit, algorithm()...); err != nil {
			return nil, err
		}
	}
	if rep.Uncertainty != nil {
		if err := add(codeUncertainty, *rep.Uncertainty, append(algorithm(), sourceImage())...); err != nil {
			return nil, err
		}
	}
	if rep.DecisionReason != "" {
		items = append(items, textItem(relContains, codeReason, clean(rep.DecisionReason, maxST)))
	}
	return container(relContains, codeMeasurementGroup, items...), nil
}
