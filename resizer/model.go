package resizer

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/checkpoint"
	"github.com/learnresize/learnresize/internal/rundir"
)

// Model is a learnable resizer with its weights, for inference from Go programs: load a trained
// resizer from a GoMLX checkpoint directory (Load) and resize images of any size (ResizeImage,
// ResizeTensor). It is safe for concurrent use.
type Model struct {
	backend        compute.Backend
	store          *model.Store
	cfg            Config
	trainH, trainW int // the training input size the checkpoint records (0: none)
	mu             sync.Mutex
	execs          map[[2]int]*model.Exec // by the size images are first brought to ({0, 0}: none)
}

// Channels is the number of image channels the resizer models of this project take (RGB).
const Channels = 3

// NewModel creates a resizer with freshly initialised weights (seeded: the same seed gives the same
// weights), for example to save a starting checkpoint or to look at an untrained resizer.
func NewModel(b compute.Backend, cfg Config, seed int64) (*Model, error) {
	if b == nil {
		return nil, errors.New("resizer.NewModel: nil backend")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("resizer.NewModel: %w", err)
	}
	store := model.NewStore()
	store.SetParam(model.ParamInitialSeed, seed)
	m := &Model{backend: b, store: store, cfg: cfg}
	if err := m.initVariables(); err != nil {
		return nil, err
	}
	return m, nil
}

