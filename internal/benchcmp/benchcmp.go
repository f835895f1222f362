// Package benchcmp races Sentinel's detector against its PyTorch peer
// (bench/peer/peer.py) on the same architecture, the same SWAG sample count,
// the same memory-bank kNN and the same DICOM files, in one run, and reports
// the ratios. It is the code behind `sentinel bench compare`.
//
// Both sides are measured back to back in every repetition, so that a change
// of load on the machine hits both; each figure is the median over the
// repetitions of each side's median over its iterations. Peak RSS is read
// from the rusage of a child process per side, so that it is the measured
// work's alone.
package benchcmp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sentinel-pacs/sentinel/detector"
)

// InstallHint says what the peer needs.
const InstallHint = "apt-get install -y python3-torch python3-pydicom python3-gdcm python3-numpy libopenblas0-pthread (Debian's modules are seen by /usr/bin/python3)"

// Options sets what is compared and how often.
type Options struct {
	Reps        int    // repetitions of every figure per side
	Iters       int    // timed iterations per figure and repetition
	Passes      int    // passes over the DICOM folder per pipeline repetition
	Steps       int    // training steps of the RSS child
	AgentFiles  int    // files the agent RSS child processes
	Python      string // interpreter with torch, pydicom, GDCM, numpy
	Peer        string // path of peer.py
	DICOM       string // folder of full-resolution DICOM files
	Side        int
	Channels    []int
	Batch       int
	SWAGSamples int
	Bank        int   // memory bank patches for SWAG scoring and the pipeline
	KNNBanks    []int // bank sizes of the kNN figure
	Seed        int64
	Self        []string // command that re-executes this program as a child: argv before the child flags
	Log         io.Writer
}

// DefaultOptions returns the detector's default architecture and scoring
// settings and the repository's paths.
func DefaultOptions() Options {
	c := detector.DefaultTrainConfig()
	return Options{
		Reps: 3, Iters: 10, Passes: 2, Steps: 20, AgentFiles: 240,
		Python: "/usr/bin/python3", Peer: "bench/peer/peer.py", DICOM: "../shared/data/cxr8/dicom",
		Side: c.InputSize, Channels: c.Channels, Batch: 32, SWAGSamples: c.SWAGSamples,
		Bank: 2500, KNNBanks: []int{10000, 100000, 1000000}, Seed: 1,
	}
}

func (o *Options) fill() {
	d := DefaultOptions()
	if len(o.Channels) == 0 {
		o.Channels = d.Channels
	}
	if o.Side == 0 {
		o.Side = d.Side
	}
	if o.Iters < 1 {
		o.Iters = 1
	}
	if o.Passes < 1 {
		o.Passes = 1
	}
}

func (o Options) trainConfig() detector.TrainConfig {
	c := detector.DefaultTrainConfig()
	c.InputSize, c.Channels, c.BatchSize, c.SWAGSamples = o.Side, o.Channels, o.Batch, o.SWAGSamples
	return c
}

