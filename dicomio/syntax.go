package dicomio

import (
	"encoding/binary"
	"fmt"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/dicomio/jpeg"
	"github.com/sentinel-pacs/sentinel/dicomio/jpeg2000"
	"github.com/sentinel-pacs/sentinel/dicomio/jpegls"
	"github.com/sentinel-pacs/sentinel/dicomio/rle"
)

// Transfer syntax UIDs (PS3.6 Annex A) that this package treats specially.
const (
	uidImplicitLE = "1.2.840.10008.1.2"
	uidExplicitLE = "1.2.840.10008.1.2.1"
	uidDeflatedLE = "1.2.840.10008.1.2.1.99"
	uidExplicitBE = "1.2.840.10008.1.2.2"

	uidJPEGBaseline     = "1.2.840.10008.1.2.4.50"
	uidJPEGExtended     = "1.2.840.10008.1.2.4.51"
	uidJPEGSpectral     = "1.2.840.10008.1.2.4.53"
	uidJPEGProgressive  = "1.2.840.10008.1.2.4.55"
	uidJPEGLossless     = "1.2.840.10008.1.2.4.57"
	uidJPEGLosslessSV1  = "1.2.840.10008.1.2.4.70"
	uidJPEGLSLossless   = "1.2.840.10008.1.2.4.80"
	uidJPEGLSNear       = "1.2.840.10008.1.2.4.81"
	uidJPEG2000Lossless = "1.2.840.10008.1.2.4.90"
	uidJPEG2000         = "1.2.840.10008.1.2.4.91"
	uidHTJ2KLossless    = "1.2.840.10008.1.2.4.201"
	uidHTJ2KLosslessRP  = "1.2.840.10008.1.2.4.202"
	uidHTJ2K            = "1.2.840.10008.1.2.4.203"
	uidRLE              = "1.2.840.10008.1.2.5"
)

// syntaxNames names the transfer syntaxes an error message may mention, so
// that an operator can tell a JPEG 2000 file from a JPEG-LS one without a
// lookup.
var syntaxNames = map[string]string{
	uidImplicitLE:               "Implicit VR Little Endian",
	uidExplicitLE:               "Explicit VR Little Endian",
	"1.2.840.10008.1.2.1.98":    "Encapsulated Uncompressed Explicit VR Little Endian",
	uidDeflatedLE:               "Deflated Explicit VR Little Endian",
	uidExplicitBE:               "Explicit VR Big Endian",
	"1.2.840.10008.1.2.4.50":    "JPEG Baseline (Process 1)",
	"1.2.840.10008.1.2.4.51":    "JPEG Extended (Process 2 and 4)",
	"1.2.840.10008.1.2.4.57":    "JPEG Lossless (Process 14)",
	"1.2.840.10008.1.2.4.70":    "JPEG Lossless SV1",
	"1.2.840.10008.1.2.4.80":    "JPEG-LS Lossless",
	"1.2.840.10008.1.2.4.81":    "JPEG-LS Near-Lossless",
	"1.2.840.10008.1.2.4.90":    "JPEG 2000 Lossless",
	"1.2.840.10008.1.2.4.91":    "JPEG 2000",
	"1.2.840.10008.1.2.4.92":    "JPEG 2000 Part 2 Multi-component Lossless",
	"1.2.840.10008.1.2.4.93":    "JPEG 2000 Part 2 Multi-component",
	"1.2.840.10008.1.2.4.94":    "JPIP Referenced",
	"1.2.840.10008.1.2.4.95":    "JPIP Referenced Deflate",
	"1.2.840.10008.1.2.4.100":   "MPEG2 Main Profile / Main Level",
	"1.2.840.10008.1.2.4.101":   "MPEG2 Main Profile / High Level",
	"1.2.840.10008.1.2.4.102":   "MPEG-4 AVC/H.264 High Profile / Level 4.1",
	"1.2.840.10008.1.2.4.103":   "MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1",
	"1.2.840.10008.1.2.4.104":   "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video",
	"1.2.840.10008.1.2.4.105":   "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video",
	"1.2.840.10008.1.2.4.106":   "MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2",
	"1.2.840.10008.1.2.4.107":   "HEVC/H.265 Main Profile / Level 5.1",
	"1.2.840.10008.1.2.4.108":   "HEVC/H.265 Main 10 Profile / Level 5.1",
	"1.2.840.10008.1.2.4.201":   "High-Throughput JPEG 2000 Lossless",
	"1.2.840.10008.1.2.4.202":   "High-Throughput JPEG 2000 with RPCL Options Lossless",
	"1.2.840.10008.1.2.4.203":   "High-Throughput JPEG 2000",
	"1.2.840.10008.1.2.4.204":   "JPIP HTJ2K Referenced",
	"1.2.840.10008.1.2.4.205":   "JPIP HTJ2K Referenced Deflate",
	"1.2.840.10008.1.2.5":       "RLE Lossless",
	"1.2.840.10008.1.2.6.1":     "RFC 2557 MIME encapsulation",
	"1.2.840.10008.1.2.6.2":     "XML Encoding",
	"1.2.840.10008.1.2.7.1":     "SMPTE ST 2110-20 Uncompressed Progressive Active Video",
	"1.2.840.10008.1.2.8.1":     "Deflated Image Frame Compression",
	"1.2.840.10008.1.2.4.100.1": "Fragmentable MPEG2 Main Profile / Main Level",
	"1.2.840.10008.1.2.4.101.1": "Fragmentable MPEG2 Main Profile / High Level",
	"1.2.840.10008.1.2.4.102.1": "Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.1",
	"1.2.840.10008.1.2.4.103.1": "Fragmentable MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1",
	"1.2.840.10008.1.2.4.104.1": "Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video",
	"1.2.840.10008.1.2.4.105.1": "Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video",
	"1.2.840.10008.1.2.4.106.1": "Fragmentable MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2",
	"1.2.840.10008.1.2.4.110":   "JPEG XL Lossless",
	"1.2.840.10008.1.2.4.111":   "JPEG XL JPEG Recompression",
	"1.2.840.10008.1.2.4.112":   "JPEG XL",
	"1.2.840.10008.1.2.7.2":     "SMPTE ST 2110-20 Uncompressed Interlaced Active Video",
	"1.2.840.10008.1.2.7.3":     "SMPTE ST 2110-30 PCM Digital Audio",
	"1.2.840.10008.1.2.4.53":    "JPEG Spectral Selection, Non-Hierarchical (Process 6 & 8) (Retired)",
	"1.2.840.10008.1.2.4.55":    "JPEG Full Progression, Non-Hierarchical (Process 10 & 12) (Retired)",
}

