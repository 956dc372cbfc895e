// yuan_make_bench_model SIZE TYPE OUT.gguf: writes one of the fixed-shape
// benchmark models of docs/performance.md (issue 4): a llama-architecture
// GGUF with a 32000-token SentencePiece vocabulary and random normal weights
// (std 0.02, fixed seed), so anyone can compare yuan with llama.cpp on the
// same file. Run through bench/make-bench-models.sh.
//
//   SIZE  0.3b: n_embd 1024, 16 layers, 16 heads, 4 KV heads, n_ff 2816
//         1b:   n_embd 2048, 16 layers, 32 heads, 8 KV heads, n_ff 5632
//         0.5b: Qwen2.5-0.5B's shapes (in the llama architecture, without
//               its q/k/v biases): n_embd 896, 24 layers, 14 heads, 2 KV
//               heads, n_ff 4864, a 151936-token vocabulary and the head
//               tied to the token embeddings (no output.weight); not in
//               issue 4's set: the shape of the small models products
//               embed, whose rows of 896 values are not whole k-quant blocks
//   TYPE  f16:  every matrix F16
//         q8_0: every matrix Q8_0
//         q4_0: every matrix Q4_0 except output.weight Q6_K (llama-quantize's
//               default Q4_0 mix)
//         q4_k: every matrix Q4_K except output.weight Q6_K (close to
//               llama-quantize's Q4_K_S, which also puts a few early
//               ffn_down/attn_v tensors in Q5_K); not in issue 4's set,
//               for the k-quant kernels
//         q5_k: every matrix Q5_K except output.weight Q6_K (llama-quantize's
//               Q5_K_S); not in issue 4's set either
//         q5_0: every matrix Q5_0 except output.weight Q6_K (llama-quantize's
//               Q5_0 mix; also its fallback for Q4_K in rows that are not
//               whole 256-value blocks)
//         q4_1, q5_1: likewise (Q5_1 is the fallback for Q5_K)
//         q3_k, q2_k: every matrix Q3_K (Q2_K) except output.weight Q6_K
//               (close to llama-quantize's Q3_K_S and Q2_K mixes, which
//               put a few tensors in wider types)
//         iq4_nl: every matrix IQ4_NL except output.weight Q6_K (the
//               fallback for Q2_K/Q3_K in rows that are not whole
//               256-value blocks)
//         iq4_xs: every matrix IQ4_XS except output.weight Q6_K
//         q4_k_m: llama-quantize's Q4_K_M mix: Q6_K for the output (or the
//               tied token embeddings) and for attn_v and ffn_down in the
//               layers its use_more_bits picks (the first and last eighth,
//               every third between), Q4_K for the rest
//         q5_k_m: llama-quantize's Q5_K_M mix: q4_k_m's with Q5_K for the
//               rest (bench-0.5b-q5_k_m is then mostly Q5_1, as
//               Qwen2.5-0.5B's Q5_K_M file is)
// In every type a k-quant tensor whose rows are not whole 256-value blocks
// (0.5b's rows of 896) is written as llama-quantize writes it: Q4_K as
// Q5_0, Q5_K as Q5_1, Q6_K as Q8_0, Q2_K/Q3_K/IQ4_XS as IQ4_NL (so
// bench-0.5b-q4_k_m is mostly Q5_0, as Qwen2.5-0.5B's Q4_K_M file is).
// Norm weights are 1.0 in F32.
//
// yuan_make_bench_model lora BASE.gguf RANK OUT.yadp: a random rank-RANK
// LoRA adapter on all seven projections of every layer of BASE (the LoRA
// cost benchmark, bench/lora-cost.sh).
// The values are the same for every type
// (rounded to f16 first, as llama-quantize would read them from the F16
// file), so the files differ only in how they are quantized.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

#include "runtime/core/dtype.h"
#include "runtime/model/gguf_writer.h"
#include "runtime/adapter/adapter.h"
#include "runtime/model/model.h"
#include "tests/common/random_adapter.h"
#include "tests/common/test_support.h"

