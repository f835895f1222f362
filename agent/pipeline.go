package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/store"
)

// Process takes one complete file through decode, score, report and store,
// exactly once: a file already recorded with the same path, size and
// modification time is skipped, an instance already scored is recorded as a
// duplicate (same bytes) or a conflict (different bytes) and not scored
// again, and a file that can never be processed is quarantined with its
// reason.
//
// Once started, a file is finished even if ctx is cancelled, so that a
// clean stop never leaves work half recorded.
func (a *Agent) Process(ctx context.Context, path string) Outcome {
	ctx = context.WithoutCancel(ctx)
	start := time.Now()
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Outcome{Path: path, Status: StatusGone}
	}
	if err != nil {
		return Outcome{Path: path, Status: StatusRetry, Err: fmt.Errorf("stat %s: %w", path, err)}
	}
	file := store.File{Path: path, Size: fi.Size(), ModTimeNS: fi.ModTime().UnixNano()}
	known, err := a.db.KnownFile(ctx, path, file.Size, file.ModTimeNS)
	if err != nil {
		return Outcome{Path: path, Status: StatusRetry, Err: err}
	}
	if known {
		// Handled before; if a stop came between recording it and moving it
		// to the archive, finish the move now.
		a.archive(ctx, file)
		return Outcome{Path: path, Status: StatusSkipped}
	}
	source := path
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := a.linkTarget(path)
		if err != nil {
			return a.refuse(ctx, file, err)
		}
		source = target
	}

	inst, img, err := a.decode(source)
	decoded := time.Now()
	if errors.Is(err, fs.ErrNotExist) {
		return Outcome{Path: path, Status: StatusGone}
	}
	if scopeSkippable(err) {
		if reason := a.cfg.Scope.outOfScope(inst, source, err); reason != "" {
			if o, wait := a.stillWritten(file, err); wait {
				return o
			}
			return a.outOfScope(ctx, file, inst, reason)
		}
	}
	if err != nil {
		if !sentinel.Permanent(err) {
			return Outcome{Path: path, Status: StatusRetry, Err: err}
		}
		if o, wait := a.stillWritten(file, err); wait {
			return o
		}
		return a.fail(ctx, file, err)
	}
	file.SHA256 = inst.SHA256
	inst.SourcePath = path
	if o, wait := a.changedSince(file); wait {
		// A writer added to it while it was read: what was read is not
		// what will be there.
		return o
	}

	release := a.claim(inst.ID)
	defer release()
	if o, done := a.checkSeen(ctx, file, inst); done {
		return o
	}

	model := a.currentModel()
	size := model.InputSize()
	score, err := model.Score(a.resample(img, size, size))
	if err != nil {
		// A scoring failure is the model's, not the file's: keep the file
		// and try again later rather than quarantine a valid image.
		return Outcome{Path: path, Status: StatusRetry, InstanceID: inst.ID, Err: fmt.Errorf("score %s: %w", path, err)}
	}
	scored := time.Now()

	info := model.Info()
	score = a.qualify(score)
	rep := NewReport(inst, score, info.Version)
	rep.SourceFile = a.sourceName(path)
	rep.OperatingPoint = a.operatingPoint(info.Version)
	rep.Timings = sentinel.Timings{DecodeMS: ms(decoded.Sub(start)), ScoreMS: ms(scored.Sub(decoded))}
	// The report is staged beside its final name and put in place only
	// once the instance is recorded, so that no report on disk describes
	// a file the database did not take.
	staged, err := stageReport(a.cfg.Reports, rep, img, score.Heatmap, start)
	if err != nil {
		return Outcome{Path: path, Status: StatusRetry, InstanceID: inst.ID, Err: err}
	}
	// The DICOM outputs are recorded with the report, so that a stop
	// between the two can never leave a report whose outputs are not sent.
	outs := a.prepareOutputs(ctx, rep, source, img, score.Heatmap)
	err = a.db.RecordResult(ctx, store.Result{
		Instance: inst, Score: score, ModelVersion: info.Version,
		ReportPath: staged.report, HeatmapPath: staged.heatmap, ReportBody: staged.body, File: file, Outbox: outs.items,
	})
	if errors.Is(err, store.ErrExists) {
		// Another process recorded the instance in the meantime.
		staged.discard()
		outs.drop()
		o, _ := a.checkSeen(ctx, file, inst)
		return o
	}
	if err != nil {
		staged.discard()
		outs.drop()
		return Outcome{Path: path, Status: StatusRetry, InstanceID: inst.ID, Err: err}
	}
	a.outputsRecorded(outs)
	if err := staged.commit(); err != nil {
		// Recorded, but not in place: the next start puts it there (see
		// mendReports).
		a.log.Error("report recorded but not put in place", slog.String("instance", inst.ID), slog.Any("error", err))
	}
	a.archive(ctx, file)
	if a.currentModel().Info().Version != info.Version {
		// The model changed while this file was scored, perhaps after the
		// pass that compares reports with the new model: another pass.
		a.requestRevision()
	}
	return Outcome{Path: path, Status: store.FileDone, InstanceID: inst.ID, ReportPath: staged.report, Score: &score}
}

