package sentinel

import "errors"

// Errors that callers test for with errors.Is. Decoding errors say whether
// a file is invalid (it will never decode) or merely unsupported (a later
// version might decode it).
var (
	// ErrNotDICOM means the file is neither DICOM nor an image format
	// Sentinel accepts.
	ErrNotDICOM = errors.New("not a DICOM or image file")
	// ErrInvalid means the file claims to be an image but is malformed or
	// truncated.
	ErrInvalid = errors.New("invalid file")
	// ErrUnsupported means the file is well formed but uses a feature
	// Sentinel does not decode.
	ErrUnsupported = errors.New("unsupported feature")
	// ErrUnsupportedTransferSyntax is the ErrUnsupported for pixel data
	// encodings; messages name the transfer syntax UID.
	ErrUnsupportedTransferSyntax = errors.New("unsupported transfer syntax")
	// ErrNoPixels means the file holds no image.
	ErrNoPixels = errors.New("no pixel data")
	// ErrTooLarge means the image exceeds the configured size limit.
	ErrTooLarge = errors.New("image exceeds size limit")
	// ErrNoModel means no trained model was found.
	ErrNoModel = errors.New("no trained model")
)

// Permanent reports whether err will recur on every retry of the same input,
// so the input should be quarantined rather than retried.
func Permanent(err error) bool {
	for _, target := range []error{ErrNotDICOM, ErrInvalid, ErrUnsupported, ErrUnsupportedTransferSyntax, ErrNoPixels, ErrTooLarge} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
