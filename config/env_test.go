package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestApplyEnvOverridesTheFile loads a file, overlays an environment on it
// and checks that every variable sets its key, that the environment wins
// over the file, and that what it does not name keeps the file's value.
func TestApplyEnvOverridesTheFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "agent.toml")
	os.WriteFile(file, []byte(`workspace = "/from/file"
[paths]
reports = "file-reports"
models = "file-models"
[http]
token = "file-token"
read_token = "file-read-token"
[dicom]
ae_title = "FILEAE"
[log]
level = "warn"
`), 0o644)
	cfg, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{
		"PATH=/usr/bin",
		"SENTINEL_WORKSPACE=/from/env",
		"SENTINEL_PATHS_INBOX=/in/a" + string(os.PathListSeparator) + "/in/b",
		"SENTINEL_PATHS_REPORTS=env-reports",
		"SENTINEL_PATHS_QUARANTINE=env-q",
		"SENTINEL_PATHS_DATABASE=/db/state.db",
		"SENTINEL_PATHS_ARCHIVE=env-archive",
		"SENTINEL_HTTP_ADDR=0.0.0.0:9000",
		"SENTINEL_HTTP_TOKEN=env-token",
		"SENTINEL_HTTP_READ_TOKEN_FILE=/run/credentials/sentinel.service/read",
		"SENTINEL_HTTP_TLS_CERT=/tls/cert.pem",
		"SENTINEL_HTTP_TLS_KEY=/tls/key.pem",
		"SENTINEL_DICOM_LISTEN=:11112",
		"SENTINEL_DICOM_AE_TITLE=ENVAE",
		"SENTINEL_DICOM_ALLOWED_CALLERS=PACS@10.0.0.0/8, MODALITY",
		"SENTINEL_LOG_FORMAT=json",
		"SENTINEL_LOG_LEVEL=", // empty: ignored
		"SENTINEL_HTTP_TOKNE=typo",
		"SENTINEL_EVAL=1", // not a setting's prefix: not Sentinel's concern
	}
	res, err := ApplyEnv(&cfg, env)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Workspace = "/from/env"
	want.Paths = Paths{Inbox: []string{"/in/a", "/in/b"}, Reports: "env-reports", Quarantine: "env-q",
		Models: "file-models", Database: "/db/state.db", Archive: "env-archive"}
	want.HTTP.Addr = "0.0.0.0:9000"
	want.HTTP.Token = "env-token"
	want.HTTP.ReadTokenFile = "/run/credentials/sentinel.service/read"
	want.HTTP.TLSCert, want.HTTP.TLSKey = "/tls/cert.pem", "/tls/key.pem"
	want.DICOM.Listen, want.DICOM.AETitle = ":11112", "ENVAE"
	want.DICOM.AllowedCallers = []string{"PACS@10.0.0.0/8", "MODALITY"}
	want.Log = Log{Level: "warn", Format: "json"}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("after the environment:\n got %+v\nwant %+v", cfg, want)
	}
	if len(res.Applied) != 15 || res.Applied[0] != "SENTINEL_WORKSPACE" {
		t.Errorf("applied %v", res.Applied)
	}
	if !reflect.DeepEqual(res.Unknown, []string{"SENTINEL_HTTP_TOKNE"}) {
		t.Errorf("unknown %v, want the misspelt one only", res.Unknown)
	}
	// Every documented variable is the key's name, upper case.
	for _, ev := range EnvVars() {
		if want := EnvPrefix + strings.ToUpper(strings.ReplaceAll(ev.Key, ".", "_")); ev.Name != want {
			t.Errorf("%s sets %s: want the name %s", ev.Name, ev.Key, want)
		}
	}
}

func TestApplyEnvSecretAndFileConflict(t *testing.T) {
	cfg := Default()
	_, err := ApplyEnv(&cfg, []string{"SENTINEL_HTTP_TOKEN=a", "SENTINEL_HTTP_TOKEN_FILE=/x"})
	if err == nil || !strings.Contains(err.Error(), "SENTINEL_HTTP_TOKEN_FILE") {
		t.Fatalf("both a secret and its file: %v", err)
	}
}

func TestReadSecretFiles(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("s3cret\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	two := filepath.Join(dir, "two")
	os.WriteFile(two, []byte("a\nb\n"), 0o600)

	// A file in the configuration, overridden by the environment's value.
	cfg := Default()
	cfg.HTTP.TokenFile = tok
	cfg.HTTP.ReadTokenFile = tok
	if _, err := ApplyEnv(&cfg, []string{"SENTINEL_HTTP_READ_TOKEN=from-env"}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.ReadSecretFiles(); err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Token != "s3cret" || cfg.HTTP.ReadToken != "from-env" {
		t.Fatalf("token %q, read token %q", cfg.HTTP.Token, cfg.HTTP.ReadToken)
	}
	// A value in the configuration, overridden by the environment's file.
	cfg = Default()
	cfg.HTTP.Token = "from-file"
	if _, err := ApplyEnv(&cfg, []string{"SENTINEL_HTTP_TOKEN_FILE=" + tok}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.ReadSecretFiles(); err != nil || cfg.HTTP.Token != "s3cret" {
		t.Fatalf("token %q, %v", cfg.HTTP.Token, err)
	}
	masked := cfg.Masked()
	if masked.HTTP.Token != MaskedSecret || masked.HTTP.ReadToken != "" || cfg.HTTP.Token != "s3cret" {
		t.Fatalf("masked %q (read %q), original now %q", masked.HTTP.Token, masked.HTTP.ReadToken, cfg.HTTP.Token)
	}

	for _, tc := range []struct {
		name  string
		setup func(c *Config)
		want  string
	}{
		{"both in the file", func(c *Config) { c.HTTP.Token, c.HTTP.TokenFile = "x", tok }, "not both"},
		{"missing", func(c *Config) { c.HTTP.ReadTokenFile = filepath.Join(dir, "none") }, "cannot be read"},
		{"empty", func(c *Config) { c.HTTP.TokenFile = empty }, "is empty"},
		{"two lines", func(c *Config) { c.HTTP.TokenFile = two }, "more than one line"},
	} {
		c := Default()
		tc.setup(&c)
		err := c.ReadSecretFiles()
		var ve *ValidationError
		if !errors.As(err, &ve) || !strings.HasPrefix(ve.Key, "http.") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestMaskedHidesTheDatabasePassword(t *testing.T) {
	for _, u := range []string{"postgres://u:s3cret@db.example/sentinel", "postgres://u@db.example/sentinel?password=s3cret&sslmode=require", "postgres://%zz:s3cret@x/"} {
		c := Default()
		c.Store.URL = u
		got := c.Masked().Store.URL
		if strings.Contains(got, "s3cret") || got == "" {
			t.Errorf("Masked(%q).Store.URL = %q", u, got)
		}
	}
	c := Default()
	c.Store.URL = "postgres://u@db.example/sentinel"
	if got := c.Masked().Store.URL; got != "postgres://u@db.example/sentinel" {
		t.Errorf("a URL without a password changed: %q", got)
	}
}
