// Command scaling measures how throughput grows with the number of agents
// sharing one PostgreSQL server, against one agent on its SQLite file. For
// each row it drops the same burst of films into one inbox at once, starts
// the agents on it (each with its own workspace, all sharing the models
// folder and the database), and times the burst from the drop to the last
// file recorded. On PostgreSQL it also reads the server's own account of
// the time it spent executing statements (pg_stat_database.active_time),
// the database's share of the time per image.
//
// Every agent runs on this one machine, so the agents share its cores: the
// rows show what the database and the queue allow, not what several
// machines would.
//
// The films are 256 px phantoms: the database's work per film does not
// depend on its size, the agents' does, so larger films lower the
// database's share.
//
//	go run ./bench/scaling [-files 600] [-size 256] [-agents 1,2,4] [-workers 1]
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/sentinel-pacs/sentinel/internal/pgtest"
	"github.com/sentinel-pacs/sentinel/internal/phantom"
	"github.com/sentinel-pacs/sentinel/store"
)

func main() {
	files := flag.Int("files", 600, "films dropped at once in each row")
	size := flag.Int("size", 256, "film side in pixels")
	agents := flag.String("agents", "1,2,4", "agent counts to run on PostgreSQL")
	workers := flag.Int("workers", 1, "workers per agent")
	keep := flag.Bool("keep", false, "keep the work folder")
	flag.Parse()
	if err := run(*files, *size, *agents, *workers, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "scaling:", err)
		os.Exit(1)
	}
}

type row struct {
	engine    string
	agents    int
	workers   int
	wall      time.Duration
	dbActive  time.Duration // -1: not measured
	dbBytes   int64         // growth of the database over the burst
	perAgent  map[string]int
	instances int
}

func run(n, size int, agentList string, workers int, keep bool) error {
	work, err := os.MkdirTemp("", "sentinel-scaling-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(work)
	}
	defer pgtest.Stop()
	bin := filepath.Join(work, "sentinel")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/sentinel").CombinedOutput(); err != nil {
		return fmt.Errorf("build (run from the repository root): %v\n%s", err, out)
	}
	rng := rand.New(rand.NewPCG(5, 0))
	// One model for every row, trained once in a SQLite workspace whose
	// models folder the agents share.
	seed := filepath.Join(work, "seed")
	normals := filepath.Join(work, "normals")
	if err := phantom.WriteStudies(rng, normals, "n", 24, size, phantom.Normal); err != nil {
		return err
	}
	if out, err := exec.Command(bin, "train", "--workspace", seed, "--normals", normals, "--epochs", "3").CombinedOutput(); err != nil {
		return fmt.Errorf("train: %v\n%s", err, out)
	}
	burst := filepath.Join(work, "burst")
	fmt.Printf("writing %d films (%dx%d)...\n", n, size, size)
	if err := phantom.WriteStudies(rng, burst, "f", n, size, phantom.Normal); err != nil {
		return err
	}

	// One agent on SQLite with the workers of the PostgreSQL rows, and
	// with a worker per core (the default on this machine's two cores).
	var rows []row
	for _, w := range []int{workers, runtime.NumCPU()} {
		r, err := runRow(bin, work, seed, burst, "", 1, w, n)
		if err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		rows = append(rows, r)
		if w == workers && workers == runtime.NumCPU() {
			break
		}
	}
	base, err := pgtest.Base()
	if err != nil {
		return err
	}
	for i, s := range strings.Split(agentList, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || k < 1 {
			return fmt.Errorf("-agents: %q is not a count", s)
		}
		url, err := pgtest.Create(base, fmt.Sprintf("sentinel_scaling_%d_%d", os.Getpid(), i))
		if err != nil {
			return err
		}
		r, err := runRow(bin, work, seed, burst, url, k, workers, n)
		if err != nil {
			return fmt.Errorf("%d agents: %w", k, err)
		}
		rows = append(rows, r)
	}
	fmt.Printf("\n%d films of %dx%d px, %d cores (%s)\n", n, size, size, runtime.NumCPU(), runtime.GOARCH)
	fmt.Println("| engine | agents | workers each | burst (s) | films/s | films/day | db active ms/film | db share | db KiB/film | files per agent |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, r := range rows {
		rate := float64(r.instances) / r.wall.Seconds()
		active, share, size := "n/a (in process)", "n/a", "n/a"
		if r.dbActive >= 0 {
			perFilm := float64(r.dbActive.Milliseconds()) / float64(r.instances)
			// The agents' time per film: each agent is busy for the
			// whole burst.
			agentMS := r.wall.Seconds() * 1000 * float64(r.agents) / float64(r.instances)
			active = fmt.Sprintf("%.1f", perFilm)
			share = fmt.Sprintf("%.1f%%", 100*perFilm/agentMS)
			size = fmt.Sprintf("%.1f", float64(r.dbBytes)/1024/float64(r.instances))
		}
		fmt.Printf("| %s | %d | %d | %.1f | %.1f | %.0f | %s | %s | %s | %v |\n", r.engine, r.agents, r.workers, r.wall.Seconds(), rate, rate*86400,
			active, share, size, r.perAgent)
	}
	return nil
}

