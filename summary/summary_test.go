package summary

import (
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/ml/model"

	"github.com/learnresize/learnresize/backend"
)

func TestFormatting(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 7051717: "7,051,717", -12345: "-12,345"} {
		if got := Commas(n); got != want {
			t.Errorf("Commas(%d) = %q, want %q", n, got, want)
		}
	}
	if got := ShapeString([]int{8, 75, 75, 64}); got != "(None, 75, 75, 64)" {
		t.Errorf("ShapeString = %q", got)
	}
}

func TestBuildCountsPerLayerAndTotals(t *testing.T) {
	b, _, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	store := model.NewStore()
	rec := &Recorder{}
	var nilRec *Recorder
	_, err = model.CallOnce(b, store, func(scope *model.Scope, g *Graph) *Node {
		s := scope.In("net").In("dense")
		w := s.VariableWithShape("kernel", shapes.Make(dtypes.Float32, 3, 4))
		s.VariableWithValue("moving", []float32{0, 0, 0, 0}).SetTrainable(false)
		y := Dot(Ones(g, shapes.Make(dtypes.Float32, 2, 3)), w.NodeValue(g)).Product()
		rec.Add("dense", "Dense", y, s)
		rec.Add("dense", "Dense", y, s) // duplicates (a graph built twice) are ignored
		rec.Add("relu", "Activation", y, nil)
		nilRec.Add("ignored", "X", y, nil) // a nil recorder ignores everything
		return y
	})
	if err != nil {
		t.Fatal(err)
	}
	s := Build("test", rec, store, "/net")
	if s.Total != 16 || s.Trainable != 12 || s.NonTrainable != 4 || len(s.Rows) != 2 || s.Rows[0].Params != 16 {
		t.Errorf("summary %+v", s)
	}
	text := s.String()
	for _, want := range []string{`Model: "test"`, "dense (Dense)", "(None, 4)", "Total params: 16 (64 B)", "Non-trainable params: 4"} {
		if !strings.Contains(text, want) {
			t.Errorf("summary text lacks %q:\n%s", want, text)
		}
	}
}
