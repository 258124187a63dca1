package bench

import (
	"math"
	"os"
	"strings"
	"testing"
)

func TestComparePeer(t *testing.T) {
	f, err := os.Open("testdata/torch_resizer_h100.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	peer, err := ParsePeer(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(peer.Results) != 4 || !strings.Contains(peer.Header, "H100") {
		t.Fatalf("parsed %+v", peer)
	}
	rep := &Report{Config: Config{Batch: 64}, Results: []Result{
		{Name: "train step, resizer", Kind: KindTrainResizer, Runs: 10, MeanMs: 40, ImagesPerIt: 64, ImagesPerS: 1600},
		{Name: "train step, baseline", Kind: KindTrainBaseline, Runs: 10, MeanMs: 30, ImagesPerIt: 64, ImagesPerS: 2133},
		{Name: "eval step", Kind: KindEval, Runs: 10, MeanMs: 10, ImagesPerIt: 64, ImagesPerS: 6400},
	}}
	cs, err := rep.ComparePeer(peer)
	if err != nil {
		t.Fatal(err)
	}
	// Only the resizer model has peer lines in this file; the goal is 1.25 x fp32-cl (the faster of
	// the two eager modes), not torch.compile or NCHW fp32.
	if len(cs) != 1 || !cs[0].Resizer || cs[0].GoalAgainst != "fp32-cl" || math.Abs(cs[0].GoalImgPS-1.25*1091) > 1e-9 ||
		!cs[0].GoalMet || math.Abs(cs[0].Ratios["fp32"]-1600.0/925) > 1e-12 {
		t.Errorf("comparison: %+v", cs)
	}
	md := PeerMarkdown(peer.Header, cs)
	if !strings.Contains(md, "| train step, resizer | 1600 img/s (40.0 ms, float32) | fp32-cl | 1091 img/s (58.7 ms) | 1.47x |") ||
		!strings.Contains(md, ": met.") {
		t.Errorf("markdown:\n%s", md)
	}
	// Just below the goal is a miss, and says so.
	rep.Results[0].ImagesPerS = 1.25*1091 - 1
	cs, _ = rep.ComparePeer(peer)
	if cs[0].GoalMet || !strings.Contains(PeerMarkdown("", cs), "MISSED") {
		t.Errorf("below the goal: %+v", cs)
	}
	// Another batch size has nothing to compare with.
	rep.Config.Batch, rep.Results[0].ImagesPerIt, rep.Results[1].ImagesPerIt = 32, 32, 32
	if _, err := rep.ComparePeer(peer); err == nil {
		t.Error("mismatched batch sizes compared")
	}
}

func TestParsePeerErrors(t *testing.T) {
	for _, in := range []string{
		"",
		"2.11 0.26 H100\n",
		`{"mode": "fp32", "batch": 64, "img_per_s": }`,
		`{"mode": "", "batch": 64, "img_per_s": 3}`,
	} {
		if _, err := ParsePeer(strings.NewReader(in)); err == nil {
			t.Errorf("ParsePeer(%q) accepted", in)
		}
	}
}
