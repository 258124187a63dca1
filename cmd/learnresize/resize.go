package main

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/learnresize/learnresize/backend"
	"github.com/learnresize/learnresize/datasets"
	"github.com/learnresize/learnresize/internal/fileutil"
	"github.com/learnresize/learnresize/models"
	"github.com/learnresize/learnresize/plots"
	"github.com/learnresize/learnresize/resizer"
)

// runResize is the resize command: its flags, the model, the inputs and their output names
// (refusing collisions before anything is written), then resizeOne per image. (One sequence of
// checks, each with its own error for the user.)
func runResize(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("resize", stderr, "resize -checkpoint DIR [-out DIR] [-inp N|HxW|0] [-display auto|clip|minmax|/N] IMAGE|FOLDER ...")
	ckpt := fs.String("checkpoint", "", "a training run directory (its latest checkpoint is used) or a GoMLX checkpoint directory")
	out := fs.String("out", "resized", "output directory (images found in a folder argument keep their path under it: FOLDER/Cat/1.jpg -> DIR/Cat/1.png)")
	inp := fs.String("inp", "", "resize inputs to this size first, as the training pipeline does (default: the run's INP_SIZE, else 300; 0: native size)")
	force := fs.Bool("force", false, "overwrite existing output files")
	display := fs.String("display", "auto", "how _compare.png shows the learned resize, whose values are not confined to [0, 1]: "+
		"auto (from its own range, as compare's resizer_grid.png), clip, minmax, or /N (divided by N, then clipped; /10 is the tutorial's)")
	if err := parse(fs, args); err != nil {
		return err
	}
	mapping, err := plots.ParseMapping(*display)
	if err != nil {
		return usagef("-display: %v", err)
	}
	if *ckpt == "" {
		return usagef("-checkpoint is required")
	}
	if fs.NArg() == 0 {
		return usagef("no images given")
	}
	files, err := collectImages(fs.Args())
	if err != nil {
		return err
	}
	if _, err := os.Stat(*ckpt); err != nil {
		return fmt.Errorf("-checkpoint: %w", err)
	}
	inpH, inpW := 0, 0
	if *inp != "" {
		if *inp == "0" {
			inpH, inpW = 0, 0
		} else if inpH, inpW, err = parseSize(*inp); err != nil {
			return usagef("-inp: %v", err)
		}
	}
	b, info, err := backend.New()
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr, info)
	m, err := resizer.Load(b, *ckpt) // a run's folder: its latest checkpoint
	if err != nil {
		return err
	}
	if *inp == "" { // the training input size the checkpoint records, else the tutorial's
		inpH, inpW = m.TrainingInput()
		if inpH == 0 {
			inpH, inpW = models.TutorialInput, models.TutorialInput
		}
	}
	cfg := m.Config()
	fmt.Fprintf(stderr, "resizer %s from %s\n", cfg, *ckpt)
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	failed := 0
	for _, f := range files {
		dir := filepath.Join(*out, f.subdir)
		err := os.MkdirAll(dir, 0o755)
		if err == nil {
			err = resizeOne(m, f.path, dir, inpH, inpW, mapping, *force, stdout)
		}
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", f.path, err)
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d images failed", failed, len(files))
	}
	return nil
}

// resizeInput is one image to resize: its path, and the folder under -out its outputs go to (its
// folder relative to the folder argument it was found in; "" for an image given as a file).
type resizeInput struct{ path, subdir string }

