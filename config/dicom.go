package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// DICOM configures Sentinel as a DICOM node: the Storage SCP that receives
// studies into the inbox, and the destinations its outputs are sent to.
type DICOM struct {
	// Listen is the address the receiver listens on, e.g. ":11112"; empty
	// turns the receiver off.
	Listen string `toml:"listen"`
	// AETitle is Sentinel's AE title: the called AE title a sender must
	// use, and the calling AE title of what Sentinel sends.
	AETitle string `toml:"ae_title"`
	// AllowedCallers lists the calling AE titles that may associate, each
	// "AE" (any host) or "AE@host" (host: an IP address, a CIDR prefix or a
	// host name). Empty lets any caller in.
	AllowedCallers []string `toml:"allowed_callers"`
	// SOPClasses are the storage SOP class UIDs accepted.
	SOPClasses []string `toml:"sop_classes"`
	// TransferSyntaxes are the transfer syntax UIDs accepted, most
	// preferred first.
	TransferSyntaxes []string `toml:"transfer_syntaxes"`
	// MaxAssociations bounds the associations open at once.
	MaxAssociations int `toml:"max_associations"`
	// MaxPDU is the largest P-DATA-TF PDU, in bytes, the receiver accepts.
	MaxPDU uint32 `toml:"max_pdu"`
	// AssociationTimeout bounds the wait for an association request,
	// IdleTimeout the wait for each later message, WriteTimeout each write;
	// they apply to sending too.
	AssociationTimeout Duration `toml:"association_timeout"`
	IdleTimeout        Duration `toml:"idle_timeout"`
	WriteTimeout       Duration `toml:"write_timeout"`
	// Outbox tunes the retries of sending.
	Outbox Outbox `toml:"outbox"`
	// Destinations receive Sentinel's outputs.
	Destinations []Destination `toml:"destinations"`
}

// Outbox tunes how outputs are sent: each is tried MaxAttempts times, the
// wait after a failure starting at Backoff and doubling up to MaxBackoff,
// and is then set aside with its reason.
type Outbox struct {
	MaxAttempts int      `toml:"max_attempts"`
	Backoff     Duration `toml:"backoff"`
	MaxBackoff  Duration `toml:"max_backoff"`
}

// Destination kinds.
const (
	DestDICOM   = "dicom"
	DestFolder  = "folder"
	DestWebhook = "webhook"
)

// Output names a destination may want.
const (
	OutputSR     = "sr"
	OutputSC     = "sc"
	OutputReport = "report"
)

// Destination is where outputs are sent.
type Destination struct {
	// Name identifies the destination in the outbox, the logs and
	// `sentinel echo`.
	Name string `toml:"name"`
	// Kind is "dicom" (a C-STORE SCP), "folder" (files written into Path)
	// or "webhook" (an HTTP POST of the report JSON to URL).
	Kind string `toml:"kind"`
	// AETitle, Host and Port locate a DICOM destination.
	AETitle string `toml:"ae_title"`
	Host    string `toml:"host"`
	Port    int    `toml:"port"`
	// Path is a folder destination's folder.
	Path string `toml:"path"`
	// URL is a webhook's address.
	URL string `toml:"url"`
	// Outputs lists what is sent: "sr" and "sc" to a DICOM or folder
	// destination (default both), "report" to a webhook (the default and
	// only choice).
	Outputs []string `toml:"outputs"`
	// OnlyFlagged sends only the reports that need a person: decided
	// abnormal or out of distribution, first reports and revisions alike
	// (a revision from not flagged to flagged is the event a site most
	// wants pushed).
	OnlyFlagged bool `toml:"only_flagged"`
}

// Address is a DICOM destination's host:port.
func (d Destination) Address() string { return net.JoinHostPort(d.Host, fmt.Sprint(d.Port)) }

// Wants reports whether the destination takes the named output.
func (d Destination) Wants(output string) bool {
	for _, o := range d.OutputsOrDefault() {
		if o == output {
			return true
		}
	}
	return false
}

// OutputsOrDefault returns Outputs, or the kind's default when it is empty.
func (d Destination) OutputsOrDefault() []string {
	if len(d.Outputs) > 0 {
		return d.Outputs
	}
	if d.Kind == DestWebhook {
		return []string{OutputReport}
	}
	return []string{OutputSR, OutputSC}
}