// ChildArgs are the flags that make a child measure with the same settings.
func (o Options) ChildArgs() []string {
	return []string{"--side", strconv.Itoa(o.Side), "--channels", joinInts(o.Channels), "--batch", strconv.Itoa(o.Batch),
		"--swag-samples", strconv.Itoa(o.SWAGSamples), "--bank", strconv.Itoa(o.Bank), "--dicom", o.DICOM,
		"--steps", strconv.Itoa(o.Steps), "--agent-files", strconv.Itoa(o.AgentFiles)}
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// peerArgs are the peer's flags for the same settings.
func (o Options) peerArgs(mode string) []string {
	c := o.trainConfig()
	return []string{o.Peer, mode, "--side", strconv.Itoa(o.Side), "--channels", joinInts(o.Channels),
		"--batch", strconv.Itoa(o.Batch), "--swag-samples", strconv.Itoa(o.SWAGSamples),
		"--memory-stage", strconv.Itoa(c.MemoryStage), "--neighbours", strconv.Itoa(c.Neighbours),
		"--recon-blur", strconv.FormatFloat(c.ReconBlur, 'g', -1, 64),
		"--bank", strconv.Itoa(o.Bank), "--knn-banks", joinInts(o.KNNBanks), "--iters", strconv.Itoa(o.Iters),
		"--steps", strconv.Itoa(o.Steps), "--dicom", o.DICOM, "--seed", strconv.FormatInt(o.Seed, 10)}
}

// Result is the comparison.
type Result struct {
	Machine  Machine        `json:"machine"`
	Go       Figures        `json:"sentinel"`
	Peer     Figures        `json:"peer"`
	Settings map[string]any `json:"peer_settings"`
	Reps     int            `json:"reps"`
	// KNNQueries is the number of patches one image queries the bank with.
	KNNQueries int `json:"knn_queries"`

	GoTrainRSSMiB    float64 `json:"sentinel_train_rss_mib"`
	PeerTrainRSSMiB  float64 `json:"peer_train_rss_mib"`
	GoAgentRSSMiB    float64 `json:"sentinel_agent_rss_mib"`
	PeerAgentRSSMiB  float64 `json:"peer_pipeline_rss_mib"`
	GoAgentRSSEarly  float64 `json:"sentinel_agent_rss_after_first_tenth_mib"`
	GoAgentRSSEnd    float64 `json:"sentinel_agent_rss_at_end_mib"`
	AgentFiles       int     `json:"sentinel_agent_files"`
	SWAG100kImagesPS float64 `json:"sentinel_swag_bank100k_images_per_s_2_goroutines"`

	TrainStepRatio  float64            `json:"train_step_ratio"`
	InferB1Ratio    float64            `json:"infer_b1_ratio"`
	InferBNRatio    float64            `json:"infer_b32_ratio"`
	SWAGScoreRatio  float64            `json:"swag_score_ratio"`
	SWAG100kRatio   float64            `json:"swag_score_bank100k_ratio"`
	KNNRatio        map[string]float64 `json:"knn_ratio"`
	PipelineSpeedup float64            `json:"pipeline_speedup"`
	TrainRSSRatio   float64            `json:"train_rss_ratio"`
	AgentRSSRatio   float64            `json:"agent_rss_ratio"`
}

// Machine describes where the comparison ran.
type Machine struct {
	CPU string `json:"cpu"`
	// Kernels is the matrix kernel family that ran (avx512, avx2 or
	// generic; SENTINEL_KERNELS forces one), KernelFamilies every one this
	// CPU runs.
	Kernels        string   `json:"kernels"`
	KernelFamilies []string `json:"kernel_families"`
	Cores          int      `json:"cores"`
	GoVersion      string   `json:"go"`
	GOMAXPROCS     int      `json:"gomaxprocs"`
	LoadBefore     string   `json:"loadavg_before"`
	LoadAfter      string   `json:"loadavg_after"`
	WallSeconds    float64  `json:"wall_seconds"`
}

// CheckPeer reports whether the peer can run, with what to install if not.
func CheckPeer(ctx context.Context, o Options) error {
	if _, err := os.Stat(o.Peer); err != nil {
		return fmt.Errorf("%w: %s not found (run from the repository root or pass --peer)", errPeerMissing, o.Peer)
	}
	out, err := exec.CommandContext(ctx, o.Python, "-c", "import torch, pydicom, numpy, gdcm").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s cannot import torch, pydicom, numpy and gdcm (%s); install them with: %s",
			errPeerMissing, o.Python, strings.TrimSpace(lastLine(string(out))), InstallHint)
	}
	return nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// runProc runs a command and returns its stdout and peak RSS in MiB.
func runProc(ctx context.Context, argv []string) ([]byte, float64, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var rss float64
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = float64(ru.Maxrss) / 1024 // KiB on Linux
		}
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w: %s", strings.Join(argv[:min(len(argv), 3)], " "), err, shorten(strings.TrimSpace(stderr.String()), 2000))
	}
	return stdout.Bytes(), rss, nil
}

// peerRun runs the peer in one mode and decodes its JSON.
func peerRun(ctx context.Context, o Options, mode string, extra ...string) (map[string]any, float64, error) {
	out, rss, err := runProc(ctx, append(append([]string{o.Python}, o.peerArgs(mode)...), extra...))
	if err != nil {
		return nil, 0, err
	}
	var v map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(out), &v); err != nil {
		return nil, 0, fmt.Errorf("peer %s: bad JSON: %w", mode, err)
	}
	return v, rss, nil
}

func num(v map[string]any, key string) float64 {
	f, _ := v[key].(float64)
	return f
}