// errNotReady marks a file that is not complete yet: it changed since it
// was taken, or it ends early while its writer may still be at work. It is
// taken again later without spending one of its attempts.
var errNotReady = errors.New("not complete yet")

// changedSince reports, with the outcome to give, whether the file at
// file.Path is no longer the one that was taken (another size or
// modification time, or gone).
func (a *Agent) changedSince(file store.File) (Outcome, bool) {
	fi, err := os.Lstat(file.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return Outcome{Path: file.Path, Status: StatusGone}, true
	}
	if err != nil {
		return Outcome{Path: file.Path, Status: StatusRetry, Err: fmt.Errorf("stat %s: %w", file.Path, err)}, true
	}
	if fi.Size() != file.Size || fi.ModTime().UnixNano() != file.ModTimeNS {
		return Outcome{Path: file.Path, Status: StatusRetry,
			Err: fmt.Errorf("%w: it changed while it was read (%d bytes, now %d)", errNotReady, file.Size, fi.Size())}, true
	}
	return Outcome{}, false
}

// stillWritten reports, with the outcome to give, whether a file that
// failed to decode may only be unfinished: it changed since it was taken,
// or it is truncated or unrecognisable and was modified within the grace
// period, as a copy over SMB or NFS, or a slow sender, leaves a file that
// pauses longer than stable_for.
func (a *Agent) stillWritten(file store.File, cause error) (Outcome, bool) {
	if o, changed := a.changedSince(file); changed {
		return o, true
	}
	// A file cut short reads as invalid; one not yet long enough to show
	// its signature (132 bytes for DICOM) as not DICOM at all.
	// One cut short before its pixel data reads as an object without
	// an image.
	unfinished := errors.Is(cause, sentinel.ErrInvalid) || errors.Is(cause, sentinel.ErrNoPixels) ||
		(errors.Is(cause, sentinel.ErrNotDICOM) && file.Size < 132)
	if !unfinished {
		return Outcome{}, false
	}
	age := time.Since(time.Unix(0, file.ModTimeNS))
	if age >= a.cfg.WriteGrace {
		return Outcome{}, false
	}
	return Outcome{Path: file.Path, Status: StatusRetry,
		Err: fmt.Errorf("%w: modified %s ago, within the %s write grace: %w", errNotReady,
			age.Round(time.Second), a.cfg.WriteGrace, cause)}, true
}

