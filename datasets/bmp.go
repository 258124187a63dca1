package datasets

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image"
)

// A minimal BMP reader, so that image folders holding .bmp files (which tf.io.decode_image and
// Keras accept) work without another module dependency. It handles what image editors write:
// uncompressed (BI_RGB) 1, 4, 8, 24 and 32 bits per pixel, BI_BITFIELDS 32-bit with the standard
// BGRA masks, bottom-up and top-down rows, with a BITMAPINFOHEADER or its V4/V5 extensions.
// Run-length compressed and 16-bit files are reported as unsupported.

type bmpUnsupportedError string

func (e bmpUnsupportedError) Error() string { return "unsupported BMP: " + string(e) }

var errBMPCorrupt = errors.New("corrupt BMP")

type bmpHeader struct {
	width, height int
	topDown       bool
	bpp           int
	dataOffset    int
	paletteOffset int
	paletteLen    int
}

func bmpParseHeader(data []byte) (*bmpHeader, error) {
	if len(data) < 14+4 || data[0] != 'B' || data[1] != 'M' {
		return nil, fmt.Errorf("%w: short header", errBMPCorrupt)
	}
	le := binary.LittleEndian
	hdr := &bmpHeader{dataOffset: int(le.Uint32(data[10:14]))}
	dibSize := int(le.Uint32(data[14:18]))
	switch dibSize {
	case 40, 52, 56, 108, 124:
	case 12:
		return nil, bmpUnsupportedError("OS/2 BITMAPCOREHEADER")
	default:
		return nil, fmt.Errorf("%w: info header of %d bytes", errBMPCorrupt, dibSize)
	}
	if len(data) < 14+dibSize {
		return nil, fmt.Errorf("%w: truncated info header", errBMPCorrupt)
	}
	w := int(int32(le.Uint32(data[18:22])))
	h := int(int32(le.Uint32(data[22:26])))
	planes := le.Uint16(data[26:28])
	hdr.bpp = int(le.Uint16(data[28:30]))
	compression := le.Uint32(data[30:34])
	colorsUsed := int(le.Uint32(data[46:50]))
	if planes != 1 {
		return nil, fmt.Errorf("%w: %d planes", errBMPCorrupt, planes)
	}
	if h < 0 {
		hdr.topDown, h = true, -h
	}
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("%w: size %dx%d", errBMPCorrupt, w, h)
	}
	hdr.width, hdr.height = w, h
	switch compression {
	case 0: // BI_RGB
		switch hdr.bpp {
		case 1, 4, 8, 24, 32:
		default:
			return nil, bmpUnsupportedError(fmt.Sprintf("%d bits per pixel", hdr.bpp))
		}
	case 3: // BI_BITFIELDS: masks follow a 40-byte header, or sit inside the V2+ headers at the same place.
		if hdr.bpp != 32 || len(data) < 14+40+12 {
			return nil, bmpUnsupportedError(fmt.Sprintf("bit fields with %d bits per pixel", hdr.bpp))
		}
		r, g, b := le.Uint32(data[54:58]), le.Uint32(data[58:62]), le.Uint32(data[62:66])
		if r != 0xFF0000 || g != 0xFF00 || b != 0xFF {
			return nil, bmpUnsupportedError(fmt.Sprintf("bit masks %#x %#x %#x", r, g, b))
		}
	default:
		return nil, bmpUnsupportedError(fmt.Sprintf("compression %d", compression))
	}
	if hdr.bpp <= 8 {
		hdr.paletteOffset = 14 + dibSize
		hdr.paletteLen = colorsUsed
		if hdr.paletteLen == 0 || hdr.paletteLen > 1<<hdr.bpp {
			hdr.paletteLen = 1 << hdr.bpp
		}
	}
	return hdr, nil
}

func bmpDecodeConfig(data []byte) (image.Config, error) {
	hdr, err := bmpParseHeader(data)
	if err != nil {
		return image.Config{}, err
	}
	return image.Config{Width: hdr.width, Height: hdr.height}, nil
}

// bmpDecodeRGB decodes to packed RGB; call it after bmpDecodeConfig and the pixel-count check.
func bmpDecodeRGB(data []byte, buf []uint8) ([]uint8, error) {
	hdr, err := bmpParseHeader(data)
	if err != nil {
		return nil, err
	}
	w, h := hdr.width, hdr.height
	stride := ((w*hdr.bpp + 31) / 32) * 4
	if hdr.dataOffset < 14 || int64(hdr.dataOffset)+int64(stride)*int64(h) > int64(len(data)) {
		return nil, fmt.Errorf("%w: truncated pixel data", errBMPCorrupt)
	}
	var palette [][3]uint8
	if hdr.bpp <= 8 {
		end := hdr.paletteOffset + 4*hdr.paletteLen
		if end > hdr.dataOffset || end > len(data) {
			return nil, fmt.Errorf("%w: truncated palette", errBMPCorrupt)
		}
		palette = make([][3]uint8, 1<<hdr.bpp) // indices past paletteLen read black.
		for i := range hdr.paletteLen {
			p := data[hdr.paletteOffset+4*i:]
			palette[i] = [3]uint8{p[2], p[1], p[0]}
		}
	}
	n := w * h * 3
	pix := buf
	if cap(pix) < n {
		pix = make([]uint8, n)
	}
	pix = pix[:n]
	for y := range h {
		srcY := h - 1 - y
		if hdr.topDown {
			srcY = y
		}
		row := data[hdr.dataOffset+srcY*stride : hdr.dataOffset+(srcY+1)*stride]
		out := pix[y*w*3 : (y+1)*w*3]
		switch hdr.bpp {
		case 24, 32:
			step := hdr.bpp / 8
			for x := range w {
				p := row[x*step:]
				out[3*x], out[3*x+1], out[3*x+2] = p[2], p[1], p[0]
			}
		default:
			perByte := 8 / hdr.bpp
			mask := byte(1<<hdr.bpp - 1)
			for x := range w {
				shift := uint(8 - hdr.bpp*(x%perByte+1))
				c := palette[(row[x/perByte]>>shift)&mask]
				out[3*x], out[3*x+1], out[3*x+2] = c[0], c[1], c[2]
			}
		}
	}
	return pix, nil
}
