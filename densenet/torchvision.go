package densenet

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/nlpodyssey/gopickle/pytorch"
	"github.com/nlpodyssey/gopickle/types"
	"github.com/nlpodyssey/safetensors"
)

// LoadTorchvision reads the weights of a torchvision DenseNet into store, as the variables of a
// DenseNet built with Name(name) (the preset's name, e.g. "densenet121", or "densenet" for custom
// blocks). The file is a state dict as practitioners have it: PyTorch's .pth (torchvision's own
// downloads, e.g. densenet121-a639ec97.pth, whose legacy names "norm.1" are read as "norm1") or
// .safetensors (timm's "tv_in1k" DenseNets use the same names). Names are mapped to Keras' (conv1_conv,
// conv2_block1_1_conv, pool2_bn, ..., predictions), convolution kernels from PyTorch's OIHW to HWIO,
// the classifier from [out, in] to [in, out], batch norms' running statistics into their moving
// averages. Every tensor must be used (num_batches_tracked aside) and every name understood; the error
// names the first that is not. Variables already in store get the new values if their shapes match.
//
// torchvision's batch norms use epsilon 1e-5, this package Keras' 1.001e-5: logits move by ~1e-6.
func LoadTorchvision(store *model.Store, name, path string) error {
	return loadTorchvision(store, name, path, false)
}

// LoadTorchvisionBackbone is LoadTorchvision without the classifier (torchvision's "classifier.*",
// Keras' "predictions"), for fine-tuning on other classes: the model built with Classes(n) gets a
// fresh classifier, initialised as usual, on the pretrained features.
func LoadTorchvisionBackbone(store *model.Store, name, path string) error {
	return loadTorchvision(store, name, path, true)
}

func loadTorchvision(store *model.Store, name, path string, skipClassifier bool) error {
	var (
		state map[string]rawTensor
		err   error
	)
	switch strings.ToLower(filepath.Ext(path)) {
	case ".safetensors":
		state, err = readSafetensors(path)
	case ".pth", ".pt", ".bin":
		state, err = readPyTorch(path)
	default:
		return fmt.Errorf("densenet.LoadTorchvision(%s): want a .pth (PyTorch) or .safetensors file", path)
	}
	if err != nil {
		return fmt.Errorf("densenet.LoadTorchvision(%s): %w", path, err)
	}
	names := make([]string, 0, len(state))
	for n := range state {
		names = append(names, n)
	}
	sort.Strings(names)
	loaded := 0
	for _, tname := range names {
		if skipClassifier && strings.HasPrefix(tname, "classifier.") {
			continue
		}
		kpath, convert, err := kerasPath(legacyName.ReplaceAllString(tname, "$1$2"))
		if err != nil {
			return fmt.Errorf("densenet.LoadTorchvision(%s): tensor %q: %w", path, tname, err)
		}
		value, err := convert(state[tname])
		if err != nil {
			return fmt.Errorf("densenet.LoadTorchvision(%s): tensor %q: %w", path, tname, err)
		}
		full := "/" + name + "/" + kpath
		if v := store.GetVariable(full); v != nil {
			if !v.Shape().Equal(value.Shape()) {
				return fmt.Errorf("densenet.LoadTorchvision(%s): tensor %q is %s in Keras layout, the model's %s is %s",
					path, tname, value.Shape(), full, v.Shape())
			}
			if err := v.SetValue(value); err != nil {
				return fmt.Errorf("densenet.LoadTorchvision(%s): %w", path, err)
			}
		} else {
			scope, vname := model.SplitPath(full)
			if _, err := store.Scope(scope).CreateVariable(vname, value); err != nil {
				return fmt.Errorf("densenet.LoadTorchvision(%s): %w", path, err)
			}
		}
		loaded++
	}
	if loaded == 0 {
		return fmt.Errorf("densenet.LoadTorchvision(%s): no DenseNet tensors in the file", path)
	}
	return nil
}

// legacyName matches the names of torchvision's published DenseNet files ("denselayer1.norm.1.weight"),
// which torchvision itself renames when it loads them ("denselayer1.norm1.weight").
var legacyName = regexp.MustCompile(`^(.*denselayer\d+\.(?:norm|relu|conv))\.(\d\.(?:weight|bias|running_mean|running_var))$`)

// rawTensor is a float tensor read from a file, row-major.
type rawTensor struct {
	dims   []int
	values []float32
}

// batchCounter reports a batch norm's step counter (an integer, unused by Keras' batch norm): the
// readers leave it out.
func batchCounter(name string) bool { return strings.HasSuffix(name, ".num_batches_tracked") }

