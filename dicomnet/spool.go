package dicomnet

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// Modes of what the spool creates.
const (
	spoolFileMode = 0o640
	spoolDirMode  = 0o750
)

// UnknownStudy is the folder of objects whose Study Instance UID could
// not be read.
const UnknownStudy = "unknown-study"

// SpoolConfig configures a SpoolHandler.
type SpoolConfig struct {
	// Root is the spool folder; it is created if missing.
	Root string
	// Paused, when set and returning true, makes every store answer
	// StatusOutOfResources without writing anything.
	Paused func() bool
	// Logger receives the log (default slog.Default()).
	Logger *slog.Logger
}

// SpoolHandler is a StoreHandler that writes each object as a DICOM Part
// 10 file, <root>/<calling AE>/<study UID>/<SOP instance UID>.dcm: the File
// Meta Information (Explicit VR Little Endian, the source AE title being
// the calling AE) followed by the data set exactly as received. The file
// is written as .dcm.part, synced, and linked to its final name, then the
// folder is synced. An identical file already there makes the store a
// success that writes nothing; a different one is kept, and the new file
// takes the name <SOP instance UID>.<n>.dcm. Any failure removes the
// partial file and answers StatusOutOfResources.
type SpoolHandler struct {
	root   string
	paused func() bool
	log    *slog.Logger
}

// NewSpoolHandler makes the root folder if needed.
func NewSpoolHandler(cfg SpoolConfig) (*SpoolHandler, error) {
	if cfg.Root == "" {
		return nil, errors.New("dicomnet: spool: no root folder")
	}
	if err := os.MkdirAll(cfg.Root, spoolDirMode); err != nil {
		return nil, fmt.Errorf("dicomnet: spool: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &SpoolHandler{root: cfg.Root, paused: cfg.Paused, log: cfg.Logger}, nil
}

// stickyReader remembers the first error of r other than io.EOF.
type stickyReader struct {
	r   io.Reader
	err error
}

func (s *stickyReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// HandleStore writes one object.
func (h *SpoolHandler) HandleStore(ctx context.Context, req *StoreRequest) uint16 {
	if h.paused != nil && h.paused() {
		return StatusOutOfResources
	}
	for _, uid := range []string{req.SOPClassUID, req.SOPInstanceUID, req.TransferSyntaxUID} {
		if len(uid) > 64 || strings.Trim(uid, "0123456789.") != "" {
			return StatusCannotUnderstand
		}
	}
	log := h.log.With(LogKeyAssociation, req.AssociationID, LogKeyCallingAE, req.CallingAE)
	src := &stickyReader{r: req.Dataset}
	var prefix bytes.Buffer
	study, err := findStudyUID(io.TeeReader(src, &prefix), req.TransferSyntaxUID)
	if src.err != nil {
		log.Info("dicomnet: spool: data set interrupted", "err", src.err)
		return StatusOutOfResources
	}
	studyDir := safeUID(study)
	if err != nil || study == "" {
		log.Warn("dicomnet: spool: no study instance UID in the data set", "err", err)
		studyDir = UnknownStudy
	}
	aeDir := safeAE(req.CallingAE)
	dir := filepath.Join(h.root, aeDir, studyDir)
	if err := mkdirSynced(h.root, aeDir, studyDir); err != nil {
		log.Error("dicomnet: spool: cannot make the folder", "err", err)
		return StatusOutOfResources
	}
	name := safeUID(req.SOPInstanceUID)
	part, n, err := h.writePart(dir, name, req, prefix.Bytes(), src)
	if err != nil {
		if src.err != nil {
			log.Info("dicomnet: spool: data set interrupted: partial file removed", "err", src.err)
		} else {
			log.Error("dicomnet: spool: write failed: partial file removed", "err", err)
		}
		return StatusOutOfResources
	}
	final, dup, err := place(dir, name, part)
	if err != nil {
		os.Remove(part)
		log.Error("dicomnet: spool: cannot move the file into place", "err", err)
		return StatusOutOfResources
	}
	log.Info("dicomnet: spool: stored", "path", final, "bytes", n, "duplicate", dup)
	return StatusSuccess
}

// writePart writes the meta, the bytes already read and the rest of src
// to a new .dcm.part file in dir, synced and closed. On error the file is
// removed.
func (h *SpoolHandler) writePart(dir, name string, req *StoreRequest, prefix []byte, src io.Reader) (_ string, _ int64, err error) {
	var f *os.File
	var path string
	for i := 0; f == nil; i++ {
		path = filepath.Join(dir, name+".dcm.part")
		if i > 0 {
			path = filepath.Join(dir, fmt.Sprintf("%s.%d.dcm.part", name, i))
		}
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, spoolFileMode)
		if err != nil && (!errors.Is(err, fs.ErrExist) || i >= 100) {
			return "", 0, err
		}
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
		}
	}()
	if err := f.Chmod(spoolFileMode); err != nil {
		return "", 0, err
	}
	bw := bufio.NewWriterSize(f, 256<<10)
	bw.Write(encodeFileMeta(req.SOPClassUID, req.SOPInstanceUID, req.TransferSyntaxUID, req.CallingAE))
	bw.Write(prefix)
	rest, err := io.Copy(bw, src)
	if err != nil {
		return "", 0, err
	}
	if err := bw.Flush(); err != nil {
		return "", 0, err
	}
	if err := f.Sync(); err != nil {
		return "", 0, err
	}
	if err := f.Close(); err != nil {
		return "", 0, err
	}
	return path, int64(len(prefix)) + rest, nil
}

// place gives the finished part file its final name in dir: name.dcm, or
// name.<n>.dcm when files with different bytes hold the earlier names. It
// reports dup when an identical file was already there (the part file is
// then removed).
func place(dir, name, part string) (final string, dup bool, err error) {
	for i := 0; i < 1000; i++ {
		final = filepath.Join(dir, name+".dcm")
		if i > 0 {
			final = filepath.Join(dir, fmt.Sprintf("%s.%d.dcm", name, i))
		}
		err := os.Link(part, final)
		if err == nil {
			if err := os.Remove(part); err != nil {
				return "", false, err
			}
			return final, false, syncDir(dir)
		}
		if errors.Is(err, fs.ErrExist) {
			same, err := sameContents(part, final)
			if err != nil {
				return "", false, err
			}
			if same {
				return final, true, os.Remove(part)
			}
			continue
		}
		// A file system without hard links: rename, when the name is free.
		if _, serr := os.Lstat(final); !errors.Is(serr, fs.ErrNotExist) {
			return "", false, err
		}
		if err := os.Rename(part, final); err != nil {
			return "", false, err
		}
		return final, false, syncDir(dir)
	}
	return "", false, fmt.Errorf("dicomnet: spool: 1000 different files named %s", name)
}

// sameContents reports whether two files have the same bytes.
func sameContents(a, b string) (bool, error) {
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	sa, err := fa.Stat()
	if err != nil {
		return false, err
	}
	sb, err := fb.Stat()
	if err != nil {
		return false, err
	}
	if sa.Size() != sb.Size() {
		return false, nil
	}
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if ea == io.EOF || ea == io.ErrUnexpectedEOF {
			return eb == ea, nil
		}
		if ea != nil {
			return false, ea
		}
		if eb != nil {
			return false, eb
		}
	}
}

