// Package resample holds tf.image.resize's 1-D resampling weights (antialias=False, half-pixel
// centres) for its four methods: what the resizer's graph op (package resizer) and the dataset
// pipeline's host-side resize (package datasets) both apply, so that the two resize exactly alike.
// It is pure Go, with no GoMLX dependency, so the data pipeline need not import a graph package.
package resample

import (
	"fmt"
	"math"
	"strings"
)

// Method is an interpolation method of tf.image.resize (antialias=False, half-pixel centers).
type Method int

const (
	// Bilinear is tf.image.resize(method="bilinear"): ResizeBilinear with half_pixel_centers=True.
	// It also equals PyTorch's F.interpolate(mode="bilinear", align_corners=False, antialias=False).
	Bilinear Method = iota
	// Bicubic is tf.image.resize(method="bicubic"): Keys' cubic kernel with a = -0.5 (PyTorch uses
	// -0.75), weights quantised to 1/1024 of a pixel as TensorFlow's table does, taps outside the image
	// dropped and the remaining weights renormalised.
	Bicubic
	// Nearest is tf.image.resize(method="nearest"): source index floor((dst+0.5)*in/out), clamped.
	Nearest
	// Area is tf.image.resize(method="area"): ResizeArea, the average of the source cells each output
	// cell covers, weighted by the covered fraction.
	Area
)

var methodNames = []string{"bilinear", "bicubic", "nearest", "area"}

// String returns the tf.image.resize name of the method.
func (m Method) String() string {
	if m < 0 || int(m) >= len(methodNames) {
		return fmt.Sprintf("Method(%d)", int(m))
	}
	return methodNames[m]
}

// ParseMethod accepts the tf.image.resize names ("bilinear", "bicubic", "nearest", "area").
func ParseMethod(s string) (Method, error) {
	for i, n := range methodNames {
		if strings.EqualFold(s, n) {
			return Method(i), nil
		}
	}
	return 0, fmt.Errorf("unknown interpolation method %q: want one of %s", s, strings.Join(methodNames, ", "))
}

// Taps describes a 1-D resampling of an axis of size in to size out: output o is
// sum_k weights[o][k] * x[clamp(start[o]+k)], where clamp keeps indices inside [0, in-1]. The
// indices start[o]+k are "virtual": outside the axis they read the edge value, which is how
// TensorFlow bounds indices for bilinear and area; bicubic gives such taps zero weight.
type Taps struct {
	In, Out int
	K       int // taps per output (the widest; shorter rows are padded with zero weights).
	Start   []int
	Weights [][]float64
}

// NewTaps computes TensorFlow's resampling weights for one axis. Positions are computed in
// float32, as TensorFlow's kernels do, so that floor/ceil land on the same source pixels.
// (One piece: one switch over the four methods' kernels, each a few lines that mirror TensorFlow's.)
func NewTaps(method Method, in, out int) (*Taps, error) {
	if in <= 0 || out <= 0 {
		return nil, fmt.Errorf("resize of an axis from %d to %d: sizes must be positive", in, out)
	}
	t := &Taps{In: in, Out: out, Start: make([]int, out), Weights: make([][]float64, out)}
	scale := float32(in) / float32(out)
	switch method {
	case Bilinear:
		t.K = 2
		for o := range out {
			pos := (float32(o)+0.5)*scale - 0.5
			f := float32(math.Floor(float64(pos)))
			lerp := pos - f
			t.Start[o] = int(f)
			t.Weights[o] = []float64{float64(1 - lerp), float64(lerp)}
		}
	case Nearest:
		t.K = 1
		for o := range out {
			idx := int(math.Floor(float64((float32(o) + 0.5) * scale)))
			t.Start[o] = min(max(idx, 0), in-1)
			t.Weights[o] = []float64{1}
		}
	case Bicubic:
		t.K = 4
		table := keysTable()
		for o := range out {
			pos := (float32(o)+0.5)*scale - 0.5
			base := int(math.Floor(float64(pos)))
			delta := pos - float32(base)
			off := int(math.RoundToEven(float64(delta * keysTableSize)))
			w := []float32{table[off*2+1], table[off*2], table[(keysTableSize-off)*2], table[(keysTableSize-off)*2+1]}
			var sum float32
			for j := range w {
				if idx := base - 1 + j; idx < 0 || idx >= in {
					w[j] = 0
				}
				sum += w[j]
			}
			if math.Abs(float64(sum)) >= 1000*math.SmallestNonzeroFloat32 {
				inv := 1 / sum
				for j := range w {
					w[j] *= inv
				}
			}
			t.Start[o] = base - 1
			t.Weights[o] = []float64{float64(w[0]), float64(w[1]), float64(w[2]), float64(w[3])}
		}
	case Area:
		for o := range out {
			lo := float32(o) * scale
			hi := float32(o+1) * scale
			first := int(math.Floor(float64(lo)))
			end := int(math.Ceil(float64(hi)))
			var ws []float64
			for i := first; i < end; i++ {
				fi := float32(i)
				var cover float32
				if fi < lo {
					if fi+1 > hi {
						cover = scale
					} else {
						cover = fi + 1 - lo
					}
				} else if fi+1 > hi {
					cover = hi - fi
				} else {
					cover = 1
				}
				ws = append(ws, float64(cover)/float64(scale))
			}
			t.Start[o] = first
			t.Weights[o] = ws
			t.K = max(t.K, len(ws))
		}
		for o := range out {
			for len(t.Weights[o]) < t.K {
				t.Weights[o] = append(t.Weights[o], 0)
			}
		}
	default:
		return nil, fmt.Errorf("unknown interpolation method %d", int(method))
	}
	return t, nil
}

// Identity reports whether the resampling leaves the axis unchanged (in == out gives the identity
// for every method, which lets Resize skip the axis).
func (t *Taps) Identity() bool {
	if t.In != t.Out {
		return false
	}
	m := t.Matrix()
	for o := range t.Out {
		for i := range t.In {
			want := 0.0
			if i == o {
				want = 1
			}
			if m[o*t.In+i] != want {
				return false
			}
		}
	}
	return true
}

// Matrix returns the dense [out, in] interpolation matrix, row-major.
func (t *Taps) Matrix() []float64 {
	m := make([]float64, t.Out*t.In)
	for o := range t.Out {
		for j, w := range t.Weights[o] {
			idx := min(max(t.Start[o]+j, 0), t.In-1)
			m[o*t.In+idx] += w
		}
	}
	return m
}

const keysTableSize = 1024

// keysTable is TensorFlow's bicubic coefficient table for Keys' kernel with a = -0.5: entry 2i
// holds the kernel at distance i/1024 and entry 2i+1 at distance 1 + i/1024, as float32.
func keysTable() []float32 {
	const a = -0.5
	table := make([]float32, (keysTableSize+1)*2)
	for i := 0; i <= keysTableSize; i++ {
		x := float32(float64(i) / keysTableSize)
		xd := float64(x)
		table[i*2] = float32(((a+2)*xd-(a+3))*xd*xd + 1)
		x += 1
		xd = float64(x)
		table[i*2+1] = float32(((a*xd-5*a)*xd+8*a)*xd - 4*a)
	}
	return table
}

// MarshalText writes the method's name (so configurations read "bilinear" in JSON).
func (m Method) MarshalText() ([]byte, error) {
	if m < Bilinear || m > Area {
		return nil, fmt.Errorf("unknown interpolation method %d", int(m))
	}
	return []byte(m.String()), nil
}

// UnmarshalText parses a method name (see ParseMethod).
func (m *Method) UnmarshalText(b []byte) error {
	v, err := ParseMethod(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}
