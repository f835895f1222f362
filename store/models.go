package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sentinel-pacs/sentinel"
)

// SaveModel records a model version; with activate it becomes the only
// active one.
func (db *DB) SaveModel(ctx context.Context, m sentinel.ModelInfo, activate bool) error {
	info, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("store: model %s: %w", m.Version, err)
	}
	err = db.tx(ctx, func(tx *Tx) error {
		if activate {
			if _, err := tx.ExecContext(ctx, `UPDATE models SET active = 0 WHERE active = 1`); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO models (version, kind, path, info_json, created_at, active)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (version) DO UPDATE SET path = excluded.path,
			info_json = excluded.info_json, active = CASE WHEN models.active > excluded.active THEN models.active ELSE excluded.active END`,
			m.Version, m.Kind, m.Path, string(info), formatTime(m.CreatedAt), activate)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: save model %s: %w", m.Version, err)
	}
	return nil
}

// ActiveModel returns the active model, or an error wrapping
// sentinel.ErrNoModel when there is none.
func (db *DB) ActiveModel(ctx context.Context) (sentinel.ModelInfo, error) {
	var info string
	err := db.db.QueryRowContext(ctx, `SELECT info_json FROM models WHERE active = 1`).Scan(&info)
	if errors.Is(err, sql.ErrNoRows) {
		return sentinel.ModelInfo{}, fmt.Errorf("store: %w", sentinel.ErrNoModel)
	}
	if err != nil {
		return sentinel.ModelInfo{}, fmt.Errorf("store: active model: %w", err)
	}
	var m sentinel.ModelInfo
	if err := json.Unmarshal([]byte(info), &m); err != nil {
		return m, fmt.Errorf("store: active model: %w", err)
	}
	return m, nil
}

// Models lists every recorded model version, oldest first.
func (db *DB) Models(ctx context.Context) ([]sentinel.ModelInfo, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT info_json FROM models ORDER BY created_at, version`)
	if err != nil {
		return nil, fmt.Errorf("store: models: %w", err)
	}
	defer rows.Close()
	var out []sentinel.ModelInfo
	for rows.Next() {
		var info string
		var m sentinel.ModelInfo
		if err := rows.Scan(&info); err != nil {
			return nil, fmt.Errorf("store: models: %w", err)
		}
		if err := json.Unmarshal([]byte(info), &m); err != nil {
			return nil, fmt.Errorf("store: models: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// StartTrainingRun records that a training run began on n images and returns
// its id.
func (db *DB) StartTrainingRun(ctx context.Context, images int) (int64, error) {
	var id int64
	err := db.tx(ctx, func(tx *Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO training_runs (started_at, images, status)
			VALUES (?, ?, 'running') RETURNING id`, db.now(), images).Scan(&id)
	})
	if err != nil {
		return 0, fmt.Errorf("store: start training run: %w", err)
	}
	return id, nil
}

// FinishTrainingRun records how a training run ended.
func (db *DB) FinishTrainingRun(ctx context.Context, id int64, modelVersion, status string, metrics map[string]float64) error {
	m, err := json.Marshal(metrics)
	if err != nil {
		return fmt.Errorf("store: finish training run %d: %w", id, err)
	}
	err = db.tx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE training_runs SET model_version = ?, finished_at = ?,
			status = ?, metrics_json = ? WHERE id = ?`, modelVersion, db.now(), status, string(m), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: finish training run %d: %w", id, err)
	}
	return nil
}

// TrainingRuns lists every training run, oldest first.
func (db *DB) TrainingRuns(ctx context.Context) ([]sentinel.TrainingRun, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT id, model_version, started_at, finished_at, images,
		status, metrics_json FROM training_runs ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: training runs: %w", err)
	}
	defer rows.Close()
	var out []sentinel.TrainingRun
	for rows.Next() {
		var r sentinel.TrainingRun
		var started, finished, metrics string
		if err := rows.Scan(&r.ID, &r.ModelVersion, &started, &finished, &r.Images, &r.Status, &metrics); err != nil {
			return nil, fmt.Errorf("store: training runs: %w", err)
		}
		r.StartedAt, r.FinishedAt = parseTime(started), parseTime(finished)
		if err := json.Unmarshal([]byte(metrics), &r.Metrics); err != nil {
			return nil, fmt.Errorf("store: training run %d metrics: %w", r.ID, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
