// Tensor element types and the ggml quantization block formats.
//
// The numeric values of DType are ggml's `ggml_type` ids, because they are
// what GGUF files store; never renumber them. Block layouts are byte-for-byte
// ggml's, so files we write run in llama.cpp and vice versa.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>

namespace yuan {

enum class DType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kMXFP4 = 39,
};

struct DTypeInfo {
  std::string_view name;  // ggml's name, e.g. "q4_0"
  int64_t block_size;     // elements per block (1 for plain types)
  int64_t type_size;      // bytes per block
  bool can_compute;       // yuan has kernels (dequantize / dot) for it
};

// Traits of a type id read from a file; nullopt for ids ggml never defined.
std::optional<DTypeInfo> GetDTypeInfo(uint32_t type_id);
std::string_view DTypeName(DType type);

// Bytes taken by `n_elements` of `type` laid out as one row; nullopt when
// n_elements is not a multiple of the block size or the size overflows.
std::optional<uint64_t> RowBytes(DType type, int64_t n_elements);

// ---- scalar conversions -------------------------------------------------

// IEEE half <-> float, exact (round-to-nearest-even on the way down).
float F16ToF32(uint16_t h);
uint16_t F32ToF16(float f);
// Table-driven F16ToF32 for hot loops (same results).
float F16ToF32Fast(uint16_t h);
inline float RoundToF16(float f) { return F16ToF32Fast(F32ToF16(f)); }

// bfloat16 is the top half of an IEEE float.
inline float BF16ToF32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  __builtin_memcpy(&f, &bits, sizeof f);
  return f;
}
uint16_t F32ToBF16(float f);  // round-to-nearest-even, NaN stays NaN

// ---- quant blocks (ggml layouts) ---------------------------------------

constexpr int kQK8_0 = 32;
struct BlockQ8_0 {
  uint16_t d;           // scale, f16
  int8_t qs[kQK8_0];    // x[i] = d * qs[i]
};
static_assert(sizeof(BlockQ8_0) == 34);

constexpr int kQK4_0 = 32;
struct BlockQ4_0 {
  uint16_t d;               // scale, f16
  uint8_t qs[kQK4_0 / 2];   // x[j] = d * ((qs[j] & 15) - 8), x[j+16] = d * ((qs[j] >> 4) - 8)
};
static_assert(sizeof(BlockQ4_0) == 18);

// Q4_1: x = d * q + m with q in [0, 15] (elements j and j + 16 in qs[j]'s
// low and high nibbles, as Q4_0).
constexpr int kQK4_1 = 32;
struct BlockQ4_1 {
  uint16_t d;               // scale, f16
  uint16_t m;               // the block's minimum, f16
  uint8_t qs[kQK4_1 / 2];
};
static_assert(sizeof(BlockQ4_1) == 20);

constexpr int kQK5_0 = 32;
struct BlockQ5_0 {
  uint16_t d;               // scale, f16
  uint8_t qh[4];            // bit j: the fifth bit of element j (little-endian uint32)
  uint8_t qs[kQK5_0 / 2];   // x[j] = d * ((qs[j] & 15 | h_j << 4) - 16), x[j+16] likewise from qs[j] >> 4
};
static_assert(sizeof(BlockQ5_0) == 22);

// Q5_1: Q4_1 with Q5_0's fifth bits, q in [0, 31].
constexpr int kQK5_1 = 32;
struct BlockQ5_1 {
  uint16_t d;               // scale, f16
  uint16_t m;               // the block's minimum, f16
  uint8_t qh[4];            // bit j: the fifth bit of element j
  uint8_t qs[kQK5_1 / 2];
};
static_assert(sizeof(BlockQ5_1) == 24);

// IQ4_NL: Q4_0's layout, but each nibble indexes kIQ4NLValues (a
// non-uniform 4-bit grid) instead of being q - 8: x = d * kIQ4NLValues[q].
// llama-quantize writes it where a Q2_K/Q3_K tensor's rows are not whole
// 256-value blocks.
constexpr int kQK4_NL = 32;
struct BlockIQ4_NL {
  uint16_t d;               // scale, f16
  uint8_t qs[kQK4_NL / 2];  // element j in qs[j]'s low nibble, j + 16 in its high one
};
static_assert(sizeof(BlockIQ4_NL) == 18);
inline constexpr int8_t kIQ4NLValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

constexpr int kQK_K = 256;

// IQ4_XS: IQ4_NL's values in 256-value super-blocks of 8 sub-blocks of 32,
// each with a 6-bit scale: x = d * (ls - 32) * kIQ4NLValues[q] (IQ4XSScale
// gives ls - 32). Sub-block ib's 32 values are qs[16 ib .. 16 ib + 15] as
// IQ4_NL's block (element j low nibble, j + 16 high); its ls is the
// (ib % 2) nibble of scales_l[ib / 2] with bits 2 ib..2 ib + 1 of scales_h
// above it.
struct BlockIQ4_XS {
  uint16_t d;  // super-block scale, f16
  uint16_t scales_h;
  uint8_t scales_l[kQK_K / 64];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockIQ4_XS) == 136);
