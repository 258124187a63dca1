package datasets

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
)

// DefaultMaxPixels is the default limit on width*height of an image to decode (50 megapixels, a
// 150 MB RGB buffer): larger images are skipped with SkipTooLarge before any pixel is decoded, so
// that a tiny file announcing a huge image (a decompression bomb) cannot exhaust memory.
const DefaultMaxPixels = 50_000_000

// Image formats DecodeRGB recognises by their magic bytes, whatever the file's extension.
const (
	FormatJPEG = "jpeg"
	FormatPNG  = "png"
	FormatGIF  = "gif"
	FormatBMP  = "bmp"
)

// sniffFormat names the image format from the first bytes, or returns "".
func sniffFormat(data []byte) string {
	switch {
	case len(data) >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF:
		return FormatJPEG
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return FormatPNG
	case bytes.HasPrefix(data, []byte("GIF87a")), bytes.HasPrefix(data, []byte("GIF89a")):
		return FormatGIF
	case len(data) >= 18 && data[0] == 'B' && data[1] == 'M':
		return FormatBMP
	}
	return ""
}

// DecodeRGB decodes a JPEG (baseline or progressive; grayscale, YCbCr or CMYK), PNG, GIF (first
// frame) or BMP image to packed 8-bit RGB, row-major: pix[(y*w+x)*3+c]. The format comes from the
// magic bytes, not from a file name. Alpha is dropped without compositing, as tf.io.decode_image(...,
// channels=3) does; EXIF orientation is ignored, as TensorFlow does.
//
// maxPixels (<= 0: DefaultMaxPixels) bounds width*height; the check reads only the header.
//
// Errors are *SkipError values whose Reason classifies the failure (SkipEmpty, SkipNotImage,
// SkipTooLarge, SkipUnsupported, SkipCorrupt); DecodeRGB never panics on bad input.
//
// It is the decoder of the training pipeline and of learnresize resize. For the same results from
// resizer.Model.ResizeImage, decode with it and pass the pixels as an image (an *image.RGBA with
// alpha 255, say), not an image from image/jpeg: DecodeRGB converts YCbCr to RGB with libjpeg's
// rounding, image/jpeg's colour model with its own, a level apart on some pixels.
func DecodeRGB(data []byte, maxPixels int) (pix []uint8, width, height int, err error) {
	return decodeRGB(data, maxPixels, nil)
}

