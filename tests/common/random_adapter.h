// Random LoRA adapters shaped for a random model spec (tests and the LoRA
// cost benchmark). No Catch2 dependency.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/adapter/adapter.h"
#include "tests/common/test_support.h"

namespace yuan::testing {

// The seven projections an adapter can target, by their short names.
inline const std::vector<std::string> kAllLoraModules = {"q", "k", "v", "o", "gate", "up", "down"};

// (out, in) of a projection ("q", ..., "down") of a model with `spec`'s shapes.
std::pair<int64_t, int64_t> LoraProjShape(const RandomModelSpec& spec, const std::string& module);

// A rank-`rank` adapter on `modules` of every layer, A and B normal(0,
// stddev) from `seed`, alpha = 2 * rank, rows in GGUF order. Its base
// fingerprint holds only the architecture and head counts; FillFingerprint
// completes it for a real file.
LoraAdapter RandomLoraAdapter(const RandomModelSpec& spec, int rank, uint64_t seed,
                              const std::vector<std::string>& modules = kAllLoraModules,
                              float stddev = 0.05f);

}  // namespace yuan::testing
