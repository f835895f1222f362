package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Reader roles: a reader labels; an admin also retrains, rolls back and
// manages readers.
const (
	RoleReader = "reader"
	RoleAdmin  = "admin"
)

// Errors about readers and sessions.
var (
	// ErrReaderExists means an active reader already has the name.
	ErrReaderExists = errors.New("store: reader already exists")
	// ErrUnknownReader means no reader has the name.
	ErrUnknownReader = errors.New("store: unknown reader")
	// ErrBadToken means a token or session names no active reader: wrong,
	// revoked or expired.
	ErrBadToken = errors.New("store: token not valid")
)

// Reader is a person who signs in to the page.
type Reader struct {
	Name      string
	Role      string
	CreatedAt time.Time
	// RevokedAt is when the reader's token was revoked; zero while active.
	RevokedAt time.Time
}

// Admin reports whether the reader may retrain, roll back and manage readers.
func (r Reader) Admin() bool { return r.Role == RoleAdmin }

// Session is a signed-in browser.
type Session struct {
	Reader Reader
	// CSRF is the token every state-changing form of the session carries.
	CSRF      string
	ExpiresAt time.Time
}

// newSecret returns 32 random bytes as unpadded URL-safe base64.
func newSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func hashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// AddReader records a reader with a new random token and returns the token:
// the only time it exists outside the reader's hands, since only its hash
// is stored. A revoked reader's name may be given a new token; an active
// one's may not (ErrReaderExists).
func (db *DB) AddReader(ctx context.Context, name, role string) (string, error) {
	if name == "" || len(name) > 64 {
		return "", fmt.Errorf("store: add reader: a name of 1 to 64 characters is needed")
	}
	if role != RoleReader && role != RoleAdmin {
		return "", fmt.Errorf("store: add reader %s: unknown role %q", name, role)
	}
	token, err := newSecret()
	if err != nil {
		return "", fmt.Errorf("store: add reader %s: %w", name, err)
	}
	err = db.tx(ctx, func(tx *Tx) error {
		var revoked string
		err := tx.QueryRowContext(ctx, `SELECT revoked_at FROM readers WHERE name = ?`, name).Scan(&revoked)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = tx.ExecContext(ctx, `INSERT INTO readers (name, role, token_hash, created_at) VALUES (?, ?, ?, ?)`,
				name, role, hashSecret(token), db.now())
			return err
		case err != nil:
			return err
		case revoked == "":
			return ErrReaderExists
		}
		_, err = tx.ExecContext(ctx, `UPDATE readers SET role = ?, token_hash = ?, created_at = ?, revoked_at = '' WHERE name = ?`,
			role, hashSecret(token), db.now(), name)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("store: add reader %s: %w", name, err)
	}
	return token, nil
}

// Readers lists every reader, active or revoked, by name.
func (db *DB) Readers(ctx context.Context) ([]Reader, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT name, role, created_at, revoked_at FROM readers ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: readers: %w", err)
	}
	defer rows.Close()
	var out []Reader
	for rows.Next() {
		var r Reader
		var created, revoked string
		if err := rows.Scan(&r.Name, &r.Role, &created, &revoked); err != nil {
			return nil, fmt.Errorf("store: readers: %w", err)
		}
		r.CreatedAt, r.RevokedAt = parseTime(created), parseTime(revoked)
		out = append(out, r)
	}
	return out, rows.Err()
}

// RevokeReader revokes a reader's token and ends their sessions: their
// next request finds itself signed out.
func (db *DB) RevokeReader(ctx context.Context, name string) error {
	err := db.tx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE readers SET revoked_at = ? WHERE name = ? AND revoked_at = ''`, db.now(), name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrUnknownReader
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM sessions WHERE reader = ?`, name)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: revoke reader %s: %w", name, err)
	}
	return nil
}

// ReaderByToken returns the active reader a token belongs to, or
// ErrBadToken. The token is looked up by its hash, and the stored hash
// compared in constant time.
func (db *DB) ReaderByToken(ctx context.Context, token string) (Reader, error) {
	h := hashSecret(token)
	var r Reader
	var stored, created string
	err := db.db.QueryRowContext(ctx, `SELECT name, role, token_hash, created_at FROM readers
		WHERE token_hash = ? AND revoked_at = ''`, h).Scan(&r.Name, &r.Role, &stored, &created)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && subtle.ConstantTimeCompare([]byte(stored), []byte(h)) != 1) {
		return Reader{}, ErrBadToken
	}
	if err != nil {
		return Reader{}, fmt.Errorf("store: reader by token: %w", err)
	}
	r.CreatedAt = parseTime(created)
	return r, nil
}

// NewSession starts a session for an active reader, lasting ttl, and
// returns its id (for the cookie; only its hash is stored) and the session.
func (db *DB) NewSession(ctx context.Context, reader string, ttl time.Duration) (string, Session, error) {
	id, err := newSecret()
	if err != nil {
		return "", Session{}, fmt.Errorf("store: new session: %w", err)
	}
	csrf, err := newSecret()
	if err != nil {
		return "", Session{}, fmt.Errorf("store: new session: %w", err)
	}
	now := db.Now()
	err = db.tx(ctx, func(tx *Tx) error {
		// Expired sessions go as new ones come.
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < ?`, formatTime(now)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (id_hash, reader, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			hashSecret(id), reader, csrf, formatTime(now), formatTime(now.Add(ttl)))
		return err
	})
	if err != nil {
		return "", Session{}, fmt.Errorf("store: new session for %s: %w", reader, err)
	}
	s, err := db.SessionByID(ctx, id)
	return id, s, err
}

// SessionByID returns the live session with that id, with its reader, or
// ErrBadToken when it is unknown, expired, or its reader was revoked.
func (db *DB) SessionByID(ctx context.Context, id string) (Session, error) {
	var s Session
	var created, revoked, expires string
	err := db.db.QueryRowContext(ctx, `SELECT r.name, r.role, r.created_at, r.revoked_at, s.csrf, s.expires_at
		FROM sessions s JOIN readers r ON r.name = s.reader WHERE s.id_hash = ?`, hashSecret(id)).
		Scan(&s.Reader.Name, &s.Reader.Role, &created, &revoked, &s.CSRF, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, ErrBadToken
	}
	if err != nil {
		return Session{}, fmt.Errorf("store: session: %w", err)
	}
	s.Reader.CreatedAt, s.ExpiresAt = parseTime(created), parseTime(expires)
	if revoked != "" || !db.Now().Before(s.ExpiresAt) {
		return Session{}, ErrBadToken
	}
	return s, nil
}

// EndSession signs a session out.
func (db *DB) EndSession(ctx context.Context, id string) error {
	if _, err := db.db.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, hashSecret(id)); err != nil {
		return fmt.Errorf("store: end session: %w", err)
	}
	return nil
}
