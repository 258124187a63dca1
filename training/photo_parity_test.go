package training

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train"
	"github.com/nlpodyssey/safetensors"

	"github.com/learnresize/learnresize/datasets"
	"github.com/learnresize/learnresize/internal/backendtest"
	"github.com/learnresize/learnresize/resizer"
)

// photoFixture is one of testdata/photo_parity_*.safetensors (written by gen_photo_parity.py): the
// tutorial's models on real photos from Keras' initial weights, computed by PyTorch in float64 (the
// reference, "...64/...") and float32 ("...32/...", PyTorch's own rounding error).
type photoFixture struct {
	Config         fixtureConfig    `json:"config"`
	Photos         []string         `json:"photos"`
	Labels         []int            `json:"labels"`
	Seed           uint64           `json:"seed"`
	Steps          int              `json:"steps"`
	LearningRate   float64          `json:"learning_rate"`
	LabelSmoothing float64          `json:"label_smoothing"`
	Shapes         map[string][]int `json:"shapes"` // the tutorial fixture's trainable variables
	tensors        map[string][]float64
	dims           map[string][]int
	pix            []uint8 // the photos, decoded (pixels)
}

// loadPhotoFixture reads testdata/<name>. A missing fixture is a failure: it is committed.
func loadPhotoFixture(t *testing.T, name string) *photoFixture {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("the committed fixture is missing (regenerate it with testdata/gen_photo_parity.py): %v", err)
	}
	st, err := safetensors.Deserialize(raw)
	if err != nil {
		t.Fatal(err)
	}
	_, meta, err := safetensors.ReadMetadata(raw)
	if err != nil {
		t.Fatal(err)
	}
	fx := &photoFixture{tensors: map[string][]float64{}, dims: map[string][]int{}}
	if err := json.Unmarshal([]byte(meta.Metadata()["fixture"]), fx); err != nil {
		t.Fatal(err)
	}
	for _, tv := range st.Tensors() {
		data := tv.TensorView.Data()
		var v []float64
		switch tv.TensorView.DType() {
		case safetensors.F64:
			v = make([]float64, len(data)/8)
			for i := range v {
				v[i] = math.Float64frombits(binary.LittleEndian.Uint64(data[8*i:]))
			}
		case safetensors.F32:
			v = make([]float64, len(data)/4)
			for i := range v {
				v[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:])))
			}
		case safetensors.I32:
			v = make([]float64, len(data)/4)
			for i := range v {
				v[i] = float64(int32(binary.LittleEndian.Uint32(data[4*i:])))
			}
		default:
			t.Fatalf("%s: tensor %s has dtype %s", name, tv.Name, tv.TensorView.DType())
		}
		fx.tensors[tv.Name] = v
		d := make([]int, len(tv.TensorView.Shape()))
		for i, s := range tv.TensorView.Shape() {
			d[i] = int(s)
		}
		fx.dims[tv.Name] = d
	}
	return fx
}

// get returns the fixture's tensor key, failing the test when it is absent.
func (fx *photoFixture) get(t *testing.T, key string) []float64 {
	t.Helper()
	v, ok := fx.tensors[key]
	if !ok {
		t.Fatalf("fixture has no tensor %q", key)
	}
	return v
}

// pixels is a fresh uint8 [batch, height, width, 3] tensor of the committed photos (a Trainer takes
// ownership of its batches), decoded once (testdata/photos/<class>_<n>_<size>.png).
func (fx *photoFixture) pixels(t *testing.T) *tensors.Tensor {
	t.Helper()
	h, w := fx.Config.Input[0], fx.Config.Input[1]
	if fx.pix == nil {
		for _, p := range fx.Photos { // "Dog/2868.jpg"
			cls, file, _ := strings.Cut(p, "/")
			name := fmt.Sprintf("%s_%s_%d.png", strings.ToLower(cls), strings.TrimSuffix(file, ".jpg"), h)
			data, err := os.ReadFile(filepath.Join("testdata", "photos", name))
			if err != nil {
				t.Fatalf("a committed photo is missing: %v", err)
			}
			pix, pw, ph, err := datasets.DecodeRGB(data, 0)
			if err != nil || pw != w || ph != h {
				t.Fatalf("%s: want a %dx%d image, got %dx%d (%v)", name, w, h, pw, ph, err)
			}
			fx.pix = append(fx.pix, pix...)
		}
	}
	return tensors.FromFlatDataAndDimensions(slices.Clone(fx.pix), len(fx.Photos), h, w, 3)
}

