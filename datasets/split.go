package datasets

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// TrainSplit is the only split name of the sources of this package: cats_vs_dogs has no predefined
// train/validation/test split in TFDS either, so the tutorial slices "train".
const TrainSplit = "train"

// SplitSpec is a parsed TFDS split expression such as "train[:40%]", "train[40%:50%]", "train[1000:]",
// "train[-10%:]" or "train[:10%]+train[-10%:]". Parse one with ParseSplit and turn it into example
// ranges with Ranges, once the number of examples is known.
//
// Semantics follow TFDS's ReadInstruction with its default "closest" rounding: a percent boundary p
// of a split with n examples is int(round(p*n/100)) with Python 3's round, which rounds halves to
// even; negative boundaries count from the end; boundaries are clamped to [0, n]; a slice whose start
// is not before its end is empty. Parts joined with "+" are concatenated in order.
//
// Not supported (ParseSplit returns an error): TFDS's "(pct1_dropremainder)" rounding suffix, shard
// slices ("train[:4shard]"), and mixing a percent and an absolute boundary in one slice (TFDS reads
// "train[10:20%]" as 10%..20%; we reject it as ambiguous).
type SplitSpec struct {
	expr  string
	parts []splitPart
}

type splitPart struct {
	name     string
	from, to *float64 // nil: open end.
	percent  bool
}

// Range is a half-open range [From, To) of example positions.
type Range struct{ From, To int }

// Len is the number of positions in the range.
func (r Range) Len() int { return max(0, r.To-r.From) }

var (
	splitPartRE  = regexp.MustCompile(`^(\w+)(?:\[([^\]:]*):([^\]:]*)\])?$`)
	splitBoundRE = regexp.MustCompile(`^(-?\d+(?:\.\d+)?)(%?)$`)
)

// ParseSplit parses a TFDS split expression (see SplitSpec).
func ParseSplit(expr string) (SplitSpec, error) {
	s := SplitSpec{expr: strings.TrimSpace(expr)}
	if s.expr == "" {
		return SplitSpec{}, fmt.Errorf("empty split expression")
	}
	for _, raw := range strings.Split(s.expr, "+") {
		raw = strings.TrimSpace(raw)
		m := splitPartRE.FindStringSubmatch(raw)
		if m == nil {
			return SplitSpec{}, fmt.Errorf("split %q: cannot parse %q: want name or name[from:to], e.g. train[:40%%] or train[1000:]", expr, raw)
		}
		p := splitPart{name: m[1]}
		var units []bool
		for i, b := range []string{m[2], m[3]} {
			b = strings.TrimSpace(b)
			if b == "" {
				continue
			}
			bm := splitBoundRE.FindStringSubmatch(b)
			if bm == nil {
				return SplitSpec{}, fmt.Errorf("split %q: bad boundary %q: want an integer, or a percentage such as 40%%", expr, b)
			}
			pct := bm[2] == "%"
			if !pct && strings.Contains(bm[1], ".") {
				return SplitSpec{}, fmt.Errorf("split %q: absolute boundary %q must be an integer", expr, b)
			}
			v, err := strconv.ParseFloat(bm[1], 64)
			if err != nil {
				return SplitSpec{}, fmt.Errorf("split %q: boundary %q: %w", expr, b, err)
			}
			if pct && math.Abs(v) > 100 {
				return SplitSpec{}, fmt.Errorf("split %q: percent boundary %q must be within [-100%%, 100%%]", expr, b)
			}
			units = append(units, pct)
			if i == 0 {
				p.from = &v
			} else {
				p.to = &v
			}
		}
		if len(units) == 2 && units[0] != units[1] {
			return SplitSpec{}, fmt.Errorf("split %q: %q mixes a percent and an absolute boundary", expr, raw)
		}
		p.percent = len(units) > 0 && units[0]
		s.parts = append(s.parts, p)
	}
	return s, nil
}

// String returns the expression as given to ParseSplit (trimmed).
func (s SplitSpec) String() string { return s.expr }

// Names returns the split names the expression refers to, in order (duplicates kept).
func (s SplitSpec) Names() []string {
	names := make([]string, len(s.parts))
	for i, p := range s.parts {
		names[i] = p.name
	}
	return names
}

