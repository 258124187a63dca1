#!/usr/bin/env bash
# bench_gpu.sh: the measurements of docs/BENCHMARKS.md and docs/RESULTS.md on one NVIDIA GPU, ours
# and the PyTorch peers', so that both sides run on the same machine in the same session.
#
#   scripts/bench_gpu.sh [PART ...]          default parts: info peer bench
#
# Parts (run the ones you need; each writes PART.log, and JSON where it has some, into $OUT):
#   info           GPU, driver, backend and versions
#   peer           ../shared/peers/torch_resizer.py: fp32, fp32-cl, bf16-cl, with and without the resizer
#   bench          learnresize bench (float32) with -peer: the ours/PyTorch table and the 1.25x goal;
#                  GPU memory sampled with nvidia-smi while it runs
#   bench-bf16     the same with -bf16 (mixed precision), training and evaluation steps only
#   epoch          learnresize train, 2 epochs on $DATA: the per-epoch "time" lines compare the epoch
#                  with its steps (input pipeline starvation) and count graph compilations
#   compare        learnresize compare, $SEEDS seeds x $EPOCHS epochs on an 80/20 split of $DATA
#   peer-accuracy  ../shared/peers/torch_accuracy.py on the same split (exported by learnresize export)
#   dump           XLA dumps (HLO text) of the training step, for profiling a missed goal
#
# Environment (all optional):
#   LEARNRESIZE   the binary (default: bin/learnresize, built with go if missing)
#   PYTHON        Python with torch and torchvision (default: /opt/torch/.venv/bin/python if present, else python3)
#   PEERS         folder of the PyTorch peers (default: ../shared/peers)
#   DATA          cats_vs_dogs PetImages folder or zip (default: ../shared/data/petimages-dev)
#   OUT           results folder (default: bench-results/<UTC date and time>)
#   BATCH         batch size (64); DURATION of each benchmark (10s); SEEDS (3); EPOCHS (5)
#   BF16_ONLY     the rows bench-bf16 runs (bench's -only; default "train step,eval step": four
#                 DenseNet-121 compilations, ~200 s on an H200)
#   BENCH_FLAGS   extra flags for learnresize bench, train and compare (e.g. smaller shapes for a try-out)
#   GOMLX_BACKEND as for learnresize (default: found automatically; see package backend)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
export GOTOOLCHAIN="${GOTOOLCHAIN:-go1.27.3}"

LEARNRESIZE="${LEARNRESIZE:-bin/learnresize}"
if [[ -z "${PYTHON:-}" ]]; then
	PYTHON=python3
	[[ -x /opt/torch/.venv/bin/python ]] && PYTHON=/opt/torch/.venv/bin/python
fi
PEERS="${PEERS:-../shared/peers}"
DATA="${DATA:-../shared/data/petimages-dev}"
OUT="${OUT:-bench-results/$(date -u +%Y%m%d-%H%M%S)}"
BATCH="${BATCH:-64}"
DURATION="${DURATION:-10s}"
SEEDS="${SEEDS:-3}"
EPOCHS="${EPOCHS:-5}"
read -r -a extra <<<"${BENCH_FLAGS:-}"

die() { echo "bench_gpu.sh: $*" >&2; exit 1; }

[[ "$BATCH" =~ ^[1-9][0-9]*$ ]] || die "BATCH must be a positive integer, got '$BATCH'"
[[ "$SEEDS" =~ ^[1-9][0-9]*$ ]] || die "SEEDS must be a positive integer, got '$SEEDS'"
[[ "$EPOCHS" =~ ^[1-9][0-9]*$ ]] || die "EPOCHS must be a positive integer, got '$EPOCHS'"

if [[ ! -x "$LEARNRESIZE" ]]; then
	command -v go >/dev/null || die "$LEARNRESIZE not found and no go to build it (build it elsewhere: go build -o bin/learnresize ./cmd/learnresize)"
	echo "building $LEARNRESIZE" >&2
	go build -trimpath -o "$LEARNRESIZE" ./cmd/learnresize
fi
mkdir -p "$OUT"
echo "results in $OUT" >&2

# with_gpu_memory PART CMD...: runs CMD, sampling the GPU's used memory every 200 ms (if nvidia-smi
# exists) and printing the peak above the idle level; the samples go to $OUT/PART.gpumem.csv.
with_gpu_memory() {
	local part="$1"
	shift
	if ! command -v nvidia-smi >/dev/null; then
		"$@"
		return
	fi
	local idle
	idle="$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 | head -1)"
	nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 -lms 200 >"$OUT/$part.gpumem.csv" &
	local sampler=$!
	local rc=0
	"$@" || rc=$?
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	awk -v idle="$idle" -v part="$part" 'BEGIN{m=0} {if ($1+0>m) m=$1+0} END{printf "%s: peak GPU memory used %d MiB (%d MiB above the idle %d MiB; whole device, sampled every 200 ms)\n", part, m, m-idle, idle}' "$OUT/$part.gpumem.csv"
	return "$rc"
}

