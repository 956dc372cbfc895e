#!/usr/bin/env bash
# Writes the six benchmark models of docs/performance.md:
#   bench-0.3b-{f16,q8_0,q4_0}.gguf and bench-1b-{f16,q8_0,q4_0}.gguf
# into OUTDIR (default build/bench-models), skipping files that exist.
# Uses yuan_make_bench_model from $YUAN_BUILD_DIR (default build/release),
# building it there first when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-build/bench-models}"
build="${YUAN_BUILD_DIR:-build/release}"
tool="$build/bench/yuan_make_bench_model"
if [[ ! -x "$tool" ]]; then
  if [[ ! -f "$build/CMakeCache.txt" ]]; then
    if [[ "$build" == build/release ]]; then
      cmake --preset release >/dev/null
    else
      echo "make-bench-models: no build in $build (set YUAN_BUILD_DIR)" >&2
      exit 1
    fi
  fi
  cmake --build "$build" --target yuan_make_bench_model -j 2
fi
mkdir -p "$out"
for size in 0.3b 1b; do
  for type in f16 q8_0 q4_0; do
    file="$out/bench-$size-$type.gguf"
    if [[ -f "$file" ]]; then
      echo "$file: exists, skipped"
      continue
    fi
    "$tool" "$size" "$type" "$file"
  done
done