namespace yuan {
namespace {

struct BenchShape {
  const char* size;   // command-line name and file-name part
  const char* label;  // general.size_label
  int n_embd, n_layer, n_head, n_head_kv, n_ff;
  int n_vocab = 32000;
  bool tied = false;  // no output.weight: the head is token_embd
};
constexpr BenchShape kShapes[] = {
    {"0.3b", "0.3B", 1024, 16, 16, 4, 2816},
    {"1b", "1B", 2048, 16, 32, 8, 5632},
    {"0.5b", "0.5B", 896, 24, 14, 2, 4864, 151936, true},
};

struct BenchType {
  const char* name;
  DType matrix;     // every 2-D weight but output.weight
  DType output;     // output.weight (or token_embd.weight, tied)
  int32_t ftype;    // general.file_type (llama.cpp's llama_ftype)
  bool k_mix = false;  // llama-quantize's Q4_K_M / Q5_K_M choices (TensorType)
};
constexpr BenchType kTypes[] = {
    {"f16", DType::kF16, DType::kF16, 1},
    {"q8_0", DType::kQ8_0, DType::kQ8_0, 7},
    {"q4_0", DType::kQ4_0, DType::kQ6_K, 2},
    {"q4_k", DType::kQ4_K, DType::kQ6_K, 14},  // LLAMA_FTYPE_MOSTLY_Q4_K_S
    {"q5_k", DType::kQ5_K, DType::kQ6_K, 16},  // LLAMA_FTYPE_MOSTLY_Q5_K_S
    {"q5_0", DType::kQ5_0, DType::kQ6_K, 8},   // LLAMA_FTYPE_MOSTLY_Q5_0
    {"q4_1", DType::kQ4_1, DType::kQ6_K, 3},   // LLAMA_FTYPE_MOSTLY_Q4_1
    {"q5_1", DType::kQ5_1, DType::kQ6_K, 9},   // LLAMA_FTYPE_MOSTLY_Q5_1
    {"q3_k", DType::kQ3_K, DType::kQ6_K, 11},  // LLAMA_FTYPE_MOSTLY_Q3_K_S
    {"q2_k", DType::kQ2_K, DType::kQ6_K, 10},  // LLAMA_FTYPE_MOSTLY_Q2_K
    {"iq4_nl", DType::kIQ4_NL, DType::kQ6_K, 25},  // LLAMA_FTYPE_MOSTLY_IQ4_NL
    {"iq4_xs", DType::kIQ4_XS, DType::kQ6_K, 30},  // LLAMA_FTYPE_MOSTLY_IQ4_XS
    {"q4_k_m", DType::kQ4_K, DType::kQ6_K, 15, true},  // LLAMA_FTYPE_MOSTLY_Q4_K_M
    {"q5_k_m", DType::kQ5_K, DType::kQ6_K, 17, true},  // LLAMA_FTYPE_MOSTLY_Q5_K_M
};

// llama-quantize's replacement for a k-quant whose rows are not whole
// 256-value blocks.
DType Fallback(DType t, int64_t cols) {
  if (cols % kQK_K == 0) return t;
  switch (t) {
    case DType::kQ2_K:
    case DType::kQ3_K:
    case DType::kIQ4_XS: return DType::kIQ4_NL;
    case DType::kQ4_K: return DType::kQ5_0;
    case DType::kQ5_K: return DType::kQ5_1;
    case DType::kQ6_K: return DType::kQ8_0;
    default: return t;
  }
}

// llama-quantize's use_more_bits: the layers of a Q4_K_M or Q5_K_M file whose attn_v
// and ffn_down get Q6_K.
bool UseMoreBits(int layer, int n_layer) {
  return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

// The type of tensor `name` (rows of `cols` values) in a file of `type`.
DType TensorType(const BenchType& type, const BenchShape& shape, const std::string& name, int64_t cols) {
  const bool head = name == "output.weight" || (shape.tied && name == "token_embd.weight");
  if (!type.k_mix) return Fallback(head ? type.output : type.matrix, cols);
  DType t = type.matrix;
  if (head) {
    t = type.output;
  } else if (name.ends_with("attn_v.weight") || name.ends_with("ffn_down.weight")) {
    const int layer = std::atoi(name.c_str() + 4);  // "blk.N."
    if (UseMoreBits(layer, shape.n_layer)) t = DType::kQ6_K;
  }
  return Fallback(t, cols);
}

constexpr uint64_t kSeed = 0x59554131;  // "YUA1"

// splitmix64: turns (tensor, row) into well-mixed seeds for the row RNGs.
uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// xoshiro256+: a few cycles per 64 bits; the top 24 bits feed floats.
class FastRng {
 public:
  explicit FastRng(uint64_t seed) {
    for (uint64_t& s : s_) s = SplitMix64(&seed);
  }
  uint64_t Next() {
    const uint64_t result = s_[0] + s_[3];
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = (s_[3] << 45) | (s_[3] >> 19);
    return result;
  }

 private:
  uint64_t s_[4];
};

// Standard normal samples by Marsaglia and Tsang's ziggurat (128 layers):
// about 99% of draws cost one random number, a compare and a multiply, where
// Box-Muller costs a log and a sincos per pair (it was the largest cost of
// writing a file). Unlike the original, the layer index and the value come
// from different bits of the draw (sharing them is a known flaw).
class Ziggurat {
 public:
  Ziggurat() {
    const double m1 = 2147483648.0;  // 2^31: hz is a signed 32-bit integer
    const double v = 9.91256303526217e-3;  // area of each layer
    double dn = kR, tn = dn;
    const double q = v / std::exp(-0.5 * dn * dn);
    kn_[0] = static_cast<uint32_t>((dn / q) * m1);
    kn_[1] = 0;
    wn_[0] = q / m1;
    wn_[127] = dn / m1;
    fn_[0] = 1.0;
    fn_[127] = std::exp(-0.5 * dn * dn);
    for (int i = 126; i >= 1; --i) {
      dn = std::sqrt(-2.0 * std::log(v / dn + std::exp(-0.5 * dn * dn)));
      kn_[i + 1] = static_cast<uint32_t>((dn / tn) * m1);
      tn = dn;
      fn_[i] = std::exp(-0.5 * dn * dn);
      wn_[i] = dn / m1;
    }
  }

  double Sample(FastRng* rng) const {
    for (;;) {
      const uint64_t bits = rng->Next();
      const int32_t hz = static_cast<int32_t>(bits >> 32);
      const int iz = static_cast<int>(bits & 127);
      const uint32_t az = hz < 0 ? 0u - static_cast<uint32_t>(hz) : static_cast<uint32_t>(hz);
      const double x = hz * wn_[iz];
      if (az < kn_[iz]) return x;  // inside the layer's rectangle
      if (iz == 0) {               // the tail beyond kR (Marsaglia's method)
        double tx, ty;
        do {
          tx = -std::log(Uniform(rng)) / kR;
          ty = -std::log(Uniform(rng));
        } while (ty + ty < tx * tx);
        return hz > 0 ? kR + tx : -kR - tx;
      }
      // In the wedge: accept under the density, else draw again.
      if (fn_[iz] + Uniform(rng) * (fn_[iz - 1] - fn_[iz]) < std::exp(-0.5 * x * x)) return x;
    }
  }

 private:
  static constexpr double kR = 3.442619855899;  // start of the tail
  static double Uniform(FastRng* rng) {  // (0, 1)
    return (static_cast<double>(rng->Next() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
  }
  uint32_t kn_[128];
  double wn_[128], fn_[128];
};

void FillNormal(const Ziggurat& zig, FastRng* rng, float stddev, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(stddev * zig.Sample(rng));
}

// F32 -> F16 (round to nearest even, as F32ToF16) for a row, with the F16C
// instructions where the CPU has them: the scalar conversion would be a third
// of the run time.
#if defined(__x86_64__)
__attribute__((target("avx,f16c"))) void ToF16F16c(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), h);
  }
  for (; i < n; ++i) y[i] = F32ToF16(x[i]);
}
__attribute__((target("avx,f16c"))) void FromF16F16c(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i));
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) y[i] = F16ToF32(x[i]);
}
#endif

