package datasets

import (
	"reflect"
	"testing"
)

func TestSplitRanges(t *testing.T) {
	tests := []struct {
		expr string
		n    int
		want []Range
	}{
		// The tutorial's splits of cats_vs_dogs (23,262 examples): 9,305 and 2,326.
		{"train[:40%]", 23262, []Range{{0, 9305}}},        // 9304.8 -> 9305
		{"train[40%:50%]", 23262, []Range{{9305, 11631}}}, // 11631.0
		{"train", 23262, []Range{{0, 23262}}},
		{"train[:1000]", 23262, []Range{{0, 1000}}},
		{"train[1000:]", 23262, []Range{{1000, 23262}}},
		{"train[:]", 10, []Range{{0, 10}}},
		// Python 3 round() rounds halves to even: 2.5 -> 2, 7.5 -> 8, -2.5 -> -2.
		{"train[:10%]", 25, []Range{{0, 2}}},
		{"train[:30%]", 25, []Range{{0, 8}}},
		{"train[-10%:]", 25, []Range{{23, 25}}},
		{"train[50%:]", 25, []Range{{12, 25}}}, // 12.5 -> 12
		{"train[:70%]", 25, []Range{{0, 18}}},  // 17.5 -> 18
		{"train[:0.5%]", 1000, []Range{{0, 5}}},
		// Negative absolute boundaries count from the end; everything is clamped to [0, n].
		{"train[-3:]", 10, []Range{{7, 10}}},
		{"train[:-3]", 10, []Range{{0, 7}}},
		{"train[-30:5]", 10, []Range{{0, 5}}},
		{"train[5:100]", 10, []Range{{5, 10}}},
		{"train[8:3]", 10, []Range{{8, 8}}},
		{"train[-100%:100%]", 7, []Range{{0, 7}}},
		{"train[:10%]+train[-10%:]", 100, []Range{{0, 10}, {90, 100}}},
		{" train[ 10 : 20 ] ", 100, []Range{{10, 20}}},
		{"train[:40%]", 0, []Range{{0, 0}}},
	}
	for _, tc := range tests {
		spec, err := ParseSplit(tc.expr)
		if err != nil {
			t.Errorf("ParseSplit(%q): %v", tc.expr, err)
			continue
		}
		got, err := spec.Ranges(tc.n)
		if err != nil {
			t.Errorf("%q.Ranges(%d): %v", tc.expr, tc.n, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q.Ranges(%d) = %v, want %v", tc.expr, tc.n, got, tc.want)
		}
	}
}

// TestTutorialSplitSizes pins the two numbers the tutorial's training depends on.
func TestTutorialSplitSizes(t *testing.T) {
	for expr, want := range map[string]int{"train[:40%]": 9305, "train[40%:50%]": 2326} {
		spec, err := ParseSplit(expr)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := spec.Len(23262); err != nil || got != want {
			t.Errorf("%s of 23,262 examples: %d (%v), want %d", expr, got, err, want)
		}
	}
}

func TestSplitErrors(t *testing.T) {
	for _, expr := range []string{
		"", "train[", "train[:40%", "train[1.5:]", "train[:101%]", "train[10:20%]",
		"train[:10%](pct1_dropremainder)", "train[:4shard]", "train[abc:]", "train[1:2:3]", "train+",
	} {
		if _, err := ParseSplit(expr); err == nil {
			t.Errorf("ParseSplit(%q): no error", expr)
		}
	}
	spec, err := ParseSplit("test[:10%]")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spec.Ranges(100); err == nil {
		t.Error(`"test" split: no error`)
	}
}

func TestPermutationIsStable(t *testing.T) {
	// The example order is part of the package's contract (cache keys and split membership depend
	// on it): a change here must be deliberate.
	if got, want := permutation(10, 0), []int{0, 5, 1, 6, 7, 8, 3, 2, 9, 4}; !reflect.DeepEqual(got, want) {
		t.Errorf("permutation(10, 0) = %v, want %v", got, want)
	}
	p := permutation(1000, 7)
	seen := make([]bool, 1000)
	for _, v := range p {
		if seen[v] {
			t.Fatalf("permutation repeats %d", v)
		}
		seen[v] = true
	}
	if reflect.DeepEqual(p, permutation(1000, 8)) {
		t.Error("seeds 7 and 8 give the same permutation")
	}
}

// TestSelectsNothing checks SelectsNothing against Len for every size up to 2,000: an expression it
// reports never selects an example, and the others select some for at least one size.
func TestSelectsNothing(t *testing.T) {
	for expr, want := range map[string]bool{
		"train[90%:10%]": true, "train[5:5]": true, "train[8:3]": true, "train[-5:-10]": true, "train[-10%:-10%]": true,
		"train[:0]": true, "train[:0%]": true, "train[:-0]": true, "train[:-100%]": true, "train[-50%:-100%]": true,
		"train[100%:]": true, "train[100%:-20%]": true, "train[-3:0]": true, "train[5:5]+train[90%:10%]": true,
		"train": false, "train[:]": false, "train[:40%]": false, "train[40%:50%]": false, "train[1000:]": false,
		"train[-3:5]": false, "train[5:-3]": false, "train[-100%:-50%]": false, "train[-10%:]": false, "train[90%:-10%]": false,
		"train[:-5]": false, "train[-0:5]": false, "train[5:5]+train[:1]": false, "train[-10%:-50%]": false,
	} {
		spec, err := ParseSplit(expr)
		if err != nil {
			t.Fatalf("ParseSplit(%q): %v", expr, err)
		}
		if got := spec.SelectsNothing(); got != want {
			t.Errorf("%q.SelectsNothing() = %v, want %v", expr, got, want)
		}
		some := false
		for n := range 2001 {
			k, err := spec.Len(n)
			if err != nil {
				t.Fatal(err)
			}
			some = some || k > 0
		}
		if some == want {
			t.Errorf("%q: Len > 0 for some size up to 2000: %v; SelectsNothing() = %v", expr, some, want)
		}
	}
}

func TestOverlap(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		n    int
		want int
	}{
		{"train[:40%]", "train[40%:50%]", 23262, 0},
		{"train[:50%]", "train[40%:]", 100, 10},
		{"train[:10%]+train[-10%:]", "train[5:95]", 100, 10},
		{"train[1000:]", "train", 500, 0},
	} {
		a, err := ParseSplit(tc.a)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ParseSplit(tc.b)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := Overlap(a, b, tc.n); err != nil || got != tc.want {
			t.Errorf("Overlap(%s, %s, %d) = %d, %v; want %d", tc.a, tc.b, tc.n, got, err, tc.want)
		}
	}
	a, _ := ParseSplit("test[:10%]")
	b, _ := ParseSplit("train")
	if _, err := Overlap(a, b, 10); err == nil {
		t.Error(`"test" split: no error`)
	}
}