// linkTarget returns the file a symbolic link in a drop folder points to,
// when links are allowed and the target lies inside a watched folder.
func (a *Agent) linkTarget(path string) (string, error) {
	if !a.cfg.FollowLinks {
		return "", errors.New("a symbolic link; links are not followed (ingest.follow_links)")
	}
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("a symbolic link that cannot be resolved: %w", err)
	}
	for _, root := range a.cfg.Inbox {
		r, err := filepath.EvalSymlinks(root)
		if err != nil {
			continue
		}
		if rel, err := filepath.Rel(r, target); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return target, nil
		}
	}
	return "", errors.New("a symbolic link to a file outside the watched folders")
}

// refuse records a file that is never read (a symbolic link the settings do
// not allow) as failed, leaving it where it is: moving or copying it would
// act on whatever it points to.
func (a *Agent) refuse(ctx context.Context, file store.File, cause error) Outcome {
	file.Status = store.FileFailed
	file.Error = "refused: " + cause.Error()
	if err := a.db.RecordFile(ctx, file); err != nil {
		return Outcome{Path: file.Path, Status: StatusRetry, Err: errors.Join(cause, err)}
	}
	return Outcome{Path: file.Path, Status: store.FileFailed, Err: fmt.Errorf("refused: %w", cause)}
}

// checkSeen records the file as a duplicate or conflict if its instance has
// been scored before, and reports whether it did.
func (a *Agent) checkSeen(ctx context.Context, file store.File, inst sentinel.Instance) (Outcome, bool) {
	sha, seen, err := a.db.InstanceSHA(ctx, inst.ID)
	if err != nil {
		return Outcome{Path: file.Path, Status: StatusRetry, InstanceID: inst.ID, Err: err}, true
	}
	if !seen {
		return Outcome{}, false
	}
	file.InstanceID = inst.ID
	file.Status = store.FileDuplicate
	var cerr error
	if sha != inst.SHA256 {
		// Same UID, different bytes: both files are kept and the conflict
		// is flagged; the first one's score stands.
		file.Status = store.FileConflict
		cerr = fmt.Errorf("instance %s already received with different content (sha256 %s)", inst.ID, sha)
		file.Error = cerr.Error()
	}
	if err := a.db.RecordFile(ctx, file); err != nil {
		return Outcome{Path: file.Path, Status: StatusRetry, InstanceID: inst.ID, Err: err}, true
	}
	if file.Status == store.FileDuplicate {
		a.archive(ctx, file)
	}
	return Outcome{Path: file.Path, Status: file.Status, InstanceID: inst.ID, Err: cerr}, true
}

// outOfScope records a valid file that Sentinel does not score, with the
// reason, and leaves it where it is (or archives it, as a handled file).
func (a *Agent) outOfScope(ctx context.Context, file store.File, inst sentinel.Instance, reason string) Outcome {
	file.Status = store.FileOutOfScope
	file.SHA256 = inst.SHA256
	file.Error = reason
	if err := a.db.RecordFile(ctx, file); err != nil {
		return Outcome{Path: file.Path, Status: StatusRetry, Err: err}
	}
	a.archive(ctx, file)
	return Outcome{Path: file.Path, Status: store.FileOutOfScope, InstanceID: inst.ID, Err: errors.New(reason)}
}

