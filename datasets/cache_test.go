package datasets

import (
	"context"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/learnresize/learnresize/internal/fileutil"
)

// solidFolder writes n solid-colour PNG images into two classes: image i is in class "a" (even i)
// or "b" (odd i) and has colour (i, 255-i, 7), so a resized image still tells which one it is.
func solidFolder(t testing.TB, n int) string {
	t.Helper()
	root := t.TempDir()
	for i := range n {
		img := image.NewNRGBA(image.Rect(0, 0, 5, 4))
		for p := 0; p < len(img.Pix); p += 4 {
			img.Pix[p], img.Pix[p+1], img.Pix[p+2], img.Pix[p+3] = uint8(i), uint8(255-i), 7, 255
		}
		class := "a"
		if i%2 == 1 {
			class = "b"
		}
		writeFile(t, filepath.Join(root, class, fmt.Sprintf("%03d.png", i)), pngBytes(t, img))
	}
	return root
}

// imageID returns the i of solidFolder from an image's first pixel, checking it is solid.
func imageID(t testing.TB, pix []uint8) int {
	t.Helper()
	for p := 0; p < len(pix); p += 3 {
		if pix[p] != pix[0] || pix[p+1] != 255-pix[0] || pix[p+2] != 7 {
			t.Fatalf("pixel %d = %v, not the solid colour (%d, %d, 7)", p/3, pix[p:p+3], pix[0], 255-pix[0])
		}
	}
	return int(pix[0])
}

func nameID(name string) int {
	var id int
	_, _ = fmt.Sscanf(filepath.Base(name), "%03d.png", &id)
	return id
}