// F16C is CPUID.1:ECX bit 29 (clang's __builtin_cpu_supports does not know
// it); the YMM registers it uses need AVX.
bool HasF16c() {
#if defined(__x86_64__)
  unsigned a, b, c, d;
  return __builtin_cpu_supports("avx") && __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) != 0;
#else
  return false;
#endif
}

void ToF16(const float* x, uint16_t* y, int64_t n) {
#if defined(__x86_64__)
  static const bool f16c = HasF16c();
  if (f16c) return ToF16F16c(x, y, n);
#endif
  for (int64_t i = 0; i < n; ++i) y[i] = F32ToF16(x[i]);
}

void FromF16(const uint16_t* x, float* y, int64_t n) {
#if defined(__x86_64__)
  static const bool f16c = HasF16c();
  if (f16c) return FromF16F16c(x, y, n);
#endif
  for (int64_t i = 0; i < n; ++i) y[i] = F16ToF32(x[i]);
}

// One matrix of `rows` x `cols`, as `type`. Row r draws from its own RNG
// stream (seeded by tensor index and r), so the bytes do not depend on how
// many threads share the work.
std::vector<uint8_t> RandomMatrix(const Ziggurat& zig, int tensor_index, DType type, int64_t cols,
                                  int64_t rows, float stddev) {
  const uint64_t row_bytes = *RowBytes(type, cols);
  std::vector<uint8_t> data(row_bytes * rows);
  const int n_threads = std::max(1u, std::thread::hardware_concurrency());
  auto work = [&](int t) {
    std::vector<float> v(cols);
    std::vector<uint16_t> h(cols);
    for (int64_t r = t; r < rows; r += n_threads) {
      uint64_t seed = kSeed ^ (static_cast<uint64_t>(tensor_index) << 40) ^ static_cast<uint64_t>(r);
      FastRng rng(SplitMix64(&seed));
      FillNormal(zig, &rng, stddev, v.data(), cols);
      uint8_t* dst = data.data() + r * row_bytes;
      if (type == DType::kF16) {
        ToF16(v.data(), reinterpret_cast<uint16_t*>(dst), cols);
      } else {  // quantize the F16 file's values
        ToF16(v.data(), h.data(), cols);
        FromF16(h.data(), v.data(), cols);
        QuantizeRow(type, v.data(), dst, cols);
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < n_threads; ++t) threads.emplace_back(work, t);
  work(0);
  for (auto& th : threads) th.join();
  return data;
}

int Usage() {
  std::fprintf(stderr,
               "usage: yuan_make_bench_model SIZE TYPE OUT.gguf\n"
               "  SIZE: 0.3b | 1b | 0.5b    TYPE: f16 | q8_0 | q4_0 | q4_1 | q5_0 | q5_1 | q4_k | q5_k | q3_k | q2_k |\n"
               "                             iq4_nl | iq4_xs | q4_k_m | q5_k_m\n"
               "       yuan_make_bench_model lora BASE.gguf RANK OUT.yadp\n");
  return 2;
}

// A random adapter for `base_path`'s shapes, fingerprinted for that file.
int MakeLora(const std::string& base_path, const std::string& rank_text, const std::string& out) {
  const int rank = std::atoi(rank_text.c_str());
  if (rank < 1 || rank > 1024) return Usage();
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Open(base_path);
  if (!model.ok()) {
    std::fprintf(stderr, "yuan_make_bench_model: %s\n", std::string(model.status().message()).c_str());
    return 1;
  }
  const ModelConfig& c = (*model)->config();
  testing::RandomModelSpec spec;
  spec.arch = c.arch;
  spec.n_embd = c.n_embd;
  spec.n_layer = c.n_layer;
  spec.n_head = c.n_head;
  spec.n_head_kv = c.n_head_kv;
  spec.n_ff = c.n_ff;
  spec.head_dim = c.head_dim;
  LoraAdapter a = testing::RandomLoraAdapter(spec, rank, kSeed, testing::kAllLoraModules, 0.02f);
  absl::Status st = FillFingerprint(**model, &a);
  if (st.ok()) st = SaveAdapter(a, out);
  if (!st.ok()) {
    std::fprintf(stderr, "yuan_make_bench_model: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  std::printf("%s: rank %d on %zu projections, %.1f MiB\n", out.c_str(), rank, a.tensors.size(),
              std::filesystem::file_size(out) / 1048576.0);
  return 0;
}

int Main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[1]) == "lora") return MakeLora(argv[2], argv[3], argv[4]);
  if (argc != 4) return Usage();
  const std::string size = argv[1], type_name = argv[2], out = argv[3];
  const BenchShape* shape = nullptr;
  for (const BenchShape& s : kShapes) {
    if (size == s.size) shape = &s;
  }
  const BenchType* type = nullptr;
  for (const BenchType& t : kTypes) {
    if (type_name == t.name) type = &t;
  }
  if (shape == nullptr) {
    std::fprintf(stderr, "yuan_make_bench_model: unknown size '%s'\n", size.c_str());
    return Usage();
  }
  if (type == nullptr) {
    std::fprintf(stderr, "yuan_make_bench_model: unknown type '%s'\n", type_name.c_str());
    return Usage();
  }
  const auto t0 = std::chrono::steady_clock::now();

  testing::RandomModelSpec spec;
  spec.n_vocab = shape->n_vocab;
  spec.tied_output = shape->tied;
  spec.n_embd = shape->n_embd;
  spec.n_layer = shape->n_layer;
  spec.n_head = shape->n_head;
  spec.n_head_kv = shape->n_head_kv;
  spec.n_ff = shape->n_ff;
  spec.n_ctx = 4096;
  spec.rope_base = 10000.0f;
  spec.rms_eps = 1e-5f;
  spec.stddev = 0.02f;
  spec.weight_type = type->matrix;

  GgufWriter w;
  testing::AddRandomModelMetadata(spec, &w);
  w.AddString("general.name", std::string("bench-") + shape->size);
  w.AddString("general.size_label", shape->label);
  w.AddUint32("general.file_type", static_cast<uint32_t>(type->ftype));
  w.AddUint32("general.quantization_version", 2);

  const Ziggurat zig;
  uint64_t n_params = 0;
  const std::vector<testing::RandomTensor> tensors = testing::RandomModelTensors(spec);
  for (size_t i = 0; i < tensors.size(); ++i) {
    const testing::RandomTensor& t = tensors[i];
    if (t.ne.size() == 1) {  // norm weights: exactly 1
      const std::vector<float> ones(t.ne[0], 1.0f);
      w.AddTensorF32(t.name, DType::kF32, t.ne, ones.data());
      n_params += t.ne[0];
      continue;
    }
    const DType dt = TensorType(*type, *shape, t.name, t.ne[0]);
    const std::vector<uint8_t> bytes =
        RandomMatrix(zig, static_cast<int>(i), dt, t.ne[0], t.ne[1], spec.stddev);
    w.AddTensor(t.name, dt, t.ne, bytes.data(), bytes.size());
    n_params += static_cast<uint64_t>(t.ne[0] * t.ne[1]);
  }

  // Write beside the target and rename, so an interrupted run never leaves
  // a truncated file that make-bench-models.sh would then skip.
  const std::string tmp = out + ".tmp";
  if (absl::Status s = w.WriteFile(tmp); !s.ok()) {
    std::fprintf(stderr, "yuan_make_bench_model: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, out, ec);
  if (ec) {
    std::fprintf(stderr, "yuan_make_bench_model: cannot rename %s to %s: %s\n", tmp.c_str(),
                 out.c_str(), ec.message().c_str());
    return 1;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s: %.1f MiB, %.1f M params, %.1f s\n", out.c_str(),
              std::filesystem::file_size(out) / 1048576.0, n_params / 1e6, secs);
  return 0;
}

}  // namespace
}  // namespace yuan

int main(int argc, char** argv) { return yuan::Main(argc, argv); }
