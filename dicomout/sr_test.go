package dicomout

import (
	"bytes"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel"
)

func TestStructuredReportContent(t *testing.T) {
	src := richSource()
	rep := testReport(src)
	rep.NormalLimit = ptr(0.41)
	obj, err := StructuredReport(src, rep, nil, testNow)
	if err != nil {
		t.Fatal(err)
	}
	meta, ds := parseFile(t, obj.Bytes)
	if meta.str(0x00020003) != obj.SOPInstanceUID || ds.str(0x00080018) != obj.SOPInstanceUID ||
		ds.str(0x00080016) != SOPClassComprehensiveSR || ds.str(0x0020000E) != obj.SeriesInstanceUID {
		t.Fatal("object identity and data set disagree")
	}
	for tag, want := range map[uint32]string{
		0x00080060: "SR", 0x00080070: Manufacturer, 0x00081090: ModelName, 0x00181020: rep.ModelVersion,
		0x0008103E: "Sentinel report", 0x0040A491: "COMPLETE", 0x0040A493: "UNVERIFIED",
		0x0040A040: "CONTAINER", 0x00200013: "3", 0x00080023: "20260314", 0x00080033: "092000.000000",
		0x00080012: "20260314", 0x00080013: "092653.589793", 0x00080201: "+0100",
	} {
		if got := ds.str(tag); got != want {
			t.Errorf("%s = %q, want %q", tagName(tag), got, want)
		}
	}
	if c := ds.code(0x0040A043); c != codeImagingMeasurementReport {
		t.Errorf("document title %v", c)
	}
	tmpl := ds.seq(0x0040A504)
	if len(tmpl) != 1 || tmpl[0].str(0x0040DB00) != "1500" || tmpl[0].str(0x00080105) != "DCMR" {
		t.Errorf("content template is not DCMR TID 1500")
	}
	eq := ds.seq(0x0018A001)
	if len(eq) != 1 || eq[0].str(0x00080070) != Manufacturer || eq[0].str(0x00181020) != rep.ModelVersion ||
		eq[0].code(0x0040A170) != codeProcessingEquipment {
		t.Errorf("contributing equipment is not Sentinel as processing equipment")
	}

	// The measurements hold the report's numbers exactly.
	for _, m := range []struct {
		code string
		want float64
	}{{"anomaly-score", rep.Score}, {"threshold", rep.Threshold}, {"uncertainty", *rep.Uncertainty}, {"normal-limit", 0.41}} {
		item := ds.only(t, m.code)
		s, fd := item.num(t)
		if fd != m.want {
			t.Errorf("%s Floating Point Value %v, want %v", m.code, fd, m.want)
		}
		if v, err := strconv.ParseFloat(s, 64); err != nil || v != m.want {
			t.Errorf("%s Numeric Value %q, want %v", m.code, s, m.want)
		}
		if u := item.seq(0x0040A300)[0].code(0x004008EA); u != codeNoUnits {
			t.Errorf("%s units %v", m.code, u)
		}
		if v := item.only(t, "111003").str(0x0040A160); v != rep.ModelVersion {
			t.Errorf("%s algorithm version %q", m.code, v)
		}
	}
	score := ds.only(t, "anomaly-score")
	img := score.only(t, "121112")
	if img.str(0x0040A010) != "INFERRED FROM" || img.str(0x0040A040) != "IMAGE" {
		t.Errorf("score source image is %s %s", img.str(0x0040A010), img.str(0x0040A040))
	}
	sop := img.seq(0x00081199)
	if len(sop) != 1 || sop[0].str(0x00081150) != src.SOPClassUID || sop[0].str(0x00081155) != src.SOPInstanceUID {
		t.Error("score does not reference the source image")
	}
	if f := ds.only(t, "121071").code(0x0040A168); f != codeFlagged {
		t.Errorf("finding %v, want %v", f, codeFlagged)
	}
	if v := ds.only(t, "121106").str(0x0040A160); v != Disclaimer {
		t.Errorf("comment %q", v)
	}
	if v := ds.only(t, "121058").code(0x0040A168); v != codePlainChestXRay {
		t.Errorf("procedure reported %v", v)
	}
	if v := ds.only(t, "121049").code(0x0040A168); v != codeEnglishUS {
		t.Errorf("language %v", v)
	}
	if ds.only(t, "112040").str(0x0040A124) != derivedUID("tracking", src.SOPInstanceUID) {
		t.Error("tracking UID is not derived from the source image")
	}
	ev := ds.seq(0x0040A375)
	if len(ev) != 1 || ev[0].str(0x0020000D) != src.StudyInstanceUID {
		t.Error("evidence sequence does not name the source's study")
	}
	if _, ok := ds[0x0040A360]; ok {
		t.Error("Predecessor Documents Sequence without a predecessor")
	}
}

