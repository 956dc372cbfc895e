#include "runtime/cpu/kernels.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/cpu/matmul.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace yuan::kernels {

DType ActKind(DType weight_type) {
  switch (weight_type) {
    case DType::kQ8_0:
    case DType::kQ4_0:
    case DType::kQ4_1:
    case DType::kQ5_0:
    case DType::kQ5_1:
    case DType::kIQ4_NL:
    case DType::kIQ4_XS:  // (ggml: Q8_K; 32-value blocks are its sub-blocks)
      return DType::kQ8_0;
    case DType::kQ2_K:
    case DType::kQ3_K:
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
      return DType::kQ8_K;
    default:
      return DType::kF32;
  }
}

std::string_view IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
  }
  return "?";
}

namespace {

#if defined(__x86_64__) || defined(__i386__)
// F16C (CPUID.1:ECX bit 29); not every compiler's __builtin_cpu_supports
// knows it. It implies the OS saves YMM state only together with AVX, which
// the avx2 check covers.
bool HasF16c() {
  unsigned a, b, c, d;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) != 0;
}
#endif

}  // namespace

bool IsaSupported(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return true;
    case Isa::kAvx2:
#if defined(__x86_64__) || defined(__i386__)
      return Avx2Kernels() != nullptr && __builtin_cpu_supports("avx2") &&
             __builtin_cpu_supports("fma") && HasF16c();
#else
      return false;
#endif
    case Isa::kAvx512:
#if defined(__x86_64__) || defined(__i386__)
      return Avx512Kernels() != nullptr && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512vnni") && IsaSupported(Isa::kAvx2);
#else
      return false;
#endif
  }
  return false;
}

const KernelSet& GetKernels(Isa isa) {
  switch (isa) {
    case Isa::kAvx2: return *Avx2Kernels();
    case Isa::kAvx512: return *Avx512Kernels();
    default: return ScalarKernels();
  }
}

Isa BestIsa() {
  for (Isa isa : {Isa::kAvx512, Isa::kAvx2}) {
    if (IsaSupported(isa)) return isa;
  }
  return Isa::kScalar;
}

namespace {

Isa InitialIsa() {
  const char* env = std::getenv("YUAN_CPU_ISA");
  if (env != nullptr) {
    for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
      if (IsaName(isa) == env && IsaSupported(isa)) return isa;
    }
  }
  return BestIsa();
}

std::atomic<int> g_active{-1};

}  // namespace

const KernelSet& ActiveKernels() {
  int isa = g_active.load(std::memory_order_relaxed);
  if (isa < 0) {
    isa = static_cast<int>(InitialIsa());
    g_active.store(isa, std::memory_order_relaxed);
  }
  return GetKernels(static_cast<Isa>(isa));
}

void SetActiveIsa(Isa isa) {
  g_active.store(static_cast<int>(IsaSupported(isa) ? isa : BestIsa()), std::memory_order_relaxed);
}

namespace {

// AMX-TILE (CPUID.(7,0):EDX bit 24) and AMX-INT8 (bit 25), and the kernel's
// permission to use the tile data state (XFEATURE_XTILEDATA, 18), which
// Linux (5.16 and later) gives per process on request.
bool DetectAmx() {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__linux__) && defined(YUAN_HAVE_AVX512_KERNELS)
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  if ((d & (1u << 24)) == 0 || (d & (1u << 25)) == 0) return false;
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

std::atomic<int> g_amx{-1};  // -1: not decided yet

}  // namespace

bool AmxUsable() {
  static const bool usable = DetectAmx();
  return usable;
}

bool AmxEnabled() {
  int on = g_amx.load(std::memory_order_relaxed);
  if (on < 0) {
    const char* env = std::getenv("YUAN_CPU_AMX");
    on = AmxUsable() && !(env != nullptr && std::string_view(env) == "0");
    g_amx.store(on, std::memory_order_relaxed);
  }
  return on != 0;
}

void SetAmxEnabled(bool on) { g_amx.store(on && AmxUsable(), std::memory_order_relaxed); }

