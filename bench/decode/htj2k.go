package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/sentinel-pacs/sentinel/dicomio"
	"github.com/sentinel-pacs/sentinel/dicomio/codec"
	"github.com/sentinel-pacs/sentinel/dicomio/jpeg2000"
)

// The HTJ2K comparison (-htj2k): chest films of the cxr8 folder, and the
// same films enlarged to 2048×2048 at 12 bits, are encoded losslessly with
// OpenJPH's ojph_compress; each codestream is then decoded by Sentinel's
// jpeg2000.Decode and by OpenJPEG's opj_decompress, which must agree with
// the source sample for sample before anything is timed.
//
//	go run ./bench/decode -htj2k [-reps 9] [-max 6]
//
// Two comparisons, each like for like:
//   - decode time: Sentinel's jpeg2000.Decode on the codestream's bytes in
//     process (median of -reps runs after -warm) against the "decode time"
//     opj_decompress reports for itself (median of -reps runs), at one
//     thread and at as many as the machine has;
//   - as a command (process start-up, reading the codestream and writing
//     the samples raw included): this program re-executed as a one-file
//     HTJ2K decoder against opj_decompress -o out.rawl.

// htFilm is one test codestream and the source it must decode to.
type htFilm struct {
	name       string
	w, h, bits int
	source     []int32
	path       string // the .j2c file
}

// htFilms makes the codestreams in dir from up to max cxr8 films.
func htFilms(cxr8, dir string, max int) ([]htFilm, error) {
	paths, _ := filepath.Glob(filepath.Join(cxr8, "*.dcm"))
	var films []htFilm
	for _, p := range paths {
		if len(films) >= 2*max {
			break
		}
		s, err := dicomio.DecodeStored(p, dicomio.Options{}, 0)
		if err != nil || s.Samples != 1 {
			continue
		}
		src := make([]int32, s.Len())
		bits := 8
		for i := range src {
			src[i] = int32(s.Value(i))
			for int(src[i]) >= 1<<bits {
				bits += 4
			}
		}
		base := strings.TrimSuffix(filepath.Base(p), ".dcm")
		films = append(films, htFilm{name: base, w: s.Columns, h: s.Rows, bits: bits, source: src})
		films = append(films, enlarge(films[len(films)-1]))
	}
	for i := range films {
		f := &films[i]
		pgm := filepath.Join(dir, fmt.Sprintf("%s_%d.pgm", f.name, f.w))
		if err := os.WriteFile(pgm, f.pgm(), 0o644); err != nil {
			return nil, err
		}
		f.path = strings.TrimSuffix(pgm, ".pgm") + ".j2c"
		if out, err := exec.Command("ojph_compress", "-i", pgm, "-o", f.path, "-reversible", "true").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ojph_compress: %v: %s", err, out)
		}
	}
	return films, nil
}

// enlarge doubles a film to 2048×2048-class size at 12 bits: bilinear,
// scaled by 16, with a little deterministic noise so that the low bits
// are not empty, as in a real 12-bit detector image.
func enlarge(f htFilm) htFilm {
	w, h := 2*f.w, 2*f.h
	out := htFilm{name: f.name, w: w, h: h, bits: 12, source: make([]int32, w*h)}
	scale := float64(int(1)<<12-1) / float64(int(1)<<f.bits-1)
	seed := uint32(2048)
	at := func(x, y int) float64 {
		return float64(f.source[min(y, f.h-1)*f.w+min(x, f.w-1)])
	}
	for y := range h {
		for x := range w {
			sx, sy := float64(x)/2, float64(y)/2
			x0, y0 := int(sx), int(sy)
			fx, fy := sx-float64(x0), sy-float64(y0)
			v := (at(x0, y0)*(1-fx)+at(x0+1, y0)*fx)*(1-fy) + (at(x0, y0+1)*(1-fx)+at(x0+1, y0+1)*fx)*fy
			seed = seed*1664525 + 1013904223
			v = v*scale + float64(seed>>28) - 8
			out.source[y*w+x] = int32(max(0, min(4095, math.Round(v))))
		}
	}
	return out
}

