package datasets

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"

	"github.com/learnresize/learnresize/internal/fileutil"
)

// The cache file holds preprocessed (decoded and resized) images so that every epoch after the
// first reads raw pixels instead of decoding JPEGs. Layout, all integers little-endian:
//
//	[0, 64)         header: magic "LRSZCACH", version u32, channels u32, count u64, height u32,
//	                width u32, zero padding
//	[64, ...)       labels: count x i32 (the class, or -1 for a slot whose image was skipped)
//	                checksums: count x u32 (CRC-32C of each slot's pixels; 0 for skipped slots)
//	                zero padding up to a multiple of 4096
//	[dataOff, ...)  pixels: count x height*width*channels uint8, NHWC, slot after slot
//	                metadata: JSON (cache key, source, classes, range, decode skips)
//	last 24 bytes   trailer: metadata length u64, CRC-32C u32 of header+tables+metadata, zero u32,
//	                magic "LRSZEND!"
//
// A cache is written to a temporary file in the same directory, fsynced, and renamed into place,
// so a file at the final name is complete; on open, the length must match the header exactly and
// the checksum of header, tables and metadata must match the trailer, so a truncated or foreign file
// is never trusted. Pixel checksums are verified by Cache.Verify and, if asked, on every read.

const (
	cacheMagic      = "LRSZCACH"
	cacheEndMagic   = "LRSZEND!"
	cacheVersion    = 1
	cacheHeaderSize = 64
	cacheTrailer    = 24
	cacheAlign      = 4096
	cacheExt        = ".lrcache"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// cacheMeta is the JSON metadata of a cache file.
type cacheMeta struct {
	Key      string    `json:"key"`      // full cache key; must match the expected one.
	Source   string    `json:"source"`   // Source.Name().
	Root     string    `json:"root"`     // Source.Root().
	Classes  []string  `json:"classes"`  // class names.
	From     int       `json:"from"`     // slot 0 is example position From of the source order.
	To       int       `json:"to"`       // one past the last position.
	Method   string    `json:"method"`   // resize method.
	Skipped  []Skipped `json:"skipped"`  // files skipped while decoding.
	Examples int       `json:"examples"` // Source.Len() when built.
}

// Cache is an open cache file. Its methods are safe for concurrent use.
type Cache struct {
	f                       *os.File
	path                    string
	count, height, width, c int
	imgSize                 int64
	dataOff                 int64
	labels                  []int32
	crcs                    []uint32
	meta                    cacheMeta
	skipVerify              bool
}

func cacheDataOffset(count int) int64 {
	tables := int64(cacheHeaderSize) + 8*int64(count)
	return (tables + cacheAlign - 1) / cacheAlign * cacheAlign
}

// OpenCache opens and validates a cache file. If wantKey is not empty, the file's key must equal it.
func OpenCache(path, wantKey string) (*Cache, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	c, err := readCacheIndex(f, path, wantKey)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return c, nil
}

// readCacheIndex reads and validates a cache file's header, tables, metadata and trailer (format at
// the top of this file). (One piece: the checks follow the file's layout in order, each one line.)
func readCacheIndex(f *os.File, path, wantKey string) (*Cache, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("cache %s: %s", path, fmt.Sprintf(format, args...))
	}
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := info.Size()
	hdr := make([]byte, cacheHeaderSize)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		return nil, bad("short header: %v", err)
	}
	le := binary.LittleEndian
	if string(hdr[:8]) != cacheMagic {
		return nil, bad("not a cache file (bad magic)")
	}
	if v := le.Uint32(hdr[8:12]); v != cacheVersion {
		return nil, bad("format version %d, want %d", v, cacheVersion)
	}
	c := &Cache{f: f, path: path}
	c.c = int(le.Uint32(hdr[12:16]))
	count64 := le.Uint64(hdr[16:24])
	c.height, c.width = int(le.Uint32(hdr[24:28])), int(le.Uint32(hdr[28:32]))
	if c.c <= 0 || c.height <= 0 || c.width <= 0 || count64 > 1<<31 {
		return nil, bad("bad header (count %d, %dx%dx%d)", count64, c.height, c.width, c.c)
	}
	c.count = int(count64)
	c.imgSize = int64(c.height) * int64(c.width) * int64(c.c)
	c.dataOff = cacheDataOffset(c.count)
	pixelsEnd := c.dataOff + int64(c.count)*c.imgSize
	if size < pixelsEnd+cacheTrailer {
		return nil, bad("truncated: %d bytes, want at least %d", size, pixelsEnd+cacheTrailer)
	}
	trailer := make([]byte, cacheTrailer)
	if _, err := f.ReadAt(trailer, size-cacheTrailer); err != nil {
		return nil, bad("reading trailer: %v", err)
	}
	if string(trailer[16:24]) != cacheEndMagic {
		return nil, bad("no end marker: incomplete file")
	}
	metaLen := int64(le.Uint64(trailer[0:8]))
	if pixelsEnd+metaLen+cacheTrailer != size {
		return nil, bad("length %d does not match its header (want %d)", size, pixelsEnd+metaLen+cacheTrailer)
	}
	tables := make([]byte, 8*c.count)
	if _, err := f.ReadAt(tables, cacheHeaderSize); err != nil {
		return nil, bad("reading tables: %v", err)
	}
	metaBytes := make([]byte, metaLen)
	if _, err := f.ReadAt(metaBytes, pixelsEnd); err != nil {
		return nil, bad("reading metadata: %v", err)
	}
	sum := crc32.Update(crc32.Update(crc32.Checksum(hdr, castagnoli), castagnoli, tables), castagnoli, metaBytes)
	if sum != le.Uint32(trailer[8:12]) {
		return nil, bad("checksum mismatch: corrupt")
	}
	if err := json.Unmarshal(metaBytes, &c.meta); err != nil {
		return nil, bad("metadata: %v", err)
	}
	if wantKey != "" && c.meta.Key != wantKey {
		return nil, bad("built for another source or configuration")
	}
	c.labels = make([]int32, c.count)
	c.crcs = make([]uint32, c.count)
	for i := range c.count {
		c.labels[i] = int32(le.Uint32(tables[4*i:]))
		c.crcs[i] = le.Uint32(tables[4*c.count+4*i:])
	}
	return c, nil
}