// decodeRGB is DecodeRGB writing into buf when it is large enough.
func decodeRGB(data []byte, maxPixels int, buf []uint8) (pix []uint8, width, height int, err error) {
	defer func() {
		// The standard decoders do not panic on bad input as far as we know; this keeps a bug in one
		// of them (or in ours) from taking down a multi-hour preprocessing run over one file.
		if r := recover(); r != nil {
			pix, width, height, err = nil, 0, 0, skipErr(SkipCorrupt, "decoder panic: %v", r)
		}
	}()
	if len(data) == 0 {
		return nil, 0, 0, skipErr(SkipEmpty, "zero bytes")
	}
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	format := sniffFormat(data)
	c, ok := codecs[format]
	if !ok {
		n := min(len(data), 8)
		return nil, 0, 0, skipErr(SkipNotImage, "unknown magic bytes % x", data[:n])
	}
	cfg, err := c.config(data)
	if err != nil {
		return nil, 0, 0, classifyDecodeError(format, "header", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, 0, 0, skipErr(SkipCorrupt, "%s header: empty image %dx%d", format, cfg.Width, cfg.Height)
	}
	if int64(cfg.Width)*int64(cfg.Height) > int64(maxPixels) {
		return nil, 0, 0, skipErr(SkipTooLarge, "%s of %dx%d = %d pixels, above the limit of %d",
			format, cfg.Width, cfg.Height, int64(cfg.Width)*int64(cfg.Height), maxPixels)
	}
	pix, width, height, err = c.decode(data, cfg, buf)
	if err != nil {
		return nil, 0, 0, classifyDecodeError(format, "data", err)
	}
	if width != cfg.Width || height != cfg.Height {
		return nil, 0, 0, skipErr(SkipCorrupt, "%s decoded to %dx%d, header said %dx%d", format, width, height, cfg.Width, cfg.Height)
	}
	return pix, width, height, nil
}

// codec is one supported format: how to read its header, and its pixels as RGB (into buf when it
// is large enough). One table, so that adding a format is one line.
type codec struct {
	config func(data []byte) (image.Config, error)
	decode func(data []byte, cfg image.Config, buf []uint8) (pix []uint8, width, height int, err error)
}

var codecs = map[string]codec{
	FormatJPEG: stdCodec(jpeg.DecodeConfig, jpeg.Decode),
	FormatPNG:  stdCodec(png.DecodeConfig, png.Decode),
	FormatGIF:  stdCodec(gif.DecodeConfig, gif.Decode),
	FormatBMP: {config: bmpDecodeConfig, decode: func(data []byte, cfg image.Config, buf []uint8) ([]uint8, int, int, error) {
		pix, err := bmpDecodeRGB(data, buf)
		return pix, cfg.Width, cfg.Height, err
	}},
}

// stdCodec adapts a standard library decoder (image/jpeg, image/png, image/gif).
func stdCodec(config func(io.Reader) (image.Config, error), decode func(io.Reader) (image.Image, error)) codec {
	return codec{
		config: func(data []byte) (image.Config, error) { return config(bytes.NewReader(data)) },
		decode: func(data []byte, _ image.Config, buf []uint8) ([]uint8, int, int, error) {
			img, err := decode(bytes.NewReader(data))
			if err != nil {
				return nil, 0, 0, err
			}
			b := img.Bounds()
			return toRGB(img, buf), b.Dx(), b.Dy(), nil
		},
	}
}

// classifyDecodeError maps a decoder error to a skip reason.
func classifyDecodeError(format, stage string, err error) *SkipError {
	switch err.(type) {
	case jpeg.UnsupportedError, png.UnsupportedError, bmpUnsupportedError:
		return &SkipError{Reason: SkipUnsupported, Err: fmt.Errorf("%s %s: %w", format, stage, err)}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &SkipError{Reason: SkipCorrupt, Err: fmt.Errorf("%s %s: truncated: %w", format, stage, err)}
	}
	return &SkipError{Reason: SkipCorrupt, Err: fmt.Errorf("%s %s: %w", format, stage, err)}
}

// toRGB converts a decoded image to packed RGB, with fast paths for what the decoders return for
// photographs (YCbCr, Gray, CMYK, RGBA, NRGBA). (One piece: one type switch, one short loop per type.)
func toRGB(img image.Image, buf []uint8) []uint8 {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	n := w * h * 3
	pix := buf
	if cap(pix) < n {
		pix = make([]uint8, n)
	}
	pix = pix[:n]
	switch m := img.(type) {
	case *image.YCbCr:
		ycbcrToRGB(m, pix)
	case *image.Gray:
		for y := range h {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:w]
			out := pix[y*w*3 : (y+1)*w*3]
			for x, v := range row {
				out[3*x], out[3*x+1], out[3*x+2] = v, v, v
			}
		}
	case *image.CMYK:
		for y := range h {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:4*w]
			out := pix[y*w*3 : (y+1)*w*3]
			for x := range w {
				r, g, bb := color.CMYKToRGB(row[4*x], row[4*x+1], row[4*x+2], row[4*x+3])
				out[3*x], out[3*x+1], out[3*x+2] = r, g, bb
			}
		}
	case *image.NRGBA:
		for y := range h {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:4*w]
			out := pix[y*w*3 : (y+1)*w*3]
			for x := range w {
				out[3*x], out[3*x+1], out[3*x+2] = row[4*x], row[4*x+1], row[4*x+2]
			}
		}
	case *image.RGBA: // premultiplied: what image/png returns for opaque truecolour.
		for y := range h {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:4*w]
			out := pix[y*w*3 : (y+1)*w*3]
			for x := range w {
				p := row[4*x : 4*x+4 : 4*x+4]
				switch a := uint32(p[3]); a {
				case 255:
					out[3*x], out[3*x+1], out[3*x+2] = p[0], p[1], p[2]
				case 0:
					out[3*x], out[3*x+1], out[3*x+2] = 0, 0, 0
				default: // un-premultiply, as color.NRGBAModel does.
					c := color.NRGBAModel.Convert(color.RGBA{p[0], p[1], p[2], p[3]}).(color.NRGBA)
					out[3*x], out[3*x+1], out[3*x+2] = c.R, c.G, c.B
				}
			}
		}
	default:
		// Everything else (paletted, 16-bit, premultiplied RGBA with transparency) goes through
		// NRGBA, whose colour channels are not premultiplied: alpha is dropped, not composited.
		for y := range h {
			out := pix[y*w*3 : (y+1)*w*3]
			for x := range w {
				c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				out[3*x], out[3*x+1], out[3*x+2] = c.R, c.G, c.B
			}
		}
	}
	return pix
}

// ycbcrToRGB converts with the JFIF equations in 16-bit fixed point, rounding to nearest as libjpeg
// does (R = Y + 1.402 Cr', G = Y - 0.34414 Cb' - 0.71414 Cr', B = Y + 1.772 Cb', with Cb' = Cb-128).
// Chroma is replicated from the subsampled planes (nearest), as image/jpeg's At does; libjpeg, and
// so TensorFlow, interpolates it ("fancy upsampling"), so colours at sharp chroma edges differ.
func ycbcrToRGB(m *image.YCbCr, pix []uint8) {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	var hs uint // horizontal chroma subsampling shift (COffset handles the vertical one per row).
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420:
		hs = 1
	case image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410:
		hs = 2
	}
	x0, y0 := b.Min.X, b.Min.Y
	for y := range h {
		yRow := m.Y[m.YOffset(x0, y0+y):][:w]
		c0 := m.COffset(x0, y0+y) // the chroma sample of the row's first pixel.
		out := pix[y*w*3 : (y+1)*w*3]
		for x, yv := range yRow {
			ci := c0 + (x0+x)>>hs - x0>>hs
			yy := int32(yv) << 16
			cb := int32(m.Cb[ci]) - 128
			cr := int32(m.Cr[ci]) - 128
			r := (yy + 91881*cr + 1<<15) >> 16
			g := (yy - 22554*cb - 46802*cr + 1<<15) >> 16
			bl := (yy + 116130*cb + 1<<15) >> 16
			o := out[3*x : 3*x+3 : 3*x+3]
			o[0], o[1], o[2] = clampU8(r), clampU8(g), clampU8(bl)
		}
	}
}

func clampU8(v int32) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}
