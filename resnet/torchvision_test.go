package resnet

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/learnresize/learnresize/internal/backendtest"
)

// fixture is testdata/torchvision_resnet_small.json (gen_torchvision_resnet.py): the configuration
// of the small torchvision ResNet in the .safetensors and .pth files, and its eval-mode logits.
type fixture struct {
	Blocks      []int     `json:"blocks"`
	Filters     int       `json:"filters"`
	StemFilters int       `json:"stem_filters"`
	Classes     int       `json:"classes"`
	InputShape  []int     `json:"input_shape"`
	EvalLogits  []float64 `json:"eval_logits"`
}

func readFixture(t *testing.T) fixture {
	t.Helper()
	raw, err := os.ReadFile("testdata/torchvision_resnet_small.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx fixture
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	return fx
}

func (fx fixture) configure(b *Builder) *Builder {
	return b.Variant(Torchvision).Blocks(fx.Blocks...).Filters(fx.Filters).StemFilters(fx.StemFilters).Classes(fx.Classes)
}

// TestLoadTorchvision: a torchvision ResNet (its own ResNet and Bottleneck classes, v1.5) state dict
// saved by PyTorch, as safetensors and as a legacy-format .pth, loads into this package's
// Torchvision variant, which then gives torchvision's eval-mode logits; every model variable comes
// from the file.
func TestLoadTorchvision(t *testing.T) {
	fx := readFixture(t)
	n := 1
	for _, d := range fx.InputShape {
		n *= d
	}
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(0.5 + 0.5*math.Sin(0.37*float64(i)))
	}
	for _, file := range []string{"torchvision_resnet_small.safetensors", "torchvision_resnet_small.pth"} {
		for _, be := range backendtest.All(t) {
			t.Run(file+"/"+be.Name, func(t *testing.T) {
				store := model.NewStore()
				if err := LoadTorchvision(store, "resnet", "testdata/"+file); err != nil {
					t.Fatal(err)
				}
				loaded := store.NumVariables()
				y, err := model.CallOnce(be.Backend, store, func(scope *model.Scope, x *Node) *Node {
					return fx.configure(New(scope, x)).Done()
				}, tensors.FromFlatDataAndDimensions(x, fx.InputShape...))
				if err != nil {
					t.Fatal(err)
				}
				if store.NumVariables() != loaded {
					t.Errorf("the model has %d variables, the file gave %d: some were initialised instead of loaded", store.NumVariables(), loaded)
				}
				got := tensors.MustCopyFlatData[float32](y)
				tol := 1e-4
				if backendtest.TF32(be.Backend) {
					tol = 2e-3 // TF32 rounds each product's inputs to 10 bits
				}
				worst := 0.0
				for i, w := range fx.EvalLogits {
					d := math.Abs(float64(got[i]) - w)
					if d > tol || math.IsNaN(d) {
						t.Fatalf("logits %v, torchvision %v (|diff| %.2g at %d)", got, fx.EvalLogits, d, i)
					}
					worst = max(worst, d)
				}
				t.Logf("logits %v vs torchvision %v, max |diff| %.2g", got, fx.EvalLogits, worst)
			})
		}
	}
}

// TestLoadTorchvisionErrors: what is not a torchvision Bottleneck ResNet file is refused, naming
// the problem.
func TestLoadTorchvisionErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	load := func(path string) error { return LoadTorchvision(model.NewStore(), "resnet", path) }
	check := func(what string, err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", what, err, want)
		} else {
			t.Logf("%s: %v", what, err)
		}
	}
	check("junk safetensors", load(write("junk.safetensors", "not a safetensors file at all")), "not a safetensors file")
	check("junk .pth", load(write("junk.pth", "not a pickle")), "not a PyTorch file")
	check(".h5", load(filepath.Join(dir, "weights.h5")), "want a .pth")
	if err := load(filepath.Join(dir, "missing.safetensors")); err == nil {
		t.Error("missing file: no error")
	}
	// Another architecture: densenet's torchvision fixture.
	check("DenseNet file", load("../densenet/testdata/torchvision_small.safetensors"), "not a torchvision ResNet name")

	// Files edited from the fixture: a tensor missing, one too many, a convolution bias, a stage
	// missing, BasicBlocks (ResNet-18/34: no conv3).
	state := readSafetensorsForTest(t, "testdata/torchvision_resnet_small.safetensors")
	edited := func(name string, edit func(map[string]rawSafetensor)) string {
		s := map[string]rawSafetensor{}
		for k, v := range state {
			s[k] = v
		}
		edit(s)
		return writeSafetensorsForTest(t, filepath.Join(dir, name), s)
	}
	check("missing tensor", load(edited("missing.safetensors", func(s map[string]rawSafetensor) {
		delete(s, "layer2.0.bn2.running_var")
	})), `no tensor "layer2.0.bn2.running_var"`)
	check("extra downsample", load(edited("extra.safetensors", func(s map[string]rawSafetensor) {
		s["layer1.1.downsample.0.weight"] = s["layer1.0.downsample.0.weight"]
	})), `"layer1.1.downsample.0.weight" is not part of`)
	check("conv bias", load(edited("bias.safetensors", func(s map[string]rawSafetensor) {
		s["layer1.0.conv1.bias"] = s["layer1.0.bn1.bias"]
	})), "no bias")
	check("stage missing", load(edited("stage.safetensors", func(s map[string]rawSafetensor) {
		for k := range s {
			if strings.HasPrefix(k, "layer2.") {
				delete(s, k)
			}
		}
	})), "no tensors of layer2")
	check("basic blocks", load(edited("basic.safetensors", func(s map[string]rawSafetensor) {
		for k := range s {
			if strings.Contains(k, "conv3") || strings.Contains(k, "bn3") {
				delete(s, k)
			}
		}
	})), "ResNet-18/34")

	// A model of another shape than the file's: the error names the tensor.
	store := model.NewStore()
	store.Scope("/resnet/conv1_conv").VariableWithShape("kernel", shapes.Make(dtypes.Float32, 7, 7, 3, 32))
	check("shape mismatch", LoadTorchvision(store, "resnet", "testdata/torchvision_resnet_small.safetensors"), `"conv1.weight"`)
	if v := store.GetVariable("/resnet/conv1_bn/gamma"); v != nil {
		t.Errorf("the failed load left %s in the store", v.Path())
	}

	// A model of other widths than the file's: building it fails, naming the variable.
	fx := readFixture(t)
	store = model.NewStore()
	if err := LoadTorchvision(store, "resnet", "testdata/torchvision_resnet_small.safetensors"); err != nil {
		t.Fatal(err)
	}
	_, err := model.CallOnce(testBackend(t), store, func(scope *model.Scope, g *Graph) *Node {
		return fx.configure(New(scope, Zeros(g, shapes.Make(dtypes.Float32, 1, 32, 32, 3)))).Filters(8).Done()
	})
	check("other widths", err, "/resnet/conv2_block1_0_conv/kernel")
}

