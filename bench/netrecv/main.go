// Command netrecv measures how fast DICOM objects are received over
// loopback: dcmtk's storescu sends the same files, in one run, to
// Sentinel's dicomnet Server and to dcmtk's storescp, and a markdown table
// gives images/s and MB/s for each.
//
//	go run ./bench/netrecv [-files 200] [-size 512] [-reps 3] [-pdu 131072]
//
// Receivers measured, each as a fresh process or server per repetition:
//   - dicomnet Server + SpoolHandler: Part 10 files with fsync of each
//     file and its folder;
//   - storescp +B (bit-preserving: the data set streamed to disk as
//     received, no fsync);
//   - storescp in its default mode (parses the data set, writes it
//     back, no fsync);
//   - the first two again with TCP_NODELAY=1 in the environment of
//     storescu and storescp, which makes dcmtk turn Nagle's algorithm off;
//   - both servers discarding the data (dicomnet with a handler that
//     reads and drops, storescp --ignore): the network layers alone.
//
// Both ends advertise the same maximum PDU length (-pdu). The time is the
// wall time of the storescu run, from its start to its exit (process
// start-up and association included), median over -reps; MB/s counts the
// data set bytes of the files. It skips, saying so, when storescu or
// storescp is missing (Debian package dcmtk).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sentinel-pacs/sentinel/dicomnet"
	"github.com/sentinel-pacs/sentinel/internal/phantom"
)

func main() {
	files := flag.Int("files", 200, "files sent per run")
	size := flag.Int("size", 512, "phantom side in pixels (2 bytes a pixel)")
	reps := flag.Int("reps", 3, "repetitions; the median is reported")
	pdu := flag.Int("pdu", 131072, "maximum PDU length both receivers advertise (4096..131072 for storescp)")
	keep := flag.Bool("keep", false, "keep the work folder")
	flag.Parse()
	if err := run(*files, *size, *reps, uint32(*pdu), *keep); err != nil {
		fmt.Fprintln(os.Stderr, "netrecv:", err)
		os.Exit(1)
	}
}

// receiver is one way of receiving, started afresh for each repetition.
type receiver struct {
	name string
	// env is added to the environment of storescu and, for storescp, of
	// the receiver.
	env []string
	// start starts it writing into dir and returns its port and a stop
	// function.
	start func(dir string, env []string) (port string, stop func() error, err error)
	// stored counts what it wrote into dir (nil: it writes nothing).
	stored func(dir string) int
}

func run(nfiles, size, reps int, pdu uint32, keep bool) error {
	storescu, err := exec.LookPath("storescu")
	if err != nil {
		fmt.Println("netrecv: storescu not found (Debian package dcmtk): skipped")
		return nil
	}
	storescp, err := exec.LookPath("storescp")
	if err != nil {
		fmt.Println("netrecv: storescp not found (Debian package dcmtk): skipped")
		return nil
	}
	work, err := os.MkdirTemp("", "netrecv-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(work)
	}
	src := filepath.Join(work, "src")
	total, err := makeFiles(src, nfiles, size)
	if err != nil {
		return err
	}
	// dcmtk leaves Nagle's algorithm on unless TCP_NODELAY=1 is in the
	// environment; with it on, a receiver that delays its ACKs stalls each
	// message (see the package's quickack_linux.go).
	nodelay := []string{"TCP_NODELAY=1"}
	receivers := []receiver{
		{"dicomnet Server + SpoolHandler (fsync)", nil, ours(pdu, true), countFiles},
		{"storescp +B (bit-preserving)", nil, theirs(storescp, pdu, "+B"), countFiles},
		{"storescp (default: parse and rewrite)", nil, theirs(storescp, pdu), countFiles},
		{"dicomnet Server + SpoolHandler (fsync), TCP_NODELAY=1", nodelay, ours(pdu, true), countFiles},
		{"storescp +B, TCP_NODELAY=1", nodelay, theirs(storescp, pdu, "+B"), countFiles},
		{"dicomnet Server, data discarded, TCP_NODELAY=1", nodelay, ours(pdu, false), nil},
		{"storescp --ignore, TCP_NODELAY=1", nodelay, theirs(storescp, pdu, "--ignore"), nil},
	}
	times := make([][]time.Duration, len(receivers))
	load := loadAvg()
	for rep := range reps {
		// Alternate the order so that neither side always goes first.
		order := make([]int, len(receivers))
		for i := range order {
			order[i] = i
		}
		if rep%2 == 1 {
			slices.Reverse(order)
		}
		for _, i := range order {
			r := receivers[i]
			dir := filepath.Join(work, fmt.Sprintf("rx%d-%d", i, rep))
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return err
			}
			port, stop, err := r.start(dir, r.env)
			if err != nil {
				return fmt.Errorf("%s: %w", r.name, err)
			}
			t0 := time.Now()
			cmd := exec.Command(storescu, "-aet", "BENCH", "-aec", "SENTINEL", "+sd", "127.0.0.1", port, src)
			cmd.Env = append(os.Environ(), r.env...)
			out, err := cmd.CombinedOutput()
			d := time.Since(t0)
			if serr := stop(); err == nil {
				err = serr
			}
			if err != nil {
				return fmt.Errorf("%s: storescu: %w\n%s", r.name, err, out)
			}
			if r.stored != nil {
				if n := r.stored(dir); n != nfiles {
					return fmt.Errorf("%s: %d files stored, want %d", r.name, n, nfiles)
				}
			}
			times[i] = append(times[i], d)
			os.RemoveAll(dir)
		}
	}
	fmt.Printf("| receiver | images/s | MB/s | median time (s) | runs (s) |\n|---|---|---|---|---|\n")
	for i, r := range receivers {
		ts := slices.Clone(times[i])
		slices.Sort(ts)
		med := ts[len(ts)/2].Seconds()
		var runs []string
		for _, d := range times[i] {
			runs = append(runs, strconv.FormatFloat(d.Seconds(), 'f', 2, 64))
		}
		fmt.Printf("| %s | %.0f | %.1f | %.2f | %s |\n", r.name, float64(nfiles)/med, float64(total)/med/1e6, med, strings.Join(runs, ", "))
	}
	fmt.Printf("\n- %d files of %dx%d 16-bit pixels (Secondary Capture, Explicit VR Little Endian), %.1f MB of data sets, sent by one storescu (`storescu -aet BENCH -aec SENTINEL +sd 127.0.0.1 PORT DIR`) per run; maximum PDU %d on both receivers; %d repetitions\n",
		nfiles, size, size, float64(total)/1e6, pdu, reps)
	fmt.Printf("- machine: %s/%s, %d CPUs, %s; load average before %s, after %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), load, loadAvg())
	return nil
}

