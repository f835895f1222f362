package agent

import (
	"context"
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
	fi, err := os.Stat(path)
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

	inst, img, err := a.decode(path)
	decoded := time.Now()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Outcome{Path: path, Status: StatusGone}
		}
		if !sentinel.Permanent(err) {
			return Outcome{Path: path, Status: StatusRetry, Err: err}
		}
		return a.fail(ctx, file, err)
	}
	file.SHA256 = inst.SHA256

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
	rep := NewReport(inst, score, info.Version)
	rep.SourceFile = path
	rep.Timings = sentinel.Timings{DecodeMS: ms(decoded.Sub(start)), ScoreMS: ms(scored.Sub(decoded))}
	reportPath, heatmapPath, err := writeReport(a.cfg.Reports, rep, img, score.Heatmap, start)
	if err != nil {
		return Outcome{Path: path, Status: StatusRetry, InstanceID: inst.ID, Err: err}
	}
	err = a.db.RecordResult(ctx, store.Result{
		Instance: inst, Score: score, ModelVersion: info.Version,
		ReportPath: reportPath, HeatmapPath: heatmapPath, File: file,
	})
	if errors.Is(err, store.ErrExists) {
		// Another process recorded the instance in the meantime.
		o, _ := a.checkSeen(ctx, file, inst)
		return o
	}
	if err != nil {
		return Outcome{Path: path, Status: StatusRetry, InstanceID: inst.ID, Err: err}
	}
	a.archive(ctx, file)
	if a.currentModel().Info().Version != info.Version {
		// The model changed while this file was scored, perhaps after the
		// pass that compares reports with the new model: another pass.
		a.requestRevision()
	}
	return Outcome{Path: path, Status: store.FileDone, InstanceID: inst.ID, ReportPath: reportPath, Score: &score}
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

// fail quarantines a file that can never be processed and records why.
func (a *Agent) fail(ctx context.Context, file store.File, cause error) Outcome {
	q, qerr := quarantine(a.cfg.Quarantine, file.Path, cause, a.cfg.CopyToQuarantine)
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
	return sentinel.Report{
		SchemaVersion:     sentinel.ReportSchemaVersion,
		InstanceID:        inst.ID,
		SOPInstanceUID:    inst.SOPInstanceUID,
		StudyInstanceUID:  inst.StudyInstanceUID,
		SeriesInstanceUID: inst.SeriesInstanceUID,
		Modality:          inst.Modality,
		SourceFile:        inst.SourcePath,
		SHA256:            inst.SHA256,
		ModelVersion:      modelVersion,
		Score:             score.Value,
		Threshold:         score.Threshold,
		NormalLimit:       score.NormalLimit,
		Decision:          score.Decision,
		DecisionReason:    score.Reason,
		Uncertainty:       score.Uncertainty,
		Components:        score.Components,
		Revision:          1,
	}
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
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		a.log.Warn("archive", slog.String("path", file.Path), slog.Any("error", err))
		return
	}
	for i := 1; exists(dst); i++ {
		dst = filepath.Join(a.cfg.Archive, fmt.Sprintf("%s.%d", rel, i))
	}
	if err := os.Rename(file.Path, dst); err != nil {
		a.log.Warn("archive", slog.String("path", file.Path), slog.Any("error", err))
		return
	}
	if err := a.db.SetArchivePath(ctx, file.Path, file.Size, file.ModTimeNS, dst); err != nil {
		a.log.Warn("archive", slog.String("path", file.Path), slog.Any("error", err))
	}
}