func TestCacheContents(t *testing.T) {
	root := solidFolder(t, 12)
	src, err := OpenImageFolder(root, SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := prepareAll(t, src)
	if err := p.Cache().Verify(); err != nil {
		t.Fatal(err)
	}
	split, err := p.Split("train")
	if err != nil {
		t.Fatal(err)
	}
	h, w, c := p.Cache().Shape()
	if h != 8 || w != 6 || c != 3 {
		t.Fatalf("cache shape %dx%dx%d, want 8x6x3", h, w, c)
	}
	buf := make([]uint8, h*w*c)
	for i := range split.Len() {
		if err := split.Image(i, buf); err != nil {
			t.Fatal(err)
		}
		ex := split.Example(i)
		if got, want := imageID(t, buf), nameID(ex.Name); got != want {
			t.Errorf("split image %d shows image %d, its example is %s", i, got, ex.Name)
		}
		if want := nameID(ex.Name) % 2; ex.Label != want {
			t.Errorf("%s: label %d, want %d", ex.Name, ex.Label, want)
		}
	}
}

func TestCacheReuseAndInvalidation(t *testing.T) {
	root := solidFolder(t, 20)
	cacheDir := t.TempDir()
	prepare := func(splits []string, h int) *Prepared {
		t.Helper()
		src, err := OpenImageFolder(root, SourceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p, err := Prepare(context.Background(), src, splits, PrepareOptions{Height: h, Width: 4, CacheDir: cacheDir, Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		_ = p.Close()
		return p
	}
	tutorial := []string{"train[:40%]", "train[40%:50%]"}
	if p := prepare(tutorial, 4); !p.Built() || p.Range() != (Range{0, 10}) {
		t.Fatalf("first Prepare: built %v, range %v", p.Built(), p.Range())
	}
	if p := prepare(tutorial, 4); p.Built() {
		t.Error("same splits: cache rebuilt")
	}
	if p := prepare([]string{"train[10%:30%]"}, 4); p.Built() || p.Range() != (Range{0, 10}) {
		t.Errorf("covered split: built %v, range %v (want reuse of [0, 10))", p.Built(), p.Range())
	}
	if p := prepare([]string{"train[:60%]"}, 4); !p.Built() {
		t.Error("wider split: cache reused")
	}
	if p := prepare(tutorial, 5); !p.Built() {
		t.Error("other image size: cache reused")
	}
	// Changing a file changes the source fingerprint.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(root, "a", "000.png"), later, later); err != nil {
		t.Fatal(err)
	}
	if p := prepare(tutorial, 4); !p.Built() {
		t.Error("changed source: cache reused")
	}
}

// cacheFile returns the single cache file in dir.
func cacheFile(t *testing.T, dir string) string {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(dir, "*"+cacheExt))
	if len(matches) != 1 {
		t.Fatalf("cache files %v, want one", matches)
	}
	return matches[0]
}

func TestCacheNeverTrustsDamagedFiles(t *testing.T) {
	root := solidFolder(t, 6)
	tests := []struct {
		name     string
		damage   func(t *testing.T, path string)
		openFail bool // OpenCache must fail; otherwise Verify must.
	}{
		{"truncated by one byte", func(t *testing.T, path string) {
			info, _ := os.Stat(path)
			if err := os.Truncate(path, info.Size()-1); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"truncated to the header", func(t *testing.T, path string) {
			if err := os.Truncate(path, 100); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"label table flipped", func(t *testing.T, path string) { flipByte(t, path, cacheHeaderSize+2) }, true},
		{"metadata flipped", func(t *testing.T, path string) {
			info, _ := os.Stat(path)
			flipByte(t, path, info.Size()-cacheTrailer-5)
		}, true},
		{"pixel flipped", func(t *testing.T, path string) { flipByte(t, path, cacheDataOffset(6)+3) }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cacheDir := t.TempDir()
			src, err := OpenImageFolder(root, SourceOptions{})
			if err != nil {
				t.Fatal(err)
			}
			opts := PrepareOptions{Height: 4, Width: 4, CacheDir: cacheDir, Workers: 1}
			p, err := Prepare(context.Background(), src, nil, opts)
			if err != nil {
				t.Fatal(err)
			}
			_ = p.Close()
			path := cacheFile(t, cacheDir)
			tc.damage(t, path)
			c, err := OpenCache(path, "")
			if tc.openFail {
				if err == nil {
					_ = c.Close()
					t.Fatal("damaged cache opened")
				}
				// Prepare does not trust it either: it rebuilds.
				p, err := Prepare(context.Background(), src, nil, opts)
				if err != nil {
					t.Fatal(err)
				}
				defer func() { _ = p.Close() }()
				if !p.Built() {
					t.Error("Prepare reused a damaged cache")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = c.Close() }()
			if err := c.Verify(); err == nil {
				t.Error("Verify accepted a damaged pixel")
			}
			buf := make([]uint8, 4*4*3)
			if err := c.ReadImage(0, buf); err == nil || !strings.Contains(err.Error(), "delete the file") {
				t.Errorf("a read (verified by default) of a damaged pixel: error %v, want one saying to delete the file", err)
			}
			c.SetVerifyReads(false)
			if err := c.ReadImage(0, buf); err != nil {
				t.Errorf("unverified read: %v", err)
			}
		})
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5A
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestCacheInterruptedBuild: a build killed mid-write leaves only a temporary file, which is never
// opened as a cache; a cancelled build removes its temporary file; stale temporaries are cleaned.
func TestCacheInterruptedBuild(t *testing.T) {
	root := solidFolder(t, 8)
	cacheDir := t.TempDir()
	src, err := OpenImageFolder(root, SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	opts := PrepareOptions{Height: 4, Width: 4, CacheDir: cacheDir, Workers: 2}

	// Cancelled before it starts: an error, and nothing left behind.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Prepare(ctx, src, nil, opts); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Prepare: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(cacheDir, "*")); len(left) != 0 {
		t.Fatalf("cancelled Prepare left %v", left)
	}

	// "Killed" writers: images written, never committed, files left as a dead process leaves them
	// (closed, lock released by the system), just now and for another cache; and one still being
	// written by a live builder (locked), which must be left alone.
	key := cacheKey(src, PrepareOptions{Height: 4, Width: 4, MaxPixels: DefaultMaxPixels})
	prefix := filepath.Join(cacheDir, fmt.Sprintf("%s-%dx%d-%s-%s", src.Name(), 4, 4, "bilinear", key[:16]))
	var writers []*cacheWriter
	for _, final := range []string{cachePath(prefix, 0, 8), filepath.Join(cacheDir, "other-4x4-bilinear-0-2.lrcache"),
		filepath.Join(cacheDir, "live-4x4-bilinear-0-2.lrcache")} {
		cw, err := createCacheWriter(final, 8, 4, 4, 3)
		if err != nil {
			t.Fatal(err)
		}
		if err := cw.writeImage(0, make([]uint8, 48), 0); err != nil {
			t.Fatal(err)
		}
		writers = append(writers, cw)
	}
	for _, cw := range writers[:2] {
		_ = cw.f.Close()
		_ = cw.lock.Unlock()
	}
	live := writers[2]
	defer live.abort()
	p, err := Prepare(context.Background(), src, nil, PrepareOptions{Height: 4, Width: 4, CacheDir: cacheDir, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close() }()
	if !p.Built() {
		t.Error("an uncommitted file was used as a cache")
	}
	left, _ := filepath.Glob(filepath.Join(cacheDir, "*"))
	var temps []string
	for _, f := range left {
		if strings.Contains(f, tmpInfix) {
			temps = append(temps, f)
		}
	}
	if len(left) != 2 || len(temps) != 1 || temps[0] != live.tmpPath {
		t.Errorf("files left: %v, want the committed cache and the live builder's %s", left, live.tmpPath)
	}
}

func TestPrepareErrors(t *testing.T) {
	root := solidFolder(t, 4)
	src, err := OpenImageFolder(root, SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, splits := range [][]string{{"train[:0]"}, {"test"}, {"train[:101%]"}} {
		if p, err := Prepare(context.Background(), src, splits, PrepareOptions{CacheDir: dir}); err == nil {
			_ = p.Close()
			t.Errorf("Prepare(%q): no error", splits)
		}
	}
	if _, err := Prepare(context.Background(), src, nil, PrepareOptions{CacheDir: dir, Height: -1}); err == nil {
		t.Error("negative height: no error")
	}
	p, err := Prepare(context.Background(), src, []string{"train[:50%]"}, PrepareOptions{CacheDir: dir, Height: 2, Width: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close() }()
	if _, err := p.Split("train[50%:]"); err == nil {
		t.Error("split outside the prepared range: no error")
	}
}

// TestImpossibleSizesRefusedUpFront: a cache the disk cannot hold, or an image one worker cannot hold
// in memory, is refused with a one-line error before anything is written (once, -inp 100000 crashed
// with an out-of-memory stack dump and left a 9 TB sparse file).
func TestImpossibleSizesRefusedUpFront(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("free disk and memory are read on Linux")
	}
	root := solidFolder(t, 4)
	src, err := OpenImageFolder(root, SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cacheDir := filepath.Join(t.TempDir(), "cache")
	_, err = Prepare(context.Background(), src, nil, PrepareOptions{Height: 100000, Width: 100000, CacheDir: cacheDir})
	if err == nil || !strings.Contains(err.Error(), "free") || !strings.Contains(err.Error(), "-inp") || strings.Contains(err.Error(), "\n") {
		t.Errorf("a 100000x100000 cache: %v, want a one-line error about free disk space", err)
	}
	if left, _ := filepath.Glob(filepath.Join(cacheDir, "*")); len(left) != 0 {
		t.Errorf("files left: %v", left)
	}
	// Memory: no images (the disk check passes), but one image of 10^12 pixels.
	if _, err := checkCacheFits(cacheDir, 0, PrepareOptions{Height: 1000000, Width: 1000000, Workers: 4}); err == nil ||
		!strings.Contains(err.Error(), "available") {
		t.Errorf("a 10^12-pixel image: %v, want an error about available memory", err)
	}
	w, err := checkCacheFits(cacheDir, 10, PrepareOptions{Height: 30, Width: 30, Workers: 4})
	if err != nil || w != 4 {
		t.Errorf("a small cache: %d workers, %v", w, err)
	}
}

// TestOneCacheBuilder: while a process builds a cache, another asking for the same one is told who
// builds it; once built, it is reused and no lock file is left.
func TestOneCacheBuilder(t *testing.T) {
	root := solidFolder(t, 4)
	src, err := OpenImageFolder(root, SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cacheDir := t.TempDir()
	opts := PrepareOptions{Height: 4, Width: 4, CacheDir: cacheDir, Workers: 1}
	key := cacheKey(src, PrepareOptions{Height: 4, Width: 4, MaxPixels: DefaultMaxPixels})
	prefix := filepath.Join(cacheDir, fmt.Sprintf("%s-%dx%d-%s-%s", src.Name(), 4, 4, "bilinear", key[:16]))
	held, err := fileutil.TryLock(cachePath(prefix, 0, src.Len())+".lock", "the test's stand-in builder")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Prepare(context.Background(), src, nil, opts); !errors.Is(err, fileutil.ErrLocked) || !strings.Contains(err.Error(), "stand-in builder") {
		t.Errorf("Prepare while another process builds the cache: %v", err)
	}
	_ = held.UnlockAndRemove()
	p, err := Prepare(context.Background(), src, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	_ = p.Close()
	if left, _ := filepath.Glob(filepath.Join(cacheDir, "*.lock")); len(left) != 0 {
		t.Errorf("lock files left: %v", left)
	}
}
