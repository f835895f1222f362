package detector

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/sentinel-pacs/sentinel"
)

// savedShared returns the shared model's file contents and its path in a
// fresh temporary directory.
func savedShared(t *testing.T) ([]byte, string) {
	t.Helper()
	m := sharedModel(t)
	path := filepath.Join(t.TempDir(), "model.snt")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data, path
}

func TestSaveLoadRoundTrip(t *testing.T) {
	m := sharedModel(t)
	data, path := savedShared(t)
	l, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, b := m.Info(), l.Info()
	if b.Path != path {
		t.Errorf("loaded path %q, want %q", b.Path, path)
	}
	b.Path = ""
	if !a.CreatedAt.Equal(b.CreatedAt) {
		t.Errorf("created %v, loaded %v", a.CreatedAt, b.CreatedAt)
	}
	a.CreatedAt = b.CreatedAt
	aj, _ := json.Marshal(a)
	bj, _ := json.Marshal(b)
	if !bytes.Equal(aj, bj) {
		t.Errorf("info changed by save and load:\n%s\n%s", aj, bj)
	}
	if mc, lc := m.TrainConfig(), l.TrainConfig(); !reflect.DeepEqual(mc, lc) || lc.Epochs != testConfig().Epochs || !slices.Equal(lc.Channels, testConfig().Channels) {
		t.Errorf("train config %+v, loaded %+v", mc, lc)
	}
	if !slices.Equal(m.CalibrationScores(), l.CalibrationScores()) {
		t.Errorf("calibration scores %v, loaded %v", m.CalibrationScores(), l.CalibrationScores())
	}
	for i, img := range append(shared.normals[:4:4], shared.lesions[:4]...) {
		want, err := m.Score(img)
		if err != nil {
			t.Fatal(err)
		}
		got, err := l.Score(img)
		if err != nil {
			t.Fatal(err)
		}
		if got.Value != want.Value || got.Threshold != want.Threshold || got.Decision != want.Decision ||
			!slices.Equal(got.Heatmap.Pix, want.Heatmap.Pix) {
			t.Errorf("image %d: loaded model scores %v %s, trained one %v %s", i, got.Value, got.Decision, want.Value, want.Decision)
		}
	}
	path2 := filepath.Join(t.TempDir(), "again.snt")
	if err := l.Save(path2); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(path2); !bytes.Equal(again, data) {
		t.Error("saving a loaded model gives a different file")
	}
}

func TestSaveIsAtomic(t *testing.T) {
	m := sharedModel(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "model.snt")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatalf("load after overwrite: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after save, want just the model", len(entries))
	}
	if err := m.Save(filepath.Join(dir, "missing", "model.snt")); err == nil {
		t.Error("save into a missing directory succeeded")
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.snt"))
	if !errors.Is(err, sentinel.ErrNoModel) {
		t.Fatalf("error %v, want one wrapping sentinel.ErrNoModel", err)
	}
}

// fileParts splits a valid model file into its header JSON and tensor bytes.
func fileParts(t testing.TB, data []byte) (hdr, tensors []byte) {
	t.Helper()
	n := binary.LittleEndian.Uint32(data[12:])
	return data[16 : 16+n], data[16+n : len(data)-sha256.Size]
}

// assemble builds a model file with a valid checksum from its parts.
func assemble(version uint32, hdr, tensors []byte) []byte {
	var b bytes.Buffer
	b.WriteString(fileMagic)
	binary.Write(&b, binary.LittleEndian, version)
	binary.Write(&b, binary.LittleEndian, uint32(len(hdr)))
	b.Write(hdr)
	b.Write(tensors)
	sum := sha256.Sum256(b.Bytes())
	b.Write(sum[:])
	return b.Bytes()
}

// editHeader returns a validly checksummed file whose header is the valid
// one changed by edit.
func editHeader(t *testing.T, data []byte, edit func(h map[string]any)) []byte {
	t.Helper()
	hdr, tensors := fileParts(t, data)
	var h map[string]any
	if err := json.Unmarshal(hdr, &h); err != nil {
		t.Fatal(err)
	}
	edit(h)
	out, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	return assemble(FormatVersion, out, tensors)
}

