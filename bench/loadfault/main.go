// Command loadfault is the agent's load and fault benchmark: it drops
// 1,000 DICOM files into a running agent's inbox at once, kills the agent
// with SIGKILL twice during the burst, restarts it, and then checks that
// every file has exactly one report, none is missing and none was lost from
// disk. It prints throughput, end-to-end latency and peak memory.
//
// With -revise it then makes a second model current (trained on other
// phantoms, so that it decides many films otherwise), restarts the agent,
// kills it twice more while it compares the reports with the new model,
// and checks that every instance's latest report on disk is the one the
// database records, every earlier revision is kept, and every report was
// compared.
//
// With -mixed the burst also holds what a PACS export folder really sees:
// exact copies of files in it under other names (duplicates), files that
// reuse a SOP Instance UID with other pixels (conflicts), truncated files,
// and films written slowly in pieces while the agent is killed; the check
// then counts every outcome in the database against what was dropped.
//
//	go run ./bench/loadfault [-files 1000] [-kills 2] [-revise] [-mixed]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sentinel-pacs/sentinel/agent"
	"github.com/sentinel-pacs/sentinel/dicomio"
	"github.com/sentinel-pacs/sentinel/internal/phantom"
	"github.com/sentinel-pacs/sentinel/store"
)

func main() {
	files := flag.Int("files", 1000, "files dropped at once")
	kills := flag.Int("kills", 2, "SIGKILLs during the burst")
	size := flag.Int("size", 128, "image side in pixels")
	keep := flag.Bool("keep", false, "keep the work folder")
	revise := flag.Bool("revise", false, "then change the model and kill the agent while it revises the reports")
	flag.BoolVar(&mixed, "mixed", false, "add duplicates, conflicts, truncated files and slow writers to the burst")
	flag.Parse()
	if err := run(*files, *kills, *size, *keep, *revise); err != nil {
		fmt.Fprintln(os.Stderr, "loadfault:", err)
		os.Exit(1)
	}
}