// UIDs of the SOP classes and transfer syntaxes named by the defaults
// (PS3.6 Annex A).
const (
	uidCR                 = "1.2.840.10008.5.1.4.1.1.1"
	uidDXPresentation     = "1.2.840.10008.5.1.4.1.1.1.1"
	uidDXProcessing       = "1.2.840.10008.5.1.4.1.1.1.1.1"
	uidSecondaryCapture   = "1.2.840.10008.5.1.4.1.1.7"
	uidExplicitLE         = "1.2.840.10008.1.2.1"
	uidImplicitLE         = "1.2.840.10008.1.2"
	uidExplicitBE         = "1.2.840.10008.1.2.2"
	uidDeflatedLE         = "1.2.840.10008.1.2.1.99"
	uidJPEGLosslessSV1    = "1.2.840.10008.1.2.4.70"
	uidJPEGLossless       = "1.2.840.10008.1.2.4.57"
	uidJPEGLSLossless     = "1.2.840.10008.1.2.4.80"
	uidJPEG2000Lossless   = "1.2.840.10008.1.2.4.90"
	uidRLELossless        = "1.2.840.10008.1.2.5"
	uidJPEGBaseline       = "1.2.840.10008.1.2.4.50"
	uidJPEGExtended       = "1.2.840.10008.1.2.4.51"
	uidJPEGLSNearLossless = "1.2.840.10008.1.2.4.81"
	uidJPEG2000           = "1.2.840.10008.1.2.4.91"
)

// DecodableTransferSyntaxes are the transfer syntaxes Sentinel's decoder
// reads, in the default order of preference: the native encodings first
// (nothing to decompress), then the lossless codecs, then the lossy ones.
// The receiver accepts no other: an image it could not decode would only be
// quarantined.
func DecodableTransferSyntaxes() []string {
	return []string{
		uidExplicitLE, uidImplicitLE, uidExplicitBE, uidDeflatedLE,
		uidJPEGLosslessSV1, uidJPEGLossless, uidJPEGLSLossless, uidJPEG2000Lossless, uidRLELossless,
		uidJPEGBaseline, uidJPEGExtended, uidJPEGLSNearLossless, uidJPEG2000,
	}
}

// DefaultDICOM returns the [dicom] defaults: the receiver off, the
// projection radiograph SOP classes, every decodable transfer syntax.
func DefaultDICOM() DICOM {
	return DICOM{
		AETitle:            "SENTINEL",
		AllowedCallers:     []string{},
		SOPClasses:         []string{uidCR, uidDXPresentation, uidDXProcessing, uidSecondaryCapture},
		TransferSyntaxes:   DecodableTransferSyntaxes(),
		MaxAssociations:    8,
		MaxPDU:             256 << 10,
		AssociationTimeout: Duration{30 * time.Second},
		IdleTimeout:        Duration{60 * time.Second},
		WriteTimeout:       Duration{60 * time.Second},
		Outbox: Outbox{
			MaxAttempts: 10,
			Backoff:     Duration{30 * time.Second},
			MaxBackoff:  Duration{time.Hour},
		},
	}
}

// validAETitle reports why s is not an AE title (PS3.5 6.2, VR AE): 1 to 16
// characters of the default repertoire, no backslash or control character,
// not only spaces.
func validAETitle(s string) error {
	switch {
	case strings.TrimSpace(s) == "":
		return fmt.Errorf("must not be empty")
	case len(s) > 16:
		return fmt.Errorf("must be at most 16 characters, got %d", len(s))
	}
	for _, r := range s {
		if r < 0x20 || r > 0x7e || r == '\\' {
			return fmt.Errorf("must be printable ASCII without backslashes, got %q", s)
		}
	}
	return nil
}

// validUID reports whether s is a UID (PS3.5 9.1): at most 64 characters,
// dot-separated components of digits without leading zeros.
func validUID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range strings.Split(s, ".") {
		if c == "" || (len(c) > 1 && c[0] == '0') {
			return false
		}
		for _, r := range c {
			if r < '0' || r > '9' {
				return false
			}
		}
	}
	return true
}

