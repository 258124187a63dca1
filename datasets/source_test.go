package datasets

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/gif"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
)

// catsVsDogsFiles is a dirty miniature of kagglecatsanddogs_5340.zip: name -> content.
func catsVsDogsFiles(t *testing.T) map[string][]byte {
	jpg := jpegBytes(t, 20, 16)
	bomb := setJPEGSize(t, jpg, 60000, 60000)
	return map[string][]byte{
		"PetImages/Cat/0.jpg":     jpg,
		"PetImages/Cat/1.jpg":     jpegBytes(t, 33, 17),
		"PetImages/Cat/2.jpg":     {},                                               // empty
		"PetImages/Cat/3.jpg":     plainJPEG(t, 8, 8),                               // no JFIF: TFDS drops it
		"PetImages/Cat/4.jpg":     pngBytes(t, patternImage(8, 8)),                  // a PNG: no JFIF either
		"PetImages/Cat/7.jpg":     []byte("JFIF? no, just text that mentions it\n"), // passes the rule, not an image
		"PetImages/Cat/8.jpg":     jpg[:len(jpg)/2],                                 // truncated
		"PetImages/Cat/9.jpg":     exifFirstJPEG(t, 12, 10),                         // JFIF at byte 30
		"PetImages/Cat/10.jpg":    bomb,                                             // 3.6 gigapixels announced
		"PetImages/Cat/Thumbs.db": []byte("thumbnail cache"),                        // ignored
		"PetImages/Cat/cat.png":   pngBytes(t, patternImage(4, 4)),                  // ignored: name
		"PetImages/Dog/0.jpg":     jpegBytes(t, 16, 16),
		"PetImages/Dog/1.jpg":     jpegBytes(t, 40, 30),
		"PetImages/Dog/2.jpg":     jpegBytes(t, 7, 9),
		"PetImages/readme[1].txt": []byte("readme"), // ignored
	}
}

// writeCatsVsDogsDir writes the miniature as an extracted folder, plus what a zip cannot hold: a
// directory named like an image and a dangling symbolic link.
func writeCatsVsDogsDir(t *testing.T) string {
	root := t.TempDir()
	for name, data := range catsVsDogsFiles(t) {
		writeFile(t, filepath.Join(root, filepath.FromSlash(name)), data)
	}
	if err := os.Mkdir(filepath.Join(root, "PetImages", "Cat", "5.jpg"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "missing.jpg"), filepath.Join(root, "PetImages", "Cat", "6.jpg")); err != nil {
		t.Fatal(err)
	}
	return root
}

func writeCatsVsDogsZip(t *testing.T) string {
	files := catsVsDogsFiles(t)
	names := []string{"PetImages/", "PetImages/Cat/", "PetImages/Dog/"}
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names[3:])
	path := filepath.Join(t.TempDir(), "cats.zip")
	writeFile(t, path, zipBytes(t, names, files))
	return path
}

