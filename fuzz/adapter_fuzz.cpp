// libFuzzer target for the adapter readers: a .yadp buffer (FlatBuffers
// Verifier + yuan's checks) or, for input starting with "GGUF", a GGUF LoRA.
// Anything accepted must be a valid adapter that saves and reloads to the
// same tensors.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "runtime/adapter/adapter.h"
#include "runtime/model/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::StatusOr<yuan::LoraAdapter> a = absl::UnknownError("");
  if (size >= 4 && std::memcmp(data, "GGUF", 4) == 0) {
    auto f = yuan::GgufFile::FromBuffer(data, size);
    if (!f.ok()) return 0;
    a = yuan::GgufToAdapter(**f);
  } else {
    a = yuan::ParseYadp(data, size);
  }
  if (!a.ok()) return 0;
  if (!yuan::ValidateAdapter(*a, "fuzz").ok()) std::abort();
  auto bytes = yuan::SerializeYadp(*a);
  if (!bytes.ok()) std::abort();
  auto b = yuan::ParseYadp(bytes->data(), bytes->size());
  if (!b.ok() || b->tensors.size() != a->tensors.size()) std::abort();
  for (size_t i = 0; i < a->tensors.size(); ++i)
    if (a->tensors[i].a != b->tensors[i].a || a->tensors[i].b != b->tensors[i].b) std::abort();
  return 0;
}
