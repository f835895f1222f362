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
//	go run ./bench/loadfault [-files 1000] [-kills 2] [-revise]
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
	"github.com/sentinel-pacs/sentinel/internal/phantom"
	"github.com/sentinel-pacs/sentinel/store"
)

func main() {
	files := flag.Int("files", 1000, "files dropped at once")
	kills := flag.Int("kills", 2, "SIGKILLs during the burst")
	size := flag.Int("size", 128, "image side in pixels")
	keep := flag.Bool("keep", false, "keep the work folder")
	revise := flag.Bool("revise", false, "then change the model and kill the agent while it revises the reports")
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
	if err := writeMany(rng, normals, 24, size, "n", "normal"); err != nil {
		return err
	}
	if out, err := exec.Command(bin, "train", "--workspace", ws, "--normals", normals).CombinedOutput(); err != nil {
		return fmt.Errorf("train: %v\n%s", err, out)
	}
	staging := filepath.Join(ws, "staging")
	fmt.Printf("writing %d DICOM files (%dx%d)...\n", n, size, size)
	if err := writeMany(rng, staging, n, size, "f", "normal"); err != nil {
		return err
	}
	cfg := filepath.Join(work, "agent.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("workspace = %q\n[ingest]\nstable_for = \"1s\"\npoll_interval = \"100ms\"\n[http]\naddr = \"\"\n", ws)), 0o644)

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
	ctx := context.Background()
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
	finished := time.Now()
	time.Sleep(time.Second)
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	if err := check(ctx, db, ws, inbox, n, kills, drop, finished, peak.Load()); err != nil || !revise {
		return err
	}

	// A second model, trained on other phantoms, made current while the
	// agent is down; the agent compares every report with it at start.
	others := filepath.Join(work, "others")
	if err := writeMany(rng, others, 24, size, "o", "opacity"); err != nil {
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

func check(ctx context.Context, db *store.DB, ws, inbox string, n, kills int, drop, finished time.Time, peakKB int64) error {
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
	fmt.Printf("| files dropped at once | %d |\n", n)
	fmt.Printf("| SIGKILLs during the burst | %d |\n", kills)
	fmt.Printf("| instances scored (database) | %d |\n", c.Instances)
	fmt.Printf("| instance report files | %d |\n", len(perInstance))
	fmt.Printf("| instances with other than one report | %d |\n", twice)
	fmt.Printf("| input files still on disk | %d |\n", len(onDisk))
	fmt.Printf("| files left in the queue | %d |\n", pending+processing)
	fmt.Printf("| throughput (files/s, drop to last report, incl. restarts) | %.1f |\n", float64(n)/elapsed)
	fmt.Printf("| end-to-end latency p50 / p95 (s, incl. 1 s stability wait) | %.2f / %.2f |\n", pct(0.5), pct(0.95))
	fmt.Printf("| peak RSS of an agent process (MiB) | %.1f |\n", float64(peakKB)/1024)
	if c.Instances != n || len(perInstance) != n || twice != 0 || len(onDisk) != n || pending+processing != 0 {
		return fmt.Errorf("FAILED: expected %d instances, %d reports each once, %d files on disk, an empty queue", n, n, n)
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

func writeMany(rng *rand.Rand, dir string, n, size int, prefix string, kind phantom.Kind) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	study := phantom.NewUID(rng)
	for i := 0; i < n; i++ {
		if i%20 == 0 {
			study = phantom.NewUID(rng)
		}
		meta := phantom.Meta{StudyInstanceUID: study, SeriesInstanceUID: study + ".1", SOPInstanceUID: phantom.NewUID(rng), PatientID: "LOAD"}
		p := filepath.Join(dir, fmt.Sprintf("%s%05d.dcm", prefix, i))
		if err := phantom.WriteDICOM(p, phantom.Generate(rng, size, kind), size, meta); err != nil {
			return err
		}
	}
	return nil
}
