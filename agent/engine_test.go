package agent

import (
	"os"
	"testing"

	"github.com/sentinel-pacs/sentinel/internal/pgtest"
)

// onPostgres says which engine the tests run on: all of them on SQLite,
// then again, with the same assertions, on PostgreSQL.
var onPostgres bool

func TestMain(m *testing.M) { os.Exit(pgtest.RunTwice(m, "agent", &onPostgres)) }

// dbTarget is where a test's database lives: a SQLite file in dir, or a
// new database on the PostgreSQL server.
func dbTarget(tb testing.TB, dir string) string { return pgtest.Target(tb, dir, onPostgres) }
