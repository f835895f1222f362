package store

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
)

// patientSecret names the key of the patient hash in the secrets table.
const patientSecret = "patient_key"

// PatientKeyer returns the function that turns a Patient ID and its issuer
// into the instance's patient key: the first 128 bits of HMAC-SHA-256
// under a random 256-bit key made once per workspace and kept in the
// database, in hex. The same patient gets the same key within a workspace,
// and the key cannot be traced back to the ID by trying likely IDs without
// the workspace's database. The ID itself is never stored.
func (db *DB) PatientKeyer(ctx context.Context) (func(issuer, id string) string, error) {
	secret, err := db.secret(ctx, patientSecret)
	if err != nil {
		return nil, err
	}
	return func(issuer, id string) string {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(issuer))
		m.Write([]byte{0})
		m.Write([]byte(id))
		return hex.EncodeToString(m.Sum(nil)[:16])
	}, nil
}

// ErrSecretSet means a workspace already has the secret being set.
var ErrSecretSet = errors.New("store: the workspace already has its patient key")

// SetPatientSecret sets the secret of a new workspace's patient keys
// instead of a random one, so that a rehearsal of the learning loop
// (agent.Rehearse) keys its patients as another with the same secret does
// and its choices by patient repeat. It fails with ErrSecretSet once the
// workspace has one: keys already made would no longer match. A site's
// workspace keeps its random secret.
func (db *DB) SetPatientSecret(ctx context.Context, secret []byte) error {
	if len(secret) < 16 {
		return fmt.Errorf("store: a patient secret of %d bytes is too short", len(secret))
	}
	return db.tx(ctx, func(tx *Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM secrets WHERE name = ?`, patientSecret).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrSecretSet
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO secrets (name, value) VALUES (?, ?)`, patientSecret, secret)
		return err
	})
}

// secret returns the named secret, making a random one of 32 bytes the
// first time.
func (db *DB) secret(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	err := db.tx(ctx, func(tx *Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT value FROM secrets WHERE name = ?`, name).Scan(&v)
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		v = make([]byte, 32)
		if _, err := rand.Read(v); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO secrets (name, value) VALUES (?, ?)`, name, v)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: secret %s: %w", name, err)
	}
	return v, nil
}

// Patient is what the database knows of an instance's patient: the
// patient key (sentinel.Instance.PatientKey) and the study.
type Patient struct {
	Key, Study string
}

// Patients maps each instance with a patient key or a study to them.
func (db *DB) Patients(ctx context.Context) (map[string]Patient, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT instance_id, patient_key, study_instance_uid FROM instances
		WHERE patient_key != '' OR study_instance_uid != ''`)
	if err != nil {
		return nil, fmt.Errorf("store: patient keys: %w", err)
	}
	defer rows.Close()
	out := map[string]Patient{}
	for rows.Next() {
		var id string
		var p Patient
		if err := rows.Scan(&id, &p.Key, &p.Study); err != nil {
			return nil, fmt.Errorf("store: patient keys: %w", err)
		}
		out[id] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: patient keys: %w", err)
	}
	return out, nil
}
