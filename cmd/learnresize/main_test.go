package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/learnresize/learnresize/backend"
	"github.com/learnresize/learnresize/internal/testimages"
	"github.com/learnresize/learnresize/models"
	"github.com/learnresize/learnresize/resizer"
	"github.com/learnresize/learnresize/training"
)

func writeFolder(t *testing.T, root string, n int) {
	t.Helper()
	if err := testimages.WriteFolder(root, n, 44, 36); err != nil {
		t.Fatal(err)
	}
}

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

var tinyFlags = []string{"-inp", "40", "-target", "32", "-blocks", "2,2", "-growth", "4", "-filters", "4",
	"-batch", "8", "-train-split", "train[:75%]", "-val-split", "train[75%:]", "-lr", "0.05"}

// TestCompareEndToEnd runs the main job on a tiny synthetic image folder: both models train, losses
// fall, the files exist and parse, the table's parameter counts are the models' own, and a resumed
// run continues where it stopped.
func TestCompareEndToEnd(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "images")
	writeFolder(t, data, 16)
	out := filepath.Join(dir, "cmp")
	args := append([]string{"compare", "-data", data, "-data-dir", filepath.Join(dir, "cache"), "-out", out, "-epochs", "2"}, tinyFlags...)
	code, stdout, stderr := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("compare exited %d:\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "| Learnable resizer + DenseNet (blocks 2, 2) |") || !strings.Contains(stderr, "backend ") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	// The figures are listed once, on one line, as text (no Go slice brackets).
	wantFigures := "Figures: " + strings.Join([]string{filepath.Join(out, "curves.png"), filepath.Join(out, "curves.svg"),
		filepath.Join(out, "resizer_grid.png"), filepath.Join(out, "comparison.png")}, ", ") + "\n"
	if !strings.Contains(stdout, wantFigures) || strings.Count(stdout, "Figure") != 1 {
		t.Errorf("stdout does not list the figures once as %q:\n%s", wantFigures, stdout)
	}
	var cmp training.Comparison
	raw, err := os.ReadFile(filepath.Join(out, "comparison.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &cmp); err != nil {
		t.Fatal(err)
	}
	if cmp.Config.Model.Preset != "" || len(cmp.Config.Model.Blocks) != 2 {
		t.Errorf("comparison.json: preset %q, blocks %v; with -blocks 2,2 it must name no preset", cmp.Config.Model.Preset, cmp.Config.Model.Blocks)
	}
	for _, row := range cmp.Rows {
		mc := cmp.Config.Model
		mc.Resizer = row.Name == "resizer"
		s, err := models.Summary(mc, false)
		if err != nil {
			t.Fatal(err)
		}
		if row.Params != s.Total {
			t.Errorf("%s: table says %d parameters, the model has %d", row.Name, row.Params, s.Total)
		}
		h, err := training.LoadHistory(filepath.Join(out, row.Name+"-seed42"))
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Epochs) != 2 || h.Epochs[1].Loss >= h.Epochs[0].Loss {
			t.Errorf("%s: losses did not fall: %+v", row.Name, h.Epochs)
		}
		if _, err := os.Stat(filepath.Join(out, row.Name+"-seed42", "history.csv")); err != nil {
			t.Error(err)
		}
	}
	for _, f := range []string{"comparison.md", "comparison.png", "curves.png", "curves.svg", "resizer_grid.png"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() < 200 {
			t.Errorf("%s: %v", f, err)
		}
	}

	// Running again into the same directory without -resume overwrites nothing and says why.
	before, _ := os.ReadFile(filepath.Join(out, "resizer-seed42", "history.json"))
	code, _, stderr = runCLI(t, args...)
	after, _ := os.ReadFile(filepath.Join(out, "resizer-seed42", "history.json"))
	if code != 1 || !strings.Contains(stderr, "holds a finished comparison") || !strings.Contains(stderr, "comparison.md") ||
		!strings.Contains(stderr, "-resume and a larger -epochs") || !bytes.Equal(before, after) {
		t.Errorf("re-run without -resume: exit %d, stderr %q, history changed: %v", code, stderr, !bytes.Equal(before, after))
	}

	// The trained resizer applies to images.
	resized := filepath.Join(dir, "resized")
	code, stdout, stderr = runCLI(t, "resize", "-checkpoint", filepath.Join(out, "resizer-seed42"), "-out", resized, filepath.Join(data, "dark"))
	if code != 0 {
		t.Fatalf("resize exited %d:\n%s\n%s", code, stdout, stderr)
	}
	f, err := os.Open(filepath.Join(resized, "000_compare.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfgImg, err := png.DecodeConfig(f)
	if err != nil || cfgImg.Width < 3*200 || cfgImg.Height < 200 { // 40x40 panels, scaled up for their titles
		t.Errorf("side-by-side image %+v, %v; want three titled panels at least 200 pixels wide", cfgImg, err)
	}
	// The command's learned resize is the library's ResizeImage (both bring the image to the training
	// input size the checkpoint records first): the same pixels.
	m, err := resizer.Load(backendForTest(t), filepath.Join(out, "resizer-seed42"))
	if err != nil {
		t.Fatal(err)
	}
	if h, w := m.TrainingInput(); h != 40 || w != 40 {
		t.Errorf("TrainingInput = %dx%d, want the run's -inp 40", h, w)
	}
	in, want := readPNG(t, filepath.Join(data, "dark", "000.png")), readPNG(t, filepath.Join(resized, "000.png"))
	got, _, err := m.ResizeImage(in)
	if err != nil {
		t.Fatal(err)
	}
	if !sameRGB(got, want) {
		t.Error("resizer.Model.ResizeImage differs from learnresize resize on the same image")
	}
	if code, _, stderr = runCLI(t, "resize", "-checkpoint", filepath.Join(out, "resizer-seed42"), "-out", resized, filepath.Join(data, "dark", "000.png")); code != 1 || !strings.Contains(stderr, "exists") {
		t.Errorf("resize over existing outputs: exit %d, %s", code, stderr)
	}
}

func TestTrainResume(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "images")
	writeFolder(t, data, 8)
	out := filepath.Join(dir, "run")
	base := append([]string{"train", "-baseline", "-data", data, "-data-dir", filepath.Join(dir, "cache"), "-out", out}, tinyFlags...)
	if code, o, e := runCLI(t, append(base, "-epochs", "1")...); code != 0 {
		t.Fatalf("train: %d\n%s\n%s", code, o, e)
	}
	if _, err := os.Stat(filepath.Join(out, "curves.png")); err != nil {
		t.Error(err)
	}
	first, err := training.LoadHistory(out)
	if err != nil {
		t.Fatal(err)
	}
	code, o, e := runCLI(t, append(base, "-epochs", "2", "-resume")...)
	if code != 0 || !strings.Contains(e, "Resuming from") {
		t.Fatalf("resume: %d\n%s\n%s", code, o, e)
	}
	h, err := training.LoadHistory(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Epochs) != 2 || h.Epochs[0] != first.Epochs[0] || h.Epochs[1].Epoch != 2 {
		t.Errorf("after resume: %+v (first run %+v)", h.Epochs, first.Epochs)
	}
	// The finished run again without -resume: said to be finished, with its results and how to extend it.
	code, _, e = runCLI(t, append(base, "-epochs", "2")...)
	if code != 1 || !strings.Contains(e, "holds a finished run (2 epochs); results in "+out+": history.json, history.csv, curves.png") ||
		!strings.Contains(e, "-resume and -epochs above 2") {
		t.Errorf("re-run of a finished run: exit %d: %s", code, e)
	}
	// A baseline run has no resizer to apply: say so.
	img := filepath.Join(dir, "one.png")
	writePNG(t, img)
	if code, _, e := runCLI(t, "resize", "-checkpoint", out, "-out", filepath.Join(dir, "resized"), img); code != 1 ||
		!strings.Contains(e, "holds no learnable resizer (a run of the plain-resize baseline?)") {
		t.Errorf("resize with a baseline run: exit %d: %s", code, e)
	}
	// Resuming with another model is refused and changes nothing.
	code, _, e = runCLI(t, append(append([]string{}, base...), "-epochs", "3", "-resume", "-growth", "8")...)
	if code != 1 || !strings.Contains(e, "another configuration (model.Growth: 4 in the checkpoint, 8 now)") {
		t.Errorf("resume with another config: exit %d: %s", code, e)
	}
}

func TestBadCommandLines(t *testing.T) {
	data := filepath.Join(t.TempDir(), "images") // 8 images: splits that fit no example of it are bad flags too
	writeFolder(t, data, 4)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Usage"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"train", "-epochs", "zero"}, 2, "invalid value"},
		{[]string{"train", "-target", "16"}, 2, "below DenseNet's minimum"},
		{[]string{"train", "-interpolation", "lanczos"}, 2, "unknown interpolation"},
		{[]string{"compare", "-seeds", "0"}, 2, "-seeds"},
		{[]string{"train", "-data", "/nonexistent/images"}, 1, "leave -data out to download"},
		{[]string{"summary", "extra"}, 2, "unexpected arguments"},
		{[]string{"resize", "x.jpg"}, 2, "-checkpoint is required"},
		{[]string{"resize", "-checkpoint", "/nonexistent", "x.jpg"}, 1, "no such file"},
		{[]string{"resize", "-checkpoint", "/nonexistent", "-display", "/0", "x.jpg"}, 2, "-display"},
		{[]string{"train", "-h"}, 0, "Flags:"},
		{[]string{"export", "-out", "x"}, 2, "-split and -out are required"},
		{[]string{"export", "-split", "validation", "-out", "x"}, 2, "unknown split"},
		{[]string{"export", "-split", "train", "-out", "x", "-data", "/nonexistent/images"}, 1, "no such file"},
		{[]string{"train", "-device-prefetch", "-2"}, 2, "-device-prefetch -2: want 0 (the default)"},
		{[]string{"bench", "-peer", "/nonexistent/peer.txt"}, 1, "no such file"},
		{[]string{"bench", "-inp", "100000"}, 1, "choose a smaller -inp"},
		// Flags that were once accepted and then trained on something else, or failed late.
		{[]string{"train", "-lr", "NaN"}, 2, "learning rate NaN must be a positive number"},
		{[]string{"train", "-growth", "-3"}, 2, "growth rate -3"},
		{[]string{"train", "-preset", "densenet169", "-blocks", "2,2"}, 2, "and -blocks both choose"},
		{[]string{"train", "-backbone", "resnet50", "-growth", "8"}, 2, "DenseNet settings"},
		{[]string{"train", "-backbone", "vgg16"}, 2, "unknown backbone preset"},
		{[]string{"train", "-train-split", "train[:10%]", "-val-split", "train[:10%]"}, 2, "splits are the same"},
		{[]string{"train", "-train-split", "train[:50%"}, 2, "-train-split: split \"train[:50%\": cannot parse"},
		// Splits that select nothing whatever the data, refused before the data is opened (these have no
		// -data: reaching the data would download cats_vs_dogs).
		{[]string{"train", "-train-split", "train[90%:10%]"}, 2, "-train-split \"train[90%:10%]\" selects no examples"},
		{[]string{"compare", "-val-split", "train[5:5]"}, 2, "-val-split \"train[5:5]\" selects no examples"},
		{[]string{"warmstart", "-val-split", "train[:-100%]"}, 2, "-val-split \"train[:-100%]\" selects no examples"},
		{[]string{"bench", "-train-split", "train[100%:]"}, 2, "-train-split \"train[100%:]\" selects no examples"},
		{[]string{"train", "-val-split", "validation"}, 2, "-val-split: split \"validation\": unknown split"},
		{[]string{"compare", "-val-split", ""}, 2, "-val-split: empty split expression"},
		{[]string{"export", "-split", "train[-5:-10]", "-out", "x"}, 2, "-split \"train[-5:-10]\" selects no examples"},
		{[]string{"export", "-split", "train[:40", "-out", "x"}, 2, "-split: split \"train[:40\": cannot parse"},
		// Splits that select none of the data's examples, or overlap in it: refused once the source is
		// listed, before any image is decoded.
		{[]string{"train", "-data", data, "-val-split", "train[100:]"}, 2, "-val-split \"train[100:]\" selects none of the 8 examples"},
		// A training step that cannot fit in any machine's memory is refused once the data is
		// checked, before anything compiles, with the estimate and the way out.
		{[]string{"train", "-data", data, "-train-split", "train[:4]", "-val-split", "train[4:]", "-inp", "6000", "-target", "3000"}, 1,
			"-memory-check=false runs it anyway"},
		{[]string{"compare", "-small", "-data", data}, 2, "-val-split \"train[320:480]\" selects none of the 8 examples"},
		{[]string{"warmstart", "-data", data, "-train-split", "train[:-9]"}, 2, "-train-split \"train[:-9]\" selects none of the 8 examples"},
		{[]string{"train", "-data", data, "-train-split", "train[:50%]", "-val-split", "train[25%:]"}, 2,
			"-train-split \"train[:50%]\" and -val-split \"train[25%:]\" share 2 of the 8 examples"},
		{[]string{"export", "-data", data, "-split", "train[8:]", "-out", "x"}, 2, "-split \"train[8:]\" selects none of the 8 examples"},
		{[]string{"compare", "-seeds", "1,1"}, 2, "listed twice"},
		{[]string{"train", "-resume-from", "epoch-0001"}, 2, "-resume-from needs -resume"},
		{[]string{"train", "-normalize", "cifar"}, 2, "-normalize \"cifar\""},
		{[]string{"train", "-pretrained", "/nonexistent/densenet121.pth"}, 2, "-pretrained"},
		{[]string{"warmstart", "-inp", "150", "-target", "150"}, 2, "must be smaller than -inp"},
		{[]string{"warmstart", "-finetune-epochs", "-1"}, 2, "-finetune-epochs -1"},
	}
	for _, c := range cases {
		code, _, stderr := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("learnresize %q: exit %d, stderr %q; want exit %d mentioning %q", c.args, code, stderr, c.code, c.want)
		}
		if len(c.args) > 0 && strings.Contains(stderr, "learnresize "+c.args[0]+": "+c.args[0]+": ") {
			t.Errorf("learnresize %q: the command's name said twice: %q", c.args, stderr)
		}
	}
}

