// Issue 4, item 5: while generating with an mmapped model, resident memory
// grows by no more than the file size + the KV cache + 64 MiB. A loader that
// copied or dequantized the weights, or scratch buffers that scale with the
// vocabulary or the context, would break it.
#include <catch2/catch.hpp>
#include <malloc.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "runtime/engine/engine.h"
#include "tests/common/test_support.h"

namespace yuan {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

// VmRSS or VmHWM of this process in bytes (0 if /proc is unavailable).
uint64_t ProcStatusBytes(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(key) + ":";
  while (std::getline(f, line)) {
    if (line.rfind(prefix, 0) == 0) return std::stoull(line.substr(prefix.size())) * 1024;
  }
  return 0;
}

TEST_CASE("resident memory while generating stays within file + KV cache + 64 MiB", "[engine]") {
  if (testing::TimeScale() > 1) {
    // ASan keeps freed blocks in quarantine and adds shadow memory and
    // redzones to every allocation: RSS would measure the sanitizer.
    WARN("skipped under sanitizers");
    return;
  }
  // ~79 MB of F16 weights: big enough that a second copy of them would not
  // hide inside the 64 MiB allowance.
  testing::RandomModelSpec spec;
  spec.n_vocab = 8000;
  spec.n_embd = 512;
  spec.n_layer = 8;
  spec.n_head = 8;
  spec.n_head_kv = 4;
  spec.n_ff = 2048;
  spec.n_ctx = 512;
  spec.weight_type = DType::kF16;
  const std::string path = testing::WriteRandomLlamaModel(spec, "memory.gguf");
  const uint64_t file_bytes = std::filesystem::file_size(path);
  REQUIRE(file_bytes > 64 * kMiB);

  // Writing the model allocated and freed a few hundred MB; hand it back to
  // the kernel so that the engine's allocations count as growth instead of
  // reusing already-resident heap pages.
  malloc_trim(0);
  const uint64_t before = ProcStatusBytes("VmRSS");
  if (before == 0) {
    WARN("skipped: no /proc/self/status");
    return;
  }
  // Let VmHWM restart from here, when the kernel allows it; otherwise the
  // samples below are the measurement.
  std::ofstream clear_refs("/proc/self/clear_refs");
  const bool peak_reset = static_cast<bool>(clear_refs << "5" << std::flush);

  uint64_t peak = before;
  uint64_t kv_bytes = 0;
  {
    EngineOptions o;
    o.model_path = path;
    o.n_threads = 2;
    auto engine = Engine::Open(o);
    REQUIRE(engine.ok());
    auto session = Session::Create(*engine, 0);
    REQUIRE(session.ok());
    const ModelConfig& c = (*engine)->model().config();
    kv_bytes = uint64_t{2} * c.n_layer * (*session)->n_ctx() * c.n_head_kv * c.head_dim *
               ((*engine)->kv_type() == DType::kF32 ? 4 : 2);

    GenerateRequest req;
    req.prompt = "the and a the and";
    req.sampling.temperature = 0.0f;
    req.ignore_eos = true;
    req.max_tokens = 16;
    req.on_token = [&](std::string_view, int32_t, int32_t) {
      peak = std::max(peak, ProcStatusBytes("VmRSS"));
      return true;
    };
    GenerateResult result;
    REQUIRE((*session)->Generate(req, &result).ok());
    CHECK(result.completion_tokens == 16);
    peak = std::max(peak, ProcStatusBytes("VmRSS"));
    if (peak_reset) peak = std::max(peak, ProcStatusBytes("VmHWM"));
  }

  const uint64_t growth = peak - before;
  const uint64_t limit = file_bytes + kv_bytes + 64 * kMiB;
  INFO("RSS before " << before / kMiB << " MiB, peak " << peak / kMiB << " MiB, growth "
                     << growth / kMiB << " MiB; file " << file_bytes / kMiB << " MiB + KV "
                     << kv_bytes / kMiB << " MiB + 64 MiB = " << limit / kMiB << " MiB");
  CHECK(growth <= limit);
  // Generating touched the weights, so the measurement saw them: a growth
  // far below the file size would mean the probe missed the mapping.
  CHECK(growth >= file_bytes / 2);
}

}  // namespace
}  // namespace yuan
