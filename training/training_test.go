package training

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/checkpoint"
	"github.com/gomlx/gomlx/ml/train"

	"github.com/learnresize/learnresize/backend"
	"github.com/learnresize/learnresize/densenet"
	"github.com/learnresize/learnresize/internal/fileutil"
	"github.com/learnresize/learnresize/models"
)

func testBackend(t testing.TB) compute.Backend {
	b, _, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// memData is an in-memory dataset: class 1 images are brighter. Its order depends on seed and epoch.
type memData struct {
	px            []uint8
	labels        []float32
	n, size, bs   int
	seed          uint64
	epoch         int
	yieldedEpochs []int
}

func newMemData(n, size, bs int, seed uint64) *memData {
	r := rand.New(rand.NewPCG(seed, 99))
	d := &memData{n: n, size: size, bs: bs, seed: seed, px: make([]uint8, n*size*size*3), labels: make([]float32, n*2)}
	for i := range n {
		cls := r.IntN(2)
		d.labels[i*2+cls] = 1
		for j := range size * size * 3 {
			d.px[i*size*size*3+j] = uint8(r.IntN(140) + 110*cls)
		}
	}
	return d
}

func (d *memData) Name() string { return "mem" }

func (d *memData) SetEpoch(e int) { d.epoch = e }

func (d *memData) NumExamples() int { return d.n }

func (d *memData) Iter() iter.Seq2[train.Batch, error] {
	return func(yield func(train.Batch, error) bool) {
		d.yieldedEpochs = append(d.yieldedEpochs, d.epoch)
		order := rand.New(rand.NewPCG(d.seed, uint64(d.epoch))).Perm(d.n)
		img := d.size * d.size * 3
		for s := 0; s < d.n; s += d.bs {
			e := min(s+d.bs, d.n)
			px := make([]uint8, 0, (e-s)*img)
			lb := make([]float32, 0, (e-s)*2)
			for _, i := range order[s:e] {
				px = append(px, d.px[i*img:(i+1)*img]...)
				lb = append(lb, d.labels[i*2:i*2+2]...)
			}
			b := train.Batch{Inputs: []*tensors.Tensor{tensors.FromFlatDataAndDimensions(px, e-s, d.size, d.size, 3)},
				Labels: []*tensors.Tensor{tensors.FromFlatDataAndDimensions(lb, e-s, 2)}}
			if !yield(b, nil) {
				return
			}
		}
	}
}

func tinyConfig() Config {
	c := Default()
	c.Model.InputHeight, c.Model.InputWidth, c.Model.TargetHeight, c.Model.TargetWidth = 40, 40, 32, 32
	c.Model.Filters = 4
	c.Model.Blocks, c.Model.Growth = []int{2, 2}, 4
	c.BatchSize, c.Epochs, c.LearningRate = 8, 3, 0.05
	return c
}

func tinyData() Data {
	return Data{Train: newMemData(36, 40, 8, 1), Val: newMemData(16, 40, 8, 2), NumTrain: 36}
}

func TestConfigValidate(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
	for i, f := range []func(*Config){
		func(c *Config) { c.BatchSize = 0 }, func(c *Config) { c.Epochs = 0 }, func(c *Config) { c.LearningRate = -1 },
		func(c *Config) { c.LabelSmoothing = 1 }, func(c *Config) { c.Model.Classes = 0 },
	} {
		c := Default()
		f(&c)
		if c.Validate() == nil {
			t.Errorf("case %d validated", i)
		}
	}
}

// TestOneRunPerDirectory: a second run (or comparison) into a directory that a running one holds is
// refused at once with an error naming the holder, before it writes anything.
func TestOneRunPerDirectory(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		run  func(dir string) error
	}{
		{"fit", func(dir string) error {
			_, err := Fit(context.Background(), testBackend(t), tinyConfig(), tinyData(), Options{Dir: dir})
			return err
		}},
		{"compare", func(dir string) error {
			_, err := Compare(context.Background(), testBackend(t), tinyConfig(), tinyData(), nil, CompareOptions{Dir: dir})
			return err
		}},
	} {
		runDir := filepath.Join(dir, c.name)
		if err := os.MkdirAll(runDir, 0o755); err != nil {
			t.Fatal(err)
		}
		held, err := fileutil.TryLock(filepath.Join(runDir, LockFile), "the test's stand-in for a running process")
		if err != nil {
			t.Fatal(err)
		}
		err = c.run(runDir)
		if !errors.Is(err, fileutil.ErrLocked) || !strings.Contains(err.Error(), "stand-in") ||
			!strings.Contains(err.Error(), "choose another output directory") {
			t.Errorf("%s into a held directory: %v", c.name, err)
		}
		if entries, _ := os.ReadDir(runDir); len(entries) > 2 { // the lock file, and Fit's empty checkpoints/
			t.Errorf("%s wrote into a held directory: %d entries", c.name, len(entries))
		}
		_ = held.Unlock()
	}
}

