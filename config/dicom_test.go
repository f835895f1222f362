package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func loadString(t *testing.T, body string) (Config, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agent.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(p)
}

func TestDICOMDefaults(t *testing.T) {
	d := Default().DICOM
	if d.Listen != "" {
		t.Errorf("receiver on by default: listen %q", d.Listen)
	}
	if len(d.SOPClasses) != 4 {
		t.Errorf("default SOP classes %v, want CR, DX ×2, SC", d.SOPClasses)
	}
	if !reflect.DeepEqual(d.TransferSyntaxes, DecodableTransferSyntaxes()) {
		t.Errorf("default transfer syntaxes %v", d.TransferSyntaxes)
	}
	if d.TransferSyntaxes[0] != uidExplicitLE {
		t.Errorf("first preference %s, want explicit VR little endian", d.TransferSyntaxes[0])
	}
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestDICOMLoad(t *testing.T) {
	cfg, err := loadString(t, `
[dicom]
listen = "127.0.0.1:11112"
ae_title = "SENT1"
allowed_callers = ["PACS", "MODALITY@10.0.0.0/8"]
max_associations = 4
idle_timeout = "5s"

[dicom.outbox]
max_attempts = 3
backoff = "2s"
max_backoff = "10s"

[[dicom.destinations]]
name = "pacs"
kind = "dicom"
ae_title = "PACS"
host = "127.0.0.1"
port = 104

[[dicom.destinations]]
name = "drop"
kind = "folder"
path = "/tmp/out"
outputs = ["sr"]

[[dicom.destinations]]
name = "ris"
kind = "webhook"
url = "http://127.0.0.1:9000/hook"
`)
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.DICOM
	if d.Listen != "127.0.0.1:11112" || d.AETitle != "SENT1" || d.MaxAssociations != 4 || d.IdleTimeout.Duration != 5*time.Second {
		t.Fatalf("loaded %+v", d)
	}
	if d.Outbox.MaxAttempts != 3 || d.Outbox.Backoff.Duration != 2*time.Second || d.Outbox.MaxBackoff.Duration != 10*time.Second {
		t.Fatalf("outbox %+v", d.Outbox)
	}
	if len(d.Destinations) != 3 {
		t.Fatalf("destinations %+v", d.Destinations)
	}
	pacs, drop, ris := d.Destinations[0], d.Destinations[1], d.Destinations[2]
	if !pacs.Wants(OutputSR) || !pacs.Wants(OutputSC) || pacs.Wants(OutputReport) {
		t.Errorf("dicom destination outputs default %v", pacs.OutputsOrDefault())
	}
	if pacs.Address() != "127.0.0.1:104" {
		t.Errorf("address %s", pacs.Address())
	}
	if !drop.Wants(OutputSR) || drop.Wants(OutputSC) {
		t.Errorf("folder destination outputs %v", drop.OutputsOrDefault())
	}
	if !ris.Wants(OutputReport) || ris.Wants(OutputSR) {
		t.Errorf("webhook outputs %v", ris.OutputsOrDefault())
	}
	if ae, host := ParseCaller(d.AllowedCallers[1]); ae != "MODALITY" || host != "10.0.0.0/8" {
		t.Errorf("ParseCaller = %q, %q", ae, host)
	}
	if ae, host := ParseCaller("PACS"); ae != "PACS" || host != "" {
		t.Errorf("ParseCaller = %q, %q", ae, host)
	}
}

func TestDICOMValidationNamesTheKey(t *testing.T) {
	dest := func(body string) string { return "[[dicom.destinations]]\n" + body }
	tests := []struct {
		name, body, key string
	}{
		{"listen", "[dicom]\nlisten = \"11112\"\n", "dicom.listen"},
		{"ae title long", "[dicom]\nae_title = \"ABCDEFGHIJKLMNOPQ\"\n", "dicom.ae_title"},
		{"ae title empty", "[dicom]\nae_title = \"  \"\n", "dicom.ae_title"},
		{"ae title backslash", "[dicom]\nae_title = \"A\\\\B\"\n", "dicom.ae_title"},
		{"caller", "[dicom]\nallowed_callers = [\"OK\", \"\"]\n", "dicom.allowed_callers[1]"},
		{"caller host", "[dicom]\nallowed_callers = [\"PACS@\"]\n", "dicom.allowed_callers[0]"},
		{"no sop classes", "[dicom]\nsop_classes = []\n", "dicom.sop_classes"},
		{"bad sop class", "[dicom]\nsop_classes = [\"1.2.x\"]\n", "dicom.sop_classes[0]"},
		{"leading zero uid", "[dicom]\nsop_classes = [\"1.02.3\"]\n", "dicom.sop_classes[0]"},
		{"undecodable syntax", "[dicom]\ntransfer_syntaxes = [\"1.2.840.10008.1.2.1\", \"1.2.840.10008.1.2.4.100\"]\n", "dicom.transfer_syntaxes[1]"},
		{"no syntaxes", "[dicom]\ntransfer_syntaxes = []\n", "dicom.transfer_syntaxes"},
		{"associations", "[dicom]\nmax_associations = 0\n", "dicom.max_associations"},
		{"pdu small", "[dicom]\nmax_pdu = 100\n", "dicom.max_pdu"},
		{"idle", "[dicom]\nidle_timeout = \"0s\"\n", "dicom.idle_timeout"},
		{"attempts", "[dicom.outbox]\nmax_attempts = 0\n", "dicom.outbox.max_attempts"},
		{"max backoff", "[dicom.outbox]\nbackoff = \"1m\"\nmax_backoff = \"1s\"\n", "dicom.outbox.max_backoff"},
		{"kind", dest("name = \"x\"\nkind = \"ftp\"\n"), "dicom.destinations[0].kind"},
		{"name", dest("name = \"a b\"\nkind = \"folder\"\npath = \"/x\"\n"), "dicom.destinations[0].name"},
		{"port", dest("name = \"p\"\nkind = \"dicom\"\nae_title = \"P\"\nhost = \"h\"\nport = 0\n"), "dicom.destinations[0].port"},
		{"host", dest("name = \"p\"\nkind = \"dicom\"\nae_title = \"P\"\nport = 104\n"), "dicom.destinations[0].host"},
		{"dest ae", dest("name = \"p\"\nkind = \"dicom\"\nhost = \"h\"\nport = 104\n"), "dicom.destinations[0].ae_title"},
		{"folder path", dest("name = \"f\"\nkind = \"folder\"\n"), "dicom.destinations[0].path"},
		{"webhook url", dest("name = \"w\"\nkind = \"webhook\"\nurl = \"ftp://x/y\"\n"), "dicom.destinations[0].url"},
		{"webhook outputs", dest("name = \"w\"\nkind = \"webhook\"\nurl = \"http://x/y\"\noutputs = [\"sr\"]\n"), "dicom.destinations[0].outputs[0]"},
		{"dicom outputs", dest("name = \"p\"\nkind = \"folder\"\npath = \"/x\"\noutputs = [\"report\"]\n"), "dicom.destinations[0].outputs[0]"},
		{"twice", dest("name = \"p\"\nkind = \"folder\"\npath = \"/x\"\noutputs = [\"sr\", \"sr\"]\n"), "dicom.destinations[0].outputs[1]"},
		{"duplicate name", dest("name = \"p\"\nkind = \"folder\"\npath = \"/x\"\n") + dest("name = \"p\"\nkind = \"folder\"\npath = \"/y\"\n"), "dicom.destinations[1].name"},
		{"unknown key", "[dicom]\nlisten_on = \":1\"\n", "dicom.listen_on"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadString(t, tt.body)
			if err == nil {
				t.Fatal("accepted")
			}
			var ve *ValidationError
			if errors.As(err, &ve) {
				if ve.Key != tt.key {
					t.Fatalf("key %q, want %q (%v)", ve.Key, tt.key, err)
				}
				return
			}
			// Unknown keys are reported by Load, not Validate.
			if !strings.Contains(err.Error(), tt.key) {
				t.Fatalf("error %v does not name %s", err, tt.key)
			}
		})
	}
}
