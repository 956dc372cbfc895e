// The GGUF reader on hostile input: one case per class of malformed file, each
// built by changing one field of a valid file, then a seeded mutation run.
// Every failure must be a FormatError whose message names the problem.
#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>

#include "runtime/core/status.h"
#include "runtime/model/gguf.h"
#include "runtime/model/gguf_dump.h"
#include "runtime/model/gguf_writer.h"
#include "tests/common/test_support.h"
#include "tests/model/gguf_bytes.h"

namespace yuan {
namespace {

using ::Catch::Matchers::Contains;
using testing::GgufBytes;

constexpr uint32_t kF32 = 0;
constexpr uint32_t kQ8_0 = 8;

// Parses `bytes`, requires a FormatError and returns its message.
std::string FormatErrorOf(const std::vector<uint8_t>& bytes) {
  auto file = GgufFile::FromBuffer(bytes.data(), bytes.size());
  REQUIRE_FALSE(file.ok());
  INFO(file.status().ToString());
  CHECK(IsFormatError(file.status()));
  return std::string(file.status().message());
}

bool Parses(const std::vector<uint8_t>& bytes) {
  auto file = GgufFile::FromBuffer(bytes.data(), bytes.size());
  INFO(file.status().ToString());
  return file.ok();
}

// A valid file around one tensor info: header, general.architecture, the
// info, padding, and `data_bytes` of tensor data.
std::vector<uint8_t> OneTensor(const std::vector<int64_t>& ne, uint32_t type, uint64_t offset,
                               size_t data_bytes, const std::string& name = "w") {
  GgufBytes b;
  b.Header(1, 1).Key("general.architecture", GgufType::kString).Str("llama");
  b.TensorInfo(name, ne, type, offset).PadTo(32).Fill(data_bytes, 0x11);
  return b.bytes;
}

// Header plus one metadata entry whose value the caller writes with `value`.
template <typename F>
std::vector<uint8_t> OneKey(std::string_view key, GgufType type, F value) {
  GgufBytes b;
  b.Header(0, 1).Key(key, type);
  value(b);
  return b.bytes;
}

TEST_CASE("gguf malformed: the base files are valid", "[gguf][malformed]") {
  CHECK(Parses(OneTensor({32, 2}, kF32, 0, 256)));
  CHECK(Parses(OneTensor({64}, kQ8_0, 0, 68)));
  CHECK(Parses(OneKey("k", GgufType::kUint32, [](GgufBytes& b) { b.U32(7); })));
}

TEST_CASE("gguf malformed: bad magic", "[gguf][malformed]") {
  std::vector<uint8_t> bytes = OneTensor({32}, kF32, 0, 128);
  bytes[3] = 'L';  // "GGUL"
  CHECK_THAT(FormatErrorOf(bytes), Contains("bad magic 'GGUL'") && Contains("not a GGUF file"));
  const std::string text = "{\"model_type\": \"llama\"}";
  CHECK_THAT(FormatErrorOf({text.begin(), text.end()}), Contains("bad magic"));
}

TEST_CASE("gguf malformed: truncated files", "[gguf][malformed]") {
  GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddStringArray("tokens", {"a", "bb", "ccc"});
  w.AddFloat32Array("scores", {1, 2, 3});
  const std::vector<float> v(64, 1.0f);
  w.AddTensorF32("a", DType::kF32, {16}, v.data());
  w.AddTensorF32("b", DType::kQ8_0, {64}, v.data());
  const std::vector<uint8_t> full = w.Serialize();
  auto f = GgufFile::FromBuffer(full.data(), full.size());
  REQUIRE(f.ok());
  const GgufTensor& last = (*f)->tensors().back();
  const size_t needed = (*f)->data_offset() + last.offset + last.n_bytes;

  // Every cut before the last tensor byte is an error; none crashes.
  for (size_t len = 0; len < needed; ++len) {
    INFO("length " << len);
    std::vector<uint8_t> cut(full.begin(), full.begin() + len);
    auto r = GgufFile::FromBuffer(cut.data(), cut.size());
    REQUIRE_FALSE(r.ok());
    CHECK(IsFormatError(r.status()));
  }
  CHECK_THAT(FormatErrorOf({full.begin(), full.begin() + 2}), Contains("truncated"));
  CHECK_THAT(FormatErrorOf({full.begin(), full.begin() + 20}),
             Contains("truncated") && Contains("n_kv"));
  std::vector<uint8_t> one_key =
      OneKey("general.architecture", GgufType::kString, [](GgufBytes& b) { b.Str("llama"); });
  one_key.resize(one_key.size() - 3);
  CHECK_THAT(FormatErrorOf(one_key),
             Contains("general.architecture") && Contains("string length 5"));
  CHECK_THAT(FormatErrorOf({full.begin(), full.begin() + needed - 1}),
             Contains("tensor 'b'") && Contains("extends past the end"));
  // Padding after the last tensor is optional.
  CHECK(Parses({full.begin(), full.begin() + needed}));

  auto none = GgufFile::FromBuffer(nullptr, 0);
  REQUIRE_FALSE(none.ok());
  CHECK(IsFormatError(none.status()));

  const std::string empty = testing::TempDir() + "/empty.gguf";
  std::ofstream(empty).close();
  auto opened = GgufFile::Open(empty);
  CHECK(IsFormatError(opened.status()));
  CHECK(absl::IsNotFound(GgufFile::Open(testing::TempDir() + "/absent.gguf").status()));
}

TEST_CASE("gguf malformed: unsupported versions and byte order", "[gguf][malformed]") {
  GgufBytes v1;
  v1.Header(0, 0, 1);
  CHECK_THAT(FormatErrorOf(v1.bytes), Contains("version 1 is not supported"));
  GgufBytes v4;
  v4.Header(0, 0, 4);
  CHECK_THAT(FormatErrorOf(v4.bytes), Contains("unsupported GGUF version 4"));
  // A big-endian v3 file: the same magic, then 00 00 00 03.
  GgufBytes be;
  be.Raw("GGUF", 4).Raw("\0\0\0\3", 4).Fill(16);
  CHECK_THAT(FormatErrorOf(be.bytes), Contains("big-endian"));
}

TEST_CASE("gguf malformed: absurd counts", "[gguf][malformed]") {
  GgufBytes kv;
  kv.Header(0, 1ull << 62).Fill(64);
  CHECK_THAT(FormatErrorOf(kv.bytes), Contains("n_kv 4611686018427387904") &&
                                          Contains("larger than the remaining 64 bytes"));
  GgufBytes tensors;
  tensors.Header(std::numeric_limits<uint64_t>::max(), 0).Fill(64);
  CHECK_THAT(FormatErrorOf(tensors.bytes), Contains("n_tensors"));
  GgufBytes few;  // just over what 100 bytes can hold
  few.Header(0, 8).Fill(100);
  CHECK_THAT(FormatErrorOf(few.bytes), Contains("n_kv 8"));
}

TEST_CASE("gguf malformed: absurd string lengths", "[gguf][malformed]") {
  GgufBytes key;
  key.Header(0, 1).U64(1ull << 63).Fill(32);
  CHECK_THAT(FormatErrorOf(key.bytes),
             Contains("string length 9223372036854775808") && Contains("key of metadata entry #0"));
  auto value =
      OneKey("general.name", GgufType::kString, [](GgufBytes& b) { b.U64(1000).Raw("short", 5); });
  CHECK_THAT(FormatErrorOf(value), Contains("string length 1000") && Contains("general.name"));
  GgufBytes name;
  name.Header(1, 0).U64(std::numeric_limits<uint64_t>::max()).Fill(40);
  CHECK_THAT(FormatErrorOf(name.bytes), Contains("string length") && Contains("name of tensor #0"));
}

TEST_CASE("gguf malformed: absurd array lengths", "[gguf][malformed]") {
  // count * 4 overflows 64 bits
  auto ints = OneKey("ids", GgufType::kArray,
                     [](GgufBytes& b) { b.Type(GgufType::kUint32).U64((1ull << 62) + 1).U32(1); });
  CHECK_THAT(FormatErrorOf(ints), Contains("ids") && Contains("array length 4611686018427387905"));
  auto strings = OneKey("tokenizer.ggml.tokens", GgufType::kArray, [](GgufBytes& b) {
    b.Type(GgufType::kString).U64(1000000).Str("a").Str("b");
  });
  CHECK_THAT(FormatErrorOf(strings),
             Contains("tokenizer.ggml.tokens") && Contains("array length 1000000 of string"));
  auto arrays = OneKey("nest", GgufType::kArray,
                       [](GgufBytes& b) { b.Type(GgufType::kArray).U64(1ull << 40); });
  CHECK_THAT(FormatErrorOf(arrays), Contains("array length"));
  // A plausible count whose last element is cut off.
  auto cut = OneKey("tokens", GgufType::kArray, [](GgufBytes& b) {
    b.Type(GgufType::kString).U64(3).Str("a").Str("b").U64(50).Raw("c", 1);
  });
  CHECK_THAT(FormatErrorOf(cut), Contains("array element 2") && Contains("string length 50"));
}

TEST_CASE("gguf malformed: arrays nested too deep", "[gguf][malformed]") {
  auto nested = [](int depth) {
    return OneKey("deep", GgufType::kArray, [depth](GgufBytes& b) {
      for (int i = 1; i < depth; ++i) b.Type(GgufType::kArray).U64(1);
      b.Type(GgufType::kUint8).U64(1).U8(9);
    });
  };
  CHECK(Parses(nested(4)));
  CHECK_THAT(FormatErrorOf(nested(5)), Contains("deep") && Contains("nested deeper than 4"));
  CHECK_THAT(FormatErrorOf(nested(200)), Contains("nested deeper"));
}

TEST_CASE("gguf malformed: invalid metadata value types", "[gguf][malformed]") {
  auto bad = OneKey("k", static_cast<GgufType>(13), [](GgufBytes& b) { b.U32(0); });
  CHECK_THAT(FormatErrorOf(bad),
             Contains("metadata key 'k'") && Contains("invalid value type id 13"));
  auto bad_elem = OneKey("arr", GgufType::kArray, [](GgufBytes& b) { b.U32(99).U64(0); });
  CHECK_THAT(FormatErrorOf(bad_elem),
             Contains("arr") && Contains("invalid array element type id 99"));
}

TEST_CASE("gguf malformed: duplicate and empty keys", "[gguf][malformed]") {
  GgufBytes dup;
  dup.Header(0, 3);
  dup.Key("general.name", GgufType::kString).Str("a");
  dup.Key("other", GgufType::kUint8).U8(1);
  dup.Key("general.name", GgufType::kUint32).U32(2);
  CHECK_THAT(FormatErrorOf(dup.bytes), Contains("duplicate metadata key 'general.name'"));
  auto empty = OneKey("", GgufType::kUint8, [](GgufBytes& b) { b.U8(1); });
  CHECK_THAT(FormatErrorOf(empty), Contains("empty key"));
}

TEST_CASE("gguf malformed: bad general.alignment", "[gguf][malformed]") {
  for (uint32_t a : {0u, 3u, 48u}) {
    auto bytes = OneKey("general.alignment", GgufType::kUint32, [a](GgufBytes& b) { b.U32(a); });
    CHECK_THAT(FormatErrorOf(bytes),
               Contains("general.alignment") && Contains("not a power of two"));
  }
  auto wide = OneKey("general.alignment", GgufType::kUint64, [](GgufBytes& b) { b.U64(32); });
  CHECK_THAT(FormatErrorOf(wide),
             Contains("general.alignment") && Contains("uint64") && Contains("expected uint32"));
  // A valid non-default alignment applies to the data offset and the tensor offsets.
  GgufBytes ok;
  ok.Header(1, 1).Key("general.alignment", GgufType::kUint32).U32(256);
  ok.TensorInfo("w", {32}, kF32, 0).PadTo(256).Fill(128);
  auto f = GgufFile::FromBuffer(ok.bytes.data(), ok.bytes.size());
  REQUIRE(f.ok());
  CHECK((*f)->data_offset() == 256);
}

TEST_CASE("gguf malformed: n_dims above 4", "[gguf][malformed]") {
  CHECK(Parses(OneTensor({32, 1, 1, 1}, kF32, 0, 128)));
  CHECK_THAT(FormatErrorOf(OneTensor({32, 1, 1, 1, 1}, kF32, 0, 128)),
             Contains("tensor 'w'") && Contains("n_dims 5 is more than 4"));
  GgufBytes huge;
  huge.Header(1, 0).Str("t").U32(0xffffffff).Fill(64);
  CHECK_THAT(FormatErrorOf(huge.bytes), Contains("n_dims 4294967295"));
}

TEST_CASE("gguf malformed: zero, negative and overflowing dims", "[gguf][malformed]") {
  CHECK_THAT(FormatErrorOf(OneTensor({32, 0}, kF32, 0, 128)),
             Contains("tensor 'w'") && Contains("ne[1] = 0 is not positive"));
  CHECK_THAT(FormatErrorOf(OneTensor({-32, 2}, kF32, 0, 256)),
             Contains("tensor 'w'") && Contains("ne[0] = -32 is not positive"));
  CHECK_THAT(FormatErrorOf(OneTensor({1ll << 32, 1ll << 32}, kF32, 0, 128)),
             Contains("tensor 'w'") && Contains("element count overflows"));
  // The element count fits in int64 but its f32 byte size (2^64) does not.
  CHECK_THAT(FormatErrorOf(OneTensor({1ll << 31, 1ll << 31}, kF32, 0, 128)),
             Contains("tensor 'w'") && Contains("byte size overflows"));
}

TEST_CASE("gguf malformed: ne[0] not a multiple of the block size", "[gguf][malformed]") {
  CHECK_THAT(FormatErrorOf(OneTensor({33, 2}, kQ8_0, 0, 256)),
             Contains("tensor 'w'") && Contains("ne[0] = 33") &&
                 Contains("not a multiple of the block size 32") && Contains("q8_0"));
}

TEST_CASE("gguf malformed: invalid tensor type ids", "[gguf][malformed]") {
  for (uint32_t id : {4u, 31u, 99u, 0xffffffffu}) {  // 4 was Q4_2, removed from ggml
    CHECK_THAT(FormatErrorOf(OneTensor({32}, id, 0, 128, "blk.0.attn_q.weight")),
               Contains("tensor 'blk.0.attn_q.weight'") &&
                   Contains("unknown tensor type id " + std::to_string(id)));
  }
}

TEST_CASE("gguf malformed: misaligned and overflowing tensor offsets", "[gguf][malformed]") {
  CHECK_THAT(FormatErrorOf(OneTensor({8}, kF32, 16, 128)),
             Contains("tensor 'w'") && Contains("offset 16 is not a multiple of the alignment 32"));
  const uint64_t wrap = std::numeric_limits<uint64_t>::max() - 31;  // aligned, wraps when added
  CHECK_THAT(FormatErrorOf(OneTensor({8}, kF32, wrap, 128)),
             Contains("tensor 'w'") && Contains("extends past the end"));
}

TEST_CASE("gguf malformed: tensor data past the end of the file", "[gguf][malformed]") {
  CHECK(Parses(OneTensor({32, 2}, kF32, 0, 256)));
  CHECK_THAT(FormatErrorOf(OneTensor({32, 2}, kF32, 0, 255)),
             Contains("tensor 'w'") && Contains("256 bytes extends past the end of the file"));
  CHECK_THAT(FormatErrorOf(OneTensor({32, 2}, kF32, 1ull << 40, 256)),
             Contains("extends past the end"));
}

TEST_CASE("gguf malformed: duplicate tensor names", "[gguf][malformed]") {
  GgufBytes b;
  b.Header(2, 0).TensorInfo("w", {8}, kF32, 0).TensorInfo("w", {8}, kF32, 32).PadTo(32).Fill(64);
  CHECK_THAT(FormatErrorOf(b.bytes), Contains("duplicate tensor name 'w'"));
}

TEST_CASE("gguf malformed: overlapping tensors", "[gguf][malformed]") {
  GgufBytes b;
  b.Header(2, 0).TensorInfo("a", {16}, kF32, 0).TensorInfo("b", {8}, kF32, 32).PadTo(32).Fill(96);
  CHECK_THAT(FormatErrorOf(b.bytes), Contains("'a' and 'b' overlap"));
}

TEST_CASE("gguf malformed: names with control bytes are escaped in messages", "[gguf][malformed]") {
  CHECK_THAT(FormatErrorOf(OneTensor({33}, kQ8_0, 0, 128, std::string("a\nb\0c", 5))),
             Contains("tensor 'a\\x0ab\\x00c'"));
}

// ---- mutation run ----------------------------------------------------------

// Parses `bytes` and, when that works, reads everything a caller could: every
// tensor byte, every getter, every array element, the dump. Under ASan this
// turns any out-of-bounds view into a failure.
void ParseAndTouch(const std::vector<uint8_t>& bytes, int* ok_count) {
  auto parsed = GgufFile::FromBuffer(bytes.data(), bytes.size());
  if (!parsed.ok()) {
    if (!IsFormatError(parsed.status())) FAIL("not a format error: " << parsed.status());
    return;
  }
  ++*ok_count;
  const GgufFile& f = **parsed;
  uint64_t sum = 0;
  for (const GgufTensor& t : f.tensors()) {
    for (uint64_t i = 0; i < t.n_bytes; ++i) sum += t.data[i];
    sum += static_cast<uint64_t>(f.FindTensor(t.name) != nullptr);
  }
  for (const GgufKv& kv : f.metadata()) {
    (void)f.GetInt(kv.key);
    (void)f.GetFloat(kv.key);
    (void)f.GetBool(kv.key);
    (void)f.GetString(kv.key);
    const GgufValue& v = kv.value;
    if (v.type == GgufType::kArray) {
      for (uint64_t i = 0; i < v.array_size && i < 64; ++i) {
        sum += static_cast<uint64_t>(v.ArrayInt(i)) + static_cast<uint64_t>(v.ArrayFloat(i) != 0);
      }
      for (std::string_view s : v.strings) sum += s.empty() ? 0 : static_cast<uint8_t>(s.back());
    } else if (v.type == GgufType::kString && !v.str.empty()) {
      sum += static_cast<uint8_t>(v.str.back());
    }
  }
  std::ostringstream out;
  DumpGguf(f, out);
  sum += out.str().size();
  CHECK(sum != 0);
}

std::vector<uint8_t> Mutate(const std::vector<uint8_t>& base, std::mt19937_64& rng) {
  std::vector<uint8_t> b = base;
  auto pos = [&](size_t n) { return static_cast<size_t>(rng() % (n == 0 ? 1 : n)); };
  const int n_edits = 1 + static_cast<int>(rng() % 3);
  for (int e = 0; e < n_edits && !b.empty(); ++e) {
    switch (rng() % 7) {
      case 0:  // flip a bit
        b[pos(b.size())] ^= static_cast<uint8_t>(1u << (rng() % 8));
        break;
      case 1:  // random byte
        b[pos(b.size())] = static_cast<uint8_t>(rng());
        break;
      case 2:  // truncate
        b.resize(pos(b.size()));
        break;
      case 3: {  // overwrite 1-8 bytes with 0xFF (a huge count or length)
        const size_t at = pos(b.size());
        for (size_t i = at; i < b.size() && i < at + 1 + rng() % 8; ++i) b[i] = 0xff;
        break;
      }
      case 4: {  // insert a run of 0xFF
        const size_t at = pos(b.size());
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), 1 + rng() % 16, 0xff);
        break;
      }
      case 5: {  // a plausible-looking u64 in a count field: n_tensors or n_kv
        const size_t at = rng() % 2 ? 8 : 16;
        uint64_t v = rng() % 4 == 0 ? rng() : rng() % 64;
        for (size_t i = 0; i < 8 && at + i < b.size(); ++i)
          b[at + i] = static_cast<uint8_t>(v >> (8 * i));
        break;
      }
      case 6: {  // delete a span
        const size_t at = pos(b.size());
        const size_t n = std::min(b.size() - at, static_cast<size_t>(1 + rng() % 16));
        b.erase(b.begin() + static_cast<std::ptrdiff_t>(at),
                b.begin() + static_cast<std::ptrdiff_t>(at + n));
        break;
      }
    }
  }
  return b;
}

