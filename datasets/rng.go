package datasets

import "math/bits"

// rng is the package's deterministic random generator (SplitMix64). We use our own instead of
// math/rand so that the example order and the shuffle order of a given seed are part of this
// package's contract: they cannot change with a Go release, and cache files keyed by the order seed
// stay valid.
type rng struct{ state uint64 }

// newRNG derives a generator from a seed and a stream number (distinct purposes, e.g. the example
// order and the per-epoch shuffle, use distinct streams so that equal seeds do not correlate them).
func newRNG(seed, stream uint64) *rng {
	r := &rng{state: seed ^ (stream * 0xD1B54A32D192ED03)}
	r.next() // decorrelate nearby seeds.
	return r
}

func (r *rng) next() uint64 {
	r.state += 0x9E3779B97F4A7C15
	z := r.state
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// intn returns a uniform integer in [0, n), n > 0, without modulo bias (Lemire's multiply-shift
// with rejection).
func (r *rng) intn(n int) int {
	bound := uint64(n)
	hi, lo := bits.Mul64(r.next(), bound)
	if lo < bound {
		threshold := -bound % bound
		for lo < threshold {
			hi, lo = bits.Mul64(r.next(), bound)
		}
	}
	return int(hi)
}

// Streams of newRNG.
const (
	streamOrder   = 1 // the fixed example order of a Source.
	streamShuffle = 2 // the per-epoch shuffle buffer.
)

// permutation returns a seeded Fisher-Yates permutation of [0, n).
func permutation(n int, seed uint64) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	r := newRNG(seed, streamOrder)
	for i := n - 1; i > 0; i-- {
		j := r.intn(i + 1)
		p[i], p[j] = p[j], p[i]
	}
	return p
}
