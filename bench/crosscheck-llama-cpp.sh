#!/usr/bin/env bash
# yuan's next-token probabilities against llama.cpp's on the same GGUF file:
#
#   bench/crosscheck-llama-cpp.sh MODEL [PROMPT] [TOKENS]
#
# Starts `yuan serve` on MODEL, asks for TOKENS (default 16) greedy tokens
# after PROMPT with their top-5 log-probabilities, then has llama.cpp
# (bench/llama-cpp/logprobs.mjs) evaluate the same tokens and prints both
# probabilities per token and the largest log difference. A wrong kernel or
# block layout shows as differences of order 1 (4.5 with two of Q5_K's
# fifth bits swapped). Where both are right they agree to 0.002 on
# stories260K and 0.03-0.1 on the random-weight bench files, whose nearly
# flat distributions magnify the two programs' different roundings. Needs
# `npm install` in bench/llama-cpp, as compare-llama-cpp.sh does.
set -euo pipefail
cd "$(dirname "$0")/.."
model="$(realpath "$1")"
prompt="${2:-Once upon a time there was a little cat}"
tokens="${3:-16}"
yuan="${YUAN_BUILD_DIR:-build/release}/cli/yuan"
port=$((20000 + RANDOM % 20000))
answer="$(mktemp)"
"$yuan" serve -m "$model" --port "$port" -t 2 -np 1 >"$answer.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$answer" "$answer.log"' EXIT
for _ in $(seq 100); do curl -sf "localhost:$port/health" >/dev/null && break; sleep 0.2; done
request=$(python3 -c 'import json,sys; print(json.dumps({"prompt": sys.argv[1], "max_tokens": int(sys.argv[2]),
  "temperature": 0, "logprobs": 5}))' "$prompt" "$tokens")
curl -sf "localhost:$port/v1/completions" -H 'content-type: application/json' -d "$request" >"$answer"
(cd bench/llama-cpp && node logprobs.mjs "$model" "$prompt" "$answer")