// oneHot is the labels one-hot, float32 [batch, 2].
func (fx *photoFixture) oneHot() *tensors.Tensor {
	v := make([]float32, 2*len(fx.Labels))
	for i, l := range fx.Labels {
		v[2*i+l] = 1
	}
	return tensors.FromFlatDataAndDimensions(v, len(fx.Labels), 2)
}

// trainableShapes lists the trainable variables of model name ("resizer" or "baseline") with their
// shapes: the tutorial fixture lists them, the small one has every gradient in full.
func (fx *photoFixture) trainableShapes(name string) map[string][]int {
	out := map[string][]int{}
	if fx.Shapes != nil {
		for p, s := range fx.Shapes {
			if name == "resizer" || !strings.HasPrefix(p, "/"+resizer.ScopeName+"/") {
				out[p] = s
			}
		}
		return out
	}
	prefix := name + "/grad64"
	for k, d := range fx.dims {
		if p, ok := strings.CutPrefix(k, prefix); ok {
			out[p] = d
		}
	}
	return out
}

// store returns a store holding, in dtype, Keras' initial weights as the fixture drew them
// (photoInitialValue), batch norms' moving statistics included.
func (fx *photoFixture) store(t *testing.T, name string, dtype dtypes.DType) *model.Store {
	t.Helper()
	store := model.NewStore()
	create := func(path string, shape []int) {
		scope, v := model.SplitPath(path)
		if _, err := store.Scope(scope).CreateVariable(v, backendtest.FloatTensor(photoInitialValue(fx.Seed, path, shape), shape, dtype)); err != nil {
			t.Fatal(err)
		}
	}
	for path, shape := range fx.trainableShapes(name) {
		create(path, shape)
		if prefix, ok := strings.CutSuffix(path, "/gamma"); ok {
			create(prefix+"/moving_mean", shape)
			create(prefix+"/moving_variance", shape)
		}
	}
	return store
}

// photoInitialValue is gen_photo_parity.py's photo_init: Keras' initial value of the variable at path
// (glorot-uniform kernels, zero biases, betas and moving means, unit gammas and moving variances), the
// kernels drawn from splitmix64 seeded by seed ^ FNV-1a-64(path), as float32 values.
func photoInitialValue(seed uint64, path string, shape []int) []float64 {
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := make([]float64, n)
	switch path[strings.LastIndex(path, "/")+1:] {
	case "bias", "beta", "moving_mean":
		return v
	case "gamma", "moving_variance":
		for i := range v {
			v[i] = 1
		}
		return v
	}
	receptive := 1
	for _, d := range shape[:len(shape)-2] {
		receptive *= d
	}
	limit := math.Sqrt(6.0 / float64(shape[len(shape)-2]*receptive+shape[len(shape)-1]*receptive))
	h := fnv.New64a()
	_, _ = h.Write([]byte(path))
	s := seed ^ h.Sum64()
	for i := range v {
		z := s + uint64(i+1)*0x9E3779B97F4A7C15
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
		z = (z ^ (z >> 27)) * 0x94D049BB133111EB
		z ^= z >> 31
		u := float64(z>>11) / (1 << 53)
		v[i] = float64(float32((2*u - 1) * limit))
	}
	return v
}

// float32Values converts a float32 tensor to float64 values.
func float32Values(t *testing.T, tt *tensors.Tensor) []float64 {
	t.Helper()
	if tt.DType() != dtypes.Float32 {
		t.Fatalf("output dtype %s, want float32", tt.DType())
	}
	v := tensors.MustCopyFlatData[float32](tt)
	out := make([]float64, len(v))
	for i := range v {
		out[i] = float64(v[i])
	}
	return out
}

