package datasets

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"testing"
)

// gray returns the JFIF luma of the pattern, replicated to RGB.
func grayPattern(w, h int) []uint8 {
	pix := testPattern(w, h)
	for i := 0; i < len(pix); i += 3 {
		y := 0.299*float64(pix[i]) + 0.587*float64(pix[i+1]) + 0.114*float64(pix[i+2])
		v := uint8(y + 0.5)
		pix[i], pix[i+1], pix[i+2] = v, v, v
	}
	return pix
}

func TestDecodeRGBFormats(t *testing.T) {
	const w, h = 32, 24
	pattern := testPattern(w, h)

	nrgba := image.NewNRGBA(image.Rect(0, 0, w, h))
	rgba64 := image.NewNRGBA64(image.Rect(0, 0, w, h))
	for i := range w * h {
		nrgba.Pix[4*i], nrgba.Pix[4*i+1], nrgba.Pix[4*i+2], nrgba.Pix[4*i+3] = pattern[3*i], pattern[3*i+1], pattern[3*i+2], 128
		for c := range 3 {
			v := uint16(pattern[3*i+c]) * 257
			rgba64.Pix[8*i+2*c], rgba64.Pix[8*i+2*c+1] = uint8(v>>8), uint8(v)
		}
		rgba64.Pix[8*i+6], rgba64.Pix[8*i+7] = 0xff, 0xff
	}
	palette := color.Palette{color.RGBA{10, 20, 30, 255}, color.RGBA{200, 100, 50, 255}, color.RGBA{0, 255, 0, 255}}
	paletted := image.NewPaletted(image.Rect(0, 0, w, h), palette)
	palettedWant := make([]uint8, w*h*3)
	for i := range w * h {
		k := i % 3
		paletted.Pix[i] = uint8(k)
		c := palette[k].(color.RGBA)
		palettedWant[3*i], palettedWant[3*i+1], palettedWant[3*i+2] = c.R, c.G, c.B
	}
	var gifBuf bytes.Buffer
	if err := gif.Encode(&gifBuf, paletted, nil); err != nil {
		t.Fatal(err)
	}

	// Hand-written BMPs: 8-bit paletted top-down, 1-bit and 4-bit bottom-up, 32-bit BGRX.
	small := [][]uint8{{0, 1, 2, 1, 0}, {2, 2, 1, 0, 0}} // 5x2 palette indices.
	smallWant := make([]uint8, 0, 30)
	for _, row := range small {
		for _, k := range row {
			c := palette[k].(color.RGBA)
			smallWant = append(smallWant, c.R, c.G, c.B)
		}
	}
	rgbaPal := []color.RGBA{palette[0].(color.RGBA), palette[1].(color.RGBA), palette[2].(color.RGBA)}
	bmp8 := bmpBytes(5, 2, 8, true, rgbaPal, [][]byte{small[0], small[1]}, 0)
	pack4 := func(row []uint8) []byte {
		out := make([]byte, (len(row)+1)/2)
		for x, k := range row {
			out[x/2] |= k << (4 * (1 - x%2))
		}
		return out
	}
	bmp4 := bmpBytes(5, 2, 4, false, rgbaPal, [][]byte{pack4(small[0]), pack4(small[1])}, 0)
	bits := [][]uint8{{1, 0, 1, 1, 0, 0, 0, 1, 1}, {0, 1, 0, 0, 1, 1, 1, 0, 0}} // 9x2
	pack1 := func(row []uint8) []byte {
		out := make([]byte, (len(row)+7)/8)
		for x, k := range row {
			out[x/8] |= k << (7 - x%8)
		}
		return out
	}
	bmp1 := bmpBytes(9, 2, 1, false, rgbaPal[:2], [][]byte{pack1(bits[0]), pack1(bits[1])}, 0)
	bitsWant := make([]uint8, 0, 54)
	for _, row := range bits {
		for _, k := range row {
			c := rgbaPal[k]
			bitsWant = append(bitsWant, c.R, c.G, c.B)
		}
	}
	var rows32 [][]byte
	for y := range 2 {
		var row []byte
		for x := range 3 {
			row = append(row, byte(10*x), byte(20*y), byte(7), 0xAA) // B, G, R, X
		}
		rows32 = append(rows32, row)
	}
	bmp32 := bmpBytes(3, 2, 32, false, nil, rows32, 0)
	bmp32Want := []uint8{7, 0, 0, 7, 0, 10, 7, 0, 20, 7, 20, 0, 7, 20, 10, 7, 20, 20}

	tests := []struct {
		name    string
		data    []byte
		w, h    int
		want    []uint8
		meanTol float64
		maxTol  int
	}{
		{"baseline JPEG 4:2:0 (image/jpeg)", jpegBytes(t, w, h), w, h, pattern, 4, 12},
		{"progressive JPEG (cjpeg)", readFixture(t, "progressive.jpg"), w, h, pattern, 4, 12},
		{"grayscale progressive JPEG (cjpeg)", readFixture(t, "gray_progressive.jpg"), w, h, grayPattern(w, h), 1.5, 8},
		{"CMYK JPEG (ImageMagick, Adobe YCCK)", readFixture(t, "cmyk.jpg"), w, h, pattern, 3, 16},
		{"BMP 24-bit (ImageMagick)", readFixture(t, "bmp24.bmp"), w, h, pattern, 0, 0},
		{"PNG NRGBA: alpha dropped, not composited", pngBytes(t, nrgba), w, h, pattern, 0, 0},
		{"PNG 16-bit", pngBytes(t, rgba64), w, h, pattern, 0, 0},
		{"PNG opaque truecolour (decodes to RGBA)", pngBytes(t, patternImage(w, h)), w, h, pattern, 0, 0},
		{"PNG paletted", pngBytes(t, paletted), w, h, palettedWant, 0, 0},
		{"GIF", gifBuf.Bytes(), w, h, palettedWant, 0, 0},
		{"BMP 8-bit top-down", bmp8, 5, 2, smallWant, 0, 0},
		{"BMP 4-bit bottom-up", bmp4, 5, 2, smallWant, 0, 0},
		{"BMP 1-bit", bmp1, 9, 2, bitsWant, 0, 0},
		{"BMP 32-bit", bmp32, 3, 2, bmp32Want, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pix, gotW, gotH, err := DecodeRGB(tc.data, 0)
			if err != nil {
				t.Fatalf("DecodeRGB: %v", err)
			}
			if gotW != tc.w || gotH != tc.h || len(pix) != tc.w*tc.h*3 {
				t.Fatalf("got %dx%d (%d bytes), want %dx%d", gotW, gotH, len(pix), tc.w, tc.h)
			}
			mean, maxDiff := diffStats(pix, tc.want)
			if mean > tc.meanTol || maxDiff > tc.maxTol {
				t.Errorf("pixels differ from the expected pattern: mean %.2f (tolerance %.1f), max %d (tolerance %d)", mean, tc.meanTol, maxDiff, tc.maxTol)
			}
		})
	}
}

