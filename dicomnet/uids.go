package dicomnet

// UIDs of the services, SOP classes and transfer syntaxes this package
// names (PS3.6 Annex A).
const (
	// ApplicationContext is the DICOM Application Context Name.
	ApplicationContext = "1.2.840.10008.3.1.1.1"

	// VerificationSOPClass is always accepted by a Server.
	VerificationSOPClass = "1.2.840.10008.1.1"

	CRImageStorage                    = "1.2.840.10008.5.1.4.1.1.1"
	DXImageStorageForPresentation     = "1.2.840.10008.5.1.4.1.1.1.1"
	DXImageStorageForProcessing       = "1.2.840.10008.5.1.4.1.1.1.1.1"
	SecondaryCaptureImageStorage      = "1.2.840.10008.5.1.4.1.1.7"
	DigitalMammographyForPresentation = "1.2.840.10008.5.1.4.1.1.1.2"

	ImplicitVRLittleEndian         = "1.2.840.10008.1.2"
	ExplicitVRLittleEndian         = "1.2.840.10008.1.2.1"
	DeflatedExplicitVRLittleEndian = "1.2.840.10008.1.2.1.99"
	ExplicitVRBigEndian            = "1.2.840.10008.1.2.2"
	JPEGBaseline                   = "1.2.840.10008.1.2.4.50"
	JPEGExtended                   = "1.2.840.10008.1.2.4.51"
	JPEGLossless                   = "1.2.840.10008.1.2.4.57"
	JPEGLosslessSV1                = "1.2.840.10008.1.2.4.70"
	JPEGLSLossless                 = "1.2.840.10008.1.2.4.80"
	JPEGLSNearLossless             = "1.2.840.10008.1.2.4.81"
	JPEG2000Lossless               = "1.2.840.10008.1.2.4.90"
	JPEG2000                       = "1.2.840.10008.1.2.4.91"
	RLELossless                    = "1.2.840.10008.1.2.5"
)

// Our implementation identification, sent in every association and written
// into the File Meta Information of spooled files.
const (
	ImplementationClassUID    = "2.25.191263995450307991650355141402105934173"
	ImplementationVersionName = "SENTINEL_NET_1"
)

// RadiographSOPClasses are the storage SOP classes of projection
// radiographs: a convenient value for Config.SOPClasses.
var RadiographSOPClasses = []string{
	CRImageStorage,
	DXImageStorageForPresentation,
	DXImageStorageForProcessing,
	SecondaryCaptureImageStorage,
}

// UncompressedTransferSyntaxes are the native encodings, in a sensible
// order of preference for Config.TransferSyntaxes.
var UncompressedTransferSyntaxes = []string{
	ExplicitVRLittleEndian,
	ImplicitVRLittleEndian,
}

// validUID reports whether s is a syntactically valid UID (PS3.5 9.1):
// 1 to 64 characters, digits and dots, components without leading zeros.
func validUID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
			continue
		}
		comp := s[start:i]
		if len(comp) == 0 || (len(comp) > 1 && comp[0] == '0') {
			return false
		}
		start = i + 1
	}
	return true
}
