package web

import (
	"bytes"
	"container/list"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/dicomio"
)

// film serves an instance's film as a PNG at screen resolution, rendered
// from its file through the display pipeline the detector sees, and
// cached: the first request decodes, the next ones are a copy.
func (s *Server) film(w http.ResponseWriter, r *http.Request) {
	f, ok, err := s.db.InstanceFilesOf(r.Context(), r.PathValue("uid"))
	if err != nil {
		s.fail(w, r, "film", err)
		return
	}
	if !ok {
		http.Error(w, "no such instance", http.StatusNotFound)
		return
	}
	fi, err := os.Stat(f.Path)
	if err != nil {
		http.Error(w, "the film's file is no longer where it was recorded", http.StatusNotFound)
		return
	}
	key := fmt.Sprintf("%s|%s|%d|%d", f.InstanceID, f.Path, fi.Size(), fi.ModTime().UnixNano())
	b, err := s.films.get(key, func() ([]byte, error) { return RenderFilm(f.Path, s.opt.FilmSide) })
	if err != nil {
		s.log.Warn("film", slog.String("instance", f.InstanceID), slog.Any("error", err))
		http.Error(w, "the film cannot be rendered", http.StatusUnprocessableEntity)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "private, max-age=3600")
	w.Write(b)
}

// RenderFilm decodes a file's first frame through the display pipeline and
// encodes it as an 8-bit grey PNG whose longest side is at most side.
func RenderFilm(path string, side int) ([]byte, error) {
	_, img, err := dicomio.Load(path, dicomio.Options{NoFollow: true})
	if err != nil {
		return nil, err
	}
	return encodeFilm(img, side)
}

func encodeFilm(img sentinel.Image, side int) ([]byte, error) {
	w, h := img.Width, img.Height
	if w < 1 || h < 1 {
		return nil, errors.New("web: empty image")
	}
	if w > side || h > side {
		if w >= h {
			w, h = side, max(1, h*side/img.Width)
		} else {
			w, h = max(1, w*side/img.Height), side
		}
		img = dicomio.Resample(img, w, h)
	}
	g := image.NewGray(image.Rect(0, 0, w, h))
	for i, v := range img.Pix[:w*h] {
		g.Pix[i] = uint8(min(max(v, 0), 1)*255 + 0.5)
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, g); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// heatmap serves the heatmap PNG beside an instance's latest report. The
// path comes from the database, never from the request.
func (s *Server) heatmap(w http.ResponseWriter, r *http.Request) {
	f, ok, err := s.db.InstanceFilesOf(r.Context(), r.PathValue("uid"))
	if err != nil {
		s.fail(w, r, "heatmap", err)
		return
	}
	if !ok || f.Heatmap == "" {
		http.Error(w, "no heatmap for that instance", http.StatusNotFound)
		return
	}
	b, err := os.ReadFile(f.Heatmap)
	if errors.Is(err, fs.ErrNotExist) {
		http.Error(w, "heatmap file missing", http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, "heatmap file unreadable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "private, max-age=3600")
	w.Write(b)
}

// filmCache keeps rendered films up to a number of bytes, dropping the
// least recently used; a film asked for while it renders is rendered once.
type filmCache struct {
	mu      sync.Mutex
	limit   int
	size    int
	order   *list.List // of *filmEntry, most recent first
	entries map[string]*list.Element
	flight  map[string]*filmFlight
}

type filmEntry struct {
	key string
	b   []byte
}

type filmFlight struct {
	done chan struct{}
	b    []byte
	err  error
}

func newFilmCache(limit int) *filmCache {
	return &filmCache{limit: limit, order: list.New(), entries: map[string]*list.Element{}, flight: map[string]*filmFlight{}}
}

func (c *filmCache) get(key string, render func() ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	if e, ok := c.entries[key]; ok {
		c.order.MoveToFront(e)
		b := e.Value.(*filmEntry).b
		c.mu.Unlock()
		return b, nil
	}
	if f, ok := c.flight[key]; ok {
		c.mu.Unlock()
		<-f.done
		return f.b, f.err
	}
	f := &filmFlight{done: make(chan struct{})}
	c.flight[key] = f
	c.mu.Unlock()

	f.b, f.err = render()
	close(f.done)

	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.flight, key)
	if f.err == nil && len(f.b) <= c.limit {
		c.entries[key] = c.order.PushFront(&filmEntry{key, f.b})
		c.size += len(f.b)
		for c.size > c.limit {
			last := c.order.Back()
			e := last.Value.(*filmEntry)
			c.order.Remove(last)
			delete(c.entries, e.key)
			c.size -= len(e.b)
		}
	}
	return f.b, f.err
}

// tagStudyDate is (0008,0020) Study Date.
const tagStudyDate = 0x00080020

// dateCache remembers the Study Date read from a study's first file, which
// the database does not keep; at most n entries, forgotten all at once
// when full.
type dateCache struct {
	mu sync.Mutex
	n  int
	m  map[string]string
}

func newDateCache(n int) *dateCache { return &dateCache{n: n, m: map[string]string{}} }

// studyDate returns the Study Date of the file at path as YYYY-MM-DD, or
// "" when it has none or cannot be read.
func (c *dateCache) studyDate(path string) string {
	if path == "" {
		return ""
	}
	c.mu.Lock()
	d, ok := c.m[path]
	c.mu.Unlock()
	if ok {
		return d
	}
	vals, err := dicomio.ReadTextAttributes(path, []uint32{tagStudyDate})
	if err == nil {
		d = formatDA(vals[tagStudyDate])
	}
	c.mu.Lock()
	if len(c.m) >= c.n {
		clear(c.m)
	}
	c.m[path] = d
	c.mu.Unlock()
	return d
}

// formatDA turns a DICOM date (YYYYMMDD) into YYYY-MM-DD, or "" when it is
// not one.
func formatDA(s string) string {
	if len(s) != 8 {
		return ""
	}
	if _, err := strconv.Atoi(s); err != nil {
		return ""
	}
	return s[:4] + "-" + s[4:6] + "-" + s[6:]
}
