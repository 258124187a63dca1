package datasets

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// testPattern is the 8-bit RGB pattern of the fixtures in testdata (see gen_fixtures.sh):
// R = 255*x/(w-1), G = 255*y/(h-1), B = 96, rounded.
func testPattern(w, h int) []uint8 {
	pix := make([]uint8, w*h*3)
	for y := range h {
		for x := range w {
			i := (y*w + x) * 3
			pix[i] = uint8((255*x*2 + (w - 1)) / (2 * (w - 1)))
			pix[i+1] = uint8((255*y*2 + (h - 1)) / (2 * (h - 1)))
			pix[i+2] = 96
		}
	}
	return pix
}

func patternImage(w, h int) *image.RGBA {
	pix := testPattern(w, h)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range w * h {
		img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = pix[3*i], pix[3*i+1], pix[3*i+2], 255
	}
	return img
}

// plainJPEG encodes a w x h pattern as a baseline JPEG the way image/jpeg writes it: without a JFIF
// APP0 segment, so TFDS's cats_vs_dogs rule drops it.
func plainJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, patternImage(w, h), &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// jfifAPP0 is a JFIF APP0 segment (version 1.01, no thumbnail).
var jfifAPP0 = []byte{0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0}

// jpegBytes encodes a w x h pattern as a JFIF JPEG, like the cats_vs_dogs images TFDS keeps: SOI,
// then the JFIF APP0 segment, so "JFIF" sits at bytes 6-9.
func jpegBytes(t testing.TB, w, h int) []byte {
	t.Helper()
	plain := plainJPEG(t, w, h)
	return append(append(append([]byte{}, plain[:2]...), jfifAPP0...), plain[2:]...)
}

// exifFirstJPEG is a valid JPEG whose JFIF segment follows a short EXIF APP1 segment, so "JFIF" is
// at byte 30: outside a 10-byte window, inside TFDS's effective 512-byte one.
func exifFirstJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	plain := plainJPEG(t, w, h)
	app1 := []byte{0xFF, 0xE1, 0x00, 0x16, 'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0, 42, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0}
	out := append([]byte{}, plain[:2]...)
	out = append(out, app1...)
	out = append(out, jfifAPP0...)
	return append(out, plain[2:]...)
}

func pngBytes(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// bmpBytes writes an uncompressed BMP with a BITMAPINFOHEADER. rows are given top to bottom, already
// packed at bpp bits per pixel (without the 4-byte row padding, which bmpBytes adds).
func bmpBytes(w, h, bpp int, topDown bool, palette []color.RGBA, rows [][]byte, compression uint32) []byte {
	stride := ((w*bpp + 31) / 32) * 4
	le := binary.LittleEndian
	palLen := len(palette)
	dataOff := 14 + 40 + 4*palLen
	buf := make([]byte, dataOff+stride*h)
	buf[0], buf[1] = 'B', 'M'
	le.PutUint32(buf[2:], uint32(len(buf)))
	le.PutUint32(buf[10:], uint32(dataOff))
	le.PutUint32(buf[14:], 40)
	le.PutUint32(buf[18:], uint32(w))
	hh := int32(h)
	if topDown {
		hh = -hh
	}
	le.PutUint32(buf[22:], uint32(hh))
	le.PutUint16(buf[26:], 1)
	le.PutUint16(buf[28:], uint16(bpp))
	le.PutUint32(buf[30:], compression)
	le.PutUint32(buf[46:], uint32(palLen))
	for i, c := range palette {
		copy(buf[54+4*i:], []byte{c.B, c.G, c.R, 0})
	}
	for y, row := range rows {
		dstY := h - 1 - y
		if topDown {
			dstY = y
		}
		copy(buf[dataOff+dstY*stride:], row)
	}
	return buf
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// zipBytes builds a zip archive; entries ending in "/" are directories.
func zipBytes(t testing.TB, names []string, contents map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range names {
		if name[len(name)-1] == '/' {
			if _, err := zw.Create(name); err != nil {
				t.Fatal(err)
			}
			continue
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(contents[name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// diffStats returns the mean and max absolute difference of two equal-length byte slices.
func diffStats(a, b []uint8) (mean float64, maxDiff int) {
	sum := 0
	for i := range a {
		d := int(a[i]) - int(b[i])
		if d < 0 {
			d = -d
		}
		sum += d
		maxDiff = max(maxDiff, d)
	}
	return float64(sum) / float64(len(a)), maxDiff
}

// newStoredZip writes an uncompressed (stored) zip, so tests can damage member bytes in place.
func newStoredZip(t testing.TB, w *bytes.Buffer, files map[string][]byte) *zip.Writer {
	t.Helper()
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	zw := zip.NewWriter(w)
	for _, name := range names {
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write(files[name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return zw
}

func sortedStrings(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