func TestLoadRejects(t *testing.T) {
	valid, _ := savedShared(t)
	hdr, tensors := fileParts(t, valid)
	flip := func(i int) []byte {
		b := slices.Clone(valid)
		b[i] ^= 0x10
		return b
	}
	sub := func(path ...string) func(h map[string]any) map[string]any {
		return func(h map[string]any) map[string]any {
			for _, p := range path {
				h = h[p].(map[string]any)
			}
			return h
		}
	}
	nanTensors := slices.Clone(tensors)
	binary.LittleEndian.PutUint32(nanTensors[8:], math.Float32bits(float32(math.NaN())))
	otherTensors := slices.Clone(tensors)
	otherTensors[5] ^= 1

	tests := []struct {
		name string
		data []byte
		want string
		is   error
	}{
		{"empty", nil, "bad magic", ErrCorruptModel},
		{"garbage", []byte("this is not a model file at all, just some text"), "bad magic", ErrCorruptModel},
		{"magic only", []byte(fileMagic), "truncated", ErrCorruptModel},
		{"no checksum", valid[:16], "truncated", ErrCorruptModel},
		{"truncated by one", valid[:len(valid)-1], "checksum", ErrCorruptModel},
		{"truncated in tensors", valid[:len(valid)/2], "checksum", ErrCorruptModel},
		{"appended byte", append(slices.Clone(valid), 0), "checksum", ErrCorruptModel},
		{"flipped header byte", flip(40), "checksum", ErrCorruptModel},
		{"flipped tensor byte", flip(len(valid) - 100), "checksum", ErrCorruptModel},
		{"flipped checksum", flip(len(valid) - 1), "checksum", ErrCorruptModel},
		{"newer version", assemble(FormatVersion+1, hdr, tensors), "newer", sentinel.ErrUnsupported},
		{"version one", assemble(1, hdr, tensors), "retrain", sentinel.ErrUnsupported},
		{"version zero", assemble(0, hdr, tensors), "version 0", ErrCorruptModel},
		{"header size past end", func() []byte {
			b := assemble(FormatVersion, hdr, tensors)
			binary.LittleEndian.PutUint32(b[12:], uint32(len(b)))
			sum := sha256.Sum256(b[:len(b)-sha256.Size])
			copy(b[len(b)-sha256.Size:], sum[:])
			return b
		}(), "header size", ErrCorruptModel},
		{"not JSON", assemble(FormatVersion, []byte("{nope"), tensors), "header", ErrCorruptModel},
		{"null header", assemble(FormatVersion, []byte("null"), tensors), "architecture", ErrCorruptModel},
		{"unknown field", editHeader(t, valid, func(h map[string]any) { h["extra"] = 1 }), "unknown field", ErrCorruptModel},
		{"huge channels", editHeader(t, valid, func(h map[string]any) {
			sub("architecture")(h)["channels"] = []int{1 << 30, 1 << 30, 1 << 30}
		}), "channels", ErrCorruptModel},
		{"huge input", editHeader(t, valid, func(h map[string]any) {
			sub("architecture")(h)["input_size"] = 1 << 40
		}), "input size", ErrCorruptModel},
		{"many stages", editHeader(t, valid, func(h map[string]any) {
			sub("architecture")(h)["channels"] = slices.Repeat([]int{1}, 100)
		}), "stages", ErrCorruptModel},
		{"tensor shape", editHeader(t, valid, func(h map[string]any) {
			h["tensors"].([]any)[0].(map[string]any)["shape"] = []int{8, 1, 3, 4}
		}), "tensors do not match", ErrCorruptModel},
		{"negative shape", editHeader(t, valid, func(h map[string]any) {
			h["tensors"].([]any)[0].(map[string]any)["shape"] = []int{-8, 1, 3, 3}
		}), "tensors do not match", ErrCorruptModel},
		{"calibration count", editHeader(t, valid, func(h map[string]any) {
			sub("info")(h)["calib_images"] = 3
		}), "calibration scores", ErrCorruptModel},
		{"negative uncertainty", editHeader(t, valid, func(h map[string]any) {
			sub("calibration")(h)["uncertainties"].([]any)[0] = -1
		}), "calibration uncertainty 0", ErrCorruptModel},
		{"zero spread", editHeader(t, valid, func(h map[string]any) {
			sub("calibration")(h)["recon_std"] = 0
		}), "standardisation", ErrCorruptModel},
		{"swag collections", editHeader(t, valid, func(h map[string]any) {
			sub("swag")(h)["collected"] = 0
		}), "swag", ErrCorruptModel},
		{"bank width", editHeader(t, valid, func(h map[string]any) {
			sub("memory")(h)["features"] = 7
		}), "memory bank", ErrCorruptModel},
		{"huge normals", editHeader(t, valid, func(h map[string]any) {
			h["normals"] = 1 << 40
		}), "tensors do not match", ErrCorruptModel},
		{"samples out of range", editHeader(t, valid, func(h map[string]any) {
			sub("train_config")(h)["swag_samples"] = 1000
		}), "SWAGSamples", ErrCorruptModel},
		{"threshold mismatch", editHeader(t, valid, func(h map[string]any) {
			sub("calibration")(h)["threshold"] = 123.0
		}), "threshold", ErrCorruptModel},
		{"preprocessing", editHeader(t, valid, func(h map[string]any) { h["preprocess"] = "zscore" }), "preprocessing", ErrCorruptModel},
		{"kind", editHeader(t, valid, func(h map[string]any) { sub("info")(h)["kind"] = "patchcore" }), "kind", ErrCorruptModel},
		{"short tensors", assemble(FormatVersion, hdr, tensors[:len(tensors)-4]), "tensor data", ErrCorruptModel},
		{"NaN weight", assemble(FormatVersion, hdr, nanTensors), "NaN", ErrCorruptModel},
		{"weights not the SWAG mean", assemble(FormatVersion, hdr, otherTensors), "SWAG mean", ErrCorruptModel},
		{"weights not matching version", editHeader(t, valid, func(h map[string]any) {
			sub("info")(h)["version"] = "ae-000000000000"
		}), "hash to version", ErrCorruptModel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "model.snt")
			if err := os.WriteFile(path, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := Load(path)
			if err == nil {
				t.Fatalf("loaded a model (%s)", m.Info().Version)
			}
			if !strings.Contains(err.Error(), tt.want) || !errors.Is(err, tt.is) {
				t.Errorf("error %q, want one mentioning %q and wrapping %v", err, tt.want, tt.is)
			}
			if errors.Is(err, sentinel.ErrNoModel) {
				t.Errorf("error %q wraps ErrNoModel, which is for missing files", err)
			}
		})
	}
}