// setPNGSize rewrites the IHDR dimensions of a PNG and its CRC.
func setPNGSize(data []byte, w, h uint32) []byte {
	out := append([]byte(nil), data...)
	binary.BigEndian.PutUint32(out[16:], w)
	binary.BigEndian.PutUint32(out[20:], h)
	binary.BigEndian.PutUint32(out[29:], crc32.ChecksumIEEE(out[12:29]))
	return out
}

// setJPEGSize rewrites the dimensions in the SOF0 segment of a JPEG.
func setJPEGSize(t *testing.T, data []byte, w, h uint16) []byte {
	out := append([]byte(nil), data...)
	i := bytes.Index(out, []byte{0xFF, 0xC0})
	if i < 0 {
		t.Fatal("no SOF0 marker")
	}
	binary.BigEndian.PutUint16(out[i+5:], h)
	binary.BigEndian.PutUint16(out[i+7:], w)
	return out
}

func TestDecodeRGBBadInput(t *testing.T) {
	jpg := jpegBytes(t, 32, 24)
	pngSmall := pngBytes(t, patternImage(4, 4))
	rle := bmpBytes(2, 2, 8, false, []color.RGBA{{}}, [][]byte{{0, 0}, {0, 0}}, 1)
	tests := []struct {
		name      string
		data      []byte
		maxPixels int
		want      SkipReason
	}{
		{"zero bytes", nil, 0, SkipEmpty},
		{"text", []byte("this is not an image at all\n"), 0, SkipNotImage},
		{"html error page", []byte("<!DOCTYPE html><html>404</html>"), 0, SkipNotImage},
		{"truncated JPEG data", jpg[:len(jpg)/2], 0, SkipCorrupt},
		{"truncated JPEG header", jpg[:30], 0, SkipCorrupt},
		{"JPEG magic then garbage", append([]byte{0xFF, 0xD8, 0xFF}, bytes.Repeat([]byte{0x42}, 100)...), 0, SkipCorrupt},
		{"PNG bomb: 100000 x 100000 header", setPNGSize(pngSmall, 100000, 100000), 0, SkipTooLarge},
		{"JPEG bomb: 65000 x 65000 header", setJPEGSize(t, jpg, 65000, 65000), 0, SkipTooLarge},
		{"above a configured limit", jpg, 32*24 - 1, SkipTooLarge},
		{"truncated PNG", pngSmall[:len(pngSmall)-20], 0, SkipCorrupt},
		{"GIF magic only", []byte("GIF89a"), 0, SkipCorrupt},
		{"BMP run-length compressed", rle, 0, SkipUnsupported},
		{"BMP truncated pixels", bmpBytes(4, 4, 24, false, nil, nil, 0)[:60], 0, SkipCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pix, _, _, err := DecodeRGB(tc.data, tc.maxPixels)
			var skip *SkipError
			if !errors.As(err, &skip) {
				t.Fatalf("got err %v (pixels %d), want a *SkipError", err, len(pix))
			}
			if skip.Reason != tc.want {
				t.Errorf("reason %q (%v), want %q", skip.Reason, err, tc.want)
			}
		})
	}
}

