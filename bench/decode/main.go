// Command decode is the pixel decoding benchmark: per transfer syntax it
// times Sentinel's decoder, pydicom + GDCM and dcmtk on the same files of
// the conformance corpus and the cxr8 chest X-rays, in one run, and prints
// a markdown table of the median time per frame and the ratios.
//
//	go run ./bench/decode [-reps 5] [-max 6] [-write docs/performance.md]
//	go run ./bench/decode -htj2k [-reps 9] [-max 6] [-write docs/performance.md]
//
// With -htj2k it compares HTJ2K decoding with OpenJPEG instead (see
// htj2k.go).
//
// Two comparisons are made, each like for like:
//   - in process: Sentinel's dicomio.DecodeStored against pydicom's
//     dcmread + pixel_array with the GDCM handler (numpy for native data;
//     pydicom 2.3's own RLE handler for RLE, which its GDCM handler does
//     not take),
//     both reading the file, parsing the header and decoding every frame,
//     timed inside one process (no interpreter start-up);
//   - as a command: this program re-executed as a one-file decoder that
//     writes the stored values to a file, against dcmtk's dcmdrle,
//     dcmdjpeg or dcmdjpls writing an uncompressed file (process start-up
//     included on both sides). dcmtk 3.6.7 has no JPEG 2000 decoder.
//
// Times are medians over -reps runs of each file divided by its frames,
// after -warm untimed runs on both sides in process (pydicom's first calls
// import its handlers and fill its caches); the table gives the median
// over the files of a transfer syntax.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sentinel-pacs/sentinel/dicomio"
)

