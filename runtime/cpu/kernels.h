// Matrix-multiplication kernels, one set per instruction-set level.
//
// MatMul (matmul.h) prepares the activations once per call in the form the
// weight type's kernel wants, then hands bands of weight rows to the
// kernel set chosen at run time:
//
//   weights        activations            inner product
//   F32/F16/BF16   f32                    f32 FMA (weights widened in registers)
//   Q8_0/Q4_0      Q8_0-style int8 blocks int8 x int8 -> int32, scaled per block
//   Q4_1, Q5_0,    likewise (4- and 5-bit quants; IQ4_NL's nibbles looked
//   Q5_1, IQ4_NL,  up in its table, IQ4_XS's sub-blocks of 32 as IQ4_NL
//   IQ4_XS         blocks)
//   Q2_K..Q6_K     Q8_K-style int8 blocks int8 x int8 -> int32, sub-block scales
//
// which is what ggml does too, so quantized outputs differ from a
// dequantize-then-f32 product by the activation rounding (about 0.4 % of a
// block's largest value per element) and no more.
//
// Every kernel computes each output element in one fixed order of operations
// whatever tile it is computed in, so a token's result is bit-identical
// whether it is evaluated alone or inside a prompt batch, and for any thread
// count.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/core/dtype.h"
#include "runtime/core/thread_pool.h"