// TestYCbCrToRGBMatchesStdlib checks the fast YCbCr path against image/color's conversion of the
// same decoded image, for every chroma subsampling image/jpeg produces.
func TestYCbCrToRGBMatchesStdlib(t *testing.T) {
	ratios := []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410}
	for _, ratio := range ratios {
		m := image.NewYCbCr(image.Rect(0, 0, 13, 7), ratio)
		for i := range m.Y {
			m.Y[i] = uint8(i * 37)
		}
		for i := range m.Cb {
			m.Cb[i], m.Cr[i] = uint8(i*53+11), uint8(255-i*29)
		}
		got := toRGB(m, nil)
		for y := range 7 {
			for x := range 13 {
				r, g, b, _ := m.At(x, y).RGBA()
				want := []int{int(r >> 8), int(g >> 8), int(b >> 8)}
				for c := range 3 {
					if d := int(got[(y*13+x)*3+c]) - want[c]; d < -1 || d > 1 {
						t.Fatalf("%v: pixel (%d,%d) channel %d = %d, image/color gives %d", ratio, x, y, c, got[(y*13+x)*3+c], want[c])
					}
				}
			}
		}
	}
}

// TestToRGBSubImagesAndAlpha covers image types and offsets the decoders rarely produce: sub-images
// (non-zero bounds) and premultiplied RGBA with partial alpha, against image/color's conversion.
func TestToRGBSubImagesAndAlpha(t *testing.T) {
	rgba := image.NewRGBA(image.Rect(0, 0, 6, 5))
	for i := range rgba.Pix {
		rgba.Pix[i] = uint8(i * 7)
	}
	for i := 3; i < len(rgba.Pix); i += 4 {
		rgba.Pix[i] = []uint8{255, 0, 128, 200}[i/4%4]
		for c := 1; c <= 3; c++ {
			rgba.Pix[i-c] = min(rgba.Pix[i-c], rgba.Pix[i]) // valid premultiplied values.
		}
	}
	gray := image.NewGray(image.Rect(0, 0, 6, 5))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i * 9)
	}
	cmyk := image.NewCMYK(image.Rect(0, 0, 6, 5))
	for i := range cmyk.Pix {
		cmyk.Pix[i] = uint8(i * 5)
	}
	nrgba := image.NewNRGBA(image.Rect(0, 0, 6, 5))
	for i := range nrgba.Pix {
		nrgba.Pix[i] = uint8(i * 3)
	}
	ycc := image.NewYCbCr(image.Rect(0, 0, 6, 5), image.YCbCrSubsampleRatio420)
	for i := range ycc.Y {
		ycc.Y[i] = uint8(i * 11)
	}
	for i := range ycc.Cb {
		ycc.Cb[i], ycc.Cr[i] = uint8(100+i*13), uint8(200-i*7)
	}
	sub := image.Rect(1, 1, 5, 4)
	for _, img := range []image.Image{rgba, gray, cmyk, nrgba, ycc,
		rgba.SubImage(sub), gray.SubImage(sub), cmyk.SubImage(sub), nrgba.SubImage(sub), ycc.SubImage(sub)} {
		b := img.Bounds()
		got := toRGB(img, nil)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
				i := ((y-b.Min.Y)*b.Dx() + (x - b.Min.X)) * 3
				for k, want := range []uint8{c.R, c.G, c.B} {
					if d := int(got[i+k]) - int(want); d < -1 || d > 1 {
						t.Fatalf("%T %v: pixel (%d,%d)[%d] = %d, want %d", img, b, x, y, k, got[i+k], want)
					}
				}
			}
		}
	}
}