// syntaxName returns the name of a transfer syntax, or "unknown".
func syntaxName(uid string) string {
	if name, ok := syntaxNames[uid]; ok {
		return name
	}
	return "unknown"
}

// unsupportedSyntax is the error for pixel data this package cannot decode.
// The message names the UID and what it is, for example "unsupported
// transfer syntax 1.2.840.10008.1.2.4.70 (JPEG Lossless SV1)".
func unsupportedSyntax(uid string) error {
	return fmt.Errorf("%w %s (%s)", sentinel.ErrUnsupportedTransferSyntax, uid, syntaxName(uid))
}

// encoding is how a transfer syntax encodes the data set itself (not its
// pixel data).
type encoding struct {
	bo       binary.ByteOrder
	implicit bool
	deflated bool
}

// datasetEncoding returns the data set encoding of a transfer syntax. Every
// transfer syntax other than the three native ones and the deflated one
// encodes its data set as explicit VR little endian (PS3.5 A.4), so unknown
// UIDs get that too: it is enough to read the identity of a file whose
// pixels are then refused.
func datasetEncoding(uid string) encoding {
	switch uid {
	case uidImplicitLE:
		return encoding{bo: binary.LittleEndian, implicit: true}
	case uidExplicitBE:
		return encoding{bo: binary.BigEndian}
	case uidDeflatedLE:
		return encoding{bo: binary.LittleEndian, deflated: true}
	}
	return encoding{bo: binary.LittleEndian}
}

// libraryUID is the transfer syntax UID that tells the dicom library how to
// read the data set bytes this package hands it (already inflated when the
// file was deflated).
func (e encoding) libraryUID() string {
	switch {
	case e.implicit:
		return uidImplicitLE
	case e.bo == binary.BigEndian:
		return uidExplicitBE
	}
	return uidExplicitLE
}

// A codec decodes one frame of pixel data in one transfer syntax into stored
// sample values. Codecs for compressed transfer syntaxes slot in by adding
// an entry to codecs; the rest of the pipeline (limits, Modality and VOI
// LUTs, MONOCHROME1, colour to luminance) stays the same. dst, when it is
// large enough, may hold the frame's samples instead of a new allocation
// (see samplePool); nil asks for a new one.
type codec func(px pixelData, l layout, index int, dst []int32) (frame, error)

// codecs maps each transfer syntax whose pixel data this package decodes to
// its decoder. A transfer syntax missing here fails with
// sentinel.ErrUnsupportedTransferSyntax before any pixel data is touched.
var codecs = map[string]codec{
	uidImplicitLE: decodeNative,
	uidExplicitLE: decodeNative,
	uidExplicitBE: decodeNative,
	uidDeflatedLE: decodeNative,
	uidRLE:        compressed(uidRLE, rle.Decode, nil),

	uidJPEGBaseline:     compressed(uidJPEGBaseline, jpeg.Decode, markerJPEG),
	uidJPEGExtended:     compressed(uidJPEGExtended, jpeg.Decode, markerJPEG),
	uidJPEGSpectral:     compressed(uidJPEGSpectral, jpeg.Decode, markerJPEG),
	uidJPEGProgressive:  compressed(uidJPEGProgressive, jpeg.Decode, markerJPEG),
	uidJPEGLossless:     compressed(uidJPEGLossless, jpeg.Decode, markerJPEG),
	uidJPEGLosslessSV1:  compressed(uidJPEGLosslessSV1, jpeg.Decode, markerJPEG),
	uidJPEGLSLossless:   compressed(uidJPEGLSLossless, jpegls.Decode, markerJPEG),
	uidJPEGLSNear:       compressed(uidJPEGLSNear, jpegls.Decode, markerJPEG),
	uidJPEG2000Lossless: compressed(uidJPEG2000Lossless, jpeg2000.Decode, markerJPEG2000),
	uidJPEG2000:         compressed(uidJPEG2000, jpeg2000.Decode, markerJPEG2000),
	uidHTJ2KLossless:    compressed(uidHTJ2KLossless, jpeg2000.Decode, markerJPEG2000),
	uidHTJ2KLosslessRP:  compressed(uidHTJ2KLosslessRP, jpeg2000.Decode, markerJPEG2000),
	uidHTJ2K:            compressed(uidHTJ2K, jpeg2000.Decode, markerJPEG2000),
}
