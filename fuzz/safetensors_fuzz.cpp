// libFuzzer target for the safetensors reader and the config.json translation
// of Hugging Face folders: any byte string must parse or give a FormatError,
// and everything a parsed file exposes must be readable.
//   cmake --preset fuzz && cmake --build --preset fuzz --target safetensors_fuzz
//   ./build/fuzz/fuzz/safetensors_fuzz -max_total_time=60 fuzz/corpus/safetensors
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "runtime/core/status.h"
#include "runtime/model/gguf.h"
#include "runtime/model/hf_folder.h"
#include "runtime/model/safetensors.h"

namespace {

uint64_t Touch(const yuan::SafetensorsFile& f) {
  uint64_t sum = f.data_offset() + f.header_size();
  for (const yuan::SafetensorsTensor& t : f.tensors()) {
    for (uint64_t i = 0; i < t.n_bytes(); ++i) sum += t.data[i];
    sum += static_cast<uint64_t>(t.n_elements()) + (f.Find(t.name) == &t) + t.elem_size;
    int64_t ne[4];
    t.GgmlNe(ne);
    sum += static_cast<uint64_t>(ne[0] * ne[1] * ne[2] * ne[3]);
  }
  for (const auto& [k, v] : f.metadata()) sum += k.size() + v.size();
  return sum;
}

uint64_t TouchGguf(const yuan::GgufFile& f) {
  uint64_t sum = 0;
  for (const yuan::GgufKv& kv : f.metadata()) {
    sum += kv.key.size() + kv.value.str.size();
    sum += f.GetInt(kv.key).ok() + f.GetFloat(kv.key).ok() + f.GetBool(kv.key).ok();
  }
  for (const yuan::GgufTensor& t : f.tensors()) {
    for (uint64_t i = 0; i < t.n_bytes; ++i) sum += t.data[i];
  }
  return sum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  volatile uint64_t sink = 0;
  auto file = yuan::SafetensorsFile::FromBuffer(data, size);
  if (file.ok()) {
    sink = Touch(**file);
  } else if (!yuan::IsFormatError(file.status())) {
    __builtin_trap();  // any rejection must be a format error
  }

  // The same bytes as a config.json (seeds starting with '{' exercise this).
  yuan::GgufParts parts;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::Status s = yuan::HfConfigToGguf(text, "fuzz", &parts);
  if (s.ok()) {
    auto gguf = yuan::GgufFile::FromParts(std::move(parts));
    if (!gguf.ok()) __builtin_trap();  // the translation never emits duplicates
    sink = sink + TouchGguf(**gguf);
  } else if (!yuan::IsFormatError(s)) {
    __builtin_trap();
  }
  (void)sink;
  return 0;
}
