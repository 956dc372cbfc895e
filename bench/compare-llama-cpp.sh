#!/usr/bin/env bash
# yuan and llama.cpp on the same benchmark files and thread count, model by
# model, one right after the other (this class of machine drifts by 10-25 %
# over minutes, so ratios are only meaningful measured close together):
#
#   bench/compare-llama-cpp.sh [THREADS] [REPS] [MODEL...]
#
# Needs bench/make-bench-models.sh's files (the default models) and
# `npm install` in bench/llama-cpp (node-llama-cpp's prebuilt llama.cpp).
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-2}"
reps="${2:-5}"
shift $(( $# > 2 ? 2 : $# ))
models=("$@")
if [[ ${#models[@]} -eq 0 ]]; then
  for size in 0.3b 1b; do
    for type in q4_0 q8_0 f16; do models+=("build/bench-models/bench-$size-$type.gguf"); done
  done
fi
yuan="${YUAN_BUILD_DIR:-build/release}/cli/yuan"
for m in "${models[@]}"; do
  echo "## $m"
  "$yuan" bench -m "$m" -t "$threads" -p 512 -n 128 -r "$reps"
  abs="$(realpath "$m")"  # (relative to here or absolute; node runs from bench/llama-cpp)
  (cd bench/llama-cpp && node bench.mjs -t "$threads" -r "$reps" "$abs")
  echo
done
