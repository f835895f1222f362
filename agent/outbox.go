package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/detector"
	"github.com/sentinel-pacs/sentinel/dicomnet"
	"github.com/sentinel-pacs/sentinel/dicomout"
	"github.com/sentinel-pacs/sentinel/store"
)

// preparedOutputs are a report's outputs written into the outbox folder,
// to be recorded with the report (store.Result.Outbox,
// store.Revision.Outbox) so that a report is never recorded without them.
type preparedOutputs struct {
	items []store.OutboxItem
	// created lists the files this preparation made; drop removes them
	// when the report is not recorded after all.
	created []string
}

// drop removes the files made for a report that was not recorded.
func (p preparedOutputs) drop() { removeAll(p.created) }

// prepareOutputs makes the outputs of a report about to be recorded (a
// first report, or a revision, whose Supersedes names the report it
// replaces) for every destination that wants them: the Structured Report
// and the Secondary Capture of the film with its heatmap, made from source
// (the instance's file), and the report itself for webhooks. It never fails
// the report: what cannot be made is logged and left out.
func (a *Agent) prepareOutputs(ctx context.Context, rep sentinel.Report, source string, film, heat sentinel.Image) preparedOutputs {
	dc := a.cfg.DICOM
	if dc == nil || len(dc.Destinations) == 0 {
		return preparedOutputs{}
	}
	ctx = context.WithoutCancel(ctx)
	p, err := a.makeOutputs(ctx, dc, rep, source, film, heat)
	if err != nil {
		a.log.Warn("outputs not made", slog.String("instance", rep.InstanceID), slog.Int("revision", rep.Revision),
			slog.Any("error", err))
	}
	return p
}

// outputsRecorded wakes the sender once a report's outputs are recorded.
func (a *Agent) outputsRecorded(p preparedOutputs) {
	if len(p.items) == 0 {
		return
	}
	select {
	case a.node.wakeC() <- struct{}{}:
	default:
	}
}

// output is one object made for the outbox.
type output struct {
	kind, object, sopClass, study, file string
	data                                []byte
}

// makeOutputs makes the outputs and writes their files; the error joins
// those of the outputs that could not be made.
func (a *Agent) makeOutputs(ctx context.Context, dc *DICOMConfig, rep sentinel.Report, source string, film, heat sentinel.Image) (preparedOutputs, error) {
	want := map[string]bool{}
	for _, d := range dc.Destinations {
		for _, o := range d.Outputs {
			want[o] = true
		}
	}
	now := time.Now()
	var outs []output
	var errs []error
	if want[OutputSR] || want[OutputSC] {
		src, err := dicomout.ReadSource(source)
		if err != nil {
			errs = append(errs, fmt.Errorf("dicom outputs: %w", err))
		}
		if err == nil && want[OutputSR] {
			var pred *dicomout.Reference
			if s := rep.Supersedes; s != nil {
				ref := dicomout.ReportReference(src, s.ModelVersion, s.Revision)
				pred = &ref
			}
			if obj, err := dicomout.StructuredReport(src, rep, pred, now); err != nil {
				errs = append(errs, err)
			} else {
				outs = append(outs, dicomOutput(OutputSR, obj))
			}
		}
		if err == nil && want[OutputSC] {
			if len(film.Pix) == 0 || len(heat.Pix) == 0 {
				errs = append(errs, errors.New("secondary capture: the score has no heatmap"))
			} else if obj, err := dicomout.SecondaryCapture(src, rep, film,
				dicomout.HeatLevels(detector.FocusHeatmap(heat, film), rep.Score, rep.Threshold), 0, now); err != nil {
				errs = append(errs, err)
			} else {
				outs = append(outs, dicomOutput(OutputSC, obj))
			}
		}
	}
	if want[OutputReport] {
		r := rep
		if r.CreatedAt.IsZero() {
			r.CreatedAt = now.UTC()
		}
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			errs = append(errs, fmt.Errorf("report: %w", err))
		} else {
			key := fmt.Sprintf("%s#%d", rep.InstanceID, rep.Revision)
			outs = append(outs, output{kind: OutputReport, object: key, study: rep.StudyInstanceUID,
				file: SafeName(key) + ".json", data: append(b, '\n')})
		}
	}
	if len(outs) == 0 {
		return preparedOutputs{}, errors.Join(errs...)
	}
	p, err := a.writeOutputs(dc, rep, outs)
	return p, errors.Join(append(errs, err)...)
}

