package platform

import (
	"testing"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend"
)

// TestDecisions: each Kind's choices, as the layers, the resizer and training rely on them.
func TestDecisions(t *testing.T) {
	for _, c := range []struct {
		config                                          string
		kind                                            Kind
		stridedGrads, native, nativeConv, dense, memory bool
	}{
		{"go", Go, true, false, false, false, true},
		{"go:ops_sequential", Go, true, false, false, false, true},
		{"onnx:cpu,/lib/libonnxruntime.so,mem_pattern=false", ONNX, false, false, false, false, true},
		{"xla:cpu", XLACPU, true, true, true, true, false},
		{"xla:cuda", XLAGPU, true, true, true, true, false},
		{"xla:/opt/pjrt_c_api_cuda_plugin.so", XLAGPU, true, true, true, true, false},
		{"tpu", Other, false, false, false, false, false},
	} {
		k := OfConfig(c.config)
		if k != c.kind || k.RunsStridedGradients() != c.stridedGrads || k.NativeStrided() != c.native ||
			k.NativeConvolution() != c.nativeConv || k.DenseResize() != c.dense || k.MemoryEstimated() != c.memory {
			t.Errorf("%q: %v (strided gradients %v, native strided %v, native conv %v, dense resize %v, memory %v); want %v",
				c.config, k, k.RunsStridedGradients(), k.NativeStrided(), k.NativeConvolution(), k.DenseResize(), k.MemoryEstimated(), c.kind)
		}
	}
}

// TestOfRunningBackend: a started pure-Go backend is Go (compute v0.1.14 names it "Go Backend").
func TestOfRunningBackend(t *testing.T) {
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	if k := Of(b); k != Go {
		t.Errorf("Of(%q backend) = %v, want go", b.Name(), k)
	}
}
