package datasets

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/learnresize/learnresize/resample"
)

// referenceResize applies the dense formula of resample.Taps in float64:
// out[o][p] = sum_ky sum_kx Wy[o][ky] * Wx[p][kx] * x[clampY][clampX].
func referenceResize(t *testing.T, method resample.Method, src []uint8, h, w, c, H, W int) []float64 {
	t.Helper()
	ay, err := resample.NewTaps(method, h, H)
	if err != nil {
		t.Fatal(err)
	}
	ax, err := resample.NewTaps(method, w, W)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, H*W*c)
	for o := range H {
		for p := range W {
			for ch := range c {
				var acc float64
				for ky, wy := range ay.Weights[o] {
					sy := min(max(ay.Start[o]+ky, 0), h-1)
					for kx, wx := range ax.Weights[p] {
						sx := min(max(ax.Start[p]+kx, 0), w-1)
						acc += wy * wx * float64(src[(sy*w+sx)*c+ch])
					}
				}
				out[(o*W+p)*c+ch] = acc
			}
		}
	}
	return out
}

func TestHostResizerMatchesTaps(t *testing.T) {
	methods := []resample.Method{resample.Bilinear, resample.Nearest, resample.Area, resample.Bicubic}
	shapes := []struct{ h, w, c, H, W int }{
		{7, 9, 3, 3, 4},    // down
		{5, 6, 3, 11, 13},  // up
		{12, 18, 1, 8, 12}, // 2/3, one channel
		{4, 4, 3, 4, 4},    // identity
		{1, 5, 3, 3, 2},    // one row
		{10, 7, 4, 25, 21}, // four channels
		{30, 20, 3, 15, 10},
	}
	for _, method := range methods {
		for _, s := range shapes {
			src := make([]uint8, s.h*s.w*s.c)
			for i := range src {
				src[i] = uint8((i*97 + 13) % 256)
			}
			rz, err := NewHostResizer(method, s.H, s.W)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]uint8, s.H*s.W*s.c)
			if err := rz.Resize(got, src, s.h, s.w, s.c); err != nil {
				t.Fatal(err)
			}
			want := referenceResize(t, method, src, s.h, s.w, s.c, s.H, s.W)
			for i := range got {
				clamped := math.Min(math.Max(want[i], 0), 255)
				if math.Abs(float64(got[i])-clamped) > 0.5+1e-3 {
					t.Fatalf("%s %v: element %d = %d, reference %.4f (more than 0.5 away)", method, s, i, got[i], want[i])
				}
			}
		}
	}
}

// TestHostResizerBilinearGolden compares with PyTorch's F.interpolate(bilinear, align_corners=False),
// which equals tf.image.resize's bilinear, on the resizer package's golden cases: the inputs are in
// [0, 1), so we quantise 255*x to uint8; the result may then differ from 255*golden by the input
// quantisation (at most 0.5, bilinear being a convex combination) plus our output rounding (0.5).
func TestHostResizerBilinearGolden(t *testing.T) {
	path := filepath.Join("..", "resizer", "testdata", "bilinear_golden.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("committed golden file missing (regenerate it with resizer/testdata/gen_bilinear.py): %v", err)
	}
	var golden struct {
		Cases []struct {
			InputShape  []int     `json:"input_shape"`
			OutputShape []int     `json:"output_shape"`
			Input       []float64 `json:"input"`
			Output      []float64 `json:"output"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(data, &golden); err != nil {
		t.Fatal(err)
	}
	if len(golden.Cases) == 0 {
		t.Fatal("no golden cases")
	}
	for _, gc := range golden.Cases {
		n, h, w, c := gc.InputShape[0], gc.InputShape[1], gc.InputShape[2], gc.InputShape[3]
		H, W := gc.OutputShape[1], gc.OutputShape[2]
		rz, err := NewHostResizer(resample.Bilinear, H, W)
		if err != nil {
			t.Fatal(err)
		}
		for b := range n {
			src := make([]uint8, h*w*c)
			for i := range src {
				src[i] = uint8(math.Round(255 * gc.Input[b*h*w*c+i]))
			}
			got := make([]uint8, H*W*c)
			if err := rz.Resize(got, src, h, w, c); err != nil {
				t.Fatal(err)
			}
			for i := range got {
				want := 255 * gc.Output[b*H*W*c+i]
				if math.Abs(float64(got[i])-want) > 1+1e-3 {
					t.Fatalf("case %v->%v, batch %d, element %d: got %d, golden %.3f", gc.InputShape, gc.OutputShape, b, i, got[i], want)
				}
			}
		}
	}
}

func TestHostResizerErrors(t *testing.T) {
	if _, err := NewHostResizer(resample.Bilinear, 0, 5); err == nil {
		t.Error("NewHostResizer(0x5): no error")
	}
	if _, err := NewHostResizer(resample.Method(42), 5, 5); err == nil {
		t.Error("NewHostResizer(unknown method): no error")
	}
	rz, _ := NewHostResizer(resample.Bilinear, 2, 2)
	if err := rz.Resize(make([]uint8, 12), make([]uint8, 10), 2, 2, 3); err == nil {
		t.Error("Resize with a short source: no error")
	}
	if err := rz.Resize(make([]uint8, 11), make([]uint8, 12), 2, 2, 3); err == nil {
		t.Error("Resize with a short destination: no error")
	}
}
