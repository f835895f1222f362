package main

import (
	"fmt"
	"image"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/detector"
	"github.com/sentinel-pacs/sentinel/dicomout"
)

// render draws a film as the agent draws its report's heatmap picture
// (agent/heatmap.go), at the film's size for films of up to 512 pixels.
func render(film sentinel.Image, s sentinel.Score) (*image.RGBA, error) {
	levels := dicomout.HeatLevels(detector.FocusHeatmap(s.Heatmap, film), s.Value, s.Threshold)
	caption := []string{fmt.Sprintf("score %.3g  threshold %.3g", s.Value, s.Threshold)}
	return dicomout.Overlay(film, levels, caption)
}
