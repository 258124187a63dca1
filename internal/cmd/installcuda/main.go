// Command installcuda installs go-xla's CUDA 13 PJRT plugin and the NVIDIA libraries it needs, from
// JAX's pip packages at a pinned version (checked against pypi.org's SHA-256), into a go-xla library
// directory. The Docker image runs it at build time, where no GPU is present (go-xla's auto-install
// only runs on machines with a GPU).
//
//	go run ./internal/cmd/installcuda -dir /usr/local/lib/go-xla -version 0.11.2
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/gomlx/go-xla/installer"
)

func main() {
	dir := flag.String("dir", "/usr/local/lib/go-xla", "go-xla library directory (the plugin goes into its nvidia/ sub-directory)")
	version := flag.String("version", "", "JAX CUDA PJRT version to install (required: pin it)")
	flag.Parse()
	if *version == "" || *version == "latest" {
		fmt.Fprintln(os.Stderr, "installcuda: -version must name a pinned JAX release, e.g. 0.11.2")
		os.Exit(2)
	}
	if err := installer.CudaInstall("cuda13", *version, *dir, false, installer.Normal); err != nil {
		fmt.Fprintf(os.Stderr, "installcuda: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("CUDA PJRT %s installed in %s/nvidia\n", *version, *dir)
}
