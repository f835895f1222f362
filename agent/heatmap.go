package agent

import (
	"fmt"
	"image"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/detector"
	"github.com/sentinel-pacs/sentinel/dicomio"
	"github.com/sentinel-pacs/sentinel/dicomout"
)

// overlayMax is the longest side of the heatmap picture.
const overlayMax = 512

// overlay draws the report's heatmap picture: the film in grey at its own
// size (shrunk to at most overlayMax pixels on its longer side, keeping
// its aspect), with the score's heatmap derived for drawing
// (detector.FocusHeatmap: smooth, masked to the body, above the film's own
// floor), resampled smoothly to the picture's size and coloured on the
// scale anchored at the decision threshold (dicomout.HeatLevels): a film
// scored at or below the threshold shows no red. The legend, the same as
// the Secondary Capture's, is drawn in a strip to the right of the film,
// and the score against the threshold at the film's bottom left. The mask
// is computed from the shrunk film, which costs a few milliseconds.
//
// A heatmap whose pixels do not match its size (which the detector never
// gives) leaves the film alone with its legend; such a film (which the
// decoder never gives) is drawn as a black picture of its size. Neither
// fails the report.
func overlay(img, heat sentinel.Image, score, threshold float64) *image.RGBA {
	w, h := img.Width, img.Height
	if w > overlayMax || h > overlayMax {
		if w >= h {
			w, h = overlayMax, max(1, h*overlayMax/w)
		} else {
			w, h = max(1, w*overlayMax/h), overlayMax
		}
	}
	blank := image.NewRGBA(image.Rect(0, 0, w, h))
	if len(img.Pix) != img.Width*img.Height {
		return blank
	}
	film := img
	if w != img.Width || h != img.Height {
		film = dicomio.Resample(img, w, h)
	}
	levels := dicomout.HeatLevels(detector.FocusHeatmap(heat, film), score, threshold)
	if len(levels.Pix) == 0 {
		levels = sentinel.NewImage(1, 1) // no heat to draw: the film alone
	}
	caption := []string{fmt.Sprintf("score %.3g  threshold %.3g", score, threshold)}
	pic, err := dicomout.Overlay(film, levels, caption)
	if err != nil {
		return blank
	}
	return pic
}
