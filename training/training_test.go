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
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/checkpoint"
	"github.com/gomlx/gomlx/ml/train"

	"github.com/learnresize/learnresize/backend"
	"github.com/learnresize/learnresize/densenet"
	"github.com/learnresize/learnresize/internal/backendtest"
	"github.com/learnresize/learnresize/internal/fileutil"
	"github.com/learnresize/learnresize/internal/testimages"
	"github.com/learnresize/learnresize/models"
)

func testBackend(t testing.TB) compute.Backend {
	b, _, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSmoothedCrossEntropyByHand(t *testing.T) {
	// logits (2, 0) for a cat (label [1, 0]), smoothing 0.1: y = [0.95, 0.05];
	// log_softmax = [2 - log(e^2+1), -log(e^2+1)]; loss = -(0.95*lp0 + 0.05*lp1).
	lse := math.Log(math.Exp(2) + 1)
	want := -(0.95*(2-lse) + 0.05*(-lse))
	// second example: logits (0, 0), dog: loss = log 2 whatever the smoothing.
	want = (want + math.Log(2)) / 2
	b := testBackend(t)
	got := MustExecOnce(b, func(labels, logits *Node) *Node { return SmoothedCrossEntropy(labels, logits, 0.1) },
		[][]float32{{1, 0}, {0, 1}}, [][]float32{{2, 0}, {0, 0}})
	if d := math.Abs(float64(got.Value().(float32)) - want); d > 1e-6 {
		t.Errorf("loss %v, want %v", got.Value(), want)
	}
	acc := MustExecOnce(b, func(labels, logits *Node) *Node { return Accuracy(labels, logits) },
		[][]float32{{1, 0}, {0, 1}, {0, 1}}, [][]float32{{2, 0}, {3, 1}, {-1, 1}})
	if v := acc.Value().(float32); math.Abs(float64(v)-2.0/3) > 1e-6 {
		t.Errorf("accuracy %v, want 2/3", v)
	}
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

func (d *memData) Name() string     { return "mem" }
func (d *memData) SetEpoch(e int)   { d.epoch = e }
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

func TestFitResumeAndRefusals(t *testing.T) {
	b := testBackend(t)
	cfg := tinyConfig()
	ctx := context.Background()

	full := t.TempDir()
	var log strings.Builder
	h, err := Fit(ctx, b, cfg, tinyData(), Options{Dir: full, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	// The training loss must fall and the training set be learnt. Validation only has to stay sane:
	// in 15 steps batch norm's moving statistics (momentum 0.99, as in Keras) are still far from the
	// batch statistics, so validation loss and accuracy wander (0.652, 0.667, 0.656 on XLA on an
	// H200; 2.03, 1.72, ... on the go backend). Evaluation-mode numbers are
	// checked against PyTorch in densenet's and resizer's parity tests.
	if len(h.Epochs) != 3 || h.Epochs[2].Loss >= h.Epochs[0].Loss || h.Epochs[2].Accuracy < 0.9 {
		t.Errorf("training did not learn: %+v", h.Epochs)
	}
	for _, e := range h.Epochs {
		if !(e.ValLoss > 0 && e.ValLoss < 20) || e.ValAccuracy < 0 || e.ValAccuracy > 1 { // NaN fails too
			t.Errorf("epoch %d: validation loss %v, accuracy %v: diverged or not computed", e.Epoch, e.ValLoss, e.ValAccuracy)
		}
	}
	if !strings.Contains(log.String(), "Epoch 3/3") || !strings.Contains(log.String(), "val_accuracy:") ||
		!strings.Contains(log.String(), "graphs built: 2 train") {
		t.Errorf("log:\n%s", log.String())
	}
	// 36 examples in batches of 8: one graph for the full batches and one for the last batch of 4,
	// both built in epoch 1; later epochs must not recompile.
	for i, e := range h.Epochs {
		wantCompiles := 0
		if i == 0 {
			wantCompiles = 2
		}
		if e.Steps != 5 || e.TrainGraphs != 2 || e.CompileSteps != wantCompiles || (e.CompileSeconds > 0) != (wantCompiles > 0) ||
			e.StepMedianMs <= 0 || e.StepSeconds <= 0 || e.DataWaitSeconds < 0 || e.DataWaitSeconds > e.Seconds ||
			e.CompileSeconds+e.StepSeconds+e.DataWaitSeconds > e.Seconds*1.001 || math.IsNaN(e.Overhead()) || e.ValGraphs < 1 {
			t.Errorf("epoch %d timing/compilation record: %+v", i+1, e)
		}
	}
	for _, f := range []string{"history.json", "history.csv", "LATEST", "checkpoints/epoch-0003/training.json"} {
		if _, err := os.Stat(filepath.Join(full, f)); err != nil {
			t.Error(err)
		}
	}
	// The reported validation numbers are the example-weighted means over the whole split, computed
	// with the final weights (a fresh store loaded from the last checkpoint, a fresh graph).
	wantLoss, wantAcc := independentEval(t, b, cfg, filepath.Join(full, "checkpoints", "epoch-0003"), tinyData().Val)
	if math.Abs(h.Last().ValLoss-wantLoss) > 1e-5 || math.Abs(h.Last().ValAccuracy-wantAcc) > 1e-9 {
		t.Errorf("reported val loss/accuracy %.6f/%.4f, independent evaluation %.6f/%.4f", h.Last().ValLoss, h.Last().ValAccuracy, wantLoss, wantAcc)
	}
	if got, err := LoadHistory(full); err != nil || len(got.Epochs) != 3 || got.Params != h.Params || h.Params == 0 {
		t.Errorf("history.json: %+v, %v", got, err)
	}
	// Running a finished run again without Resume: refused, saying it is finished, where its results
	// are and how to extend it.
	_, err = Fit(ctx, b, cfg, tinyData(), Options{Dir: full, SkipMemoryCheck: true})
	if !errors.Is(err, ErrCheckpointExists) {
		t.Errorf("re-run of a finished run: %v, want ErrCheckpointExists", err)
	} else {
		for _, want := range []string{"holds a finished run (3 epochs)", "results in " + full + ": history.json, history.csv",
			"-resume and -epochs above 3", "choose another directory"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("re-run of a finished run: %q lacks %q", err, want)
			}
		}
	}

	// Interrupted after epoch 1 (context cancelled), then resumed: same epochs as the full run.
	part := t.TempDir()
	cctx, cancel := context.WithCancel(ctx)
	_, err = Fit(cctx, b, cfg, tinyData(), Options{Dir: part, OnEpoch: func(h *History) {
		if len(h.Epochs) == 1 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	// A leftover temporary checkpoint of a killed save must be ignored and cleaned up.
	if err := os.MkdirAll(filepath.Join(part, "checkpoints", ".tmp-killed"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Fit(ctx, b, cfg, tinyData(), Options{Dir: part}); !errors.Is(err, ErrCheckpointExists) ||
		!strings.Contains(err.Error(), "1 of 3 epochs done): use -resume to continue it") || strings.Contains(err.Error(), "finished") {
		t.Errorf("re-run without -resume: %v, want ErrCheckpointExists saying how to continue the unfinished run", err)
	}
	data := tinyData()
	resumed, err := Fit(ctx, b, cfg, data, Options{Dir: part, Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := data.Train.(*memData).yieldedEpochs; len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Errorf("resumed run trained epochs %v, want [1 2] (0-based)", got)
	}
	if len(resumed.Epochs) != 3 {
		t.Fatalf("resumed history has %d epochs", len(resumed.Epochs))
	}
	for i := range 3 {
		a, c := h.Epochs[i], resumed.Epochs[i]
		near := func(x, y float64) bool { return math.Abs(x-y) <= 1e-5 || backendtest.Close(b, y, x) }
		if !near(a.Loss, c.Loss) || !near(a.ValLoss, c.ValLoss) {
			t.Errorf("epoch %d: uninterrupted loss %.6f/%.6f, interrupted+resumed %.6f/%.6f", i+1, a.Loss, a.ValLoss, c.Loss, c.ValLoss)
		}
	}
	// Resuming a finished run trains nothing and returns its history.
	again, err := Fit(ctx, b, cfg, tinyData(), Options{Dir: part, Resume: true})
	if err != nil || len(again.Epochs) != 3 || again.Params != h.Params || again.Last() != resumed.Last() {
		t.Errorf("resuming a finished run: %v, %+v", err, again)
	}
	if _, err := os.Stat(filepath.Join(part, "checkpoints", ".tmp-killed")); !os.IsNotExist(err) {
		t.Errorf("stale temporary checkpoint not cleaned: %v", err)
	}

	// Resuming with another model configuration is refused, naming the problem.
	other := cfg
	other.Model.Filters = 8
	if _, err := Fit(ctx, b, other, tinyData(), Options{Dir: part, Resume: true}); err == nil || !strings.Contains(err.Error(), "another configuration") {
		t.Errorf("resume with other config: %v", err)
	}
	// A LATEST pointing nowhere is a clear error, not a crash.
	if err := os.WriteFile(filepath.Join(part, "LATEST"), []byte("epoch-0042\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Fit(ctx, b, cfg, tinyData(), Options{Dir: part, Resume: true}); err == nil || !strings.Contains(err.Error(), "epoch-0042") {
		t.Errorf("dangling LATEST: %v", err)
	}
}

// TestFitRefusesOtherBatchSize: data whose batches disagree with Config.BatchSize (larger, or
// smaller before the epoch's last) are refused, naming both sizes and the remedy, and nothing is
// checkpointed; one smaller batch that is the epoch's only one trains.
func TestFitRefusesOtherBatchSize(t *testing.T) {
	b := testBackend(t)
	cfg := tinyConfig() // batch 8
	cfg.Epochs = 1
	for _, c := range []struct {
		dataBatch int
		want      []string
	}{
		{16, []string{"training data's batch at step 1 of epoch 1 holds 16 examples, but Config.BatchSize is 8", "-batch"}},
		{4, []string{"batch, not the epoch's last, at step 1 of epoch 1 holds 4 examples, but Config.BatchSize is 8",
			"only an epoch's last batch may be smaller"}},
	} {
		dir := t.TempDir()
		data := Data{Train: newMemData(36, 40, c.dataBatch, 1), Val: newMemData(16, 40, 8, 2), NumTrain: 36}
		_, err := Fit(context.Background(), b, cfg, data, Options{Dir: dir, SkipMemoryCheck: true})
		if err == nil {
			t.Errorf("data in batches of %d, Config.BatchSize 8: trained", c.dataBatch)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("data in batches of %d: %q lacks %q", c.dataBatch, err, w)
			}
		}
		if latest, _ := LatestCheckpoint(dir); latest != "" {
			t.Errorf("data in batches of %d: refused, yet checkpoint %s was written", c.dataBatch, latest)
		}
	}
	// Fewer examples than a batch: the epoch's only batch is smaller, as OpenData makes it.
	small := Data{Train: newMemData(6, 40, 8, 1), Val: newMemData(4, 40, 8, 2), NumTrain: 6}
	if h, err := Fit(context.Background(), b, cfg, small, Options{Dir: t.TempDir(), SkipMemoryCheck: true}); err != nil || h.Last().Steps != 1 {
		t.Errorf("one batch of 6 with Config.BatchSize 8: %v", err)
	}
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

func TestCompareTable(t *testing.T) {
	b := testBackend(t)
	cfg := tinyConfig()
	cfg.Epochs = 1
	dir := t.TempDir()
	cmp, err := Compare(context.Background(), b, cfg, tinyData(), []int64{3, 4}, CompareOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(cmp.Rows) != 2 || cmp.Rows[0].Name != "resizer" || cmp.Rows[1].Name != "baseline" {
		t.Fatalf("rows %+v", cmp.Rows)
	}
	// The resizer adds exactly its own parameters (4 filters, 1 block) to the same backbone.
	resizerParams := (7*7*3*4 + 4) + (4*4 + 4) + 4*4 + 2*(3*3*4*4) + 2*4*4 + 3*3*4*4 + 4*4 + (7*7*4*3 + 3)
	if d := cmp.Rows[0].Params - cmp.Rows[1].Params; d != resizerParams {
		t.Errorf("parameter difference %d, want the resizer's %d", d, resizerParams)
	}
	for _, r := range cmp.Rows {
		if len(r.FinalValAccuracy) != 2 || r.Mean < 0 || r.Mean > 1 {
			t.Errorf("row %+v", r)
		}
	}
	md, err := os.ReadFile(filepath.Join(dir, "comparison.md"))
	if err != nil || !strings.Contains(string(md), "| Learnable resizer + DenseNet (blocks 2, 2) |") || !strings.Contains(string(md), "± ") {
		t.Errorf("comparison.md: %v\n%s", err, md)
	}
	back, err := LoadComparison(dir)
	if err != nil || len(back.Rows) != 2 || back.Config.Model.Interpolation != cfg.Model.Interpolation ||
		back.Markdown() != cmp.Markdown() {
		t.Errorf("comparison.json: %v %+v", err, back)
	}
	for _, sub := range []string{"resizer-seed3", "baseline-seed3", "resizer-seed4", "baseline-seed4"} {
		if _, err := os.Stat(filepath.Join(dir, sub, "history.json")); err != nil {
			t.Error(err)
		}
	}
	// Running the finished comparison again without Resume: refused, saying it is finished, where its
	// table is and how to extend it; with a run missing, that it is unfinished and how to continue.
	_, err = Compare(context.Background(), b, cfg, tinyData(), []int64{3, 4}, CompareOptions{Dir: dir})
	if !errors.Is(err, ErrCheckpointExists) {
		t.Errorf("re-run of a finished comparison: %v, want ErrCheckpointExists", err)
	} else {
		for _, want := range []string{"holds a finished comparison (1 epoch, seeds 3, 4)", "comparison.md, comparison.json",
			filepath.Join("resizer-seed3", "history.json"), "-resume and a larger -epochs"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("re-run of a finished comparison: %q lacks %q", err, want)
			}
		}
	}
	if err := os.RemoveAll(filepath.Join(dir, "baseline-seed4")); err != nil {
		t.Fatal(err)
	}
	_, err = Compare(context.Background(), b, cfg, tinyData(), []int64{3, 4}, CompareOptions{Dir: dir})
	if !errors.Is(err, ErrCheckpointExists) || !strings.Contains(err.Error(), "unfinished comparison (3 of 4 runs finished): use -resume") {
		t.Errorf("re-run of an unfinished comparison: %v", err)
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

func TestOpenDataOnImageFolder(t *testing.T) {
	dir := t.TempDir()
	if err := testimages.WriteFolder(filepath.Join(dir, "img"), 10, 30, 20); err != nil {
		t.Fatal(err)
	}
	cfg := tinyConfig()
	cfg.TrainSplit, cfg.ValSplit = "train[:60%]", "train[60%:]"
	d, err := OpenData(context.Background(), cfg, DataOptions{Path: filepath.Join(dir, "img"), DataDir: filepath.Join(dir, "cache")})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.NumTrain != 12 || d.NumVal != 8 || len(d.Classes) != 2 {
		t.Errorf("opened %d train / %d val, classes %v", d.NumTrain, d.NumVal, d.Classes)
	}
	imgs, err := d.ValImages(3)
	if err != nil || len(imgs) != 3 || imgs[0].Bounds().Dx() != 40 || imgs[0].Bounds().Dy() != 40 {
		t.Errorf("ValImages: %v, %d images", err, len(imgs))
	}
	// A folder with three classes does not fit a two-class model.
	if err := os.MkdirAll(filepath.Join(dir, "img", "grey"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := testimages.WriteFolder(filepath.Join(dir, "img3"), 2, 8, 8); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "img3", "dark"), filepath.Join(dir, "img", "grey", "x")); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenData(context.Background(), cfg, DataOptions{Path: filepath.Join(dir, "img"), DataDir: filepath.Join(dir, "cache")}); err == nil || !strings.Contains(err.Error(), "3 classes") {
		t.Errorf("three classes: %v", err)
	}
}

// countingData yields n batches of one scalar-per-example tensor and records how many it produced,
// failing at batch failAt (if > 0).
type countingData struct {
	n, failAt int
	produced  int
	tensors   []*tensors.Tensor
}

func (d *countingData) Name() string { return "counting" }
func (d *countingData) Iter() iter.Seq2[train.Batch, error] {
	return func(yield func(train.Batch, error) bool) {
		for i := range d.n {
			if d.failAt > 0 && i == d.failAt {
				yield(train.Batch{}, errors.New("disk on fire"))
				return
			}
			d.produced++
			in, lb := tensors.FromValue([]float32{float32(i)}), tensors.FromValue([]float32{1})
			d.tensors = append(d.tensors, in, lb)
			if !yield(train.Batch{Inputs: []*tensors.Tensor{in}, Labels: []*tensors.Tensor{lb}}, nil) {
				return
			}
		}
	}
}

func TestDevicePrefetch(t *testing.T) {
	b := testBackend(t)
	// All batches arrive, in order, already on the device.
	d := &countingData{n: 7}
	i := 0
	for batch, err := range devicePrefetch(b, d.Iter(), 2) {
		if err != nil {
			t.Fatal(err)
		}
		if !batch.Inputs[0].IsOnDevice(0) {
			t.Errorf("batch %d not on the device", i)
		}
		if got := batch.Inputs[0].Value().([]float32)[0]; got != float32(i) {
			t.Errorf("batch %d holds %v", i, got)
		}
		_ = batch.Finalize()
		i++
	}
	if i != 7 {
		t.Errorf("got %d batches, want 7", i)
	}
	// Stopping early stops the reader and releases what it had read ahead.
	d = &countingData{n: 100}
	for range devicePrefetch(b, d.Iter(), 2) {
		break
	}
	if d.produced > 4 {
		t.Errorf("reader ran %d batches ahead after the consumer stopped", d.produced)
	}
	for k, tt := range d.tensors[2:] { // the first batch belongs to the consumer
		if tt.Ok() {
			t.Errorf("read-ahead tensor %d not finalized", k)
		}
	}
	// Errors arrive after the good batches and end the sequence.
	d = &countingData{n: 10, failAt: 3}
	var got []error
	for batch, err := range devicePrefetch(b, d.Iter(), 1) {
		got = append(got, err)
		if err == nil {
			_ = batch.Finalize()
		}
	}
	if len(got) != 4 || got[3] == nil || !strings.Contains(got[3].Error(), "disk on fire") {
		t.Errorf("sequence with a failing read: %v", got)
	}
}

// Reading ahead onto the device changes when batches are copied, not what is computed: the same
// numbers (bit-identical on the CPU backends; within backendtest.RunToRun on XLA, which is not
// reproducible run to run on a GPU).
func TestFitDevicePrefetchSameResults(t *testing.T) {
	b := testBackend(t)
	cfg := tinyConfig()
	cfg.Epochs = 1
	var losses []EpochStats
	for _, depth := range []int{-1, 0, 3} {
		h, err := Fit(context.Background(), b, cfg, tinyData(), Options{Dir: t.TempDir(), DevicePrefetch: depth})
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, h.Last())
	}
	for i, e := range losses[1:] {
		if !backendtest.Close(b, e.Loss, losses[0].Loss) || !backendtest.Close(b, e.ValLoss, losses[0].ValLoss) ||
			!backendtest.Close(b, e.Accuracy, losses[0].Accuracy) {
			t.Errorf("run %d: loss %v / val loss %v, without read-ahead %v / %v", i+1, e.Loss, e.ValLoss, losses[0].Loss, losses[0].ValLoss)
		}
	}
}

// TestDamagedCacheIsNotTrainedOn: pixels damaged in the middle of the decoded-image cache (the index
// and its checksum intact) stop training with an error naming the file and the remedy, instead of
// being trained on silently.
func TestDamagedCacheIsNotTrainedOn(t *testing.T) {
	dir := t.TempDir()
	if err := testimages.WriteFolder(filepath.Join(dir, "img"), 10, 30, 20); err != nil {
		t.Fatal(err)
	}
	cfg := tinyConfig()
	cfg.TrainSplit, cfg.ValSplit = "train[:60%]", "train[60%:]"
	opt := DataOptions{Path: filepath.Join(dir, "img"), DataDir: filepath.Join(dir, "cache")}
	d, err := OpenData(context.Background(), cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	caches, _ := filepath.Glob(filepath.Join(dir, "cache", "cache", "*.lrcache"))
	if len(caches) != 1 {
		t.Fatalf("cache files %v, want one", caches)
	}
	_ = d.Close()
	raw, err := os.ReadFile(caches[0])
	if err != nil {
		t.Fatal(err)
	}
	for i := len(raw) / 2; i < len(raw)/2+64; i++ { // inside the pixels, far from the index and trailer
		raw[i] ^= 0x5a
	}
	if err := os.WriteFile(caches[0], raw, 0o644); err != nil {
		t.Fatal(err)
	}
	d, err = OpenData(context.Background(), cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, err = Fit(context.Background(), testBackend(t), cfg, d.Data, Options{Dir: filepath.Join(dir, "run")})
	if err == nil || !strings.Contains(err.Error(), "damaged") || !strings.Contains(err.Error(), caches[0]) ||
		!strings.Contains(err.Error(), "delete the file") {
		t.Errorf("training on a damaged cache: error %v, want one naming %s as damaged and saying what to do", err, caches[0])
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

// TestResumeRefusesOtherData: a checkpoint records which examples it was trained on; resuming after
// the source folder changed (here: one image added, which moves the split boundaries) is refused
// with the difference named, while the same images in another folder resume.
func TestResumeRefusesOtherData(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "img")
	if err := testimages.WriteFolder(src, 10, 30, 20); err != nil {
		t.Fatal(err)
	}
	cfg := tinyConfig()
	cfg.TrainSplit, cfg.ValSplit, cfg.Epochs = "train[:60%]", "train[60%:]", 1
	run := filepath.Join(dir, "run")
	fit := func(path string, epochs int, resume bool) error {
		d, err := OpenData(context.Background(), cfg, DataOptions{Path: path, DataDir: filepath.Join(dir, "cache")})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		c := cfg
		c.Epochs = epochs
		_, err = Fit(context.Background(), testBackend(t), c, d.Data, Options{Dir: run, Resume: resume})
		return err
	}
	if err := fit(src, 1, false); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(dir, "moved")
	if err := os.Rename(src, moved); err != nil {
		t.Fatal(err)
	}
	if err := fit(moved, 2, true); err != nil {
		t.Errorf("the same images in another folder: %v", err)
	}
	names, _ := filepath.Glob(filepath.Join(moved, "bright", "*"))
	raw, err := os.ReadFile(names[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(moved, "bright", "added"+filepath.Ext(names[0])), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	err = fit(moved, 3, true)
	if err == nil || !strings.Contains(err.Error(), "differs from the data it was trained on") ||
		!strings.Contains(err.Error(), "had 12 examples, now 13") {
		t.Errorf("resume after an image was added: %v", err)
	}
}

// TestOverlappingSplitsRefused: splits that share examples are refused when the data is opened,
// naming how many they share.
func TestOverlappingSplitsRefused(t *testing.T) {
	dir := t.TempDir()
	if err := testimages.WriteFolder(filepath.Join(dir, "img"), 10, 30, 20); err != nil {
		t.Fatal(err)
	}
	cfg := tinyConfig()
	cfg.TrainSplit, cfg.ValSplit = "train[:60%]", "train[50%:]"
	_, err := OpenData(context.Background(), cfg, DataOptions{Path: filepath.Join(dir, "img"), DataDir: filepath.Join(dir, "cache")})
	if err == nil || !strings.Contains(err.Error(), "share 2 of the 20 examples") {
		t.Errorf("overlapping splits: %v", err)
	}
}

// TestDamagedLatestCheckpointNamesTheIntactOne: when the latest checkpoint is damaged, the error says
// which earlier one is intact and how to continue from it, and ResumeFrom does.
func TestDamagedLatestCheckpointNamesTheIntactOne(t *testing.T) {
	b := testBackend(t)
	dir := filepath.Join(t.TempDir(), "run")
	cfg := tinyConfig()
	cfg.Epochs = 2
	if _, err := Fit(context.Background(), b, cfg, tinyData(), Options{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	latest, err := LatestCheckpoint(dir)
	if err != nil || filepath.Base(latest) != "epoch-0002" {
		t.Fatalf("latest %q, %v", latest, err)
	}
	if err := os.WriteFile(filepath.Join(latest, "history.json"), []byte("{garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Epochs = 3
	_, err = Fit(context.Background(), b, cfg, tinyData(), Options{Dir: dir, Resume: true})
	if err == nil || !strings.Contains(err.Error(), "epoch-0001 (epoch 1) is intact") || !strings.Contains(err.Error(), "-resume-from epoch-0001") {
		t.Fatalf("resume from a damaged latest checkpoint: %v", err)
	}
	h, err := Fit(context.Background(), b, cfg, tinyData(), Options{Dir: dir, Resume: true, ResumeFrom: "epoch-0001"})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Epochs) != 3 {
		t.Errorf("after resuming from epoch 1: %d epochs", len(h.Epochs))
	}
	// LATEST naming a checkpoint that is gone: the same advice.
	if err := os.WriteFile(filepath.Join(dir, "LATEST"), []byte("epoch-0009\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Epochs = 4
	if _, err := Fit(context.Background(), b, cfg, tinyData(), Options{Dir: dir, Resume: true}); err == nil || !strings.Contains(err.Error(), "is intact") {
		t.Errorf("LATEST naming a missing checkpoint: %v", err)
	}
}

// TestCompareReusesGraphsAcrossSeeds: the second seed of a comparison trains in the graphs the first
// compiled (no compilation in its first epoch), with variables re-initialized for its seed, so its
// history equals that of a fresh run with that seed (within backendtest.RunToRun).
func TestCompareReusesGraphsAcrossSeeds(t *testing.T) {
	b := testBackend(t)
	cfg := tinyConfig()
	cfg.Epochs = 2
	dir := t.TempDir()
	if _, err := Compare(context.Background(), b, cfg, tinyData(), []int64{3, 4}, CompareOptions{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"resizer", "baseline"} {
		reused, err := LoadHistory(filepath.Join(dir, name+"-seed4"))
		if err != nil {
			t.Fatal(err)
		}
		if e := reused.Epochs[0]; e.CompileSteps != 0 {
			t.Errorf("%s, seed 4: %d compiling steps in epoch 1, want 0 (the graphs of seed 3)", name, e.CompileSteps)
		}
		c := cfg
		c.Seed = 4
		c.Model.Resizer = name == "resizer"
		fresh, err := Fit(context.Background(), b, c, tinyData(), Options{Dir: filepath.Join(t.TempDir(), "fresh")})
		if err != nil {
			t.Fatal(err)
		}
		for i := range fresh.Epochs {
			f, r := fresh.Epochs[i], reused.Epochs[i]
			if !backendtest.Close(b, r.Loss, f.Loss) || !backendtest.Close(b, r.Accuracy, f.Accuracy) ||
				!backendtest.Close(b, r.ValLoss, f.ValLoss) || !backendtest.Close(b, r.ValAccuracy, f.ValAccuracy) {
				t.Errorf("%s, seed 4, epoch %d: reused graphs loss %v acc %v val %v/%v; a fresh run %v %v %v/%v",
					name, i+1, r.Loss, r.Accuracy, r.ValLoss, r.ValAccuracy, f.Loss, f.Accuracy, f.ValLoss, f.ValAccuracy)
			}
		}
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

// TestLoadComparisonErrors: a folder without a comparison, or a JSON file that is not one, is refused
// naming the file.
func TestLoadComparisonErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadComparison(dir); err == nil || !strings.Contains(err.Error(), "comparison.json") || !strings.Contains(err.Error(), "run compare first") {
		t.Errorf("missing file: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "comparison.json"), []byte(`{"epochs": 3}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadComparison(dir); err == nil || !strings.Contains(err.Error(), "not a comparison") {
		t.Errorf("no rows: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "comparison.json"), []byte(`{"rows": [`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadComparison(dir); err == nil || !strings.Contains(err.Error(), "comparison.json") {
		t.Errorf("truncated: %v", err)
	}
}

// TestCommittedGPUComparison: the GPU comparison committed under docs/gpu-runs (shown by the notebook's
// last section and docs/RESULTS.md) loads, and its table agrees with the histories beside it.
func TestCommittedGPUComparison(t *testing.T) {
	dir := filepath.Join("..", "docs", "gpu-runs", "2026-11-26-h100", "compare")
	cmp, err := LoadComparison(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cmp.Rows) != 2 || len(cmp.Seeds) != 3 || cmp.Config.Epochs != 5 || cmp.Config.BatchSize != 64 {
		t.Fatalf("comparison: %d rows, seeds %v, %d epochs, batch %d", len(cmp.Rows), cmp.Seeds, cmp.Config.Epochs, cmp.Config.BatchSize)
	}
	for _, row := range cmp.Rows {
		for i, seed := range cmp.Seeds {
			h, err := LoadHistory(filepath.Join(dir, fmt.Sprintf("%s-seed%d", row.Name, seed)))
			if err != nil {
				t.Fatal(err)
			}
			if len(h.Epochs) != cmp.Config.Epochs || h.Last().ValAccuracy != row.FinalValAccuracy[i] {
				t.Errorf("%s seed %d: %d epochs, final val accuracy %v; the table says %v", row.Name, seed, len(h.Epochs), h.Last().ValAccuracy, row.FinalValAccuracy[i])
			}
		}
	}
}

// TestWarmStart: the warm-start experiment's four rows, in order; its low-resolution row is the
// fine-tuned network evaluated through a plain resize to the target size; the warm-started runs start
// from the fine-tuned network (the plain resize's first epoch goes on where fine-tuning ended);
// resuming a finished experiment trains nothing and gives the same table.
func TestWarmStart(t *testing.T) {
	b := testBackend(t)
	cfg := tinyConfig() // 40x40 input, 32x32 target
	cfg.Epochs = 2
	dir := t.TempDir()
	cmp, err := WarmStart(context.Background(), b, cfg, tinyData(), []int64{3}, WarmStartOptions{Options: Options{Dir: dir}, FinetuneEpochs: 3})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range cmp.Rows {
		names = append(names, r.Name)
		if len(r.FinalValAccuracy) != 1 || r.Params == 0 {
			t.Errorf("row %+v", r)
		}
	}
	if strings.Join(names, ",") != "finetune,lowres,baseline,resizer" {
		t.Fatalf("rows %v", names)
	}
	finetune, err := LoadHistory(filepath.Join(dir, "finetune-seed3"))
	if err != nil || len(finetune.Epochs) != 3 || finetune.Config.Model.TargetHeight != 40 || finetune.Config.Model.Resizer {
		t.Fatalf("finetune run: %v %+v", err, finetune)
	}
	low := cfg
	low.Model.Resizer = false
	wantLoss, wantAcc := independentEval(t, b, low, filepath.Join(dir, "finetune-seed3", "checkpoints", "epoch-0003"), tinyData().Val)
	if got := cmp.Rows[1].FinalValAccuracy[0]; math.Abs(got-wantAcc) > 1e-9 {
		t.Errorf("low-resolution accuracy %v, an independent evaluation at 32x32 %v (loss %v)", got, wantAcc, wantLoss)
	}
	fresh, err := Fit(context.Background(), b, low, tinyData(), Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"baseline", "resizer"} {
		h, err := LoadHistory(filepath.Join(dir, name+"-seed3"))
		if err != nil {
			t.Fatal(err)
		}
		if h.Config.WarmStart != filepath.Join(dir, "finetune-seed3") || len(h.Epochs) != 2 || h.Config.Model.TargetHeight != 32 {
			t.Errorf("%s run: warm start %q, %d epochs, target %d", name, h.Config.WarmStart, len(h.Epochs), h.Config.Model.TargetHeight)
		}
		t.Logf("%s: warm-started epoch 1 loss %.3f, fresh %.3f, fine-tuned network's last %.3f", name, h.Epochs[0].Loss, fresh.Epochs[0].Loss, finetune.Last().Loss)
		// The plain resize feeds the fine-tuned network what it knows, 8 pixels smaller: its first epoch
		// goes on where fine-tuning ended (0.210 after 0.208, against 0.31-0.45 from scratch, on the go
		// and ONNX Runtime backends). The resizer's random first output perturbs that input (0.21 on
		// one backend, 0.62 on another), so its loss says nothing; it starts through the same code.
		if name == "baseline" && h.Epochs[0].Loss > (finetune.Last().Loss+fresh.Epochs[0].Loss)/2 {
			t.Errorf("%s: epoch 1 loss %.3f warm-started, %.3f from scratch, %.3f at the end of fine-tuning: the fine-tuned network was not used",
				name, h.Epochs[0].Loss, fresh.Epochs[0].Loss, finetune.Last().Loss)
		}
	}
	again, err := WarmStart(context.Background(), b, cfg, tinyData(), []int64{3}, WarmStartOptions{Options: Options{Dir: dir, Resume: true}, FinetuneEpochs: 3})
	if err != nil || again.Markdown() != cmp.Markdown() {
		t.Errorf("resumed finished experiment: %v\n%s\nwant\n%s", err, again.Markdown(), cmp.Markdown())
	}
	if _, err := WarmStart(context.Background(), b, cfg, tinyData(), []int64{3}, WarmStartOptions{Options: Options{Dir: dir}, FinetuneEpochs: 3}); !errors.Is(err, ErrCheckpointExists) ||
		!strings.Contains(err.Error(), "holds a finished warm-start experiment (3 epochs of fine-tuning") ||
		!strings.Contains(err.Error(), "comparison.md") || !strings.Contains(err.Error(), "-resume and a larger -epochs or -finetune-epochs") {
		t.Errorf("a second experiment into the same folder without resume: %v", err)
	}
}

func TestWarmStartErrors(t *testing.T) {
	b := testBackend(t)
	cfg := tinyConfig()
	cfg.Model.TargetHeight, cfg.Model.TargetWidth = 40, 40
	if _, err := WarmStart(context.Background(), b, cfg, tinyData(), nil, WarmStartOptions{Options: Options{Dir: t.TempDir()}}); err == nil || !strings.Contains(err.Error(), "must be smaller than the input") {
		t.Errorf("target = input: %v", err)
	}
	cfg = tinyConfig()
	cfg.Pretrained, cfg.WarmStart = "a.pth", "runs/x"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("pretrained and warm start: %v", err)
	}
	cfg.Pretrained = ""
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "checkpoints"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.WarmStart = dir
	if _, err := Fit(context.Background(), b, cfg, tinyData(), Options{Dir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "no checkpoint yet") {
		t.Errorf("warm start from a run without checkpoints: %v", err)
	}
}