namespace yuan {

struct MatRef;

namespace kernels {

constexpr int kQ8Block = 32;   // Q8_0-style activation block (Q8_0, Q4_0 weights)
constexpr int kQ8KBlock = 256; // Q8_K-style activation block (k-quant weights)

// Activations of one MatMul call: n_tokens rows of `cols` values.
//
// The kernels read only the raw pointers (the per-ISA files avoid std::
// templates, whose out-of-line copies compiled with -mavx2 could otherwise be
// picked by the linker for code that runs on older CPUs).
struct Acts {
  DType kind = DType::kF32;  // kF32, kQ8_0 or kQ8_K
  int64_t n_tokens = 0;
  int64_t cols = 0;
  const float* f32 = nullptr;  // [n_tokens][cols], the caller's input
  // Quantized forms (kQ8_0, kQ8_K): x[t][i] ~= d[t][i / block] * qs[t][i].
  const int8_t* qs = nullptr;      // [n_tokens][cols]
  const float* d = nullptr;        // [n_tokens][cols / block]
  // Sums of qs: kQ8_0 one per 32-block ([n_tokens][cols / 32]), kQ8_K one
  // per 16 values ([n_tokens][cols / 16]).
  const int16_t* bsums = nullptr;
  // Storage behind the pointers, reused from call to call.
  std::vector<int8_t> qs_buf;
  std::vector<float> d_buf;
  std::vector<int16_t> bsums_buf;
};

// The activation form a weight type's kernels take.
DType ActKind(DType weight_type);

enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };
std::string_view IsaName(Isa isa);

struct KernelSet {
  Isa isa;
  // Quantizes one row of n values (n a multiple of the block) to int8 with
  // one scale per block: d = amax / 127, q = round-half-even(x / d), and
  // the sum of each block's quants (Q8_0: per 32 values; Q8_K: per 16).
  // Every kernel set produces the same bytes.
  void (*quantize_q8_0)(const float* x, int64_t n, int8_t* qs, float* d, int16_t* bsums);
  void (*quantize_q8_K)(const float* x, int64_t n, int8_t* qs, float* d, int16_t* bsums);
  // y[t * ldy + r] = W[r] . x[t] for r in [r0, r1) and every token t.
  void (*matmul_rows)(const MatRef& w, const Acts& x, int64_t r0, int64_t r1, float* y,
                      int64_t ldy);
  // LoRA's up-projection, B [out x rank] stored in blocks of 8 outputs
  // (LoraUpIndex; F16 or F32): for o in [o0, o1)
  //   y[o] += s * (u[0] B[o][0] + u[1] B[o][1] + ...)
  // the sum in r order and the update all by fused multiply-adds, so every
  // kernel set and every
  // split of the range gives the same bits. The blocks make the reads one
  // sequential stream.
  void (*lora_up)(DType type, const void* b, int64_t rank, const float* u, float s, float* y,
                  int64_t o0, int64_t o1);
  // The same with B in int8 (what a binding keeps beside a quantized base):
  // B in LoraUpQ8's blocks and the intermediate u quantized by the caller to
  // rank4 int8 values (rank rounded up to 4, zero past rank); for o in [o0, o1)
  //   y[o] = fma(s, float(qB[o][0] u[0] + qB[o][1] u[1] + ...) * d[o], y[o])
  // with the sum exact in int32 and s carrying u's scale, so again every
  // kernel set and every split gives the same bits.
  void (*lora_up_q8)(const uint8_t* b, int64_t rank4, const int8_t* u, float s, float* y,
                     int64_t o0, int64_t o1);
};

// Whether this CPU (and build) can run a kernel set.
bool IsaSupported(Isa isa);
// The kernel set for `isa`; it must be supported.
const KernelSet& GetKernels(Isa isa);
// The set MatMul uses: the best supported one, or the one named by the
// YUAN_CPU_ISA environment variable (scalar, avx2, avx512) when supported;
// changeable for tests and benchmarks with SetActiveIsa.
const KernelSet& ActiveKernels();
void SetActiveIsa(Isa isa);
Isa BestIsa();

// Intel AMX (tile registers, int8 tile products; Sapphire Rapids and
// later). The AVX-512 kernel set multiplies Q8_0/Q4_0 prompt batches in
// groups of 16 tokens with it when the CPU has AMX-TILE and AMX-INT8 and
// Linux grants the process the tile state (arch_prctl), unless the
// YUAN_CPU_AMX environment variable is 0. Same bits as without
// (BandQ8::TokensAmx). SetAmxEnabled(false) turns it off (tests,
// benchmarks); true turns it back on only where it is usable.
bool AmxUsable();
bool AmxEnabled();
void SetAmxEnabled(bool on);
// The active kernel set's name, with " + AMX for prompt batches" when the
// AVX-512 set uses it: what the benchmarks print.
std::string ActiveKernelsName();

// How the x86 kernels read a thread's rows [r0, r1) of one matrix when
// decoding a token: interleaved Q8_0/Q4_0/Q5_0/Q4_1/Q5_1 bands as four runs
// side by side, each prefetching ahead, when each run is at least
// kDecodeMinRunBytes, else two (BandQ8, BandMin in kernels_x86.h); Q6_K
// rows as kQ6KDecodeRuns runs (AVX-512), Q4_K and Q5_K rows as
// kQ4KDecodeRuns, Q2_K and Q3_K rows as kQ23KDecodeRuns; row-major Q4_1,
// Q5_0 and Q5_1 rows (matrices not interleaved), IQ4_NL and IQ4_XS rows as
// kLegacyDecodeRuns;
// F32, F16 and BF16 rows as kFloatDecodeRuns runs.
// MatMulGroup has the pool's workers read ahead the starts of the same runs.
constexpr int64_t kDecodeMinRunBytes = int64_t{64} << 10;
constexpr int kQ6KDecodeRuns = 4;
constexpr int kQ4KDecodeRuns = 4;
constexpr int kQ23KDecodeRuns = 4;
constexpr int kLegacyDecodeRuns = 4;
constexpr int kFloatDecodeRuns = 4;
// The runs a thread's `rows` interleaved rows are decoded in (BandQ8,
// BandMin), which MatMulGroup's read-ahead must match: four where each is
// at least kDecodeMinRunBytes, else two.
inline int DecodeBandRuns(int64_t rows, uint64_t row_bytes) {
  return rows * static_cast<int64_t>(row_bytes) / 4 >= kDecodeMinRunBytes ? 4 : 2;
}

// How far ahead of its loads each of those runs prefetches, in bytes. The
// best distance depends on the core: 2 KiB on AMD (on the Zen 5 VM, 3 KiB
// decoded bench-1b and bench-0.3b Q8_0 4-9 % slower) and 3 KiB elsewhere
// (on the Intel Xeon VM, 1.01-1.02x over 1.5 KiB). The
// YUAN_CPU_PREFETCH_BYTES environment variable overrides it (64 to 16384,
// rounded down to whole 64-byte lines), to tune a new machine;
// SetDecodePrefetchBytes changes it for benchmarks (same clamp). The
// prefetches are hints: results do not depend on the distance.
int64_t DecodePrefetchBytes();
void SetDecodePrefetchBytes(int64_t bytes);

// Fills x->qs / d / bsums for x->kind from x->f32 with `ks`'s quantizer,
// spreading prompt batches over `pool` when given.
void PrepareActs(const KernelSet& ks, Acts* x, ThreadPool* pool = nullptr);

// ---- weights interleaved by 8 rows -----------------------------------------
//
// A Q8_0, Q4_0, Q5_0, Q4_1 or Q5_1 matrix whose row count is a multiple of 8 can be stored
// with each band of 8 rows interleaved block by block: for block column b,
// the 8 rows' f16 scales, then their quant bytes in 4-byte groups, row after
// row ([row0 bytes 4g..4g+3][row1 ...]...[row7 ...] for each group g). One
// 32-byte load then holds 4 quants of each of 8 rows, so the x86 kernels
// compute 8 rows at once, one per vector lane, with no horizontal sums: the
// layout llama.cpp's CPU backend repacks Q4_0 into. Same size as row-major.
// Q5_0 bands hold Q4_0's layout of the low nibbles, then the fifth bits in
// 32 bytes: byte 4j + k's bit g is row j's fifth bit of quant 4g + k (the
// quant that lane 4j + k of group g's vector holds, the low nibbles of
// groups 0-3 and the high ones of 4-7), so one shift and mask per group
// puts them in place. Q4_1 and Q5_1 bands hold the 8 rows' f16 minimums
// after their scales, then Q4_0's and Q5_0's layout. A Q4_1/Q5_1 band
// gives the bits of the row-major kernels (a token alone or in a batch): its
// decoding kernel keeps their 8 partial sums per row (BandMin in
// kernels_x86.h) and batches run them on the band's rows made row-major.
bool CanInterleave8(DType type, int64_t rows);
// Writes the interleaved form of the row-major matrix `w` to `dst`
// (w.rows * w.row_bytes bytes), bands [band0, band1).
void Interleave8(const MatRef& w, int64_t band0, int64_t band1, uint8_t* dst);
// Writes row r of the interleaved matrix `w` in row-major form (w.row_bytes
// bytes) to `dst`.
void DeinterleaveRow(const MatRef& w, int64_t r, uint8_t* dst);

// Shared pieces of the kernel sets (kernels.cpp, kernels_scalar.cpp):
// weights of a type without a dedicated kernel, dequantized row by row and
// multiplied in f32 (x.kind == kF32); and Q4_K's packed 6-bit scales/mins.
void MatMulRowsDequant(const MatRef& w, const Acts& x, int64_t r0, int64_t r1, float* y,
                       int64_t ldy);
void UnpackQ4KScales(const uint8_t* packed, uint8_t* scales, uint8_t* mins);
// Where B[o][r] is in lora_up's layout: blocks of 8 outputs, each holding
// its rank rows of 8 values; ceil(out / 8) * 8 * rank elements in all (the
// last block padded).
inline int64_t LoraUpIndex(int64_t o, int64_t r, int64_t rank) { return ((o / 8) * rank + r) * 8 + o % 8; }
// lora_up one output at a time (the scalar set, and the vector sets' edges).
void LoraUpScalar(DType type, const void* b, int64_t rank, const float* u, float s, float* y,
                  int64_t o0, int64_t o1);
// lora_up_q8's layout: blocks of 8 outputs, each LoraUpQ8BlockBytes bytes:
// the 8 outputs' f16 scales d[o], then for each group g of 4 ranks 32 bytes
// holding output j's qB[o][4g..4g+3] at bytes 4j..4j+3. One 32-byte load
// then meets 4 values of u broadcast to every lane, and the 8 sums stay in
// the 8 lanes (the layout of Interleave8's bands, for B).
inline int64_t LoraUpQ8BlockBytes(int64_t rank4) { return 16 + 8 * rank4; }
inline int64_t LoraUpQ8Scale(int64_t o, int64_t rank4) { return (o / 8) * LoraUpQ8BlockBytes(rank4) + 2 * (o % 8); }
inline int64_t LoraUpQ8Index(int64_t o, int64_t r, int64_t rank4) {
  return (o / 8) * LoraUpQ8BlockBytes(rank4) + 16 + (r / 4) * 32 + (o % 8) * 4 + r % 4;
}
void LoraUpQ8Scalar(const uint8_t* b, int64_t rank4, const int8_t* u, float s, float* y, int64_t o0,
                    int64_t o1);
// An interleaved matrix through `ks` on row-major copies of its bands (for
// kernel sets without interleaved kernels). r0 and r1 are multiples of 8.
void MatMulRowsDeinterleaved(const KernelSet& ks, const MatRef& w, const Acts& x, int64_t r0,
                             int64_t r1, float* y, int64_t ldy);

// The per-ISA tables (defined in kernels_<isa>.cpp).
const KernelSet& ScalarKernels();
const KernelSet* Avx2Kernels();    // null when not built for x86-64
const KernelSet* Avx512Kernels();  // null when not built

}  // namespace kernels
}  // namespace yuan