// fail quarantines a file that can never be processed and records why. A
// file that changed since it was taken is not moved: it is taken again.
func (a *Agent) fail(ctx context.Context, file store.File, cause error) Outcome {
	q, qerr := quarantine(a.cfg.Quarantine, file, cause, a.cfg.CopyToQuarantine)
	if errors.Is(qerr, errNotReady) {
		return Outcome{Path: file.Path, Status: StatusRetry, Err: qerr}
	}
	if qerr != nil && ownSide(qerr) {
		// No room to keep it: the file is not to blame, and stays
		// where it is until there is.
		return Outcome{Path: file.Path, Status: StatusRetry, Err: fmt.Errorf("quarantine: %w", qerr)}
	}
	file.Status = store.FileFailed
	file.Error = cause.Error()
	file.QuarantinePath = q
	if qerr != nil {
		// The file stays where it is; the record keeps it from being
		// retried forever.
		file.Error += "; quarantine failed: " + qerr.Error()
	}
	if err := a.db.RecordFile(ctx, file); err != nil {
		return Outcome{Path: file.Path, Status: StatusRetry, Err: errors.Join(cause, err)}
	}
	return Outcome{Path: file.Path, Status: store.FileFailed, Err: cause}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// NewReport builds an instance's report from its identity and score.
func NewReport(inst sentinel.Instance, score sentinel.Score, modelVersion string) sentinel.Report {
	rep := sentinel.Report{
		SchemaVersion:     sentinel.ReportSchemaVersion,
		InstanceID:        inst.ID,
		SOPInstanceUID:    inst.SOPInstanceUID,
		StudyInstanceUID:  inst.StudyInstanceUID,
		SeriesInstanceUID: inst.SeriesInstanceUID,
		Modality:          inst.Modality,
		Placement:         inst.Placement,
		SourceFile:        inst.SourcePath,
		IntendedUse:       sentinel.IntendedUse,
		SHA256:            inst.SHA256,
		ModelVersion:      modelVersion,
		Score:             score.Value,
		Threshold:         score.Threshold,
		NormalLimit:       score.NormalLimit,
		Decision:          score.Decision,
		DecisionReason:    score.Reason,
		Uncertainty:       score.Uncertainty,
		Appearance:        score.Appearance,
		Components:        score.Components,
		Revision:          1,
	}
	if rep.AccessionNumber == "" {
		rep.AccessionNumber = inst.AccessionNumber
	}
	return rep
}

// logName is how logs name a file: like reports, by its path below its
// watched folder, or, when reports leave the name out, by a digest of its
// path that tells files apart without naming anyone.
func (a *Agent) logName(path string) string {
	if a.cfg.OmitSourceFile {
		sum := sha256.Sum256([]byte(path))
		return "file-" + hex.EncodeToString(sum[:6])
	}
	return a.sourceName(path)
}

// sourceName is how a report names the file it was made from: its path
// relative to the watched folder it came from (PACS exports often name
// files after the patient, so a site can leave it out with
// OmitSourceFile).
func (a *Agent) sourceName(path string) string {
	if a.cfg.OmitSourceFile {
		return ""
	}
	for _, root := range a.cfg.Inbox {
		if r, err := filepath.Rel(root, path); err == nil && r != ".." && !strings.HasPrefix(r, "../") {
			return filepath.ToSlash(r)
		}
	}
	return filepath.Base(path)
}

// archive moves a handled file below the archive folder, keeping its path
// relative to its drop folder, when an archive is configured. A file that
// cannot be moved stays where it is: it is recorded, so it is not taken
// again.
func (a *Agent) archive(ctx context.Context, file store.File) {
	if a.cfg.Archive == "" {
		return
	}
	rel := filepath.Base(file.Path)
	for _, root := range a.cfg.Inbox {
		if r, err := filepath.Rel(root, file.Path); err == nil && !strings.HasPrefix(r, "..") {
			rel = r
			break
		}
	}
	dst := filepath.Join(a.cfg.Archive, rel)
	if err := os.MkdirAll(filepath.Dir(dst), dirMode); err != nil {
		a.log.Warn("archive", slog.String("path", a.logName(file.Path)), slog.Any("error", err))
		return
	}
	for i := 1; exists(dst); i++ {
		dst = filepath.Join(a.cfg.Archive, fmt.Sprintf("%s.%d", rel, i))
	}
	if err := os.Rename(file.Path, dst); err != nil {
		a.log.Warn("archive", slog.String("path", a.logName(file.Path)), slog.Any("error", err))
		return
	}
	if err := a.db.SetArchivePath(ctx, file.Path, file.Size, file.ModTimeNS, dst); err != nil {
		a.log.Warn("archive", slog.String("path", a.logName(file.Path)), slog.Any("error", err))
	}
}
