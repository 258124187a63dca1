package datasets

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// PetImagesDevEnv names the environment variable that points the real-data tests at the images: a
// PetImages/{Cat,Dog} folder or the folder holding one, as -data takes (default:
// ../shared/data/petimages-dev next to the repository).
const PetImagesDevEnv = "LEARNRESIZE_PETIMAGES_DEV"

// RequirePhotosEnv, when set (CI sets it), and likewise CI, make missing photos a failure: CI has
// ../shared, so a skip there would mean the tests that read photos silently stopped running.
const RequirePhotosEnv = "LEARNRESIZE_REQUIRE_PHOTOS"

// petImagesDev returns the folder holding PetImages, or skips the test, saying how to point it at
// the images, when there is none (a user's clone has no ../shared); under CI it fails instead.
func petImagesDev(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(PetImagesDevEnv)
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "data", "petimages-dev")
	}
	if filepath.Base(filepath.Clean(dir)) == "PetImages" {
		dir = filepath.Dir(filepath.Clean(dir))
	}
	if info, err := os.Stat(filepath.Join(dir, "PetImages")); err != nil || !info.IsDir() {
		msg := petImagesMissing(os.Getenv(PetImagesDevEnv))
		if os.Getenv(RequirePhotosEnv) != "" || os.Getenv("CI") != "" {
			t.Fatal(msg + " (" + RequirePhotosEnv + " or CI is set: the photos are required)")
		}
		t.Skip(msg)
	}
	return dir
}

// petImagesMissing says that the photos are missing and how to provide them, given the value of
// PetImagesDevEnv (empty: unset, the default folder looked at).
func petImagesMissing(env string) string {
	const how = "a PetImages folder (the extracted cats_vs_dogs zip, with Cat/ and Dog/ inside) or the folder holding one"
	if env == "" {
		return fmt.Sprintf("no PetImages photos: set %s to %s to run this test", PetImagesDevEnv, how)
	}
	return fmt.Sprintf("%s=%s holds no PetImages folder: point it at %s to run this test", PetImagesDevEnv, env, how)
}

// TestPetImagesMissingSaysHow: the skip message names what is missing and the variable to set, and
// not the default folder, which is this project's own layout.
func TestPetImagesMissingSaysHow(t *testing.T) {
	for _, env := range []string{"", "/data/pets"} {
		msg := petImagesMissing(env)
		if !strings.Contains(msg, PetImagesDevEnv) || !strings.Contains(msg, "cats_vs_dogs") || !strings.Contains(msg, env) ||
			strings.Contains(msg, "shared") || strings.Contains(msg, "..") {
			t.Errorf("%s=%q: %q", PetImagesDevEnv, env, msg)
		}
	}
}

// TestPetImagesDev runs the cats_vs_dogs rules over the 5,000-image development copy of
// PetImages (re-encoded 180x180 JFIF JPEGs): counts per class, JFIF skips, decode + resize of every
// image (to 64x64, to keep the test fast and its cache small), the tutorial's split sizes, and the
// tutorial's 300x300 size on a slice.
func TestPetImagesDev(t *testing.T) {
	dir := petImagesDev(t)
	src, err := OpenCatsVsDogs(dir, SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = src.Close() }()
	perClass := map[int]int{}
	for i := range src.Len() {
		perClass[src.Example(i).Label]++
	}
	t.Logf("%d examples (cat %d, dog %d); skipped while listing: %s", src.Len(), perClass[0], perClass[1], src.Skipped())
	if perClass[0] != 2557 || perClass[1] != 2443 {
		t.Errorf("cat %d, dog %d, want 2557 and 2443", perClass[0], perClass[1])
	}
	if n := src.Skipped().Counts[SkipNoJFIF]; n != 0 {
		t.Errorf("the JFIF rule skips %d files of the development set, want 0 (all are re-encoded JFIF)", n)
	}
	if total := src.Skipped().Total(); total != 0 {
		t.Errorf("%d files skipped while listing: %v", total, src.Skipped().Files)
	}

	splits := []string{"train[:40%]", "train[40%:50%]", "train"}
	p, err := Prepare(context.Background(), src, splits, PrepareOptions{Height: 64, Width: 64, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close() }()
	for _, s := range p.Report().Files {
		t.Errorf("skipped %s: %s", s.Name, s.Detail)
	}
	for i, want := range []int{2000, 500, 5000} {
		split, err := p.Split(splits[i])
		if err != nil {
			t.Fatal(err)
		}
		if split.Len() != want || split.Requested() != want {
			t.Errorf("%s: %d of %d decoded, want %d", splits[i], split.Len(), split.Requested(), want)
		}
	}
	if err := p.Cache().Verify(); err != nil {
		t.Fatal(err)
	}

	full, err := Prepare(context.Background(), src, []string{"train[:4%]"}, PrepareOptions{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = full.Close() }()
	split, err := full.Split("train[:4%]")
	if err != nil {
		t.Fatal(err)
	}
	if h, w, c := full.Cache().Shape(); split.Len() != 200 || h != 300 || w != 300 || c != 3 {
		t.Errorf("train[:4%%] at the default size: %d images of %dx%dx%d, want 200 of 300x300x3", split.Len(), h, w, c)
	}
}