TEST_CASE("gguf malformed: 5000 seeded mutations never crash", "[gguf][malformed][mutation]") {
  GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddUint32("llama.block_count", 2);
  w.AddFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.AddBool("flag", true);
  w.AddUint64("big", 1ull << 40);
  w.AddStringArray("tokenizer.ggml.tokens", {"<unk>", "<s>", "a", "bc"});
  w.AddFloat32Array("tokenizer.ggml.scores", {0, 0, -1, -2});
  w.AddInt32Array("tokenizer.ggml.token_type", {2, 3, 1, 1});
  const std::vector<float> v(64, 0.25f);
  w.AddTensorF32("a", DType::kF32, {8, 2}, v.data());
  w.AddTensorF32("b", DType::kQ8_0, {32, 2}, v.data());
  w.AddTensorF32("c", DType::kF16, {4}, v.data());
  const std::vector<uint8_t> from_writer = w.Serialize();

  GgufBytes nested;  // types the writer cannot produce
  nested.Header(1, 3);
  nested.Key("n", GgufType::kArray).Type(GgufType::kArray).U64(2);
  nested.Type(GgufType::kInt16).U64(2).Le<int16_t>(-1).Le<int16_t>(2);
  nested.Type(GgufType::kString).U64(1).Str("x");
  nested.Key("u8s", GgufType::kArray).Type(GgufType::kUint8).U64(3).U8(1).U8(2).U8(3);
  nested.Key("f64", GgufType::kFloat64).Le<double>(0.5);
  nested.TensorInfo("t", {32}, kQ8_0, 0).PadTo(32).Fill(34, 1);

  std::mt19937_64 rng(20240601);
  int ok_count = 0;
  const std::vector<uint8_t>* bases[] = {&from_writer, &nested.bytes};
  for (const std::vector<uint8_t>* base : bases) {
    REQUIRE(Parses(*base));
    for (int i = 0; i < 2500; ++i) ParseAndTouch(Mutate(*base, rng), &ok_count);
  }
  // Some mutations land in tensor data or padding and leave a valid file.
  CHECK(ok_count > 0);
  CHECK(ok_count < 5000);
}

}  // namespace
}  // namespace yuan