// float32Gate is the exactness criterion of the real-photo tests: per variable, our float32 result's
// error against PyTorch's float64 one must be within 3x PyTorch float32's own error on the same
// inputs, or below floor (where both are at float32's rounding of the values themselves, a ratio says
// nothing).
//
// Kinks: the model is only piecewise smooth (ReLU, LeakyReLU, max pooling), and real photos put some
// ReLU inputs within float32's rounding of 0 (1.7e-7 of their layer's largest at the small
// configuration): such an input may land on either side of 0 in any float32 implementation, and the
// gradients then differ by that element's whole contribution, in every layer below it, and most in
// the deepest batch norms, which at batch 2 sum only 32 positions. At the tutorial's shapes, which
// inputs flip changes with summation order alone: across three versions of our batch norm (each
// within float32's accuracy, TestBatchNormLargeOffset) the gradients of the layers below moved by up
// to 0.94% (go backend), 0.26% and 3.2% (ONNX Runtime, 311 of 365 variables above the strict limit,
// the worst /densenet121/conv5_block9_1_bn/beta), or not at all, while PyTorch float32, lucky on
// these inputs, stays within 3e-5; the baseline on the go backend once had 3 of DenseNet-121's ReLU
// inputs on the other side of PyTorch float64's (1 of 720,000 in the stem, 1 of 369,664, 1 of 92,416:
// -2.19e-6 against 6.93e-7). float64 needs no such luck: at the same shapes the same code matches
// PyTorch float64 to 1e-9.
//
// So at the tutorial's shapes (kinkFloor > 0) a variable above the strict limit is logged, and fails
// only beyond kinkFloor (a lost term or a wrong sign moves a gradient by 100%); the loss and the
// logits, which kinks do not move, keep the strict limit, and float64 (photoFloat64Tolerance) checks
// every variable. (The whole gradient as one vector is no better a measure: it is dominated by a few
// large, cancelling batch-norm gradients, 2.3% off in PyTorch float32's own.) The small
// configuration's gate has no kink floor: no input of its batch lands on the other side on any of
// the three backends, and every variable is held to 3x PyTorch float32's error there. A semantic
// slip fails both: the LeakyReLU derivative at 0 put every resizer variable 32-35% off.
type float32Gate struct {
	t               *testing.T
	what            string
	floor           float64
	kinkFloor       float64 // 0: no variable may exceed the strict limit
	worst           float64 // largest ours/max(torch, floor/3) seen
	worstMsg        string
	checked, kinked int
}

// Floors of the real-photo gates.
const (
	// photoFloorLoss and photoFloorGrad: relative errors this small are float32's rounding of the
	// values themselves, where a ratio to PyTorch's (which can be 1e-8 by chance) says nothing.
	// The loss's: a float32 step-1 loss against our float64 one (the go backend, 1e-9 from
	// PyTorch's) on six other batches of two development photos at the tutorial's shapes, both
	// models, every CPU backend, was up to 2.8e-6 off with the convolutions as im2col matrices
	// (RMS 0.8-1.9e-6) and up to 2.8e-6 as products per tap (RMS 0.6-1.6e-6; 2026-12-02). The
	// floor was 1e-6 before, which this fixture's batch met by chance (its baseline on the go
	// backend: 4.8e-7 as im2col, 1.02e-6 per tap).
	photoFloorLoss = 3e-6 // the loss (absolute; the losses are ~0.5-0.9)
	photoFloorGrad = 1e-5 // gradients, logits and moving statistics (relative)
	// photoKinkFloor bounds, at the tutorial's shapes, what a kink may move one variable by
	// (float32Gate; measured worst 3.2%; one term of 32 can move a sum by ~1/sqrt(32) = 18%).
	photoKinkFloor = 0.25
	// photoTrajectoryFloor is the limit on every weight's change after three free-running SGD steps
	// (measured worst: 5.1e-4, a batch norm's beta on ONNX Runtime): once a kink has moved one step's
	// gradient, the next steps start from other weights, so every later variable inherits it. The
	// strict checks are step 1's; this one catches a wrong update rule (learning rate, decay,
	// momentum: all 1% or more).
	photoTrajectoryFloor = 1e-2
	// photoFloat64Tolerance is the float64 limit (relative, per variable): no rounding to speak of.
	photoFloat64Tolerance = 1e-7
)

