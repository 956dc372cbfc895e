#!/usr/bin/env bash
# Installs the Debian 12 packages yuan builds and tests with. Idempotent:
# does nothing (and needs no network) when everything is already there.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config binutils
  libabsl-dev        # absl::Status / StatusOr, strings, containers
  flatbuffers-compiler libflatbuffers-dev  # the adapter file format (runtime/adapter/adapter.fbs)
  catch2             # Catch2 v2 test framework
  nlohmann-json3-dev # JSON
  libcurl4-openssl-dev  # remote runtime (OpenAI-compatible HTTP client)
  libutf8proc-dev    # Unicode categories for the BPE pre-tokenizers
  python3-jinja2     # reference renderer for the chat-template conformance tests
  python3-jsonschema # independent validator for the structured-output tests
  python3-torch python3-numpy  # PyTorch reference for the architecture tests
  libopenblas0-openmp # fast BLAS for torch (the default reference BLAS is 40x slower)
  nodejs             # runs the reference tokenizers (npm packages) in tests/tokenizer
  clang libclang-rt-14-dev  # libFuzzer targets (fuzz preset)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