func run(n, kills, size int, keep, revise bool) error {
	work, err := os.MkdirTemp("", "sentinel-loadfault-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(work)
	}
	bin := filepath.Join(work, "sentinel")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/sentinel").CombinedOutput(); err != nil {
		return fmt.Errorf("build (run from the repository root): %v\n%s", err, out)
	}
	ws := filepath.Join(work, "ws")
	rng := rand.New(rand.NewPCG(uint64(1), 0))
	normals := filepath.Join(work, "normals")
	if err := phantom.WriteStudies(rng, normals, "n", 24, size, "normal"); err != nil {
		return err
	}
	if out, err := exec.Command(bin, "train", "--workspace", ws, "--normals", normals).CombinedOutput(); err != nil {
		return fmt.Errorf("train: %v\n%s", err, out)
	}
	staging := filepath.Join(ws, "staging")
	fmt.Printf("writing %d DICOM files (%dx%d)...\n", n, size, size)
	if err := phantom.WriteStudies(rng, staging, "f", n, size, "normal"); err != nil {
		return err
	}
	var extra extras
	if mixed {
		if extra, err = writeExtras(rng, staging, size); err != nil {
			return err
		}
	}
	cfg := filepath.Join(work, "agent.toml")
	// The phantoms are small films: the scope's minimum size is lifted.
	// write_grace is short so that the truncated files are quarantined
	// within the run.
	os.WriteFile(cfg, []byte(fmt.Sprintf("workspace = %q\n[ingest]\nstable_for = \"1s\"\npoll_interval = \"100ms\"\nwrite_grace = \"3s\"\n[scope]\nmin_size = 0\n[http]\naddr = \"\"\n", ws)), 0o644)

	var peak atomic.Int64
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "run", "--config", cfg, "--log-level", "warn")
		logf, _ := os.OpenFile(filepath.Join(work, "agent.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			panic(err)
		}
		go sampleRSS(cmd.Process.Pid, &peak)
		return cmd
	}
	db := store.NewDB(filepath.Join(ws, "state.db"))
	cmd := start()
	time.Sleep(time.Second)
	if err := db.Open(); err != nil {
		return err
	}
	defer db.Close()

	inbox := filepath.Join(ws, "inbox", "burst")
	os.MkdirAll(inbox, 0o755)
	entries, _ := os.ReadDir(staging)
	drop := time.Now()
	for _, e := range entries {
		if err := os.Rename(filepath.Join(staging, e.Name()), filepath.Join(inbox, e.Name())); err != nil {
			return err
		}
	}
	slowDone := make(chan error, 1)
	if mixed {
		go func() { slowDone <- writeSlowly(rng, inbox, extra.slow, size) }()
	}
	ctx := context.Background()
	want := n + extra.slow
	done := func() int {
		c, err := db.Counts(ctx)
		if err != nil {
			return -1
		}
		return c.Files[store.FileDone]
	}
	// killDuring kills the agent when progress reaches each of kills
	// evenly spaced points on the way to n, restarts it each time, and
	// waits (at most 20 minutes) for progress to reach n.
	killDuring := func(progress func() int, what string) {
		for k := 1; k <= kills; k++ {
			for progress() < n*k/(kills+1) {
				time.Sleep(20 * time.Millisecond)
			}
			cmd.Process.Kill()
			cmd.Wait()
			fmt.Printf("SIGKILL %d at %d/%d %s\n", k, progress(), n, what)
			cmd = start()
		}
		for deadline := time.Now().Add(20 * time.Minute); progress() < n && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
		}
	}
	killDuring(done, "files done")
	if mixed {
		if err := <-slowDone; err != nil {
			return err
		}
		// The slow films, the duplicates, conflicts and truncated files
		// are recorded after the burst's last film at the latest.
		recorded := func() int {
			c, err := db.Counts(ctx)
			if err != nil {
				return -1
			}
			return c.Files[store.FileDone] + c.Files[store.FileDuplicate] + c.Files[store.FileConflict] + c.Files[store.FileFailed]
		}
		for deadline := time.Now().Add(5 * time.Minute); recorded() < want+extra.dups+extra.conflicts+extra.broken && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
		}
	}
	finished := time.Now()
	time.Sleep(time.Second)
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	if err := check(ctx, db, ws, inbox, want, kills, drop, finished, peak.Load(), extra); err != nil || !revise {
		return err
	}

	// A second model, trained on other phantoms, made current while the
	// agent is down; the agent compares every report with it at start.
	others := filepath.Join(work, "others")
	if err := phantom.WriteStudies(rng, others, "o", 24, size, "opacity"); err != nil {
		return err
	}
	if out, err := exec.Command(bin, "train", "--workspace", ws, "--normals", others, "--seed", "2").CombinedOutput(); err != nil {
		return fmt.Errorf("train the second model: %v\n%s", err, out)
	}
	next, err := agent.LoadCurrentModel(filepath.Join(ws, "models"))
	if err != nil {
		return err
	}
	version := next.Info().Version
	compared := func() int {
		got, err := db.ScoredInstances(ctx, version)
		if err != nil {
			return -1
		}
		k := 0
		for _, s := range got {
			if s.ModelVersion == version {
				k++
			}
		}
		return k
	}
	cmd = start()
	reviseStart := time.Now()
	killDuring(compared, "reports compared with model "+version)
	reviseDone := time.Now()
	time.Sleep(2 * time.Second) // the study reports of the last revisions
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	return checkRevisions(ctx, db, n, kills, version, reviseDone.Sub(reviseStart))
}

// checkRevisions checks, after the revision pass was killed and restarted,
// that every instance was compared with the new model, that its latest
// report on disk (<uid>.json) holds the bytes of the revision the database
// records as latest, that every revision's file exists, and that the
// latest decision is the new model's.
func checkRevisions(ctx context.Context, db *store.DB, n, kills int, version string, took time.Duration) error {
	rows, err := db.Reports(ctx)
	if err != nil {
		return err
	}
	byInstance := map[string][]store.ReportRow{}
	for _, r := range rows {
		byInstance[r.InstanceID] = append(byInstance[r.InstanceID], r)
	}
	scored, err := db.ScoredInstances(ctx, version)
	if err != nil {
		return err
	}
	decision := map[string]string{}
	for _, s := range scored {
		if s.ModelVersion == version {
			decision[s.InstanceID] = string(s.Score.Decision)
		}
	}
	var revised, missing, torn, wrong, gaps int
	for id, rs := range byInstance {
		last := rs[len(rs)-1]
		for i, r := range rs {
			if r.Revision != i+1 {
				gaps++
			}
			if _, err := os.Stat(r.Path); err != nil {
				missing++
			}
		}
		if len(rs) > 1 {
			revised++
			want, err1 := os.ReadFile(last.Path)
			got, err2 := os.ReadFile(strings.TrimSuffix(last.Path, fmt.Sprintf(".r%d.json", last.Revision)) + ".json")
			if err1 != nil || err2 != nil || string(got) != string(want) {
				torn++
			}
		}
		if d, ok := decision[id]; !ok || d != last.Decision {
			wrong++
		}
	}
	fmt.Println()
	fmt.Println("| revision phase | value |")
	fmt.Println("|---|---|")
	fmt.Printf("| SIGKILLs during the revision pass | %d |\n", kills)
	fmt.Printf("| reports compared with the new model | %d of %d |\n", len(decision), n)
	fmt.Printf("| reports revised (decision changed) | %d |\n", revised)
	fmt.Printf("| compare time, kills and restarts included (s) | %.1f |\n", took.Seconds())
	fmt.Printf("| report rows whose file is missing | %d |\n", missing)
	fmt.Printf("| instances with a gap in their revisions | %d |\n", gaps)
	fmt.Printf("| <uid>.json not the latest revision | %d |\n", torn)
	fmt.Printf("| latest report not the new model's decision | %d |\n", wrong)
	if len(decision) != n || len(byInstance) != n || missing+gaps+torn+wrong != 0 {
		return fmt.Errorf("FAILED: revisions inconsistent after the kills")
	}
	fmt.Println("\nOK: every report compared, every revision on disk, every latest report the one recorded.")
	return nil
}

