#!/usr/bin/env bash
# The main job: install dependencies, build (release preset), and generate
# text with the in-process runtime on $YUAN_MODEL (default: the shared
# stories260K model). Extra arguments go to `yuan run`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release

model="${YUAN_MODEL:-../shared/models/stories260K.gguf}"
prompt="${YUAN_PROMPT:-Once upon a time}"
exec ./build/release/cli/yuan run -m "$model" -p "$prompt" -n 128 "$@"
