package datasets

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/learnresize/learnresize/internal/fileutil"
	"github.com/learnresize/learnresize/internal/resources"
	"github.com/learnresize/learnresize/resample"
)

// DefaultImageSize is the tutorial's INP_SIZE: every image is resized to 300x300.
const DefaultImageSize = 300

// PrepareOptions configure Prepare.
type PrepareOptions struct {
	// Height and Width of the stored images (0: DefaultImageSize).
	Height, Width int
	// Method is the resize method (the zero value is resample.Bilinear, tf.image.resize's default).
	Method resample.Method
	// CacheDir holds the cache files (""; DataDir("")/cache).
	CacheDir string
	// Workers decode in parallel (0: runtime.NumCPU()).
	Workers int
	// MaxPixels bounds width*height of a source image (0: DefaultMaxPixels).
	MaxPixels int
	// Progress receives a line every ProgressInterval (default 5 s) while images are decoded, and a
	// summary at the end (nil: silent).
	Progress         io.Writer
	ProgressInterval time.Duration
	// NoVerifyReads turns off the CRC-32C check of every image read (see Cache.SetVerifyReads).
	NoVerifyReads bool
}

// Prepared is a Source decoded, resized and stored in a cache file, ready to be iterated from
// disk. It covers the example positions [From, To) of the source order: the smallest range holding
// every split passed to Prepare. It does not use the Source afterwards: the source can be closed.
type Prepared struct {
	cache    *Cache
	name     string
	classes  []string
	examples []Example // the source's examples in [from, to).
	from, to int
	n        int // Source.Len().
	skipped  SkipReport
	built    bool
}

