package densenet

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/nlpodyssey/safetensors"
)

// LoadTorchvision reads the weights of a torchvision DenseNet saved as safetensors (the state dict's
// names: features.conv0.weight, features.denseblock1.denselayer1.norm1.running_mean, ...,
// classifier.weight; timm's "tv_in1k" DenseNets use the same names) into store, as the variables of a
// DenseNet built with Name(name) (the preset's name, e.g. "densenet121", or "densenet" for custom
// blocks): names mapped to Keras' (conv1_conv, conv2_block1_1_conv, pool2_bn, ..., predictions),
// convolution kernels from PyTorch's OIHW to HWIO, the classifier from [out, in] to [in, out], batch
// norms' running statistics into their moving averages. Every tensor must be used (num_batches_tracked
// aside) and every name understood; the error names the first that is not. Variables already in
// store get the new values if their shapes match.
//
// torchvision's batch norms use epsilon 1e-5, this package Keras' 1.001e-5: logits move by ~1e-6.
func LoadTorchvision(store *model.Store, name, path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("densenet.LoadTorchvision: %w", err)
	}
	st, err := safetensors.Deserialize(raw)
	if err != nil {
		return fmt.Errorf("densenet.LoadTorchvision(%s): not a safetensors file: %w", path, err)
	}
	names := st.Names()
	sort.Strings(names)
	loaded := 0
	for _, tname := range names {
		if strings.HasSuffix(tname, ".num_batches_tracked") {
			continue
		}
		kpath, convert, err := kerasPath(tname)
		if err != nil {
			return fmt.Errorf("densenet.LoadTorchvision(%s): tensor %q: %w", path, tname, err)
		}
		tv, _ := st.Tensor(tname)
		value, err := convert(tv)
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

var (
	tvDenseLayer = regexp.MustCompile(`^features\.denseblock(\d+)\.denselayer(\d+)\.(norm1|conv1|norm2|conv2)\.(\w+)$`)
	tvTransition = regexp.MustCompile(`^features\.transition(\d+)\.(norm|conv)\.(\w+)$`)
	tvFixed      = map[string]string{"features.conv0": "conv1_conv", "features.norm0": "conv1_bn", "features.norm5": "bn"}
)

// kerasPath maps a torchvision tensor name to the variable path under the DenseNet's scope, with the
// conversion of its layout.
func kerasPath(tname string) (string, func(safetensors.TensorView) (*tensors.Tensor, error), error) {
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
			keras = fmt.Sprintf("conv%d_block%s_%s", atoi(m[1])+1, m[2], part)
		} else if m := tvTransition.FindStringSubmatch(tname); m != nil {
			part := map[string]string{"norm": "bn", "conv": "conv"}[m[2]]
			keras = fmt.Sprintf("pool%d_%s", atoi(m[1])+1, part)
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

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = 10*n + int(c-'0')
	}
	return n
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

func dims(tv safetensors.TensorView) []int {
	d := make([]int, len(tv.Shape()))
	for i, n := range tv.Shape() {
		d[i] = int(n)
	}
	return d
}

func asIs(tv safetensors.TensorView) (*tensors.Tensor, error) {
	v, err := floats(tv)
	if err != nil {
		return nil, err
	}
	return tensors.FromFlatDataAndDimensions(v, dims(tv)...), nil
}

// transposed2D turns PyTorch's Linear weight [out, in] into a Keras Dense kernel [in, out].
func transposed2D(tv safetensors.TensorView) (*tensors.Tensor, error) {
	v, err := floats(tv)
	if err != nil {
		return nil, err
	}
	d := dims(tv)
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
func oihwToHWIO(tv safetensors.TensorView) (*tensors.Tensor, error) {
	v, err := floats(tv)
	if err != nil {
		return nil, err
	}
	d := dims(tv)
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