namespace {

bool CpuIsAmd() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return false;
  char vendor[12];
  std::memcpy(vendor, &b, 4);
  std::memcpy(vendor + 4, &d, 4);
  std::memcpy(vendor + 8, &c, 4);
  return std::string_view(vendor, 12) == "AuthenticAMD";
#else
  return false;
#endif
}

int64_t ClampPrefetchBytes(int64_t bytes) { return std::clamp<int64_t>(bytes, 64, 16384) / 64 * 64; }

int64_t InitialDecodePrefetchBytes() {
  if (const char* env = std::getenv("YUAN_CPU_PREFETCH_BYTES"); env != nullptr && *env != '\0') {
    return ClampPrefetchBytes(std::atoll(env));
  }
  return CpuIsAmd() ? 2048 : 3072;
}

std::atomic<int64_t> g_prefetch_bytes{-1};  // -1: not decided yet

}  // namespace

int64_t DecodePrefetchBytes() {
  int64_t bytes = g_prefetch_bytes.load(std::memory_order_relaxed);
  if (bytes < 0) {
    bytes = InitialDecodePrefetchBytes();
    g_prefetch_bytes.store(bytes, std::memory_order_relaxed);
  }
  return bytes;
}

void SetDecodePrefetchBytes(int64_t bytes) {
  g_prefetch_bytes.store(ClampPrefetchBytes(bytes), std::memory_order_relaxed);
}

std::string ActiveKernelsName() {
  const Isa isa = ActiveKernels().isa;
  std::string name(IsaName(isa));
  if (isa == Isa::kAvx512 && AmxEnabled()) name += " + AMX for prompt batches";
  return name;
}

void PrepareActs(const KernelSet& ks, Acts* x, ThreadPool* pool) {
  const int64_t T = x->n_tokens, n = x->cols;
  if (x->kind == DType::kF32) return;
  const int64_t nb = n / (x->kind == DType::kQ8_0 ? kQ8Block : kQ8KBlock);
  x->qs_buf.resize(static_cast<size_t>(T * n));
  x->d_buf.resize(static_cast<size_t>(T * nb));
  const int64_t sums_per_row = x->kind == DType::kQ8_0 ? nb : n / 16;
  x->bsums_buf.resize(static_cast<size_t>(T * sums_per_row));
  x->qs = x->qs_buf.data();
  x->d = x->d_buf.data();
  x->bsums = x->bsums_buf.data();
  auto quantize = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      int8_t* qs = x->qs_buf.data() + t * n;
      int16_t* sums = x->bsums_buf.data() + t * sums_per_row;
      if (x->kind == DType::kQ8_0) {
        ks.quantize_q8_0(x->f32 + t * n, n, qs, x->d_buf.data() + t * nb, sums);
      } else {
        ks.quantize_q8_K(x->f32 + t * n, n, qs, x->d_buf.data() + t * nb, sums);
      }
    }
  };
  if (pool != nullptr && T >= 16) {
    pool->ParallelFor(T, 4, quantize);
  } else {
    quantize(0, T);
  }
}

void MatMulRowsDequant(const MatRef& w, const Acts& x, int64_t r0, int64_t r1, float* y,
                       int64_t ldy) {
  std::vector<float> row(static_cast<size_t>(w.cols));
  const uint8_t* base = static_cast<const uint8_t*>(w.data);
  for (int64_t r = r0; r < r1; ++r) {
    DequantizeRow(w.type, base + r * w.row_bytes, row.data(), w.cols);
    for (int64_t t = 0; t < x.n_tokens; ++t) {
      const float* xr = x.f32 + t * x.cols;
      float sum = 0.0f;
      for (int64_t k = 0; k < w.cols; ++k) sum += row[k] * xr[k];
      y[t * ldy + r] = sum;
    }
  }
}

