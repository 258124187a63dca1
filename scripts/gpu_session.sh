#!/usr/bin/env bash
# gpu_session.sh: issue 12's work for one device-tool call on a GPU machine with no Go and no
# internet, from what scripts/gpu_prepare.sh put in devdata/. It never stops at a failure, time-boxes
# every part so that it ends before DEADLINE, and leaves everything in one tarball, $OUT/results.tgz
# (refreshed after each part, so a cut-short call still brings back what finished), with the
# summary printed last.
#
#   scripts/gpu_session.sh                        # PARTS="tests peer bench bench-bf16 compare"
#   PARTS="peer bench dump" scripts/gpu_session.sh
#   PARTS="compare+peer-accuracy tests" scripts/gpu_session.sh   # a+b: parts run side by side
#
# Parts:
#   tests       the test binaries of gpu_prepare.sh on XLA, TF32 off (tf32=false and
#               NVIDIA_TF32_OVERRIDE=0, so cuBLAS and cuDNN compute in full float32) and TF32 on (XLA's
#               default on CUDA) side by side; the backend package's test runs too (New must pick
#               the GPU by itself). Without a GPU plugin (a dry run) they run on the default backend.
#   compile     XLA compile time of the resizer model's training step (56 s on an H100, twice per
#               model in compare: the last partial batch is a second graph) without package backend's
#               on-disk autotune cache, then with it cold and warm (each in its own process);
#               COMPILE_VARIANTS picks others (no-triton-gemm), COMPILE_FLAGS adds bench flags (-bf16).
#   memory      GPU memory of one training step alone (bench -only train-step-resizer, then
#               train-step-baseline, each in its own process, nvidia-smi sampled every 100 ms): the
#               bench part's peak holds every row's executables at once. Then the PyTorch peer's
#               same steps (torch_resizer.py, PEER_MEMORY_MODE, default fp32, with and without
#               the resizer), measured the same way. MEMORY_KINDS picks among the four.
#   go-cores    the pure-Go backend on this machine's CPU cores: the tutorial's training step (batch 8,
#               one timed step) with go:ops_sequential (package backend's default) and with
#               go:ops_parallel (GoMLX's), alternately, twice: the choice was measured on 2 cores only.
#   peer, bench, bench-bf16, epoch, compare, peer-accuracy, dump, info: scripts/bench_gpu.sh's parts
#               (info always runs first).
#
# Environment: DEADLINE (seconds, default 540), PARTS, DURATION (bench, default 5s), SEEDS (3),
# EPOCHS (5), BENCH_FLAGS (as bench_gpu.sh), TEST_TIMEOUT (seconds per test binary, default 240),
# TESTS (the test binaries to run, e.g. "models training"; default: all), TF32_ON_TESTS (the binaries
# that also run with TF32 on; default: resizer densenet resnet training internal_layers; "none": none),
# PLUGIN (the CUDA PJRT plugin; default: found in a Python JAX install).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
DEADLINE="${DEADLINE:-540}"
PARTS="${PARTS:-tests peer bench bench-bf16 compare}"
RES="${RES:-/tmp/gpu-results}"
OUTDIR="${OUT:-gpu-results-out}"
TEST_TIMEOUT="${TEST_TIMEOUT:-240}"
export DURATION="${DURATION:-5s}" SEEDS="${SEEDS:-3}" EPOCHS="${EPOCHS:-5}"
t0=$SECONDS
mkdir -p "$RES/tests" "$RES/bench" "$OUTDIR"

left() { echo $((DEADLINE - (SECONDS - t0))); }
log() { echo "[$(date -u +%T) +$((SECONDS - t0))s] $*" | tee -a "$RES/session.log" >&2; }
pack() { # data caches, checkpoints and split copies stay behind: only logs, JSON, CSV and figures come back
	tar czf "$OUTDIR/results.tgz.tmp" -C "$(dirname "$RES")" --exclude=data --exclude=checkpoints \
		--exclude=split --exclude=xla-dump --exclude=autotune-cache "$(basename "$RES")" && mv "$OUTDIR/results.tgz.tmp" "$OUTDIR/results.tgz"
}

# --- binaries
if [[ ! -x bin/learnresize ]]; then
	mkdir -p bin
	tar xJf devdata/gpubin.tar.xz -C bin 2>/dev/null ||
		python3 -c 'import tarfile; tarfile.open("devdata/gpubin.tar.xz").extractall("bin")' ||
		{ log "cannot unpack devdata/gpubin.tar.xz (run scripts/gpu_prepare.sh where Go is)"; exit 1; }
fi
log "binaries: $(ls bin | tr '\n' ' ')"

# --- the CUDA plugin of a Python JAX install (the GPU machine has JAX, not go-xla's download)
if [[ -z "${PLUGIN:-}" ]]; then
	PLUGIN="$(ls /opt/*/.venv/lib/python3*/site-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so \
		/usr/local/lib/python3*/*-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so 2>/dev/null | sort -r | head -1)"
