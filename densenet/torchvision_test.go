package densenet

import (
	"encoding/json"
	"fmt"
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

// TestLoadTorchvision: a torchvision DenseNet state dict saved by PyTorch, as safetensors and as a
// .pth with the legacy names of torchvision's published files
// (testdata/gen_torchvision_safetensors.py: 64 initial features, blocks (2, 2), growth 8, 2
// classes, random weights and batch-norm statistics) loads into this package's DenseNet, which then
// gives torchvision's logits; every model variable comes from the file.
func TestLoadTorchvision(t *testing.T) {
	raw, err := os.ReadFile("testdata/torchvision_small.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx struct {
		Blocks     []int     `json:"blocks"`
		Growth     int       `json:"growth"`
		Classes    int       `json:"classes"`
		InputShape []int     `json:"input_shape"`
		EvalLogits []float64 `json:"eval_logits"`
	}
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"torchvision_small.safetensors", "torchvision_small_legacy.pth"} {
		t.Run(file, func(t *testing.T) {
			checkTorchvisionLogits(t, "testdata/"+file, fx.Blocks, fx.Growth, fx.Classes, fx.InputShape, fx.EvalLogits)
		})
	}
}

func checkTorchvisionLogits(t *testing.T, file string, blocks []int, growth, classes int, inputShape []int, want []float64) {
	store := model.NewStore()
	if err := LoadTorchvision(store, "densenet", file); err != nil {
		t.Fatal(err)
	}
	loaded := store.NumVariables()
	n := inputShape[0] * inputShape[1] * inputShape[2] * inputShape[3]
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(0.5 + 0.5*math.Sin(0.37*float64(i)))
	}
	y, err := model.CallOnce(testBackend(t), store, func(scope *model.Scope, x *Node) *Node {
		return New(scope, x).Blocks(blocks...).Growth(growth).Classes(classes).Name("densenet").Done()
	}, tensors.FromFlatDataAndDimensions(x, inputShape...))
	if err != nil {
		t.Fatal(err)
	}
	if store.NumVariables() != loaded {
		t.Errorf("the model has %d variables, the file gave %d: some were initialised instead of loaded", store.NumVariables(), loaded)
	}
	got := tensors.MustCopyFlatData[float32](y)
	tol := 1e-4
	if backendtest.TF32(testBackend(t)) {
		tol = 2e-3 // TF32 rounds each product's inputs to 10 bits: 3e-4 measured on an H100
	}
	for i, w := range want {
		if d := math.Abs(float64(got[i]) - w); d > tol || math.IsNaN(d) {
			t.Fatalf("logits %v, torchvision %v (|diff| %.2g at %d)", got, want, d, i)
		}
	}
	t.Logf("logits %v vs torchvision %v", got, want)
}

// TestLoadTorchvisionErrors: what is not a torchvision DenseNet file is refused, naming the problem.
func TestLoadTorchvisionErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.safetensors")
	if err := os.WriteFile(junk, []byte("not a safetensors file at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := LoadTorchvision(model.NewStore(), "densenet", junk); err == nil || !strings.Contains(err.Error(), "not a safetensors file") {
		t.Errorf("junk file: %v", err)
	}
	junkPth := filepath.Join(dir, "junk.pth")
	if err := os.WriteFile(junkPth, []byte("not a pickle"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := LoadTorchvision(model.NewStore(), "densenet", junkPth); err == nil || !strings.Contains(err.Error(), "not a PyTorch file") {
		t.Errorf("junk .pth: %v", err)
	}
	if err := LoadTorchvision(model.NewStore(), "densenet", filepath.Join(dir, "weights.h5")); err == nil || !strings.Contains(err.Error(), "want a .pth") {
		t.Errorf(".h5: %v", err)
	}
	if err := LoadTorchvision(model.NewStore(), "densenet", filepath.Join(dir, "missing.safetensors")); err == nil {
		t.Error("missing file: no error")
	}
	// A model of another shape than the file's: the error names the tensor.
	store := model.NewStore()
	store.Scope("/densenet/conv1_conv").VariableWithShape("kernel", shapes.Make(dtypes.Float32, 7, 7, 3, 32))
	if err := LoadTorchvision(store, "densenet", "testdata/torchvision_small.safetensors"); err == nil ||
		!strings.Contains(err.Error(), "features.conv0.weight") {
		t.Errorf("shape mismatch: %v", err)
	}
}

// TestLoadTorchvisionBackbone: without its classifier, a pretrained file fits a model with other
// classes: the features come from the file, the new classifier is initialised.
func TestLoadTorchvisionBackbone(t *testing.T) {
	store := model.NewStore()
	store.SetParam(model.ParamInitialSeed, int64(3))
	if err := LoadTorchvisionBackbone(store, "densenet", "testdata/torchvision_small_legacy.pth"); err != nil {
		t.Fatal(err)
	}
	if store.GetVariable("/densenet/predictions/kernel") != nil {
		t.Fatal("the classifier was loaded")
	}
	want := tensors.MustCopyFlatData[float32](store.GetVariable("/densenet/conv1_conv/kernel").MustValue())
	x := tensors.FromShape(shapes.Make(dtypes.Float32, 1, 48, 48, 3))
	y, err := model.CallOnce(testBackend(t), store, func(scope *model.Scope, x *Node) *Node {
		return New(scope, x).Blocks(2, 2).Growth(8).Classes(5).Name("densenet").Done()
	}, x)
	if err != nil {
		t.Fatal(err)
	}
	if d := y.Shape().Dimensions; d[1] != 5 {
		t.Errorf("logits %v, want 5 classes", d)
	}
	if k := store.GetVariable("/densenet/predictions/kernel"); k == nil || k.Shape().Dimensions[1] != 5 {
		t.Errorf("new classifier: %v", k)
	}
	got := tensors.MustCopyFlatData[float32](store.GetVariable("/densenet/conv1_conv/kernel").MustValue())
	if fmt.Sprint(got[:5]) != fmt.Sprint(want[:5]) {
		t.Errorf("the stem kernel changed when the model was built: %v, loaded %v", got[:5], want[:5])
	}
}