func TestLoadDirectory(t *testing.T) {
	if _, err := Load(t.TempDir()); err == nil {
		t.Fatal("loading a directory succeeded")
	}
}

// TestLoadEveryTruncationAndFlip loads the valid file cut short at many
// lengths and with single bytes changed at many offsets: every one must fail
// cleanly.
func TestLoadEveryTruncationAndFlip(t *testing.T) {
	valid, _ := savedShared(t)
	for n := 0; n < len(valid); n += 1 + n/16 {
		if _, err := unmarshal(valid[:n]); err == nil {
			t.Fatalf("file truncated to %d of %d bytes loaded", n, len(valid))
		}
	}
	for i := 0; i < len(valid); i += 1 + i/16 {
		b := slices.Clone(valid)
		b[i] ^= 0xff
		if _, err := unmarshal(b); err == nil {
			t.Fatalf("file with byte %d changed loaded", i)
		}
	}
}

// FuzzUnmarshal feeds arbitrary bytes to the decoder.
func FuzzUnmarshal(f *testing.F) {
	f.Add([]byte(fileMagic + "\x01\x00\x00\x00"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		unmarshal(data)
	})
}

// untrainedModel returns a model with initial weights, a made-up SWAG
// posterior, memory bank and calibration, valid for the file format,
// without the cost of training (which instrumentation for fuzzing makes
// slow).
func untrainedModel(side int, channels []int) *Model {
	arch := Architecture{InputSize: side, Channels: channels}
	rng := rand.New(rand.NewSource(1))
	init := arch.initParams(rng, 0.5)
	cfg := DefaultTrainConfig()
	cfg.InputSize, cfg.Channels = side, channels
	post := newSWAG(len(flatten(init)), cfg.SWAGRank)
	for range 3 {
		theta := flatten(init)
		for i := range theta {
			theta[i] += float32(0.01 * rng.NormFloat64())
		}
		post.collect(theta)
	}
	params := unflatten(init, post.Mean)
	st := cfg.MemoryStage
	dim := channels[st] + channels[st+1]
	// About the bank the cxr8 seed normals give at 64×64 (2458 patches).
	bank := make([]float32, 2500*dim)
	for i := range bank {
		bank[i] = rng.Float32()
	}
	normals := make([][]float32, 3)
	for i := range normals {
		normals[i], _ = prepareImage(synthImage(rng, side, false), side)
	}
	scores := []float64{-1, 0, 1, 2}
	calib := calibration{
		Scores: scores, Uncertainties: []float64{0.1, 0.2, 0.3, 0.4}, Threshold: 2, UncertainMargin: cfg.UncertainMargin,
		UncertaintyLimit: 0.35, ReconMean: 0.01, ReconStd: 0.01, MemoryMean: 1, MemoryStd: 1, ReconMapP99: 0.1, MemoryMapP99: 1,
	}
	info := sentinel.ModelInfo{Version: versionOf(params), Kind: Kind, InputSize: side, Threshold: 2, CalibImages: len(scores)}
	return newModel(modelParts{
		info: info, arch: arch, config: cfg.saved(), params: params, swag: post, swagSeed: 1,
		bank: bank, bankDim: dim, normals: normals, calib: calib,
	})
}