// runRow runs k agents on one inbox against url ("" for one agent on a
// SQLite copy of the seed workspace) and times the burst.
func runRow(bin, work, seed, burst, url string, k, workers, n int) (row, error) {
	engine := "postgres"
	if url == "" {
		engine = "sqlite"
	}
	dir := filepath.Join(work, fmt.Sprintf("%s-%d-%d", engine, k, workers))
	inbox := filepath.Join(dir, "inbox")
	if err := os.MkdirAll(inbox, 0o755); err != nil {
		return row{}, err
	}
	models := filepath.Join(seed, "models")
	target := url
	if url == "" {
		// The seed's database, copied, for the one SQLite agent.
		ws := filepath.Join(dir, "a0")
		if err := os.MkdirAll(ws, 0o750); err != nil {
			return row{}, err
		}
		b, err := os.ReadFile(filepath.Join(seed, "state.db"))
		if err != nil {
			return row{}, err
		}
		if err := os.WriteFile(filepath.Join(ws, "state.db"), b, 0o600); err != nil {
			return row{}, err
		}
		target = filepath.Join(ws, "state.db")
	} else if out, err := exec.Command(bin, "store", "migrate", "--workspace", seed, "--to", url).CombinedOutput(); err != nil {
		return row{}, fmt.Errorf("store migrate: %v\n%s", err, out)
	}
	var cmds []*exec.Cmd
	for i := range k {
		name := fmt.Sprintf("a%d", i)
		cfg := filepath.Join(dir, name+".toml")
		body := fmt.Sprintf("workspace = %q\n[paths]\ninbox = [%q]\nmodels = %q\n[store]\nurl = %q\nagent = %q\n"+
			"[ingest]\nstable_for = \"500ms\"\npoll_interval = \"100ms\"\nworkers = %d\n[http]\naddr = \"\"\n",
			filepath.Join(dir, name), inbox, models, url, name, workers)
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			return row{}, err
		}
		cmd := exec.Command(bin, "run", "--config", cfg, "--log-level", "warn")
		logf, err := os.Create(filepath.Join(dir, name+".log"))
		if err != nil {
			return row{}, err
		}
		defer logf.Close()
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return row{}, err
		}
		cmds = append(cmds, cmd)
	}
	defer func() {
		for _, c := range cmds {
			c.Process.Signal(os.Interrupt)
			c.Wait()
		}
	}()
	db := store.NewDB(target)
	db.Agent = "bench"
	time.Sleep(2 * time.Second) // the agents start
	if err := db.Open(); err != nil {
		return row{}, err
	}
	defer db.Close()
	ctx := context.Background()
	before := activeTime(url)
	sizeBefore := dbSize(url)
	entries, err := os.ReadDir(burst)
	if err != nil {
		return row{}, err
	}
	drop := time.Now()
	for _, e := range entries {
		if err := os.Link(filepath.Join(burst, e.Name()), filepath.Join(inbox, e.Name())); err != nil {
			return row{}, err
		}
	}
	for deadline := drop.Add(30 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		c, err := db.Counts(ctx)
		if err != nil {
			return row{}, err
		}
		if c.Files[store.FileDone] >= n {
			break
		}
		// A film the agents settle otherwise (below the scope's smallest
		// size, say) would never be done: say so instead of waiting.
		settled := 0
		for _, k := range []string{store.FileDone, store.FileDuplicate, store.FileConflict, store.FileFailed, store.FileOutOfScope} {
			settled += c.Files[k]
		}
		if settled >= n {
			return row{}, fmt.Errorf("the agents settled the %d films, %d of them not done: %v", n, n-c.Files[store.FileDone], c.Files)
		}
		if time.Now().After(deadline) {
			return row{}, fmt.Errorf("%d of %d files done after 30 minutes", c.Files[store.FileDone], n)
		}
	}
	wall := time.Since(drop)
	for _, c := range cmds {
		c.Process.Signal(os.Interrupt)
		c.Wait()
	}
	cmds = nil
	r := row{engine: engine, agents: k, workers: workers, wall: wall, dbActive: -1, instances: n}
	if url != "" {
		// The agents' sessions have ended, so the server has counted all
		// of their time.
		time.Sleep(1500 * time.Millisecond)
		r.dbActive = activeTime(url) - before
		r.dbBytes = dbSize(url) - sizeBefore
	}
	r.perAgent, _ = db.FilesByAgent(ctx)
	fmt.Printf("%s, %d agent(s) of %d worker(s): %d films in %.1f s\n", engine, k, workers, n, wall.Seconds())
	return r, nil
}

// activeTime is the time the server spent executing statements in the
// database of url, as it counts it.
func activeTime(url string) time.Duration {
	ms := pgStat(url, `SELECT COALESCE(active_time, 0) FROM pg_stat_database WHERE datname = current_database()`)
	return time.Duration(ms * float64(time.Millisecond))
}

// dbSize is the size on disk of the database of url.
func dbSize(url string) int64 {
	return int64(pgStat(url, `SELECT pg_database_size(current_database())::float8`))
}

// pgStat asks the server of url for one number about its database, after
// clearing the statistics snapshot of the connection; 0 without a server.
func pgStat(url, query string) float64 {
	if url == "" {
		return 0
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		return 0
	}
	defer db.Close()
	db.QueryRow(`SELECT pg_stat_clear_snapshot()`).Scan(new(any))
	var v float64
	if err := db.QueryRow(query).Scan(&v); err != nil {
		return 0
	}
	return v
}