// makeFiles writes n phantom files into dir and returns the total of their
// data set bytes.
func makeFiles(dir string, n, size int) (int64, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return 0, err
	}
	rng := rand.New(rand.NewPCG(7, 7))
	study := phantom.NewUID(rng)
	var total int64
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("img%04d.dcm", i))
		meta := phantom.Meta{PatientID: "BENCH", StudyInstanceUID: study, SeriesInstanceUID: study + ".1", SOPInstanceUID: phantom.NewUID(rng)}
		if err := phantom.WriteDICOM(p, phantom.Generate(rng, size, phantom.Normal), size, meta); err != nil {
			return 0, err
		}
		fm, err := dicomnet.ReadFileMeta(p)
		if err != nil {
			return 0, err
		}
		st, err := os.Stat(p)
		if err != nil {
			return 0, err
		}
		total += st.Size() - fm.DatasetOffset
	}
	return total, nil
}

// ours starts a dicomnet Server in this process: with a SpoolHandler, or
// with a handler that reads and drops each data set.
func ours(pdu uint32, spool bool) func(string, []string) (string, func() error, error) {
	return func(dir string, _ []string) (string, func() error, error) {
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		var h dicomnet.StoreHandler = dicomnet.StoreHandlerFunc(func(_ context.Context, req *dicomnet.StoreRequest) uint16 {
			if _, err := io.Copy(io.Discard, req.Dataset); err != nil {
				return dicomnet.StatusOutOfResources
			}
			return dicomnet.StatusSuccess
		})
		if spool {
			sh, err := dicomnet.NewSpoolHandler(dicomnet.SpoolConfig{Root: dir, Logger: log})
			if err != nil {
				return "", nil, err
			}
			h = sh
		}
		s, err := dicomnet.NewServer(dicomnet.Config{AETitle: "SENTINEL", SOPClasses: dicomnet.RadiographSOPClasses,
			Handler: h, MaxPDULength: pdu, Logger: log})
		if err != nil {
			return "", nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", nil, err
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Serve(ctx, ln) }()
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		return port, func() error {
			cancel()
			if err := <-done; err != nil {
				return err
			}
			if st := s.Stats(); len(st.StoresFailed) > 0 || st.Aborted > 0 {
				return fmt.Errorf("stores failed: %+v", st)
			}
			return nil
		}, nil
	}
}

// theirs starts storescp writing into dir with extra options.
func theirs(storescp string, pdu uint32, extra ...string) func(string, []string) (string, func() error, error) {
	return func(dir string, env []string) (string, func() error, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", nil, err
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		ln.Close()
		args := append([]string{"-aet", "SENTINEL", "-od", dir, "-pdu", strconv.Itoa(int(pdu))}, extra...)
		cmd := exec.Command(storescp, append(args, port)...)
		cmd.Env = append(os.Environ(), env...)
		if err := cmd.Start(); err != nil {
			return "", nil, err
		}
		stop := func() error {
			cmd.Process.Kill()
			cmd.Wait()
			return nil
		}
		for deadline := time.Now().Add(10 * time.Second); ; {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 100*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				stop()
				return "", nil, errors.New("storescp did not start listening")
			}
			time.Sleep(20 * time.Millisecond)
		}
		return port, stop, nil
	}
}

// countFiles counts the regular files under dir, other than .part files.
func countFiles(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasSuffix(p, ".part") {
			n++
		}
		return nil
	})
	return n
}

// loadAvg is the 1-minute load average, where /proc has it.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}