void LoraUpScalar(DType type, const void* b, int64_t rank, const float* u, float s, float* y,
                  int64_t o0, int64_t o1) {
  const auto* h = static_cast<const uint16_t*>(b);
  const auto* f = static_cast<const float*>(b);
  for (int64_t o = o0; o < o1; ++o) {
    float acc = 0.0f;
    for (int64_t r = 0; r < rank; ++r) {
      const int64_t i = LoraUpIndex(o, r, rank);
      acc = std::fma(u[r], type == DType::kF16 ? F16ToF32(h[i]) : f[i], acc);
    }
    y[o] = std::fma(s, acc, y[o]);  // fused, as the vector sets: never left to the compiler
  }
}

void LoraUpQ8Scalar(const uint8_t* b, int64_t rank4, const int8_t* u, float s, float* y, int64_t o0,
                    int64_t o1) {
  for (int64_t o = o0; o < o1; ++o) {
    int32_t acc = 0;
    for (int64_t r = 0; r < rank4; ++r) {
      acc += static_cast<int8_t>(b[LoraUpQ8Index(o, r, rank4)]) * static_cast<int32_t>(u[r]);
    }
    uint16_t d;
    std::memcpy(&d, b + LoraUpQ8Scale(o, rank4), sizeof d);
    y[o] = std::fma(s, static_cast<float>(acc) * F16ToF32(d), y[o]);
  }
}

bool CanInterleave8(DType type, int64_t rows) {
  const bool band_type = type == DType::kQ8_0 || type == DType::kQ4_0 || type == DType::kQ5_0 ||
                         type == DType::kQ4_1 || type == DType::kQ5_1;
  return band_type && rows > 0 && rows % 8 == 0;
}

namespace {

// Block b of the 8 rows of a band: row-major <-> interleaved (kernels.h).
// A row's block: the f16 scale, Q4_1's and Q5_1's f16 minimum, the Q5
// types' 4 bytes of fifth bits, the quants. A band's block: the 8 scales,
// the 8 minimums, the quants in 4-byte groups, the fifth bits.
struct BandLayout {
  int64_t min_bytes, qh_bytes, quant_bytes;
  explicit BandLayout(DType type)
      : min_bytes(type == DType::kQ4_1 || type == DType::kQ5_1 ? 2 : 0),
        qh_bytes(type == DType::kQ5_0 || type == DType::kQ5_1 ? 4 : 0),
        quant_bytes(type == DType::kQ8_0 ? 32 : 16) {}
  int64_t block_bytes() const { return 2 + min_bytes + qh_bytes + quant_bytes; }
  int64_t quants_at() const { return 8 * (2 + min_bytes); }  // in a band's block
};

// The fifth bits of a row's block (bit 4g + k: quant 4g + k's) <-> the
// band's byte k of that row (bit g: quant 4g + k's), for k < 4.
uint8_t GatherFifth(uint32_t qh, int k) {
  uint32_t x = (qh >> k) & 0x11111111u;  // bit 4g -> bit g
  x = (x | x >> 3) & 0x03030303u;
  x = (x | x >> 6) & 0x000F000Fu;
  return static_cast<uint8_t>(x | x >> 12);
}
uint32_t SpreadFifth(uint8_t byte, int k) {
  uint32_t x = byte;  // bit g -> bit 4g
  x = (x | x << 12) & 0x000F000Fu;
  x = (x | x << 6) & 0x03030303u;
  x = (x | x << 3) & 0x11111111u;
  return x << k;
}

void InterleaveBand(DType type, const uint8_t* rows, uint64_t row_bytes, int64_t nb,
                    uint8_t* band) {
  const BandLayout l(type);
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* out = band + b * 8 * l.block_bytes();
    uint8_t* quants = out + l.quants_at();
    uint8_t* fifth = quants + 8 * l.quant_bytes;
    for (int j = 0; j < 8; ++j) {
      const uint8_t* blk = rows + j * row_bytes + b * l.block_bytes();
      std::memcpy(out + 2 * j, blk, 2);
      if (l.min_bytes > 0) std::memcpy(out + 16 + 2 * j, blk + 2, 2);
      const uint8_t* qs = blk + 2 + l.min_bytes + l.qh_bytes;
      for (int64_t g = 0; g < l.quant_bytes / 4; ++g)
        std::memcpy(quants + g * 32 + 4 * j, qs + 4 * g, 4);
      if (l.qh_bytes > 0) {
        uint32_t qh;
        std::memcpy(&qh, blk + 2 + l.min_bytes, 4);
        for (int k = 0; k < 4; ++k) fifth[4 * j + k] = GatherFifth(qh, k);
      }
    }
  }
}

