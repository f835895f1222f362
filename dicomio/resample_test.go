package dicomio

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sentinel-pacs/sentinel"
)

// imageOf builds a w×h image from values.
func imageOf(w, h int, vals ...float32) sentinel.Image {
	return sentinel.Image{Width: w, Height: h, Pix: vals}
}

// randomImage returns a w×h image of uniform values in [0, 1).
func randomImage(w, h int, seed uint64) sentinel.Image {
	rng := rand.New(rand.NewPCG(seed, 7))
	img := sentinel.NewImage(w, h)
	for i := range img.Pix {
		img.Pix[i] = rng.Float32()
	}
	return img
}

func mean(img sentinel.Image) float64 {
	var s float64
	for _, v := range img.Pix {
		s += float64(v)
	}
	return s / float64(len(img.Pix))
}

// TestResampleValues checks exact results on small images.
func TestResampleValues(t *testing.T) {
	tests := []struct {
		name string
		in   sentinel.Image
		w, h int
		want []float32
	}{
		{
			name: "4x4 to 2x2 gives block means",
			in: imageOf(4, 4,
				0, 2, 4, 4,
				2, 4, 4, 4,
				1, 1, 0, 0,
				1, 1, 0, 8),
			w: 2, h: 2,
			want: []float32{2, 4, 1, 2},
		},
		{
			name: "3x1 to 2x1: the middle pixel is shared half and half",
			in:   imageOf(3, 1, 0, 3, 6),
			w:    2, h: 1,
			want: []float32{1, 5}, // (0*1 + 3*0.5)/1.5, (3*0.5 + 6*1)/1.5
		},
		{
			name: "2x1 to 4x1 repeats each pixel",
			in:   imageOf(2, 1, 1, 3),
			w:    4, h: 1,
			want: []float32{1, 1, 3, 3},
		},
		{
			name: "2x1 to 3x1: the middle output straddles both inputs",
			in:   imageOf(2, 1, 0, 6),
			w:    3, h: 1,
			want: []float32{0, 3, 6},
		},
		{
			name: "same size is a copy",
			in:   imageOf(2, 2, 0.1, 0.2, 0.3, 0.4),
			w:    2, h: 2,
			want: []float32{0.1, 0.2, 0.3, 0.4},
		},
		{
			name: "empty input gives black",
			in:   sentinel.Image{},
			w:    2, h: 1,
			want: []float32{0, 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Resample(tt.in, tt.w, tt.h)
			if got.Width != tt.w || got.Height != tt.h {
				t.Fatalf("size %dx%d, want %dx%d", got.Width, got.Height, tt.w, tt.h)
			}
			for i := range tt.want {
				if math.Abs(float64(got.Pix[i]-tt.want[i])) > 1e-6 {
					t.Errorf("pixel %d = %v, want %v (all %v)", i, got.Pix[i], tt.want[i], got.Pix)
					break
				}
			}
		})
	}
	if got := Resample(imageOf(1, 1, 1), 0, 5); got.Pix != nil || got.Width != 0 {
		t.Errorf("zero width gave %+v", got)
	}
}

// TestResampleInvariants checks, over many ratios, that a constant image
// stays exactly constant and that the mean is preserved.
func TestResampleInvariants(t *testing.T) {
	sizes := [][4]int{
		{4, 4, 2, 2}, {7, 5, 3, 4}, {5, 7, 11, 13}, {1024, 1024, 256, 256}, {100, 37, 33, 100},
		{3, 3, 7, 2}, {2140, 1760, 256, 256}, {1, 1, 5, 5}, {13, 1, 1, 1},
	}
	for _, s := range sizes {
		in := randomImage(s[0], s[1], uint64(s[0]*s[1]))
		out := Resample(in, s[2], s[3])
		if d := math.Abs(mean(out) - mean(in)); d > 1e-6 {
			t.Errorf("%dx%d to %dx%d: mean %v, input %v", s[0], s[1], s[2], s[3], mean(out), mean(in))
		}
		for _, c := range []float32{0, 0.3, 1} {
			flat := sentinel.NewImage(s[0], s[1])
			for i := range flat.Pix {
				flat.Pix[i] = c
			}
			for i, v := range Resample(flat, s[2], s[3]).Pix {
				if v != c {
					t.Fatalf("%dx%d to %dx%d: constant %v became %v at %d", s[0], s[1], s[2], s[3], c, v, i)
				}
			}
		}
	}
}

func BenchmarkResample1024To256(b *testing.B) {
	in := randomImage(1024, 1024, 1)
	for b.Loop() {
		Resample(in, 256, 256)
	}
}

// BenchmarkResample1024To64 is a chest film brought to the default
// model's input size.
func BenchmarkResample1024To64(b *testing.B) {
	in := randomImage(1024, 1024, 1)
	for b.Loop() {
		Resample(in, 64, 64)
	}
}

// TestResampleRowMatchesPlainLoop checks resampleRow, which sums four
// outputs side by side, against one sum at a time in span order, exactly,
// for ratios up and down where the spans are and are not all as long.
func TestResampleRowMatchesPlainLoop(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	for _, c := range [][2]int{{1024, 64}, {1024, 256}, {1000, 64}, {2140, 256}, {17, 5}, {64, 1024}, {5, 17}, {300, 7}, {7, 3}, {3, 3}} {
		in, out := c[0], c[1]
		row := make([]float32, in)
		for i := range row {
			row[i] = rng.Float32() * float32(rng.IntN(4096))
		}
		xs := areaSpans(in, out)
		got := make([]float64, out)
		resampleRow(got, row, xs)
		for o, s := range xs {
			var want float64
			for k, c := range s.overlaps {
				want += float64(c) * float64(row[s.first+k])
			}
			if got[o] != want {
				t.Fatalf("%d -> %d, output %d: %v, want %v", in, out, o, got[o], want)
			}
		}
	}
}