// FuzzUnmarshalHeader feeds arbitrary headers, validly framed and
// checksummed with the shared model's tensors, so that the fuzzer reaches
// the header checks behind the checksum.
func FuzzUnmarshalHeader(f *testing.F) {
	valid, err := untrainedModel(testSide, []int{8, 16, 16}).marshal()
	if err != nil {
		f.Fatal(err)
	}
	hdr, tensors := fileParts(f, valid)
	f.Add(hdr)
	f.Add([]byte(`{"architecture":{"input_size":32,"channels":[8,16,16]}}`))
	f.Fuzz(func(t *testing.T, hdr []byte) {
		m, err := unmarshal(assemble(FormatVersion, hdr, tensors))
		if err == nil {
			m.Score(sentinel.NewImage(m.InputSize(), m.InputSize()))
		}
	})
}

// TestLoadReproducesCalibration rescored the held-out normals with a model
// read back from its file: every score must equal the saved calibration
// score exactly, SWAG samples, memory bank and standardisation included.
func TestLoadReproducesCalibration(t *testing.T) {
	m := sharedModel(t)
	_, path := savedShared(t)
	l, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	checkCalibration(t, m, l, shared.train, testConfig().Seed)
}

func TestBaselineScore(t *testing.T) {
	m := sharedModel(t)
	// A training normal is at distance zero from itself.
	order := rand.New(rand.NewSource(testConfig().Seed)).Perm(len(shared.train))
	d, err := m.BaselineScore(shared.train[order[len(order)-1]])
	if err != nil {
		t.Fatal(err)
	}
	if d > 1e-3 {
		t.Errorf("training image at baseline distance %v from the nearest training normal, want 0", d)
	}
	// Standardisation makes the score blind to brightness and contrast.
	img := shared.lesions[0]
	a, _ := m.BaselineScore(img)
	shifted := sentinel.NewImage(img.Width, img.Height)
	for i, v := range img.Pix {
		shifted.Pix[i] = 0.1 + 0.5*v
	}
	b, _ := m.BaselineScore(shifted)
	if math.Abs(a-b) > 1e-3*a || a <= 0 {
		t.Errorf("baseline %v, after an affine change of intensity %v", a, b)
	}
}

// TestLoadVersion4 checks that a version 4 file, written before the SWAG
// samples scored the memory bank, loads with that off.
func TestLoadVersion4(t *testing.T) {
	valid, _ := savedShared(t)
	if !sharedModel(t).config.SampledMemory {
		t.Fatal("the shared model was trained without sampled memory; the test needs it on")
	}
	edited := editHeader(t, valid, func(h map[string]any) {
		cfg := h["train_config"].(map[string]any)
		if _, ok := cfg["sampled_memory"]; !ok {
			t.Fatal("the header has no sampled_memory field")
		}
		delete(cfg, "sampled_memory")
	})
	hdr, tensors := fileParts(t, edited)
	m, err := unmarshal(assemble(4, hdr, tensors))
	if err != nil {
		t.Fatal(err)
	}
	if m.config.SampledMemory {
		t.Error("a version 4 file loaded with sampled memory on")
	}
}

func TestLoadVersion5(t *testing.T) {
	valid, _ := savedShared(t)
	shared := sharedModel(t)
	if shared.calib.NormalLimit == nil {
		t.Fatal("the shared model has no normal limit; the test needs one")
	}
	edited := editHeader(t, valid, func(h map[string]any) {
		cfg := h["train_config"].(map[string]any)
		cal := h["calibration"].(map[string]any)
		if _, ok := cfg["normal_quantile"]; !ok {
			t.Fatal("the header has no normal_quantile field")
		}
		if _, ok := cal["normal_limit"]; !ok {
			t.Fatal("the header has no normal_limit field")
		}
		delete(cfg, "normal_quantile")
		delete(cal, "normal_limit")
	})
	hdr, tensors := fileParts(t, edited)
	m, err := unmarshal(assemble(5, hdr, tensors))
	if err != nil {
		t.Fatal(err)
	}
	if m.calib.NormalLimit != nil || m.TrainConfig().NormalQuantile != 1 {
		t.Errorf("a version 5 file loaded with normal limit %v and quantile %v, want none and 1", m.calib.NormalLimit, m.TrainConfig().NormalQuantile)
	}
	// Every score the band would have made uncertain is decided as before
	// it existed.
	lim := *shared.calib.NormalLimit
	for _, v := range []float64{lim + 1e-9, (lim + m.calib.Threshold) / 2} {
		if v > m.calib.Threshold {
			continue
		}
		got, _ := m.calib.decide(v, nil)
		want, _ := shared.calib.decide(v, nil)
		if got != sentinel.DecisionNormal || want != sentinel.DecisionUncertain {
			t.Errorf("score %v: version 5 file decides %s, current model %s; want normal and uncertain", v, got, want)
		}
	}
}