// Load reads a trained resizer from what a user has: a training run's folder (learnresize train
// -out DIR, or one run of compare, e.g. runs/compare/resizer-seed42: its latest checkpoint is used)
// or a GoMLX checkpoint directory (written by Model.Save, or one epoch of a run). Of a full tutorial
// model only the variables under learnable_resizer/ are used. The configuration comes from the
// hyperparameters recorded in the checkpoint; every variable the configuration needs must be present
// with the right shape.
func Load(b compute.Backend, dir string) (*Model, error) {
	if b == nil {
		return nil, errors.New("resizer.Load: nil backend")
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("resizer.Load: checkpoint directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("resizer.Load: %q is not a directory", dir)
	}
	if latest, err := rundir.Latest(dir); err != nil {
		return nil, fmt.Errorf("resizer.Load(%q): %w", dir, err)
	} else if latest != "" {
		dir = latest
	}
	store := model.NewStore()
	if _, err := checkpoint.Load(store).Dir(dir).Immediate().Done(); err != nil {
		return nil, fmt.Errorf("resizer.Load(%q): %w", dir, err)
	}
	cfg, err := configFromScope(store.Scope("/" + ScopeName))
	if err != nil {
		for v := range store.IterVariables() {
			if strings.HasPrefix(v.Path(), "/"+ScopeName+"/") {
				return nil, fmt.Errorf("resizer.Load(%q): no learnable resizer configuration in the checkpoint: %w", dir, err)
			}
		}
		return nil, fmt.Errorf("resizer.Load(%q): this checkpoint holds no learnable resizer (a run of the plain-resize baseline?): "+
			"load a run trained with the resizer", dir)
	}
	if err := checkVariables(b, store, cfg); err != nil {
		return nil, fmt.Errorf("resizer.Load(%q): %w", dir, err)
	}
	m := &Model{backend: b, store: store, cfg: cfg}
	rs := store.Scope("/" + ScopeName)
	if h, ok := rs.GetParam(ParamTrainingInputHeight); ok {
		w, _ := rs.GetParam(ParamTrainingInputWidth)
		m.trainH, _ = h.(int)
		m.trainW, _ = w.(int)
		if m.trainH <= 0 || m.trainW <= 0 {
			m.trainH, m.trainW = 0, 0
		}
	}
	if m.trainH == 0 { // runs from before the resizer recorded it: the training configuration beside it
		m.trainH, m.trainW = rundir.InputSize(dir)
	}
	// Build the graph once: checkpoints do not record which variables are trainable, the layers do.
	if err := m.initVariables(); err != nil {
		return nil, fmt.Errorf("resizer.Load(%q): %w", dir, err)
	}
	return m, nil
}

// expectedVariables builds the resizer once in a scratch store and lists its variables' shapes.
func expectedVariables(b compute.Backend, cfg Config) (map[string]shapes.Shape, error) {
	m := &Model{backend: b, store: model.NewStore(), cfg: cfg}
	if err := m.initVariables(); err != nil {
		return nil, err
	}
	out := map[string]shapes.Shape{}
	for v := range m.store.IterVariables() {
		if strings.HasPrefix(v.Path(), "/"+ScopeName+"/") {
			out[v.Path()] = v.Shape()
		}
	}
	return out, nil
}

// initVariables runs the resizer once on a tiny image so that every variable exists.
func (m *Model) initVariables() error {
	_, err := m.ResizeTensor(tensors.FromShape(shapes.Make(dtypes.Float32, 1, 8, 8, Channels)))
	return err
}

// Save writes the resizer's variables and configuration as a GoMLX checkpoint in dir.
func (m *Model) Save(dir string) error {
	h, err := checkpoint.Build(m.store).Dir(dir).Done()
	if err != nil {
		return fmt.Errorf("resizer: save to %q: %w", dir, err)
	}
	if err := h.Save(); err != nil {
		return fmt.Errorf("resizer: save to %q: %w", dir, err)
	}
	return nil
}

// Config returns the resizer's configuration.
func (m *Model) Config() Config { return m.cfg }

// Store gives access to the variables (for inspection or to copy them into a bigger model).
func (m *Model) Store() *model.Store { return m.store }

// ResizeTensor runs the resizer in inference mode (batch norm with its moving statistics) on float32
// images shaped [batch, height, width, 3] or [height, width, 3], values as the model was trained on
// (pixels / 255 in the tutorial). It returns [batch, target height, target width, 3] (or without the
// batch axis if the input had none). Values are not clipped: the resizer's output is not confined
// to [0, 1].
func (m *Model) ResizeTensor(images *tensors.Tensor) (out *tensors.Tensor, err error) {
	return m.resizeTensor(images, 0, 0)
}

// execFor returns (building it once) the inference executor that first resizes its input to
// preH x preW (none when either is not positive); m.mu must be held.
func (m *Model) execFor(preH, preW int) (*model.Exec, error) {
	key := [2]int{max(preH, 0), max(preW, 0)}
	if key[0] == 0 || key[1] == 0 {
		key = [2]int{}
	}
	if exec := m.execs[key]; exec != nil {
		return exec, nil
	}
	cfg := m.cfg
	exec, err := model.NewExec(m.backend, m.store, func(scope *model.Scope, x *Node) *Node {
		if key[0] > 0 {
			x = Resize(x, key[0], key[1], Bilinear)
		}
		return New(scope, x).Target(cfg.TargetHeight, cfg.TargetWidth).Filters(cfg.Filters).
			ResBlocks(cfg.ResBlocks).Interpolation(cfg.Interpolation).Done()
	})
	if err != nil {
		return nil, fmt.Errorf("resizer: %w", err)
	}
	if m.execs == nil {
		m.execs = map[[2]int]*model.Exec{}
	}
	m.execs[key] = exec
	return exec, nil
}

// checkVariables reports the variables under learnable_resizer/ in store that a resizer of cfg does
// not have, lacks, or has with another shape (the first five).
func checkVariables(b compute.Backend, store *model.Store, cfg Config) error {
	want, err := expectedVariables(b, cfg)
	if err != nil {
		return err
	}
	prefix := "/" + ScopeName + "/"
	got := map[string]shapes.Shape{}
	for v := range store.IterVariables() {
		if strings.HasPrefix(v.Path(), prefix) {
			got[v.Path()] = v.Shape()
		}
	}
	var problems []string
	for _, path := range sortedKeys(want) {
		s, ok := got[path]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("missing variable %s %s", path, want[path]))
		case !s.Equal(want[path]):
			problems = append(problems, fmt.Sprintf("variable %s has shape %s, the recorded configuration (%s) needs %s", path, s, cfg, want[path]))
		}
	}
	for _, path := range sortedKeys(got) {
		if _, ok := want[path]; !ok {
			problems = append(problems, fmt.Sprintf("unexpected variable %s %s", path, got[path]))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	if len(problems) > 5 {
		problems = append(problems[:5], fmt.Sprintf("... and %d more", len(problems)-5))
	}
	return fmt.Errorf("checkpoint does not match a resizer of %s: %s", cfg, strings.Join(problems, "; "))
}

// TrainingInput is the size of the images the resizer was trained on, as its checkpoint records it:
// in the resizer's hyperparameters (runs since 2026-11-26) or, for older runs, in the training
// configuration beside it (training.json). 0, 0 when neither does: a Model from NewModel, or one saved
// by Model.Save without TrainingInput.
func (m *Model) TrainingInput() (height, width int) { return m.trainH, m.trainW }

// resizeTensor is ResizeTensor, the images first resized (bilinear, tf.image.resize) to preH x preW
// when those are positive.
func (m *Model) resizeTensor(images *tensors.Tensor, preH, preW int) (out *tensors.Tensor, err error) {
	if images == nil {
		return nil, errors.New("resizer: nil images tensor")
	}
	s := images.Shape()
	noBatch := s.Rank() == 3
	if s.Rank() != 4 && !noBatch {
		return nil, fmt.Errorf("resizer: images must be [batch, height, width, %d] or [height, width, %d], got %s", Channels, Channels, s)
	}
	if s.DType != dtypes.Float32 {
		return nil, fmt.Errorf("resizer: images must be float32, got %s", s.DType)
	}
	d := s.Dimensions
	if c := d[len(d)-1]; c != Channels {
		return nil, fmt.Errorf("resizer: images have %d channels, the resizer takes %d (RGB)", c, Channels)
	}
	for _, n := range d {
		if n <= 0 {
			return nil, fmt.Errorf("resizer: images shape %s has an empty axis", s)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("resizer: %v", r)
		}
	}()
	exec, err := m.execFor(preH, preW)
	if err != nil {
		return nil, err
	}
	in := images
	if noBatch {
		in = tensors.FromShape(shapes.Make(dtypes.Float32, 1, d[0], d[1], d[2]))
		flat := tensors.MustCopyFlatData[float32](images)
		if err := tensors.AssignFlatData(in, flat); err != nil {
			return nil, err
		}
	}
	outs, err := exec.Exec(in)
	if err != nil {
		return nil, fmt.Errorf("resizer: %w", err)
	}
	out = outs[0]
	if noBatch {
		flat := tensors.MustCopyFlatData[float32](out)
		out = tensors.FromFlatDataAndDimensions(flat, m.cfg.TargetHeight, m.cfg.TargetWidth, Channels)
	}
	return out, nil
}

// ResizeImage resizes an image of any size to the resizer's target size, as the trained model saw
// its inputs: brought first to the training input size its checkpoint records (TrainingInput;
// bilinear, the tutorial's tf.image.resize of the input pipeline), then scaled to [0, 1] (the
// tutorial's Rescaling(1/255); alpha is ignored, grey images are expanded to RGB) and run through
// the resizer. It returns the resizer's raw output as a [target height, target width, 3] float32
// tensor and an RGBA image of it with values clipped to [0, 1] — the resizer is free to produce
// values outside that range, and the tensor keeps them. ResizeImageFrom chooses the first size (or
// none).
//
// learnresize resize calls ResizeImageFrom on each file as decoded by datasets.DecodeRGB, the
// decoder of the training pipeline, with its pixels in an *image.RGBA (alpha 255); its -inp defaults
// to TrainingInput, else 300. For its exact output, decode the same way: a JPEG decoded with Go's
// image/jpeg instead is converted from YCbCr to RGB with other rounding (a level apart on some
// pixels), and the outputs differ by up to 2/255 per pixel.
func (m *Model) ResizeImage(img image.Image) (image.Image, *tensors.Tensor, error) {
	return m.ResizeImageFrom(img, m.trainH, m.trainW)
}

// ResizeImageFrom is ResizeImage with the image first resized to height x width (bilinear) instead
// of the training input size; 0, 0 runs the resizer on the image as it is.
func (m *Model) ResizeImageFrom(img image.Image, height, width int) (image.Image, *tensors.Tensor, error) {
	if img == nil {
		return nil, nil, errors.New("resizer: nil image")
	}
	x, err := ImageToTensor(img)
	if err != nil {
		return nil, nil, err
	}
	y, err := m.resizeTensor(x, height, width)
	if err != nil {
		return nil, nil, err
	}
	out, err := TensorToImage(y)
	if err != nil {
		return nil, nil, err
	}
	return out, y, nil
}

// ImageToTensor converts an image to a float32 [height, width, 3] tensor of RGB values in [0, 1]
// (non-premultiplied; alpha dropped).
func ImageToTensor(img image.Image) (*tensors.Tensor, error) {
	if img == nil {
		return nil, errors.New("resizer: nil image")
	}
	r := img.Bounds()
	w, h := r.Dx(), r.Dy()
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("resizer: image has zero size (%dx%d)", w, h)
	}
	nrgba, ok := img.(*image.NRGBA)
	if !ok || nrgba.Rect.Min != (image.Point{}) {
		nrgba = image.NewNRGBA(image.Rect(0, 0, w, h))
		draw.Draw(nrgba, nrgba.Rect, img, r.Min, draw.Src)
	}
	data := make([]float32, h*w*3)
	for y := range h {
		row := nrgba.Pix[y*nrgba.Stride : y*nrgba.Stride+4*w]
		for x := range w {
			for c := range 3 {
				data[(y*w+x)*3+c] = float32(row[4*x+c]) / 255
			}
		}
	}
	return tensors.FromFlatDataAndDimensions(data, h, w, 3), nil
}

