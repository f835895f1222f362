// Package pgtest gives tests a real PostgreSQL server: the one named by
// SENTINEL_TEST_POSTGRES (a URL), or else a throwaway cluster it starts in
// a temporary folder with Debian's initdb and pg_ctl, stopped by Stop. A
// test that needs a server and finds neither skips, saying why.
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// Env names the variable holding a server's URL.
const Env = "SENTINEL_TEST_POSTGRES"

var (
	once sync.Once
	base string
	why  string
	seq  atomic.Int64
)

// Server returns the URL of a server with rights to create databases, or
// skips tb if there is none.
func Server(tb testing.TB) string {
	tb.Helper()
	once.Do(start)
	if base == "" {
		tb.Skipf("no PostgreSQL server: %s (set %s to a server's URL, or install Debian's postgresql)", why, Env)
	}
	return base
}

// Base returns the server's URL, starting a throwaway cluster if need be,
// or says why there is none. Benchmarks use it; tests use Server.
func Base() (string, error) {
	once.Do(start)
	if base == "" {
		return "", fmt.Errorf("no PostgreSQL server: %s (set %s to a server's URL, or install Debian's postgresql)", why, Env)
	}
	return base, nil
}

// Create creates the named database on the server of base and returns its
// URL.
func Create(base, name string) (string, error) {
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return "", err
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// Available says whether a server can be had, starting one if need be.
func Available() bool {
	once.Do(start)
	return base != ""
}

// NewDatabase creates an empty database on the server for tb and returns
// its URL; the database is dropped when tb ends.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	srv := Server(tb)
	name := fmt.Sprintf("sentinel_test_%d_%d", os.Getpid(), seq.Add(1))
	u, err := Create(srv, name)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		a, err := sql.Open("pgx", srv)
		if err != nil {
			return
		}
		defer a.Close()
		a.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	return u
}

// Stop stops the cluster Server started, if it did, and removes its
// folder. TestMain calls it after the tests.
func Stop() {
	if shared != nil {
		shared.Remove()
		shared = nil
	}
}

var shared *Cluster

func start() {
	if u := os.Getenv(Env); u != "" {
		base = u
		return
	}
	c, err := NewCluster()
	if err != nil {
		why = err.Error()
		return
	}
	shared, base = c, c.URL
}

// Cluster is a throwaway PostgreSQL cluster in a temporary folder, for a
// test that stops and starts its own server.
type Cluster struct {
	// URL is the cluster's postgres database, as its superuser.
	URL    string
	dir    string
	prefix []string // runs a program as the postgres user when root
	ctl    string
	opts   string
}

// NewCluster creates a cluster with initdb and starts it.
func NewCluster() (*Cluster, error) {
	initdb := find("initdb")
	ctl := find("pg_ctl")
	if initdb == "" || ctl == "" {
		return nil, errors.New("initdb and pg_ctl not found")
	}
	// PostgreSQL refuses to run as root: a root test runs it as postgres.
	c := &Cluster{ctl: ctl}
	var owner *user.User
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, errors.New("running as root and there is no postgres user to run the server")
		}
		owner = u
		c.prefix = []string{"runuser", "-u", "postgres", "--"}
	}
	dir, err := os.MkdirTemp("", "sentinel-pg-")
	if err != nil {
		return nil, err
	}
	c.dir = dir
	if owner != nil {
		uid, _ := strconv.Atoi(owner.Uid)
		gid, _ := strconv.Atoi(owner.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	args := append(append([]string{}, c.prefix...), initdb, "-D", c.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c.opts = fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", port, dir)
	c.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	if err := c.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", c.URL)
	if err == nil {
		err = db.PingContext(ctx)
		db.Close()
	}
	if err != nil {
		c.Remove()
		return nil, fmt.Errorf("the cluster started but does not answer: %w", err)
	}
	return c, nil
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

// Start starts the server, waiting until it takes connections.
func (c *Cluster) Start() error {
	args := append(append([]string{}, c.prefix...), c.ctl, "-D", c.data(), "-l", filepath.Join(c.dir, "log"), "-o", c.opts, "-w", "-t", "60", "start")
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		return fmt.Errorf("pg_ctl start: %v: %s %s", err, out, log)
	}
	return nil
}

// Stop stops the server at once (connections are cut), keeping its data.
func (c *Cluster) Stop() error {
	args := append(append([]string{}, c.prefix...), c.ctl, "-D", c.data(), "-m", "immediate", "-w", "stop")
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl stop: %v: %s", err, out)
	}
	return nil
}

// Remove stops the server and removes its folder.
func (c *Cluster) Remove() {
	c.Stop()
	os.RemoveAll(c.dir)
}

// find looks for a PostgreSQL program on PATH, then in Debian's folders.
func find(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(matches) > 0 {
		return matches[len(matches)-1]
	}
	return ""
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// RunTwice runs a package's tests on SQLite, then, when a server can be
// had, again with the same assertions on PostgreSQL, with *onPostgres set
// for the second run. It stops the throwaway cluster and returns the exit
// code for TestMain to exit with.
func RunTwice(m *testing.M, pkg string, onPostgres *bool) int {
	code := m.Run()
	if code == 0 {
		if Available() {
			fmt.Println(pkg + ": the same tests on PostgreSQL")
			*onPostgres = true
			code = m.Run()
		} else {
			fmt.Println(pkg + ": the PostgreSQL run is skipped: no server (set " + Env + " or install Debian's postgresql)")
		}
	}
	Stop()
	return code
}

// Target is where a test's fresh database lives: a SQLite file in dir,
// or, on PostgreSQL, a new database on the server.
func Target(tb testing.TB, dir string, onPostgres bool) string {
	tb.Helper()
	if onPostgres {
		return NewDatabase(tb)
	}
	return filepath.Join(dir, "state.db")
}
