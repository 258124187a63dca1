package torchfile

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

func check(t *testing.T, what string, got Tensor, dims []int, values []float32) {
	t.Helper()
	if fmt.Sprint(got.Dims) != fmt.Sprint(dims) || fmt.Sprint(got.Values) != fmt.Sprint(values) {
		t.Errorf("%s: %v %v, want %v %v", what, got.Dims, got.Values, dims, values)
	}
}

func iota(n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = scale * float32(i)
	}
	return v
}

// TestReadPyTorch: testdata/gen_views.py's state dict, in both of torch.save's formats: views are
// read following their strides and offsets, other float dtypes converted, step counters left out.
func TestReadPyTorch(t *testing.T) {
	for _, file := range []string{"testdata/views.pth", "testdata/views_legacy.pth"} {
		state, err := Read(file)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(state) != 6 {
			t.Errorf("%s: %d tensors, want 6 (the step counter left out)", file, len(state))
		}
		check(t, file+" base", state["base"], []int{3, 4}, iota(12, 1))
		check(t, file+" transposed", state["transposed"], []int{4, 3}, []float32{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11})
		check(t, file+" row", state["row"], []int{4}, []float32{4, 5, 6, 7})
		for _, n := range []string{"f64", "f16", "bf16"} {
			check(t, file+" "+n, state[n], []int{3, 4}, iota(12, 2))
		}
	}
}

// writeSafetensors writes a safetensors file: 8-byte little-endian header length, the JSON header
// (dtype, shape, data offsets of each tensor), then the data.
func writeSafetensors(t *testing.T, path string, tensors map[string]struct {
	dtype string
	shape []int
	data  []byte
}) {
	t.Helper()
	header := map[string]any{}
	var data []byte
	for name, v := range tensors {
		header[name] = map[string]any{"dtype": v.dtype, "shape": v.shape, "data_offsets": []int{len(data), len(data) + len(v.data)}}
		data = append(data, v.data...)
	}
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	out := append(binary.LittleEndian.AppendUint64(nil, uint64(len(h))), h...)
	if err := os.WriteFile(path, append(out, data...), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadSafetensors(t *testing.T) {
	var f32, f64, bf16, i64 []byte
	for i := range 6 {
		f32 = binary.LittleEndian.AppendUint32(f32, math.Float32bits(float32(i)))
		f64 = binary.LittleEndian.AppendUint64(f64, math.Float64bits(float64(i)/2))
		bf16 = binary.LittleEndian.AppendUint16(bf16, uint16(math.Float32bits(float32(3*i))>>16))
	}
	i64 = binary.LittleEndian.AppendUint64(i64, 7)
	type entry = struct {
		dtype string
		shape []int
		data  []byte
	}
	path := filepath.Join(t.TempDir(), "w.safetensors")
	writeSafetensors(t, path, map[string]entry{
		"a": {"F32", []int{2, 3}, f32}, "b": {"F64", []int{6}, f64}, "c": {"BF16", []int{3, 2}, bf16},
		"bn.num_batches_tracked": {"I64", []int{}, i64},
	})
	state, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(state) != 3 {
		t.Errorf("%d tensors, want 3 (the step counter left out)", len(state))
	}
	check(t, "F32", state["a"], []int{2, 3}, iota(6, 1))
	check(t, "F64", state["b"], []int{6}, iota(6, 0.5))
	check(t, "BF16", state["c"], []int{3, 2}, iota(6, 3))

	writeSafetensors(t, path, map[string]entry{"steps": {"I64", []int{}, i64}})
	if _, err := Read(path); err == nil || !strings.Contains(err.Error(), `tensor "steps": dtype I64`) {
		t.Errorf("integer tensor: %v", err)
	}
}

func TestReadErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.safetensors")
	if err := os.WriteFile(junk, []byte("not a safetensors file at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(junk); err == nil || !strings.Contains(err.Error(), "not a safetensors file") {
		t.Errorf("junk safetensors: %v", err)
	}
	junkPth := filepath.Join(dir, "junk.pt")
	if err := os.WriteFile(junkPth, []byte("not a pickle"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(junkPth); err == nil || !strings.Contains(err.Error(), "not a PyTorch file") {
		t.Errorf("junk .pt: %v", err)
	}
	if _, err := Read(filepath.Join(dir, "weights.h5")); err == nil || !strings.Contains(err.Error(), "want a .pth") {
		t.Errorf(".h5: %v", err)
	}
	if _, err := Read(filepath.Join(dir, "missing.safetensors")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestConverters(t *testing.T) {
	// OIHW [2, 3, 1, 2]: element (o, i, h, w) = 1000o + 100i + 10h + w; HWIO keeps each element's value.
	var oihw []float32
	for o := range 2 {
		for i := range 3 {
			for w := range 2 {
				oihw = append(oihw, float32(1000*o+100*i+w))
			}
		}
	}
	k, err := OIHWToHWIO(Tensor{Dims: []int{2, 3, 1, 2}, Values: oihw})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Shape().CheckDims(1, 2, 3, 2); err != nil {
		t.Fatal(err)
	}
	got := tensors.MustCopyFlatData[float32](k)
	for w := range 2 {
		for i := range 3 {
			for o := range 2 {
				if v := got[(w*3+i)*2+o]; v != float32(1000*o+100*i+w) {
					t.Errorf("HWIO[0, %d, %d, %d] = %v", w, i, o, v)
				}
			}
		}
	}
	d, err := Transposed2D(Tensor{Dims: []int{2, 3}, Values: iota(6, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Shape().CheckDims(3, 2); err != nil || fmt.Sprint(tensors.MustCopyFlatData[float32](d)) != "[0 3 1 4 2 5]" {
		t.Errorf("Transposed2D: %v %v", d, err)
	}
	a, _ := AsIs(Tensor{Dims: []int{2}, Values: []float32{1, 2}})
	if err := a.Shape().CheckDims(2); err != nil {
		t.Error(err)
	}
	if _, err := OIHWToHWIO(Tensor{Dims: []int{2, 3}, Values: iota(6, 1)}); err == nil {
		t.Error("OIHWToHWIO of a matrix: no error")
	}
	if _, err := Transposed2D(Tensor{Dims: []int{6}, Values: iota(6, 1)}); err == nil {
		t.Error("Transposed2D of a vector: no error")
	}
}

// TestAssign: a new variable is created, an existing one of the same shape gets the value, one of
// another shape is refused naming both shapes.
func TestAssign(t *testing.T) {
	store := model.NewStore()
	if err := Assign(store, "/net/conv/kernel", tensors.FromValue([]float32{1, 2})); err != nil {
		t.Fatal(err)
	}
	if err := Assign(store, "/net/conv/kernel", tensors.FromValue([]float32{3, 4})); err != nil {
		t.Fatal(err)
	}
	v := store.GetVariable("/net/conv/kernel")
	if v == nil || fmt.Sprint(tensors.MustCopyFlatData[float32](v.MustValue())) != "[3 4]" {
		t.Errorf("variable after two assignments: %v", v)
	}
	err := Assign(store, "/net/conv/kernel", tensors.FromValue([]float32{1, 2, 3}))
	if err == nil || !strings.Contains(err.Error(), "(Float32)[3] in the file") || !strings.Contains(err.Error(), "[2] in the model") {
		t.Errorf("shape mismatch: %v", err)
	}
}
