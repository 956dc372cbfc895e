#!/usr/bin/env bash
# LoRA training speed, yuan against PyTorch on the CPU (issue 7, item 8):
# the same step (bench-0.3b shapes, LoRA rank 16 alpha 32 on q,k,v,o,gate,up,
# down, AdamW lr 1e-4, batch 1 x 256 random tokens) in
#   bench/pytorch_lora_step.py   fp32 and bf16 base, plain torch
#   yuan_bench_train             bench-0.3b Q4_0, Q8_0 and F16 GGUF bases
# one after the other with the same thread count, then one table: tokens/s,
# peak RSS and both as a ratio to the faster PyTorch configuration (the
# issue's target: >= 1.5x its tokens/s at <= its peak RSS).
#
#   bench/train-vs-pytorch.sh [THREADS] [STEPS] [WARMUP]
#
# Defaults: 2 threads, 10 measured steps after 3 warm-up steps (medians).
# Environment: YUAN_BUILD_DIR (default build/release; yuan_bench_train and
# yuan_make_bench_model are built there when missing), PYTHON (default
# /usr/bin/python3, Debian's python3-torch), YUAN_BASES (default
# "q4_0 q8_0 f16"), TORCH_DTYPES (default "fp32 bf16").
# Needs libopenblas0-openmp (scripts/install-deps.sh): without it Debian's
# torch runs on netlib's reference BLAS, 40x slower, and the script says so.
# The full run takes a few minutes on a quiet 2-core machine; other load on
# the machine makes every figure meaningless, so run it alone. Each run's
# step-by-step log is kept in build/train-vs-pytorch/.
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-2}"
steps="${2:-10}"
warmup="${3:-3}"
build="${YUAN_BUILD_DIR:-build/release}"
python="${PYTHON:-/usr/bin/python3}"
read -r -a bases <<< "${YUAN_BASES:-q4_0 q8_0 f16}"
read -r -a dtypes <<< "${TORCH_DTYPES:-fp32 bf16}"
models=build/bench-models
logs=build/train-vs-pytorch
mkdir -p "$models" "$logs"

targets=()
[[ -x "$build/bench/yuan_bench_train" ]] || targets+=(yuan_bench_train)
for b in "${bases[@]}"; do
  if [[ ! -f "$models/bench-0.3b-$b.gguf" && ! -x "$build/bench/yuan_make_bench_model" ]]; then
    targets+=(yuan_make_bench_model)
    break
  fi
