package main

import (
	"context"
	"fmt"
	"io"
	"iter"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/gomlx/gomlx/ml/train"

	"github.com/learnresize/learnresize/bench"
	"github.com/learnresize/learnresize/internal/fileutil"
	"github.com/learnresize/learnresize/internal/resources"
)

// runBench is the bench command: its flags, the optional data and peer, bench.Run, the report.
// (Over 60 lines because of its ten flag definitions; the work is in package bench.)
func runBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr, "bench [-duration 10s] [-only NAME,...] [-json FILE] [-peer FILE] [-data PATH] [config flags]")
	cf := addConfigFlags(fs, modelFlags|computeFlags|batchFlag|splitFlags) // both models are timed: no -baseline
	df := addDataFlags(fs, true)
	duration := fs.Duration("duration", 10*time.Second, "timed duration of each benchmark (after warm-up)")
	warmups := fs.Int("warmups", 2, "untimed runs after the first (compiling) call")
	channels := fs.Int("channels", 16, "channels of the resize-op benchmark (the resizer's filters)")
	only := fs.String("only", "", "comma-separated substrings of benchmark names, or kinds (train-step-resizer, eval-step, ...): run only those (e.g. \"resize,train\")")
	jsonOut := fs.String("json", "", "also write the results as JSON to this file")
	peerFile := fs.String("peer", "", "a PyTorch benchmark's output, one JSON object per line (mode, batch, resizer, img_per_s), "+
		"run on the same GPU with the same batch: print our throughput beside it (ours / PyTorch)")
	cpuProfile := fs.String("cpuprofile", "", "write a Go CPU profile of the timed runs to this file (go tool pprof): on the go backend it names each kernel")
	cfg, b, info, err := startCommand(fs, args, cf, stderr)
	if err != nil {
		return err
	}
	var peer *bench.Peer
	if *peerFile != "" {
		f, err := os.Open(*peerFile)
		if err != nil {
			return fmt.Errorf("-peer: %w", err)
		}
		peer, err = bench.ParsePeer(f)
		_ = f.Close()
		if err != nil {
			return fmt.Errorf("-peer %s: %w", *peerFile, err)
		}
	}
	if *duration <= 0 || *warmups < 0 || *channels <= 0 {
		return usagef("-duration, -warmups and -channels must be positive")
	}
	bc := bench.Config{Model: cfg.Model, Batch: cfg.BatchSize, Channels: *channels, Duration: *duration,
		WarmUps: *warmups, Backend: info.String(), Lean: cfg.Lean}
	if *only != "" {
		for _, o := range strings.Split(*only, ",") {
			if o = strings.TrimSpace(o); o != "" {
				bc.Only = append(bc.Only, o)
			}
		}
	}
	if df.path != "" {
		if err := df.check(); err != nil {
			return err
		}
		data, err := openData(context.Background(), cfg, df, stderr)
		if err != nil {
			return err
		}
		defer data.Close()
		bc.Pipeline = pipelineReader(data.Train)
	}
	if *cpuProfile != "" {
		stopProfile, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	rep, err := bench.Run(b, bc, stdout)
	if err != nil {
		return err
	}
	printResults(stdout, rep)
	if peer != nil {
		rep.Peer = peer
		cmp, err := rep.ComparePeer(peer)
		if err != nil {
			return fmt.Errorf("-peer %s: %w", *peerFile, err)
		}
		rep.PeerComparison = cmp
		fmt.Fprint(stdout, "\n"+bench.PeerMarkdown(peer.Header, cmp))
	}
	if *jsonOut != "" {
		js, err := rep.JSON()
		if err != nil {
			return err
		}
		if err := fileutil.WriteAtomic(*jsonOut, js, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "results written to %s\n", *jsonOut)
	}
	return nil
}

// startCPUProfile starts Go's CPU profiler writing to path; the returned function stops it and
// closes the file. The whole run is profiled, compilation included: pprof's -focus or the
// kernels' names separate the steps from it.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// pipelineReader returns a function reading the next training batch, cycling through epochs.
func pipelineReader(ds train.Dataset) func() error {
	var next func() (train.Batch, error, bool)
	var stop func()
	return func() error {
		for {
			if next == nil {
				next, stop = iter.Pull2(ds.Iter())
			}
			b, err, ok := next()
			if !ok {
				stop()
				next = nil
				continue
			}
			if err != nil {
				return err
			}
			return b.Finalize()
		}
	}
}

// printResults prints one line per benchmark: its shape, mean and median, runs, first call, images
// per second and the process's peak memory during a step (bench.Result.PeakRSSBytes).
func printResults(w io.Writer, rep *bench.Report) {
	fmt.Fprintln(w)
	for _, r := range rep.Results {
		line := fmt.Sprintf("%-58s %-28s mean %9.2f ms  median %9.2f ms  (%d runs, first call %.1f s)", r.Name, r.Shape, r.MeanMs, r.MedianMs, r.Runs, r.FirstCallS)
		if r.ImagesPerS > 0 {
			line += fmt.Sprintf("  %.1f img/s", r.ImagesPerS)
		}
		if r.PeakRSSBytes > 0 {
			line += "  peak memory " + resources.Size(r.PeakRSSBytes)
		}
		fmt.Fprintln(w, line)
	}
}