// Prepare decodes and resizes the examples of the given splits (TFDS expressions over the "train"
// split, e.g. "train[:40%]", "train[40%:50%]"; none means all of "train") into an on-disk cache, or
// reuses a valid cache built earlier for the same source content, order, image size, method and
// limits whose range covers them. Decoding runs on opts.Workers goroutines; images that fail to
// decode are skipped and counted (Report), so a split can hold fewer examples than its range.
//
// The cache key includes the source's Fingerprint, so a changed zip or folder gets a new cache; old
// cache files are not deleted (they live in opts.CacheDir).
// (One sequence: resolve the splits, find or build the cache, check it, slice it; each step a call.)
func Prepare(ctx context.Context, src *Source, splits []string, opts PrepareOptions) (*Prepared, error) {
	if src == nil {
		return nil, errors.New("prepare: nil source")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if len(splits) == 0 {
		splits = []string{TrainSplit}
	}
	n := src.Len()
	from, to, err := coveringRange(splits, n)
	if err != nil {
		return nil, err
	}
	if from >= to {
		return nil, fmt.Errorf("prepare: splits %q select no examples of the %d in %s", splits, n, src.Root())
	}

	key := cacheKey(src, opts)
	prefix := filepath.Join(opts.CacheDir, fmt.Sprintf("%s-%dx%d-%s-%s", src.Name(), opts.Height, opts.Width, opts.Method, key[:16]))
	p := &Prepared{name: src.Name(), classes: src.Classes(), n: n}
	cache := reuseCache(prefix, key, from, to, n)
	if cache == nil {
		path := cachePath(prefix, from, to)
		if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
		// One builder per cache: a second process is told who builds it rather than decoding the
		// same images beside it.
		lock, err := fileutil.TryLock(path+".lock", "building the cache "+path)
		if err != nil {
			return nil, fmt.Errorf("prepare: %w: wait for it to finish, then run again (the cache will be reused)", err)
		}
		defer func() { _ = lock.UnlockAndRemove() }() // two builders at once would only waste time
		cache = reuseCache(prefix, key, from, to, n)  // built by another process while we waited for the lock?
	}
	if cache == nil {
		path := cachePath(prefix, from, to)
		if err := buildCache(ctx, src, path, key, from, to, opts); err != nil {
			return nil, err
		}
		c, err := OpenCache(path, key)
		if err != nil {
			return nil, fmt.Errorf("prepare: reopening the cache just built: %w", err)
		}
		cache, p.built = c, true
	}
	cache.SetVerifyReads(!opts.NoVerifyReads)
	p.cache = cache
	p.from, p.to = cache.meta.From, cache.meta.To
	p.examples = make([]Example, p.to-p.from)
	for i := range p.examples {
		p.examples[i] = src.Example(p.from + i)
	}
	p.skipped.merge(src.Skipped())
	for _, s := range cache.meta.Skipped {
		p.skipped.add(s.Name, s.Reason, s.Detail)
	}
	return p, nil
}

// reuseCache opens the smallest valid cache of prefix covering [from, to), or returns nil.
func reuseCache(prefix, key string, from, to, n int) *Cache {
	found := findCache(prefix, from, to)
	if found == "" {
		return nil
	}
	c, err := OpenCache(found, key)
	if err == nil && c.meta.Examples == n && rangeMatches(found, c, prefix) {
		return c
	}
	if c != nil {
		_ = c.Close()
	}
	return nil
}

func rangeMatches(path string, c *Cache, prefix string) bool {
	return cachePath(prefix, c.meta.From, c.meta.To) == path && c.count == c.meta.To-c.meta.From
}

// withDefaults fills in the options' defaults and checks them.
func (opts PrepareOptions) withDefaults() (PrepareOptions, error) {
	if opts.Height == 0 {
		opts.Height = DefaultImageSize
	}
	if opts.Width == 0 {
		opts.Width = DefaultImageSize
	}
	if opts.Height < 0 || opts.Width < 0 {
		return opts, fmt.Errorf("prepare: image size %dx%d must be positive", opts.Height, opts.Width)
	}
	if opts.MaxPixels <= 0 {
		opts.MaxPixels = DefaultMaxPixels
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.NumCPU()
	}
	if _, err := NewHostResizer(opts.Method, opts.Height, opts.Width); err != nil {
		return opts, fmt.Errorf("prepare: %w", err)
	}
	if opts.CacheDir == "" {
		dir, err := DataDir("")
		if err != nil {
			return opts, err
		}
		opts.CacheDir = filepath.Join(dir, "cache")
	}
	return opts, nil
}

// coveringRange returns the smallest range of example positions, out of n, that holds every split.
func coveringRange(splits []string, n int) (from, to int, err error) {
	from, to = n, 0
	for _, expr := range splits {
		spec, err := ParseSplit(expr)
		if err != nil {
			return 0, 0, err
		}
		ranges, err := spec.Ranges(n)
		if err != nil {
			return 0, 0, err
		}
		for _, r := range ranges {
			if r.Len() > 0 {
				from, to = min(from, r.From), max(to, r.To)
			}
		}
	}
	return from, to, nil
}

// checkCacheFits refuses, before anything is written, a cache that the disk cannot hold or whose
// images one decoding worker cannot hold in memory, and returns how many workers fit in memory.
// Each worker holds its output image and the resizer's float32 copy of it: 15 bytes per pixel.
func checkCacheFits(dir string, count int, opts PrepareOptions) (workers int, err error) {
	img := uint64(opts.Height) * uint64(opts.Width) * 3
	need := uint64(cacheDataOffset(count)) + uint64(count)*img
	existing := dir
	for {
		if _, err := os.Stat(existing); err == nil || filepath.Dir(existing) == existing {
			break
		}
		existing = filepath.Dir(existing)
	}
	if free, ok := resources.FreeDisk(existing); ok && need > free {
		return 0, fmt.Errorf("prepare: the cache of %d images at %dx%d needs %s in %s, whose file system has %s free: "+
			"free some space, put the data directory elsewhere (-data-dir or LEARNRESIZE_DATA_DIR), or choose a smaller -inp",
			count, opts.Height, opts.Width, resources.Size(need), dir, resources.Size(free))
	}
	workers = opts.Workers
	if mem, ok := resources.AvailableMemory(); ok {
		perWorker := img * 5
		if perWorker > mem {
			return 0, fmt.Errorf("prepare: one %dx%d image needs %s to decode and resize, and this machine has %s available: choose a smaller -inp",
				opts.Height, opts.Width, resources.Size(perWorker), resources.Size(mem))
		}
		workers = max(1, min(workers, int(mem/2/perWorker))) // leave half for the rest of the process
	}
	return workers, nil
}

// cacheKey hashes everything the cached pixels depend on.
func cacheKey(src *Source, opts PrepareOptions) string {
	h := sha256.New()
	_, _ = fmt.Fprintf(h, "learnresize cache v%d\nsource %s\nfingerprint %s\norder %d\njfif %d\nmaxfile %d\n",
		cacheVersion, src.Name(), src.Fingerprint(), src.opts.OrderSeed, jfifWindow(src.opts), src.maxFileBytes())
	_, _ = fmt.Fprintf(h, "size %dx%d\nmethod %s\nmaxpixels %d\nexamples %d\n", opts.Height, opts.Width, opts.Method, opts.MaxPixels, src.Len())
	return hex.EncodeToString(h.Sum(nil))
}

// buildCache decodes and resizes positions [from, to) of src into a new cache file at path.
// (One piece: its worker goroutines, the progress reporter and the commit share the counters, the
// skip list and the first error declared at its top.)
func buildCache(ctx context.Context, src *Source, path, key string, from, to int, opts PrepareOptions) error {
	count := to - from
	workers, err := checkCacheFits(filepath.Dir(path), count, opts)
	if err != nil {
		return err
	}
	opts.Workers = workers
	cw, err := createCacheWriter(path, count, opts.Height, opts.Width, 3)
	if err != nil {
		return fmt.Errorf("prepare: creating cache in %s: %w", filepath.Dir(path), err)
	}
	defer cw.abort()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		next     atomic.Int64
		done     atomic.Int64
		mu       sync.Mutex
		skipped  []Skipped
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	for range opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rz, _ := NewHostResizer(opts.Method, opts.Height, opts.Width)
			out := make([]uint8, opts.Height*opts.Width*3)
			var decodeBuf []uint8
			for ctx.Err() == nil {
				slot := int(next.Add(1) - 1)
				if slot >= count {
					return
				}
				pos := from + slot
				ex := src.Example(pos)
				pix, err := processOne(src, pos, opts.MaxPixels, rz, out, &decodeBuf)
				if err != nil {
					var skip *SkipError
					if !errors.As(err, &skip) {
						fail(err)
						return
					}
					mu.Lock()
					skipped = append(skipped, Skipped{Name: ex.Name, Reason: skip.Reason, Detail: skip.Error()})
					mu.Unlock()
				} else if err := cw.writeImage(slot, pix, ex.Label); err != nil {
					fail(fmt.Errorf("prepare: writing cache %s: %w", cw.tmpPath, err))
					return
				}
				done.Add(1)
			}
		}()
	}
	prog := newProgress(opts.Progress, "preparing "+src.Name(), int64(count), 0, opts.ProgressInterval)
	prog.unit = "images"
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	ticker := time.NewTicker(200 * time.Millisecond)
	defer ticker.Stop()
