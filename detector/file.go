package detector

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/sentinel-pacs/sentinel"
)

// The model file is, in order:
//
//	magic        8 bytes "SNTLMODL"
//	version      uint32, little-endian: FormatVersion
//	header size  uint32, little-endian: n
//	header       n bytes of JSON (fileHeader)
//	tensors      the header's tensors in order, little-endian float32 or
//	             float64 as each says: the SWAG mean weights (one tensor
//	             per network weight), the SWAG moments "swag.mean" and
//	             "swag.sq_mean" (float64), the deviations "swag.dev", the
//	             memory bank "memory.bank" and the training images
//	             "normals"
//	checksum     SHA-256 of everything before it
//
// A reader checks the magic, then the version (so that a newer file is
// reported as newer, not as corrupt), then the checksum, and only then
// parses the header.
const (
	fileMagic = "SNTLMODL"
	// FormatVersion is the model file format this package writes. Version 1
	// held a plain autoencoder without SWAG posterior or memory bank; such a
	// model must be retrained. Version 3 added the pixel memory and the
	// nearest-normal component (configuration and calibration fields in the
	// header, no new tensors: the pixel memory is cut from "normals"); a
	// version 2 file reads as a version 3 one with both off, which is how
	// it was calibrated, so it is still read. The version was raised so
	// that a build of version 2 refuses a file whose score it would get
	// wrong instead of silently dropping the new components. Version 4
	// added the texture component the same way (a version 2 or 3 file
	// reads with it off). Version 5 added the SWAG samples' memory scores
	// to the uncertainty (sampled_memory in the header; an older file reads
	// with it off, its uncertainty the reconstruction's spread alone) and
	// the shift-tolerant nearest-normal distance (nearest_shift; an older
	// file reads with 0, the unshifted distance). Version 6 added the
	// band below the threshold where a score is "uncertain" rather than
	// "normal" (normal_quantile in the configuration, normal_limit in the
	// calibration); an older file reads without it, deciding as before.
	FormatVersion = 6

	// maxFileSize bounds what Load reads. Models of the largest architecture
	// allowed are far smaller.
	maxFileSize = 256 << 20
	// maxHeaderSize bounds the JSON header.
	maxHeaderSize = 16 << 20
)

// fixedSize is the size of the parts of a model file around header and
// tensors.
const fixedSize = len(fileMagic) + 4 + 4 + sha256.Size

// ErrCorruptModel means a model file is truncated, damaged or not a model
// file at all. A model file of a newer format instead gives an error wrapping
// sentinel.ErrUnsupported.
var ErrCorruptModel = errors.New("corrupt model file")

// fileHeader is the JSON header of a model file.
type fileHeader struct {
	Info         sentinel.ModelInfo `json:"info"`
	Config       savedConfig        `json:"train_config"`
	Architecture Architecture       `json:"architecture"`
	Preprocess   string             `json:"preprocess"`
	SWAG         swagHeader         `json:"swag"`
	Memory       memoryHeader       `json:"memory"`
	Normals      int                `json:"normals"`
	Tensors      []tensorSpec       `json:"tensors"`
	Calibration  calibration        `json:"calibration"`
}

// swagHeader describes the SWAG posterior stored in the tensors.
type swagHeader struct {
	Collected  int   `json:"collected"`
	Rank       int   `json:"rank"`
	SampleSeed int64 `json:"sample_seed"`
}

// memoryHeader describes the memory bank stored in the tensors.
type memoryHeader struct {
	Patches  int `json:"patches"`
	Features int `json:"features"`
}

// Tensor element types in a model file.
const (
	dtypeFloat32 = "float32"
	dtypeFloat64 = "float64"
)

// tensorSpec names one stored tensor, its shape and element type.
type tensorSpec struct {
	Name  string `json:"name"`
	Shape []int  `json:"shape"`
	DType string `json:"dtype"`
}

// Limits on the counts a header may give, checked before anything is
// allocated from them.
const (
	maxTensorElems = 1 << 26
)

// tensorSpecs lists the tensors a model file with header h holds, in order.
func (h *fileHeader) tensorSpecs() []tensorSpec {
	var ts []tensorSpec
	dim := 0
	for _, p := range h.Architecture.params() {
		ts = append(ts, tensorSpec{Name: p.Name, Shape: p.Shape, DType: dtypeFloat32})
		dim += p.size()
	}
	side := h.Architecture.InputSize
	return append(ts,
		tensorSpec{Name: "swag.mean", Shape: []int{dim}, DType: dtypeFloat64},
		tensorSpec{Name: "swag.sq_mean", Shape: []int{dim}, DType: dtypeFloat64},
		tensorSpec{Name: "swag.dev", Shape: []int{min(h.SWAG.Collected, h.SWAG.Rank), dim}, DType: dtypeFloat32},
		tensorSpec{Name: "memory.bank", Shape: []int{h.Memory.Patches, h.Memory.Features}, DType: dtypeFloat32},
		tensorSpec{Name: "normals", Shape: []int{h.Normals, side * side}, DType: dtypeFloat32},
	)
}

