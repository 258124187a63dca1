// Package notebooks holds the GoNB notebooks that mirror the keras.io tutorial, and the tests that run
// them headlessly.
package notebooks

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/learnresize/learnresize/internal/testimages"
)

// Expect is what an executed notebook must contain.
type Expect struct {
	MinPNGs   int  // at least this many image/png outputs, each a decodable, non-blank PNG
	NeedTable bool // a Markdown output holding the comparison table
}

type notebook struct {
	Cells []struct {
		CellType       string          `json:"cell_type"`
		ExecutionCount *int            `json:"execution_count"`
		Source         json.RawMessage `json:"source"`
		Outputs        []struct {
			OutputType string                     `json:"output_type"`
			Name       string                     `json:"name"`
			Text       json.RawMessage            `json:"text"`
			Data       map[string]json.RawMessage `json:"data"`
			EName      string                     `json:"ename"`
			EValue     string                     `json:"evalue"`
		} `json:"outputs"`
	} `json:"cells"`
}

// joined decodes a notebook string field, which is either a string or a list of lines.
func joined(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var lines []string
	_ = json.Unmarshal(raw, &lines)
	return strings.Join(lines, "")
}

// Failures hide in GoNB notebooks: nbconvert exits 0 on a panic or os.Exit in a cell and goes on.
// absolutePath finds a path of the machine that ran a notebook in its outputs, the checkout's own
// folder included (a reader's machine has other folders; GoNB's %goworkfix prints the checkout's,
// which is why the first cell adds its replace rule with go mod edit instead). After ';' and '>' too:
// the HTML export writes quotes as &#34; and outputs inside <pre>.
var absolutePath = regexp.MustCompile(`(^|[\s"'\[(,=:;>])/(root|home|tmp|work|usr|opt|var|etc|mnt|srv)/[^\s"',)\]<&]*`)

var badStream = regexp.MustCompile(`(?m)(exit status \d+|signal: |^panic: |^\s*\[ERROR\]|cannot find package|undefined: )`)

// CheckExecuted lists what is wrong with an executed notebook (nil when nothing is).
func CheckExecuted(data []byte, want Expect) []string {
	var nb notebook
	if err := json.Unmarshal(data, &nb); err != nil {
		return []string{"not a notebook: " + err.Error()}
	}
	var problems []string
	pngs, table := 0, false
	for i, c := range nb.Cells {
		if c.CellType != "code" {
			continue
		}
		if c.ExecutionCount == nil {
			problems = append(problems, fmt.Sprintf("cell %d was not executed", i))
		}
		for _, o := range c.Outputs {
			switch o.OutputType {
			case "error":
				problems = append(problems, fmt.Sprintf("cell %d: error output %s: %s", i, o.EName, o.EValue))
			case "stream":
				if m := badStream.FindString(joined(o.Text)); m != "" {
					problems = append(problems, fmt.Sprintf("cell %d: %s says %q", i, o.Name, strings.TrimSpace(m)))
				}
				if m := absolutePath.FindString(joined(o.Text)); m != "" {
					problems = append(problems, fmt.Sprintf("cell %d: output names a path of the machine that ran it: %q", i, strings.TrimSpace(m)))
				}
			case "display_data", "execute_result":
				if raw, ok := o.Data["image/png"]; ok {
					img, err := base64.StdEncoding.DecodeString(strings.TrimSpace(joined(raw)))
					if err != nil {
						problems = append(problems, fmt.Sprintf("cell %d: image/png is not base64: %v", i, err))
						continue
					}
					if msg := pngProblem(img); msg != "" {
						problems = append(problems, fmt.Sprintf("cell %d: %s", i, msg))
						continue
					}
					pngs++
				}
				if raw, ok := o.Data["text/markdown"]; ok && strings.Contains(joined(raw), "| Model |") {
					table = true
				}
				for _, kind := range []string{"text/markdown", "text/plain"} {
					if m := absolutePath.FindString(joined(o.Data[kind])); m != "" {
						problems = append(problems, fmt.Sprintf("cell %d: output names a path of the machine that ran it: %q", i, strings.TrimSpace(m)))
					}
				}
			}
		}
	}
	if pngs < want.MinPNGs {
		problems = append(problems, fmt.Sprintf("%d image/png outputs, want at least %d", pngs, want.MinPNGs))
	}
	if want.NeedTable && !table {
		problems = append(problems, "no comparison table (Markdown output with \"| Model |\")")
	}
	return problems
}

