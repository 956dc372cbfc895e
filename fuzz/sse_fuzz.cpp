// libFuzzer target for the remote client's parsers: the event stream parser
// (any bytes, split anywhere, must give the same events as in one piece;
// lines stay bounded) and the OpenAI JSON readers (every event's data as a
// chunk, the input as a model list and as an error body: a value or a
// status, never a crash or an exception).
//   ./build/fuzz/fuzz/sse_fuzz -max_total_time=60 fuzz/corpus/sse
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "runtime/remote/openai_json.h"
#include "runtime/remote/sse.h"

namespace {

using yuan::remote::SseEvent;
using yuan::remote::SseParser;

bool Same(const std::vector<SseEvent>& a, const std::vector<SseEvent>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].type != b[i].type || a[i].data != b[i].data || a[i].id != b[i].id) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte seeds the split pattern; the rest is the stream.
  const uint8_t seed = data[0];
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);

  constexpr size_t kLimit = 4096;  // small, so the limit path is reached too
  SseParser whole(kLimit);
  std::vector<SseEvent> a;
  const bool whole_ok = whole.Feed(in, &a).ok();

  SseParser split(kLimit);
  std::vector<SseEvent> b;
  bool split_ok = true;
  size_t at = 0;
  uint32_t state = seed * 2654435761u + 1;
  while (at < in.size() && split_ok) {
    state = state * 1103515245u + 12345u;
    const size_t n = std::min<size_t>(in.size() - at, 1 + (state >> 16) % 17);
    split_ok = split.Feed(in.substr(at, n), &b).ok();
    at += n;
  }
  // Both fail at the same byte or neither does; events up to there agree.
  if (whole_ok != split_ok) abort();
  if (whole_ok && !Same(a, b)) abort();
  if (whole_ok && (whole.retry_ms() != split.retry_ms() ||
                   whole.last_event_id() != split.last_event_id())) {
    abort();
  }

  for (const SseEvent& ev : a) {
    if (ev.data.size() > kLimit + 1) abort();
    auto chunk = yuan::remote::ParseCompletionChunk(ev.data);
    if (chunk.ok() && chunk->text.size() > ev.data.size()) abort();
  }
  (void)yuan::remote::ParseCompletionChunk(in);
  (void)yuan::remote::ParseModelList(in);
  (void)yuan::remote::StatusFromHttpError(400 + seed, in, "fuzz");
  (void)yuan::remote::SanitizeUtf8(in);
  return 0;
}
