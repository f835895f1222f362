package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sentinel-pacs/sentinel/internal/pgtest"
)

// onPostgres says which engine the agent's tests run on: all of them on
// SQLite, then again, with the same assertions, on PostgreSQL.
var onPostgres bool

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if pgtest.Available() {
			fmt.Println("agent: the same tests on PostgreSQL")
			onPostgres = true
			code = m.Run()
		} else {
			fmt.Println("agent: the PostgreSQL run is skipped: no server (set " + pgtest.Env + " or install Debian's postgresql)")
		}
	}
	pgtest.Stop()
	os.Exit(code)
}

// dbTarget is where a test's database lives: a SQLite file in dir, or a
// new database on the PostgreSQL server.
func dbTarget(tb testing.TB, dir string) string {
	tb.Helper()
	if onPostgres {
		return pgtest.NewDatabase(tb)
	}
	return filepath.Join(dir, "state.db")
}
