#!/usr/bin/env bash
# Installs ONNX Runtime's CPU library (libonnxruntime.so, x86-64 or arm64 Linux) for learnresize's
# fast CPU backend, from the npm registry's onnxruntime-node package: the one source of it that works
# offline behind a package mirror. Online, compute-onnx can also install it by itself (see README).
#
#   scripts/install_onnxruntime.sh [DEST]        # default DEST: ~/.local/lib/onnxruntime
#
# DEST defaults to compute-onnx's own install folder, where learnresize's backend.New (and GoMLX's
# compute-onnx) look for it; any other DEST needs ONNXRUNTIME_SHARED_LIBRARY_PATH=DEST/libonnxruntime.so.
# Needs npm and tar. The version is pinned and the x86-64 library is checked against its SHA-256.
set -euo pipefail

version=1.30.0
sha256_x64=ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23
dest="${1:-$HOME/.local/lib/onnxruntime}"

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) arch=x64 ;;
  Linux/aarch64 | Linux/arm64) arch=arm64 ;;
  *) echo "install_onnxruntime.sh: only Linux x86-64 and arm64 are supported here, not $(uname -s)/$(uname -m);" \
       "see https://onnxruntime.ai for other systems" >&2; exit 1 ;;
esac
command -v npm >/dev/null || { echo "install_onnxruntime.sh: npm is needed (Debian: apt-get install npm)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "onnxruntime-node@$version" >/dev/null)
tar -xzf "$work/onnxruntime-node-$version.tgz" -C "$work" "package/bin/napi-v6/linux/$arch/libonnxruntime.so.1"
lib="$work/package/bin/napi-v6/linux/$arch/libonnxruntime.so.1"
if [ "$arch" = x64 ]; then
  got="$(sha256sum "$lib" | cut -d' ' -f1)"
  [ "$got" = "$sha256_x64" ] || { echo "install_onnxruntime.sh: SHA-256 mismatch for $lib: $got" >&2; exit 1; }
fi
mkdir -p "$dest"
# Write beside the target and rename, so that a reader never sees half a library.
cp "$lib" "$dest/.libonnxruntime.so.tmp"
mv -f "$dest/.libonnxruntime.so.tmp" "$dest/libonnxruntime.so"
echo "installed ONNX Runtime $version ($arch) at $dest/libonnxruntime.so"