# split_folders exports the 80/20 split as two PetImages folders (once) for the PyTorch side.
split_folders() {
	[[ -d "$OUT/split/train" ]] || "$LEARNRESIZE" export -data "$DATA" -split "train[:80%]" -out "$OUT/split/train"
	[[ -d "$OUT/split/val" ]] || "$LEARNRESIZE" export -data "$DATA" -split "train[80%:]" -out "$OUT/split/val"
}

need_peer() {
	[[ -f "$PEERS/$1" ]] || die "$PEERS/$1 not found (set PEERS)"
}

run_part() {
	case "$1" in
	info)
		date -u
		if command -v nvidia-smi >/dev/null; then nvidia-smi; else echo "nvidia-smi: not available"; fi
		"$LEARNRESIZE" summary "${extra[@]}" 2>&1 >/dev/null # its first line names the backend
		"$PYTHON" -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__, "cuda", torch.cuda.is_available())' 2>/dev/null ||
			echo "PyTorch: not available in $PYTHON"
		# Pretrained weights already on the machine (the warm-start experiment needs torchvision's; nothing can be downloaded)
		echo "pretrained weights found: $(find "${TORCH_HOME:-$HOME/.cache/torch}" /root/.cache/torch /opt -maxdepth 6 \( -name 'densenet*.pth' -o -name 'resnet50*.pth' -o -name '*.safetensors' \) 2>/dev/null | head -10 | tr '\n' ' ')"
		;;
	peer)
		need_peer torch_resizer.py
		: >"$OUT/peer.txt"
		"$PYTHON" "$PEERS/torch_resizer.py" --modes fp32,fp32-cl,bf16-cl --batch "$BATCH" | tee -a "$OUT/peer.txt"
		"$PYTHON" "$PEERS/torch_resizer.py" --modes fp32-cl,bf16-cl --batch "$BATCH" --no-resizer | tee -a "$OUT/peer.txt"
		;;
	bench | bench-bf16)
		local flags=(-batch "$BATCH" -duration "$DURATION" -json "$OUT/$1.json")
		[[ -s "$OUT/peer.txt" ]] && flags+=(-peer "$OUT/peer.txt")
		[[ "$1" == bench-bf16 ]] && flags+=(-bf16 -only "${BF16_ONLY:-train step,eval step}")
		[[ "$1" == bench && -e "$DATA" ]] && flags+=(-data "$DATA" -data-dir "$OUT/data")
		with_gpu_memory "$1" "$LEARNRESIZE" bench "${flags[@]}" "${extra[@]}"
		;;
	epoch)
		with_gpu_memory epoch "$LEARNRESIZE" train -data "$DATA" -data-dir "$OUT/data" -out "$OUT/epoch-run" \
			-epochs 2 -batch "$BATCH" -train-split "train[:80%]" -val-split "train[80%:]" "${extra[@]}"
		;;
	compare)
		"$LEARNRESIZE" compare -data "$DATA" -data-dir "$OUT/data" -out "$OUT/compare" -seeds "$SEEDS" \
			-epochs "$EPOCHS" -batch "$BATCH" -train-split "train[:80%]" -val-split "train[80%:]" "${extra[@]}"
		;;
	peer-accuracy)
		need_peer torch_accuracy.py
		split_folders
		local seeds
		seeds="$(seq -s, 0 $((SEEDS - 1)))"
		"$PYTHON" "$PEERS/torch_accuracy.py" --train "$OUT/split/train" --val "$OUT/split/val" --inp 300 --target 150 \
			--epochs "$EPOCHS" --batch "$BATCH" --seeds "$seeds" | tee "$OUT/peer-accuracy.jsonl"
		;;
	dump)
		XLA_FLAGS="${XLA_FLAGS:-} --xla_dump_to=$OUT/xla-dump --xla_dump_hlo_as_text" \
			"$LEARNRESIZE" bench -batch "$BATCH" -duration 2s -only train-step-resizer "${extra[@]}"
		echo "XLA dumps in $OUT/xla-dump ($(find "$OUT/xla-dump" -type f 2>/dev/null | wc -l) files)"
		;;
	*)
		die "unknown part '$1' (info, peer, bench, bench-bf16, epoch, compare, peer-accuracy, dump)"
		;;
	esac
}

parts=("$@")
[[ ${#parts[@]} -gt 0 ]] || parts=(info peer bench)
for part in "${parts[@]}"; do # check every name before running anything
	case "$part" in
	info | peer | bench | bench-bf16 | epoch | compare | peer-accuracy | dump) ;;
	*) die "unknown part '$part' (info, peer, bench, bench-bf16, epoch, compare, peer-accuracy, dump)" ;;
	esac
done
for part in "${parts[@]}"; do
	echo "== $part" >&2
	run_part "$part" 2>&1 | tee "$OUT/$part.log"
done