func peerFigures(v map[string]any) Figures {
	f := Figures{
		TrainStepMS: num(v, "train_step_ms"), InferB1MS: num(v, "infer_b1_ms_per_image"),
		InferBNMS: num(v, "infer_bn_ms_per_image"), SWAGScoreMS: num(v, "swag_score_ms"),
		SWAGScore100kMS: num(v, "swag_score_bank100k_ms"), KNNMS: map[string]float64{},
	}
	if k, ok := v["knn_ms"].(map[string]any); ok {
		for n, ms := range k {
			f.KNNMS[n], _ = ms.(float64)
		}
	}
	return f
}

func (o Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

// Run measures both sides and returns the comparison.
func Run(ctx context.Context, o Options) (*Result, error) {
	o.fill()
	start := time.Now()
	if err := CheckPeer(ctx, o); err != nil {
		return nil, err
	}
	r := &Result{Reps: o.Reps, AgentFiles: o.AgentFiles, Machine: machine()}
	g := o.Side >> (o.trainConfig().MemoryStage + 1)
	r.KNNQueries = g * g
	var goReps, pyReps []Figures
	for rep := range o.Reps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		o.logf("rep %d/%d: sentinel figures", rep+1, o.Reps)
		g, err := goFigures(o)
		if err != nil {
			return nil, fmt.Errorf("sentinel: %w", err)
		}
		goReps = append(goReps, g)
		o.logf("rep %d/%d: peer figures", rep+1, o.Reps)
		v, _, err := peerRun(ctx, o, "bench")
		if err != nil {
			return nil, fmt.Errorf("peer: %w", err)
		}
		r.Settings, _ = v["settings"].(map[string]any)
		pyReps = append(pyReps, peerFigures(v))
	}

	m, err := detector.SyntheticModel(o.trainConfig(), o.Bank, o.Seed)
	if err != nil {
		return nil, err
	}
	for rep := range o.Reps {
		o.logf("rep %d/%d: pipelines", rep+1, o.Reps)
		ips, dec, failed, err := goPipeline(o, m)
		if err != nil {
			return nil, fmt.Errorf("sentinel pipeline: %w", err)
		}
		goReps[rep].PipelineImagesPerS, goReps[rep].PipelineDecoded, goReps[rep].PipelineFailed = ips, dec, failed
		v, _, err := peerRun(ctx, o, "pipeline", "--iters", strconv.Itoa(o.Passes))
		if err != nil {
			return nil, fmt.Errorf("peer pipeline: %w", err)
		}
		pyReps[rep].PipelineImagesPerS = num(v, "images_per_s")
		pyReps[rep].PipelineDecoded = int(num(v, "decoded_per_pass"))
		if fl, ok := v["failed"].([]any); ok {
			for _, s := range fl {
				pyReps[rep].PipelineFailed = append(pyReps[rep].PipelineFailed, fmt.Sprint(s))
			}
		}
	}
	r.Go, r.Peer = medianFigures(goReps), medianFigures(pyReps)

	o.logf("scoring throughput at a 100k bank")
	if r.SWAG100kImagesPS, err = throughput(o, 100000); err != nil {
		return nil, err
	}
	o.logf("peak RSS: training and agent children")
	if err := r.measureRSS(ctx, o); err != nil {
		return nil, err
	}
	r.ratios()
	r.Machine.LoadAfter = loadavg()
	r.Machine.WallSeconds = time.Since(start).Seconds()
	return r, nil
}

// throughput scores images from GOMAXPROCS goroutines for a few seconds
// against a bank of n patches and returns images per second.
func throughput(o Options, n int) (float64, error) {
	m, err := detector.SyntheticModel(o.trainConfig(), n, o.Seed)
	if err != nil {
		return 0, err
	}
	workers := max(1, runtime.GOMAXPROCS(0))
	per := max(4, o.Iters)
	errs := make(chan error, workers)
	img := randomImage(newRand(o.Seed), o.Side)
	for range workers { // warm-up: one scorer per goroutine
		go func() { _, err := m.Score(img); errs <- err }()
	}
	for range workers {
		if err := <-errs; err != nil {
			return 0, err
		}
	}
	t0 := time.Now()
	for range workers {
		go func() {
			var err error
			for range per {
				if _, err = m.Score(img); err != nil {
					break
				}
			}
			errs <- err
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			return 0, err
		}
	}
	return float64(workers*per) / time.Since(t0).Seconds(), nil
}