// elems returns the number of elements of the tensor, or −1 when a
// dimension is negative or the count exceeds maxTensorElems.
func (t tensorSpec) elems() int {
	n := 1
	for _, d := range t.Shape {
		if d < 0 || d > maxTensorElems {
			return -1
		}
		n *= d
		if n > maxTensorElems {
			return -1
		}
	}
	return n
}

// bytes returns the stored size of one element.
func (t tensorSpec) width() int {
	if t.DType == dtypeFloat64 {
		return 8
	}
	return 4
}

// Save writes the model to path as one file, atomically: it writes a
// temporary file in the same directory, syncs it and renames it over path,
// so that a reader sees either the old file or the whole new one.
func (m *Model) Save(path string) error {
	data, err := m.marshal()
	if err != nil {
		return fmt.Errorf("detector: save model: %w", err)
	}
	if err := writeFileAtomic(path, data); err != nil {
		return fmt.Errorf("detector: save model: %w", err)
	}
	return nil
}

// marshal encodes the model in the file format.
func (m *Model) marshal() ([]byte, error) {
	info := m.Info()
	info.Path = ""
	h := fileHeader{
		Info:         info,
		Config:       m.config,
		Architecture: m.arch,
		Preprocess:   m.config.preprocessName(),
		SWAG:         swagHeader{Collected: m.swag.N, Rank: m.swag.Rank, SampleSeed: m.swagSeed},
		Memory:       memoryHeader{Patches: m.bankRows, Features: m.bankDim},
		Normals:      len(m.normals),
		Calibration:  m.calib,
	}
	h.Tensors = h.tensorSpecs()
	hdr, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode header: %w", err)
	}
	var buf bytes.Buffer
	buf.WriteString(fileMagic)
	binary.Write(&buf, binary.LittleEndian, uint32(FormatVersion))
	binary.Write(&buf, binary.LittleEndian, uint32(len(hdr)))
	buf.Write(hdr)
	for _, p := range m.params {
		buf.Write(float32Bytes(p.Data))
	}
	buf.Write(float64Bytes(m.swag.Mean))
	buf.Write(float64Bytes(m.swag.SqMean))
	for _, d := range m.swag.Dev {
		buf.Write(float32Bytes(d))
	}
	buf.Write(float32Bytes(m.bank))
	for _, x := range m.normals {
		buf.Write(float32Bytes(x))
	}
	sum := sha256.Sum256(buf.Bytes())
	buf.Write(sum[:])
	return buf.Bytes(), nil
}

// float64Bytes returns v as little-endian float64 bytes.
func float64Bytes(v []float64) []byte {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return b
}

// writeFileAtomic writes data to a temporary file beside path and renames
// it to path.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	// Sync the directory so the rename itself survives a crash; not every
	// platform allows it, and the file is already complete, so a failure
	// here is not reported.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Load reads a model file written by Save. A missing file gives an error
// wrapping sentinel.ErrNoModel; a damaged one an error wrapping
// ErrCorruptModel; one of a newer format an error wrapping
// sentinel.ErrUnsupported. Load checks everything it reads and does not
// panic on any input.
func Load(path string) (*Model, error) {
	data, err := readBounded(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("detector: load model %s: %w: %w", path, sentinel.ErrNoModel, err)
		}
		return nil, fmt.Errorf("detector: load model: %w", err)
	}
	m, err := unmarshal(data)
	if err != nil {
		return nil, fmt.Errorf("detector: load model %s: %w", path, err)
	}
	m.info.Path = path
	return m, nil
}

// readBounded reads path if it is a regular file of at most maxFileSize
// bytes.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file: %w", path, ErrCorruptModel)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s is larger than the %d bytes a model may have: %w", path, maxFileSize, ErrCorruptModel)
	}
	return data, nil
}

// corrupt returns an error wrapping ErrCorruptModel.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorruptModel, fmt.Sprintf(format, args...))
}

