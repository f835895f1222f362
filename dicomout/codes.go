package dicomout

import (
	"fmt"
	"strings"

	"github.com/sentinel-pacs/sentinel"
)

// code is a coded entry: Code Value, Coding Scheme Designator, Code
// Meaning (PS3.3 8.8).
type code struct{ value, scheme, meaning string }

// item returns the code as a sequence item.
func (c code) item() *dataset {
	d := newDataset()
	d.text(0x00080100, "SH", c.value)
	d.text(0x00080102, "SH", c.scheme)
	d.text(0x00080104, "LO", c.meaning)
	return d
}

// CodingScheme is the designator of Sentinel's private codes (PS3.16
// 8.2: private designators start with "99").
const CodingScheme = "99SENTINEL"

// Sentinel's private codes, listed in the package documentation. Code
// values are at most 16 characters (SH).
var (
	codeAnomalyScore = code{"anomaly-score", CodingScheme, "Anomaly score"}
	codeThreshold    = code{"threshold", CodingScheme, "Decision threshold"}
	codeNormalLimit  = code{"normal-limit", CodingScheme, "Normal limit"}
	codeUncertainty  = code{"uncertainty", CodingScheme, "Score uncertainty"}
	codeReason       = code{"reason", CodingScheme, "Decision reason"}

	codeFlagged    = code{"flagged", CodingScheme, "Flagged as unusual"}
	codeNotFlagged = code{"not-flagged", CodingScheme, "Not flagged"}
	codeUncertain  = code{"uncertain", CodingScheme, "Uncertain"}
	codeOOD        = code{"ood", CodingScheme, "Out of distribution"}
	codeOutOfScope = code{"out-of-scope", CodingScheme, "Out of scope"}
	// codeOther carries a decision this package does not know; its
	// meaning is the decision's own word.
	codeOtherValue = "other"
)

// Standard codes (PS3.16 Annex D for DCM; SNOMED CT as SCT; UCUM; RFC 5646).
var (
	codeImagingMeasurementReport = code{"126000", "DCM", "Imaging Measurement Report"}
	codeLanguage                 = code{"121049", "DCM", "Language of Content Item and Descendants"}
	codeEnglishUS                = code{"en-US", "RFC5646", "English (United States)"}
	codeObserverType             = code{"121005", "DCM", "Observer Type"}
	codeDevice                   = code{"121007", "DCM", "Device"}
	codeDeviceObserverUID        = code{"121012", "DCM", "Device Observer UID"}
	codeDeviceObserverName       = code{"121013", "DCM", "Device Observer Name"}
	codeDeviceObserverMaker      = code{"121014", "DCM", "Device Observer Manufacturer"}
	codeDeviceObserverModel      = code{"121015", "DCM", "Device Observer Model Name"}
	codeProcedureReported        = code{"121058", "DCM", "Procedure reported"}
	codePlainChestXRay           = code{"399208008", "SCT", "Plain chest X-ray"}
	codeImageLibrary             = code{"111028", "DCM", "Image Library"}
	codeImageLibraryGroup        = code{"126200", "DCM", "Image Library Group"}
	codeModality                 = code{"121139", "DCM", "Modality"}
	codeTargetRegion             = code{"123014", "DCM", "Target Region"}
	codeImageLaterality          = code{"111027", "DCM", "Image Laterality"}
	codeImageView                = code{"111031", "DCM", "Image View"}
	codeImagingMeasurements      = code{"126010", "DCM", "Imaging Measurements"}
	codeMeasurementGroup         = code{"125007", "DCM", "Measurement Group"}
	codeTrackingIdentifier       = code{"112039", "DCM", "Tracking Identifier"}
	codeTrackingUID              = code{"112040", "DCM", "Tracking Unique Identifier"}
	codeFinding                  = code{"121071", "DCM", "Finding"}
	codeAlgorithmName            = code{"111001", "DCM", "Algorithm Name"}
	codeAlgorithmVersion         = code{"111003", "DCM", "Algorithm Version"}
	codeSourceOfMeasurement      = code{"121112", "DCM", "Source of Measurement"}
	codeComment                  = code{"121106", "DCM", "Comment"}
	codeNoUnits                  = code{"1", "UCUM", "no units"}
	codeProcessingEquipment      = code{"109102", "DCM", "Processing Equipment"}
	codeSourceForProcessing      = code{"121322", "DCM", "Source image for image processing operation"}
)

// decisionCode maps a report's decision to its coded finding. The
// detector's words and a few synonyms other parts may use are known;
// anything else is coded "other" with the word itself as the meaning.
func decisionCode(d sentinel.Decision) (code, error) {
	word := strings.ToLower(strings.TrimSpace(string(d)))
	switch strings.NewReplacer("_", "-", " ", "-").Replace(word) {
	case "":
		return code{}, fmt.Errorf("report has no decision")
	case string(sentinel.DecisionAbnormal), "flagged", "unusual":
		return codeFlagged, nil
	case string(sentinel.DecisionNormal), "not-flagged":
		return codeNotFlagged, nil
	case string(sentinel.DecisionUncertain):
		return codeUncertain, nil
	case "ood", "out-of-distribution":
		return codeOOD, nil
	case "out-of-scope":
		return codeOutOfScope, nil
	}
	return code{codeOtherValue, CodingScheme, clean(string(d), maxLO)}, nil
}

// modalityCode maps a Modality to its code in CID 29, for the radiography
// modalities a chest film comes in.
func modalityCode(m string) (code, bool) {
	c, ok := map[string]code{
		"CR": {"CR", "DCM", "Computed Radiography"},
		"DX": {"DX", "DCM", "Digital Radiography"},
		"RG": {"RG", "DCM", "Radiographic imaging"},
	}[m]
	return c, ok
}

// regionCode maps Body Part Examined to CID 4031 (PS3.16 Annex L).
func regionCode(bodyPart string) (code, bool) {
	c, ok := map[string]code{
		"CHEST":         {"51185008", "SCT", "Chest"},
		"CHEST_ABDOMEN": {"416550000", "SCT", "Chest and Abdomen"},
	}[strings.ToUpper(bodyPart)]
	return c, ok
}

// lateralityCode maps Image Laterality (or Laterality) to CID 244.
func lateralityCode(l string) (code, bool) {
	c, ok := map[string]code{
		"R": {"24028007", "SCT", "Right"},
		"L": {"7771000", "SCT", "Left"},
		"B": {"51440002", "SCT", "Bilateral"},
		"U": {"66459002", "SCT", "Unilateral"},
	}[strings.ToUpper(l)]
	return c, ok
}

// viewCode maps View Position to CID 4010 (DX View).
func viewCode(v string) (code, bool) {
	c, ok := map[string]code{
		"PA":  {"272479007", "SCT", "postero-anterior"},
		"AP":  {"399348003", "SCT", "antero-posterior"},
		"LL":  {"399173006", "SCT", "left lateral"},
		"RL":  {"399198007", "SCT", "right lateral"},
		"LAT": {"399067008", "SCT", "lateral"},
	}[strings.ToUpper(v)]
	return c, ok
}
