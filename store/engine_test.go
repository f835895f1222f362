package store

import (
	"errors"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/sentinel-pacs/sentinel/internal/pgtest"
)

// testPostgres says which engine the tests run on: the whole suite runs on
// SQLite, then again, with the same assertions, on PostgreSQL.
var testPostgres bool

func TestMain(m *testing.M) { os.Exit(pgtest.RunTwice(m, "store", &testPostgres)) }

// testTarget returns where a test's fresh database lives: a SQLite file in
// a temporary folder, or a new database on the PostgreSQL server.
func testTarget(tb testing.TB) string {
	tb.Helper()
	return pgtest.Target(tb, tb.TempDir(), testPostgres)
}

// sqliteOnly skips a test of the SQLite file itself on PostgreSQL.
func sqliteOnly(tb testing.TB) {
	tb.Helper()
	if testPostgres {
		tb.Skip("a test of the SQLite file")
	}
}

func TestRebind(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`SELECT a FROM t WHERE b = ? AND c = ?`, `SELECT a FROM t WHERE b = $1 AND c = $2`},
		{`INSERT INTO q SELECT ?1, ?2, ?1`, `INSERT INTO q SELECT $1, $2, $1`},
		{`SELECT '?', "a?" FROM t WHERE x = ? -- why?` + "\n AND y = ?", `SELECT '?', "a?" FROM t WHERE x = $1 -- why?` + "\n AND y = $2"},
		{`LIKE ? ESCAPE '\'`, `LIKE $1 ESCAPE '\'`},
	} {
		if got := rebind(c.in); got != c.want {
			t.Errorf("rebind(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestWhereHidesPasswords(t *testing.T) {
	for _, u := range []string{"postgres://me:s3cret@db.example/sentinel", "postgresql://me@db.example/sentinel?password=s3cret&sslmode=require"} {
		got := NewDB(u).Where()
		if strings.Contains(got, "s3cret") || !strings.Contains(got, "db.example/sentinel") {
			t.Errorf("Where(%q) = %q", u, got)
		}
	}
	if got := NewDB("/ws/state.db").Where(); got != "/ws/state.db" {
		t.Errorf("Where of a SQLite file = %q", got)
	}
}

// A PostgreSQL server that cannot be reached is a failure on Sentinel's
// side, never the file's.
func TestUnreachableServerIsUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	db := NewDB("postgres://postgres@" + addr + "/sentinel?sslmode=disable&connect_timeout=2")
	err = db.Open()
	if err == nil {
		db.Close()
		t.Fatal("opened a database on a closed port")
	}
	if !Unavailable(err) {
		t.Fatalf("Unavailable(%v) = false", err)
	}
	if Unavailable(errors.New("not DICOM")) {
		t.Fatal("a file's fault counted as the database's")
	}
}
