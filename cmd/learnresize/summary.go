package main

import (
	"fmt"
	"io"

	"github.com/learnresize/learnresize/models"
)

func runSummary(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("summary", stderr, "summary [-baseline] [-expand] [model flags]")
	cf := addConfigFlags(fs, modelFlags|baselineFlag)
	expand := fs.Bool("expand", false, "list the backbone's layers one by one")
	cfg, err := parseConfig(fs, args, cf) // no backend: models.Summary builds on the pure-Go one whatever runs elsewhere
	if err != nil {
		return err
	}
	s, err := models.Summary(cfg.Model, *expand)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, s)
	return nil
}
