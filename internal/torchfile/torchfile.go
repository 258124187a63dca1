// Package torchfile reads PyTorch state dicts (the weights of torchvision models as practitioners
// have them) into plain float32 tensors, and converts PyTorch layouts to Keras'.
//
// It holds what the torchvision loaders of the model packages (densenet, resnet) share: which file
// formats are read and how, the layout conversions, and putting a converted value into a model's
// store (Assign). What a tensor's name means is each model package's business. Two formats are read:
//
//   - .pth (also .pt, .bin): torch.save of a state dict, zip or legacy format, read with gopickle
//     (torchvision's own downloads are of this kind);
//   - .safetensors: read with nlpodyssey/safetensors (timm and Hugging Face publish these).
//
// Values are converted to float32, the dtype of the models' variables: .pth files may hold float32,
// float64, float16 or bfloat16 tensors, safetensors files F32, F64 or BF16. Batch norms' step counters (num_batches_tracked, integers
// that Keras' batch norm has no use for) are left out by the readers, so that a loader can require
// every tensor it gets to be used.
package torchfile

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/nlpodyssey/gopickle/pytorch"
	"github.com/nlpodyssey/gopickle/types"
	"github.com/nlpodyssey/safetensors"
)

// Tensor is a float tensor read from a file: its dimensions and its values in row-major order.
type Tensor struct {
	Dims   []int
	Values []float32
}

// Read reads the state dict in path, by its extension: .safetensors, or .pth, .pt or .bin for
// torch.save files. The map is keyed by the state dict's names (e.g. "layer1.0.conv1.weight").
func Read(path string) (map[string]Tensor, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".safetensors":
		return ReadSafetensors(path)
	case ".pth", ".pt", ".bin":
		return ReadPyTorch(path)
	}
	return nil, fmt.Errorf("want a .pth (PyTorch) or .safetensors file")
}

// batchCounter reports a batch norm's step counter (an integer, unused by Keras' batch norm): the
// readers leave it out.
func batchCounter(name string) bool { return strings.HasSuffix(name, ".num_batches_tracked") }

// ReadSafetensors reads a safetensors file's float tensors, batch counters left out.
func ReadSafetensors(path string) (map[string]Tensor, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	st, err := safetensors.Deserialize(raw)
	if err != nil {
		return nil, fmt.Errorf("not a safetensors file: %w", err)
	}
	out := map[string]Tensor{}
	for _, n := range st.Names() {
		if batchCounter(n) {
			continue
		}
		tv, _ := st.Tensor(n)
		v, err := floats(tv)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", n, err)
		}
		d := make([]int, len(tv.Shape()))
		for i, x := range tv.Shape() {
			d[i] = int(x)
		}
		out[n] = Tensor{Dims: d, Values: v}
	}
	return out, nil
}

// ReadPyTorch reads a state dict saved by torch.save (zip or legacy format) with gopickle, batch
// counters left out.
func ReadPyTorch(path string) (map[string]Tensor, error) {
	obj, err := pytorch.Load(path)
	if err != nil {
		return nil, fmt.Errorf("not a PyTorch file (torch.save of a state dict): %w", err)
	}
	dict, ok := obj.(*types.OrderedDict)
	if !ok {
		if m, isMap := obj.(*types.Dict); isMap {
			dict = types.NewOrderedDict()
			for _, e := range *m {
				dict.Set(e.Key, e.Value)
			}
		} else {
			return nil, fmt.Errorf("holds a %T, want a state dict (save model.state_dict())", obj)
		}
	}
	out := map[string]Tensor{}
	for k, e := range dict.Map {
		n, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("state dict key %v is not a string", k)
		}
		t, ok := e.Value.(*pytorch.Tensor)
		if !ok {
			return nil, fmt.Errorf("%q is a %T, not a tensor", n, e.Value)
		}
		if batchCounter(n) {
			continue
		}
		rt, err := pytorchValues(t)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", n, err)
		}
		out[n] = rt
	}
	return out, nil
}

