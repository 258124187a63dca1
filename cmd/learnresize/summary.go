package main

import (
	"fmt"
	"io"

	"github.com/learnresize/learnresize/backend"
	"github.com/learnresize/learnresize/models"
)

func init() {
	register("summary", "Keras-style summary of the model (-baseline for the plain-resize one)", runSummary)
}

func runSummary(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("summary", stderr, "summary [-baseline] [-expand] [model flags]")
	cf := addConfigFlags(fs)
	expand := fs.Bool("expand", false, "list the backbone's layers one by one")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	cfg, err := cf.resolve()
	if err != nil {
		return err
	}
	b, info, err := backend.New()
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr, info)
	s, err := models.Summary(b, cfg.Model, *expand)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, s)
	return nil
}
