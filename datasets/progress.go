package datasets

import (
	"fmt"
	"io"
	"time"
)

// progress prints periodic one-line reports of a long transfer or preprocessing run: done/total,
// rate and ETA. Lines end in "\n" rather than "\r" so that they read well in logs and notebooks.
type progress struct {
	w        io.Writer
	label    string
	unit     string // "bytes" or "images".
	total    int64  // 0: unknown.
	start    int64  // count at the start (a resumed download starts above zero).
	began    time.Time
	last     time.Time
	interval time.Duration
}

func newProgress(w io.Writer, label string, total, start int64, interval time.Duration) *progress {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	now := time.Now()
	return &progress{w: w, label: label, unit: "bytes", total: total, start: start, began: now, last: now, interval: interval}
}

func (p *progress) update(done int64) {
	if p == nil || p.w == nil {
		return
	}
	now := time.Now()
	if now.Sub(p.last) < p.interval {
		return
	}
	p.last = now
	p.print(done, now, false)
}

func (p *progress) finish(done int64) {
	if p == nil || p.w == nil {
		return
	}
	p.print(done, time.Now(), true)
}

func (p *progress) print(done int64, now time.Time, final bool) {
	elapsed := now.Sub(p.began).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(done-p.start) / elapsed
	}
	count := func(v int64) string { return fmt.Sprint(v) }
	rateStr := fmt.Sprintf("%.1f images/s", rate)
	if p.unit == "bytes" {
		count = formatBytes
		rateStr = formatBytes(int64(rate)) + "/s"
	}
	line := p.label + ": " + count(done)
	if p.total > 0 {
		line += fmt.Sprintf(" / %s (%.1f%%)", count(p.total), 100*float64(done)/float64(p.total))
	}
	line += ", " + rateStr
	switch {
	case final:
		line += fmt.Sprintf(", done in %s", now.Sub(p.began).Round(time.Millisecond))
	case p.total > 0 && rate > 0:
		eta := time.Duration(float64(p.total-done) / rate * float64(time.Second))
		line += ", ETA " + eta.Round(time.Second).String()
	}
	_, _ = fmt.Fprintln(p.w, line)
}

// formatBytes writes a byte count with binary units (MiB, as TFDS reports sizes).
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.2f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
