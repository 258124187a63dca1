package resizer

import "github.com/learnresize/learnresize/resample"

// Method is an interpolation method of tf.image.resize (antialias=False, half-pixel centers);
// the weights live in package resample, which the dataset pipeline shares.
type Method = resample.Method

// The methods of tf.image.resize (see resample's for what each computes).
const (
	Bilinear = resample.Bilinear
	Bicubic  = resample.Bicubic
	Nearest  = resample.Nearest
	Area     = resample.Area
)

// ParseMethod accepts the tf.image.resize names ("bilinear", "bicubic", "nearest", "area").
func ParseMethod(s string) (Method, error) { return resample.ParseMethod(s) }