// readSafetensors reads a safetensors file's float tensors, batch counters left out.
func readSafetensors(path string) (map[string]rawTensor, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	st, err := safetensors.Deserialize(raw)
	if err != nil {
		return nil, fmt.Errorf("not a safetensors file: %w", err)
	}
	out := map[string]rawTensor{}
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
		out[n] = rawTensor{dims: d, values: v}
	}
	return out, nil
}

// readPyTorch reads a state dict saved by torch.save (zip or legacy format) with gopickle, batch
// counters left out.
func readPyTorch(path string) (map[string]rawTensor, error) {
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
	out := map[string]rawTensor{}
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

// pytorchValues copies a PyTorch tensor's elements, row-major, following its strides.
func pytorchValues(t *pytorch.Tensor) (rawTensor, error) {
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
		return rawTensor{}, fmt.Errorf("storage %T: want float32, float64, float16 or bfloat16", t.Source)
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
			return rawTensor{}, fmt.Errorf("element %d at storage offset %d, outside its %d elements", i, off, len(data))
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
	return rawTensor{dims: append([]int(nil), t.Size...), values: out}, nil
}

var (
	tvDenseLayer = regexp.MustCompile(`^features\.denseblock(\d+)\.denselayer(\d+)\.(norm1|conv1|norm2|conv2)\.(\w+)$`)
	tvTransition = regexp.MustCompile(`^features\.transition(\d+)\.(norm|conv)\.(\w+)$`)
	tvFixed      = map[string]string{"features.conv0": "conv1_conv", "features.norm0": "conv1_bn", "features.norm5": "bn"}
)

// kerasPath maps a torchvision tensor name to the variable path under the DenseNet's scope, with the
// conversion of its layout.
func kerasPath(tname string) (string, func(rawTensor) (*tensors.Tensor, error), error) {
	dot := strings.LastIndex(tname, ".")
	if dot < 0 {
		return "", nil, fmt.Errorf("not a torchvision DenseNet name")
	}
	layer, param := tname[:dot], tname[dot+1:]
	var keras string
	switch {
	case tvFixed[layer] != "":
		keras = tvFixed[layer]
	case layer == "classifier":
		switch param {
		case "weight":
			return "predictions/kernel", transposed2D, nil
		case "bias":
			return "predictions/bias", asIs, nil
		}
		return "", nil, fmt.Errorf("unknown classifier parameter %q", param)
	default:
		if m := tvDenseLayer.FindStringSubmatch(tname); m != nil {
			part := map[string]string{"norm1": "0_bn", "conv1": "1_conv", "norm2": "1_bn", "conv2": "2_conv"}[m[3]]
			block, _ := strconv.Atoi(m[1]) // digits: the pattern matched \d+
			keras = fmt.Sprintf("conv%d_block%s_%s", block+1, m[2], part)
		} else if m := tvTransition.FindStringSubmatch(tname); m != nil {
			part := map[string]string{"norm": "bn", "conv": "conv"}[m[2]]
			transition, _ := strconv.Atoi(m[1])
			keras = fmt.Sprintf("pool%d_%s", transition+1, part)
		} else {
			return "", nil, fmt.Errorf("not a torchvision DenseNet name")
		}
	}
	if strings.HasSuffix(keras, "_conv") {
		if param != "weight" {
			return "", nil, fmt.Errorf("unknown convolution parameter %q (the DenseNet's convolutions have no bias)", param)
		}
		return keras + "/kernel", oihwToHWIO, nil
	}
	bn := map[string]string{"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}[param]
	if bn == "" {
		return "", nil, fmt.Errorf("unknown batch-norm parameter %q", param)
	}
	return keras + "/" + bn, asIs, nil
}

// floats reads a tensor's data as float32 (files hold F32, or F16/BF16/F64 from other tools).
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

func asIs(t rawTensor) (*tensors.Tensor, error) {
	return tensors.FromFlatDataAndDimensions(t.values, t.dims...), nil
}

// transposed2D turns PyTorch's Linear weight [out, in] into a Keras Dense kernel [in, out].
func transposed2D(t rawTensor) (*tensors.Tensor, error) {
	d, v := t.dims, t.values
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

// oihwToHWIO turns PyTorch's convolution weight [out, in, h, w] into a Keras kernel [h, w, in, out].
func oihwToHWIO(t rawTensor) (*tensors.Tensor, error) {
	d, v := t.dims, t.values
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
