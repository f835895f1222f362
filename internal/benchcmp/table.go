package benchcmp

import (
	"fmt"
	"io"
	"math/rand"
	"slices"
	"strconv"
	"strings"
)

func newRand(seed int64) *rand.Rand { return rand.New(rand.NewSource(seed)) }

// WriteTable writes the comparison as a markdown table with the machine,
// the load average and the peer's settings under it.
func WriteTable(w io.Writer, r *Result) {
	row := func(name, unit string, g, p, ratio float64, target string) {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", name, fmtNum(g, unit), fmtNum(p, unit), fmtRatio(ratio), target)
	}
	fmt.Fprintln(w, "| figure | Sentinel | PyTorch peer | Sentinel / peer | target |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	row("training step, batch "+strconv.Itoa(batchOf(r)), "ms", r.Go.TrainStepMS, r.Peer.TrainStepMS, r.TrainStepRatio, "≤ 0.7")
	row("inference per image, batch 1", "ms", r.Go.InferB1MS, r.Peer.InferB1MS, r.InferB1Ratio, "≤ 0.3")
	row("inference per image, batch "+strconv.Itoa(batchOf(r)), "ms", r.Go.InferBNMS, r.Peer.InferBNMS, r.InferBNRatio, "≤ 0.5")
	row(fmt.Sprintf("score one image, S=%v SWAG samples, bank %v", r.Settings["swag_samples"], r.Settings["bank"]), "ms", r.Go.SWAGScoreMS, r.Peer.SWAGScoreMS, r.SWAGScoreRatio, "≤ 0.5")
	row("score one image, bank 100k patches", "ms", r.Go.SWAGScore100kMS, r.Peer.SWAGScore100kMS, r.SWAG100kRatio, "")
	banks := make([]int, 0, len(r.Go.KNNMS))
	for n := range r.Go.KNNMS {
		v, _ := strconv.Atoi(n)
		banks = append(banks, v)
	}
	slices.Sort(banks)
	for _, n := range banks {
		k := strconv.Itoa(n)
		target := ""
		if n == 1000000 {
			target = "≤ 0.4"
		}
		row(fmt.Sprintf("kNN query (%v patches), bank %s", r.KNNQueries, humanInt(n)), "ms", r.Go.KNNMS[k], r.Peer.KNNMS[k], r.KNNRatio[k], target)
	}
	fmt.Fprintf(w, "| pipeline, decode to score (images/s; ratio is the speed-up) | %s | %s | %s | ≥ 4.0 |\n",
		fmtNum(r.Go.PipelineImagesPerS, ""), fmtNum(r.Peer.PipelineImagesPerS, ""), fmtRatio(r.PipelineSpeedup))
	row("peak RSS, training (MiB)", "", r.GoTrainRSSMiB, r.PeerTrainRSSMiB, r.TrainRSSRatio, "≤ 0.3")
	row("peak RSS, agent / pipeline (MiB)", "", r.GoAgentRSSMiB, r.PeerAgentRSSMiB, r.AgentRSSRatio, "flat")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "- pipeline files decoded per pass: Sentinel %d, peer %d", r.Go.PipelineDecoded, r.Peer.PipelineDecoded)
	if len(r.Go.PipelineFailed) > 0 {
		fmt.Fprintf(w, "; Sentinel could not decode: %s", strings.Join(r.Go.PipelineFailed, "; "))
	}
	if len(r.Peer.PipelineFailed) > 0 {
		fmt.Fprintf(w, "; the peer could not decode: %s", strings.Join(r.Peer.PipelineFailed, "; "))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "- Sentinel scoring at a 100k-patch bank from %d goroutines: %.1f images/s (target > 10)\n", r.Machine.GOMAXPROCS, r.SWAG100kImagesPS)
	fmt.Fprintf(w, "- Sentinel agent RSS over %d files: %.0f MiB after the first tenth, %.0f MiB at the end\n", r.AgentFiles, r.GoAgentRSSEarly, r.GoAgentRSSEnd)
	fmt.Fprintf(w, "- machine: %s (kernels %s, of %s), %d cores, %s, GOMAXPROCS %d; load average %s before, %s after; %d repetitions, %.0f s\n",
		r.Machine.CPU, r.Machine.Kernels, strings.Join(r.Machine.KernelFamilies, ", "), r.Machine.Cores, r.Machine.GoVersion, r.Machine.GOMAXPROCS, r.Machine.LoadBefore, r.Machine.LoadAfter, r.Reps, r.Machine.WallSeconds)
	keys := make([]string, 0, len(r.Settings))
	for k := range r.Settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, r.Settings[k])
	}
	fmt.Fprintf(w, "- peer settings: %s\n", strings.Join(parts, ", "))
	if ReferenceBLAS(r.Settings) {
		fmt.Fprintf(w, "- WARNING: the peer's matrix products ran in the reference BLAS, not OpenBLAS: its product-bound figures "+
			"(kNN, scoring, training, the pipeline's resample) are several times slower than a fair peer's; %s\n", InstallHint)
	}
}

// ReferenceBLAS says whether the peer's PyTorch did its matrix products in
// Debian's reference BLAS (libblas3), which is what it links when
// libopenblas0-pthread is missing, rather than in OpenBLAS.
func ReferenceBLAS(settings map[string]any) bool {
	s, ok := settings["blas"].(string)
	return ok && strings.Contains(s, "/blas/libblas")
}

func batchOf(r *Result) int {
	if b, ok := r.Settings["batch"].(float64); ok {
		return int(b)
	}
	return 32
}

func fmtNum(v float64, unit string) string {
	if v == 0 {
		return "–"
	}
	s := strconv.FormatFloat(v, 'f', 2, 64)
	if v >= 100 {
		s = strconv.FormatFloat(v, 'f', 0, 64)
	} else if v >= 10 {
		s = strconv.FormatFloat(v, 'f', 1, 64)
	}
	if unit != "" {
		s += " " + unit
	}
	return s
}

func fmtRatio(v float64) string {
	if v == 0 {
		return "–"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + "×"
}

func humanInt(n int) string {
	switch {
	case n >= 1000000 && n%1000000 == 0:
		return strconv.Itoa(n/1000000) + "M"
	case n >= 1000 && n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}