// pytorchValues copies a PyTorch tensor's elements, row-major, following its strides (a saved
// tensor may be a view: transposed, or a slice of a larger storage).
func pytorchValues(t *pytorch.Tensor) (Tensor, error) {
	var data []float32
	switch s := t.Source.(type) {
	case *pytorch.FloatStorage:
		data = s.Data
	case *pytorch.DoubleStorage:
		data = make([]float32, len(s.Data))
		for i, v := range s.Data {
			data[i] = float32(v)
		}
	case *pytorch.HalfStorage:
		data = s.Data
	case *pytorch.BFloat16Storage:
		data = s.Data
	default:
		return Tensor{}, fmt.Errorf("storage %T: want float32, float64, float16 or bfloat16", t.Source)
	}
	n := 1
	for _, d := range t.Size {
		n *= d
	}
	out := make([]float32, n)
	idx := make([]int, len(t.Size))
	for i := range n {
		off := t.StorageOffset
		for a := range idx {
			off += idx[a] * t.Stride[a]
		}
		if off < 0 || off >= len(data) {
			return Tensor{}, fmt.Errorf("element %d at storage offset %d, outside its %d elements", i, off, len(data))
		}
		out[i] = data[off]
		for a := len(idx) - 1; a >= 0; a-- { // next index, last axis fastest
			idx[a]++
			if idx[a] < t.Size[a] {
				break
			}
			idx[a] = 0
		}
	}
	return Tensor{Dims: append([]int(nil), t.Size...), Values: out}, nil
}

// floats reads a safetensors tensor's data as float32 (F32, or BF16/F64 from other tools).
func floats(tv safetensors.TensorView) ([]float32, error) {
	data := tv.Data()
	switch tv.DType() {
	case safetensors.F32:
		out := make([]float32, len(data)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
		return out, nil
	case safetensors.F64:
		out := make([]float32, len(data)/8)
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(data[8*i:])))
		}
		return out, nil
	case safetensors.BF16:
		out := make([]float32, len(data)/2)
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(data[2*i:])) << 16)
		}
		return out, nil
	}
	return nil, fmt.Errorf("dtype %s: want F32, F64 or BF16", tv.DType())
}

// A Converter turns a file's tensor into the value of a Keras-layout variable. AsIs, OIHWToHWIO
// and Transposed2D are the ones torchvision models need.
type Converter func(Tensor) (*tensors.Tensor, error)

// AsIs keeps the layout: vectors such as biases and batch-norm parameters, which PyTorch and Keras
// store alike.
func AsIs(t Tensor) (*tensors.Tensor, error) {
	return tensors.FromFlatDataAndDimensions(t.Values, t.Dims...), nil
}

// Transposed2D turns PyTorch's Linear weight [out, in] into a Keras Dense kernel [in, out].
func Transposed2D(t Tensor) (*tensors.Tensor, error) {
	d, v := t.Dims, t.Values
	if len(d) != 2 {
		return nil, fmt.Errorf("shape %v: want [out, in]", d)
	}
	out := make([]float32, len(v))
	for o := range d[0] {
		for i := range d[1] {
			out[i*d[0]+o] = v[o*d[1]+i]
		}
	}
	return tensors.FromFlatDataAndDimensions(out, d[1], d[0]), nil
}

// OIHWToHWIO turns PyTorch's convolution weight [out, in, h, w] into a Keras kernel [h, w, in, out].
// Both frameworks compute a cross-correlation, so the kernel is transposed, not flipped.
func OIHWToHWIO(t Tensor) (*tensors.Tensor, error) {
	d, v := t.Dims, t.Values
	if len(d) != 4 {
		return nil, fmt.Errorf("shape %v: want [out, in, h, w]", d)
	}
	O, I, H, W := d[0], d[1], d[2], d[3]
	out := make([]float32, len(v))
	for o := range O {
		for i := range I {
			for h := range H {
				for w := range W {
					out[((h*W+w)*I+i)*O+o] = v[((o*I+i)*H+h)*W+w]
				}
			}
		}
	}
	return tensors.FromFlatDataAndDimensions(out, H, W, I, O), nil
}

// Assign puts value into store as the variable full (its path from the root, "/resnet50/conv1_conv/
// kernel"): the variable's new value if store has it already, with the same shape, else a new
// variable, which the model built in store afterwards uses instead of initialising one. This is how a
// model starts from loaded weights in GoMLX: the values are in the store before the model is built.
func Assign(store *model.Store, full string, value *tensors.Tensor) error {
	if v := store.GetVariable(full); v != nil {
		if !v.Shape().Equal(value.Shape()) {
			return fmt.Errorf("%s is %s in the file, %s in the model", full, value.Shape(), v.Shape())
		}
		return v.SetValue(value)
	}
	scope, name := model.SplitPath(full)
	_, err := store.Scope(scope).CreateVariable(name, value)
	return err
}
