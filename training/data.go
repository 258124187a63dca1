package training

import (
	"context"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/learnresize/learnresize/datasets"
	"github.com/learnresize/learnresize/resizer"
)

// DataOptions says where the images come from.
type DataOptions struct {
	// Path is a local cats_vs_dogs zip, an extracted PetImages/ folder (or a folder holding one), or
	// a generic image folder (one sub-folder per class). Empty: download cats_vs_dogs into DataDir.
	Path string
	// DataDir holds downloads and caches (see datasets.DataDir).
	DataDir string
	// Progress receives download and preprocessing progress (nil: silent).
	Progress io.Writer
}

// OpenedData is Data plus what produced it; Close releases the cache files.
type OpenedData struct {
	Data
	Source   string // what was opened
	Classes  []string
	NumVal   int
	Skipped  datasets.SkipReport
	prepared *datasets.Prepared
	valSplit string
}

// Close releases the prepared cache.
func (d *OpenedData) Close() error {
	if d == nil || d.prepared == nil {
		return nil
	}
	return d.prepared.Close()
}

// OpenSource opens the images opt names (downloading cats_vs_dogs if opt.Path is empty) without
// decoding them. The caller closes the source.
func OpenSource(ctx context.Context, opt DataOptions) (*datasets.Source, error) {
	var (
		src *datasets.Source
		err error
	)
	switch {
	case opt.Path == "":
		src, err = datasets.CatsVsDogs(ctx, datasets.CatsVsDogsOptions{DataDir: opt.DataDir, Progress: opt.Progress})
	case isCatsVsDogs(opt.Path):
		src, err = datasets.OpenCatsVsDogs(opt.Path, datasets.SourceOptions{})
	default:
		src, err = datasets.OpenImageFolder(opt.Path, datasets.SourceOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	return src, nil
}

// OpenData opens the images, applies cfg's splits, decodes and resizes them to the model's input size
// once (cached on disk), and returns the tutorial's pipeline: training batches shuffled with a buffer
// of cfg.Buffer() (seeded by cfg.Seed and the epoch), validation batches in order, both of
// cfg.BatchSize with the last partial batch kept.
func OpenData(ctx context.Context, cfg Config, opt DataOptions) (*OpenedData, error) {
	src, err := OpenSource(ctx, opt)
	if err != nil {
		return nil, err
	}
	defer func() { _ = src.Close() }()
	if err := cfg.checkSplitsFit(src.Len(), src.Root()); err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	if len(src.Classes()) != cfg.Model.Classes {
		return nil, fmt.Errorf("data: %s has %d classes %v, the model has %d", src.Root(), len(src.Classes()), src.Classes(), cfg.Model.Classes)
	}
	cacheDir := ""
	if opt.DataDir != "" {
		cacheDir = filepath.Join(opt.DataDir, "cache")
	}
	prep, err := datasets.Prepare(ctx, src, []string{cfg.TrainSplit, cfg.ValSplit}, datasets.PrepareOptions{
		Height: cfg.Model.InputHeight, Width: cfg.Model.InputWidth,
		Method:   resizer.Bilinear, // the tutorial's tf.image.resize(image, INP_SIZE) default
		CacheDir: cacheDir, Progress: opt.Progress,
	})
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	out := &OpenedData{Source: src.Root(), Classes: src.Classes(), Skipped: prep.Report(), prepared: prep, valSplit: cfg.ValSplit}
	fail := func(err error) (*OpenedData, error) {
		_ = prep.Close()
		return nil, fmt.Errorf("data: %w", err)
	}
	trainSplit, err := prep.Split(cfg.TrainSplit)
	if err != nil {
		return fail(err)
	}
	valSplit, err := prep.Split(cfg.ValSplit)
	if err != nil {
		return fail(err)
	}
	if trainSplit.Len() == 0 || valSplit.Len() == 0 {
		return fail(fmt.Errorf("split %s has %d examples and %s has %d: both need at least one",
			cfg.TrainSplit, trainSplit.Len(), cfg.ValSplit, valSplit.Len()))
	}
	trainLoader, err := trainSplit.Loader(datasets.LoaderOptions{BatchSize: cfg.BatchSize, Shuffle: true,
		ShuffleBuffer: cfg.Buffer(), Seed: uint64(cfg.Seed)})
	if err != nil {
		return fail(err)
	}
	valLoader, err := valSplit.Loader(datasets.LoaderOptions{BatchSize: cfg.BatchSize})
	if err != nil {
		return fail(err)
	}
	out.Data = Data{Train: trainLoader.Dataset("train"), Val: valLoader.Dataset("validation"), NumTrain: trainSplit.Len(),
		Identity: &DataIdentity{Train: trainSplit.Identity(), Val: valSplit.Identity()}}
	out.NumVal = valSplit.Len()
	return out, nil
}

// isCatsVsDogs reports whether path is a zip or a folder in the official PetImages layout.
func isCatsVsDogs(path string) bool {
	if strings.EqualFold(filepath.Ext(path), ".zip") {
		return true
	}
	for _, p := range []string{path, filepath.Join(path, "PetImages")} {
		if filepath.Base(p) != "PetImages" {
			continue
		}
		if fi, err := os.Stat(filepath.Join(p, "Cat")); err == nil && fi.IsDir() {
			return true
		}
	}
	return false
}

// ValImages returns the first n validation images (at the model's input size, as the model sees them
// before the 1/255 rescaling), for figures.
func (d *OpenedData) ValImages(n int) ([]image.Image, error) {
	if d == nil || d.prepared == nil {
		return nil, fmt.Errorf("data: not opened")
	}
	split, err := d.prepared.Split(d.valSplit)
	if err != nil {
		return nil, err
	}
	h, w, c := d.prepared.Cache().Shape()
	n = min(n, split.Len())
	out := make([]image.Image, n)
	buf := make([]uint8, h*w*c)
	for i := range n {
		if err := split.Image(i, buf); err != nil {
			return nil, err
		}
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		for p := range h * w {
			img.Pix[4*p], img.Pix[4*p+1], img.Pix[4*p+2], img.Pix[4*p+3] = buf[c*p], buf[c*p+1], buf[c*p+2], 255
		}
		out[i] = img
	}
	return out, nil
}

// ValMajority is the validation accuracy of always answering the validation split's most frequent
// class: the level below which a model has learnt nothing (about 0.5 on cats vs dogs).
func (d *OpenedData) ValMajority() (float64, error) {
	if d == nil || d.prepared == nil {
		return 0, fmt.Errorf("data: not opened")
	}
	split, err := d.prepared.Split(d.valSplit)
	if err != nil {
		return 0, err
	}
	if split.Len() == 0 {
		return 0, nil
	}
	counts := map[int]int{}
	most := 0
	for i := range split.Len() {
		l := split.Example(i).Label
		counts[l]++
		most = max(most, counts[l])
	}
	return float64(most) / float64(split.Len()), nil
}