fi
if [[ -n "$PLUGIN" ]]; then
	sp="$(dirname "$(dirname "$(dirname "$PLUGIN")")")"
	export XLA_FLAGS="--xla_gpu_cuda_data_dir=$sp/nvidia ${XLA_FLAGS:-}" GOPJRT_CUDA_CHECKS=0
fi
log "plugin: ${PLUGIN:-none (dry run on the default backend)}"

run_tests() { # LABEL BACKEND-CONFIG ONLY [VAR=VALUE...]: the test binaries (all, or those named in ONLY), in parallel, in their package folders
	local label="$1" cfg="$2" only="$3"
	shift 3
	local b n dir
	for b in bin/*.test; do
		n="$(basename "$b" .test)"
		[[ -z "$only" || " $only " == *" $n "* ]] || continue
		dir="${n//_//}"
		(cd "$dir" && env "$@" GOMLX_BACKEND="$cfg" timeout -k 5 "$TEST_TIMEOUT" "$here/$b" -test.v \
			-test.timeout "$((TEST_TIMEOUT - 5))s") >"$RES/tests/$label.$n.log" 2>&1 &
	done
}

part_tests() {
	# every binary ends before DEADLINE: TEST_TIMEOUT, or less where less time is left
	local cap=$(($(left) - 15))
	((cap < TEST_TIMEOUT)) && TEST_TIMEOUT=$cap
	((TEST_TIMEOUT < 30)) && { log "tests: skip, ${TEST_TIMEOUT}s left"; return; }
	if [[ -n "$PLUGIN" ]]; then
		run_tests tf32-off "xla:$PLUGIN,tf32=false" "${TESTS:-}" NVIDIA_TF32_OVERRIDE=0
		# TF32 changes only float32 tolerances: the packages with float32 numerical tests (fewer binaries
		# compiling at once: in the first run 12 of them on 16 cores timed out).
		[[ "${TF32_ON_TESTS:-}" == none ]] ||
			run_tests tf32-on "xla:$PLUGIN" "${TF32_ON_TESTS:-resizer densenet resnet training internal_layers}"
	else
		run_tests default "" "${TESTS:-}"
	fi
	wait
	local f
	{
		for f in "$RES"/tests/*.log; do
			printf '%-34s %s\n' "$(basename "$f" .log)" "$(grep -E '^(PASS|FAIL|ok|panic:)' "$f" | tail -1) \
$(grep -c '^--- FAIL' "$f") failed, $(grep -c '^--- SKIP' "$f") skipped, $(grep -c '^--- PASS' "$f") passed"
			grep -E '^\s*--- FAIL|timed out|running tests:|^\s+Test|_test.go:[0-9]+: .*(tolerance|want|diverged|relative error [0-9.e-]+$)' "$f" |
				grep -v 'worst relative error' | head -12 | sed 's/^/    /'
			grep -E 'worst relative error' "$f" | sed 's/^ */    parity: /'
		done
	} >"$RES/tests/summary.txt"
	cat "$RES/tests/summary.txt"
}

part_compile() {
	# XLA compiles on the CPU but autotunes on the GPU (timing each convolution's candidate
	# algorithms). package backend keeps those results in an on-disk cache (LEARNRESIZE_XLA_AUTOTUNE_CACHE;
	# default ~/.cache/learnresize/xla-autotune): compile without it, then cold and warm in a fresh
	# folder. Measured on an H100 with the cache flag in XLA_FLAGS: 56 s, 54 s cold, 31 s warm;
	# without autotuning (--xla_gpu_autotune_level=0) 35 s but a 40x slower step. no-triton-gemm
	# (cache off) asks whether Triton's GEMM tilings, which XLA autotunes per fusion, are what the
	# bf16 step's 128 s compile spends its time on (COMPILE_FLAGS=-bf16).
	local cache="$RES/autotune-cache" variant budget flags
	rm -rf "$cache"
	for variant in ${COMPILE_VARIANTS:-no-cache cache-cold cache-warm}; do
		budget=$(($(left) - 15))
		if ((budget < 40)); then
			log "compile: skip $variant, ${budget}s left"
			continue
		fi
		case "$variant" in
		no-cache | cache-cold | cache-warm) flags="" ;;
		no-triton-gemm) flags="--xla_gpu_enable_triton_gemm=false" ;;
		*)
			log "compile: unknown variant $variant (no-cache, cache-cold, cache-warm, no-triton-gemm)"
			continue
			;;
		esac
		log "compile: $variant ${COMPILE_FLAGS:-} (at most ${budget}s)"
		{
			echo "== $variant ${COMPILE_FLAGS:-} ${flags:+XLA_FLAGS+=$flags}"
			XLA_FLAGS="${XLA_FLAGS:-} $flags" \
				LEARNRESIZE_XLA_AUTOTUNE_CACHE="$([[ $variant == cache-* ]] && echo "$cache" || echo off)" \
				timeout -k 5 "$budget" bin/learnresize bench -batch "${BATCH:-64}" -duration 3s -only train-step-resizer \
				${COMPILE_FLAGS:-} ${BENCH_FLAGS:-} 2>&1 | grep -E '^backend|first call|train step.*mean|rror|nknown|abort|F[0-9]{4}'
			echo "exit ${PIPESTATUS[0]}; cache files: $(find "$cache" -type f 2>/dev/null | wc -l)"
		} >>"$RES/bench/compile.log" 2>&1
	done
	cat "$RES/bench/compile.log"
}