func check(ctx context.Context, db *store.DB, ws, inbox string, n, kills int, drop, finished time.Time, peakKB int64, extra extras) error {
	c, err := db.Counts(ctx)
	if err != nil {
		return err
	}
	reports, _ := filepath.Glob(filepath.Join(ws, "reports", "*", "*.json"))
	var latencies []float64
	perInstance := map[string]int{}
	for _, p := range reports {
		if strings.HasPrefix(filepath.Base(p), "study") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var rep struct {
			SOP       string    `json:"sop_instance_uid"`
			CreatedAt time.Time `json:"created_at"`
		}
		if err := json.Unmarshal(b, &rep); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		perInstance[rep.SOP]++
		latencies = append(latencies, rep.CreatedAt.Sub(drop).Seconds())
	}
	onDisk, _ := os.ReadDir(inbox)
	sort.Float64s(latencies)
	pct := func(q float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[min(len(latencies)-1, int(q*float64(len(latencies))))]
	}
	twice := 0
	for _, k := range perInstance {
		if k != 1 {
			twice++
		}
	}
	pending, processing, _ := db.QueueDepth(ctx)
	elapsed := finished.Sub(drop).Seconds()
	fmt.Println()
	fmt.Println("| figure | value |")
	fmt.Println("|---|---|")
	fmt.Printf("| films to score (the burst, and with -mixed the slow ones) | %d |\n", n)
	fmt.Printf("| SIGKILLs during the burst | %d |\n", kills)
	fmt.Printf("| instances scored (database) | %d |\n", c.Instances)
	fmt.Printf("| instance report files | %d |\n", len(perInstance))
	fmt.Printf("| instances with other than one report | %d |\n", twice)
	fmt.Printf("| input files still on disk | %d |\n", len(onDisk))
	fmt.Printf("| files left in the queue | %d |\n", pending+processing)
	fmt.Printf("| throughput (files/s, drop to last report, incl. restarts; with -mixed, the slow writes too) | %.1f |\n", float64(n)/elapsed)
	fmt.Printf("| end-to-end latency p50 / p95 (s, incl. 1 s stability wait) | %.2f / %.2f |\n", pct(0.5), pct(0.95))
	fmt.Printf("| peak RSS of an agent process (MiB) | %.1f |\n", float64(peakKB)/1024)
	quarantined, _ := filepath.Glob(filepath.Join(ws, "quarantine", "*"))
	if extra.total() > 0 {
		fmt.Printf("| duplicates dropped / recorded | %d / %d |\n", extra.dups, c.Files[store.FileDuplicate])
		fmt.Printf("| conflicts dropped / recorded | %d / %d |\n", extra.conflicts, c.Files[store.FileConflict])
		fmt.Printf("| truncated files dropped / quarantined (failed) | %d / %d |\n", extra.broken, c.Files[store.FileFailed])
		fmt.Printf("| films written slowly during the kills / scored | %d / %d |\n", extra.slow, c.Instances-(n-extra.slow))
		fmt.Printf("| files in quarantine (with their reasons) | %d |\n", len(quarantined))
	}
	// Every dropped file is on disk: in the inbox, or (a truncated one) in
	// quarantine.
	wantOnDisk := n + extra.dups + extra.conflicts
	if c.Instances != n || len(perInstance) != n || twice != 0 || len(onDisk) != wantOnDisk+extra.broken-c.Files[store.FileFailed] ||
		pending+processing != 0 || c.Files[store.FileDuplicate] != extra.dups || c.Files[store.FileConflict] != extra.conflicts ||
		c.Files[store.FileFailed] != extra.broken {
		return fmt.Errorf("FAILED: expected %d instances, %d reports each once, %d files in the inbox, an empty queue, %d duplicates, %d conflicts, %d failed; got %+v",
			n, n, wantOnDisk, extra.dups, extra.conflicts, extra.broken, c.Files)
	}
	fmt.Println("\nOK: every file has exactly one report, none missing, none lost.")
	return nil
}