// Row j of a band (nb blocks) into `row`, row-major.
void DeinterleaveBandRow(DType type, const uint8_t* band, int64_t nb, int j, uint8_t* row) {
  const BandLayout l(type);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* in = band + b * 8 * l.block_bytes();
    const uint8_t* quants = in + l.quants_at();
    const uint8_t* fifth = quants + 8 * l.quant_bytes;
    uint8_t* blk = row + b * l.block_bytes();
    std::memcpy(blk, in + 2 * j, 2);
    if (l.min_bytes > 0) std::memcpy(blk + 2, in + 16 + 2 * j, 2);
    uint8_t* qs = blk + 2 + l.min_bytes + l.qh_bytes;
    for (int64_t g = 0; g < l.quant_bytes / 4; ++g)
      std::memcpy(qs + 4 * g, quants + g * 32 + 4 * j, 4);
    if (l.qh_bytes > 0) {
      uint32_t qh = 0;
      for (int k = 0; k < 4; ++k) qh |= SpreadFifth(fifth[4 * j + k], k);
      std::memcpy(blk + 2 + l.min_bytes, &qh, 4);
    }
  }
}

void DeinterleaveBand(DType type, const uint8_t* band, uint64_t row_bytes, int64_t nb,
                      uint8_t* rows) {
  for (int j = 0; j < 8; ++j) DeinterleaveBandRow(type, band, nb, j, rows + j * row_bytes);
}

}  // namespace

void Interleave8(const MatRef& w, int64_t band0, int64_t band1, uint8_t* dst) {
  const uint8_t* src = static_cast<const uint8_t*>(w.data);
  const int64_t nb = w.cols / 32;
  for (int64_t i = band0; i < band1; ++i) {
    InterleaveBand(w.type, src + i * 8 * w.row_bytes, w.row_bytes, nb, dst + i * 8 * w.row_bytes);
  }
}

void DeinterleaveRow(const MatRef& w, int64_t r, uint8_t* dst) {
  const uint8_t* band = static_cast<const uint8_t*>(w.data) + (r / 8) * 8 * w.row_bytes;
  DeinterleaveBandRow(w.type, band, w.cols / 32, static_cast<int>(r % 8), dst);
}

void MatMulRowsDeinterleaved(const KernelSet& ks, const MatRef& w, const Acts& x, int64_t r0,
                             int64_t r1, float* y, int64_t ldy) {
  // 8 bands at a time: the register tiles then meet each token's
  // activations once per 64 rows rather than per 8 (a band at a time,
  // bench-0.3b Q4_1/Q5_1 and bench-0.5b Q5_K_M pp512 ran 3-5 % slower than
  // with row-major weights; 8 at a time, as fast)
  constexpr int64_t kChunk = 64;
  std::vector<uint8_t> rows(kChunk * w.row_bytes);
  const uint8_t* src = static_cast<const uint8_t*>(w.data);
  for (int64_t r = r0; r < r1; r += kChunk) {
    const int64_t n = std::min(kChunk, r1 - r);
    for (int64_t i = 0; i < n; i += 8) {
      DeinterleaveBand(w.type, src + (r + i) * w.row_bytes, w.row_bytes, w.cols / 32,
                       rows.data() + i * w.row_bytes);
    }
    MatRef chunk{w.type, n, w.cols, rows.data(), w.row_bytes};
    ks.matmul_rows(chunk, x, 0, n, y + r, ldy);
  }
}

#if !defined(__x86_64__) && !defined(__i386__)
const KernelSet* Avx2Kernels() { return nullptr; }
#endif
#if !defined(YUAN_HAVE_AVX512_KERNELS)
const KernelSet* Avx512Kernels() { return nullptr; }
#endif

}  // namespace yuan::kernels
