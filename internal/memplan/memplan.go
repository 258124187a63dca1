// Package memplan estimates the memory a GoMLX graph's values need when a backend runs it one node
// at a time, as ONNX Runtime's sequential executor and the pure-Go backend's ops_sequential mode
// do: each node's output is allocated when the node runs and freed after its last consumer has run;
// outputs live to the end. The peak of that sum (Plan.Peak) is what the graph's arithmetic needs,
// and the values live at the peak say what holds it: in a training graph, the activations the
// backward pass reads. It needs only the built graph, not a compiled one, so it costs a second
// where running a batch-64 training step costs minutes.
//
// The order matters (Order): ONNX Runtime runs compute-onnx's graph in a depth-first walk from its
// leaves over compute-onnx's own numbering of the nodes (ONNXRuntime); checked against ONNX
// Runtime's profiler on the tutorial's training step at batch 16, the walk and the sizes it records
// gave the same peak as this package (1.45 GB against 1.48 GB).
//
// What a process holds is more (docs/BENCHMARKS.md): ONNX Runtime's allocation planner gives a new
// value the buffer of a dead value of exactly its shape and element size (its allocation_planner.cc,
// SameSize), so buffers freed in the forward pass stay allocated, idle, until values of their shape
// come back in the backward pass (Plan.Reuse models that), its arena grows by doubling, and kernels have temporaries of their own; the pure-Go
// backend pools freed buffers until Go's collector runs. Reshapes, identities and optimization
// barriers are views of their input (ONNX Runtime aliases them).
package memplan

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
)

// Plan is the estimate for one graph.
type Plan struct {
	// Peak is the largest sum of live values, in bytes.
	Peak int64
	// PeakNode is the node whose output allocation reached the peak.
	PeakNode *Node
	// Live is every value live at the peak, largest first.
	Live []Value
	// Nodes is how many nodes the outputs depend on.
	Nodes int
	// Reuse is the peak under ONNX Runtime's static buffer reuse (see the package comment): a value
	// takes the buffer of a dead value of exactly its shape and element size when there is one, and
	// a buffer stays allocated from its first value's allocation to its last value's death.
	Reuse int64
}

// Value is one buffer live at the peak: the node that made it and its size.
type Value struct {
	Node  *Node
	Bytes int64
}

// isView reports whether a node's output shares its (first) input's buffer.
func isView(n *Node) bool {
	switch n.Type() {
	case NodeTypeReshape, NodeTypeIdentity, NodeTypeOptimizationBarrier:
		return len(n.Inputs()) == 1
	}
	return false
}

// bytesOf is the size of n's output buffer (0 for tuples, which own no buffer of their own).
func bytesOf(n *Node) int64 {
	s := n.Shape()
	if !s.Ok() || s.IsTuple() {
		return 0
	}
	return int64(s.Memory())
}

// Order is the order in which a simulated executor runs the nodes.
type Order int

const (
	// Creation runs the nodes in the order GoMLX created them (the pure-Go backend's order).
	Creation Order = iota
	// ReverseDFS is ONNX Runtime's default order: a depth-first walk from the graph's leaves (nodes
	// whose outputs nothing reads), the last-created leaf first, each node after its inputs, the
	// inputs taken last-created first.
	ReverseDFS
	// ONNXRuntime is ReverseDFS over the node numbering compute-onnx gives the ONNX graph: a
	// depth-first post-order from the outputs, in their order, each node's inputs in order.
	ONNXRuntime
)

// Estimate simulates running the nodes outputs depend on, one at a time in creation order (the
// pure-Go backend's).
func Estimate(outputs ...*Node) Plan { return EstimateOrder(Creation, outputs...) }

// EstimateOrder simulates running the nodes outputs depend on, one at a time in the given order.
func EstimateOrder(ord Order, outputs ...*Node) Plan {
	if len(outputs) == 0 {
		return Plan{}
	}
	// The nodes needed, in the order they run.
	needed := map[*Node]bool{}
	stack := slices.Clone(outputs)
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if needed[n] {
			continue
		}
		needed[n] = true
		stack = append(stack, n.Inputs()...)
	}
	var order []*Node
	if ord == ONNXRuntime {
		order = reverseDFS(postOrder(outputs), needed)
	} else {
		order = make([]*Node, 0, len(needed))
		for n := range needed {
			order = append(order, n)
		}
		slices.SortFunc(order, func(a, b *Node) int { return cmp.Compare(a.Id(), b.Id()) })
		if ord == ReverseDFS {
			order = reverseDFS(order, needed)
		}
	}
	// Each buffer's owner: a view's owner is its input's owner.
	owner := map[*Node]*Node{}
	for _, n := range order {
		owner[n] = n
		if isView(n) {
			owner[n] = owner[n.Inputs()[0]]
		}
	}
	// Last use of each buffer: the position of the last node reading it or any of its views.
	last := map[*Node]int{}
	for i, n := range order {
		for _, in := range n.Inputs() {
			last[owner[in]] = max(last[owner[in]], i)
		}
	}
	for _, o := range outputs {
		last[owner[o]] = len(order)
	}
	// Frees scheduled after each position.
	frees := make([][]*Node, len(order)+1)
	for buf, at := range last {
		frees[at] = append(frees[at], buf)
	}
	var live int64
	plan := Plan{Nodes: len(order)}
	alive := map[*Node]bool{}
	for i, n := range order {
		if owner[n] == n {
			if b := bytesOf(n); b > 0 {
				live += b
				alive[n] = true
			}
			if _, used := last[n]; !used { // never read: freed at once
				frees[i] = append(frees[i], n)
			}
		}
		if live > plan.Peak {
			plan.Peak, plan.PeakNode = live, n
			plan.Live = plan.Live[:0]
			for buf := range alive {
				plan.Live = append(plan.Live, Value{buf, bytesOf(buf)})
			}
		}
		for _, buf := range frees[i] {
			if alive[buf] {
				live -= bytesOf(buf)
				delete(alive, buf)
			}
		}
	}
	plan.Reuse = reusePeak(order, owner, last)
	slices.SortFunc(plan.Live, func(a, b Value) int {
		return cmp.Or(cmp.Compare(b.Bytes, a.Bytes), cmp.Compare(a.Node.Id(), b.Node.Id()))
	})
	return plan
}

