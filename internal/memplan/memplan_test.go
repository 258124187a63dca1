package memplan

import (
	"testing"

	_ "github.com/gomlx/compute/gobackend"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
)

const n = 1000 // float32 values per tensor: 4,000 bytes

// plan builds a graph with one [n] float32 parameter on the go backend and plans outputs(x).
func plan(t *testing.T, ord Order, outputs func(x *Node) []*Node) Plan {
	t.Helper()
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	g := NewGraph(b, "plan")
	x := Parameter(g, "x", shapes.Make(dtypes.Float32, n))
	return EstimateOrder(ord, outputs(x)...)
}

// TestChain: in a chain each value dies when the next one is made, so two live at a time.
func TestChain(t *testing.T) {
	p := plan(t, Creation, func(x *Node) []*Node {
		return []*Node{ReduceAllSum(Square(AddScalar(MulScalar(x, 2), 1)))}
	})
	if p.Peak != 2*4*n+4 && p.Peak != 2*4*n {
		t.Errorf("chain: peak %d bytes, want two tensors (%d)", p.Peak, 2*4*n)
	}
}

// TestKeptForLater: a value read again at the end stays live; a reshape of it costs nothing.
func TestKeptForLater(t *testing.T) {
	p := plan(t, Creation, func(x *Node) []*Node {
		y := MulScalar(x, 2)
		z := MulScalar(y, 3)
		w := Add(Reshape(z, 10, 100), Reshape(x, 10, 100))
		return []*Node{ReduceAllSum(w)}
	})
	// Three tensors: x (read again at the end), y and z when z is made; x, z and w when w is.
	if p.Peak < 3*4*n || p.Peak > 3*4*n+8 {
		t.Errorf("kept for later: peak %d bytes, want three tensors (%d)", p.Peak, 3*4*n)
	}
	big := 0
	for _, v := range p.Live {
		if v.Bytes == 4*n {
			big++
		}
	}
	if big != 3 {
		t.Errorf("live at the peak: %d tensors, want 3 (%v)", big, p.ByKind())
	}
}

// TestReuseHoldsIdleBuffers: under ONNX Runtime's same-size reuse, two [n] buffers freed early stay
// allocated while [2n] values are made, waiting for the [n] values that come after: the peak is
// both pairs at once, where freeing at last use needs only the larger pair.
func TestReuseHoldsIdleBuffers(t *testing.T) {
	p := plan(t, Creation, func(x *Node) []*Node {
		a := MulScalar(x, 2)
		s := ReduceAllSum(a)
		m := MulScalar(BroadcastToDims(s, 2*n), 3)
		d := BroadcastToDims(ReduceAllSum(m), n)
		return []*Node{ReduceAllSum(MulScalar(d, 2))}
	})
	if want := int64(2 * 4 * 2 * n); p.Peak < want || p.Peak > want+8 {
		t.Errorf("peak %d bytes, want the two [2n] tensors (%d)", p.Peak, want)
	}
	if want := int64(2*4*2*n + 2*4*n); p.Reuse < want || p.Reuse > want+8 {
		t.Errorf("reuse peak %d bytes, want the [2n] pair and two idle [n] buffers (%d)", p.Reuse, want)
	}
}

// TestReuseMatchesShapes: ONNX Runtime's planner shares a dead value's buffer with a value of the
// same dimensions and element size (its type may differ: int32 takes a float32 buffer), not with one
// of the same bytes in another shape. A [2n] float32 value dies, a [3n] one lives and dies, then a
// value of a's bytes is made: shared, a's buffer is held idle beside the [3n] one (5n values at
// once); not shared, the peak is the [3n] value's, as when each buffer is freed at its last use.
func TestReuseMatchesShapes(t *testing.T) {
	for _, c := range []struct {
		name   string
		later  func(s *Node) *Node
		shared bool
	}{
		{"[n, 2] float32", func(s *Node) *Node { return BroadcastToDims(s, n, 2) }, false},
		{"[2n] int32", func(s *Node) *Node { return BroadcastToDims(ConvertDType(s, dtypes.Int32), 2*n) }, true},
	} {
		p := plan(t, Creation, func(x *Node) []*Node {
			a := BroadcastToDims(ReduceAllSum(x), 2*n)
			big := BroadcastToDims(ReduceAllSum(a), 3*n)
			b := c.later(ReduceAllSum(big))
			return []*Node{ConvertDType(ReduceAllSum(b), dtypes.Float32)}
		})
		if want := int64(4 * 3 * n); p.Peak < want || p.Peak > want+16 {
			t.Errorf("%s: peak %d bytes, want the [3n] value's (%d)", c.name, p.Peak, want)
		}
		want := p.Peak
		if c.shared {
			want += 4 * 2 * n
		}
		if p.Reuse != want {
			t.Errorf("%s: reuse peak %d bytes, want %d (a's buffer shared: %v)", c.name, p.Reuse, want, c.shared)
		}
	}
}

// TestOrders: every order plans the same nodes and a reverse depth-first walk differs from
// creation order where independent branches interleave.
func TestOrders(t *testing.T) {
	build := func(x *Node) []*Node {
		// Two branches made interleaved: in creation order both big values are live at once; a
		// depth-first walk finishes one branch before starting the other.
		a1 := MulScalar(x, 2)
		b1 := MulScalar(x, 3)
		a2 := ReduceAllSum(Square(a1))
		b2 := ReduceAllSum(Square(b1))
		return []*Node{Add(a2, b2)}
	}
	c, r := plan(t, Creation, build), plan(t, ReverseDFS, build)
	if c.Nodes != r.Nodes {
		t.Errorf("nodes: creation %d, reverse DFS %d", c.Nodes, r.Nodes)
	}
	if r.Peak >= c.Peak {
		t.Errorf("reverse DFS peak %d, want below creation order's %d", r.Peak, c.Peak)
	}
}
