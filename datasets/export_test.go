package datasets

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func TestExportSplit(t *testing.T) {
	root := t.TempDir()
	want := map[string][]byte{}
	for i := range 12 {
		cls := []string{"Cat", "Dog"}[i%2]
		name := fmt.Sprintf("PetImages/%s/%d.jpg", cls, i)
		data := jpegBytes(t, 20+i, 16)
		writeFile(t, filepath.Join(root, filepath.FromSlash(name)), data)
		want[name] = data
	}
	// Passes TFDS's JFIF rule but does not decode: Prepare skips it, and so must the export.
	broken := append(append([]byte{}, jpegBytes(t, 8, 8)[:40]...), bytes.Repeat([]byte{0x55}, 100)...)
	writeFile(t, filepath.Join(root, "PetImages", "Dog", "99.jpg"), broken)

	src, err := OpenCatsVsDogs(root, SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	out := t.TempDir()
	ctx := context.Background()
	prep, err := Prepare(ctx, src, nil, PrepareOptions{Height: 8, Width: 8, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer prep.Close()

	seen := map[string]bool{}
	skipped := 0
	for _, expr := range []string{"train[:60%]", "train[60%:]"} {
		dir := filepath.Join(out, strings.NewReplacer("[", "_", "]", "", ":", "-", "%", "").Replace(expr))
		res, err := ExportSplit(ctx, src, expr, dir)
		if err != nil {
			t.Fatal(err)
		}
		// Same examples, in the same order, as the pipeline's split.
		split, err := prep.Split(expr)
		if err != nil {
			t.Fatal(err)
		}
		var splitNames, files []string
		for i := range split.Len() {
			splitNames = append(splitNames, split.Example(i).Name)
		}
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(dir, p)
				files = append(files, filepath.ToSlash(rel))
			}
			return err
		})
		sort.Strings(splitNames)
		if strings.Join(files, ",") != strings.Join(splitNames, ",") || res.Written != len(files) || res.PerClass[0]+res.PerClass[1] != res.Written {
			t.Errorf("%s: exported %v (%+v), the split holds %v", expr, files, res, splitNames)
		}
		for _, f := range files {
			got, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
			if !bytes.Equal(got, want[f]) || seen[f] {
				t.Errorf("%s: %s differs from the original or was exported twice", expr, f)
			}
			seen[f] = true
		}
		for _, f := range res.Skipped.Files {
			if f.Name != "PetImages/Dog/99.jpg" {
				t.Errorf("skipped %+v", f)
			}
			skipped++
		}
		// The export is itself a cats_vs_dogs folder.
		again, err := OpenCatsVsDogs(dir, SourceOptions{})
		if err != nil || again.Len() != res.Written {
			t.Errorf("re-opening the export: %v, %d examples", err, again.Len())
		}
		// Nothing is overwritten.
		if _, err := ExportSplit(ctx, src, expr, dir); err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Errorf("export over an existing folder: %v", err)
		}
	}
	if len(seen) != 12 || skipped != 1 {
		t.Errorf("the two splits exported %d of the 12 decodable images and skipped %d (want 1)", len(seen), skipped)
	}
	// Bad expressions fail before anything is written.
	if _, err := ExportSplit(ctx, src, "validation[:10]", filepath.Join(out, "bad")); err == nil {
		t.Error("unknown split accepted")
	}
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || e.Name() == "bad" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}
