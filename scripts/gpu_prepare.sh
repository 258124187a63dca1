#!/usr/bin/env bash
# gpu_prepare.sh: builds, where Go is (x86-64), everything scripts/gpu_session.sh needs on a GPU
# machine that has no Go and no internet, into devdata/ (git-ignored), sized for the device tool's
# 64 MiB carry:
#
#   devdata/gpubin.tar.xz     stripped learnresize + `go test -c` binaries of the numerical packages
#                             (one xz -9 stream: the binaries share most of their code, so together
#                             they pack to ~17 MB instead of ~40 MB)
#   devdata/petimages-dev/    the 5,000 development photos (35.6 MB), unless NO_DATA=1
#   devdata/peers/            the PyTorch peers
#
#   scripts/gpu_prepare.sh            then, on the GPU machine: scripts/gpu_session.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
export GOTOOLCHAIN="${GOTOOLCHAIN:-go1.27.3}"
SHARED="${SHARED:-../shared}"
# The packages whose tests check numbers (values, gradients, parity with PyTorch) or the backend choice.
PKGS=(resizer densenet resnet models training internal/layers backend)

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
go build -trimpath -ldflags="-s -w" -o "$stage/learnresize" ./cmd/learnresize
for p in "${PKGS[@]}"; do
	go test -c -trimpath -ldflags="-s -w" -o "$stage/${p//\//_}.test" "./$p"
done
mkdir -p devdata
tar cf - -C "$stage" . | xz -T1 -9 >devdata/gpubin.tar.xz.tmp
mv devdata/gpubin.tar.xz.tmp devdata/gpubin.tar.xz
rm -rf devdata/peers
cp -r "$SHARED/peers" devdata/peers
if [[ "${NO_DATA:-}" == "" && ! -d devdata/petimages-dev ]]; then
	cp -r "$SHARED/data/petimages-dev" devdata/petimages-dev
fi
du -sb devdata/* | sort -n
echo "carry: devdata ($(du -sb devdata | cut -f1) bytes; the tracked tree travels too: keep both under 64 MiB)"