func dicomOutput(kind string, obj dicomout.Object) output {
	return output{kind: kind, object: obj.SOPInstanceUID, sopClass: obj.SOPClassUID, study: obj.StudyInstanceUID,
		file: SafeName(obj.SOPInstanceUID) + ".dcm", data: obj.Bytes}
}

// writeOutputs writes each output's file into the outbox folder, synced,
// and returns one item per destination that wants it.
func (a *Agent) writeOutputs(dc *DICOMConfig, rep sentinel.Report, outs []output) (preparedOutputs, error) {
	dir := a.outboxDir()
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return preparedOutputs{}, fmt.Errorf("outbox: %w", err)
	}
	var items []store.OutboxItem
	// created lists the files this call made: a file there before belongs
	// to items queued earlier (the same object has the same name).
	var created []string
	for _, o := range outs {
		path := filepath.Join(dir, o.file)
		_, statErr := os.Stat(path)
		if err := writeSynced(path, o.data); err != nil {
			removeAll(created)
			return preparedOutputs{}, fmt.Errorf("outbox: %w", err)
		}
		if statErr != nil {
			created = append(created, path)
		}
		for _, d := range dc.Destinations {
			if !d.wants(o.kind) || !d.takes(rep.Decision) {
				continue
			}
			items = append(items, store.OutboxItem{Destination: d.Name, Object: o.object, Output: o.kind,
				InstanceID: rep.InstanceID, Revision: rep.Revision, SOPClassUID: o.sopClass, StudyInstanceUID: o.study,
				Path: path})
		}
	}
	return preparedOutputs{items: items, created: created}, nil
}

func removeAll(paths []string) {
	for _, p := range paths {
		os.Remove(p)
	}
}

func (a *Agent) outboxDir() string {
	if d := a.cfg.DICOM.OutboxDir; d != "" {
		return d
	}
	return filepath.Join(a.cfg.StateDir, "outbox")
}

