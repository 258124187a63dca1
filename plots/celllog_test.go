package plots

import (
	"os"
	"testing"
)

// TestScreenTextRedrawsTheBar: what training's bar writes on a terminal (redraws after "\r", the
// epoch's line after "\r\033[K") shows as the finished lines plus the bar's latest state.
func TestScreenTextRedrawsTheBar(t *testing.T) {
	var s screenText
	for _, w := range []string{
		"Epoch 1/2\n",
		"\r 1/20 [=>....] - compiling step: 0:06 - loss: 0.9000",
		"\r 9/20 [===>..] - ETA: 0:01",
		"\r\033[K", "20/20 - 2s 100ms/step - val_accuracy: 0.5000\n",
		"Epoch 2/2\r\n",
		"\r 3/20 [>.....] - ETA: 0:02",
	} {
		s.Write([]byte(w))
	}
	want := "Epoch 1/2\n20/20 - 2s 100ms/step - val_accuracy: 0.5000\nEpoch 2/2\n 3/20 [>.....] - ETA: 0:02"
	if got := s.String(); got != want {
		t.Errorf("shown:\n%q\nwant:\n%q", got, want)
	}
}

// TestCellLogOutsideANotebook: outside GoNB the log is the process's standard output.
func TestCellLogOutsideANotebook(t *testing.T) {
	if w := CellLog(); w != os.Stdout {
		t.Errorf("CellLog() outside a notebook = %T, want os.Stdout", w)
	}
}
