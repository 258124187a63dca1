package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/learnresize/learnresize/resizer"
)

// TestResizeKeepsSubfolders: images found in a folder argument keep their path relative to it under
// -out (PetImages' Cat/1005.jpg and Dog/1005.jpg do not collide), a file argument is written by its
// base name, and inputs that would still share an output are refused before anything is written.
func TestResizeKeepsSubfolders(t *testing.T) {
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "ckpt")
	m, err := resizer.NewModel(backendForTest(t), resizer.Config{TargetHeight: 8, TargetWidth: 8, Filters: 4, ResBlocks: 1,
		Interpolation: resizer.Bilinear}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Save(ckpt); err != nil {
		t.Fatal(err)
	}
	pets := filepath.Join(dir, "PetImages")
	for _, p := range []string{"Cat/1005.png", "Dog/1005.png", "Dog/deep/7.png", "top.png"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(pets, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		writePNG(t, filepath.Join(pets, p))
	}
	out := filepath.Join(dir, "out")
	code, stdout, stderr := runCLI(t, "resize", "-checkpoint", ckpt, "-inp", "16", "-out", out, pets, filepath.Join(pets, "Dog", "deep", "7.png"))
	if code != 0 {
		t.Fatalf("resize exited %d:\n%s\n%s", code, stdout, stderr)
	}
	for _, f := range []string{"Cat/1005.png", "Cat/1005_compare.png", "Dog/1005.png", "Dog/1005_compare.png", "Dog/deep/7.png",
		"top.png", "7.png", "7_compare.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	if !strings.Contains(stdout, filepath.Join(out, "Dog", "1005.png")) {
		t.Errorf("stdout does not name the output Dog/1005.png:\n%s", stdout)
	}

	// Two folders holding the same names: refused up front (exit 2), naming both inputs and the remedy.
	other := filepath.Join(dir, "more")
	if err := os.MkdirAll(filepath.Join(other, "Cat"), 0o755); err != nil {
		t.Fatal(err)
	}
	writePNG(t, filepath.Join(other, "Cat", "1005.png"))
	fresh := filepath.Join(dir, "fresh")
	code, _, stderr = runCLI(t, "resize", "-checkpoint", ckpt, "-inp", "16", "-out", fresh, pets, other)
	if code != 2 || !strings.Contains(stderr, "would both be written to "+filepath.Join("Cat", "1005")+".png") ||
		!strings.Contains(stderr, filepath.Join(other, "Cat", "1005.png")) || !strings.Contains(stderr, "different -out") {
		t.Errorf("colliding inputs: exit %d, %s", code, stderr)
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Errorf("colliding inputs: -out was created (%v); nothing should be written", err)
	}
}