// TestLoadTorchvisionBackbone: without its classifier, a pretrained file fits a model with other
// classes: the features come from the file, the new classifier is initialised.
func TestLoadTorchvisionBackbone(t *testing.T) {
	fx := readFixture(t)
	store := model.NewStore()
	store.SetParam(model.ParamInitialSeed, int64(3))
	if err := LoadTorchvisionBackbone(store, "resnet", "testdata/torchvision_resnet_small.pth"); err != nil {
		t.Fatal(err)
	}
	if store.GetVariable("/resnet/predictions/kernel") != nil {
		t.Fatal("the classifier was loaded")
	}
	loaded := store.NumVariables()
	want := tensors.MustCopyFlatData[float32](store.GetVariable("/resnet/conv1_conv/kernel").MustValue())
	x := tensors.FromShape(shapes.Make(dtypes.Float32, 1, 32, 32, 3))
	y, err := model.CallOnce(testBackend(t), store, func(scope *model.Scope, x *Node) *Node {
		return fx.configure(New(scope, x)).Classes(5).Done()
	}, x)
	if err != nil {
		t.Fatal(err)
	}
	if d := y.Shape().Dimensions; d[1] != 5 {
		t.Errorf("logits %v, want 5 classes", d)
	}
	if k := store.GetVariable("/resnet/predictions/kernel"); k == nil || k.Shape().Dimensions[1] != 5 {
		t.Errorf("new classifier: %v", k)
	}
	if n := store.NumVariables(); n != loaded+2 {
		t.Errorf("%d variables after the build, %d loaded: want only the classifier's kernel and bias added", n, loaded)
	}
	got := tensors.MustCopyFlatData[float32](store.GetVariable("/resnet/conv1_conv/kernel").MustValue())
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("the stem kernel changed when the model was built: [%d] %v, loaded %v", i, got[i], want[i])
		}
	}
}

// rawSafetensor is one tensor of a safetensors file, its bytes as they are.
type rawSafetensor struct {
	dtype string
	shape []int
	data  []byte
}

// readSafetensorsForTest parses a safetensors file (8-byte little-endian header length, JSON
// header of dtypes, shapes and data offsets, then the data) into its tensors.
func readSafetensorsForTest(t *testing.T, path string) map[string]rawSafetensor {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := int(binary.LittleEndian.Uint64(raw))
	var header map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+n], &header); err != nil {
		t.Fatal(err)
	}
	out := map[string]rawSafetensor{}
	for name, h := range header {
		if name == "__metadata__" {
			continue
		}
		var e struct {
			DType   string `json:"dtype"`
			Shape   []int  `json:"shape"`
			Offsets [2]int `json:"data_offsets"`
		}
		if err := json.Unmarshal(h, &e); err != nil {
			t.Fatal(err)
		}
		out[name] = rawSafetensor{e.DType, e.Shape, raw[8+n+e.Offsets[0] : 8+n+e.Offsets[1]]}
	}
	return out
}

// writeSafetensorsForTest writes tensors as a safetensors file at path and returns path.
func writeSafetensorsForTest(t *testing.T, path string, tensors map[string]rawSafetensor) string {
	t.Helper()
	header := map[string]any{}
	var data []byte
	for name, v := range tensors {
		header[name] = map[string]any{"dtype": v.dtype, "shape": v.shape, "data_offsets": []int{len(data), len(data) + len(v.data)}}
		data = append(data, v.data...)
	}
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	out = append(append(out, h...), data...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
