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
//	tensors      the header's tensors in order, little-endian float32
//	checksum     SHA-256 of everything before it
//
// A reader checks the magic, then the version (so that a newer file is
// reported as newer, not as corrupt), then the checksum, and only then
// parses the header.
const (
	fileMagic = "SNTLMODL"
	// FormatVersion is the model file format this package writes and the
	// newest it reads.
	FormatVersion = 1

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
	Tensors      []paramSpec        `json:"tensors"`
	Calibration  calibration        `json:"calibration"`
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
		Preprocess:   preprocessClip01,
		Calibration:  m.calib,
	}
	for _, p := range m.params {
		h.Tensors = append(h.Tensors, p.paramSpec)
	}
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
	sum := sha256.Sum256(buf.Bytes())
	buf.Write(sum[:])
	return buf.Bytes(), nil
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
	params, err := readTensors(h.Tensors, rest[hdrLen:])
	if err != nil {
		return nil, err
	}
	if v := versionOf(params); v != h.Info.Version {
		return nil, corrupt("weights hash to version %s, header says %s", v, h.Info.Version)
	}
	return newModel(h.Info, h.Architecture, h.Config, params, h.Calibration), nil
}

// check reports whether the header describes a model this build can run.
func (h *fileHeader) check() error {
	if err := h.Architecture.Validate(); err != nil {
		return fmt.Errorf("architecture: %w", err)
	}
	if h.Preprocess != preprocessClip01 {
		return fmt.Errorf("unknown preprocessing %q", h.Preprocess)
	}
	if h.Info.Kind != Kind {
		return fmt.Errorf("model kind %q, want %q", h.Info.Kind, Kind)
	}
	if h.Info.InputSize != h.Architecture.InputSize {
		return fmt.Errorf("input size %d, architecture says %d", h.Info.InputSize, h.Architecture.InputSize)
	}
	want := h.Architecture.params()
	if !slices.EqualFunc(h.Tensors, want, func(a, b paramSpec) bool {
		return a.Name == b.Name && slices.Equal(a.Shape, b.Shape)
	}) {
		return fmt.Errorf("tensors do not match the architecture")
	}
	c := h.Calibration
	if len(c.Scores) == 0 || len(c.Scores) != h.Info.CalibImages {
		return fmt.Errorf("%d calibration scores for %d calibration images", len(c.Scores), h.Info.CalibImages)
	}
	for i, s := range c.Scores {
		if !finite(s) || s < 0 {
			return fmt.Errorf("calibration score %d is %v", i, s)
		}
	}
	switch {
	case !finite(c.Threshold) || c.Threshold < 0:
		return fmt.Errorf("threshold %v", c.Threshold)
	case c.Threshold != h.Info.Threshold:
		return fmt.Errorf("threshold %v, info says %v", c.Threshold, h.Info.Threshold)
	case !finite(c.UncertainMargin) || c.UncertainMargin < 0 || c.UncertainMargin >= 1:
		return fmt.Errorf("uncertain margin %v", c.UncertainMargin)
	case !finite(c.PixelErrorP99) || c.PixelErrorP99 < 0:
		return fmt.Errorf("pixel error scale %v", c.PixelErrorP99)
	}
	return nil
}

// readTensors decodes the tensors specs describes from data, which must hold
// exactly them.
func readTensors(specs []paramSpec, data []byte) ([]param, error) {
	var total int
	for _, s := range specs {
		total += s.size()
	}
	if len(data) != 4*total {
		return nil, corrupt("tensor data is %d bytes, header describes %d", len(data), 4*total)
	}
	ps := make([]param, len(specs))
	off := 0
	for i, s := range specs {
		d := make([]float32, s.size())
		for j := range d {
			d[j] = math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
			off += 4
			if !finite(float64(d[j])) {
				return nil, corrupt("tensor %s holds %v", s.Name, d[j])
			}
		}
		ps[i] = param{paramSpec: paramSpec{Name: s.Name, Shape: slices.Clone(s.Shape)}, Data: d}
	}
	return ps, nil
}

// finite reports whether v is neither NaN nor infinite.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