// TensorToImage converts a float32 [height, width, 3] (or [1, height, width, 3]) tensor of values in
// [0, 1] to an opaque RGBA image, clipping values outside [0, 1].
func TensorToImage(t *tensors.Tensor) (*image.RGBA, error) {
	if t == nil {
		return nil, errors.New("resizer: nil tensor")
	}
	d := t.Shape().Dimensions
	if len(d) == 4 && d[0] == 1 {
		d = d[1:]
	}
	if len(d) != 3 || d[2] != 3 || t.DType() != dtypes.Float32 {
		return nil, fmt.Errorf("resizer: want a float32 [height, width, 3] tensor, got %s", t.Shape())
	}
	h, w := d[0], d[1]
	data := tensors.MustCopyFlatData[float32](t)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			var px [3]uint8
			for c := range 3 {
				v := data[(y*w+x)*3+c]
				px[c] = uint8(min(max(v, 0), 1)*255 + 0.5)
			}
			img.SetRGBA(x, y, color.RGBA{px[0], px[1], px[2], 255})
		}
	}
	return img, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// NumParams returns the resizer's parameter count as Keras counts it (total, including batch-norm
// moving statistics) and the trainable part.
func (m *Model) NumParams() (total, trainable int) {
	for v := range m.store.IterVariables() {
		if strings.HasPrefix(v.Path(), "/"+ScopeName+"/") {
			total += v.Shape().Size()
			if v.Trainable {
				trainable += v.Shape().Size()
			}
		}
	}
	return total, trainable
}
