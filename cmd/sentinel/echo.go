package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sentinel-pacs/sentinel/agent"
	"github.com/sentinel-pacs/sentinel/config"
	"github.com/sentinel-pacs/sentinel/dicomnet"
	"github.com/sentinel-pacs/sentinel/store"
)

// runEcho runs a C-ECHO against a configured DICOM destination, or against
// host:port with the AE title given by --aec.
func runEcho(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, g := newFlagSet("echo", "echo [--json] [flags] DESTINATION | HOST:PORT", stderr)
	asJSON := jsonFlag(fs)
	aec := fs.String("aec", "", "the called AE title, for HOST:PORT (default: the destination's)")
	aet := fs.String("aet", "", "the calling AE title (default: dicom.ae_title)")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"echo: takes one destination name or HOST:PORT"}
	}
	e, err := setupReadOnly(fs, g, stderr)
	if err != nil {
		return err
	}
	target := fs.Arg(0)
	addr, called := "", *aec
	for _, d := range e.cfg.DICOM.Destinations {
		if d.Name == target {
			if d.Kind != config.DestDICOM {
				return usageError{fmt.Sprintf("echo: destination %q is a %s destination, not a DICOM one", target, d.Kind)}
			}
			addr = d.Address()
			if called == "" {
				called = d.AETitle
			}
		}
	}
	if addr == "" {
		if _, _, err := net.SplitHostPort(target); err != nil {
			return usageError{fmt.Sprintf("echo: %q is neither a configured destination nor HOST:PORT", target)}
		}
		if called == "" {
			return usageError{"echo: HOST:PORT needs --aec, the AE title to call"}
		}
		addr = target
	}
	calling := *aet
	if calling == "" {
		calling = e.cfg.DICOM.AETitle
	}
	d := e.cfg.DICOM
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	start := time.Now()
	a, err := dicomnet.Dial(ctx, addr, calling, called, dicomnet.DialOptions{Logger: e.log,
		AssociationTimeout: d.AssociationTimeout.Duration, ReadTimeout: d.IdleTimeout.Duration, WriteTimeout: d.WriteTimeout.Duration})
	if err != nil {
		return fmt.Errorf("echo %s (%s at %s): %w", target, called, addr, err)
	}
	if err := a.Echo(ctx); err != nil {
		a.Abort()
		return fmt.Errorf("echo %s (%s at %s): %w", target, called, addr, err)
	}
	if err := a.Release(ctx); err != nil {
		return fmt.Errorf("echo %s: release: %w", target, err)
	}
	took := time.Since(start)
	if *asJSON {
		return printJSON(stdout, struct {
			Calling string  `json:"calling_ae_title"`
			Called  string  `json:"called_ae_title"`
			Address string  `json:"address"`
			Success bool    `json:"success"`
			Seconds float64 `json:"seconds"`
		}{calling, called, addr, true, took.Seconds()})
	}
	fmt.Fprintf(stdout, "C-ECHO %s -> %s at %s: success in %s\n", calling, called, addr, took.Round(time.Millisecond))
	return nil
}

// dicomConfig turns the [dicom] section into the agent's settings; nil
// when neither the receiver nor any destination is configured.
func (e *env) dicomConfig() *agent.DICOMConfig {
	d := e.cfg.DICOM
	if d.Listen == "" && len(d.Destinations) == 0 {
		return nil
	}
	ws, _ := filepath.Abs(e.cfg.Workspace)
	dc := &agent.DICOMConfig{
		Listen:             d.Listen,
		AETitle:            d.AETitle,
		SOPClasses:         d.SOPClasses,
		TransferSyntaxes:   d.TransferSyntaxes,
		MaxAssociations:    d.MaxAssociations,
		MaxPDU:             d.MaxPDU,
		AssociationTimeout: d.AssociationTimeout.Duration,
		IdleTimeout:        d.IdleTimeout.Duration,
		WriteTimeout:       d.WriteTimeout.Duration,
		OutboxDir:          filepath.Join(filepath.Dir(e.paths.Database), "outbox"),
		MaxAttempts:        d.Outbox.MaxAttempts,
		Backoff:            d.Outbox.Backoff.Duration,
		MaxBackoff:         d.Outbox.MaxBackoff.Duration,
	}
	for _, c := range d.AllowedCallers {
		ae, host := config.ParseCaller(c)
		dc.AllowedCallers = append(dc.AllowedCallers, dicomnet.Caller{AETitle: ae, Host: host})
	}
	for _, dst := range d.Destinations {
		ad := agent.Destination{Name: dst.Name, Kind: dst.Kind, AETitle: dst.AETitle, URL: dst.URL, Outputs: dst.OutputsOrDefault(),
			OnlyFlagged: dst.OnlyFlagged}
		if dst.Kind == config.DestDICOM {
			ad.Address = dst.Address()
		}
		if dst.Path != "" {
			ad.Path = dst.Path
			if !filepath.IsAbs(ad.Path) {
				ad.Path = filepath.Join(ws, ad.Path)
			}
		}
		dc.Destinations = append(dc.Destinations, ad)
	}
	return dc
}

