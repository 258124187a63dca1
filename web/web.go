// Package web is the learnable resizer in a web page: a static page (index.html, app.mjs) that runs
// a trained run's ONNX exports in the browser with onnxruntime-web, and the HTTP handler that
// serves it with those exports (learnresize serve). Nothing is sent anywhere: the page computes
// the plain bilinear resize, the learned resize and the classifier's probabilities itself.
//
// onnxruntime-web is an npm package, pinned in package.json (npm ci in this folder installs it);
// the handler serves its dist folder under /ort/, so the page needs no CDN.
package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend"

	"github.com/learnresize/learnresize/onnxexport"
	"github.com/learnresize/learnresize/resizer"
	"github.com/learnresize/learnresize/training"
)

//go:embed index.html app.mjs
var page embed.FS

// DefaultORTDir is where npm ci in this folder puts onnxruntime-web's files, from the repository root.
const DefaultORTDir = "web/node_modules/onnxruntime-web/dist"

// Config is /config.json: what the page needs to know of the run.
type Config struct {
	Run          string   `json:"run"`
	Title        string   `json:"title"`
	InputHeight  int      `json:"inputHeight"`
	InputWidth   int      `json:"inputWidth"`
	TargetHeight int      `json:"targetHeight"`
	TargetWidth  int      `json:"targetWidth"`
	Resizer      bool     `json:"resizer"`
	Classes      []string `json:"classes"`
}

// Handler serves the page for the training run in run: /, /app.mjs, /config.json, /model.onnx,
// /resizer.onnx (with the learnable resizer), /bilinear.onnx, exported once here, and
// onnxruntime-web's files from ortDir under /ort/.
func Handler(run, ortDir string) (http.Handler, Config, error) {
	if _, err := os.Stat(filepath.Join(ortDir, "ort.wasm.min.mjs")); err != nil {
		return nil, Config{}, fmt.Errorf("web: onnxruntime-web not found in %s (run npm ci in web/, or give its dist folder): %w", ortDir, err)
	}
	store, cfg, err := training.LoadRun(run)
	if err != nil {
		return nil, Config{}, err
	}
	m := cfg.Model
	files := map[string][]byte{}
	if files["/model.onnx"], err = onnxexport.Classifier(store, m); err != nil {
		return nil, Config{}, err
	}
	if files["/bilinear.onnx"], err = onnxexport.Bilinear(m.TargetHeight, m.TargetWidth); err != nil {
		return nil, Config{}, err
	}
	if m.Resizer {
		b, err := compute.NewWithConfig("go")
		if err != nil {
			return nil, Config{}, err
		}
		rz, err := resizer.Load(b, run)
		if err != nil {
			return nil, Config{}, err
		}
		if files["/resizer.onnx"], err = onnxexport.Resizer(rz); err != nil {
			return nil, Config{}, err
		}
	}
	classes := []string{"cat", "dog"} // the tutorial's cats_vs_dogs, in its label order
	if m.Classes != 2 {
		classes = nil
		for i := range m.Classes {
			classes = append(classes, fmt.Sprintf("class%d", i))
		}
	}
	pc := Config{Run: filepath.Base(filepath.Clean(run)), Title: m.Title(), InputHeight: m.InputHeight, InputWidth: m.InputWidth,
		TargetHeight: m.TargetHeight, TargetWidth: m.TargetWidth, Resizer: m.Resizer, Classes: classes}
	cj, err := json.Marshal(pc)
	if err != nil {
		return nil, Config{}, err
	}
	files["/config.json"] = cj
	mux := http.NewServeMux()
	mux.Handle("/ort/", http.StripPrefix("/ort/", http.FileServer(http.Dir(ortDir))))
	static := http.FileServer(http.FS(page))
	mux.HandleFunc("/favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if b, ok := files[r.URL.Path]; ok {
			http.ServeContent(w, r, r.URL.Path, time.Time{}, bytes.NewReader(b))
			return
		}
		if r.URL.Path != "/" && r.URL.Path != "/index.html" && r.URL.Path != "/app.mjs" {
			http.NotFound(w, r)
			return
		}
		static.ServeHTTP(w, r)
	})
	return mux, pc, nil
}