func (r *Result) measureRSS(ctx context.Context, o Options) error {
	if len(o.Self) == 0 {
		return errors.New("no command to re-execute for the RSS children")
	}
	child := func(mode string) []string {
		return append(append(append([]string{}, o.Self...), "--child", mode), o.ChildArgs()...)
	}
	// Peaks are each process's own VmHWM: the rusage of a child can carry
	// this process's peak across fork and exec.
	out, _, err := runProc(ctx, child("train"))
	if err != nil {
		return fmt.Errorf("sentinel train child: %w", err)
	}
	var hwm, early, end float64
	if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "hwm_kib %g", &hwm); err != nil {
		return fmt.Errorf("sentinel train child: %q: %w", out, err)
	}
	r.GoTrainRSSMiB = hwm / 1024
	v, _, err := peerRun(ctx, o, "train")
	if err != nil {
		return fmt.Errorf("peer train: %w", err)
	}
	r.PeerTrainRSSMiB = num(v, "vm_hwm_mib")
	if out, _, err = runProc(ctx, child("agent")); err != nil {
		return fmt.Errorf("sentinel agent child: %w", err)
	}
	if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "hwm_kib %g rss_early_kib %g rss_end_kib %g", &hwm, &early, &end); err != nil {
		return fmt.Errorf("sentinel agent child: %q: %w", out, err)
	}
	r.GoAgentRSSMiB, r.GoAgentRSSEarly, r.GoAgentRSSEnd = hwm/1024, early/1024, end/1024
	if v, _, err = peerRun(ctx, o, "pipeline", "--iters", "1"); err != nil {
		return fmt.Errorf("peer pipeline: %w", err)
	}
	r.PeerAgentRSSMiB = num(v, "vm_hwm_mib")
	return nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func (r *Result) ratios() {
	r.TrainStepRatio = ratio(r.Go.TrainStepMS, r.Peer.TrainStepMS)
	r.InferB1Ratio = ratio(r.Go.InferB1MS, r.Peer.InferB1MS)
	r.InferBNRatio = ratio(r.Go.InferBNMS, r.Peer.InferBNMS)
	r.SWAGScoreRatio = ratio(r.Go.SWAGScoreMS, r.Peer.SWAGScoreMS)
	r.SWAG100kRatio = ratio(r.Go.SWAGScore100kMS, r.Peer.SWAGScore100kMS)
	r.KNNRatio = map[string]float64{}
	for n, ms := range r.Go.KNNMS {
		r.KNNRatio[n] = ratio(ms, r.Peer.KNNMS[n])
	}
	r.PipelineSpeedup = ratio(r.Go.PipelineImagesPerS, r.Peer.PipelineImagesPerS)
	r.TrainRSSRatio = ratio(r.GoTrainRSSMiB, r.PeerTrainRSSMiB)
	r.AgentRSSRatio = ratio(r.GoAgentRSSMiB, r.PeerAgentRSSMiB)
}

// medianFigures takes each figure's median over the repetitions.
func medianFigures(reps []Figures) Figures {
	pick := func(get func(Figures) float64) float64 {
		v := make([]float64, len(reps))
		for i, f := range reps {
			v[i] = get(f)
		}
		return median(v)
	}
	out := Figures{
		TrainStepMS:        pick(func(f Figures) float64 { return f.TrainStepMS }),
		InferB1MS:          pick(func(f Figures) float64 { return f.InferB1MS }),
		InferBNMS:          pick(func(f Figures) float64 { return f.InferBNMS }),
		SWAGScoreMS:        pick(func(f Figures) float64 { return f.SWAGScoreMS }),
		SWAGScore100kMS:    pick(func(f Figures) float64 { return f.SWAGScore100kMS }),
		PipelineImagesPerS: pick(func(f Figures) float64 { return f.PipelineImagesPerS }),
		KNNMS:              map[string]float64{},
	}
	if len(reps) > 0 {
		out.PipelineDecoded, out.PipelineFailed = reps[0].PipelineDecoded, reps[0].PipelineFailed
		for n := range reps[0].KNNMS {
			out.KNNMS[n] = pick(func(f Figures) float64 { return f.KNNMS[n] })
		}
	}
	return out
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0), LoadBefore: loadavg(), CPU: "unknown",
		Kernels: detector.KernelFamily(), KernelFamilies: detector.KernelFamilies()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return m
}