// statusDICOM is the DICOM part of `sentinel status`: the receiver's
// settings and counters (read from the running agent's API when it
// answers) and each destination's outbox.
type statusDICOM struct {
	Listen  string `json:"listen,omitempty"`
	AETitle string `json:"ae_title"`
	// Receiver holds the running agent's counters; nil when its API does
	// not answer.
	Receiver     *dicomnet.Stats      `json:"receiver"`
	Destinations []statusDestination  `json:"destinations"`
	SetAside     []statusOutboxFailed `json:"recently_set_aside"`
}

type statusDestination struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Where   string `json:"where"`
	Pending int    `json:"pending"`
	Sent    int    `json:"sent"`
	Failed  int    `json:"failed"`
}

type statusOutboxFailed struct {
	UpdatedAt   time.Time `json:"updated_at"`
	Output      string    `json:"output"`
	Object      string    `json:"object"`
	InstanceID  string    `json:"instance_id"`
	Destination string    `json:"destination"`
	Attempts    int       `json:"attempts"`
	LastError   string    `json:"last_error"`
}

// dicomStatus gathers the DICOM node's state; nil when neither the
// receiver nor a destination is configured.
func (e *env) dicomStatus(ctx context.Context, db *store.DB) (*statusDICOM, error) {
	d := e.cfg.DICOM
	if d.Listen == "" && len(d.Destinations) == 0 {
		return nil, nil
	}
	s := &statusDICOM{Listen: d.Listen, AETitle: d.AETitle, Destinations: []statusDestination{}, SetAside: []statusOutboxFailed{}}
	if d.Listen != "" {
		if st, ok := e.receiverStats(ctx); ok {
			s.Receiver = &st
		}
	}
	counts, err := db.OutboxCounts(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]store.OutboxCount{}
	for _, c := range counts {
		byName[c.Destination] = c
	}
	for _, dst := range d.Destinations {
		c := byName[dst.Name]
		where := dst.URL
		switch dst.Kind {
		case config.DestDICOM:
			where = dst.AETitle + "@" + dst.Address()
		case config.DestFolder:
			where = dst.Path
		}
		s.Destinations = append(s.Destinations, statusDestination{Name: dst.Name, Kind: dst.Kind, Where: where,
			Pending: c.Pending, Sent: c.Sent, Failed: c.Failed})
	}
	failed, err := db.OutboxItems(ctx, store.OutboxFailed, 5)
	if err != nil {
		return nil, err
	}
	for _, it := range failed {
		s.SetAside = append(s.SetAside, statusOutboxFailed{UpdatedAt: it.UpdatedAt, Output: it.Output, Object: it.Object,
			InstanceID: it.InstanceID, Destination: it.Destination, Attempts: it.Attempts, LastError: it.LastError})
	}
	return s, nil
}

// printDICOM writes the DICOM part of the status as text.
func printDICOM(w io.Writer, s statusDICOM) {
	if s.Listen != "" {
		fmt.Fprintf(w, "dicom      receiving as %s on %s\n", s.AETitle, s.Listen)
		if st := s.Receiver; st != nil {
			var rejected []string
			for reason, n := range st.Rejected {
				rejected = append(rejected, fmt.Sprintf("%s %d", reason, n))
			}
			sort.Strings(rejected)
			fmt.Fprintf(w, "           %d associations (%d open, %d aborted), %d objects received, %d echoes; rejected: %s\n",
				st.Accepted, st.Active, st.Aborted, st.ObjectsReceived, st.Echoes, orNoneList(rejected))
			var refused []string
			for status, n := range st.StoresFailed {
				refused = append(refused, fmt.Sprintf("0x%04X %d", status, n))
			}
			sort.Strings(refused)
			if len(refused) > 0 {
				fmt.Fprintf(w, "           stores refused: %s\n", strings.Join(refused, ", "))
			}
		} else {
			fmt.Fprintln(w, "           receiver counters: the running agent's API does not answer")
		}
	}
	for _, d := range s.Destinations {
		fmt.Fprintf(w, "outbox     %s (%s %s): %d pending, %d sent, %d set aside\n",
			d.Name, d.Kind, d.Where, d.Pending, d.Sent, d.Failed)
	}
	if len(s.SetAside) > 0 {
		fmt.Fprintln(w, "recently set aside (see /api/outbox?state=failed):")
		for _, it := range s.SetAside {
			fmt.Fprintf(w, "  %s  %s %s of %s to %s after %d attempts\n    %s\n", it.UpdatedAt.Local().Format("2006-01-02 15:04:05"),
				it.Output, it.Object, it.InstanceID, it.Destination, it.Attempts, it.LastError)
		}
	}
}

func orNoneList(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// receiverStats asks the running agent's /api/outbox for the receiver's
// counters; ok is false when it does not answer over plain HTTP.
func (e *env) receiverStats(ctx context.Context) (dicomnet.Stats, bool) {
	h := e.cfg.HTTP
	if h.Addr == "" || h.TLSCert != "" {
		return dicomnet.Stats{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+h.Addr+"/api/outbox?limit=1", nil)
	if err != nil {
		return dicomnet.Stats{}, false
	}
	if tok := cmp.Or(h.ReadToken, h.Token); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return dicomnet.Stats{}, false
	}
	defer resp.Body.Close()
	var body struct {
		Receiver *dicomnet.Stats `json:"receiver"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body) != nil || body.Receiver == nil {
		return dicomnet.Stats{}, false
	}
	return *body.Receiver, true
}