// pgm encodes the film as a binary PGM (16-bit samples above 8 bits).
func (f htFilm) pgm() []byte {
	b := fmt.Appendf(nil, "P5\n%d %d\n%d\n", f.w, f.h, 1<<f.bits-1)
	for _, v := range f.source {
		if f.bits > 8 {
			b = append(b, byte(v>>8))
		}
		b = append(b, byte(v))
	}
	return b
}

func (f htFilm) params() codec.Params {
	ba := 8
	if f.bits > 8 {
		ba = 16
	}
	return codec.Params{Rows: f.h, Cols: f.w, Samples: 1, BitsAllocated: ba, BitsStored: f.bits}
}

// decodeOneHT decodes an HTJ2K codestream and writes its samples raw
// (little endian) to a temporary file, as opj_decompress -o out.rawl does.
func decodeOneHT(path string, w, h, bits int) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	f := htFilm{w: w, h: h, bits: bits}
	fr, err := jpeg2000.Decode(data, f.params())
	if err != nil {
		return err
	}
	raw := make([]byte, 0, 2*len(fr.Samples))
	for _, v := range fr.Samples {
		raw = append(raw, byte(v))
		if bits > 8 {
			raw = append(raw, byte(v>>8))
		}
	}
	out, err := os.CreateTemp("", "decode-one-*.raw")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	if _, err := out.Write(raw); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

var opjDecodeTime = regexp.MustCompile(`decode time: ([0-9.]+) ms`)

// opjTime runs opj_decompress on path and returns the decode time it
// reports and the wall time of the whole command.
func opjTime(path, out string, threads int) (reported, wall time.Duration, err error) {
	start := time.Now()
	b, err := exec.Command("opj_decompress", "-i", path, "-o", out, "-threads", strconv.Itoa(threads)).CombinedOutput()
	wall = time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("opj_decompress: %v: %s", err, b)
	}
	m := opjDecodeTime.FindSubmatch(b)
	if m == nil {
		return 0, 0, fmt.Errorf("opj_decompress printed no decode time")
	}
	ms, _ := strconv.ParseFloat(string(m[1]), 64)
	return time.Duration(ms * float64(time.Millisecond)), wall, nil
}

// readRaw reads opj_decompress's little endian raw output (.rawl).
func readRaw(path string, n, bits int) ([]int32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	size := 1
	if bits > 8 {
		size = 2
	}
	if len(b) != n*size {
		return nil, fmt.Errorf("%d bytes of raw output for %d samples", len(b), n)
	}
	out := make([]int32, n)
	for i := range out {
		if size == 2 {
			out[i] = int32(b[2*i+1])<<8 | int32(b[2*i])
		} else {
			out[i] = int32(b[i])
		}
	}
	return out, nil
}

// htResult collects the medians of the films of one size.
type htResult struct {
	films, bytes                                 int
	sentinel, sentinel1, opj1, opjN, cli, opjCLI []time.Duration
}