inline int IQ4XSScale(const BlockIQ4_XS& b, int ib) {
  return (((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | ((b.scales_h >> (2 * ib)) & 3) << 4) - 32;
}

// Q2_K: 16 sub-blocks of 16 values, x = d * sc * q - dmin * m with q in
// [0, 3] and 4-bit (sc, m) per sub-block (scales[i / 16] for value i). Per
// 128 values (32 bytes of qs), value 32j + l (j < 4, l < 32) is bits
// 2j..2j+1 of qs[l].
struct BlockQ2_K {
  uint8_t scales[kQK_K / 16];  // sc in the low nibble, m in the high one
  uint8_t qs[kQK_K / 4];
  uint16_t d;     // super-block scale for the scales, f16
  uint16_t dmin;  // super-block scale for the mins, f16
};
static_assert(sizeof(BlockQ2_K) == 84);

// Q3_K: 16 sub-blocks of 16, x = d * (sc - 32) * (q - 4) with q in [0, 7]:
// the 2 low bits as Q2_K's qs, the third from hmask (value 32k + l, k < 8,
// in bit k of hmask[l]); sc 6-bit, packed (sub-block j's low 4 bits in
// scales[j] (j < 8) or scales[j - 8] >> 4, its top 2 in bits 2 * (j / 4)
// of scales[8 + j % 4]).
struct BlockQ3_K {
  uint8_t hmask[kQK_K / 8];
  uint8_t qs[kQK_K / 4];
  uint8_t scales[12];
  uint16_t d;  // super-block scale, f16
};
static_assert(sizeof(BlockQ3_K) == 110);

// Sub-block j's scale of a Q3_K block, sc - 32 in [-32, 31].
inline int Q3KScale(const uint8_t* scales, int j) {
  const int low = j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4;
  const int high = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (low | high << 4) - 32;
}

struct BlockQ4_K {
  uint16_t d;          // super-block scale for the 6-bit scales, f16
  uint16_t dmin;       // super-block scale for the 6-bit mins, f16
  uint8_t scales[12];  // 8 (scale, min) pairs, 6 bits each, packed
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 144);

// Q4_K with a fifth bit per value: q = (nibble | 16 * high bit) in [0, 31].
// Value 64k + l (l < 32) takes qs[32k + l]'s low nibble and bit 2k of qh[l];
// value 64k + 32 + l the high nibble and bit 2k + 1.
struct BlockQ5_K {
  uint16_t d;          // super-block scale for the 6-bit scales, f16
  uint16_t dmin;       // super-block scale for the 6-bit mins, f16
  uint8_t scales[12];  // 8 (scale, min) pairs, 6 bits each, packed as Q4_K's
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ5_K) == 176);

struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];      // low 4 bits
  uint8_t qh[kQK_K / 4];      // high 2 bits
  int8_t scales[kQK_K / 16];  // 16 sub-block scales, 8 bits
  uint16_t d;                 // super-block scale, f16
};
static_assert(sizeof(BlockQ6_K) == 210);

// The block struct of a quantized type: BlockOf<DType::kQ4_K> is BlockQ4_K.
template <DType T>
constexpr auto BlockTypeOf() {
  if constexpr (T == DType::kQ8_0) return std::type_identity<BlockQ8_0>{};
  else if constexpr (T == DType::kQ4_0) return std::type_identity<BlockQ4_0>{};
  else if constexpr (T == DType::kQ4_1) return std::type_identity<BlockQ4_1>{};
  else if constexpr (T == DType::kQ5_0) return std::type_identity<BlockQ5_0>{};
  else if constexpr (T == DType::kQ5_1) return std::type_identity<BlockQ5_1>{};
  else if constexpr (T == DType::kIQ4_NL) return std::type_identity<BlockIQ4_NL>{};
  else if constexpr (T == DType::kIQ4_XS) return std::type_identity<BlockIQ4_XS>{};
  else if constexpr (T == DType::kQ2_K) return std::type_identity<BlockQ2_K>{};
  else if constexpr (T == DType::kQ3_K) return std::type_identity<BlockQ3_K>{};
  else if constexpr (T == DType::kQ4_K) return std::type_identity<BlockQ4_K>{};
  else if constexpr (T == DType::kQ5_K) return std::type_identity<BlockQ5_K>{};
  else if constexpr (T == DType::kQ6_K) return std::type_identity<BlockQ6_K>{};
}
template <DType T>
using BlockOf = typename decltype(BlockTypeOf<T>())::type;

// Converts one row of `n` elements of `type` to f32. `type` must have
// can_compute and n must be a multiple of its block size (checked by callers
// when the tensor is loaded).
void DequantizeRow(DType type, const void* src, float* dst, int64_t n);

// Quantizes one row of f32 (n a multiple of the block size) with ggml's
// reference rounding (quantize_row_*_ref, no importance matrix).
// Supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, IQ4_XS, Q2_K,
// Q3_K, Q4_K, Q5_K, Q6_K;
// other types write zeros.
void QuantizeRow(DType type, const float* src, void* dst, int64_t n);

}  // namespace yuan