// Path is the cache file.
func (c *Cache) Path() string { return c.path }

// Len is the number of slots (skipped slots included).
func (c *Cache) Len() int { return c.count }

// Shape returns height, width and channels of every image.
func (c *Cache) Shape() (height, width, channels int) { return c.height, c.width, c.c }

// Label returns the class of a slot, or -1 if its image was skipped.
func (c *Cache) Label(slot int) int { return int(c.labels[slot]) }

// SetVerifyReads says whether ReadImage checks each image's CRC-32C (the default: about 30 µs per
// 300x300 image, against a training step's tens of milliseconds; a damaged cache must never be
// trained on silently).
func (c *Cache) SetVerifyReads(v bool) { c.skipVerify = !v }

// damaged is the error for a slot whose pixels fail their checksum: it names the file and what to do.
func (c *Cache) damaged(slot int) error {
	return fmt.Errorf("cache %s is damaged: image %d fails its checksum (disk or memory fault, or the file "+
		"was changed): delete the file and run again to rebuild it from the source", c.path, slot)
}

// ReadImage reads a slot's pixels into dst (height*width*channels bytes).
func (c *Cache) ReadImage(slot int, dst []uint8) error {
	if slot < 0 || slot >= c.count {
		return fmt.Errorf("cache %s: slot %d out of range [0, %d)", c.path, slot, c.count)
	}
	if int64(len(dst)) != c.imgSize {
		return fmt.Errorf("cache %s: destination of %d bytes, want %d", c.path, len(dst), c.imgSize)
	}
	if c.labels[slot] < 0 {
		return fmt.Errorf("cache %s: slot %d holds no image (skipped)", c.path, slot)
	}
	if _, err := c.f.ReadAt(dst, c.dataOff+int64(slot)*c.imgSize); err != nil {
		return fmt.Errorf("cache %s: reading slot %d: %w", c.path, slot, err)
	}
	if !c.skipVerify && crc32.Checksum(dst, castagnoli) != c.crcs[slot] {
		return c.damaged(slot)
	}
	return nil
}

// Verify reads every image and checks its checksum (a full read of the file).
func (c *Cache) Verify() error {
	buf := make([]uint8, c.imgSize)
	for slot := range c.count {
		if c.labels[slot] < 0 {
			continue
		}
		if _, err := c.f.ReadAt(buf, c.dataOff+int64(slot)*c.imgSize); err != nil {
			return fmt.Errorf("cache %s: reading slot %d: %w", c.path, slot, err)
		}
		if crc32.Checksum(buf, castagnoli) != c.crcs[slot] {
			return c.damaged(slot)
		}
	}
	return nil
}

// Close closes the file.
func (c *Cache) Close() error { return c.f.Close() }

// cacheWriter builds a cache file in a temporary file next to its final path.
type cacheWriter struct {
	f                 *os.File
	tmpPath, final    string
	count, h, w, c    int
	imgSize, dataOff  int64
	labels            []int32
	crcs              []uint32
	committed, closed bool
	lock              *fileutil.Lock // held on the temporary file while it is written
}

// tmpInfix marks temporary cache files: "<final>.tmp-<random>".
const tmpInfix = ".tmp-"

func createCacheWriter(final string, count, h, w, c int) (*cacheWriter, error) {
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	removeStaleTemps(dir)
	f, err := os.CreateTemp(dir, filepath.Base(final)+tmpInfix+"*")
	if err != nil {
		return nil, err
	}
	cw := &cacheWriter{f: f, tmpPath: f.Name(), final: final, count: count, h: h, w: w, c: c,
		imgSize: int64(h) * int64(w) * int64(c), dataOff: cacheDataOffset(count),
		labels: make([]int32, count), crcs: make([]uint32, count)}
	// The lock tells other processes this file is being written; removeStaleTemps deletes only
	// unlocked ones. The operating system drops it when this process dies, however it dies.
	lock, ok, err := fileutil.LockExisting(cw.tmpPath)
	if err != nil || !ok {
		cw.abort()
		return nil, fmt.Errorf("cache: cannot lock %s while writing it: %v", cw.tmpPath, err)
	}
	cw.lock = lock
	for i := range cw.labels {
		cw.labels[i] = -1
	}
	if err := f.Truncate(cw.dataOff + int64(count)*cw.imgSize); err != nil {
		cw.abort()
		return nil, err
	}
	return cw, nil
}

