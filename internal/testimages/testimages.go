// Package testimages writes small synthetic image folders for tests: two classes, "bright" and
// "dark", that a classifier can learn in a few steps.
package testimages

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// WriteFolder writes n PNG images of width x height per class under root/bright and root/dark.
func WriteFolder(root string, n, width, height int) error {
	r := rand.New(rand.NewPCG(5, 6))
	for ci, class := range []string{"bright", "dark"} {
		if err := os.MkdirAll(filepath.Join(root, class), 0o755); err != nil {
			return err
		}
		for i := range n {
			img := image.NewRGBA(image.Rect(0, 0, width, height))
			for y := range height {
				for x := range width {
					v := uint8(r.IntN(120) + 120*(1-ci))
					img.Set(x, y, color.RGBA{v, v / 2, 255 - v, 255})
				}
			}
			var buf bytes.Buffer
			if err := png.Encode(&buf, img); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(root, class, fmt.Sprintf("%03d.png", i)), buf.Bytes(), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}