// mkdirSynced makes root/parts..., each folder created with the spool's
// mode and its parent synced.
func mkdirSynced(root string, parts ...string) error {
	dir := root
	for _, p := range parts {
		parent := dir
		dir = filepath.Join(dir, p)
		err := os.Mkdir(dir, spoolDirMode)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := os.Chmod(dir, spoolDirMode); err != nil {
			return err
		}
		if err := syncDir(parent); err != nil {
			return err
		}
	}
	return nil
}

// syncDir makes a folder's entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("dicomnet: sync %s: %w", dir, err)
	}
	return nil
}

// safeUID is a UID as a file name: itself when it is digits and dots in
// non-empty components, otherwise "h" and a hash of it.
func safeUID(uid string) string {
	ok := len(uid) > 0 && len(uid) <= 64
	for _, c := range strings.Split(uid, ".") {
		if c == "" || strings.Trim(c, "0123456789") != "" {
			ok = false
		}
	}
	if ok {
		return uid
	}
	sum := sha256.Sum256([]byte(uid))
	return "h" + hex.EncodeToString(sum[:16])
}

// safeAE is an AE title as a folder name: letters, digits, '-' and '_'
// kept, '.' kept except first, anything else replaced by '_'; a title so
// changed gets a short hash of the original appended, so that two titles
// never share a folder.
func safeAE(ae string) string {
	b := []byte(ae)
	changed := false
	for i, c := range b {
		keep := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || (c == '.' && i > 0)
		if !keep {
			b[i], changed = '_', true
		}
	}
	if len(b) == 0 || changed {
		sum := sha256.Sum256([]byte(ae))
		return string(b) + "-" + hex.EncodeToString(sum[:4])
	}
	return string(b)
}