// check compares got and torch32 against ref64 (relative error in the 2-norm, backendtest.RelDiff).
func (g *float32Gate) check(name string, got, ref64, torch32 []float64) {
	g.t.Helper()
	ours, theirs := backendtest.RelDiff(got, ref64), backendtest.RelDiff(torch32, ref64)
	limit := max(3*theirs, g.floor)
	g.checked++
	ratio := ours / max(theirs, g.floor/3)
	msg := fmt.Sprintf("%s %s: error %.2g, PyTorch float32's %.2g", g.what, name, ours, theirs)
	if ratio > g.worst || math.IsNaN(ours) {
		g.worst, g.worstMsg = ratio, msg
	}
	switch {
	case ours <= limit:
	case ours <= g.kinkFloor:
		g.kinked++
		g.t.Logf("%s (above the limit %.2g, below the kink floor %.2g)", msg, limit, g.kinkFloor)
	default: // NaN included
		g.t.Errorf("%s (limit %.2g: 3x PyTorch's, or %.2g)", msg, limit, g.floor)
	}
}

// report logs the worst variable.
func (g *float32Gate) report() {
	g.t.Helper()
	g.t.Logf("%s: %d checked, %d above the limit and below the kink floor; worst relative to PyTorch float32 (x%.2f): %s",
		g.what, g.checked, g.kinked, g.worst, g.worstMsg)
}

// checkLoss compares a float32 loss with PyTorch's float64 (ref) and float32 (torch) ones.
func checkLoss(t *testing.T, what string, loss, ref, torch float64) {
	t.Helper()
	if d, dt := math.Abs(loss-ref), math.Abs(torch-ref); d > max(3*dt, photoFloorLoss) {
		t.Errorf("%s: loss %.9f, PyTorch float64 %.9f, float32 %.9f", what, loss, ref, torch)
	}
}

// stepGradients runs model name's training graph once on the fixture's batch, in dtype, from the
// fixture's initial weights (trainStepOutputs).
func stepGradients(t *testing.T, be backendtest.Backend, fx *photoFixture, name string, paths []string, dtype dtypes.DType) (loss float64, logits []float64, grads [][]float64) {
	t.Helper()
	return trainStepOutputs(t, be, fx.store(t, name, dtype), fx.Config.model(name == "resizer"), fx.LabelSmoothing, paths, dtype, fx.pixels(t), fx.oneHot())
}

// sampled returns the fixture's sampled entries of a gradient (all of it in the small fixture).
func (fx *photoFixture) sampled(t *testing.T, name, path string, grad []float64) []float64 {
	idx, ok := fx.tensors[name+"/index"+path]
	if !ok {
		return grad
	}
	out := make([]float64, len(idx))
	for j, k := range idx {
		out[j] = grad[int(k)]
	}
	return out
}

// checkStep runs step 1 of both models on every CPU backend in float32 (float32Gate, with kinkFloor)
// and on the pure-Go backend's two formulations in float64 (photoFloat64Tolerance).
func checkStep(t *testing.T, fx *photoFixture, kinkFloor float64) {
	t.Helper()
	for _, be := range backendtest.All(t) {
		for _, name := range []string{"resizer", "baseline"} {
			paths := slices.Sorted(maps.Keys(fx.trainableShapes(name)))
			what := fmt.Sprintf("%s on %s", name, be.Name)
			loss, logits, grads := stepGradients(t, be, fx, name, paths, dtypes.Float32)
			checkLoss(t, what+" step 1", loss, fx.get(t, name+"/loss64")[0], fx.get(t, name+"/loss32")[0])
			gate := &float32Gate{t: t, what: what + " step 1", floor: photoFloorGrad, kinkFloor: kinkFloor}
			gate.check("logits", logits, fx.get(t, name+"/logits64"), fx.get(t, name+"/logits32"))
			for i, p := range paths {
				gate.check("gradient of "+p, fx.sampled(t, name, p, grads[i]), fx.get(t, name+"/grad64"+p), fx.get(t, name+"/grad32"+p))
			}
			gate.report()
			if be.Name == "onnx" { // ONNX Runtime runs float64 convolutions in float32
				continue
			}
			loss, logits, grads = stepGradients(t, be, fx, name, paths, dtypes.Float64)
			if ref := fx.get(t, name+"/loss64")[0]; math.Abs(loss-ref) > 1e-9 {
				t.Errorf("%s float64: loss %.12f, PyTorch %.12f", what, loss, ref)
			}
			worst, worstPath := backendtest.RelDiff(logits, fx.get(t, name+"/logits64")), "logits"
			for i, p := range paths {
				if e := backendtest.RelDiff(fx.sampled(t, name, p, grads[i]), fx.get(t, name+"/grad64"+p)); e > worst || math.IsNaN(e) {
					worst, worstPath = e, p
				}
			}
			if worst > photoFloat64Tolerance || math.IsNaN(worst) {
				t.Errorf("%s float64: %s relative error %.2g (limit %.0e)", what, worstPath, worst, photoFloat64Tolerance)
			}
			t.Logf("%s float64: %d gradients, worst relative error %.2g (%s)", what, len(paths), worst, worstPath)
		}
	}
}

