package datasets

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/janpfeifer/go-benchmarks"
)

var (
	flagBenchDuration = flag.Duration("bench_duration", 0, "run the go-benchmarks data pipeline benchmarks for this long each (0 skips them)")
	flagBenchCacheDir = flag.String("bench_cache_dir", "", "cache directory of the pipeline benchmark (default: a temporary directory)")
)

// throughput accumulates images and time over the calls of a benchmarked function, so that the
// benchmark can also report images/s.
type throughput struct {
	images int
	total  time.Duration
}

func (tp *throughput) run(f func() int) func() {
	return func() {
		start := time.Now()
		n := f()
		tp.total += time.Since(start)
		tp.images += n
	}
}

func (tp *throughput) String() string {
	return fmt.Sprintf("%.0f images/s", float64(tp.images)/tp.total.Seconds())
}

// TestBenchPipeline measures the data pipeline on the real development images (5,000 180x180
// JPEGs of PetImages, see TestPetImagesDev):
//
//   - first pass: read + decode + resize to 300x300 (what Prepare does per image), with one
//     goroutine and with one per core, and a full Prepare (which also writes the cache);
//
//   - from the cache: shuffled batches of 64 300x300 uint8 images (tutorial settings), as Go slices
//     and converted to GoMLX tensors.
//
//     go test ./datasets -run TestBenchPipeline -bench_duration=10s -v
func TestBenchPipeline(t *testing.T) {
	if *flagBenchDuration == 0 {
		t.Skip("benchmark: set -bench_duration=10s to run it")
	}
	dir := petImagesDev(t)
	src, err := OpenCatsVsDogs(dir, SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = src.Close() }()
	cores := runtime.NumCPU()
	fmt.Printf("data pipeline on %s: %d images, %d cores (GOMAXPROCS %d), %s/%s, %s\n",
		dir, src.Len(), cores, runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())

	// First pass, per image, without the cache writes.
	decodeImages := func(workers, perCall int, next *int) int {
		done := make(chan struct{})
		for w := range workers {
			go func() {
				defer func() { done <- struct{}{} }()
				rz, _ := NewHostResizer(0, DefaultImageSize, DefaultImageSize)
				out := make([]uint8, DefaultImageSize*DefaultImageSize*3)
				var buf []uint8
				for k := w; k < perCall; k += workers {
					pos := (*next + k) % src.Len()
					if _, err := processOne(src, pos, DefaultMaxPixels, rz, out, &buf); err != nil {
						panic(fmt.Sprintf("%s: %v", src.Example(pos).Name, err))
					}
				}
			}()
		}
		for range workers {
			<-done
		}
		*next += perCall
		return perCall
	}
	// The real cats_vs_dogs images are larger than the development copies (about 500x375 on
	// average): a dev image upscaled to 500x375 and re-encoded estimates their decode cost.
	big := largeJPEG(t, src)
	decodeBig := func() int {
		rz, _ := NewHostResizer(0, DefaultImageSize, DefaultImageSize)
		out := make([]uint8, DefaultImageSize*DefaultImageSize*3)
		for range 16 {
			pix, w, h, err := DecodeRGB(big, 0)
			if err != nil {
				panic(err)
			}
			if err := rz.Resize(out, pix, h, w, 3); err != nil {
				panic(err)
			}
		}
		return 16
	}
	var tp1, tpN, tpBig throughput
	next1, nextN := 0, 0
	benchmarks.New(
		benchmarks.NamedFunction{Name: "decode+resize 64 dev images, 1 goroutine", Func: tp1.run(func() int { return decodeImages(1, 64, &next1) })},
		benchmarks.NamedFunction{Name: fmt.Sprintf("decode+resize 64 dev images, %d goroutines", cores), Func: tpN.run(func() int { return decodeImages(cores, 64, &nextN) })},
		benchmarks.NamedFunction{Name: "decode+resize 16 500x375 JPEGs, 1 goroutine", Func: tpBig.run(decodeBig)},
	).WithWarmUps(1).WithDuration(*flagBenchDuration).Done()
	fmt.Printf("first pass: dev images (180x180): 1 goroutine %s; %d goroutines %s (%.0f images/s per core); 500x375 JPEG: 1 goroutine %s\n",
		&tp1, cores, &tpN, float64(tpN.images)/tpN.total.Seconds()/float64(cores), &tpBig)

	cacheDir := *flagBenchCacheDir
	if cacheDir == "" {
		cacheDir = t.TempDir()
	}
	start := time.Now()
	prep, err := Prepare(context.Background(), src, nil, PrepareOptions{CacheDir: cacheDir, Progress: os.Stdout})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = prep.Close() }()
	elapsed := time.Since(start)
	if prep.Built() {
		fmt.Printf("Prepare (decode + resize + cache write, %d workers): %d images in %s = %.0f images/s\n",
			cores, src.Len(), elapsed.Round(time.Millisecond), float64(src.Len())/elapsed.Seconds())
	}

	split, err := prep.Split("train")
	if err != nil {
		t.Fatal(err)
	}
	loader, err := split.Loader(LoaderOptions{BatchSize: 64, Shuffle: true, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	epoch := 0
	it := loader.Iterator(context.Background(), epoch)
	nextBatch := func() *Batch {
		b, err := it.Next()
		if err != nil { // end of the epoch: start the next one.
			it.Close()
			epoch++
			it = loader.Iterator(context.Background(), epoch)
			if b, err = it.Next(); err != nil {
				panic(err)
			}
		}
		return b
	}
	defer func() { it.Close() }()
	var tpSlices, tpTensors throughput
	benchmarks.New(
		benchmarks.NamedFunction{Name: "cache -> batch of 64 (Go slices)", Func: tpSlices.run(func() int {
			b := nextBatch()
			n := b.Size
			b.Release()
			return n
		})},
		benchmarks.NamedFunction{Name: "cache -> batch of 64 -> GoMLX tensors", Func: tpTensors.run(func() int {
			b := nextBatch()
			images, labels, err := b.Tensors()
			if err != nil {
				panic(err)
			}
			n := b.Size
			b.Release()
			_ = images.FinalizeAll()
			_ = labels.FinalizeAll()
			return n
		})},
	).WithWarmUps(2).WithDuration(*flagBenchDuration).Done()
	fmt.Printf("from the cache (300x300x3 uint8, shuffle buffer 6400, prefetch 2): slices %s; with tensors %s\n", &tpSlices, &tpTensors)
}

// largeJPEG upscales the first development image to 500x375 and encodes it (quality 90).
func largeJPEG(t *testing.T, src *Source) []byte {
	t.Helper()
	data, err := src.ReadFile(0)
	if err != nil {
		t.Fatal(err)
	}
	pix, w, h, err := DecodeRGB(data, 0)
	if err != nil {
		t.Fatal(err)
	}
	rz, _ := NewHostResizer(0, 375, 500)
	big := make([]uint8, 375*500*3)
	if err := rz.Resize(big, pix, h, w, 3); err != nil {
		t.Fatal(err)
	}
	img := image.NewRGBA(image.Rect(0, 0, 500, 375))
	for i := range 500 * 375 {
		img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = big[3*i], big[3*i+1], big[3*i+2], 255
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
