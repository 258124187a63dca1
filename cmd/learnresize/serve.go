package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"

	"github.com/learnresize/learnresize/web"
)

// runServe serves the web page of a trained run (package web) on this machine only, until Ctrl-C.
func runServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr, "serve -checkpoint RUN [-addr 127.0.0.1:8080] [-ort DIR]")
	ckpt := fs.String("checkpoint", "", "a training run directory (its latest checkpoint is used) or a checkpoint directory")
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on: 127.0.0.1 or localhost (the page is for this machine)")
	ortDir := fs.String("ort", web.DefaultORTDir, "onnxruntime-web's dist folder (npm ci in web/ installs it there)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	if *ckpt == "" {
		return usagef("-checkpoint is required")
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return usagef("-addr %q: %v", *addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return usagef("-addr %q: serve listens on 127.0.0.1 or localhost only (the page is for this machine)", *addr)
	}
	if _, err := os.Stat(*ckpt); err != nil {
		return fmt.Errorf("-checkpoint: %w", err)
	}
	h, cfg, err := web.Handler(*ckpt, *ortDir)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "serving %s (%s) on http://%s/ (Ctrl-C stops)\n", cfg.Run, cfg.Title, ln.Addr())
	it := newInterrupter(stderr, "the server")
	defer it.Close()
	srv := &http.Server{Handler: h}
	go func() {
		<-it.ctx.Done()
		_ = srv.Shutdown(context.Background())
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