func TestRateDigits(t *testing.T) {
	for v, want := range map[float64]string{0.123: "0.12", 2.54: "2.5", 112.4: "112"} {
		if got := rate(v); got != want {
			t.Errorf("rate(%v) = %q, want %q", v, got, want)
		}
	}
}

// TestHistoryCSVHasEveryField: history.csv has a column for every field history.json has.
func TestHistoryCSVHasEveryField(t *testing.T) {
	dir := t.TempDir()
	h := &History{Epochs: []EpochStats{{Epoch: 1, Loss: 0.5, ValGraphs: 2, CompileSteps: 1}}}
	if err := h.Save(dir); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "history.json"))
	var js struct{ Epochs []map[string]any }
	if err := json.Unmarshal(raw, &js); err != nil {
		t.Fatal(err)
	}
	csvRaw, _ := os.ReadFile(filepath.Join(dir, "history.csv"))
	lines := strings.Split(strings.TrimSpace(string(csvRaw)), "\n")
	header := strings.Split(lines[0], ",")
	if len(header) != len(js.Epochs[0]) {
		t.Errorf("history.csv columns %v; history.json fields %v", header, js.Epochs[0])
	}
	for _, k := range header {
		if _, ok := js.Epochs[0][k]; !ok {
			t.Errorf("column %q is not in history.json", k)
		}
	}
	if lines[1] != "1,0.5,0,0,0,0,0,0,0,0,0,0,0,1,0,2" {
		t.Errorf("row %q", lines[1])
	}
}