func TestBenchCommand(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "images")
	writeFolder(t, data, 8)
	out := filepath.Join(dir, "bench.json")
	// A PyTorch peer's output at the same batch size (hand-written numbers): the comparison table and
	// the goal's verdict are printed and stored.
	peer := filepath.Join(dir, "peer.txt")
	if err := os.WriteFile(peer, []byte("2.11.0 0.26.0 CPU\n"+
		`{"mode": "fp32-cl", "batch": 8, "resizer": true, "ms_per_step": 1.0, "img_per_s": 8000.0}`+"\n"+
		`{"mode": "fp32-cl", "batch": 8, "resizer": false, "ms_per_step": 0.01, "img_per_s": 800.0}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, append([]string{"bench", "-duration", "100ms", "-warmups", "0", "-json", out,
		"-peer", peer, "-data", data, "-data-dir", filepath.Join(dir, "cache")}, tinyFlags[:len(tinyFlags)-2]...)...) // not -lr: bench has no learning rate
	if code != 0 {
		t.Fatalf("bench exited %d:\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "| fp32-cl | 8000 img/s (1.0 ms) |") || !strings.Contains(stdout, "| fp32-cl | 800 img/s (0.0 ms) |") ||
		!strings.Contains(stdout, "MISSED") {
		t.Errorf("peer comparison missing:\n%s", stdout)
	}
	var rep struct {
		Backend        string
		PeerComparison []struct{ GoalMet bool } `json:"peer_comparison"`
		Versions       map[string]string
		Results        []struct {
			Name       string
			Runs       int
			MeanMs     float64 `json:"mean_ms"`
			ImagesPerS float64 `json:"images_per_s"`
		}
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	want := benchRows(rep.Backend)
	if len(rep.Results) != want || rep.Versions["github.com/gomlx/gomlx"] == "" || !strings.Contains(rep.Backend, "backend") ||
		len(rep.PeerComparison) != 2 {
		t.Fatalf("report: %+v", rep)
	}
	for _, r := range rep.Results {
		if r.Runs < 1 || r.MeanMs <= 0 {
			t.Errorf("%s: %d runs, mean %v ms", r.Name, r.Runs, r.MeanMs)
		}
	}
	if last := rep.Results[want-1]; last.Name != "input pipeline from cache" || last.ImagesPerS <= 0 {
		t.Errorf("pipeline result %+v", last)
	}
}

// TestExportSplits writes the training and validation splits as folders: together they hold every
// image once, with the sizes the training pipeline reports, and a second export never overwrites.
func TestExportSplits(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "images")
	writeFolder(t, data, 20)
	total := 0
	for i, split := range []string{"train[:75%]", "train[75%:]"} {
		out := filepath.Join(dir, "export", []string{"train", "val"}[i])
		code, stdout, stderr := runCLI(t, "export", "-data", data, "-split", split, "-out", out)
		if code != 0 || !strings.Contains(stdout, "wrote ") {
			t.Fatalf("export %s: exit %d\n%s\n%s", split, code, stdout, stderr)
		}
		n := 0
		_ = filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				n++
			}
			return err
		})
		if want := map[string]int{"train[:75%]": 30, "train[75%:]": 10}[split]; n != want {
			t.Errorf("%s: %d files, want %d", split, n, want)
		}
		total += n
		if code, _, stderr := runCLI(t, "export", "-data", data, "-split", split, "-out", out); code != 1 || !strings.Contains(stderr, "already exists") {
			t.Errorf("second export: exit %d, %s", code, stderr)
		}
	}
	if total != 40 { // 20 per class
		t.Errorf("exported %d images in all, want 40", total)
	}
}

// benchRows is how many results learnresize bench with -data reports on the backend its report line
// names: graph.Interpolate's row only runs where its gradient does (not on ONNX Runtime).
func benchRows(backendLine string) int {
	if strings.HasPrefix(backendLine, "backend onnx") {
		return 7
	}
	return 8
}

// TestSkipReportEveryRun: files skipped while listing (empty) and while decoding (corrupt) are
// counted on every run, the one that builds the cache and the ones that reuse it, and -skipped
// writes the list.
func TestSkipReportEveryRun(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "images")
	writeFolder(t, data, 8)
	if err := os.WriteFile(filepath.Join(data, "bright", "empty.png"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "dark", "broken.png"), []byte("\x89PNG\r\n\x1a\nnot really"), 0o644); err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(dir, "skipped.tsv")
	args := append([]string{"train", "-baseline", "-data", data, "-data-dir", filepath.Join(dir, "cache"), "-epochs", "1",
		"-skipped", list}, tinyFlags...)
	var lines []string
	for i := range 2 {
		code, o, e := runCLI(t, append(args, "-out", filepath.Join(dir, fmt.Sprintf("run%d", i)))...)
		if code != 0 {
			t.Fatalf("train: %d\n%s\n%s", code, o, e)
		}
		for _, l := range strings.Split(e, "\n") {
			if strings.HasPrefix(l, "skipped:") {
				lines = append(lines, l)
			}
		}
	}
	if len(lines) != 2 || lines[0] != lines[1] || !strings.HasPrefix(lines[0], "skipped: 2 files (corrupt=1 empty=1)") {
		t.Errorf("skip lines of the two runs: %q", lines)
	}
	raw, err := os.ReadFile(list)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"file\treason\tdetail\n", "bright/empty.png\tempty", "dark/broken.png\tcorrupt"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("%s lacks %q:\n%s", list, want, raw)
		}
	}
}

// TestEveryCommandListed: the usage lists every command once, in commandOrder.
func TestEveryCommandListed(t *testing.T) {
	if len(commandOrder) != len(commands) {
		t.Fatalf("commandOrder has %d names, commands %d", len(commandOrder), len(commands))
	}
	_, _, e := runCLI(t, "help")
	for _, n := range commandOrder {
		if _, ok := commands[n]; !ok || strings.Count(e, "\n  "+n+" ") != 1 {
			t.Errorf("command %q: in the table %v, in the usage:\n%s", n, ok, e)
		}
	}
}

func writePNG(t *testing.T, path string) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 20, 16))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

// TestEachCommandShowsItsOwnFlags: a command's help lists the flags that change what it does, and
// no others.
func TestEachCommandShowsItsOwnFlags(t *testing.T) {
	for _, c := range []struct {
		cmd           string
		want, notWant []string
	}{
		{"train", []string{"-baseline", "-batch", "-epochs", "-lr", "-seed", "-train-split", "-device-prefetch", "-resume-from",
			"-bf16", "-recompute", "-grad-checkpoint", "-normalize"}, nil},
		{"compare", []string{"-seeds", "-epochs", "-device-prefetch", "-bf16"}, []string{"-baseline"}},
		{"warmstart", []string{"-pretrained", "-finetune-epochs", "-seeds", "-inp", "-target", "-bf16"}, []string{"-baseline"}},
		{"summary", []string{"-baseline", "-inp", "-preset", "-blocks", "-growth", "-expand", "-small"}, []string{"-batch", "-epochs", "-lr",
			"-seed", "-train-split", "-data", "-pretrained", "-bf16", "-recompute", "-grad-checkpoint", "-normalize"}},
		{"export", []string{"-split", "-data"}, []string{"-device-prefetch", "-batch", "-inp"}},
		{"bench", []string{"-batch", "-inp", "-data", "-only", "-bf16", "-peer"}, []string{"-epochs", "-lr", "-baseline"}},
	} {
		code, _, help := runCLI(t, c.cmd, "-h")
		if code != 0 {
			t.Fatalf("%s -h: exit %d", c.cmd, code)
		}
		for _, f := range c.want {
			if !strings.Contains(help, "\n  "+f+" ") && !strings.Contains(help, "\n  "+f+"\n") {
				t.Errorf("%s -h lacks %s", c.cmd, f)
			}
		}
		for _, f := range c.notWant {
			if strings.Contains(help, "\n  "+f+" ") || strings.Contains(help, "\n  "+f+"\n") {
				t.Errorf("%s -h lists %s, which does nothing there", c.cmd, f)
			}
		}
	}
}

// TestHelpSpeaksToUsers: no command's help points at files outside the repository or at the
// project's internal goals, -pretrained names every backbone family it loads, and summary, which
// builds on the pure-Go backend whatever the machine has, prints no backend line.
func TestHelpSpeaksToUsers(t *testing.T) {
	for _, n := range commandOrder {
		code, _, help := runCLI(t, n, "-h")
		if code != 0 {
			t.Fatalf("%s -h: exit %d", n, code)
		}
		for _, bad := range []string{"../", "shared/", "goal", "torchvision DenseNet's weights"} {
			if strings.Contains(help, bad) {
				t.Errorf("%s -h mentions %q:\n%s", n, bad, help)
			}
		}
		if strings.Contains(help, "\n  -pretrained ") && (!strings.Contains(help, "DenseNet") || !strings.Contains(help, "ResNet")) {
			t.Errorf("%s -h: -pretrained does not name both backbone families:\n%s", n, help)
		}
	}
	code, stdout, stderr := runCLI(t, "summary", "-small")
	if code != 0 || !strings.Contains(stdout, "Total params") || strings.Contains(stderr, "backend") {
		t.Errorf("summary -small: exit %d, stderr %q\n%s", code, stderr, stdout)
	}
}

func backendForTest(t *testing.T) compute.Backend {
	t.Helper()
	b, _, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// sameRGB reports whether two images have the same size and 8-bit RGB values.
func sameRGB(a, b image.Image) bool {
	if a.Bounds().Size() != b.Bounds().Size() {
		return false
	}
	for y := range a.Bounds().Dy() {
		for x := range a.Bounds().Dx() {
			r1, g1, b1, _ := a.At(a.Bounds().Min.X+x, a.Bounds().Min.Y+y).RGBA()
			r2, g2, b2, _ := b.At(b.Bounds().Min.X+x, b.Bounds().Min.Y+y).RGBA()
			if r1>>8 != r2>>8 || g1>>8 != g2>>8 || b1>>8 != b2>>8 {
				return false
			}
		}
	}
	return true
}

// TestSmallFlag: -small starts from training.Small(), and the other flags still change it.
func TestSmallFlag(t *testing.T) {
	resolve := func(args ...string) training.Config {
		t.Helper()
		fs := newFlagSet("train", io.Discard, "")
		cf := addConfigFlags(fs, modelFlags|baselineFlag|batchFlag|trainingFlags|splitFlags)
		if wantsSmall(args) {
			cf.useSmall()
		}
		if err := parse(fs, args); err != nil {
			t.Fatal(err)
		}
		cfg, err := cf.resolve()
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	want := training.Small()
	want.Model.Resizer = true
	if got := resolve("-small"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("-small: %+v, want %+v", got, want)
	}
	got := resolve("-epochs", "3", "-small", "-inp", "48")
	if got.Epochs != 3 || got.Model.InputHeight != 48 || got.Model.TargetHeight != 32 || fmt.Sprint(got.Model.Blocks) != "[2 2]" {
		t.Errorf("-small with -epochs 3 -inp 48: %+v", got)
	}
	if got := resolve(); got.Model.InputHeight != 300 || got.Model.Preset != "densenet121" {
		t.Errorf("no -small: %+v", got.Model)
	}
}

// TestWarmStartEndToEnd: the warm-start command trains its three runs, prints the four-row table and
// writes the figures, on a tiny DenseNet.
func TestWarmStartEndToEnd(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "images")
	writeFolder(t, data, 16)
	out := filepath.Join(dir, "ws")
	args := append([]string{"warmstart", "-data", data, "-data-dir", filepath.Join(dir, "cache"), "-out", out, "-epochs", "1",
		"-finetune-epochs", "2"}, tinyFlags...)
	code, stdout, stderr := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("warmstart exited %d:\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"fine-tuned at", "no training", "warm-started |", "Learnable resizer"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}
	for _, f := range []string{"comparison.json", "comparison.png", "curves.png", "resizer_grid.png", "finetune-seed42/history.json",
		"baseline-seed42/history.json", "resizer-seed42/history.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
}

// TestBackboneFlag: -backbone resnet50 selects the paper's second backbone, with -small too (whose
// tiny DenseNet's blocks must then not apply); -preset is its older name.
func TestBackboneFlag(t *testing.T) {
	for _, args := range [][]string{{"summary", "-backbone", "resnet50"}, {"summary", "-small", "-backbone", "resnet50"}, {"summary", "-preset", "resnet50", "-baseline"}} {
		code, stdout, stderr := runCLI(t, args...)
		if code != 0 || !strings.Contains(stdout, "resnet50 (Functional)") {
			t.Errorf("learnresize %q: exit %d\n%s\n%s", args, code, stdout, stderr)
		}
	}
}