// writeSynced writes data to a temporary file beside path, syncs it,
// renames it over path and syncs the folder, so that the file is whole and
// in place before anything refers to it.
func writeSynced(path string, data []byte) error {
	if err := writeAtomic(path, data); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// outbox sends what is queued in the database to the destinations.
type outbox struct {
	a    *Agent
	dc   *DICOMConfig
	dest map[string]Destination
	log  *slog.Logger
	http *http.Client
}

// outboxBatch bounds the items taken from the database at once.
const outboxBatch = 128

func (a *Agent) newOutbox() (*outbox, error) {
	dc := a.cfg.DICOM
	if err := os.MkdirAll(a.outboxDir(), dirMode); err != nil {
		return nil, fmt.Errorf("agent: outbox: %w", err)
	}
	o := &outbox{a: a, dc: dc, dest: map[string]Destination{}, log: a.baseLog().With(slog.String("component", "outbox")),
		http: &http.Client{Timeout: dc.AssociationTimeout + dc.WriteTimeout}}
	for _, d := range dc.Destinations {
		o.dest[d.Name] = d
	}
	return o, nil
}

// run sends due items until ctx is cancelled, waking when an item falls
// due or new outputs are queued. A send under way when ctx ends is
// abandoned (the association aborted); its item stays pending and is sent
// again after the next start.
func (o *outbox) run(ctx context.Context) {
	wake := o.a.node.wakeC()
	o.sweep(ctx, time.Now().Add(-orphanAge))
	for ctx.Err() == nil {
		more := o.pass(ctx)
		wait := 30 * time.Second
		if more {
			wait = 0
		} else if next, ok, err := o.a.db.NextOutboxTry(ctx); err == nil && ok {
			wait = min(max(time.Until(next), 50*time.Millisecond), wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// orphanAge is how old an outbox file no row names must be before it is
// removed: younger ones may belong to a report being recorded now.
const orphanAge = 10 * time.Minute

// sweep removes the outbox files, modified before cutoff, that no outbox
// row names: what a process killed between writing a report's outputs and
// recording the report left behind (the report was not recorded, and will
// be made again with its outputs).
func (o *outbox) sweep(ctx context.Context, cutoff time.Time) {
	entries, err := os.ReadDir(o.a.outboxDir())
	if err != nil {
		return
	}
	removed := 0
	for _, en := range entries {
		fi, err := en.Info()
		if err != nil || !fi.Mode().IsRegular() || fi.ModTime().After(cutoff) {
			continue
		}
		path := filepath.Join(o.a.outboxDir(), en.Name())
		known, err := o.a.db.OutboxPathKnown(ctx, path)
		if err != nil {
			o.log.Warn("outbox sweep", slog.Any("error", err))
			return
		}
		if !known && os.Remove(path) == nil {
			removed++
		}
	}
	if removed > 0 {
		o.log.Info("outbox files no report recorded removed", slog.Int("files", removed))
	}
}

// pass sends one batch of due items, each destination's in a goroutine of
// its own so that a destination that is down does not hold back the
// others. It reports whether a full batch was due (more may be).
func (o *outbox) pass(ctx context.Context) bool {
	items, err := o.a.db.DueOutbox(ctx, time.Now(), outboxBatch)
	if err != nil {
		if ctx.Err() == nil {
			o.log.Warn("outbox", slog.Any("error", err))
		}
		return false
	}
	byDest := map[string][]store.OutboxItem{}
	for _, it := range items {
		byDest[it.Destination] = append(byDest[it.Destination], it)
	}
	var wg sync.WaitGroup
	for name, its := range byDest {
		d, ok := o.dest[name]
		if !ok {
			// A destination removed from the configuration: its items
			// are set aside at once.
			for _, it := range its {
				o.failed(ctx, it, errors.New("destination not configured"), true)
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			o.sendTo(ctx, d, its)
		}()
	}
	wg.Wait()
	return len(items) == outboxBatch
}

// sendTo sends items to one destination.
func (o *outbox) sendTo(ctx context.Context, d Destination, items []store.OutboxItem) {
	switch d.Kind {
	case DestinationDICOM:
		o.sendDICOM(ctx, d, items)
	case DestinationFolder:
		for _, it := range items {
			o.settle(ctx, it, copyToFolder(d.Path, it))
		}
	case DestinationWebhook:
		for _, it := range items {
			if ctx.Err() != nil {
				return
			}
			o.settle(ctx, it, o.post(ctx, d.URL, it))
		}
	default:
		for _, it := range items {
			o.failed(ctx, it, fmt.Errorf("unknown destination kind %q", d.Kind), true)
		}
	}
}

// sendDICOM sends items over one association. A refusal (a failure
// status) counts against its item only; an error that ends the association
// counts against the item being sent, and the rest wait for the next pass.
func (o *outbox) sendDICOM(ctx context.Context, d Destination, items []store.OutboxItem) {
	seen := map[string]bool{}
	var pcs []dicomnet.PresentationContext
	for _, it := range items {
		if !seen[it.SOPClassUID] {
			seen[it.SOPClassUID] = true
			pcs = append(pcs, dicomnet.PresentationContext{AbstractSyntax: it.SOPClassUID,
				TransferSyntaxes: []string{dicomnet.ExplicitVRLittleEndian}})
		}
	}
	assoc, err := dicomnet.Dial(ctx, d.Address, o.dc.AETitle, d.AETitle, dicomnet.DialOptions{Contexts: pcs,
		AssociationTimeout: o.dc.AssociationTimeout, ReadTimeout: o.dc.IdleTimeout, WriteTimeout: o.dc.WriteTimeout,
		Logger: o.log})
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		for _, it := range items {
			o.failed(ctx, it, fmt.Errorf("associate with %s at %s: %w", d.AETitle, d.Address, err), false)
		}
		return
	}
	accepted := map[string]bool{}
	for _, c := range assoc.Contexts() {
		accepted[c.AbstractSyntax] = true
	}
	for _, it := range items {
		if ctx.Err() != nil {
			assoc.Abort()
			return
		}
		if !accepted[it.SOPClassUID] {
			o.failed(ctx, it, fmt.Errorf("%s does not accept SOP class %s in explicit VR little endian", d.AETitle, it.SOPClassUID), false)
			continue
		}
		status, err := assoc.StoreFile(ctx, it.Path)
		switch {
		case err != nil && ctx.Err() != nil:
			assoc.Abort()
			return
		case err != nil:
			o.failed(ctx, it, fmt.Errorf("c-store to %s: %w", d.AETitle, err), false)
			assoc.Abort()
			return
		case !dicomnet.StatusOK(status):
			o.failed(ctx, it, fmt.Errorf("%s refused the object: status 0x%04X", d.AETitle, status), false)
		default:
			o.sent(ctx, it)
		}
	}
	if err := assoc.Release(ctx); err != nil {
		o.log.Debug("release", slog.String("destination", d.Name), slog.Any("error", err))
	}
}

// copyToFolder writes the item's object into dir as
// <study UID>/<object>.dcm (or .json), atomically.
func copyToFolder(dir string, it store.OutboxItem) error {
	data, err := os.ReadFile(it.Path)
	if err != nil {
		return err
	}
	study := it.StudyInstanceUID
	if study == "" {
		study = "no-study"
	}
	dst := filepath.Join(dir, SafeName(study), SafeName(it.Object)+filepath.Ext(it.Path))
	if err := os.MkdirAll(filepath.Dir(dst), dirMode); err != nil {
		return err
	}
	return writeSynced(dst, data)
}

// post sends the item's file to a webhook as JSON; any 2xx answer is
// success.
func (o *outbox) post(ctx context.Context, url string, it store.OutboxItem) error {
	body, err := os.ReadFile(it.Path)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sentinel")
	resp, err := o.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

func (o *outbox) settle(ctx context.Context, it store.OutboxItem, err error) {
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		o.failed(ctx, it, err, false)
		return
	}
	o.sent(ctx, it)
}

func (o *outbox) sent(ctx context.Context, it store.OutboxItem) {
	free, err := o.a.db.OutboxSent(context.WithoutCancel(ctx), it.ID)
	if err != nil {
		o.log.Warn("outbox", slog.Int64("item", it.ID), slog.Any("error", err))
		return
	}
	o.log.Info("output sent", slog.String("destination", it.Destination), slog.String("output", it.Output),
		slog.String("object", it.Object), slog.String("instance", it.InstanceID), slog.Int("revision", it.Revision))
	if free {
		os.Remove(it.Path)
	}
}

// failed records a failed attempt; at the last one (or at once, when
// final) the item is set aside with its reason.
func (o *outbox) failed(ctx context.Context, it store.OutboxItem, cause error, final bool) {
	maxAttempts := o.dc.MaxAttempts
	if final || maxAttempts < 1 {
		maxAttempts = 1
	}
	delay := o.dc.Backoff << min(it.Attempts, 30)
	if delay <= 0 || delay > o.dc.MaxBackoff {
		delay = o.dc.MaxBackoff
	}
	state, err := o.a.db.OutboxFailedAttempt(context.WithoutCancel(ctx), it.ID, cause.Error(), time.Now().Add(delay), maxAttempts)
	if err != nil {
		o.log.Warn("outbox", slog.Int64("item", it.ID), slog.Any("error", err))
		return
	}
	attrs := []any{slog.String("destination", it.Destination), slog.String("output", it.Output),
		slog.String("object", it.Object), slog.Int("attempt", it.Attempts+1), slog.Any("error", cause)}
	if state == store.OutboxFailed {
		o.log.Error("output set aside after its last attempt", attrs...)
		return
	}
	o.log.Warn("output not sent; tried again later", append(attrs, slog.Duration("retry_in", delay))...)
}