// postOrder numbers the nodes the outputs need as compute-onnx does: depth-first post-order from
// each output in turn, inputs in order.
func postOrder(outputs []*Node) []*Node {
	visited := map[*Node]bool{}
	var order []*Node
	var visit func(n *Node)
	visit = func(n *Node) {
		if visited[n] {
			return
		}
		visited[n] = true
		for _, in := range n.Inputs() {
			visit(in)
		}
		order = append(order, n)
	}
	for _, o := range outputs {
		visit(o)
	}
	return order
}

// reusePeak simulates ONNX Runtime's allocation planner without memory patterns: each new value
// takes the most recently freed buffer of exactly its shape and element size if one exists (the
// buffers of dead values; scalars are never shared), else a new one; a buffer lives from its first
// value's allocation to its last value's death.
func reusePeak(order []*Node, owner map[*Node]*Node, last map[*Node]int) int64 {
	type buffer struct {
		size       int64
		key        string
		start, end int
	}
	var bufs []*buffer
	free := map[string][]*buffer{}
	of := map[*Node]*buffer{}
	dies := make([][]*Node, len(order)+1)
	for i, n := range order {
		if sz := bytesOf(n); owner[n] == n && sz > 0 {
			var b *buffer
			key := reuseKey(n)
			if l := free[key]; key != "" && len(l) > 0 {
				b = l[len(l)-1]
				free[key] = l[:len(l)-1]
			} else {
				b = &buffer{size: sz, key: key, start: i}
				bufs = append(bufs, b)
			}
			of[n] = b
			at, used := last[n]
			if !used {
				at = i
			}
			b.end = max(b.end, at)
			dies[at] = append(dies[at], n)
		}
		// After node i has run, the buffers of the values it read last are free for the next ones.
		for _, d := range dies[i] {
			b := of[d]
			free[b.key] = append(free[b.key], b)
		}
	}
	delta := make([]int64, len(order)+2)
	for _, b := range bufs {
		delta[b.start] += b.size
		delta[b.end+1] -= b.size
	}
	var cur, peak int64
	for _, d := range delta {
		cur += d
		peak = max(peak, cur)
	}
	return peak
}

// reuseKey is what ONNX Runtime's planner matches a dead value's buffer on: the element size and
// the dimensions; "" (never shared) for scalars.
func reuseKey(n *Node) string {
	s := n.Shape()
	if s.Rank() == 0 {
		return ""
	}
	return fmt.Sprint(s.DType.Size(), s.Dimensions)
}

// reverseDFS orders the nodes (given in creation order) as ONNX Runtime's default execution order.
func reverseDFS(nodes []*Node, needed map[*Node]bool) []*Node {
	consumed := map[*Node]bool{}
	for _, n := range nodes {
		for _, in := range n.Inputs() {
			consumed[in] = true
		}
	}
	type entry struct {
		n     *Node
		leave bool
	}
	var stack []entry
	for _, n := range nodes {
		if !consumed[n] {
			stack = append(stack, entry{n, false})
		}
	}
	index := map[*Node]int{}
	for i, n := range nodes {
		index[n] = i
	}
	visited := map[*Node]bool{}
	out := make([]*Node, 0, len(nodes))
	for len(stack) > 0 {
		e := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if e.leave {
			out = append(out, e.n)
			continue
		}
		if visited[e.n] {
			continue
		}
		visited[e.n] = true
		stack = append(stack, entry{e.n, true})
		ins := slices.Clone(e.n.Inputs())
		slices.SortFunc(ins, func(a, b *Node) int { return cmp.Compare(index[a], index[b]) })
		for _, in := range ins {
			if needed[in] && !visited[in] {
				stack = append(stack, entry{in, false})
			}
		}
	}
	return out
}

// ByKind sums the live values at the peak by the op that made them and their shape, largest first:
// "Concatenate f32[64,150,150,144] x4  3.32 GB".
func (p Plan) ByKind() []string {
	type group struct {
		key   string
		count int
		bytes int64
	}
	groups := map[string]*group{}
	for _, v := range p.Live {
		k := fmt.Sprintf("%s %s", v.Node.Type(), v.Node.Shape())
		g := groups[k]
		if g == nil {
			g = &group{key: k}
			groups[k] = g
		}
		g.count++
		g.bytes += v.Bytes
	}
	all := make([]*group, 0, len(groups))
	for _, g := range groups {
		all = append(all, g)
	}
	slices.SortFunc(all, func(a, b *group) int { return cmp.Or(cmp.Compare(b.bytes, a.bytes), strings.Compare(a.key, b.key)) })
	out := make([]string, len(all))
	for i, g := range all {
		out[i] = fmt.Sprintf("%-60s x%-3d %s", g.key, g.count, GB(g.bytes))
	}
	return out
}

// GB formats bytes as gigabytes (10^9), as the memory tables in docs/BENCHMARKS.md do.
func GB(b int64) string { return fmt.Sprintf("%.2f GB", float64(b)/1e9) }
