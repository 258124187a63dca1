package layers

import "math"

// Host-side float64 references for the layers' ops, written as plain loops over NHWC data: they
// share no code and no formulation with the graphs they check (no im2col, no strided slices, no
// GoMLX autodiff). Gradients are either central finite differences of these references or, at the
// kinks where finite differences are undefined, written out by hand with PyTorch's convention.

// nhwc indexes a flat NHWC tensor of dimensions d.
func nhwc(d []int, b, i, j, c int) int { return ((b*d[1]+i)*d[2]+j)*d[3] + c }

// hostConv is a direct 2-D convolution (cross-correlation, as Keras and GoMLX compute it) of NHWC
// x with kernel [kh, kw, in, out], the stride and pad zeros on every side.
func hostConv(x []float64, xd []int, k []float64, kd []int, stride, pad int) ([]float64, []int) {
	kh, kw, in, out := kd[0], kd[1], kd[2], kd[3]
	if in != xd[3] {
		panic("hostConv: channel mismatch")
	}
	oh, ow := (xd[1]+2*pad-kh)/stride+1, (xd[2]+2*pad-kw)/stride+1
	yd := []int{xd[0], oh, ow, out}
	y := make([]float64, xd[0]*oh*ow*out)
	for b := range xd[0] {
		for oi := range oh {
			for oj := range ow {
				for o := range out {
					s := 0.0
					for di := range kh {
						ii := oi*stride + di - pad
						if ii < 0 || ii >= xd[1] {
							continue
						}
						for dj := range kw {
							jj := oj*stride + dj - pad
							if jj < 0 || jj >= xd[2] {
								continue
							}
							for c := range in {
								s += x[nhwc(xd, b, ii, jj, c)] * k[((di*kw+dj)*in+c)*out+o]
							}
						}
					}
					y[nhwc(yd, b, oi, oj, o)] = s
				}
			}
		}
	}
	return y, yd
}

// hostSlice2D keeps rows r0, r0+rs, ... (rn of them) and columns c0, c0+cs, ... (cn) of NHWC x.
func hostSlice2D(x []float64, xd []int, r0, rn, rs, c0, cn, cs int) ([]float64, []int) {
	yd := []int{xd[0], rn, cn, xd[3]}
	y := make([]float64, 0, xd[0]*rn*cn*xd[3])
	for b := range xd[0] {
		for i := range rn {
			for j := range cn {
				for c := range xd[3] {
					y = append(y, x[nhwc(xd, b, r0+i*rs, c0+j*cs, c)])
				}
			}
		}
	}
	return y, yd
}

// hostMaxPool is a window x window valid max pooling with the stride; arg holds, for each output,
// the flat input index of the first maximum of its window in row-major order (PyTorch's and XLA's
// choice on ties: a later element replaces the running maximum only when strictly greater).
func hostMaxPool(x []float64, xd []int, window, stride int) (y []float64, yd []int, arg []int) {
	return hostMaxPoolTies(x, xd, window, stride, false)
}

// hostMaxPoolTies is hostMaxPool, with arg on the last maximum of each window when last is set.
func hostMaxPoolTies(x []float64, xd []int, window, stride int, last bool) (y []float64, yd []int, arg []int) {
	oh, ow := (xd[1]-window)/stride+1, (xd[2]-window)/stride+1
	yd = []int{xd[0], oh, ow, xd[3]}
	for b := range xd[0] {
		for oi := range oh {
			for oj := range ow {
				for c := range xd[3] {
					best := -1
					for di := range window {
						for dj := range window {
							idx := nhwc(xd, b, oi*stride+di, oj*stride+dj, c)
							if best < 0 || x[idx] > x[best] || last && x[idx] == x[best] {
								best = idx
							}
						}
					}
					y = append(y, x[best])
					arg = append(arg, best)
				}
			}
		}
	}
	return y, yd, arg
}

// hostAvgPool is a window x window valid average pooling with the stride.
func hostAvgPool(x []float64, xd []int, window, stride int) ([]float64, []int) {
	oh, ow := (xd[1]-window)/stride+1, (xd[2]-window)/stride+1
	yd := []int{xd[0], oh, ow, xd[3]}
	y := make([]float64, 0, xd[0]*oh*ow*xd[3])
	for b := range xd[0] {
		for oi := range oh {
			for oj := range ow {
				for c := range xd[3] {
					s := 0.0
					for di := range window {
						for dj := range window {
							s += x[nhwc(xd, b, oi*stride+di, oj*stride+dj, c)]
						}
					}
					y = append(y, s/float64(window*window))
				}
			}
		}
	}
	return y, yd
}

// hostPad2D zero-pads the spatial axes of NHWC x by p on every side.
func hostPad2D(x []float64, xd []int, p int) ([]float64, []int) {
	yd := []int{xd[0], xd[1] + 2*p, xd[2] + 2*p, xd[3]}
	y := make([]float64, yd[0]*yd[1]*yd[2]*yd[3])
	for b := range xd[0] {
		for i := range xd[1] {
			for j := range xd[2] {
				for c := range xd[3] {
					y[nhwc(yd, b, i+p, j+p, c)] = x[nhwc(xd, b, i, j, c)]
				}
			}
		}
	}
	return y, yd
}

// hostDot is sum(a*b).
func hostDot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// hostBatchNorm is a training-mode batch normalisation over the last axis (c channels) of x in
// float64, gamma 1 and beta 0: y = (x - mean) / sqrt(var + eps) with the batch mean and biased
// variance. grad is the gradient of sum(r*y) wrt x through the statistics,
// inv*(r - mean(r)) - (x - mean)*inv³*mean(r*(x - mean)), and stopGrad the gradient with the
// statistics held constant, inv*r. Means use two passes (the centred values are summed), so the
// result is accurate to float64 rounding for any offset.
func hostBatchNorm(x []float64, c int, eps float64, r []float64) (y, grad, stopGrad []float64) {
	n := float64(len(x) / c)
	mean, variance := make([]float64, c), make([]float64, c)
	for i, v := range x {
		mean[i%c] += v
	}
	for ch := range mean {
		mean[ch] /= n
	}
	for i, v := range x {
		d := v - mean[i%c]
		variance[i%c] += d * d
	}
	inv := make([]float64, c)
	meanR, meanRD := make([]float64, c), make([]float64, c)
	for ch := range variance {
		variance[ch] /= n
		inv[ch] = 1 / math.Sqrt(variance[ch]+eps)
	}
	for i, v := range x {
		meanR[i%c] += r[i] / n
		meanRD[i%c] += r[i] * (v - mean[i%c]) / n
	}
	y, grad, stopGrad = make([]float64, len(x)), make([]float64, len(x)), make([]float64, len(x))
	for i, v := range x {
		ch := i % c
		d := v - mean[ch]
		y[i] = d * inv[ch]
		grad[i] = inv[ch]*(r[i]-meanR[ch]) - d*inv[ch]*inv[ch]*inv[ch]*meanRD[ch]
		stopGrad[i] = inv[ch] * r[i]
	}
	return y, grad, stopGrad
}