func prepareAll(t *testing.T, src *Source) *Prepared {
	t.Helper()
	p, err := Prepare(context.Background(), src, nil, PrepareOptions{Height: 8, Width: 6, CacheDir: t.TempDir(), Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestCatsVsDogsDirtyData(t *testing.T) {
	tests := []struct {
		name        string
		open        func(t *testing.T) string
		window      int
		listed      int
		listSkips   map[SkipReason]int
		decodeSkips map[SkipReason]int
	}{
		{"folder", writeCatsVsDogsDir, 0, 9,
			map[SkipReason]int{SkipEmpty: 1, SkipNoJFIF: 2, SkipUnreadable: 2, SkipIgnored: 3},
			map[SkipReason]int{SkipNotImage: 1, SkipCorrupt: 1, SkipTooLarge: 1}},
		{"folder, literal 10-byte JFIF window", writeCatsVsDogsDir, 10, 8,
			map[SkipReason]int{SkipEmpty: 1, SkipNoJFIF: 3, SkipUnreadable: 2, SkipIgnored: 3},
			map[SkipReason]int{SkipNotImage: 1, SkipCorrupt: 1, SkipTooLarge: 1}},
		{"zip", writeCatsVsDogsZip, 0, 9,
			map[SkipReason]int{SkipEmpty: 1, SkipNoJFIF: 2, SkipIgnored: 3},
			map[SkipReason]int{SkipNotImage: 1, SkipCorrupt: 1, SkipTooLarge: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, err := OpenCatsVsDogs(tc.open(t), SourceOptions{JFIFWindow: tc.window})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = src.Close() }()
			if src.Len() != tc.listed {
				t.Errorf("listed %d examples, want %d", src.Len(), tc.listed)
			}
			if got := src.Skipped().Counts; !reflect.DeepEqual(got, tc.listSkips) {
				t.Errorf("listing skips %v, want %v\n%v", got, tc.listSkips, src.Skipped().Files)
			}
			if !reflect.DeepEqual(src.Classes(), []string{"cat", "dog"}) {
				t.Errorf("classes %v", src.Classes())
			}
			for i := range src.Len() {
				ex := src.Example(i)
				if want := map[bool]int{true: 0, false: 1}[bytes.Contains([]byte(ex.Name), []byte("/Cat/"))]; ex.Label != want {
					t.Errorf("%s: label %d, want %d", ex.Name, ex.Label, want)
				}
			}
			p := prepareAll(t, src)
			all := map[SkipReason]int{}
			for r, n := range tc.listSkips {
				all[r] += n
			}
			for r, n := range tc.decodeSkips {
				all[r] += n
			}
			if got := p.Report().Counts; !reflect.DeepEqual(got, all) {
				t.Errorf("report %v, want %v\n%v", got, all, p.Report().Files)
			}
			split, err := p.Split("train")
			if err != nil {
				t.Fatal(err)
			}
			want := tc.listed - 3
			if split.Len() != want || split.Requested() != tc.listed {
				t.Errorf("split holds %d of %d, want %d of %d", split.Len(), split.Requested(), want, tc.listed)
			}
		})
	}
}

// TestZipEntryChecksum: a stored zip member whose bytes were damaged passes the JFIF check (which
// reads only its start) and is then reported unreadable when read whole (zip CRC mismatch).
func TestZipEntryChecksum(t *testing.T) {
	jpg := jpegBytes(t, 40, 40)
	var buf bytes.Buffer
	newStoredZip(t, &buf, map[string][]byte{"PetImages/Cat/1.jpg": jpg, "PetImages/Dog/1.jpg": jpg})
	data := buf.Bytes()
	i := bytes.Index(data, jpg[len(jpg)-40:])
	if i < 0 {
		t.Fatal("stored bytes not found")
	}
	data[i+10] ^= 0xFF
	path := filepath.Join(t.TempDir(), "damaged.zip")
	writeFile(t, path, data)
	src, err := OpenCatsVsDogs(path, SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = src.Close() }()
	p := prepareAll(t, src)
	if got := p.Report().Counts; !reflect.DeepEqual(got, map[SkipReason]int{SkipUnreadable: 1}) {
		t.Errorf("report %v, want one unreadable", got)
	}
}

func TestImageFolderDirtyData(t *testing.T) {
	root := t.TempDir()
	jpg := jpegBytes(t, 12, 9)
	palette := color.Palette{color.RGBA{1, 2, 3, 255}, color.RGBA{250, 0, 0, 255}}
	var gifBuf bytes.Buffer
	if err := gif.Encode(&gifBuf, image.NewPaletted(image.Rect(0, 0, 5, 5), palette), nil); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"cats/a.jpg":               jpg,
		"cats/b.JPG":               plainJPEG(t, 10, 10), // no JFIF: fine outside cats_vs_dogs
		"cats/c.jpg":               pngBytes(t, patternImage(6, 6)),
		"cats/d.jpg":               []byte("not an image\n"),
		"cats/e.png":               {},
		"cats/g.txt":               []byte("notes"),
		"cats/sub/h.jpeg":          jpg,
		"cats/i.gif":               gifBuf.Bytes(),
		"cats/j.bmp":               readFixture(t, "bmp24.bmp"),
		"dogs/a.jpg":               jpg,
		"dogs/b.jpg":               jpg[:len(jpg)-len(jpg)/3],
		"dogs/big.png":             setPNGSize(pngBytes(t, patternImage(4, 4)), 20000, 20000),
		"dogs/dir.jpg/k.jpg":       jpg,
		"notes.md":                 []byte("# notes"),
		".ipynb_checkpoints/x.jpg": jpg,
	}
	for name, data := range files {
		writeFile(t, filepath.Join(root, filepath.FromSlash(name)), data)
	}
	if err := os.Symlink(filepath.Join(root, "nowhere.jpg"), filepath.Join(root, "cats", "f.jpg")); err != nil {
		t.Fatal(err)
	}
	src, err := OpenImageFolder(root, SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(src.Classes(), []string{"cats", "dogs"}) {
		t.Errorf("classes %v", src.Classes())
	}
	if src.Len() != 11 {
		t.Errorf("listed %d examples, want 11", src.Len())
	}
	wantList := map[SkipReason]int{SkipEmpty: 1, SkipUnreadable: 1, SkipIgnored: 2}
	if got := src.Skipped().Counts; !reflect.DeepEqual(got, wantList) {
		t.Errorf("listing skips %v, want %v\n%v", got, wantList, src.Skipped().Files)
	}
	p := prepareAll(t, src)
	want := map[SkipReason]int{SkipEmpty: 1, SkipUnreadable: 1, SkipIgnored: 2, SkipNotImage: 1, SkipCorrupt: 1, SkipTooLarge: 1}
	if got := p.Report().Counts; !reflect.DeepEqual(got, want) {
		t.Errorf("report %v, want %v\n%v", got, want, p.Report().Files)
	}
	if got := p.Report().Total(); got != 5 {
		t.Errorf("Total() = %d, want 5 (ignored files excluded)", got)
	}
	split, err := p.Split("train")
	if err != nil {
		t.Fatal(err)
	}
	if split.Len() != 8 {
		t.Errorf("split holds %d images, want 8", split.Len())
	}
	perClass := map[string]int{}
	for i := range split.Len() {
		ex := split.Example(i)
		perClass[src.Classes()[ex.Label]]++
	}
	if want := map[string]int{"cats": 6, "dogs": 2}; !reflect.DeepEqual(perClass, want) {
		t.Errorf("per class %v, want %v", perClass, want)
	}
}

func TestSourceErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "only-cats", "PetImages", "Cat", "1.jpg"), []byte("x"))
	writeFile(t, filepath.Join(dir, "flat", "a.jpg"), []byte("x"))
	writeFile(t, filepath.Join(dir, "notzip.zip"), []byte("not a zip"))
	cases := []struct {
		name string
		open func() (*Source, error)
	}{
		{"cats_vs_dogs: missing path", func() (*Source, error) { return OpenCatsVsDogs(filepath.Join(dir, "nope"), SourceOptions{}) }},
		{"cats_vs_dogs: folder without PetImages", func() (*Source, error) { return OpenCatsVsDogs(filepath.Join(dir, "flat"), SourceOptions{}) }},
		{"cats_vs_dogs: PetImages without Dog", func() (*Source, error) {
			return OpenCatsVsDogs(filepath.Join(dir, "only-cats"), SourceOptions{})
		}},
		{"cats_vs_dogs: not a zip", func() (*Source, error) { return OpenCatsVsDogs(filepath.Join(dir, "notzip.zip"), SourceOptions{}) }},
		{"image folder: missing", func() (*Source, error) { return OpenImageFolder(filepath.Join(dir, "nope"), SourceOptions{}) }},
		{"image folder: a file", func() (*Source, error) { return OpenImageFolder(filepath.Join(dir, "notzip.zip"), SourceOptions{}) }},
		{"image folder: no class folders", func() (*Source, error) { return OpenImageFolder(filepath.Join(dir, "flat"), SourceOptions{}) }},
	}
	for _, tc := range cases {
		src, err := tc.open()
		if err == nil {
			_ = src.Close()
			t.Errorf("%s: no error", tc.name)
		}
	}
}

func TestSourceOrder(t *testing.T) {
	root := t.TempDir()
	jpg := jpegBytes(t, 4, 4)
	for _, c := range []string{"a", "b"} {
		for _, f := range []string{"1.jpg", "2.jpg", "3.jpg", "4.jpg", "5.jpg"} {
			writeFile(t, filepath.Join(root, c, f), jpg)
		}
	}
	names := func(seed uint64) []string {
		src, err := OpenImageFolder(root, SourceOptions{OrderSeed: seed})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for i := range src.Len() {
			out = append(out, src.Example(i).Name)
		}
		return out
	}
	first, again, other := names(3), names(3), names(4)
	if !reflect.DeepEqual(first, again) {
		t.Errorf("same seed, different orders:\n%v\n%v", first, again)
	}
	if reflect.DeepEqual(first, other) {
		t.Errorf("seeds 3 and 4 give the same order %v", first)
	}
	sorted := append([]string(nil), first...)
	sort.Strings(sorted)
	if reflect.DeepEqual(first, sorted) {
		t.Errorf("order is not shuffled: %v", first)
	}
}
