package resizer

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/ml/model"
)

// Config is the configuration of a learnable resizer, as recorded in its checkpoint.
type Config struct {
	TargetHeight, TargetWidth int
	Filters                   int
	ResBlocks                 int
	Interpolation             Method
}

// DefaultConfig is the tutorial's resizer: 150x150 output, 16 filters, 1 residual block, bilinear.
func DefaultConfig() Config {
	return Config{TargetHeight: DefaultTarget, TargetWidth: DefaultTarget, Filters: DefaultFilters,
		ResBlocks: DefaultResBlocks, Interpolation: Bilinear}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.TargetHeight <= 0 || c.TargetWidth <= 0:
		return fmt.Errorf("target size %dx%d must be positive", c.TargetHeight, c.TargetWidth)
	case c.Filters <= 0:
		return fmt.Errorf("filters %d must be positive", c.Filters)
	case c.ResBlocks < 0:
		return fmt.Errorf("residual blocks %d must not be negative", c.ResBlocks)
	case c.Interpolation < Bilinear || c.Interpolation > Area:
		return fmt.Errorf("unknown interpolation %v", c.Interpolation)
	}
	return nil
}

// String is a compact description, e.g. "150x150 bilinear, 16 filters, 1 residual block(s)".
func (c Config) String() string {
	return fmt.Sprintf("%dx%d %s, %d filters, %d residual block(s)", c.TargetHeight, c.TargetWidth, c.Interpolation, c.Filters, c.ResBlocks)
}

func (c Config) writeParams(scope *model.Scope) {
	scope.SetParam(ParamTargetHeight, c.TargetHeight)
	scope.SetParam(ParamTargetWidth, c.TargetWidth)
	scope.SetParam(ParamFilters, c.Filters)
	scope.SetParam(ParamResBlocks, c.ResBlocks)
	scope.SetParam(ParamInterpolation, c.Interpolation.String())
}

// configFromScope reads a configuration recorded by Done in scope (exactly there, not inherited).
func configFromScope(scope *model.Scope) (Config, error) {
	var c Config
	ints := []struct {
		key string
		dst *int
	}{{ParamTargetHeight, &c.TargetHeight}, {ParamTargetWidth, &c.TargetWidth}, {ParamFilters, &c.Filters}, {ParamResBlocks, &c.ResBlocks}}
	for _, p := range ints {
		v, found := scope.GetParam(p.key)
		if !found {
			return c, fmt.Errorf("hyperparameter %q not recorded under %q", p.key, scope.Scope())
		}
		n, ok := toInt(v)
		if !ok {
			return c, fmt.Errorf("hyperparameter %q is %T(%v), want an integer", p.key, v, v)
		}
		*p.dst = n
	}
	v, found := scope.GetParam(ParamInterpolation)
	if !found {
		return c, fmt.Errorf("hyperparameter %q not recorded under %q", ParamInterpolation, scope.Scope())
	}
	s, ok := v.(string)
	if !ok {
		return c, fmt.Errorf("hyperparameter %q is %T, want a string", ParamInterpolation, v)
	}
	m, err := ParseMethod(s)
	if err != nil {
		return c, err
	}
	c.Interpolation = m
	return c, c.Validate()
}

func toInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int32:
		return int(n), true
	case int64:
		return int(n), true
	case float64:
		if n == math.Trunc(n) {
			return int(n), true
		}
	case float32:
		if float64(n) == math.Trunc(float64(n)) {
			return int(n), true
		}
	}
	return 0, false
}