// collectImages expands folders (recursively) into image files, sorted, each keeping its path
// relative to the folder given, so that Cat/1005.jpg and Dog/1005.jpg do not share an output. Two
// inputs whose outputs would still be the same files (a.jpg and a.png, or two folders holding the same
// names) are a usage error, found before anything is written.
func collectImages(args []string) ([]resizeInput, error) {
	var files []resizeInput
	for _, a := range args {
		fi, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			files = append(files, resizeInput{path: a})
			continue
		}
		var found []string
		err = filepath.WalkDir(a, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && datasets.IsImageName(p) {
				found = append(found, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: no images (.jpg, .jpeg, .png, .gif, .bmp)", a)
		}
		sort.Strings(found)
		for _, p := range found {
			rel, err := filepath.Rel(a, filepath.Dir(p))
			if err != nil {
				return nil, err
			}
			if rel == "." {
				rel = ""
			}
			files = append(files, resizeInput{path: p, subdir: rel})
		}
	}
	byOutput := map[string]string{} // output name (sub-folder and base name) -> the input written there
	for _, f := range files {
		name := filepath.Join(f.subdir, strings.TrimSuffix(filepath.Base(f.path), filepath.Ext(f.path)))
		if prev, ok := byOutput[name]; ok {
			return nil, usagef("%s and %s would both be written to %s.png under -out: resize them in separate runs with different -out "+
				"folders, or, for two folders with the same file names, give the folder above both (sub-folders are kept under -out)", prev, f.path, name)
		}
		byOutput[name] = f.path
	}
	return files, nil
}

// resizeOne writes <base>.png (the resizer's output, clipped to [0, 1]) and <base>_compare.png
// (input | naive resize | learned resize, the resized panels scaled up to the input's size; the
// learned one shown through mp, resolved against this output, which the caption names).
// (One sequence: decode, learned resize, display panels, two files written; each step is a call.)
func resizeOne(m *resizer.Model, path, outDir string, inpH, inpW int, mp plots.Mapping, force bool, stdout io.Writer) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	pix, w, h, err := datasets.DecodeRGB(raw, datasets.DefaultMaxPixels)
	if err != nil {
		return err
	}
	// The learned resize is the library's (resizer.Model.ResizeImageFrom), so the command and the API
	// give the same output for the same pixels (decoded by datasets.DecodeRGB, as ResizeImage's doc
	// says); the panels below are for display.
	learned, values, err := m.ResizeImageFrom(rgbImage(pix, w, h), inpH, inpW)
	if err != nil {
		return err
	}
	if mp, err = mp.Resolve(values); err != nil {
		return err
	}
	shown, clipped, err := mp.ToImage(values)
	if err != nil {
		return err
	}
	if inpH > 0 {
		hr, err := datasets.NewHostResizer(resizer.Bilinear, inpH, inpW)
		if err != nil {
			return err
		}
		dst := make([]uint8, inpH*inpW*3)
		if err := hr.Resize(dst, pix, h, w, 3); err != nil {
			return err
		}
		pix, h, w = dst, inpH, inpW
	}
	cfg := m.Config()
	nr, err := datasets.NewHostResizer(cfg.Interpolation, cfg.TargetHeight, cfg.TargetWidth)
	if err != nil {
		return err
	}
	naive := make([]uint8, cfg.TargetHeight*cfg.TargetWidth*3)
	if err := nr.Resize(naive, pix, h, w, 3); err != nil {
		return err
	}
	input := rgbImage(pix, w, h)
	sideFig, err := plots.Row(plots.Titled{Title: fmt.Sprintf("input %dx%d", w, h), Image: input},
		plots.Titled{Title: fmt.Sprintf("%s resize to %dx%d", cfg.Interpolation, cfg.TargetWidth, cfg.TargetHeight),
			Image: upscaleNearest(rgbImage(naive, cfg.TargetWidth, cfg.TargetHeight), w, h)},
		plots.Titled{Title: fmt.Sprintf("learned resize to %dx%d", cfg.TargetWidth, cfg.TargetHeight), Image: upscaleNearest(shown, w, h)})
	if err != nil {
		return err
	}
	caption := "learned resize: output " + mp.String()
	if clipped > 0 {
		caption += fmt.Sprintf(" (%.2g%% of its values clipped)", 100*clipped)
	}
	sideFig = sideFig.WithCaption(caption)
	sideData, err := sideFig.PNG()
	if err != nil {
		return err
	}
	side, err := png.Decode(bytes.NewReader(sideData))
	if err != nil {
		return err
	}

	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	outs := map[string]image.Image{base + ".png": learned, base + "_compare.png": side}
	for _, name := range []string{base + ".png", base + "_compare.png"} {
		p := filepath.Join(outDir, name)
		if _, err := os.Stat(p); err == nil && !force {
			return fmt.Errorf("%s exists (use -force to overwrite)", p)
		} else if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, outs[name]); err != nil {
			return err
		}
		if err := fileutil.WriteAtomic(p, buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "%s -> %s, %s\n", path, filepath.Join(outDir, base+".png"), filepath.Join(outDir, base+"_compare.png"))
	return nil
}

func rgbImage(pix []uint8, w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range w * h {
		img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = pix[3*i], pix[3*i+1], pix[3*i+2], 255
	}
	return img
}

func upscaleNearest(src image.Image, w, h int) *image.RGBA {
	b := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			dst.Set(x, y, src.At(b.Min.X+x*b.Dx()/w, b.Min.Y+y*b.Dy()/h))
		}
	}
	return dst
}