// TestPretrainedBackbone: with Config.Pretrained, new runs start from the file's DenseNet (classifier
// excepted), every seed of a comparison too (the re-initialized graphs get the weights again).
func TestPretrainedBackbone(t *testing.T) {
	const file = "../densenet/testdata/torchvision_small_legacy.pth" // 64 initial features, blocks (2, 2), growth 8
	cfg := tinyConfig()
	cfg.Model.Growth, cfg.Epochs, cfg.LearningRate = 8, 1, 1e-12 // weights move by ~1e-12: they stay the file's
	cfg.Pretrained = file
	want := model.NewStore()
	if err := densenet.LoadTorchvisionBackbone(want, "densenet", file); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := Compare(context.Background(), testBackend(t), cfg, tinyData(), []int64{3, 4}, CompareOptions{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	for _, run := range []string{"resizer-seed3", "resizer-seed4", "baseline-seed4"} {
		ckpt, err := LatestCheckpoint(filepath.Join(dir, run))
		if err != nil {
			t.Fatal(err)
		}
		got := model.NewStore()
		if _, err := checkpoint.Load(got).Dir(ckpt).Immediate().Done(); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"/densenet/conv1_conv/kernel", "/densenet/conv2_block2_2_conv/kernel"} {
			g := tensors.MustCopyFlatData[float32](got.GetVariable(p).MustValue())
			w := tensors.MustCopyFlatData[float32](want.GetVariable(p).MustValue())
			worst := 0.0
			for i := range w {
				worst = max(worst, math.Abs(float64(g[i]-w[i])))
			}
			if worst > 1e-6 {
				t.Errorf("%s %s: %.2g off the pretrained weights", run, p, worst)
			}
		}
	}
}

// TestFreezeBackbone: with FreezeBackboneEpochs 1 the pretrained kernels are unchanged after epoch 1
// and trained in epoch 2.
func TestFreezeBackbone(t *testing.T) {
	const file = "../densenet/testdata/torchvision_small_legacy.pth"
	cfg := tinyConfig()
	cfg.Model.Growth, cfg.Epochs, cfg.Pretrained, cfg.FreezeBackboneEpochs = 8, 2, file, 1
	want := model.NewStore()
	if err := densenet.LoadTorchvisionBackbone(want, "densenet", file); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "run")
	h, err := Fit(context.Background(), testBackend(t), cfg, tinyData(), Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if h.Epochs[1].CompileSteps == 0 {
		t.Error("epoch 2 compiled nothing: unfreezing needs a new training graph")
	}
	for epoch, wantSame := range map[int]bool{1: true, 2: false} {
		got := model.NewStore()
		if _, err := checkpoint.Load(got).Dir(filepath.Join(dir, "checkpoints", fmt.Sprintf("epoch-%04d", epoch))).Immediate().Done(); err != nil {
			t.Fatal(err)
		}
		const p = "/densenet/conv2_block1_1_conv/kernel"
		g := tensors.MustCopyFlatData[float32](got.GetVariable(p).MustValue())
		w := tensors.MustCopyFlatData[float32](want.GetVariable(p).MustValue())
		same := fmt.Sprint(g) == fmt.Sprint(w)
		if same != wantSame {
			t.Errorf("after epoch %d, %s equal to the pretrained weights: %v, want %v", epoch, p, same, wantSame)
		}
	}
	bad := cfg
	bad.Pretrained = ""
	if err := bad.Validate(); err == nil {
		t.Error("freezing without pretrained weights accepted")
	}
}

func independentEval(t *testing.T, b compute.Backend, cfg Config, ckpt string, data train.Dataset) (loss, acc float64) {
	t.Helper()
	store := model.NewStore()
	if _, err := checkpoint.Load(store).Dir(ckpt).Immediate().Done(); err != nil {
		t.Fatal(err)
	}
	var logits, labels []float32
	var classes int
	for batch, err := range data.Iter() {
		if err != nil {
			t.Fatal(err)
		}
		y, err := model.CallOnce(b, store, models.ModelFn(cfg.Model), batch.Inputs[0])
		if err != nil {
			t.Fatal(err)
		}
		classes = y.Shape().Dimensions[1]
		logits = append(logits, tensors.MustCopyFlatData[float32](y)...)
		labels = append(labels, tensors.MustCopyFlatData[float32](batch.Labels[0])...)
	}
	n := len(logits) / classes
	for i := range n {
		l, y := logits[i*classes:(i+1)*classes], labels[i*classes:(i+1)*classes]
		maxL, best, truth := math.Inf(-1), 0, 0
		for c := range classes {
			if float64(l[c]) > maxL {
				maxL, best = float64(l[c]), c
			}
			if y[c] == 1 {
				truth = c
			}
		}
		lse := 0.0
		for c := range classes {
			lse += math.Exp(float64(l[c]) - maxL)
		}
		lse = maxL + math.Log(lse)
		for c := range classes {
			target := float64(y[c])*(1-cfg.LabelSmoothing) + cfg.LabelSmoothing/float64(classes)
			loss -= target * (float64(l[c]) - lse)
		}
		if best == truth {
			acc++
		}
	}
	return loss / float64(n), acc / float64(n)
}
