package web

import (
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/learnresize/learnresize/models"
	"github.com/learnresize/learnresize/plots"
	"github.com/learnresize/learnresize/resizer"
	"github.com/learnresize/learnresize/training"
)

// EnvBrowserTest makes the browser test fail, rather than skip, when Chromium, Node or web's npm
// packages are missing (.ci/run sets it and installs them).
const EnvBrowserTest = "LEARNRESIZE_BROWSER_TEST"

// TestPageInChromium serves the trained test run (training/testdata/run-2026-12-01) with Handler,
// opens the page in headless Chromium (e2e.mjs, playwright-core), gives it a real photo through its
// file input, and checks what the page computed in the browser (onnxruntime-web) against the Go
// model on the same pixels: the probabilities it shows, and the display mapping of the learned
// resize (plots.Auto on the Go resizer's output). Screenshots go to $LEARNRESIZE_SHOTS if set.
func TestPageInChromium(t *testing.T) {
	need := func(what, how string) {
		if os.Getenv(EnvBrowserTest) != "" {
			t.Fatalf("%s is set but %s is missing: %s", EnvBrowserTest, what, how)
		}
		t.Skipf("%s missing (%s): the page's browser test is skipped", what, how)
	}
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		need("chromium", "apt-get install chromium")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		need("node", "apt-get install nodejs")
	}
	ortDir := filepath.Join("node_modules", "onnxruntime-web", "dist")
	if _, err := os.Stat(filepath.Join("node_modules", "playwright-core")); err != nil {
		need("web's npm packages", "npm ci in web/")
	}
	run := filepath.Join("..", "training", "testdata", "run-2026-12-01")
	h, cfg, err := Handler(run, ortDir)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	photo := filepath.Join("..", "training", "testdata", "photos", "dog_1773_64.png") // the run's input size: no browser scaling
	shots := os.Getenv("LEARNRESIZE_SHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	out := filepath.Join(t.TempDir(), "page.json")
	cmd := exec.Command(node, "e2e.mjs", srv.URL+"/", photo, out, shots)
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the page in Chromium: %v\n%s", err, b)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Probabilities []float64
		Mapping       struct{ Lo, Hi float64 }
		Shown         map[string]string
		Captions      []string
		Errors        []string
	}
	if err := json.Unmarshal(raw, &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Errors) > 0 {
		t.Errorf("the page's console: %v", page.Errors)
	}

	// The Go model on the same pixels.
	f, err := os.Open(photo)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	_ = f.Close()
	if err != nil {
		t.Fatal(err)
	}
	px := make([]uint8, 0, cfg.InputHeight*cfg.InputWidth*3)
	floats := make([]float32, 0, cap(px))
	for y := range cfg.InputHeight {
		for x := range cfg.InputWidth {
			r, g, b, _ := img.At(x, y).RGBA()
			for _, v := range []uint32{r >> 8, g >> 8, b >> 8} {
				px = append(px, uint8(v))
				floats = append(floats, float32(v)/255)
			}
		}
	}
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	store, tc, err := training.LoadRun(run)
	if err != nil {
		t.Fatal(err)
	}
	logits, err := model.CallOnce(b, store, func(scope *model.Scope, g *Graph) *Node {
		return models.Build(scope, Const(g, tensors.FromFlatDataAndDimensions(px, 1, cfg.InputHeight, cfg.InputWidth, 3)), tc.Model, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	l := tensors.MustCopyFlatData[float32](logits)
	dog := 1 / (1 + math.Exp(float64(l[0]-l[1])))
	if len(page.Probabilities) != 2 || math.Abs(page.Probabilities[1]-dog) > 1e-5 || math.Abs(page.Probabilities[0]-(1-dog)) > 1e-5 {
		t.Errorf("the page's probabilities %v, the Go model's [%v %v]", page.Probabilities, 1-dog, dog)
	}
	if want := fmtPercent(dog); page.Shown["dog"] != want {
		t.Errorf("the page shows dog: %q, want %q", page.Shown["dog"], want)
	}
	rz, err := resizer.Load(b, run)
	if err != nil {
		t.Fatal(err)
	}
	resized, err := rz.ResizeTensor(tensors.FromFlatDataAndDimensions(floats, 1, cfg.InputHeight, cfg.InputWidth, 3))
	if err != nil {
		t.Fatal(err)
	}
	m, err := plots.Auto.Resolve(resized)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(page.Mapping.Lo-m.Lo) > 1e-4 || math.Abs(page.Mapping.Hi-m.Hi) > 1e-4 {
		t.Errorf("the page maps the learned resize [%v, %v], plots.Auto [%v, %v]", page.Mapping.Lo, page.Mapping.Hi, m.Lo, m.Hi)
	}
	t.Logf("page in Chromium: p(dog) %.6f (Go %.6f), mapping [%.4f, %.4f] (Go [%.4f, %.4f]); captions %q; screenshots in %s",
		page.Probabilities[1], dog, page.Mapping.Lo, page.Mapping.Hi, m.Lo, m.Hi, page.Captions, shots)
}

// fmtPercent is the page's (100 * p).toFixed(2) + "%".
func fmtPercent(p float64) string { return fmt.Sprintf("%.2f%%", 100*p) }
