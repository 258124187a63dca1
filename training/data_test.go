package training

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/learnresize/learnresize/internal/testimages"
)

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