// sampleRSS records the largest resident set size of pid, in KiB, until it
// exits.
func sampleRSS(pid int, peak *atomic.Int64) {
	for {
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
				for {
					old := peak.Load()
					if kb <= old || peak.CompareAndSwap(old, kb) {
						break
					}
				}
			}
		}
		f.Close()
		time.Sleep(100 * time.Millisecond)
	}
}

// mixed adds the files of -mixed to the burst.
var mixed bool

// extras counts the files -mixed adds: duplicates, conflicts and
// truncated files staged with the burst, and films written slowly into the
// inbox while the agent runs and is killed.
type extras struct{ dups, conflicts, broken, slow int }

func (e extras) total() int { return e.dups + e.conflicts + e.broken + e.slow }

// writeExtras stages copies of some burst files under other names, files
// reusing their SOP Instance UIDs with other pixels, and truncated files.
func writeExtras(rng *rand.Rand, staging string, size int) (extras, error) {
	e := extras{dups: 20, conflicts: 10, broken: 5, slow: 10}
	entries, err := os.ReadDir(staging)
	if err != nil {
		return e, err
	}
	if len(entries) < e.dups+e.conflicts+e.broken {
		return e, fmt.Errorf("-mixed needs at least %d files", e.dups+e.conflicts+e.broken)
	}
	for i := 0; i < e.dups; i++ {
		b, err := os.ReadFile(filepath.Join(staging, entries[i].Name()))
		if err != nil {
			return e, err
		}
		if err := os.WriteFile(filepath.Join(staging, fmt.Sprintf("dup%05d.dcm", i)), b, 0o644); err != nil {
			return e, err
		}
	}
	for i := 0; i < e.conflicts; i++ {
		src := filepath.Join(staging, entries[e.dups+i].Name())
		attrs, err := dicomio.ReadTextAttributes(src, []uint32{0x00080018, 0x0020000D})
		if err != nil {
			return e, err
		}
		meta := phantom.Meta{SOPInstanceUID: attrs[0x00080018], StudyInstanceUID: attrs[0x0020000D],
			SeriesInstanceUID: attrs[0x0020000D] + ".1", PatientID: "BURST"}
		p := filepath.Join(staging, fmt.Sprintf("conflict%05d.dcm", i))
		if err := phantom.WriteDICOM(p, phantom.Generate(rng, size, "opacity"), size, meta); err != nil {
			return e, err
		}
	}
	for i := 0; i < e.broken; i++ {
		b, err := os.ReadFile(filepath.Join(staging, entries[e.dups+e.conflicts+i].Name()))
		if err != nil {
			return e, err
		}
		if err := os.WriteFile(filepath.Join(staging, fmt.Sprintf("broken%05d.dcm", i)), b[:len(b)*2/3], 0o644); err != nil {
			return e, err
		}
	}
	return e, nil
}

// writeSlowly writes n new films straight into the inbox, each in four
// pieces a second apart, as a slow network copy does.
func writeSlowly(rng *rand.Rand, inbox string, n, size int) error {
	tmp, err := os.MkdirTemp("", "loadfault-slow-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := phantom.WriteStudies(rng, tmp, "slow", n, size, "normal"); err != nil {
		return err
	}
	entries, _ := os.ReadDir(tmp)
	for _, en := range entries {
		b, err := os.ReadFile(filepath.Join(tmp, en.Name()))
		if err != nil {
			return err
		}
		f, err := os.Create(filepath.Join(inbox, en.Name()))
		if err != nil {
			return err
		}
		for k := 0; k < 4; k++ {
			if _, err := f.Write(b[len(b)*k/4 : len(b)*(k+1)/4]); err != nil {
				f.Close()
				return err
			}
			f.Sync()
			time.Sleep(time.Second)
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}