// pngProblem reports a PNG that does not decode or looks blank.
func pngProblem(data []byte) string {
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return "image does not decode: " + err.Error()
	}
	b := img.Bounds()
	if b.Dx() < 100 || b.Dy() < 100 {
		return fmt.Sprintf("image is only %dx%d", b.Dx(), b.Dy())
	}
	colors := map[[4]uint32]bool{}
	for y := b.Min.Y; y < b.Max.Y; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			r, g, bl, a := img.At(x, y).RGBA()
			colors[[4]uint32{r >> 8, g >> 8, bl >> 8, a >> 8}] = true
		}
	}
	if len(colors) < 16 {
		return fmt.Sprintf("image looks blank (%d colours)", len(colors))
	}
	return ""
}

// The tutorial notebook must show: the untrained grid, the training curves, the trained grid, the
// comparison curves and bars, and the table; the warm-start experiment's bars; then the committed GPU
// comparison's curves and bars.
var tutorialExpect = Expect{MinPNGs: 8, NeedTable: true}

// TestCommittedNotebook checks the outputs committed with the notebook (those of a real run).
func TestCommittedNotebook(t *testing.T) {
	data, err := os.ReadFile("learnable_resizer.ipynb")
	if err != nil {
		t.Fatal(err)
	}
	if problems := CheckExecuted(data, tutorialExpect); len(problems) > 0 {
		t.Errorf("committed notebook:\n%s", strings.Join(problems, "\n"))
	}
	sections := []string{"## Setup", "## Define hyperparameters", "## Load and prepare the dataset",
		"## Define the learnable resizer utilities", "## Visualize the outputs of the learnable resizing module",
		"## Model building utility", "## Compile and train our model with learnable resizer",
		"## Visualize the outputs of the trained visual resizer", "## With and without the learnable resizer", "## Beyond the tutorial: the authors' warm-start experiment", "## Notes",
		"## The tutorial's settings on a GPU: 3 seeds, beside PyTorch (committed results)"}
	last := -1
	for _, s := range sections {
		i := bytes.Index(data, []byte(s))
		if i < 0 || i < last {
			t.Errorf("section %q missing or out of the tutorial's order", s)
		}
		last = i
	}
}

// TestCheckerCatchesBrokenNotebook: the checker flags a panic, an os.Exit and a compile error that
// nbconvert let through (testdata/broken_executed.ipynb is testdata/broken.ipynb as nbconvert
// --allow-errors executed it; see TestExecuteNotebooks).
func TestCheckerCatchesBrokenNotebook(t *testing.T) {
	data, err := os.ReadFile("testdata/broken_executed.ipynb")
	if err != nil {
		t.Fatal(err)
	}
	problems := CheckExecuted(data, tutorialExpect)
	text := strings.Join(problems, "\n")
	for _, want := range []string{"panic", "exit status 3", "image/png outputs", "no comparison table"} {
		if !strings.Contains(text, want) {
			t.Errorf("checker missed %q; it found:\n%s", want, text)
		}
	}
}

