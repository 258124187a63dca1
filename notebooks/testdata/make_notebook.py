#!/usr/bin/env python3
"""Writes notebooks/learnable_resizer.ipynb (cells only, no outputs): python3 make_notebook.py ../learnable_resizer.ipynb
Then execute it to store outputs as a reader does, in the classic Notebook in Chromium (Cell > Run All, File > Save):
LEARNRESIZE_DATA=../shared/data/petimages-dev scripts/notebook_browser.sh (LEARNRESIZE_TINY=1 LEARNRESIZE_EPOCHS=30; it
also exports docs/learnable_resizer.html)."""
import json, sys

def md(text): return {"cell_type": "markdown", "metadata": {}, "source": text.strip("\n").splitlines(keepends=True)}
def code(text): return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": text.strip("\n").splitlines(keepends=True)}

cells = [
md("""
# Learning to Resize Images for Computer Vision Tasks, in Go

**Port of:** the keras.io example by Sayak Paul (2021), after Talebi & Milanfar,
[*Learning to Resize Images for Computer Vision Tasks*](https://arxiv.org/abs/2103.09950).<br>
**Runs on:** [GoMLX](https://github.com/gomlx/gomlx) with the [GoNB](https://github.com/janpfeifer/gonb) kernel,
on XLA (CUDA) when an NVIDIA GPU is present, else on ONNX Runtime on the CPU when its library is installed
(`scripts/install_onnxruntime.sh`, or the Docker image), else on the pure-Go backend.<br>
**Description:** how a small learnable resizer placed in front of an image classifier can beat a fixed
bilinear resize.

This notebook follows the Keras tutorial section by section. Every cell only *calls* the `learnresize`
library (the same code the `learnresize` command runs): the model code lives in the packages
`resizer`, `densenet`, `models`, `datasets` and `training`, not in the cells.

> **About the outputs saved in this notebook.** Unless the first output below says otherwise, they come from a
> *small CPU run* (ONNX Runtime on a 2-core machine, 64x64 → 32x32 images, a reduced DenseNet with
> blocks (2, 2) and growth 8, 30 epochs of 320 training and 160 validation images from the 5,000 development
> photos, 600 steps), run with `LEARNRESIZE_TINY=1 LEARNRESIZE_EPOCHS=30` in the classic Notebook in Chromium
> (Cell > Run All). The tutorial's own
> settings (300 → 150, DenseNet-121, 5 epochs) want a GPU: on two CPU cores with ONNX Runtime one training
> step of 64 images takes about 21 s, so the whole comparison takes about 8 hours (the pure-Go backend
> takes about 20 s for 8 images: days). The data cell prints the backend and device every cell runs on.
"""),
md("""
## Introduction

Vision models are trained on images of a fixed size, so the input is almost always shrunk first, with a fixed
method such as bilinear interpolation. That step ignores the task: it keeps what looks right to a person and
may throw away what the classifier needs. Talebi & Milanfar propose to *learn* the resizing jointly with the
classifier: a few convolutions, a bottleneck resize and residual blocks produce an image of the target size
that is whatever helps the classifier most, even if it no longer looks natural.

Here we reproduce the tutorial's experiment: DenseNet-121 classifying cats vs dogs, fed 150x150 images made
from 300x300 ones, once through the learnable resizer and once through a plain bilinear resize, both starting
from the same initial DenseNet weights.
"""),
md("""
## Setup

The first cell makes the notebook use the `learnresize` module it lives in: a Go workspace, and the `replace`
rule that `go get` needs (what GoNB's `%goworkfix` adds, here without printing the folder's path). The second
cell imports the packages.

Without a GPU, install ONNX Runtime's CPU library once before starting Jupyter (it is already in the Docker
image): `scripts/install_onnxruntime.sh` from the repository root puts the pinned library, taken from npm's
`onnxruntime-node` package, in `~/.local/lib/onnxruntime`, where the backend finds it. It makes the CPU
10-30x faster than the pure-Go backend. `GOMLX_BACKEND=go` forces the pure-Go backend.
"""),
code("""
!*rm -f go.work && go work init && go work use . "${GONB_DIR}/.."
!*go mod edit -replace "github.com/learnresize/learnresize=${GONB_DIR}/.."
"""),
code("""
import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/learnresize/learnresize/backend"
	"github.com/learnresize/learnresize/models"
	"github.com/learnresize/learnresize/plots"
	"github.com/learnresize/learnresize/resizer"
	"github.com/learnresize/learnresize/training"
)

// must stops the cell on an error (GoNB shows the panic in red).
func must(err error) {
	if err != nil {
		panic(err)
	}
}
"""),
md("""
## Define hyperparameters

`training.Default()` holds the tutorial's values: `INP_SIZE` (300, 300), `TARGET_SIZE` (150, 150),
`INTERPOLATION` "bilinear", `BATCH_SIZE` 64, `EPOCHS` 5, the splits `train[:40%]` and `train[40%:50%]`,
SGD with learning rate 0.01 and label smoothing 0.1. Two environment variables adapt the notebook without
editing it: `LEARNRESIZE_TINY=1` shrinks everything so it runs in minutes on a CPU (`LEARNRESIZE_EPOCHS`
overrides the number of epochs), and `LEARNRESIZE_DATA`
points at local images (a cats_vs_dogs zip, a `PetImages/` folder, or any folder with one sub-folder per
class); without it cats_vs_dogs is downloaded once.
"""),
code("""
// RUNS holds this notebook's checkpoints and histories.
var RUNS = "runs/notebook"

func config() training.Config {
	cfg := training.Default()
	if os.Getenv("LEARNRESIZE_TINY") != "" {
		cfg = training.Small() // 64 -> 32, a tiny DenseNet, 320/160 images: minutes on a CPU
	}
	if e, err := strconv.Atoi(os.Getenv("LEARNRESIZE_EPOCHS")); err == nil && e > 0 {
		cfg.Epochs = e
	}
	return cfg
}

// BACKEND describes the backend the cell runs on (recorded in histories and tables).
var BACKEND string

// start returns the backend this cell runs on (backend.Must picks GOMLX_BACKEND, else CUDA
// when present, else ONNX Runtime when its library is installed, else pure Go); the data
// cell prints it.
func start() backend.Backend {
	b, info := backend.Must()
	BACKEND = hidePaths(info.String())
	return b
}

// cellLog is where a cell's training log goes: one block redrawn in place (the progress bar).
func cellLog() io.Writer { return pathHider{plots.CellLog()} }

// setup is how the cells that train or show a model begin: the backend, the configuration and the
// data (the caller closes it).
func setup() (backend.Backend, training.Config, *training.OpenedData) {
	b := start()
	cfg := config()
	data, err := training.OpenData(context.Background(), cfg,
		training.DataOptions{Path: os.Getenv("LEARNRESIZE_DATA"), Progress: cellLog()})
	must(err)
	return b, cfg, data
}

// hidePaths shortens the absolute paths of this machine (libraries, caches, data) to their last
// element: the saved outputs must read the same wherever the notebook ran.
func hidePaths(s string) string { return absPath.ReplaceAllString(s, "$1.../$2") }

var absPath = regexp.MustCompile(`(^|[\s\[(,=:"'])/(?:[^\s/,\])]+/)+([^\s/,\])]+)`)

type pathHider struct{ w io.Writer }

func (h pathHider) Write(p []byte) (int, error) {
	_, err := io.WriteString(h.w, hidePaths(string(p)))
	return len(p), err
}

%%
cfg := config()
m := cfg.Model
fmt.Printf("INP_SIZE=(%d, %d) TARGET_SIZE=(%d, %d) INTERPOLATION=%s\\n",
	m.InputHeight, m.InputWidth, m.TargetHeight, m.TargetWidth, m.Interpolation)
fmt.Printf("BATCH_SIZE=%d EPOCHS=%d\\n", cfg.BatchSize, cfg.Epochs)
fmt.Printf("splits %s / %s, learning rate %g, label smoothing %g, seed %d\\n",
	cfg.TrainSplit, cfg.ValSplit, cfg.LearningRate, cfg.LabelSmoothing, cfg.Seed)
"""),
md("""
## Load and prepare the dataset

TFDS serves cats_vs_dogs from Microsoft's zip after dropping the files without a JFIF header (23,262 of
25,000 remain); `train[:40%]` gives 9,305 training images and `train[40%:50%]` 2,326 validation images.
`training.OpenData` does the same, decodes every image once, resizes it to `INP_SIZE` with `tf.image.resize`'s
bilinear weights, rounds to 8 bits (within half a level of the float64 result) and keeps that in an on-disk cache.
Training batches are shuffled with a buffer of `BATCH_SIZE*100` images; labels are one-hot; pixels stay 8-bit
until they reach the device.
"""),
code("""
%%
_, _, data := setup()
defer data.Close()
fmt.Println(BACKEND) // the same in every cell below
fmt.Printf("%s: %d training and %d validation images, classes %v\\n",
	filepath.Base(data.Source), data.NumTrain, data.NumVal, data.Classes)
fmt.Println("skipped:", data.Skipped)
"""),
md("""
## Define the learnable resizer utilities

The resizer (package `resizer`) computes a naive resize of the input and adds to it what a small network
learns: a 7x7 and a 1x1 convolution with LeakyReLU(0.2) and batch norm, a *bottleneck* resize of these
features to the target size, residual blocks (two 3x3 convolutions with batch norm), a 3x3 projection with a
skip connection from the bottleneck, and a final 7x7 convolution back to 3 channels. With 16 filters and one
residual block it has 12,163 parameters, as in Keras. Its resizes are a differentiable `tf.image.resize`
(within 1e-5 in float32 of references written from TensorFlow's kernels, `resizer/resize_test.go`), written
as dense matrix products on XLA and as strided slices on the CPU backends.
"""),
code("""
%%
b := start()
cfg := config()
rz, err := resizer.NewModel(b, cfg.Model.ResizerConfig(), cfg.Seed)
must(err)
total, trainable := rz.NumParams()
fmt.Printf("learnable resizer %s: %d parameters (%d trainable)\\n", rz.Config(), total, trainable)
"""),
md("""
## Visualize the outputs of the learnable resizing module

Before training, the resizer's output is close to the naive resize plus noise from its random convolutions.
Its values are not confined to [0, 1]. The figure maps them to the screen's range in one way for all its
panels, chosen from the output itself (`plots.Auto`: the range of almost all values, never narrower
than [0, 1]), says which in its caption and in each title how many values were still clipped. `learnresize
resize` and `compare`'s `resizer_grid.png` use the same mapping.
"""),
code("""
%%
b, cfg, data := setup()
defer data.Close()
rz, err := resizer.NewModel(b, cfg.Model.ResizerConfig(), cfg.Seed)
must(err)
images, err := data.ValImages(6)
must(err)
pairs, mapping, err := plots.ResizerPairs(rz, images, plots.Auto)
must(err)
fig, err := plots.ImageGrid(pairs, "untrained resizer; output "+mapping.String())
must(err)
must(plots.Show(fig))
"""),
md("""
## Model building utility

The classifier is `keras.applications.DenseNet121(weights=None, classes=2)` rebuilt layer for layer (package
`densenet`), preceded by `Rescaling(1/255)` and the resizer (package `models`). The summary counts
parameters as Keras does: 7,051,717 in the tutorial's configuration.
"""),
code("""
%%
start()
s, err := models.Summary(config().Model, false)
must(err)
fmt.Print(s)
"""),
md("""
## Compile and train our model with learnable resizer

`training.Fit` is Keras' `model.fit`: categorical cross-entropy with label smoothing 0.1, plain SGD with
learning rate 0.01, accuracy, validation after each epoch with the batch-norm moving statistics. It prints a
progress bar (here one line redrawn in place, `plots.CellLog()`), saves a checkpoint after every epoch,
and resumes an interrupted run (re-running this cell continues where it stopped).

Before it compiles anything, `Fit` prints what the training step needs at this batch on this backend
(`Memory: the training step at batch 64 needs about ... GB of memory on ONNX Runtime ...`). On a CPU the
tutorial's batch 64 needs about 18 GB with ONNX Runtime; where the machine has less available, `Fit`
recomputes the activations in the backward pass instead of keeping them (about 13 GB, 5-15% slower) and
says so, and where even that does not fit it stops with an error naming the largest batch that fits
(set `cfg.BatchSize = 32` in `config()` then). When the epoch's last, partial batch needs a second graph
that does not fit beside the first, `Fit` releases the first and says so.
"""),
code("""
%%
b, cfg, data := setup()
defer data.Close()
dir := filepath.Join(RUNS, fmt.Sprintf("resizer-seed%d", cfg.Seed))
opt := training.Options{Dir: dir, Resume: true, Log: cellLog(), Interactive: true,
	BackendInfo: BACKEND}
hist, err := training.Fit(context.Background(), b, cfg, data.Data, opt)
must(err)
majority, err := data.ValMajority() // the dotted line: always answering the most frequent class
must(err)
series := plots.Series{Name: "learnable resizer", History: hist, ValMajority: majority}
fig, err := plots.Curves([]plots.Series{series})
must(err)
must(plots.Show(fig))
"""),
md("""
## Visualize the outputs of the trained visual resizer

After training, the resizer's output drifts outside the range of an image: it is tuned for the classifier,
not for our eyes. The tutorial, after long training, divides it by 10 before clipping
(`plots.Mapping{Divide: 10}` here); after a short run that leaves every panel nearly black, so the figure
maps the range the output actually spans to [0, 1] (`plots.Auto`, named in the caption). The artefacts
are expected: the paper shows the same.
"""),
code("""
%%
b, cfg, data := setup()
defer data.Close()
run := filepath.Join(RUNS, fmt.Sprintf("resizer-seed%d", cfg.Seed))
ckpt, err := training.LatestCheckpoint(run)
must(err)
rz, err := resizer.Load(b, ckpt)
must(err)
images, err := data.ValImages(6)
must(err)
// plots.Mapping{Divide: 10} is the tutorial's mapping
pairs, mapping, err := plots.ResizerPairs(rz, images, plots.Auto)
must(err)
fig, err := plots.ImageGrid(pairs, "trained resizer; output "+mapping.String())
must(err)
must(plots.Show(fig))
"""),
md("""
## With and without the learnable resizer

The tutorial's table compares the model above with the same DenseNet fed a plain bilinear resize, both
trained from the same initial weights (same seed). `training.Compare` reuses the run above and trains the
baseline. Accuracy from a single short run is noisy by several points; `learnresize compare -seeds 3`
reports mean and spread over seeds.
"""),
code("""
%%
b, cfg, data := setup()
defer data.Close()
opt := training.CompareOptions{Dir: RUNS, Resume: true, Log: cellLog(), Interactive: true,
	BackendInfo: BACKEND}
cmp, err := training.Compare(context.Background(), b, cfg, data.Data, []int64{cfg.Seed}, opt)
must(err)
plots.ShowMarkdown(cmp.Markdown())
majority, err := data.ValMajority()
must(err)
var series []plots.Series
for _, row := range cmp.Rows {
	run := filepath.Join(RUNS, fmt.Sprintf("%s-seed%d", row.Name, cfg.Seed))
	h, err := training.LoadHistory(run)
	must(err)
	series = append(series, plots.Series{Name: row.Model, History: h, ValMajority: majority})
}
curves, err := plots.Curves(series)
must(err)
must(plots.Show(curves))
bars, err := plots.ComparisonBars(cmp)
must(err)
must(plots.Show(bars))
"""),
md("""
## Beyond the tutorial: the authors' warm-start experiment

The tutorial ends by describing the experiment the paper's authors ran to show that the resizer is more
than a few extra layers: take a network trained at one resolution, measure it on images resized to a
lower one, then put the learnable resizer in front of it, warm-start training at the lower resolution and
measure again. `training.WarmStart` (the command: `learnresize warmstart`) runs it per seed: (1) the
backbone fine-tuned at `INP_SIZE`, fed unresized; (2) those weights evaluated at `TARGET_SIZE` behind a
plain resize, with no training there; (3) the plain resize and the learnable resizer to `TARGET_SIZE`, each
in front of a copy of (1)'s network, trained for `EPOCHS` (the plain resize is the control for the extra
training). `LEARNRESIZE_PRETRAINED` names torchvision weights for the backbone (e.g.
`densenet121-a639ec97.pth`, with `-inp 224 -target 112` the authors' setting); without it, stage (1)
trains from scratch, as here. This notebook's run is sized for a CPU and says little; the table's layout
is what to look at.
"""),
code("""
%%
b, cfg, data := setup()
defer data.Close()
if cfg.Pretrained = os.Getenv("LEARNRESIZE_PRETRAINED"); cfg.Pretrained != "" {
	// torchvision's weights were trained on normalised images
	cfg.Model.Normalize = models.NormalizeImageNet
}
opt := training.Options{Dir: filepath.Join(RUNS, "warmstart"), Resume: true,
	Log: cellLog(), Interactive: true, BackendInfo: BACKEND}
cmp, err := training.WarmStart(context.Background(), b, cfg, data.Data, []int64{cfg.Seed},
	training.WarmStartOptions{Options: opt})
must(err)
cmp.Backend = hidePaths(cmp.Backend)
plots.ShowMarkdown(cmp.Markdown())
bars, err := plots.ComparisonBars(cmp)
must(err)
must(plots.Show(bars))
"""),
md("""
## Notes

* The tutorial reports 67.67% top-1 accuracy with the resizer and 60.19% without, after 10 epochs on 90% of
  the data. With 5 epochs on 40% and a single seed, differences of a few points are within the run-to-run
  noise; compare several seeds before concluding.
* The learnable resizer is not tied to DenseNet or to this dataset: `resizer.New(scope, images)` is a layer
  for any GoMLX model, and `resizer.Load` + `ResizeImage` apply a trained one to Go `image.Image`s.
* Differences from the Keras code are listed in the repository's README (the `filters` argument honoured
  in the residual blocks too, logits with the softmax inside the loss).
* **Why validation accuracy can sit at 50% in short runs.** Batch normalisation (momentum 0.99, as Keras)
  validates with moving averages of the batch statistics, which need a few hundred steps to catch up with the
  network. In the short CPU run saved here, training accuracy climbs while validation stays at the majority
  class for the first epochs: the same weights classify the validation images correctly with batch statistics, but the moving
  averages still lag and shift every logit the same way. The tutorial's 5 epochs of 146 steps leave them far
  behind; Keras shows the same behaviour on runs this short.
"""),
md("""
## The tutorial's settings on a GPU: 3 seeds, beside PyTorch (committed results)

The run above is this notebook's own, sized for a CPU. The comparison at the tutorial's settings (300 → 150,
DenseNet-121, batch 64, 5 epochs, SGD 0.01) ran on one **NVIDIA H100 80GB HBM3** on 2026-11-26 (driver
580.159.04, CUDA 13.0; Go 1.27.3, GoMLX v0.28.16, XLA through the JAX 0.11.2 CUDA plugin, float32 with
TF32), on the 5,000 development photos split 4,000 / 1,000, with 3 seeds:
`learnresize compare -train-split "train[:80%]" -val-split "train[80%:]" -seeds 3 -epochs 5 -batch 64`.
Its histories and table are committed under `docs/gpu-runs/2026-11-26-h100/compare/`; the cell below loads
them and draws them with the same code as above (no training). In the same call, on the same GPU and the
same split, the independent PyTorch implementation (`torch_accuracy.py`, PyTorch 2.11, seeds 0-2) gave:

| final validation accuracy, 3 seeds | learnable resizer | bilinear |
|---|---|---|
| ours (GoMLX, XLA) | 55.3% ± 2.3 | 57.9% ± 0.6 |
| PyTorch | 52.1% ± 1.4 | 54.4% ± 2.6 |
"""),
code("""
%%
gpu := filepath.Join("..", "docs", "gpu-runs", "2026-11-26-h100", "compare")
cmp, err := training.LoadComparison(gpu)
must(err)
cmp.Backend = hidePaths(cmp.Backend) // the GPU machine's plugin path
plots.ShowMarkdown(cmp.Markdown())
// 525 of the 1,000 validation photos are cats: always answering "cat" scores 52.5%
// (docs/RESULTS.md).
const majority = 0.525
var series []plots.Series
for _, row := range cmp.Rows {
	for _, seed := range cmp.Seeds {
		run := filepath.Join(gpu, fmt.Sprintf("%s-seed%d", row.Name, seed))
		h, err := training.LoadHistory(run)
		must(err)
		name := fmt.Sprintf("%s (%d seeds)", row.Model, len(cmp.Seeds))
		series = append(series, plots.Series{Name: name, History: h, ValMajority: majority})
	}
}
curves, err := plots.Curves(series)
must(err)
must(plots.Show(curves))
bars, err := plots.ComparisonBars(cmp)
must(err)
must(plots.Show(bars))
"""),
md("""
**What it shows.** Both frameworks agree: training accuracy climbs at the same pace in both, and in both the
bilinear model ends 2-2.5 points ahead of the resizer model, within about one standard deviation. At this
scale (315 steps on 4,000 photos) validation accuracy stays near the majority class for both models, so the
resizer's benefit that the tutorial reports (67.67% against 60.19%, after 10 epochs on 90% of the 23,262
photos, ten times the steps) is neither reproduced nor refuted here: it needs more data or more steps than
these machines hold. The tables, curves and timings are in the repository's `docs/RESULTS.md`.
"""),
]

# Code indented with spaces: the classic Notebook draws every tab as an arrow.
import re
for c in cells:
    if c["cell_type"] == "code":
        c["source"] = [re.sub(r"^\t+", lambda m: "    " * len(m.group(0)), line) for line in c["source"]]
# The training cells' logs and results stay in full view (Jupyter folds long outputs into a scroll box).
for c in cells:
    if c["cell_type"] == "code" and any(f in "".join(c["source"]) for f in ("training.Fit(", "training.Compare(", "training.WarmStart(")):
        c["metadata"]["scrolled"] = False
nb = {"cells": cells, "metadata": {"kernelspec": {"display_name": "Go (gonb)", "language": "go", "name": "gonb"},
      "language_info": {"codemirror_mode": "", "file_extension": ".go", "mimetype": "", "name": "go", "nbconvert_exporter": "", "pygments_lexer": "", "version": "go1.27.3"}},
      "nbformat": 4, "nbformat_minor": 5}
for i, c in enumerate(nb["cells"]):
    c["id"] = f"cell-{i:02d}"
json.dump(nb, open(sys.argv[1], "w"), indent=1)
