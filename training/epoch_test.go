package training

import (
	"context"
	"strings"
	"testing"
)

// TestFitRefusesOtherBatchSize: data whose batches disagree with Config.BatchSize (larger, or
// smaller before the epoch's last) are refused, naming both sizes and the remedy, and nothing is
// checkpointed; one smaller batch that is the epoch's only one trains.
func TestFitRefusesOtherBatchSize(t *testing.T) {
	b := testBackend(t)
	cfg := tinyConfig() // batch 8
	cfg.Epochs = 1
	for _, c := range []struct {
		dataBatch int
		want      []string
	}{
		{16, []string{"training data's batch at step 1 of epoch 1 holds 16 examples, but Config.BatchSize is 8", "-batch"}},
		{4, []string{"batch, not the epoch's last, at step 1 of epoch 1 holds 4 examples, but Config.BatchSize is 8",
			"only an epoch's last batch may be smaller"}},
	} {
		dir := t.TempDir()
		data := Data{Train: newMemData(36, 40, c.dataBatch, 1), Val: newMemData(16, 40, 8, 2), NumTrain: 36}
		_, err := Fit(context.Background(), b, cfg, data, Options{Dir: dir, SkipMemoryCheck: true})
		if err == nil {
			t.Errorf("data in batches of %d, Config.BatchSize 8: trained", c.dataBatch)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("data in batches of %d: %q lacks %q", c.dataBatch, err, w)
			}
		}
		if latest, _ := LatestCheckpoint(dir); latest != "" {
			t.Errorf("data in batches of %d: refused, yet checkpoint %s was written", c.dataBatch, latest)
		}
	}
	// Fewer examples than a batch: the epoch's only batch is smaller, as OpenData makes it.
	small := Data{Train: newMemData(6, 40, 8, 1), Val: newMemData(4, 40, 8, 2), NumTrain: 6}
	if h, err := Fit(context.Background(), b, cfg, small, Options{Dir: t.TempDir(), SkipMemoryCheck: true}); err != nil || h.Last().Steps != 1 {
		t.Errorf("one batch of 6 with Config.BatchSize 8: %v", err)
	}
}
