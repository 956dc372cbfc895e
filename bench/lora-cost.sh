#!/usr/bin/env bash
# The cost of a LoRA adapter per generated token (issue 6, item 5): a random
# rank-RANK adapter on all seven projections (q, k, v, o, gate, up, down) of
# every layer of MODEL, decoded with `yuan bench --lora`, whose repetitions
# alternate with the base's so both see the same machine noise.
#
#   bench/lora-cost.sh [THREADS] [REPS] [RANK] [MODEL]
#
# Defaults: 2 threads, 7 repetitions, rank 16, bench-0.3b Q4_0 (made by
# bench/make-bench-models.sh). Prints the llama-bench table, the adapter's
# load time and "+x % time per token" from the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-2}"
reps="${2:-7}"
rank="${3:-16}"
model="${4:-build/bench-models/bench-0.3b-q4_0.gguf}"
build="${YUAN_BUILD_DIR:-build/release}"
[[ -f "$model" ]] || bench/make-bench-models.sh
adapter="${model%.gguf}-lora-r$rank.yadp"
[[ -f "$adapter" ]] || "$build/bench/yuan_make_bench_model" lora "$model" "$rank" "$adapter"
"$build/cli/yuan" bench -m "$model" -t "$threads" -p 512 -n 128 -r "$reps" --lora "$adapter"
