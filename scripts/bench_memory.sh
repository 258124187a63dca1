#!/usr/bin/env bash
# The memory table of docs/BENCHMARKS.md: peak resident memory and time of the tutorial's training
# step (300 -> 150, DenseNet-121, with and without the resizer) at each batch, PyTorch's and ours,
# side by side. Each of our rows runs in a process of its own (a process keeps what its allocator
# took), PyTorch's two steps in one (its peak is reset between them).
#
#   scripts/bench_memory.sh [BATCHES]      # default "8 32 64"; env: LEARNRESIZE (binary), PYTHON, THREADS (2)
#
# Needs Debian's python3-torch and python3-torchvision. A batch that does not fit is reported as
# such (killed, or refused by the memory check: -memory-check is train's and compare's, bench runs
# what it is asked to).
set -uo pipefail
cd "$(dirname "$0")/.."
batches="${1:-8 32 64}"
threads="${THREADS:-2}"
py="${PYTHON:-/usr/bin/python3}"
if [ -n "${LEARNRESIZE:-}" ]; then lr=("$LEARNRESIZE"); else export GOTOOLCHAIN=go1.27.3; go build -o /tmp/learnresize-bench ./cmd/learnresize || exit 1; lr=(/tmp/learnresize-bench); fi
for b in $batches; do
	echo "== batch $b: PyTorch, $threads threads"
	"$py" bench/testdata/torch_cpu.py --threads "$threads" --seconds 1 --only tutorial --batch "$b" 2>&1 | grep -v Warning || echo "PyTorch batch $b: failed (exit $?)"
	for row in train-step-resizer train-step-baseline; do
		echo "== batch $b: learnresize $row"
		"${lr[@]}" bench -only "$row" -inp 300 -target 150 -batch "$b" -duration 1s -warmups 0 2>&1 | grep "first call (\|img/s\|^backend" \
			|| echo "learnresize $row batch $b: failed (exit ${PIPESTATUS[0]}; killed for memory if 137)"
	done
done