// Ranges resolves the expression for a split of n examples. All parts must name the split
// TrainSplit, the only split of this package's sources.
func (s SplitSpec) Ranges(n int) ([]Range, error) {
	if n < 0 {
		return nil, fmt.Errorf("split %q: negative number of examples %d", s.expr, n)
	}
	if len(s.parts) == 0 {
		return nil, fmt.Errorf("split: empty expression (use ParseSplit)")
	}
	ranges := make([]Range, 0, len(s.parts))
	for _, p := range s.parts {
		if p.name != TrainSplit {
			return nil, fmt.Errorf("split %q: unknown split %q: the only split is %q", s.expr, p.name, TrainSplit)
		}
		from, to := 0, n
		if p.from != nil {
			from = boundary(*p.from, p.percent, n)
		}
		if p.to != nil {
			to = boundary(*p.to, p.percent, n)
		}
		if from < 0 {
			from = max(n+from, 0)
		}
		if to < 0 {
			to = max(n+to, 0)
		}
		from, to = min(from, n), min(to, n)
		if to < from {
			to = from
		}
		ranges = append(ranges, Range{From: from, To: to})
	}
	return ranges, nil
}

// Len is the number of examples the expression selects from a split of n examples.
func (s SplitSpec) Len(n int) (int, error) {
	ranges, err := s.Ranges(n)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, r := range ranges {
		total += r.Len()
	}
	return total, nil
}

// SelectsNothing reports whether the expression selects no examples whatever the number of examples,
// as its boundaries alone tell: every part ends at the first example (train[:0], train[:-100%]),
// starts at the last (train[100%:]), has equal boundaries (train[5:5]), or ends at or before its
// start with both boundaries counted from the start (train[90%:10%]) or both in examples from the
// end (train[-5:-10]). Other parts depend on the number of examples (train[1000:], train[60%:-50%],
// and train[-10%:-50%], which selects one of 2 examples: -10% of 2 rounds to 0, the first): Len
// tells once it is known.
func (s SplitSpec) SelectsNothing() bool {
	if len(s.parts) == 0 {
		return false
	}
	for _, p := range s.parts {
		if !p.selectsNothing() {
			return false
		}
	}
	return true
}

// selectsNothing is SelectsNothing for one part. A position is a non-decreasing function of its
// boundary among non-negative boundaries and among negative absolute ones (Ranges), so from >= to
// within one of these is empty for every n. A negative percentage is not: it is the first example
// while it rounds to 0.
func (p splitPart) selectsNothing() bool {
	if p.to == nil && !p.percent {
		return false // [a:] with an absolute a: empty only when n <= a.
	}
	from, to := 0.0, 100.0 // open ends: the first example; the end (percent parts only, see above)
	if p.from != nil {
		from = *p.from
	}
	if p.to != nil {
		to = *p.to
	}
	if p.percent { // -100% is the first example, like 0%
		from, to = fromStart(from), fromStart(to)
	}
	switch {
	case to == 0, p.percent && from == 100, from == to:
		return true
	case from >= 0 && to >= 0, from < 0 && to < 0 && !p.percent:
		return from >= to
	}
	return false
}

// fromStart writes the percent boundary -100% (the first example) as 0%.
func fromStart(pct float64) float64 {
	if pct == -100 {
		return 0
	}
	return pct
}

// CheckSelects refuses an expression that selects none of the n examples of the source at root,
// with an error worded to follow the split's name (the command line names its flag, training its
// role).
func (s SplitSpec) CheckSelects(n int, root string) error {
	k, err := s.Len(n)
	if err != nil {
		return err
	}
	if k == 0 {
		return fmt.Errorf("selects none of the %d examples of %s: give a range within them, e.g. train[:40%%]", n, root)
	}
	return nil
}

// Overlap is the number of examples that both expressions select from a split of n examples
// (counted once per pair of overlapping parts).
func Overlap(a, b SplitSpec, n int) (int, error) {
	ar, err := a.Ranges(n)
	if err != nil {
		return 0, err
	}
	br, err := b.Ranges(n)
	if err != nil {
		return 0, err
	}
	shared := 0
	for _, x := range ar {
		for _, y := range br {
			shared += Range{From: max(x.From, y.From), To: min(x.To, y.To)}.Len()
		}
	}
	return shared, nil
}

// boundary converts a parsed boundary to an example position (before negative wrap-around and
// clamping). Percentages use TFDS's "closest" rounding: int(round(v*n/100.)), where Python 3's round
// of a float rounds halves to even; the float operations are the same as Python's, in the same order.
func boundary(v float64, percent bool, n int) int {
	if !percent {
		return int(v)
	}
	return int(math.RoundToEven(v * float64(n) / 100))
}
