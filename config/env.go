package config

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// EnvPrefix starts the name of every environment variable Sentinel reads.
const EnvPrefix = "SENTINEL_"

// EnvConfig names the configuration file when --config is not given.
const EnvConfig = EnvPrefix + "CONFIG"

// EnvVar is one setting that can come from the environment.
type EnvVar struct {
	// Name is the variable, e.g. SENTINEL_HTTP_TOKEN.
	Name string
	// Key is the configuration key it sets, e.g. http.token.
	Key string
	// Secret marks a value that is never printed.
	Secret bool
	// List, for a key holding a list, names the separator of its items.
	List string
	set  func(c *Config, v string)
}

// envVars lists the settings the environment can give: every path and
// every secret, the addresses Sentinel listens on, its AE title and who
// may call it, and the log settings. A secret's value and its _FILE
// variant replace each other, so that the environment overrides either
// one given in the file.
var envVars = []EnvVar{
	{Name: "SENTINEL_WORKSPACE", Key: "workspace", set: func(c *Config, v string) { c.Workspace = v }},
	{Name: "SENTINEL_PATHS_INBOX", Key: "paths.inbox", List: string(os.PathListSeparator), set: func(c *Config, v string) {
		c.Paths.Inbox = splitList(v, string(os.PathListSeparator))
	}},
	{Name: "SENTINEL_PATHS_REPORTS", Key: "paths.reports", set: func(c *Config, v string) { c.Paths.Reports = v }},
	{Name: "SENTINEL_PATHS_QUARANTINE", Key: "paths.quarantine", set: func(c *Config, v string) { c.Paths.Quarantine = v }},
	{Name: "SENTINEL_PATHS_MODELS", Key: "paths.models", set: func(c *Config, v string) { c.Paths.Models = v }},
	{Name: "SENTINEL_PATHS_DATABASE", Key: "paths.database", set: func(c *Config, v string) { c.Paths.Database = v }},
	{Name: "SENTINEL_PATHS_ARCHIVE", Key: "paths.archive", set: func(c *Config, v string) { c.Paths.Archive = v }},
	{Name: "SENTINEL_STORE_URL", Key: "store.url", Secret: true, set: func(c *Config, v string) { c.Store.URL = v }},
	{Name: "SENTINEL_STORE_AGENT", Key: "store.agent", set: func(c *Config, v string) { c.Store.Agent = v }},
	{Name: "SENTINEL_HTTP_ADDR", Key: "http.addr", set: func(c *Config, v string) { c.HTTP.Addr = v }},
	{Name: "SENTINEL_HTTP_TOKEN", Key: "http.token", Secret: true, set: func(c *Config, v string) {
		c.HTTP.Token, c.HTTP.TokenFile = v, ""
	}},
	{Name: "SENTINEL_HTTP_TOKEN_FILE", Key: "http.token_file", set: func(c *Config, v string) {
		c.HTTP.Token, c.HTTP.TokenFile = "", v
	}},
	{Name: "SENTINEL_HTTP_READ_TOKEN", Key: "http.read_token", Secret: true, set: func(c *Config, v string) {
		c.HTTP.ReadToken, c.HTTP.ReadTokenFile = v, ""
	}},
	{Name: "SENTINEL_HTTP_READ_TOKEN_FILE", Key: "http.read_token_file", set: func(c *Config, v string) {
		c.HTTP.ReadToken, c.HTTP.ReadTokenFile = "", v
	}},
	{Name: "SENTINEL_HTTP_TLS_CERT", Key: "http.tls_cert", set: func(c *Config, v string) { c.HTTP.TLSCert = v }},
	{Name: "SENTINEL_HTTP_TLS_KEY", Key: "http.tls_key", set: func(c *Config, v string) { c.HTTP.TLSKey = v }},
	{Name: "SENTINEL_DICOM_LISTEN", Key: "dicom.listen", set: func(c *Config, v string) { c.DICOM.Listen = v }},
	{Name: "SENTINEL_DICOM_AE_TITLE", Key: "dicom.ae_title", set: func(c *Config, v string) { c.DICOM.AETitle = v }},
	{Name: "SENTINEL_DICOM_ALLOWED_CALLERS", Key: "dicom.allowed_callers", List: ",", set: func(c *Config, v string) {
		c.DICOM.AllowedCallers = splitList(v, ",")
	}},
	{Name: "SENTINEL_LOG_LEVEL", Key: "log.level", set: func(c *Config, v string) { c.Log.Level = v }},
	{Name: "SENTINEL_LOG_FORMAT", Key: "log.format", set: func(c *Config, v string) { c.Log.Format = v }},
}

// EnvVars lists the settings the environment can give, in the order
// ApplyEnv applies them.
func EnvVars() []EnvVar { return slices.Clone(envVars) }

