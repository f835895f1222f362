package dicomout

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// uidNamespace keeps the digests behind derived UIDs apart from any other
// use of the same inputs. Changing it changes every UID this package
// derives, which would turn a resend into a new object: it must not change.
const uidNamespace = "github.com/sentinel-pacs/sentinel/dicomout UID v1"

// derivedUID returns a UID under the 2.25 root (PS3.5 B.2) whose integer is
// a UUID of version 8 (RFC 9562, custom) made from the SHA-256 digest of
// the parts: the same parts always give the same UID.
func derivedUID(parts ...string) string {
	h := sha256.New()
	h.Write([]byte(uidNamespace))
	for _, p := range parts {
		// Length-prefixed, so that ("ab","c") and ("a","bc") differ.
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(p))))
		h.Write([]byte(p))
	}
	sum := h.Sum(nil)[:16]
	sum[6] = sum[6]&0x0f | 0x80 // version 8
	sum[8] = sum[8]&0x3f | 0x80 // RFC 4122 variant
	return "2.25." + new(big.Int).SetBytes(sum).String()
}

// validUID reports whether s is a UID this package can copy: 1 to 64
// characters of digits in non-empty components separated by dots.
func validUID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range strings.Split(s, ".") {
		if c == "" || strings.Trim(c, "0123456789") != "" {
			return false
		}
	}
	return true
}

// Value lengths of the VRs this package writes its own text into (PS3.5
// Table 6.2-1), in characters.
const (
	maxSH = 16
	maxLO = 64
	maxST = 1024
)

// clean makes text of this package's own (a model version, a decision)
// safe for a single-valued string VR of at most n characters in the
// default character repertoire: anything but printable ASCII becomes '?',
// the backslash value delimiter becomes '/', and the result is cut to n.
func clean(s string, n int) string {
	b := []byte(strings.TrimSpace(s))
	for i, c := range b {
		switch {
		case c == '\\':
			b[i] = '/'
		case c < 0x20 || c > 0x7e:
			b[i] = '?'
		}
	}
	if len(b) > n {
		b = b[:n]
	}
	return strings.TrimSpace(string(b))
}

// decimalString formats v as a Decimal String: at most 16 characters
// (PS3.5 6.2), as precise as that allows.
func decimalString(v float64) (string, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "", fmt.Errorf("%v has no decimal string", v)
	}
	for prec := 16; prec > 0; prec-- {
		s := strconv.FormatFloat(v, 'g', prec, 64)
		if len(s) <= 16 {
			// 'g' may give "1e+06"; DS allows exponents, and the
			// shortest exact form is tried first by the caller.
			return s, nil
		}
	}
	return "", fmt.Errorf("%v does not fit a decimal string", v)
}

// shortestDecimal returns the shortest decimal string that reads back as v
// when it fits in 16 characters, or else the closest that does.
func shortestDecimal(v float64) (string, error) {
	if s := strconv.FormatFloat(v, 'g', -1, 64); len(s) <= 16 && !math.IsNaN(v) && !math.IsInf(v, 0) {
		return s, nil
	}
	return decimalString(v)
}

// Date and time values (PS3.5 6.2: DA YYYYMMDD, TM HHMMSS.FFFFFF).
func dicomDate(t time.Time) string { return t.Format("20060102") }
func dicomTime(t time.Time) string { return t.Format("150405.000000") }

// timezoneOffset is the Timezone Offset From UTC (0008,0201) of t: &ZZXX.
func timezoneOffset(t time.Time) string { return t.Format("-0700") }
