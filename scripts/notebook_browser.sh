#!/usr/bin/env bash
# Executes notebooks/learnable_resizer.ipynb the way a reader does and keeps its outputs: Jupyter's
# classic Notebook (Debian's jupyter-notebook 6.4, the GoNB kernel), headless Chromium, Cell > Run All,
# File > Save; then exports docs/learnable_resizer.html. Screenshots go to OUT (default
# /tmp/notebook-browser): look at them.
#
#   LEARNRESIZE_DATA=../shared/data/petimages-dev scripts/notebook_browser.sh [OUT]
#
# The notebook runs with LEARNRESIZE_TINY=1 and LEARNRESIZE_EPOCHS (default 30), as the committed
# outputs say. Needs: apt-get install jupyter-notebook python3-ipykernel jupyter-server chromium
# nodejs npm; gonb and goimports on PATH (go install tool && gonb --install --force_deps); npm's
# playwright-core (installed into OUT/node if missing).
set -euo pipefail
export GOTOOLCHAIN=go1.27.3
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-/tmp/notebook-browser}
mkdir -p "$out"
out=$(cd "$out" && pwd)
export PATH="$(go env GOPATH)/bin:$PATH"
export LEARNRESIZE_TINY=1 LEARNRESIZE_EPOCHS=${LEARNRESIZE_EPOCHS:-30}
: "${LEARNRESIZE_DATA:?set LEARNRESIZE_DATA to the photos to run on, e.g. ../shared/data/petimages-dev}"
export LEARNRESIZE_DATA=$(cd "$LEARNRESIZE_DATA" && pwd)
if [ ! -d "$out/node/node_modules/playwright-core" ]; then
  mkdir -p "$out/node" && (cd "$out/node" && npm init -y >/dev/null && npm install --no-audit --no-fund playwright-core@1.64.1 >/dev/null)
fi
rm -rf "$root/notebooks/runs/notebook" # a fresh run, not a resumed one
port=8899
(cd "$root/notebooks" && exec jupyter notebook --no-browser --port=$port --ip=127.0.0.1 --allow-root \
  --NotebookApp.token='' --NotebookApp.password='' >"$out/server.log" 2>&1) &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 60); do curl -s "http://127.0.0.1:$port/api" >/dev/null && break; sleep 1; done
cp "$root/scripts/notebook_browser.mjs" "$out/node/"
node "$out/node/notebook_browser.mjs" "http://127.0.0.1:$port/notebooks/learnable_resizer.ipynb" "$out" 3600
jupyter nbconvert --to html "$root/notebooks/learnable_resizer.ipynb" --output "$root/docs/learnable_resizer.html" >/dev/null 2>&1
echo "saved notebooks/learnable_resizer.ipynb and docs/learnable_resizer.html; screenshots in $out"