// TestExecuteNotebooks runs the tutorial notebook headlessly with GoNB in its tiny configuration on the
// go backend, checks it, exports it to HTML and checks the figures there; it also runs the broken
// notebook and makes sure the check fails. It needs jupyter nbconvert and the gonb kernel: .ci/run
// installs them and sets LEARNRESIZE_NOTEBOOK_TEST=1 (without it the test is skipped).
func TestExecuteNotebooks(t *testing.T) {
	if os.Getenv("LEARNRESIZE_NOTEBOOK_TEST") == "" {
		t.Skip("set LEARNRESIZE_NOTEBOOK_TEST=1 (with jupyter nbconvert and the gonb kernel installed) to execute the notebooks")
	}
	for _, tool := range []string{"jupyter", "gonb", "goimports"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not on PATH: %v", tool, err)
		}
	}
	out := t.TempDir()
	dataPath := os.Getenv("LEARNRESIZE_DATA")
	if dataPath == "" {
		if abs, err := filepath.Abs("../../shared/data/petimages-dev"); err == nil {
			if _, err := os.Stat(abs); err == nil {
				dataPath = abs
			}
		}
	}
	if dataPath == "" {
		dataPath = filepath.Join(out, "images")
		if err := testimages.WriteFolder(dataPath, 300, 80, 60); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "LEARNRESIZE_TINY=1", "GOMLX_BACKEND=go", "LEARNRESIZE_DATA="+dataPath,
		"LEARNRESIZE_DATA_DIR="+filepath.Join(out, "data"))
	execute := func(src, dst string) {
		t.Helper()
		cmd := exec.Command("jupyter", "nbconvert", "--to", "notebook", "--execute", "--allow-errors",
			"--ExecutePreprocessor.timeout=1800", src, "--output", dst)
		cmd.Env = env
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("nbconvert %s: %v\n%s", src, err, b)
		}
	}
	executed := filepath.Join(out, "executed.ipynb")
	execute("learnable_resizer.ipynb", executed)
	t.Cleanup(func() { _ = os.RemoveAll("runs") })
	data, err := os.ReadFile(executed)
	if err != nil {
		t.Fatal(err)
	}
	if problems := CheckExecuted(data, tutorialExpect); len(problems) > 0 {
		t.Errorf("executed notebook:\n%s", strings.Join(problems, "\n"))
	}

	// The HTML export embeds the figures.
	htmlPath := filepath.Join(out, "executed.html")
	cmd := exec.Command("jupyter", "nbconvert", "--to", "html", executed, "--output", htmlPath)
	cmd.Env = env
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nbconvert --to html: %v\n%s", err, b)
	}
	html, err := os.ReadFile(htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := checkHTMLImages(t, html); n < tutorialExpect.MinPNGs {
		t.Errorf("HTML export embeds %d good PNG figures, want %d", n, tutorialExpect.MinPNGs)
	}

	broken := filepath.Join(out, "broken.ipynb")
	execute("testdata/broken.ipynb", broken)
	data, err = os.ReadFile(broken)
	if err != nil {
		t.Fatal(err)
	}
	if problems := CheckExecuted(data, tutorialExpect); len(problems) < 3 {
		t.Errorf("the broken notebook passed the check: %v", problems)
	}
}

var htmlPNG = regexp.MustCompile(`data:image/png;base64,([A-Za-z0-9+/=\s]+)`)

// checkHTMLImages counts the embedded PNG figures of an HTML export that decode and are not blank
// (images under 100x100, such as the template's icons, are not figures and are ignored).
func checkHTMLImages(t *testing.T, html []byte) int {
	t.Helper()
	good := 0
	for _, m := range htmlPNG.FindAllSubmatch(html, -1) {
		img, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(m[1])), ""))
		if err != nil {
			t.Errorf("embedded PNG: %v", err)
			continue
		}
		if cfg, err := png.DecodeConfig(bytes.NewReader(img)); err == nil && (cfg.Width < 100 || cfg.Height < 100) {
			continue
		}
		if msg := pngProblem(img); msg != "" {
			t.Errorf("embedded PNG: %s", msg)
			continue
		}
		good++
	}
	return good
}

// TestExportedHTML checks the committed HTML export (docs/learnable_resizer.html): it embeds the
// figures, names no path of the machine that ran it, and, where Chromium is installed, renders in a
// headless browser.
func TestExportedHTML(t *testing.T) {
	html, err := os.ReadFile("../docs/learnable_resizer.html")
	if err != nil {
		t.Fatal(err)
	}
	if m := absolutePath.Find(html); m != nil {
		t.Errorf("docs/learnable_resizer.html names a path of the machine that ran it: %q", bytes.TrimSpace(m))
	}
	if n := checkHTMLImages(t, html); n < tutorialExpect.MinPNGs {
		t.Errorf("docs/learnable_resizer.html embeds %d good PNG figures, want %d", n, tutorialExpect.MinPNGs)
	}
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed: headless rendering check skipped")
	}
	abs, _ := filepath.Abs("../docs/learnable_resizer.html")
	shot := filepath.Join(t.TempDir(), "page.png")
	cmd := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir="+t.TempDir(),
		"--window-size=1200,4000", "--screenshot="+shot, "file://"+abs)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, b)
	}
	data, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	if msg := pngProblem(data); msg != "" {
		t.Errorf("rendered page: %s", msg)
	}
}