// syntaxes are the transfer syntaxes benchmarked, with the dcmtk tool that
// decompresses each ("" for none).
var syntaxes = []struct{ uid, name, dcmtk string }{
	{"1.2.840.10008.1.2.1", "Explicit VR Little Endian", ""},
	{"1.2.840.10008.1.2.5", "RLE Lossless", "dcmdrle"},
	{"1.2.840.10008.1.2.4.50", "JPEG Baseline", "dcmdjpeg"},
	{"1.2.840.10008.1.2.4.51", "JPEG Extended", "dcmdjpeg"},
	{"1.2.840.10008.1.2.4.57", "JPEG Lossless", "dcmdjpeg"},
	{"1.2.840.10008.1.2.4.70", "JPEG Lossless SV1", "dcmdjpeg"},
	{"1.2.840.10008.1.2.4.80", "JPEG-LS Lossless", "dcmdjpls"},
	{"1.2.840.10008.1.2.4.81", "JPEG-LS Near-Lossless", "dcmdjpls"},
	{"1.2.840.10008.1.2.4.90", "JPEG 2000 Lossless", ""},
	{"1.2.840.10008.1.2.4.91", "JPEG 2000", ""},
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-oneht" {
		// Re-executed as a one-file HTJ2K decoder (see htj2k.go).
		path, w, h, bits, err := htArgs(os.Args[2:])
		if err == nil {
			err = decodeOneHT(path, w, h, bits)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) == 3 && os.Args[1] == "-one" {
		// Re-executed as a one-file decoder: the command-line comparison.
		if err := decodeOne(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	corpus := flag.String("corpus", "../shared/data/dicom", "conformance corpus `folder`")
	cxr8 := flag.String("cxr8", "../shared/data/cxr8/dicom", "full-resolution chest X-ray `folder`")
	reps := flag.Int("reps", 9, "timed runs of each file per decoder")
	warm := flag.Int("warm", 2, "untimed runs of each file before the timed ones, in process")
	maxFiles := flag.Int("max", 6, "corpus files per transfer syntax (the cxr8 files come on top)")
	write := flag.String("write", "", "also write the table under the \"Decoding\" heading of this markdown `file`")
	python := flag.String("python", "/usr/bin/python3", "interpreter with pydicom, GDCM and numpy")
	htj2k := flag.Bool("htj2k", false, "compare HTJ2K decoding with OpenJPEG's opj_decompress instead (cxr8 films encoded with ojph_compress; -write fills the \"HTJ2K decode\" heading)")
	flag.Parse()
	if *htj2k {
		table, err := runHTJ2K(*cxr8, *reps, *warm, *maxFiles)
		if err == nil {
			fmt.Print(table)
			if *write != "" {
				err = writeSection(*write, "HTJ2K decode", "go run ./bench/decode -htj2k -write docs/performance.md", table)
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "decode:", err)
			os.Exit(1)
		}
		return
	}
	files, err := pickFiles(*corpus, *cxr8, *maxFiles)
	if err != nil {
		fmt.Fprintln(os.Stderr, "decode:", err)
		os.Exit(1)
	}
	table := run(files, *reps, *warm, *python)
	fmt.Print(table)
	if *write != "" {
		if err := writeSection(*write, "Decoding", "go run ./bench/decode -write docs/performance.md", table); err != nil {
			fmt.Fprintln(os.Stderr, "decode:", err)
			os.Exit(1)
		}
	}
}

// decodeOne decodes every frame of a file and writes the stored values to
// a temporary file, as dcmtk's tools write theirs.
func decodeOne(path string) error {
	s, err := dicomio.DecodeStored(path, dicomio.Options{}, -1)
	if err != nil {
		return err
	}
	out, err := os.CreateTemp("", "decode-one-*.raw")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	if _, err := out.Write(s.Data); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// benchFile is one file to time.
type benchFile struct {
	path, syntax string
	frames       int
}

// pickFiles chooses, per transfer syntax, up to max corpus files that the
// inventory says decode, plus every cxr8 file.
func pickFiles(corpus, cxr8 string, max int) ([]benchFile, error) {
	inv, err := os.ReadFile(filepath.Join(corpus, "INVENTORY.tsv"))
	if err != nil {
		return nil, fmt.Errorf("%w (run from the repository root, beside ../shared)", err)
	}
	var out []benchFile
	count := map[string]int{}
	for _, line := range strings.Split(string(inv), "\n")[1:] {
		f := strings.Split(line, "\t")
		if len(f) < 23 || f[22] != "decode" || f[7] == "PALETTE COLOR" || count[f[3]] >= max {
			continue
		}
		frames, _ := strconv.Atoi(f[14])
		out = append(out, benchFile{filepath.Join(corpus, f[0]), f[3], max1(frames)})
		count[f[3]]++
	}
	paths, _ := filepath.Glob(filepath.Join(cxr8, "*.dcm"))
	for _, p := range paths {
		h, err := dicomio.ReadHeader(p, dicomio.Options{})
		if err == nil {
			out = append(out, benchFile{p, h.TransferSyntaxUID, max1(h.Frames)})
		}
	}
	return out, nil
}

func max1(n int) int { return max(n, 1) }

// median returns the median of d.
func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// timeIt runs f reps times and returns the median, or false on error.
func timeIt(reps int, f func() error) (time.Duration, bool) {
	var d []time.Duration
	for range reps {
		start := time.Now()
		if err := f(); err != nil {
			return 0, false
		}
		d = append(d, time.Since(start))
	}
	return median(d), true
}

// pyScript times pydicom's decode of one file inside the interpreter and
// prints the median in seconds and the number of frames.
const pyScript = `import sys, time, statistics
import pydicom
from pydicom.pixel_data_handlers import numpy_handler, gdcm_handler, rle_handler
pydicom.config.pixel_data_handlers = [numpy_handler, gdcm_handler, rle_handler]
path, reps, warm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for _ in range(warm):
    pydicom.dcmread(path).pixel_array
times = []
for _ in range(reps):
    t = time.perf_counter()
    a = pydicom.dcmread(path).pixel_array
    times.append(time.perf_counter() - t)
print(statistics.median(times))
`

// timePython returns pydicom + GDCM's median time for a file.
func timePython(python, path string, reps, warm int) (time.Duration, bool) {
	out, err := exec.Command("timeout", "120", python, "-c", pyScript, path, strconv.Itoa(reps), strconv.Itoa(warm)).Output()
	if err != nil {
		return 0, false
	}
	sec, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		return 0, false
	}
	return time.Duration(sec * float64(time.Second)), true
}

// row collects per-frame medians of the files of one transfer syntax.
type row struct {
	files, frames               int
	sentinel, python, cli, tool []time.Duration
	refused                     int
}

func run(files []benchFile, reps, warm int, python string) string {
	self, _ := os.Executable()
	tmp, _ := os.MkdirTemp("", "decode-bench-")
	defer os.RemoveAll(tmp)
	rows := map[string]*row{}
	for _, f := range files {
		r := rows[f.syntax]
		if r == nil {
			r = &row{}
			rows[f.syntax] = r
		}
		perFrame := func(d time.Duration) time.Duration { return d / time.Duration(f.frames) }
		decode := func() error { _, err := dicomio.DecodeStored(f.path, dicomio.Options{}, -1); return err }
		for range warm {
			decode()
		}
		d, ok := timeIt(reps, decode)
		if !ok {
			r.refused++
			continue
		}
		r.files++
		r.frames += f.frames
		r.sentinel = append(r.sentinel, perFrame(d))
		if d, ok := timePython(python, f.path, reps, warm); ok {
			r.python = append(r.python, perFrame(d))
		}
		tool := toolFor(f.syntax)
		if tool == "" {
			continue
		}
		if d, ok := timeIt(reps, func() error { return exec.Command(self, "-one", f.path).Run() }); ok {
			r.cli = append(r.cli, perFrame(d))
		}
		out := filepath.Join(tmp, "out.dcm")
		if d, ok := timeIt(reps, func() error { return exec.Command(tool, f.path, out).Run() }); ok {
			r.tool = append(r.tool, perFrame(d))
		}
	}
	return table(rows, reps, warm)
}

func toolFor(uid string) string {
	for _, s := range syntaxes {
		if s.uid == uid {
			return s.dcmtk
		}
	}
	return ""
}

func ms(d time.Duration) string {
	if d == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", float64(d.Microseconds())/1000)
}

func ratio(a, b time.Duration) string {
	if a == 0 || b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
}

// table renders the results as markdown.
func table(rows map[string]*row, reps, warm int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Median time per frame in milliseconds (median over the files of each syntax of each file's median of %d runs; in process, after %d untimed runs on each side).\n", reps, warm)
	b.WriteString("In process: Sentinel `dicomio.DecodeStored` vs pydicom 2.3.1 `dcmread(...).pixel_array` with GDCM 3.0.21 (numpy for native data, pydicom's numpy RLE handler for RLE, which pydicom 2.3 does not hand to GDCM). ")
	b.WriteString("As a command (process start-up and writing the output included): Sentinel's one-file decoder vs dcmtk 3.6.7 `dcmdrle`/`dcmdjpeg`/`dcmdjpls`. ")
	b.WriteString("A ratio below 1 means Sentinel is faster.")
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(&b, " Load average at the end of the run: %s (on %d CPUs); other work on the machine inflates every column alike.", strings.Join(strings.Fields(string(load))[:3], " "), runtime.NumCPU())
	}
	b.WriteString("\n\n")
	b.WriteString("| transfer syntax | files | frames | Sentinel | pydicom+GDCM | Sentinel / pydicom | Sentinel (command) | dcmtk (command) | Sentinel / dcmtk |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range syntaxes {
		r := rows[s.uid]
		if r == nil {
			continue
		}
		if r.files == 0 {
			fmt.Fprintf(&b, "| %s %s | 0 | 0 | not decoded (%d files refused: codec not registered) | | | | | |\n", s.uid, s.name, r.refused)
			continue
		}
		sen, py, cli, tool := median(r.sentinel), median(r.python), median(r.cli), median(r.tool)
		fmt.Fprintf(&b, "| %s %s | %d | %d | %s | %s | %s | %s | %s | %s |\n", s.uid, s.name, r.files, r.frames,
			ms(sen), ms(py), ratio(sen, py), ms(cli), ms(tool), ratio(cli, tool))
	}
	b.WriteString("\n")
	return b.String()
}

// writeSection replaces the section under "## heading" of a markdown file
// (up to the next "## " heading) with the table, creating the file or the
// section when absent, and leaving other sections alone.
func writeSection(path, heading, command, table string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	section := "## " + heading + "\n\nMade by `" + command + "` from the repository root on " +
		time.Now().UTC().Format("2006-01-02") + ".\n\n" + table
	text := string(old)
	if text == "" {
		text = "# Performance\n\n"
	}
	start := strings.Index(text, "## "+heading+"\n")
	if start < 0 {
		if !strings.HasSuffix(text, "\n\n") {
			text = strings.TrimRight(text, "\n") + "\n\n"
		}
		return os.WriteFile(path, []byte(text+section), 0o644)
	}
	end := len(text)
	if next := strings.Index(text[start+1:], "\n## "); next >= 0 {
		end = start + 1 + next + 1
	}
	return os.WriteFile(path, []byte(text[:start]+section+text[end:]), 0o644)
}