func TestDecisionCodes(t *testing.T) {
	for _, c := range []struct {
		decision sentinel.Decision
		want     code
	}{
		{sentinel.DecisionAbnormal, codeFlagged},
		{sentinel.DecisionNormal, codeNotFlagged},
		{sentinel.DecisionUncertain, codeUncertain},
		{"ood", codeOOD},
		{"out_of_distribution", codeOOD},
		{"Out of distribution", codeOOD},
		{"out_of_scope", codeOutOfScope},
		{"out-of-scope", codeOutOfScope},
		{"needs_review", code{"other", CodingScheme, "needs_review"}},
	} {
		got, err := decisionCode(c.decision)
		if err != nil || got != c.want {
			t.Errorf("%q: %v, %v; want %v", c.decision, got, err, c.want)
		}
		rep := testReport(richSource())
		rep.Decision = c.decision
		obj, err := StructuredReport(richSource(), rep, nil, testNow)
		if err != nil {
			t.Fatal(err)
		}
		_, ds := parseFile(t, obj.Bytes)
		if f := ds.only(t, "121071").code(0x0040A168); f != c.want {
			t.Errorf("%q: SR finding %v, want %v", c.decision, f, c.want)
		}
	}
	if _, err := decisionCode(""); err == nil {
		t.Error("an empty decision was coded")
	}
}

func TestStructuredReportPredecessor(t *testing.T) {
	src := richSource()
	first := testReport(src)
	v1, err := StructuredReport(src, first, nil, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if ref := ReportReference(src, first.ModelVersion, 1); ref != v1.Reference() {
		t.Fatalf("ReportReference %v, made %v", ref, v1.Reference())
	}
	second := testReport(src)
	second.ModelVersion, second.Revision, second.Decision = "m20260401-8", 2, sentinel.DecisionNormal
	second.Supersedes = &sentinel.ReportRef{Revision: 1, ModelVersion: first.ModelVersion}
	pred := ReportReference(src, second.Supersedes.ModelVersion, second.Supersedes.Revision)
	v2, err := StructuredReport(src, second, &pred, testNow.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	_, ds := parseFile(t, v2.Bytes)
	pd := ds.seq(0x0040A360)
	if len(pd) != 1 || pd[0].str(0x0020000D) != src.StudyInstanceUID {
		t.Fatalf("Predecessor Documents Sequence %v", pd)
	}
	series := pd[0].seq(0x00081115)
	if len(series) != 1 || series[0].str(0x0020000E) != v1.SeriesInstanceUID {
		t.Fatal("predecessor's series is not the first report's")
	}
	sops := series[0].seq(0x00081199)
	if len(sops) != 1 || sops[0].str(0x00081150) != SOPClassComprehensiveSR || sops[0].str(0x00081155) != v1.SOPInstanceUID {
		t.Fatal("predecessor's instance is not the first report")
	}
	if v2.SOPInstanceUID == v1.SOPInstanceUID || v2.SeriesInstanceUID == v1.SeriesInstanceUID {
		t.Error("a new model version's revision shares the first report's UIDs")
	}
	self := v2.Reference()
	if _, err := StructuredReport(src, second, &self, testNow); err == nil {
		t.Error("a report superseding itself was made")
	}
	if _, err := StructuredReport(src, second, &Reference{SOPInstanceUID: "2.25.1"}, testNow); err == nil {
		t.Error("an incomplete predecessor reference was accepted")
	}
}

func TestStructuredReportDeterministic(t *testing.T) {
	src := richSource()
	rep := testReport(src)
	a, err := StructuredReport(src, rep, nil, testNow)
	if err != nil {
		t.Fatal(err)
	}
	b, err := StructuredReport(src, rep, nil, testNow.Add(36*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if a.SOPInstanceUID != b.SOPInstanceUID || a.SeriesInstanceUID != b.SeriesInstanceUID {
		t.Fatal("making the same report again gave new UIDs")
	}
	c, err := StructuredReport(src, rep, nil, testNow)
	if err != nil || !bytes.Equal(a.Bytes, c.Bytes) {
		t.Fatal("same inputs and time gave different bytes")
	}
	rep.Revision = 2
	d, err := StructuredReport(src, rep, nil, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if d.SOPInstanceUID == a.SOPInstanceUID {
		t.Fatal("another revision has the same SOP Instance UID")
	}
	if d.SeriesInstanceUID != a.SeriesInstanceUID {
		t.Error("a revision by the same model version went to another series")
	}
	other := src
	other.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.1004"
	rep.SOPInstanceUID, rep.Revision = other.SOPInstanceUID, 1
	e, err := StructuredReport(other, rep, nil, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if e.SOPInstanceUID == a.SOPInstanceUID || e.SeriesInstanceUID != a.SeriesInstanceUID {
		t.Error("an image of the same series: want another instance in the same series")
	}
}

func TestStructuredReportRefuses(t *testing.T) {
	cases := map[string]func(*Source, *sentinel.Report){
		"no study UID":         func(s *Source, _ *sentinel.Report) { s.StudyInstanceUID = "" },
		"bad SOP UID":          func(s *Source, r *sentinel.Report) { s.SOPInstanceUID, r.SOPInstanceUID = "1.2.x", "" },
		"another instance":     func(_ *Source, r *sentinel.Report) { r.SOPInstanceUID = "1.2.3.4" },
		"no model version":     func(_ *Source, r *sentinel.Report) { r.ModelVersion = " " },
		"no decision":          func(_ *Source, r *sentinel.Report) { r.Decision = "" },
		"score not a number":   func(_ *Source, r *sentinel.Report) { r.Score = math.NaN() },
		"infinite uncertainty": func(_ *Source, r *sentinel.Report) { r.Uncertainty = ptr(math.Inf(1)) },
	}
	for name, change := range cases {
		src := richSource()
		rep := testReport(src)
		change(&src, &rep)
		if _, err := StructuredReport(src, rep, nil, testNow); err == nil {
			t.Errorf("%s: report made", name)
		}
	}
}
