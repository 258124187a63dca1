package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// PeerGoal is issue 8's yardstick: our training step must reach this multiple of the PyTorch
// peer's best eager-mode throughput (PeerGoalModes) on the same GPU.
const PeerGoal = 1.25

// PeerGoalModes are the peer's eager modes the goal is measured against (torch.compile is reported
// but not part of the goal).
var PeerGoalModes = []string{"fp32-cl", "bf16-cl"}

// PeerResult is one line of ../shared/peers/torch_resizer.py's output.
type PeerResult struct {
	Mode      string  `json:"mode"`
	Batch     int     `json:"batch"`
	Resizer   bool    `json:"resizer"`
	WarmupS   float64 `json:"warmup_s"`
	MsPerStep float64 `json:"ms_per_step"`
	ImgPerS   float64 `json:"img_per_s"`
	Params    int     `json:"params"`
}

// Peer is the peer's whole output: its version line and its results.
type Peer struct {
	Header  string       `json:"header"` // "torch-version torchvision-version device"
	Results []PeerResult `json:"results"`
}

// ParsePeer reads torch_resizer.py's output (one JSON object per line; other lines, such as the
// version line it prints first, are kept as the header). Several runs (with and without
// --no-resizer) can be concatenated.
func ParsePeer(r io.Reader) (*Peer, error) {
	p := &Peer{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
		case strings.HasPrefix(line, "{"):
			var res PeerResult
			if err := json.Unmarshal([]byte(line), &res); err != nil {
				return nil, fmt.Errorf("peer output line %d: %w", n, err)
			}
			if res.Mode == "" || res.Batch <= 0 || res.ImgPerS <= 0 {
				return nil, fmt.Errorf("peer output line %d: want mode, batch and img_per_s, got %q", n, line)
			}
			p.Results = append(p.Results, res)
		case p.Header == "":
			p.Header = line
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(p.Results) == 0 {
		return nil, fmt.Errorf("peer output holds no results (want torch_resizer.py's JSON lines)")
	}
	return p, nil
}

// PeerComparison sets one of our training-step results beside the peer's runs of the same model and
// batch size.
type PeerComparison struct {
	Model       string             `json:"model"` // our benchmark's name
	Resizer     bool               `json:"resizer"`
	Precision   string             `json:"precision"` // ours: "float32" or "bfloat16 mixed"
	OursImgPS   float64            `json:"ours_img_per_s"`
	OursMs      float64            `json:"ours_ms_per_step"`
	Peer        []PeerResult       `json:"peer"`
	Ratios      map[string]float64 `json:"ratios"` // ours / peer, per peer mode
	GoalImgPS   float64            `json:"goal_img_per_s"`
	GoalMet     bool               `json:"goal_met"`
	GoalAgainst string             `json:"goal_against"` // the peer mode the goal was computed from
}

// ComparePeer matches the report's training steps with the peer's results (same model, same batch
// size) and applies the PeerGoal. It is an error if no step of the report has a peer result.
func (rep *Report) ComparePeer(p *Peer) ([]PeerComparison, error) {
	precision := "float32"
	if rep.Config.Model.BFloat16 {
		precision = "bfloat16 mixed"
	}
	var out []PeerComparison
	for _, r := range rep.Results {
		if (r.Kind != KindTrainResizer && r.Kind != KindTrainBaseline) || r.Runs == 0 {
			continue
		}
		c := PeerComparison{Model: r.Name, Resizer: r.Kind == KindTrainResizer, Precision: precision,
			OursImgPS: r.ImagesPerS, OursMs: r.MeanMs, Ratios: map[string]float64{}}
		for _, pr := range p.Results {
			if pr.Resizer != c.Resizer || pr.Batch != r.ImagesPerIt {
				continue
			}
			c.Peer = append(c.Peer, pr)
			c.Ratios[pr.Mode] = c.OursImgPS / pr.ImgPerS
			for _, m := range PeerGoalModes {
				if pr.Mode == m && PeerGoal*pr.ImgPerS > c.GoalImgPS {
					c.GoalImgPS, c.GoalAgainst = PeerGoal*pr.ImgPerS, m
				}
			}
		}
		if len(c.Peer) == 0 {
			continue
		}
		c.GoalMet = c.GoalImgPS > 0 && c.OursImgPS >= c.GoalImgPS
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no peer result matches a training step of this run (same model with/without resizer, batch %d)", rep.Config.Batch)
	}
	return out, nil
}

// PeerMarkdown renders comparisons as a Markdown table.
func PeerMarkdown(header string, cs []PeerComparison) string {
	var b strings.Builder
	if header != "" {
		fmt.Fprintf(&b, "PyTorch peer: %s\n\n", header)
	}
	b.WriteString("| training step | ours | PyTorch mode | PyTorch | ours / PyTorch |\n|---|---|---|---|---|\n")
	for _, c := range cs {
		for _, pr := range c.Peer {
			fmt.Fprintf(&b, "| %s | %.0f img/s (%.1f ms, %s) | %s | %.0f img/s (%.1f ms) | %.2fx |\n",
				c.Model, c.OursImgPS, c.OursMs, c.Precision, pr.Mode, pr.ImgPerS, pr.MsPerStep, c.Ratios[pr.Mode])
		}
	}
	for _, c := range cs {
		if c.GoalImgPS == 0 {
			fmt.Fprintf(&b, "\n%s: the peer ran none of the goal's modes %v.", c.Model, PeerGoalModes)
			continue
		}
		verdict := "met"
		if !c.GoalMet {
			verdict = "MISSED"
		}
		fmt.Fprintf(&b, "\n%s: goal %.2fx PyTorch %s = %.0f img/s; ours %.0f img/s (%.2fx): %s.", c.Model, PeerGoal,
			c.GoalAgainst, c.GoalImgPS, c.OursImgPS, c.OursImgPS/(c.GoalImgPS/PeerGoal), verdict)
	}
	b.WriteString("\n")
	return b.String()
}
