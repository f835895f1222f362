package store

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel"
)

func TestReadersTokensAndSessions(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	tok, err := db.AddReader(ctx, "dr-a", RoleReader)
	if err != nil || len(tok) < 40 {
		t.Fatalf("token %q, %v", tok, err)
	}
	if _, err := db.AddReader(ctx, "dr-a", RoleAdmin); !errors.Is(err, ErrReaderExists) {
		t.Fatalf("second add: %v", err)
	}
	if _, err := db.AddReader(ctx, "x", "owner"); err == nil {
		t.Fatal("unknown role accepted")
	}
	// Only the hash is stored.
	var stored string
	if err := db.db.QueryRow(`SELECT token_hash FROM readers WHERE name = 'dr-a'`).Scan(&stored); err != nil || stored == tok || stored != hashSecret(tok) {
		t.Fatalf("stored %q for token %q (%v)", stored, tok, err)
	}
	r, err := db.ReaderByToken(ctx, tok)
	if err != nil || r.Name != "dr-a" || r.Admin() {
		t.Fatalf("by token: %+v %v", r, err)
	}
	if _, err := db.ReaderByToken(ctx, tok+"x"); !errors.Is(err, ErrBadToken) {
		t.Fatalf("wrong token: %v", err)
	}
	id, s, err := db.NewSession(ctx, "dr-a", time.Hour)
	if err != nil || s.CSRF == "" || s.Reader.Name != "dr-a" {
		t.Fatalf("session %+v %v", s, err)
	}
	if got, err := db.SessionByID(ctx, id); err != nil || got.CSRF != s.CSRF {
		t.Fatalf("session by id: %+v %v", got, err)
	}
	if _, err := db.SessionByID(ctx, "nope"); !errors.Is(err, ErrBadToken) {
		t.Fatalf("unknown session: %v", err)
	}
	// Revoking signs the reader out and refuses the token.
	if err := db.RevokeReader(ctx, "dr-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SessionByID(ctx, id); !errors.Is(err, ErrBadToken) {
		t.Fatalf("session after revoke: %v", err)
	}
	if _, err := db.ReaderByToken(ctx, tok); !errors.Is(err, ErrBadToken) {
		t.Fatalf("token after revoke: %v", err)
	}
	if err := db.RevokeReader(ctx, "dr-a"); !errors.Is(err, ErrUnknownReader) {
		t.Fatalf("revoke twice: %v", err)
	}
	rs, err := db.Readers(ctx)
	if err != nil || len(rs) != 1 || rs[0].RevokedAt.IsZero() {
		t.Fatalf("readers %+v %v", rs, err)
	}
	// A revoked name may be given a new token; the old one stays refused.
	tok2, err := db.AddReader(ctx, "dr-a", RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := db.ReaderByToken(ctx, tok2); err != nil || !r.Admin() {
		t.Fatalf("new token: %+v %v", r, err)
	}
	if _, err := db.ReaderByToken(ctx, tok); !errors.Is(err, ErrBadToken) {
		t.Fatalf("old token after re-add: %v", err)
	}
}

func TestSessionExpires(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	if _, err := db.AddReader(ctx, "dr-a", RoleReader); err != nil {
		t.Fatal(err)
	}
	id, _, err := db.NewSession(ctx, "dr-a", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// The test clock moves a second a call.
	for i := 0; i < 12; i++ {
		db.Now()
	}
	if _, err := db.SessionByID(ctx, id); !errors.Is(err, ErrBadToken) {
		t.Fatalf("expired session: %v", err)
	}
}

func TestLabelAuditedAndUndo(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	if err := db.RecordResult(ctx, result("1.2.3.1", "aa", "/in/a.dcm")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddQuery(ctx, sentinel.Query{InstanceID: "1.2.3.1", Strategy: "boundary", Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	l := sentinel.Label{InstanceID: "1.2.3.1", Value: "abnormal", Finding: "effusion", Reader: "dr-a", Time: db.Now(), Source: "page"}
	if added, err := db.LabelAudited(ctx, l, "127.0.0.1"); err != nil || !added {
		t.Fatalf("label: %v %v", added, err)
	}
	if qs, _ := db.Queries(ctx, sentinel.QueryOpen); len(qs) != 0 {
		t.Fatalf("query still open: %+v", qs)
	}
	log, err := db.AuditLog(ctx, 10)
	if err != nil || len(log) != 1 || log[0].Reader != "dr-a" || log[0].Action != AuditLabel ||
		log[0].Subject != "1.2.3.1" || log[0].Detail != "abnormal: effusion" || log[0].Remote != "127.0.0.1" {
		t.Fatalf("audit %+v %v", log, err)
	}
	got, err := db.UndoLabel(ctx, "1.2.3.1", "dr-a", "127.0.0.1")
	if err != nil || got.Value != "abnormal" {
		t.Fatalf("undo: %+v %v", got, err)
	}
	if ls, _ := db.Labels(ctx, "1.2.3.1"); len(ls) != 0 {
		t.Fatalf("labels after undo: %+v", ls)
	}
	if qs, _ := db.Queries(ctx, sentinel.QueryOpen); len(qs) != 1 {
		t.Fatalf("query not reopened: %+v", qs)
	}
	if _, err := db.UndoLabel(ctx, "1.2.3.1", "dr-a", ""); !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("undo with no label: %v", err)
	}
	// Once a model is trained after the label, it stays.
	l.Time = db.Now()
	if _, err := db.LabelAudited(ctx, l, ""); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveModel(ctx, sentinel.ModelInfo{Version: "m2", Kind: "ae", CreatedAt: db.Now()}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UndoLabel(ctx, "1.2.3.1", "dr-a", ""); !errors.Is(err, ErrTooLate) {
		t.Fatalf("undo after retraining: %v", err)
	}
}
