package training

import (
	"strings"
	"testing"
	"time"
)

// TestProgressLeavesCompilationOutOfETA: a first step that took a minute to compile must not make
// the bar promise a minute for every step to come (it said "ETA: 14:30" for a 25 s epoch).
func TestProgressLeavesCompilationOutOfETA(t *testing.T) {
	var log strings.Builder
	p := newProgress(&log, 10, false)
	p.start = time.Now().Add(-60 * time.Second)
	p.compiled(60*time.Second, 8)
	p.update(1, 8, 0.7, 0.5, true)
	p.start = p.start.Add(-2 * time.Second) // two more steps of a second each
	p.update(3, 24, 0.6, 0.6, true)
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("log %q, want 2 lines", log.String())
	}
	if !strings.Contains(lines[0], "compiling step: 1:00") || strings.Contains(lines[0], "ETA") {
		t.Errorf("after the compiling step: %q", lines[0])
	}
	// 7 steps left at 1 s: ETA 0:07, 1.00s/step, 16 images in 2 s.
	for _, want := range []string{"3/10 [", "ETA: 0:07", "1.00s/step", "8.0 img/s"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("after two more steps: %q lacks %q", lines[1], want)
		}
	}
}