done
if [[ ${#targets[@]} -gt 0 ]]; then
  if [[ ! -f "$build/CMakeCache.txt" ]]; then
    if [[ "$build" == build/release ]]; then
      cmake --preset release >/dev/null
    else
      echo "train-vs-pytorch: no build in $build (set YUAN_BUILD_DIR)" >&2
      exit 1
    fi
  fi
  cmake --build "$build" --target "${targets[@]}" -j 2
fi
# Only the 0.3b files this needs (make-bench-models.sh would write the 1b ones too).
for b in "${bases[@]}"; do
  f="$models/bench-0.3b-$b.gguf"
  [[ -f "$f" ]] || "$build/bench/yuan_make_bench_model" 0.3b "$b" "$f"
done

names=() tps=() ms=() rss=() cpu=() blas=""
# run NAME LOG COMMAND...: runs one configuration and keeps its figures from
# the markdown row both programs print (| engine | base | trainable |
# threads | test | ms/step | t/s | peak RSS |).
run() {
  local name="$1" log="$2"
  shift 2
  echo "train-vs-pytorch: $name ..." >&2
  if ! "$@" > "$log.out" 2> "$log.err"; then
    echo "train-vs-pytorch: $name failed:" >&2
    tail -n 20 "$log.err" >&2
    exit 1
  fi
  local row
  row=$(grep -E '^\| (yuan|pytorch)' "$log.out" | tail -n 1 || true)
  if [[ -z "$row" ]]; then
    echo "train-vs-pytorch: $name printed no result row (see $log.out)" >&2
    exit 1
  fi
  names+=("$name")
  ms+=("$(awk -F'|' '{gsub(/ /, "", $7); print $7}' <<< "$row")")
  tps+=("$(awk -F'|' '{gsub(/ /, "", $8); print $8}' <<< "$row")")
  rss+=("$(awk -F'|' '{sub(/ MiB/, "", $9); gsub(/ /, "", $9); print $9}' <<< "$row")")
  cpu+=("$(grep -o -E 'CPU time [0-9.]+' "$log.out" | tail -n 1 | awk '{print $3}' || true)")
  if grep -q -E '^BLAS:' "$log.out"; then blas=$(grep -E '^BLAS:' "$log.out" | head -n 1 | cut -d';' -f1); fi
}

for d in "${dtypes[@]}"; do
  run "pytorch $d" "$logs/pytorch-$d" "$python" bench/pytorch_lora_step.py --dtype "$d" \
    --threads "$threads" --steps "$steps" --warmup "$warmup" --seq 256
  if grep -q 'netlib reference' "$logs/pytorch-$d.out"; then
    echo "train-vs-pytorch: WARNING: torch runs on the reference BLAS; install libopenblas0-openmp" \
         "for a fair comparison (scripts/install-deps.sh)" >&2
  fi
done
n_torch=${#names[@]}
for b in "${bases[@]}"; do
  run "yuan ${b^^}" "$logs/yuan-$b" "$build/bench/yuan_bench_train" -m "$models/bench-0.3b-$b.gguf" \
    -t "$threads" -n "$steps" --warmup "$warmup" --seq 256 --rank 16
done

# The reference: the faster PyTorch configuration.
ref=-1
for ((i = 0; i < n_torch; ++i)); do
  if (( ref < 0 )) || awk -v a="${tps[i]}" -v b="${tps[ref]}" 'BEGIN { exit !(a > b) }'; then ref=$i; fi
done

echo
echo "LoRA r16 on q,k,v,o,gate,up,down, bench-0.3b shapes, batch 1 x 256, AdamW;" \
     "$threads threads, median of $steps steps after $warmup warm-up"
printf '| %-14s | %9s | %9s | %10s | %13s | %10s | %10s |\n' config tokens/s ms/step "CPU s/step" \
  "peak RSS MiB" "x speed" "x memory"
printf '| :------------- | --------: | --------: | ---------: | ------------: | ---------: | ---------: |\n'
for ((i = 0; i < ${#names[@]}; ++i)); do
  sx="" mx=""
  if (( ref >= 0 )); then
    sx=$(awk -v a="${tps[i]}" -v b="${tps[ref]}" 'BEGIN { printf "%.2f", a / b }')
    mx=$(awk -v a="${rss[i]}" -v b="${rss[ref]}" 'BEGIN { printf "%.2f", a / b }')
  fi
  printf '| %-14s | %9s | %9s | %10s | %13s | %10s | %10s |\n' "${names[i]}" "${tps[i]}" "${ms[i]}" \
    "${cpu[i]}" "${rss[i]}" "$sx" "$mx"
done
if (( ref >= 0 )); then
  echo "x speed, x memory: relative to ${names[ref]}, the faster PyTorch configuration here;" \
       "the target is x speed >= 1.5 at x memory <= 1.0; CPU s/step: all threads' CPU time" \
       "per step, for a machine too busy for the wall-clock figures"
fi
[[ -z "$blas" ]] || echo "PyTorch's $blas"
# torch's bf16 matmuls are only fast with AVX512_BF16 (oneDNN); without it
# the bf16 row is no real reference.
cpu_name=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
if grep -q -w avx512_bf16 /proc/cpuinfo; then bf16="has"; else bf16="lacks"; fi
echo "CPU: ${cpu_name:-unknown}, $(nproc) cores; it $bf16 AVX512_BF16"
