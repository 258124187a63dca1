package training

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// progress draws a Keras-like progress line on a terminal-ish writer:
//
//	Epoch 1/5
//	 37/146 [======>.......................] - ETA: 1:02 - 0.57s/step - 112 img/s - loss: 0.6931 - accuracy: 0.5101
//
// and closes each epoch with the tutorial log's line:
//
//	146/146 - 83s 568ms/step - accuracy: 0.5738 - loss: 0.6842 - val_accuracy: 0.5882 - val_loss: 0.6770
type progress struct {
	w          io.Writer
	total      int // steps per epoch, 0 if unknown
	start      time.Time
	lastDraw   time.Time
	interval   time.Duration
	terminalCR bool // redraw with \r (else print a line every interval)
	// The steps that compiled a graph, their time and images: left out of the rate and the ETA,
	// which would otherwise count a minute of compilation as the time of every step to come.
	compileSteps, compileImages int
	compileTime                 time.Duration
}

func newProgress(w io.Writer, total int, interactive bool) *progress {
	iv := 10 * time.Second
	if interactive {
		iv = 200 * time.Millisecond
	}
	return &progress{w: w, total: total, start: time.Now(), interval: iv, terminalCR: interactive}
}

func (p *progress) update(step, images int, loss, acc float64, force bool) {
	if p.w == nil {
		return
	}
	now := time.Now()
	if !force && now.Sub(p.lastDraw) < p.interval {
		return
	}
	p.lastDraw = now
	el := now.Sub(p.start) - p.compileTime
	steps, imgs := step-p.compileSteps, images-p.compileImages
	var b strings.Builder
	if p.total > 0 {
		const width = 30
		done := min(width, width*step/p.total)
		bar := strings.Repeat("=", done)
		if done < width {
			bar += ">" + strings.Repeat(".", width-done-1)
		}
		fmt.Fprintf(&b, "%*d/%d [%s]", len(fmt.Sprint(p.total)), step, p.total, bar)
	} else {
		fmt.Fprintf(&b, "%d steps - %s", step, clock(now.Sub(p.start)))
	}
	if steps <= 0 || el <= 0 { // only compiling steps so far: no rate to extrapolate
		fmt.Fprintf(&b, " - compiling step: %s", clock(p.compileTime))
	} else {
		perStep := el / time.Duration(steps)
		if p.total > 0 {
			fmt.Fprintf(&b, " - ETA: %s", clock(perStep*time.Duration(max(p.total-step, 0))))
		}
		fmt.Fprintf(&b, " - %s/step - %s img/s", stepTime(perStep), rate(float64(imgs)/el.Seconds()))
	}
	fmt.Fprintf(&b, " - loss: %.4f - accuracy: %.4f", loss, acc)
	if p.terminalCR {
		fmt.Fprintf(p.w, "\r%s", b.String())
	} else {
		fmt.Fprintln(p.w, b.String())
	}
}

// compiled counts a step that compiled a graph (d long, of images images) out of the rate.
func (p *progress) compiled(d time.Duration, images int) {
	p.compileSteps++
	p.compileImages += images
	p.compileTime += d
}

// note prints a line of its own between the bar's updates (the bar is drawn again at the next).
func (p *progress) note(format string, args ...any) {
	if p.w == nil {
		return
	}
	if p.terminalCR {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintf(p.w, format+"\n", args...)
	p.lastDraw = time.Time{}
}

// done prints the epoch's final line.
func (p *progress) done(e EpochStats) {
	if p.w == nil {
		return
	}
	if p.terminalCR {
		fmt.Fprint(p.w, "\r\033[K")
	}
	perStep := time.Duration(e.Seconds / float64(max(e.Steps, 1)) * float64(time.Second))
	fmt.Fprintf(p.w, "%d/%d - %.0fs %s/step - %s img/s - accuracy: %.4f - loss: %.4f - val_accuracy: %.4f - val_loss: %.4f\n",
		e.Steps, e.Steps, e.Seconds, stepTime(perStep), rate(e.ImagesPerS), e.Accuracy, e.Loss, e.ValAccuracy, e.ValLoss)
	line := fmt.Sprintf("    time %.1fs: %d steps %.1fs (median %s)", e.Seconds, e.Steps-e.CompileSteps, e.StepSeconds,
		stepTime(time.Duration(e.StepMedianMs*float64(time.Millisecond))))
	if e.CompileSteps > 0 {
		line += fmt.Sprintf(", %d compiling %.1fs", e.CompileSteps, e.CompileSeconds)
	}
	if o := e.Overhead(); !math.IsNaN(o) {
		line += fmt.Sprintf(", outside steps %+.1f%%", 100*o)
	}
	fmt.Fprintf(p.w, "%s (data wait %.2fs); graphs built: %d train, %d validation\n", line, e.DataWaitSeconds, e.TrainGraphs, e.ValGraphs)
}

func clock(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

func stepTime(d time.Duration) string {
	if d >= time.Second {
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return fmt.Sprintf("%dms", d.Milliseconds())
}

// rate formats images per second with the digits a slow step still needs ("0.12", "2.5", "112").
func rate(v float64) string {
	switch {
	case v < 1:
		return fmt.Sprintf("%.2f", v)
	case v < 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}