// TestPhotoParitySmall: the tutorial's two models at the small configuration (64 -> 32, DenseNet
// blocks (2, 2), growth 8, resizer 4 filters, batch 8) on eight real photos chosen for black borders
// and saturated regions, from Keras' initial weights, against PyTorch in float64: step 1's loss,
// logits and every gradient (checkStep), then three SGD steps through the training loop's own
// Trainer on every CPU backend: each step's loss, every weight's change and every batch norm's moving
// statistics after the three steps.
func TestPhotoParitySmall(t *testing.T) {
	fx := loadPhotoFixture(t, "photo_parity_small.safetensors")
	checkStep(t, fx, 0)
	for _, be := range backendtest.All(t) {
		for _, name := range []string{"resizer", "baseline"} {
			trainSteps(t, be, fx, name)
		}
	}
}

// trainSteps runs fx.Steps SGD steps with the Trainer the training loop uses (newRun) and checks the
// losses, the weights' changes (photoTrajectoryFloor) and the moving statistics.
func trainSteps(t *testing.T, be backendtest.Backend, fx *photoFixture, name string) {
	t.Helper()
	what := fmt.Sprintf("%s on %s", name, be.Name)
	store := fx.store(t, name, dtypes.Float32)
	cfg := Config{Model: fx.Config.model(name == "resizer"), LearningRate: fx.LearningRate, LabelSmoothing: fx.LabelSmoothing}
	r := newRun(be.Backend, store, cfg, Options{})
	refLoss, torchLoss := fx.get(t, name+"/loss64"), fx.get(t, name+"/loss32")
	for k := range fx.Steps {
		m, err := r.trainer.TrainStep(train.Batch{Inputs: []*tensors.Tensor{fx.pixels(t)}, Labels: []*tensors.Tensor{fx.oneHot()}})
		if err != nil {
			t.Fatalf("%s: step %d: %v", what, k+1, err)
		}
		checkLoss(t, fmt.Sprintf("%s step %d", what, k+1), scalar(m[r.trainLoss]), refLoss[k], torchLoss[k])
	}
	gate := &float32Gate{t: t, what: fmt.Sprintf("%s after %d steps", what, fx.Steps), floor: photoTrajectoryFloor}
	shapes := fx.trainableShapes(name)
	for _, p := range slices.Sorted(maps.Keys(shapes)) {
		now := float32Values(t, store.GetVariable(p).MustValue())
		start := photoInitialValue(fx.Seed, p, shapes[p])
		for i := range now {
			now[i] -= start[i]
		}
		gate.check("change of "+p, now, fx.get(t, name+"/update64"+p), fx.get(t, name+"/update32"+p))
	}
	for _, key := range slices.Sorted(maps.Keys(fx.tensors)) {
		if p, ok := strings.CutPrefix(key, name+"/moving64"); ok {
			gate.check(p, float32Values(t, store.GetVariable(p).MustValue()), fx.tensors[key], fx.get(t, name+"/moving32"+p))
		}
	}
	gate.report()
}

// TestPhotoParityTutorial: step 1 of both models at the tutorial's shapes (300 -> 150, resizer of 16
// filters, DenseNet-121) on two real photos, from Keras' initial weights, against PyTorch in float64
// (checkStep; every gradient at 256 sampled entries per variable), with the kink floor of
// float32Gate. Batch norm here sums 2x300 rows of 300x16 values in the resizer.
func TestPhotoParityTutorial(t *testing.T) {
	checkStep(t, loadPhotoFixture(t, "photo_parity_tutorial.safetensors"), photoKinkFloor)
}
