#!/usr/bin/env bash
# The CPU comparison of docs/BENCHMARKS.md: PyTorch (bench/testdata/torch_cpu.py) and
# learnresize bench on the default backend, alternately, ROUNDS times, at THREADS threads each.
#
#   scripts/bench_cpu.sh [ROUNDS]          # env: LEARNRESIZE (binary, default: go run), THREADS (default 2), PYTHON
#
# Needs Debian's python3-torch and python3-torchvision. ONNX Runtime uses all cores by default: on a
# machine with more than THREADS cores, set GOMLX_BACKEND=onnx:cpu,<library>,intra_op_num_threads=THREADS.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-2}"
threads="${THREADS:-2}"
py="${PYTHON:-/usr/bin/python3}"
if [ -n "${LEARNRESIZE:-}" ]; then lr=("$LEARNRESIZE"); else lr=(go run ./cmd/learnresize); fi
for round in $(seq "$rounds"); do
	echo "== round $round: PyTorch, $threads threads"
	"$py" bench/testdata/torch_cpu.py --threads "$threads" --seconds 12 2>&1 | grep -v Warning
	echo "== round $round: learnresize, resizer inference and the tutorial's train steps"
	"${lr[@]}" bench -only "resizer forward (inference),train step" -inp 300 -target 150 -batch 8 -duration 15s 2>&1 | grep "mean \|^backend"
	echo "== round $round: learnresize, small train steps"
	"${lr[@]}" bench -only "train step" -inp 64 -target 32 -blocks 2,2 -growth 8 -filters 4 -batch 16 -duration 12s 2>&1 | grep "mean "
done