// envSections are the prefixes of the variables ApplyEnv knows; another
// variable with one of them is probably a misspelt setting.
var envSections = []string{"SENTINEL_WORKSPACE", "SENTINEL_PATHS_", "SENTINEL_HTTP_", "SENTINEL_DICOM_", "SENTINEL_LOG_"}

// EnvResult says what ApplyEnv took from the environment.
type EnvResult struct {
	// Applied lists the variables that set a key, in EnvVars order.
	Applied []string
	// Unknown lists variables that look like settings (SENTINEL_HTTP_…,
	// say) but are none: probably misspelt.
	Unknown []string
}

// ApplyEnv overlays on c the settings given by the SENTINEL_… variables in
// environ (as os.Environ returns it). The environment overrides the
// configuration file; the command line, applied after, overrides both. A
// variable set to the empty string is ignored. A list is split on its
// separator: the system's path list separator for SENTINEL_PATHS_INBOX,
// commas for SENTINEL_DICOM_ALLOWED_CALLERS. It fails when both a secret
// and its _FILE variant are set. ApplyEnv does not validate c.
func ApplyEnv(c *Config, environ []string) (EnvResult, error) {
	var res EnvResult
	vals := map[string]string{}
	for _, kv := range environ {
		name, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		vals[name] = v
	}
	for _, pair := range [][2]string{{"SENTINEL_HTTP_TOKEN", "SENTINEL_HTTP_TOKEN_FILE"}, {"SENTINEL_HTTP_READ_TOKEN", "SENTINEL_HTTP_READ_TOKEN_FILE"}} {
		if vals[pair[0]] != "" && vals[pair[1]] != "" {
			return res, fmt.Errorf("config: environment: set %s or %s, not both", pair[0], pair[1])
		}
	}
	known := map[string]bool{EnvConfig: true}
	for _, ev := range envVars {
		known[ev.Name] = true
		if v := vals[ev.Name]; v != "" {
			ev.set(c, v)
			res.Applied = append(res.Applied, ev.Name)
		}
	}
	for name := range vals {
		if known[name] {
			continue
		}
		for _, sec := range envSections {
			if strings.HasPrefix(name, sec) {
				res.Unknown = append(res.Unknown, name)
				break
			}
		}
	}
	slices.Sort(res.Unknown)
	return res, nil
}

func splitList(v, sep string) []string {
	var out []string
	for _, p := range strings.Split(v, sep) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ReadSecretFiles reads http.token_file and http.read_token_file, when
// set, into http.token and http.read_token. One trailing newline (as
// `echo` and most editors leave) is removed; an empty file is an error, as
// it would silently disable what the token guards. A relative file name is
// taken relative to the current directory, as systemd's
// $CREDENTIALS_DIRECTORY is absolute anyway. Setting both a secret and its
// file in the configuration file is an error.
func (c *Config) ReadSecretFiles() error {
	for _, s := range []struct {
		key, fileKey string
		val, file    *string
	}{
		{"http.token", "http.token_file", &c.HTTP.Token, &c.HTTP.TokenFile},
		{"http.read_token", "http.read_token_file", &c.HTTP.ReadToken, &c.HTTP.ReadTokenFile},
	} {
		if *s.file == "" {
			continue
		}
		if *s.val != "" {
			return &ValidationError{Key: s.fileKey, Reason: fmt.Sprintf("set %s or %s, not both", s.key, s.fileKey)}
		}
		b, err := os.ReadFile(filepath.Clean(*s.file))
		if err != nil {
			return &ValidationError{Key: s.fileKey, Reason: fmt.Sprintf("cannot be read: %v", err)}
		}
		v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if v == "" {
			return &ValidationError{Key: s.fileKey, Reason: fmt.Sprintf("%s is empty", *s.file)}
		}
		if strings.ContainsAny(v, "\r\n") {
			return &ValidationError{Key: s.fileKey, Reason: fmt.Sprintf("%s holds more than one line", *s.file)}
		}
		*s.val = v
	}
	return nil
}

// MaskedSecret stands in for a secret that is set, in what is printed.
const MaskedSecret = "***"

// Masked returns c with every secret that is set replaced by
// MaskedSecret, for printing: the tokens, and the password of the
// database's URL (in its user part or a password parameter).
func (c Config) Masked() Config {
	for _, p := range []*string{&c.HTTP.Token, &c.HTTP.ReadToken} {
		if *p != "" {
			*p = MaskedSecret
		}
	}
	if c.Store.URL != "" {
		u, err := url.Parse(c.Store.URL)
		if err != nil {
			c.Store.URL = MaskedSecret
			return c
		}
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), MaskedSecret)
		}
		if q := u.Query(); q.Has("password") {
			q.Set("password", MaskedSecret)
			u.RawQuery = q.Encode()
		}
		c.Store.URL = u.String()
	}
	return c
}