wait:
	for {
		select {
		case <-finished:
			break wait
		case <-ticker.C:
			prog.update(done.Load())
		}
	}
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("prepare: interrupted: %w", err)
	}
	prog.finish(done.Load())
	sort.Slice(skipped, func(i, j int) bool { return skipped[i].Name < skipped[j].Name })
	if opts.Progress != nil {
		var r SkipReport
		for _, s := range skipped {
			r.add(s.Name, s.Reason, s.Detail)
		}
		_, _ = fmt.Fprintf(opts.Progress, "preparing %s: %d images stored in %s, %d skipped while decoding (%s)\n",
			src.Name(), count-len(skipped), path, len(skipped), r.String())
	}
	meta := cacheMeta{Key: key, Source: src.Name(), Root: src.Root(), Classes: src.Classes(), From: from, To: to,
		Method: opts.Method.String(), Skipped: skipped, Examples: src.Len()}
	if err := cw.commit(meta); err != nil {
		return fmt.Errorf("prepare: writing cache %s: %w", path, err)
	}
	return nil
}

// processOne reads, decodes and resizes one example into out. Errors are *SkipError for the
// example's own problems.
func processOne(src *Source, pos, maxPixels int, rz *HostResizer, out []uint8, decodeBuf *[]uint8) ([]uint8, error) {
	data, err := src.ReadFile(pos)
	if err != nil {
		return nil, err
	}
	pix, w, h, err := decodeRGB(data, maxPixels, *decodeBuf)
	if err != nil {
		return nil, err
	}
	if cap(pix) <= 64<<20 { // keep buffers up to 64 MiB for the next image.
		*decodeBuf = pix
	}
	if err := rz.Resize(out, pix, h, w, 3); err != nil {
		return nil, &SkipError{Reason: SkipCorrupt, Err: err}
	}
	return out, nil
}

