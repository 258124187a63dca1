package training

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"

	"github.com/learnresize/learnresize/internal/fileutil"
)

// EpochStats is one epoch of training, as Keras' History records it (plus timing).
type EpochStats struct {
	Epoch       int     `json:"epoch"` // 1-based
	Loss        float64 `json:"loss"`
	Accuracy    float64 `json:"accuracy"`
	ValLoss     float64 `json:"val_loss"`
	ValAccuracy float64 `json:"val_accuracy"`
	Seconds     float64 `json:"seconds"`      // training time of the epoch (without validation)
	ValSeconds  float64 `json:"val_seconds"`  // validation time
	ImagesPerS  float64 `json:"images_per_s"` // training throughput
	Steps       int     `json:"steps"`

	// Where the epoch's training time went, to check that the input pipeline keeps the device busy
	// (Seconds ≈ CompileSeconds + StepSeconds + DataWaitSeconds + host bookkeeping).
	StepSeconds     float64 `json:"step_seconds"`      // inside train steps that built no graph (dispatch, device, metrics read back)
	StepMedianMs    float64 `json:"step_median_ms"`    // median of those steps
	DataWaitSeconds float64 `json:"data_wait_seconds"` // waiting for the next batch (the pipeline starving the device)
	CompileSeconds  float64 `json:"compile_seconds"`   // steps that built and compiled a new graph, first run included
	CompileSteps    int     `json:"compile_steps"`     // how many steps did
	// Graphs built so far in this process for the train step and for validation (one per input
	// shape: the full batch and a smaller last batch). On backends that bake variables into inference
	// graphs (the pure-Go one) validation graphs are rebuilt every epoch by design.
	TrainGraphs int `json:"train_graphs"`
	ValGraphs   int `json:"val_graphs"`
}

// Overhead is the epoch's training time spent outside train steps (waiting for data, host
// bookkeeping, progress output), as a fraction of the time inside them, graph compilation excluded:
// 0.05 means the epoch took 5% longer than its steps. NaN if no step was timed.
func (e EpochStats) Overhead() float64 {
	if e.StepSeconds <= 0 {
		return math.NaN()
	}
	return (e.Seconds - e.CompileSeconds - e.StepSeconds) / e.StepSeconds
}

// History is the record of a training run.
type History struct {
	Config  Config       `json:"config"`
	Backend string       `json:"backend"`
	Params  int          `json:"params"`
	Epochs  []EpochStats `json:"epochs"`
}

// Last returns the last epoch's stats (zero value if none).
func (h *History) Last() EpochStats {
	if len(h.Epochs) == 0 {
		return EpochStats{}
	}
	return h.Epochs[len(h.Epochs)-1]
}

// BestValAccuracy returns the best validation accuracy over the epochs.
func (h *History) BestValAccuracy() float64 {
	best := 0.0
	for _, e := range h.Epochs {
		best = max(best, e.ValAccuracy)
	}
	return best
}

// Save writes history.json and history.csv into dir, atomically.
func (h *History) Save(dir string) error {
	js, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return err
	}
	if err := fileutil.WriteAtomic(filepath.Join(dir, "history.json"), js, 0o644); err != nil {
		return err
	}
	// history.csv has one column per EpochStats field, named and ordered as in history.json, so the
	// two cannot disagree.
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	t := reflect.TypeFor[EpochStats]()
	header := make([]string, t.NumField())
	for i := range header {
		header[i], _, _ = strings.Cut(t.Field(i).Tag.Get("json"), ",")
	}
	_ = w.Write(header)
	for _, e := range h.Epochs {
		v := reflect.ValueOf(e)
		row := make([]string, t.NumField())
		for i := range row {
			switch f := v.Field(i); f.Kind() {
			case reflect.Float64:
				row[i] = strconv.FormatFloat(f.Float(), 'g', 8, 64)
			default:
				row[i] = fmt.Sprint(f.Interface())
			}
		}
		_ = w.Write(row)
	}
	w.Flush()
	return fileutil.WriteAtomic(filepath.Join(dir, "history.csv"), buf.Bytes(), 0o644)
}

// LoadHistory reads history.json from dir.
func LoadHistory(dir string) (*History, error) {
	b, err := os.ReadFile(filepath.Join(dir, "history.json"))
	if err != nil {
		return nil, err
	}
	h := &History{}
	if err := json.Unmarshal(b, h); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "history.json"), err)
	}
	return h, nil
}
