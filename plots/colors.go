package plots

import (
	"hash/fnv"
	"image/color"
	"regexp"
	"strings"
)

// palette is matplotlib's "tab10", the tutorial's colours.
var palette = []color.Color{
	color.RGBA{31, 119, 180, 255}, color.RGBA{255, 127, 14, 255}, color.RGBA{44, 160, 44, 255},
	color.RGBA{214, 39, 40, 255}, color.RGBA{148, 103, 189, 255}, color.RGBA{140, 86, 75, 255},
	color.RGBA{227, 119, 194, 255}, color.RGBA{127, 127, 127, 255}, color.RGBA{188, 189, 34, 255},
	color.RGBA{23, 190, 207, 255},
}

// seedSuffix matches the seed note that Series names carry after the model: " (seed 42)", " (3 seeds)".
var seedSuffix = regexp.MustCompile(`\s*\((seed \d+|\d+ seeds?)\)\s*$`)

// ModelColor is the colour of a model in every figure (Curves draws its series in it, ComparisonBars
// its bar), so that one model looks the same in the curves and in the bars. model is a model's title,
// as in a comparison row's Model or a Series' Name ("Learnable resizer + densenet121"); a trailing seed
// note, " (seed 42)" or " (3 seeds)", is ignored. The learnable resizer is blue, a naive resize
// (the tutorial's baseline) orange, and the warm-start experiment's fine-tuned backbone green and its
// evaluation without training red; any other model gets one of the remaining colours, chosen from its
// title (two such models can share one).
func ModelColor(model string) color.Color {
	key := strings.ToLower(seedSuffix.ReplaceAllString(model, ""))
	switch {
	case strings.Contains(key, "learnable resizer"):
		return palette[0]
	case strings.Contains(key, "no training"):
		return palette[3]
	case strings.Contains(key, "fine-tuned"):
		return palette[2]
	case strings.Contains(key, "resize"):
		return palette[1]
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	rest := palette[4:]
	return rest[h.Sum32()%uint32(len(rest))]
}
