package resnet

import (
	"strings"
	"testing"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/ml/model"

	"github.com/learnresize/learnresize/backend"
	"github.com/learnresize/learnresize/summary"
)

func testBackend(t testing.TB) compute.Backend {
	b, _, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// buildOnly builds (compiles, does not run) a ResNet on a [1, size, size, 3] input and returns the
// store and recorded layers. The variables are the same on every backend, so it builds on the
// pure-Go backend, whose compilation is immediate (XLA's takes tens of seconds for a network this
// deep).
func buildOnly(t *testing.T, size int, configure func(*Builder) *Builder) (*model.Store, *summary.Recorder) {
	t.Helper()
	gob, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gob.Finalize)
	store := model.NewStore()
	rec := &summary.Recorder{}
	exec, err := model.NewExec(gob, store, func(scope *model.Scope, x *Node) *Node {
		return configure(New(scope, x).Record(rec)).Done()
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := exec.Compile(shapes.Make(dtypes.Float32, 1, size, size, 3)); err != nil {
		t.Fatal(err)
	}
	t.Logf("compiled in %s", time.Since(start))
	return store, rec
}

// TestParameterCounts: the counts of keras.applications.ResNet50/101/152 (model.summary(): total,
// trainable, and non-trainable = the batch norms' moving means and variances), and for the
// Torchvision variant torchvision's (sum of p.numel() over parameters(): the trainable count here;
// its running statistics are buffers, counted here as non-trainable, 53,120 for ResNet-50 as in
// Keras). Keras' convolutions have biases, torchvision's do not: 26,560 of them in ResNet-50.
func TestParameterCounts(t *testing.T) {
	cases := []struct {
		preset                         string
		variant                        Variant
		classes                        int
		top                            bool
		total, trainable, nonTrainable int
	}{
		{"resnet50", Keras, 1000, true, 25636712, 25583592, 53120},
		// 2 classes: the 1000-class count less 2048*998 kernel weights and 998 biases.
		{"resnet50", Keras, 2, true, 23591810, 23538690, 53120},
		{"resnet50", Keras, 0, false, 23587712, 23534592, 53120}, // include_top=False
		{"resnet101", Keras, 1000, true, 44707176, 44601832, 105344},
		{"resnet152", Keras, 1000, true, 60419944, 60268520, 151424},
		{"resnet50", Torchvision, 1000, true, 25610152, 25557032, 53120},
		{"resnet101", Torchvision, 1000, true, 44654504, 44549160, 105344},
		{"resnet152", Torchvision, 1000, true, 60344232, 60192808, 151424},
	}
	for _, c := range cases {
		store, rec := buildOnly(t, 32, func(b *Builder) *Builder {
			return b.Preset(c.preset).Variant(c.variant).Classes(c.classes).IncludeTop(c.top).Pooling(PoolingNone)
		})
		s := summary.Build(c.preset, rec, store, "/"+c.preset)
		if s.Total != c.total || s.Trainable != c.trainable || s.NonTrainable != c.nonTrainable {
			t.Errorf("%s %s, %d classes, top %v: %s parameters (%s trainable, %s not), want %s (%s, %s)",
				c.preset, c.variant, c.classes, c.top, summary.Commas(s.Total), summary.Commas(s.Trainable), summary.Commas(s.NonTrainable),
				summary.Commas(c.total), summary.Commas(c.trainable), summary.Commas(c.nonTrainable))
		}
		if c.preset == "resnet50" && c.variant == Keras && c.classes == 2 {
			text := s.String()
			for _, layer := range []string{"conv1_pad (ZeroPadding2D)", "pool1_pool (MaxPooling2D)", "conv2_block1_0_conv (Conv2D)",
				"conv5_block3_3_bn (BatchNormalization)", "conv5_block3_add (Add)", "conv5_block3_out (Activation)", "predictions (Dense)"} {
				if !strings.Contains(text, layer) {
					t.Errorf("summary lacks Keras layer %q:\n%s", layer, text)
				}
			}
			// Per layer, as Keras' summary: conv2_block1_1_conv is 64*64 + 64 bias, conv1_bn 4*64.
			for _, r := range s.Rows {
				want := map[string]int{"conv1_conv": 7*7*3*64 + 64, "conv1_bn": 256, "conv2_block1_1_conv": 4160, "conv2_block1_0_conv": 64*256 + 256, "predictions": 2048*2 + 2}[r.Name]
				if want != 0 && r.Params != want {
					t.Errorf("%s: %d parameters, want %d", r.Name, r.Params, want)
				}
			}
		}
	}
}