// runHTJ2K runs the HTJ2K comparison and returns its markdown.
func runHTJ2K(cxr8 string, reps, warm, max int) (string, error) {
	for _, tool := range []string{"ojph_compress", "opj_decompress"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("%s not installed (Debian openjph-tools, libopenjp2-tools)", tool)
		}
	}
	dir, err := os.MkdirTemp("", "htj2k-bench-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	films, err := htFilms(cxr8, dir, max)
	if err != nil {
		return "", err
	}
	if len(films) == 0 {
		return "", fmt.Errorf("no grey films in %s", cxr8)
	}
	self, _ := os.Executable()
	out := filepath.Join(dir, "out.rawl")
	results := map[string]*htResult{}
	var order []string
	for _, f := range films {
		data, err := os.ReadFile(f.path)
		if err != nil {
			return "", err
		}
		fr, err := jpeg2000.Decode(data, f.params())
		if err != nil {
			return "", fmt.Errorf("%s: %w", f.path, err)
		}
		if _, _, err := opjTime(f.path, out, 1); err != nil {
			return "", err
		}
		want, err := readRaw(out, f.w*f.h, f.bits)
		if err != nil {
			return "", err
		}
		for i, v := range f.source {
			if fr.Samples[i] != v || want[i] != v {
				return "", fmt.Errorf("%s: sample %d: source %d, Sentinel %d, OpenJPEG %d", f.path, i, v, fr.Samples[i], want[i])
			}
		}
		key := fmt.Sprintf("%d×%d, %d-bit", f.w, f.h, f.bits)
		r := results[key]
		if r == nil {
			r = &htResult{}
			results[key] = r
			order = append(order, key)
		}
		r.films++
		r.bytes += len(data)
		for range warm {
			jpeg2000.Decode(data, f.params())
		}
		d, _ := timeIt(reps, func() error { _, err := jpeg2000.Decode(data, f.params()); return err })
		r.sentinel = append(r.sentinel, d)
		procs := runtime.GOMAXPROCS(1)
		d, _ = timeIt(reps, func() error { _, err := jpeg2000.Decode(data, f.params()); return err })
		runtime.GOMAXPROCS(procs)
		r.sentinel1 = append(r.sentinel1, d)
		var rep1, repN, wall []time.Duration
		for range reps {
			a, w, err := opjTime(f.path, out, 1)
			if err != nil {
				return "", err
			}
			b, _, err := opjTime(f.path, out, runtime.NumCPU())
			if err != nil {
				return "", err
			}
			rep1, repN, wall = append(rep1, a), append(repN, b), append(wall, w)
		}
		r.opj1, r.opjN, r.opjCLI = append(r.opj1, median(rep1)), append(r.opjN, median(repN)), append(r.opjCLI, median(wall))
		args := []string{"-oneht", f.path, strconv.Itoa(f.w), strconv.Itoa(f.h), strconv.Itoa(f.bits)}
		d, ok := timeIt(reps, func() error { return exec.Command(self, args...).Run() })
		if !ok {
			return "", fmt.Errorf("%s: the one-file decoder failed", f.path)
		}
		r.cli = append(r.cli, d)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Median time per film in milliseconds (median over the films of each size of each film's median of %d runs). ", reps)
	fmt.Fprintf(&b, "Films: %d cxr8 chest X-rays (1024×1024, 8-bit) and the same enlarged to 2048×2048 at 12 bits, encoded losslessly with OpenJPH's `ojph_compress -reversible true` (HT code-blocks 64×64, 5 decomposition levels, RPCL); every decode was first checked against the source and against `opj_decompress`, sample for sample. ", len(films)/2)
	fmt.Fprintf(&b, "Decode: Sentinel `jpeg2000.Decode` in process (after %d untimed runs) with GOMAXPROCS 1 and %d, vs the decode time OpenJPEG 2.5 `opj_decompress` reports, with `-threads 1` and `-threads %d`. ", warm, runtime.GOMAXPROCS(0), runtime.NumCPU())
	b.WriteString("Command: process start-up, reading the codestream and writing the samples raw included, Sentinel's one-file decoder vs `opj_decompress -threads 1 -o out.rawl`. A ratio below 1 means Sentinel is faster.")
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(&b, " Load average at the end of the run: %s (on %d CPUs).", strings.Join(strings.Fields(string(load))[:3], " "), runtime.NumCPU())
	}
	n := strconv.Itoa(runtime.NumCPU())
	b.WriteString("\n\n| films | n | mean codestream | Sentinel, 1 thread | opj_decompress, 1 thread | ratio | Sentinel, " + n +
		" threads | opj_decompress, " + n + " threads | ratio | Sentinel (command) | opj_decompress (command) | ratio |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, k := range order {
		r := results[k]
		sen1, sen, o1, oN := median(r.sentinel1), median(r.sentinel), median(r.opj1), median(r.opjN)
		cli, ocli := median(r.cli), median(r.opjCLI)
		fmt.Fprintf(&b, "| %s | %d | %.0f KiB | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", k, r.films, float64(r.bytes)/float64(r.films)/1024,
			ms(sen1), ms(o1), ratio(sen1, o1), ms(sen), ms(oN), ratio(sen, oN), ms(cli), ms(ocli), ratio(cli, ocli))
	}
	b.WriteString("\n")
	return b.String(), nil
}

// htArgs parses the arguments of the -oneht mode.
func htArgs(args []string) (path string, w, h, bits int, err error) {
	if len(args) != 4 {
		return "", 0, 0, 0, fmt.Errorf("-oneht PATH WIDTH HEIGHT BITS")
	}
	nums := make([]int, 3)
	for i, a := range args[1:] {
		if nums[i], err = strconv.Atoi(a); err != nil {
			return "", 0, 0, 0, err
		}
	}
	return args[0], nums[0], nums[1], nums[2], nil
}
