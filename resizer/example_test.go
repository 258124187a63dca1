package resizer_test

import (
	"fmt"
	"image"
	"image/color"
	"log"
	"os"

	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/learnresize/learnresize/backend"
	"github.com/learnresize/learnresize/resizer"
)

// Resize a trained learnable resizer's input image: load the resizer from a checkpoint directory and
// resize an image of any size to its target size.
func ExampleLoad() {
	// GOMLX_BACKEND when set, else XLA on an NVIDIA GPU when one is present, else ONNX Runtime on the
	// CPU when its library is installed, else the pure-Go backend (see package backend).
	b, _, err := backend.New()
	if err != nil {
		log.Fatal(err)
	}
	// For the example, make and save an untrained resizer; a training run writes the same kind of
	// checkpoint directory.
	dir, _ := os.MkdirTemp("", "resizer")
	defer os.RemoveAll(dir)
	fresh, err := resizer.NewModel(b, resizer.Config{TargetHeight: 64, TargetWidth: 48, Filters: 16, ResBlocks: 1,
		Interpolation: resizer.Bilinear}, 42)
	if err != nil {
		log.Fatal(err)
	}
	if err := fresh.Save(dir); err != nil {
		log.Fatal(err)
	}

	m, err := resizer.Load(b, dir)
	if err != nil {
		log.Fatal(err)
	}
	img := image.NewRGBA(image.Rect(0, 0, 120, 90))
	for y := range 90 {
		for x := range 120 {
			img.Set(x, y, color.RGBA{uint8(2 * x), uint8(2 * y), 200, 255})
		}
	}
	out, raw, err := m.ResizeImage(img)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("config:", m.Config())
	fmt.Println("image:", out.Bounds().Dx(), "x", out.Bounds().Dy())
	fmt.Println("tensor:", raw.Shape())
	// Output:
	// config: 64x48 bilinear, 16 filters, 1 residual block(s)
	// image: 48 x 64
	// tensor: (Float32)[64, 48, 3]
}

// Resize is an ordinary differentiable graph op with tf.image.resize semantics.
func ExampleResize() {
	b, _, err := backend.New()
	if err != nil {
		log.Fatal(err)
	}
	x := tensors.FromFlatDataAndDimensions([]float32{0, 1, 2, 3}, 1, 1, 4, 1) // one row of 4 pixels
	for _, m := range []resizer.Method{resizer.Bilinear, resizer.Bicubic, resizer.Nearest, resizer.Area} {
		y := MustExecOnce(b, func(x *Node) *Node { return resizer.Resize(x, 1, 2, m) }, x)
		fmt.Printf("%-8s %.4f\n", m, tensors.MustCopyFlatData[float32](y))
	}
	// Output:
	// bilinear [0.5000 2.5000]
	// bicubic  [0.4118 2.5882]
	// nearest  [1.0000 3.0000]
	// area     [0.5000 2.5000]
}