// ParseCaller splits an allowed_callers entry, "AE" or "AE@host", into its
// AE title and host ("" for any host).
func ParseCaller(s string) (ae, host string) {
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

func (d DICOM) validate() error {
	bad := func(key, format string, args ...any) error {
		return &ValidationError{Key: "dicom." + key, Reason: fmt.Sprintf(format, args...)}
	}
	if d.Listen != "" {
		if _, _, err := net.SplitHostPort(d.Listen); err != nil {
			return bad("listen", "must be host:port or :port, got %q", d.Listen)
		}
	}
	if err := validAETitle(d.AETitle); err != nil {
		return bad("ae_title", "%v", err)
	}
	for i, c := range d.AllowedCallers {
		ae, host := ParseCaller(c)
		if err := validAETitle(ae); err != nil {
			return bad(fmt.Sprintf("allowed_callers[%d]", i), "AE title %v", err)
		}
		if strings.Contains(c, "@") && strings.TrimSpace(host) == "" {
			return bad(fmt.Sprintf("allowed_callers[%d]", i), "host after @ must not be empty, got %q", c)
		}
	}
	if len(d.SOPClasses) == 0 {
		return bad("sop_classes", "must name at least one SOP class")
	}
	for i, u := range d.SOPClasses {
		if !validUID(u) {
			return bad(fmt.Sprintf("sop_classes[%d]", i), "must be a UID, got %q", u)
		}
	}
	if len(d.TransferSyntaxes) == 0 {
		return bad("transfer_syntaxes", "must name at least one transfer syntax")
	}
	decodable := map[string]bool{}
	for _, u := range DecodableTransferSyntaxes() {
		decodable[u] = true
	}
	for i, u := range d.TransferSyntaxes {
		if !decodable[u] {
			return bad(fmt.Sprintf("transfer_syntaxes[%d]", i), "must be one Sentinel decodes (%s), got %q",
				strings.Join(DecodableTransferSyntaxes(), ", "), u)
		}
	}
	switch {
	case d.MaxAssociations < 1 || d.MaxAssociations > 256:
		return bad("max_associations", "must be between 1 and 256, got %d", d.MaxAssociations)
	case d.MaxPDU < 4096 || d.MaxPDU > 16<<20:
		return bad("max_pdu", "must be between 4096 and 16777216 bytes, got %d", d.MaxPDU)
	case d.AssociationTimeout.Duration <= 0:
		return bad("association_timeout", "must be positive, got %s", d.AssociationTimeout)
	case d.IdleTimeout.Duration <= 0:
		return bad("idle_timeout", "must be positive, got %s", d.IdleTimeout)
	case d.WriteTimeout.Duration <= 0:
		return bad("write_timeout", "must be positive, got %s", d.WriteTimeout)
	case d.Outbox.MaxAttempts < 1:
		return bad("outbox.max_attempts", "must be at least 1, got %d", d.Outbox.MaxAttempts)
	case d.Outbox.Backoff.Duration <= 0:
		return bad("outbox.backoff", "must be positive, got %s", d.Outbox.Backoff)
	case d.Outbox.MaxBackoff.Duration < d.Outbox.Backoff.Duration:
		return bad("outbox.max_backoff", "must be at least dicom.outbox.backoff, got %s", d.Outbox.MaxBackoff)
	}
	names := map[string]bool{}
	for i, dst := range d.Destinations {
		if err := dst.validate(); err != nil {
			err.Key = fmt.Sprintf("dicom.destinations[%d].%s", i, err.Key)
			return err
		}
		if names[dst.Name] {
			return bad(fmt.Sprintf("destinations[%d].name", i), "%q is used twice", dst.Name)
		}
		names[dst.Name] = true
	}
	return nil
}

func (d Destination) validate() *ValidationError {
	bad := func(key, format string, args ...any) *ValidationError {
		return &ValidationError{Key: key, Reason: fmt.Sprintf(format, args...)}
	}
	if d.Name == "" || len(d.Name) > 64 || strings.Trim(d.Name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != "" {
		return bad("name", "must be 1 to 64 letters, digits, '-', '_' or '.', got %q", d.Name)
	}
	allowed := map[string]bool{OutputSR: true, OutputSC: true}
	switch d.Kind {
	case DestDICOM:
		if err := validAETitle(d.AETitle); err != nil {
			return bad("ae_title", "%v", err)
		}
		if strings.TrimSpace(d.Host) == "" {
			return bad("host", "must not be empty")
		}
		if d.Port < 1 || d.Port > 65535 {
			return bad("port", "must be between 1 and 65535, got %d", d.Port)
		}
	case DestFolder:
		if strings.TrimSpace(d.Path) == "" {
			return bad("path", "must not be empty")
		}
	case DestWebhook:
		u, err := url.Parse(d.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("url", "must be an http or https URL, got %q", d.URL)
		}
		allowed = map[string]bool{OutputReport: true}
	default:
		return bad("kind", "must be dicom, folder or webhook, got %q", d.Kind)
	}
	seen := map[string]bool{}
	for i, o := range d.Outputs {
		if !allowed[o] {
			want := `"sr" or "sc"`
			if d.Kind == DestWebhook {
				want = `"report"`
			}
			return bad(fmt.Sprintf("outputs[%d]", i), "must be %s for a %s destination, got %q", want, d.Kind, o)
		}
		if seen[o] {
			return bad(fmt.Sprintf("outputs[%d]", i), "%q is listed twice", o)
		}
		seen[o] = true
	}
	return nil
}