// Name is the source name.
func (p *Prepared) Name() string { return p.name }

// Classes are the class names.
func (p *Prepared) Classes() []string { return append([]string(nil), p.classes...) }

// Range is the covered range of example positions.
func (p *Prepared) Range() Range { return Range{From: p.from, To: p.to} }

// Cache is the underlying cache file.
func (p *Prepared) Cache() *Cache { return p.cache }

// Built reports whether Prepare built the cache (false: it reused one).
func (p *Prepared) Built() bool { return p.built }

// Report lists every skipped file: the source's listing skips (all of them) and the decode skips of
// the covered range.
func (p *Prepared) Report() SkipReport { return p.skipped }

// Close closes the cache file.
func (p *Prepared) Close() error { return p.cache.Close() }

// Split selects a split of the prepared examples, e.g. "train[:40%]". Its ranges (computed on the
// source's Len, as TFDS computes them on the number of examples) must lie within Range; examples
// whose image was skipped while decoding are left out.
func (p *Prepared) Split(expr string) (*Split, error) {
	spec, err := ParseSplit(expr)
	if err != nil {
		return nil, err
	}
	ranges, err := spec.Ranges(p.n)
	if err != nil {
		return nil, err
	}
	s := &Split{prep: p, expr: spec.String()}
	for _, r := range ranges {
		if r.Len() == 0 {
			continue
		}
		if r.From < p.from || r.To > p.to {
			return nil, fmt.Errorf("split %q: examples [%d, %d) are outside the prepared range [%d, %d): pass the split to Prepare",
				expr, r.From, r.To, p.from, p.to)
		}
		s.requested += r.Len()
		for pos := r.From; pos < r.To; pos++ {
			if p.cache.Label(pos-p.from) >= 0 {
				s.slots = append(s.slots, int32(pos-p.from))
			}
		}
	}
	return s, nil
}

// Split is a selection of prepared examples, in source order, ready to be iterated with a Loader.
type Split struct {
	prep      *Prepared
	expr      string
	slots     []int32 // cache slots.
	requested int
}

// Name is the split expression.
func (s *Split) Name() string { return s.expr }

// Len is the number of examples (images that decoded).
func (s *Split) Len() int { return len(s.slots) }

// Requested is the number of positions the expression selects, before decode skips (TFDS's count).
func (s *Split) Requested() int { return s.requested }

// Example returns the i-th example of the split.
func (s *Split) Example(i int) Example { return s.prep.examples[s.slots[i]] }

// Classes are the class names.
func (s *Split) Classes() []string { return s.prep.Classes() }

// SplitIdentity says which examples a split holds, independently of where the files live: a
// training run records it so that resuming on other data is refused rather than silently
// re-partitioned.
type SplitIdentity struct {
	Split    string `json:"split"`
	Examples int    `json:"examples"`
	// Digest is a SHA-256 (hex, first 16 bytes) over each example's name, label and the CRC-32C of
	// its decoded pixels, in split order: a file added, removed, renamed, relabelled or edited, or a
	// changed decoding, changes it.
	Digest string `json:"digest"`
}

// Identity returns the split's SplitIdentity.
func (s *Split) Identity() SplitIdentity {
	h := sha256.New()
	var num [8]byte
	for _, slot := range s.slots {
		ex := s.prep.examples[slot]
		binary.LittleEndian.PutUint32(num[:4], uint32(ex.Label))
		binary.LittleEndian.PutUint32(num[4:], s.prep.cache.crcs[slot])
		_, _ = h.Write([]byte(ex.Name))
		_, _ = h.Write([]byte{0})
		_, _ = h.Write(num[:])
	}
	return SplitIdentity{Split: s.expr, Examples: len(s.slots), Digest: hex.EncodeToString(h.Sum(nil)[:16])}
}

// Image reads the i-th image (height*width*3 bytes, HWC) into dst.
func (s *Split) Image(i int, dst []uint8) error { return s.prep.cache.ReadImage(int(s.slots[i]), dst) }