part_memory() {
	local kind budget sampler idle
	if ! command -v nvidia-smi >/dev/null; then
		log "memory: no nvidia-smi"
		return
	fi
	local cmd
	for kind in ${MEMORY_KINDS:-train-step-resizer train-step-baseline peer-resizer peer-baseline}; do
		budget=$(($(left) - 15))
		((budget < 40)) && { log "memory: skip $kind, ${budget}s left"; continue; }
		case "$kind" in
		train-step-*) cmd=(bin/learnresize bench -batch "${BATCH:-64}" -duration 3s -only "$kind" ${BENCH_FLAGS:-}) ;;
		# the PyTorch peer's same step (batch 64, 300 -> 150, SGD), float32 eager as ours is float32
		peer-resizer | peer-baseline)
			cmd=(python3 devdata/peers/torch_resizer.py --modes "${PEER_MEMORY_MODE:-fp32}" --batch "${BATCH:-64}")
			[[ "$kind" == peer-baseline ]] && cmd+=(--no-resizer)
			;;
		*)
			log "memory: unknown kind $kind (train-step-resizer, train-step-baseline, peer-resizer, peer-baseline)"
			continue
			;;
		esac
		log "memory: $kind (at most ${budget}s)"
		idle="$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 | head -1)"
		nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 -lms 100 >"$RES/bench/memory.$kind.csv" &
		sampler=$!
		timeout -k 5 "$budget" "${cmd[@]}" >"$RES/bench/memory.$kind.log" 2>&1
		kill "$sampler" 2>/dev/null
		wait "$sampler" 2>/dev/null
		awk -v idle="$idle" -v k="$kind" 'BEGIN{m=0} {if ($1+0>m) m=$1+0} END{printf "%s: peak GPU memory %d MiB (%d above the idle %d)\n", k, m, m-idle, idle}' \
			"$RES/bench/memory.$kind.csv" | tee -a "$RES/bench/memory.log"
	done
}

part_go_cores() {
	local round cfg budget
	for round in 1 2; do
		for cfg in go:ops_sequential go:ops_parallel; do
			budget=$(($(left) - 15))
			((budget < 40)) && { log "go-cores: skip $cfg, ${budget}s left"; continue; }
			log "go-cores: round $round, $cfg (at most ${budget}s)"
			{
				echo "== round $round: $cfg, $(nproc) cores"
				GOMLX_BACKEND="$cfg" timeout -k 5 "$budget" bin/learnresize bench -batch 8 -duration 1s -warmups 0 \
					-only train-step-resizer 2>&1 | grep -E 'train step.*mean|rror'
			} >>"$RES/bench/go-cores.log" 2>&1
		done
	done
	cat "$RES/bench/go-cores.log"
}

bench_part() { # PART: one part of bench_gpu.sh, time-boxed
	local budget=$(($(left) - 10))
	if ((budget < 20)); then
		log "skip $1: ${budget}s left"
		return
	fi
	log "$1 (at most ${budget}s)"
	OUT="$RES/bench" PEERS=devdata/peers DATA=devdata/petimages-dev LEARNRESIZE=bin/learnresize \
		timeout -k 5 "$budget" scripts/bench_gpu.sh "$1" >/dev/null 2>&1
	log "$1 exit $?"
}

run_one() {
	case "$1" in
	tests)
		log tests
		part_tests
		log "tests done"
		;;
	compile)
		part_compile
		;;
	memory)
		part_memory
		;;
	go-cores)
		part_go_cores
		;;
	*) bench_part "$1" ;;
	esac
}

bench_part info
pack
for part in $PARTS; do
	if ((SECONDS - t0 >= DEADLINE - 20)); then
		log "skip $part: deadline"
		continue
	fi
	if [[ "$part" == *+* ]]; then # side by side: each in the background, the group ends with the last
		log "side by side: ${part//+/, }"
		for p in ${part//+/ }; do
			run_one "$p" &
		done
		wait
	else
		run_one "$part"
	fi
	pack
done

# --- summary (the tool shows the end of the output)
{
	echo "== info"
	grep -E 'NVIDIA|Driver|backend|torch|weights found' "$RES/bench/info.log" 2>/dev/null | head -8
	[[ -f "$RES/tests/summary.txt" ]] && { echo "== tests"; cat "$RES/tests/summary.txt"; }
	for p in compile memory go-cores peer bench bench-bf16 epoch compare peer-accuracy; do
		[[ -f "$RES/bench/$p.log" ]] || continue
		echo "== $p"
		grep -v -E '^\s*$' "$RES/bench/$p.log" | tail -25
	done
} >"$RES/summary.txt"
pack
cp "$RES/summary.txt" "$OUTDIR/summary.txt"
cat "$RES/session.log" "$RES/summary.txt"
