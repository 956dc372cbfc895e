// libFuzzer target for the GGUF reader: any byte string must parse or give a
// FormatError, and everything a parsed file exposes must be readable.
//   cmake --preset fuzz && cmake --build --preset fuzz --target gguf_fuzz
//   ./build/fuzz/fuzz/gguf_fuzz -dict=fuzz/gguf.dict -max_total_time=60 fuzz/corpus/gguf
#include <cstddef>
#include <cstdint>
#include <sstream>

#include "runtime/core/status.h"
#include "runtime/model/gguf.h"
#include "runtime/model/gguf_dump.h"

namespace {

// Reads what a model loader or `yuan inspect` would read, so that ASan sees
// every view the parser handed out.
uint64_t Touch(const yuan::GgufFile& f) {
  uint64_t sum = f.version() + f.alignment() + f.data_offset();
  for (const yuan::GgufTensor& t : f.tensors()) {
    for (uint64_t i = 0; i < t.n_bytes; ++i) sum += t.data[i];
    sum += static_cast<uint64_t>(t.n_elements());
    sum += f.FindTensor(t.name) == &t;
  }
  for (const yuan::GgufKv& kv : f.metadata()) {
    sum += f.Find(kv.key) == &kv.value;
    sum += f.GetInt(kv.key).ok() + f.GetFloat(kv.key).ok() + f.GetBool(kv.key).ok();
    if (auto s = f.GetString(kv.key); s.ok() && !s->empty()) sum += static_cast<uint8_t>(s->back());
    const yuan::GgufValue& v = kv.value;
    for (uint64_t i = 0; i < v.array_size && i < 256; ++i) {
      sum += static_cast<uint64_t>(v.ArrayInt(i)) + (v.ArrayFloat(i) > 0);
    }
    for (std::string_view s : v.strings) sum += s.empty() ? 0 : static_cast<uint8_t>(s.front());
  }
  std::ostringstream dump;
  yuan::DumpGguf(f, dump);
  return sum + dump.str().size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = yuan::GgufFile::FromBuffer(data, size);
  if (!file.ok()) {
    // Any rejection must be a format error, never another kind of failure.
    if (!yuan::IsFormatError(file.status())) __builtin_trap();
    return 0;
  }
  volatile uint64_t sink = Touch(**file);
  (void)sink;
  return 0;
}