// unmarshal decodes and checks a model file's contents.
func unmarshal(data []byte) (*Model, error) {
	if len(data) < len(fileMagic) || string(data[:len(fileMagic)]) != fileMagic {
		return nil, corrupt("not a Sentinel model file (bad magic)")
	}
	if len(data) < len(fileMagic)+4 {
		return nil, corrupt("truncated: %d bytes", len(data))
	}
	version := binary.LittleEndian.Uint32(data[len(fileMagic):])
	if version > FormatVersion {
		return nil, fmt.Errorf("model file format version %d is newer than the newest this build reads (%d); upgrade Sentinel: %w",
			version, FormatVersion, sentinel.ErrUnsupported)
	}
	if version == 1 {
		return nil, fmt.Errorf("model file format version 1 holds a plain autoencoder without the SWAG posterior and memory bank this build scores with; retrain with 'sentinel train': %w",
			sentinel.ErrUnsupported)
	}
	if version < 1 {
		return nil, corrupt("format version %d", version)
	}
	if len(data) < fixedSize {
		return nil, corrupt("truncated: %d bytes", len(data))
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if want := sha256.Sum256(body); !bytes.Equal(sum, want[:]) {
		return nil, corrupt("checksum mismatch (truncated or damaged)")
	}
	hdrLen := uint64(binary.LittleEndian.Uint32(data[len(fileMagic)+4:]))
	rest := body[len(fileMagic)+8:]
	if hdrLen > maxHeaderSize || hdrLen > uint64(len(rest)) {
		return nil, corrupt("header size %d exceeds the file", hdrLen)
	}
	var h fileHeader
	dec := json.NewDecoder(bytes.NewReader(rest[:hdrLen]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return nil, corrupt("header: %v", err)
	}
	if err := h.check(); err != nil {
		return nil, corrupt("header: %v", err)
	}
	ts, err := readTensors(h.Tensors, rest[hdrLen:])
	if err != nil {
		return nil, err
	}
	return assembleLoaded(&h, ts)
}

// assembleLoaded builds a model from a checked header and its tensors,
// which are in the order tensorSpecs gives.
func assembleLoaded(h *fileHeader, ts []storedTensor) (*Model, error) {
	specs := h.Architecture.params()
	params := make([]param, len(specs))
	for i, s := range specs {
		params[i] = param{paramSpec: paramSpec{Name: s.Name, Shape: slices.Clone(s.Shape)}, Data: ts[i].f32}
	}
	rest := ts[len(specs):]
	post := &swagState{N: h.SWAG.Collected, Rank: h.SWAG.Rank, Mean: rest[0].f64, SqMean: rest[1].f64}
	dim := len(post.Mean)
	for i := range min(post.N, post.Rank) {
		post.Dev = append(post.Dev, rest[2].f32[i*dim:(i+1)*dim])
	}
	if err := post.check(dim); err != nil {
		return nil, corrupt("%v", err)
	}
	off := 0
	for _, p := range params {
		for j, v := range p.Data {
			if float32(post.Mean[off+j]) != v {
				return nil, corrupt("weight %s[%d] is not the SWAG mean", p.Name, j)
			}
		}
		off += len(p.Data)
	}
	if v := versionOf(params); v != h.Info.Version {
		return nil, corrupt("weights hash to version %s, header says %s", v, h.Info.Version)
	}
	side2 := h.Architecture.InputSize * h.Architecture.InputSize
	normals := make([][]float32, h.Normals)
	for i := range normals {
		normals[i] = rest[4].f32[i*side2 : (i+1)*side2]
	}
	return newModel(modelParts{
		info: h.Info, arch: h.Architecture, config: h.Config, params: params, swag: post, swagSeed: h.SWAG.SampleSeed,
		bank: rest[3].f32, bankDim: h.Memory.Features, normals: normals, calib: h.Calibration,
	}), nil
}

// check reports whether the header describes a model this build can run.
func (h *fileHeader) check() error {
	if err := h.Architecture.Validate(); err != nil {
		return fmt.Errorf("architecture: %w", err)
	}
	if h.Preprocess != h.Config.preprocessName() {
		return fmt.Errorf("unknown preprocessing %q (configuration says %q)", h.Preprocess, h.Config.preprocessName())
	}
	if h.Info.Kind != Kind {
		return fmt.Errorf("model kind %q, want %q", h.Info.Kind, Kind)
	}
	if h.Info.InputSize != h.Architecture.InputSize {
		return fmt.Errorf("input size %d, architecture says %d", h.Info.InputSize, h.Architecture.InputSize)
	}
	cfg := h.Config.config()
	if !slices.Equal(cfg.Channels, h.Architecture.Channels) || cfg.InputSize != h.Architecture.InputSize {
		return fmt.Errorf("training configuration does not match the architecture")
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("training configuration: %w", err)
	}
	if h.SWAG.Rank != cfg.SWAGRank || h.SWAG.Collected < 1 || h.SWAG.Collected > cfg.Epochs {
		return fmt.Errorf("swag: %d collections of rank %d for rank %d over %d epochs", h.SWAG.Collected, h.SWAG.Rank, cfg.SWAGRank, cfg.Epochs)
	}
	if g, d := h.Architecture.InputSize>>(cfg.MemoryStage+1), cfg.Channels[cfg.MemoryStage]+cfg.Channels[cfg.MemoryStage+1]; h.Memory.Features != d || h.Memory.Patches < 1 || g < 1 {
		return fmt.Errorf("memory bank of %d×%d, features are %d wide", h.Memory.Patches, h.Memory.Features, d)
	}
	if h.Normals < 0 {
		return fmt.Errorf("%d normals", h.Normals)
	}
	if h.Normals == 0 && (cfg.PixelPatch > 0 || cfg.NearestWeight > 0 || cfg.TextureWeight > 0) {
		return fmt.Errorf("no training normals for the pixel memory, the nearest-normal or the texture component")
	}
	want := h.tensorSpecs()
	if !slices.EqualFunc(h.Tensors, want, func(a, b tensorSpec) bool {
		return a.Name == b.Name && a.DType == b.DType && slices.Equal(a.Shape, b.Shape)
	}) {
		return fmt.Errorf("tensors do not match the architecture, posterior, bank and normals")
	}
	for _, t := range want {
		if t.elems() < 0 {
			return fmt.Errorf("tensor %s of shape %v is too large", t.Name, t.Shape)
		}
	}
	c := h.Calibration
	if len(c.Scores) == 0 || len(c.Scores) != h.Info.CalibImages {
		return fmt.Errorf("%d calibration scores for %d calibration images", len(c.Scores), h.Info.CalibImages)
	}
	// A model whose score does not vary over its samples keeps no
	// uncertainties (files before format 5 kept zeros for it).
	if n := len(c.Uncertainties); (cfg.SWAGSamples > 1 && n != len(c.Scores) && n != 0) || (cfg.SWAGSamples <= 1 && n != 0) {
		return fmt.Errorf("%d calibration uncertainties for %d scores and %d samples", n, len(c.Scores), cfg.SWAGSamples)
	}
	for i, s := range c.Scores {
		if !finite(s) {
			return fmt.Errorf("calibration score %d is %v", i, s)
		}
	}
	for i, s := range c.Uncertainties {
		if !finite(s) || s < 0 {
			return fmt.Errorf("calibration uncertainty %d is %v", i, s)
		}
	}
	switch {
	case !finite(c.Threshold):
		return fmt.Errorf("threshold %v", c.Threshold)
	case c.Threshold != h.Info.Threshold:
		return fmt.Errorf("threshold %v, info says %v", c.Threshold, h.Info.Threshold)
	case !finite(c.UncertainMargin) || c.UncertainMargin < 0 || c.UncertainMargin >= 1:
		return fmt.Errorf("uncertain margin %v", c.UncertainMargin)
	case !finite(c.UncertaintyLimit) || c.UncertaintyLimit < 0:
		return fmt.Errorf("uncertainty limit %v", c.UncertaintyLimit)
	case c.NormalLimit != nil && !finite(*c.NormalLimit):
		return fmt.Errorf("normal limit %v", *c.NormalLimit)
	case !finite(c.ReconMean) || !finite(c.MemoryMean) || !(c.ReconStd > 0) || !(c.MemoryStd > 0) || !finite(c.ReconStd) || !finite(c.MemoryStd):
		return fmt.Errorf("standardisation %v±%v, %v±%v", c.ReconMean, c.ReconStd, c.MemoryMean, c.MemoryStd)
	case !finite(c.ReconMapP99) || c.ReconMapP99 < 0 || !finite(c.MemoryMapP99) || c.MemoryMapP99 < 0:
		return fmt.Errorf("heatmap scales %v, %v", c.ReconMapP99, c.MemoryMapP99)
	}
	return nil
}

// storedTensor is one tensor read from a file; f32 or f64 holds its values
// as its type says.
type storedTensor struct {
	f32 []float32
	f64 []float64
}

// readTensors decodes the tensors specs describes from data, which must hold
// exactly them. The specs have been checked against the header, so their
// sizes are bounded.
func readTensors(specs []tensorSpec, data []byte) ([]storedTensor, error) {
	var total int
	for _, s := range specs {
		total += s.elems() * s.width()
	}
	if len(data) != total {
		return nil, corrupt("tensor data is %d bytes, header describes %d", len(data), total)
	}
	ts := make([]storedTensor, len(specs))
	off := 0
	for i, s := range specs {
		n := s.elems()
		if s.DType == dtypeFloat64 {
			d := make([]float64, n)
			for j := range d {
				d[j] = math.Float64frombits(binary.LittleEndian.Uint64(data[off:]))
				off += 8
				if !finite(d[j]) {
					return nil, corrupt("tensor %s holds %v", s.Name, d[j])
				}
			}
			ts[i].f64 = d
			continue
		}
		d := make([]float32, n)
		for j := range d {
			d[j] = math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
			off += 4
			if !finite(float64(d[j])) {
				return nil, corrupt("tensor %s holds %v", s.Name, d[j])
			}
		}
		ts[i].f32 = d
	}
	return ts, nil
}

// finite reports whether v is neither NaN nor infinite.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
