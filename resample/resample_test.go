package resample

import (
	"math"
	"testing"
)

// TestBilinearHalving: tf.image.resize's bilinear 4 -> 2 with half-pixel centres samples at 0.5
// and 2.5, so output o averages inputs 2o and 2o+1.
func TestBilinearHalving(t *testing.T) {
	tp, err := NewTaps(Bilinear, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	m := tp.Matrix() // [out, in]
	want := []float64{0.5, 0.5, 0, 0, 0, 0, 0.5, 0.5}
	for i := range want {
		if math.Abs(m[i]-want[i]) > 1e-7 {
			t.Fatalf("matrix %v, want %v", m, want)
		}
	}
	if tp.Identity() {
		t.Error("4 -> 2 reported as the identity")
	}
	if id, _ := NewTaps(Area, 5, 5); !id.Identity() {
		t.Error("5 -> 5 not the identity")
	}
}

// TestMethodNames: names parse back to their method, in any case; unknown names are refused.
func TestMethodNames(t *testing.T) {
	for _, m := range []Method{Bilinear, Bicubic, Nearest, Area} {
		b, err := m.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var got Method
		if err := got.UnmarshalText(b); err != nil || got != m {
			t.Errorf("%v: round trip gave %v (%v)", m, got, err)
		}
	}
	if _, err := ParseMethod("lanczos"); err == nil {
		t.Error("lanczos accepted")
	}
	if m, err := ParseMethod("BiCubic"); err != nil || m != Bicubic {
		t.Errorf("BiCubic: %v %v", m, err)
	}
}