// removeStaleTemps deletes the temporary cache files in dir that no process is writing (left by
// killed runs: 1.35 GB for the 5,000 development photos at 300x300); a builder holds a lock on its
// own temporary file (createCacheWriter).
func removeStaleTemps(dir string) {
	matches, _ := filepath.Glob(filepath.Join(dir, "*"+tmpInfix+"*"))
	for _, m := range matches {
		if !fileutil.Locked(m) {
			_ = os.Remove(m)
		}
	}
}

// writeImage stores a slot's pixels and label. Safe for concurrent use on distinct slots.
func (cw *cacheWriter) writeImage(slot int, pix []uint8, label int) error {
	if int64(len(pix)) != cw.imgSize {
		return fmt.Errorf("cache: image of %d bytes, want %d", len(pix), cw.imgSize)
	}
	if _, err := cw.f.WriteAt(pix, cw.dataOff+int64(slot)*cw.imgSize); err != nil {
		return err
	}
	cw.labels[slot] = int32(label)
	cw.crcs[slot] = crc32.Checksum(pix, castagnoli)
	return nil
}

// commit writes tables, metadata and trailer, fsyncs and renames the file into place.
func (cw *cacheWriter) commit(meta cacheMeta) error {
	le := binary.LittleEndian
	hdr := make([]byte, cacheHeaderSize)
	copy(hdr, cacheMagic)
	le.PutUint32(hdr[8:], cacheVersion)
	le.PutUint32(hdr[12:], uint32(cw.c))
	le.PutUint64(hdr[16:], uint64(cw.count))
	le.PutUint32(hdr[24:], uint32(cw.h))
	le.PutUint32(hdr[28:], uint32(cw.w))
	tables := make([]byte, 8*cw.count)
	for i := range cw.count {
		le.PutUint32(tables[4*i:], uint32(cw.labels[i]))
		le.PutUint32(tables[4*cw.count+4*i:], cw.crcs[i])
	}
	metaBytes, err := json.Marshal(meta)
	if err != nil {
		cw.abort()
		return err
	}
	pixelsEnd := cw.dataOff + int64(cw.count)*cw.imgSize
	trailer := make([]byte, cacheTrailer)
	le.PutUint64(trailer[0:], uint64(len(metaBytes)))
	sum := crc32.Update(crc32.Update(crc32.Checksum(hdr, castagnoli), castagnoli, tables), castagnoli, metaBytes)
	le.PutUint32(trailer[8:], sum)
	copy(trailer[16:], cacheEndMagic)
	writes := []struct {
		b   []byte
		off int64
	}{{tables, cacheHeaderSize}, {metaBytes, pixelsEnd}, {trailer, pixelsEnd + int64(len(metaBytes))}, {hdr, 0}}
	for _, w := range writes {
		if _, err := cw.f.WriteAt(w.b, w.off); err != nil {
			cw.abort()
			return err
		}
	}
	cw.closed = true
	if err := fileutil.CommitFile(cw.f, cw.final); err != nil {
		_ = os.Remove(cw.tmpPath)
		_ = cw.lock.Unlock()
		return err
	}
	cw.committed = true
	_ = cw.lock.Unlock()
	return nil
}

// abort removes the temporary file (idempotent; a no-op after commit).
func (cw *cacheWriter) abort() {
	if cw.committed {
		return
	}
	if !cw.closed {
		cw.closed = true
		_ = cw.f.Close()
	}
	_ = os.Remove(cw.tmpPath)
	_ = cw.lock.Unlock()
}

// findCache returns the smallest valid cache file of prefix whose range covers [from, to), or "".
// Names are "<prefix>-<from>-<to>.lrcache".
func findCache(prefix string, from, to int) string {
	matches, _ := filepath.Glob(prefix + "-*" + cacheExt)
	best, bestLen := "", -1
	for _, m := range matches {
		rest := strings.TrimSuffix(strings.TrimPrefix(m, prefix+"-"), cacheExt)
		var lo, hi int
		if n, err := fmt.Sscanf(rest, "%d-%d", &lo, &hi); err != nil || n != 2 || fmt.Sprintf("%d-%d", lo, hi) != rest {
			continue
		}
		if lo <= from && hi >= to && (bestLen < 0 || hi-lo < bestLen) {
			best, bestLen = m, hi-lo
		}
	}
	return best
}

func cachePath(prefix string, from, to int) string {
	return fmt.Sprintf("%s-%d-%d%s", prefix, from, to, cacheExt)
}
