// GGUF reader, writer and dump on valid files: writer -> reader round trips of
// every metadata type and every computable tensor type, the real
// stories260K model, and the dump text.
#include "runtime/model/gguf.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>

#include "runtime/core/dtype.h"
#include "runtime/core/status.h"
#include "runtime/model/gguf_dump.h"
#include "runtime/model/gguf_writer.h"
#include "tests/common/test_support.h"
#include "tests/model/gguf_bytes.h"

namespace yuan {
namespace {

using ::Catch::Matchers::Contains;
using testing::GgufBytes;

// `bytes` must outlive the result: the file points into them.
std::unique_ptr<GgufFile> ParseOk(const std::vector<uint8_t>& bytes) {
  auto file = GgufFile::FromBuffer(bytes.data(), bytes.size());
  INFO(file.status().ToString());
  REQUIRE(file.ok());
  return std::move(file).value();
}

std::vector<float> RandomFloats(size_t n, uint64_t seed, float stddev = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

TEST_CASE("gguf: every metadata type round-trips through the writer", "[gguf]") {
  GgufWriter w;
  w.AddUint8("t.u8", 255);
  w.AddInt8("t.i8", -128);
  w.AddUint16("t.u16", 65535);
  w.AddInt16("t.i16", -32768);
  w.AddUint32("t.u32", 4294967295u);
  w.AddInt32("t.i32", std::numeric_limits<int32_t>::min());
  w.AddUint64("t.u64", std::numeric_limits<uint64_t>::max());
  w.AddUint64("t.u64_small", 12345);
  w.AddInt64("t.i64", std::numeric_limits<int64_t>::min());
  w.AddFloat32("t.f32", 3.25f);
  w.AddFloat64("t.f64", -1.0e300);
  w.AddBool("t.true", true);
  w.AddBool("t.false", false);
  const std::string with_nul("a\0b", 3);
  w.AddString("t.str", "hello, 世界 👋");
  w.AddString("t.empty", "");
  w.AddString("t.nul", with_nul);
  w.AddStringArray("t.strs", {"x", "", "▁the", with_nul});
  w.AddFloat32Array("t.f32s", {1.5f, -0.0f, 1e-30f, std::numeric_limits<float>::infinity()});
  w.AddInt32Array("t.i32s", {0, -1, std::numeric_limits<int32_t>::max()});
  w.AddInt32Array("t.no_ints", {});

  const std::vector<uint8_t> bytes = w.Serialize();
  auto f = ParseOk(bytes);
  CHECK(f->version() == 3);
  CHECK(f->alignment() == 32);
  CHECK(f->tensors().empty());
  REQUIRE(f->metadata().size() == 20);
  CHECK(f->metadata()[0].key == "t.u8");  // file order is kept
  CHECK(f->metadata()[19].key == "t.no_ints");

  CHECK(f->Find("t.u8")->type == GgufType::kUint8);
  CHECK(*f->GetInt("t.u8") == 255);
  CHECK(*f->GetInt("t.i8") == -128);
  CHECK(*f->GetInt("t.u16") == 65535);
  CHECK(*f->GetInt("t.i16") == -32768);
  CHECK(*f->GetInt("t.u32") == 4294967295ll);
  CHECK(*f->GetInt("t.i32") == std::numeric_limits<int32_t>::min());
  CHECK(f->Find("t.u64")->u == std::numeric_limits<uint64_t>::max());
  CHECK(*f->GetInt("t.u64_small") == 12345);
  CHECK(*f->GetInt("t.i64") == std::numeric_limits<int64_t>::min());
  CHECK(*f->GetFloat("t.f32") == 3.25);
  CHECK(*f->GetFloat("t.f64") == -1.0e300);
  CHECK(*f->GetFloat("t.u32") == 4294967295.0);  // floats accept any numeric type
  CHECK(*f->GetBool("t.true") == true);
  CHECK(*f->GetBool("t.false") == false);
  CHECK(*f->GetString("t.str") == "hello, 世界 👋");
  CHECK(*f->GetString("t.empty") == "");
  CHECK(*f->GetString("t.nul") == with_nul);

  const GgufValue* strs = f->Find("t.strs");
  REQUIRE(strs != nullptr);
  CHECK(strs->type == GgufType::kArray);
  CHECK(strs->elem_type == GgufType::kString);
  REQUIRE(strs->array_size == 4);
  REQUIRE(strs->strings.size() == 4);
  CHECK(strs->strings[0] == "x");
  CHECK(strs->strings[1] == "");
  CHECK(strs->strings[2] == "▁the");
  CHECK(strs->strings[3] == with_nul);

  const GgufValue* f32s = f->Find("t.f32s");
  REQUIRE(f32s->elem_type == GgufType::kFloat32);
  REQUIRE(f32s->array_size == 4);
  CHECK(f32s->ArrayFloat(0) == 1.5);
  CHECK(std::signbit(f32s->ArrayFloat(1)));
  CHECK(f32s->ArrayFloat(2) == static_cast<double>(1e-30f));
  CHECK(std::isinf(f32s->ArrayFloat(3)));

  const GgufValue* i32s = f->Find("t.i32s");
  REQUIRE(i32s->elem_type == GgufType::kInt32);
  REQUIRE(i32s->array_size == 3);
  CHECK(i32s->ArrayInt(0) == 0);
  CHECK(i32s->ArrayInt(1) == -1);
  CHECK(i32s->ArrayInt(2) == std::numeric_limits<int32_t>::max());
  CHECK(i32s->ArrayFloat(1) == -1.0);
  CHECK(i32s->ArrayInt(3) == 0);  // out of range reads as 0, never past the array
  CHECK(f->Find("t.no_ints")->array_size == 0);
}

TEST_CASE("gguf: getters report absence, defaults and type mismatches", "[gguf]") {
  GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddUint32("llama.block_count", 5);
  w.AddUint64("big", std::numeric_limits<uint64_t>::max());
  w.AddBool("flag", true);
  w.AddInt32Array("ints", {1, 2});
  const std::vector<uint8_t> bytes = w.Serialize();
  auto f = ParseOk(bytes);

  CHECK(absl::IsNotFound(f->GetInt("missing").status()));
  CHECK(f->Find("missing") == nullptr);
  CHECK(*f->GetInt("missing", 7) == 7);
  CHECK(*f->GetFloat("missing", 0.5) == 0.5);
  CHECK(*f->GetBool("missing", true) == true);
  CHECK(*f->GetString("missing", "dflt") == "dflt");
  CHECK(*f->GetInt("llama.block_count", 7) == 5);

  auto s = f->GetInt("general.architecture");
  REQUIRE(IsFormatError(s.status()));
  CHECK_THAT(std::string(s.status().message()),
             Contains("general.architecture") && Contains("string") && Contains("integer"));
  // A wrong type is an error even when a default is given.
  CHECK(IsFormatError(f->GetInt("general.architecture", 1).status()));
  auto b = f->GetBool("llama.block_count");
  REQUIRE(IsFormatError(b.status()));
  CHECK_THAT(std::string(b.status().message()),
             Contains("llama.block_count") && Contains("uint32") && Contains("bool"));
  auto str = f->GetString("ints", "x");
  REQUIRE(IsFormatError(str.status()));
  CHECK_THAT(std::string(str.status().message()), Contains("int32[2]") && Contains("string"));
  CHECK(IsFormatError(f->GetFloat("flag").status()));
  auto big = f->GetInt("big");
  REQUIRE(IsFormatError(big.status()));
  CHECK_THAT(std::string(big.status().message()), Contains("does not fit"));
}

// The writer cannot express nested arrays or arrays of most scalar types, so
// this file is built by hand: one array of every element type.
TEST_CASE("gguf: arrays of every element type, nested arrays, and v2 files", "[gguf]") {
  for (uint32_t version : {2u, 3u}) {
    GgufBytes b;
    b.Header(0, 13, version);
    b.Key("a.u8", GgufType::kArray).Type(GgufType::kUint8).U64(2).U8(0).U8(255);
    b.Key("a.i8", GgufType::kArray).Type(GgufType::kInt8).U64(2).U8(0x80).U8(0x7f);
    b.Key("a.u16", GgufType::kArray).Type(GgufType::kUint16).U64(1).Le<uint16_t>(65535);
    b.Key("a.i16", GgufType::kArray).Type(GgufType::kInt16).U64(1).Le<int16_t>(-300);
    b.Key("a.u32", GgufType::kArray).Type(GgufType::kUint32).U64(1).U32(4000000000u);
    b.Key("a.i32", GgufType::kArray).Type(GgufType::kInt32).U64(1).Le<int32_t>(-5);
    b.Key("a.f32", GgufType::kArray).Type(GgufType::kFloat32).U64(1).Le<float>(0.25f);
    b.Key("a.bool", GgufType::kArray).Type(GgufType::kBool).U64(2).U8(1).U8(0);
    b.Key("a.u64", GgufType::kArray).Type(GgufType::kUint64).U64(1).U64(1ull << 40);
    b.Key("a.i64", GgufType::kArray).Type(GgufType::kInt64).U64(1).Le<int64_t>(-(1ll << 40));
    b.Key("a.f64", GgufType::kArray).Type(GgufType::kFloat64).U64(1).Le<double>(-2.5);
    b.Key("a.str", GgufType::kArray).Type(GgufType::kString).U64(2).Str("p").Str("qq");
    // [[1, 2], [["deep"]]]: an array of two arrays of different element types.
    b.Key("a.nested", GgufType::kArray).Type(GgufType::kArray).U64(2);
    b.Type(GgufType::kUint16).U64(2).Le<uint16_t>(1).Le<uint16_t>(2);
    b.Type(GgufType::kArray).U64(1).Type(GgufType::kString).U64(1).Str("deep");

    auto f = ParseOk(b.bytes);
    CHECK(f->version() == version);
    CHECK(f->Find("a.u8")->ArrayInt(1) == 255);
    CHECK(f->Find("a.i8")->ArrayInt(0) == -128);
    CHECK(f->Find("a.i8")->ArrayInt(1) == 127);
    CHECK(f->Find("a.u16")->ArrayInt(0) == 65535);
    CHECK(f->Find("a.i16")->ArrayInt(0) == -300);
    CHECK(f->Find("a.u32")->ArrayInt(0) == 4000000000ll);
    CHECK(f->Find("a.i32")->ArrayInt(0) == -5);
    CHECK(f->Find("a.f32")->ArrayFloat(0) == 0.25);
    CHECK(f->Find("a.bool")->ArrayInt(0) == 1);
    CHECK(f->Find("a.bool")->ArrayInt(1) == 0);
    CHECK(f->Find("a.u64")->ArrayInt(0) == (1ll << 40));
    CHECK(f->Find("a.i64")->ArrayInt(0) == -(1ll << 40));
    CHECK(f->Find("a.f64")->ArrayFloat(0) == -2.5);
    CHECK(f->Find("a.f64")->ArrayInt(0) == -2);
    REQUIRE(f->Find("a.str")->strings.size() == 2);
    CHECK(f->Find("a.str")->strings[1] == "qq");

    const GgufValue* nested = f->Find("a.nested");
    CHECK(nested->elem_type == GgufType::kArray);
    REQUIRE(nested->nested.size() == 2);
    CHECK(nested->nested[0].elem_type == GgufType::kUint16);
    CHECK(nested->nested[0].ArrayInt(1) == 2);
    REQUIRE(nested->nested[1].nested.size() == 1);
    REQUIRE(nested->nested[1].nested[0].strings.size() == 1);
    CHECK(nested->nested[1].nested[0].strings[0] == "deep");

    std::ostringstream dump;
    DumpGguf(*f, dump);
    INFO(dump.str());
    CHECK_THAT(dump.str(), Contains("array[2]") && Contains("a.nested = [[1, 2], [[\"deep\"]]]"));
    CHECK_THAT(dump.str(), Contains("a.i8 = [-128, 127]") && Contains("a.bool = [true, false]") &&
                               Contains("a.u32 = [4000000000]") && Contains("a.f64 = [-2.5]"));
  }
}

TEST_CASE("gguf: every computable tensor type round-trips through the writer", "[gguf]") {
  // Shapes exercise 1-D to 4-D and sizes that need padding.
  struct Case {
    DType type;
    std::vector<int64_t> ne;
    float tolerance;  // relative to the largest |x| in the tensor
  };
  const std::vector<Case> quantized = {
      {DType::kF32, {7}, 0.0f},
      {DType::kF32, {3, 5, 2, 2}, 0.0f},
      {DType::kF16, {64, 3}, 1e-3f},
      {DType::kBF16, {16, 2, 3}, 8e-3f},
      {DType::kQ8_0, {64, 5}, 1.0f / 127},
      {DType::kQ4_0, {32, 7}, 1.0f / 7},
  };
  GgufWriter w;
  w.AddString("general.architecture", "test");
  std::vector<std::vector<float>> values;
  for (size_t i = 0; i < quantized.size(); ++i) {
    int64_t n = 1;
    for (int64_t d : quantized[i].ne) n *= d;
    values.push_back(RandomFloats(static_cast<size_t>(n), i + 1));
    w.AddTensorF32("q." + std::to_string(i), quantized[i].type, quantized[i].ne, values[i].data());
  }
  // The K-quants have no quantizer here; their blocks go through as raw bytes.
  std::vector<uint8_t> q4k(2 * sizeof(BlockQ4_K)), q6k(3 * sizeof(BlockQ6_K));
  for (size_t i = 0; i < q4k.size(); ++i) q4k[i] = static_cast<uint8_t>(i * 7 + 1);
  for (size_t i = 0; i < q6k.size(); ++i) q6k[i] = static_cast<uint8_t>(i * 13 + 5);
  w.AddTensor("k.q4_k", DType::kQ4_K, {256, 2}, q4k.data(), q4k.size());
  w.AddTensor("k.q6_k", DType::kQ6_K, {768}, q6k.data(), q6k.size());
  // A type yuan cannot compute with still loads (so `yuan inspect` works).
  std::vector<uint8_t> q3k(110);
  w.AddTensor("k.q3_k", DType::kQ3_K, {256}, q3k.data(), q3k.size());

  const std::string path = testing::TempDir() + "/roundtrip.gguf";
  REQUIRE(w.WriteFile(path).ok());
  auto opened = GgufFile::Open(path);
  REQUIRE(opened.ok());
  const GgufFile& f = **opened;
  CHECK(f.path() == path);
  CHECK(f.file_size() == w.Serialize().size());
  CHECK(f.data_offset() % 32 == 0);
  REQUIRE(f.tensors().size() == quantized.size() + 3);

  for (size_t i = 0; i < quantized.size(); ++i) {
    const Case& c = quantized[i];
    INFO("tensor q." << i << " type " << DTypeName(c.type));
    const GgufTensor* t = f.FindTensor("q." + std::to_string(i));
    REQUIRE(t != nullptr);
    CHECK(t->type == c.type);
    CHECK(t->n_dims == static_cast<int>(c.ne.size()));
    for (size_t d = 0; d < 4; ++d) CHECK(t->ne[d] == (d < c.ne.size() ? c.ne[d] : 1));
    CHECK(t->offset % 32 == 0);
    CHECK(t->data == f.tensors()[0].data + (t->offset - f.tensors()[0].offset));
    const int64_t cols = c.ne[0];
    CHECK(t->n_bytes == *RowBytes(c.type, cols) * (t->n_elements() / cols));
    std::vector<float> back(static_cast<size_t>(t->n_elements()));
    const uint64_t row_bytes = *RowBytes(c.type, cols);
    for (int64_t r = 0; r < t->n_elements() / cols; ++r) {
      DequantizeRow(c.type, t->data + r * row_bytes, back.data() + r * cols, cols);
    }
    float amax = 0.0f, err = 0.0f;
    for (size_t k = 0; k < back.size(); ++k) {
      amax = std::max(amax, std::fabs(values[i][k]));
      err = std::max(err, std::fabs(values[i][k] - back[k]));
    }
    CHECK(err <= c.tolerance * amax);
  }
  const GgufTensor* t4 = f.FindTensor("k.q4_k");
  REQUIRE(t4 != nullptr);
  CHECK(t4->n_bytes == q4k.size());
  CHECK(std::memcmp(t4->data, q4k.data(), q4k.size()) == 0);
  const GgufTensor* t6 = f.FindTensor("k.q6_k");
  REQUIRE(t6 != nullptr);
  CHECK(t6->n_bytes == q6k.size());
  CHECK(std::memcmp(t6->data, q6k.data(), q6k.size()) == 0);
  CHECK(f.FindTensor("k.q3_k")->type == DType::kQ3_K);
  CHECK(f.FindTensor("absent") == nullptr);
}

TEST_CASE("gguf: writer alignment, key replacement and empty files", "[gguf]") {
  GgufWriter w;
  w.SetAlignment(64);
  w.AddUint32("n", 1);
  w.AddUint32("n", 2);  // replaces, as gguf_set_* does
  const std::vector<float> v = RandomFloats(10, 3);
  w.AddTensorF32("a", DType::kF32, {10}, v.data());
  w.AddTensorF32("b", DType::kF32, {10}, v.data());
  const std::vector<uint8_t> bytes = w.Serialize();
  auto f = ParseOk(bytes);
  CHECK(f->alignment() == 64);
  CHECK(*f->GetInt("general.alignment") == 64);
  CHECK(*f->GetInt("n") == 2);
  CHECK(f->metadata().size() == 2);
  CHECK(f->data_offset() % 64 == 0);
  CHECK(f->FindTensor("a")->offset == 0);
  CHECK(f->FindTensor("b")->offset == 64);  // 40 bytes padded to 64
  CHECK(f->file_size() == f->data_offset() + 128);

  // Header only: no metadata, no tensors.
  const std::vector<uint8_t> empty_bytes = GgufWriter().Serialize();
  auto empty = ParseOk(empty_bytes);
  CHECK(empty->metadata().empty());
  CHECK(empty->tensors().empty());
}

TEST_CASE("gguf: WriteFile refuses tensors whose bytes do not match their shape", "[gguf]") {
  const std::string dir = testing::TempDir();
  const std::vector<float> v(64, 1.0f);
  GgufWriter bad_shape;
  bad_shape.AddTensorF32("t", DType::kQ8_0, {33}, v.data());  // 33 is not a multiple of 32
  absl::Status s = bad_shape.WriteFile(dir + "/bad_shape.gguf");
  CHECK(absl::IsInvalidArgument(s));
  CHECK_THAT(std::string(s.message()), Contains("'t'"));

  GgufWriter bad_size;
  bad_size.AddTensor("u", DType::kF32, {4}, v.data(), 12);
  CHECK(absl::IsInvalidArgument(bad_size.WriteFile(dir + "/bad_size.gguf")));

  GgufWriter bad_alignment;
  bad_alignment.SetAlignment(48);
  CHECK(absl::IsInvalidArgument(bad_alignment.WriteFile(dir + "/bad_alignment.gguf")));

  CHECK(!GgufWriter().WriteFile(dir + "/no/such/dir/x.gguf").ok());
}

TEST_CASE("gguf: the random llama test model parses", "[gguf]") {
  testing::RandomModelSpec spec;
  spec.weight_type = DType::kQ8_0;
  const std::vector<uint8_t> bytes = testing::RandomLlamaModel(spec).Serialize();
  auto f = ParseOk(bytes);
  CHECK(*f->GetString("general.architecture") == "llama");
  CHECK(f->tensors().size() == 3 + 9 * static_cast<size_t>(spec.n_layer));
  CHECK(f->FindTensor("blk.1.ffn_down.weight")->type == DType::kQ8_0);
  CHECK(f->FindTensor("blk.1.ffn_down.weight")->ne[0] == spec.n_ff);
}

TEST_CASE("gguf: the real stories260K model parses", "[gguf][shared]") {
  const std::string path = testing::SharedModel("stories260K.gguf");
  if (path.empty()) return;
  auto opened = GgufFile::Open(path);
  REQUIRE(opened.ok());
  const GgufFile& f = **opened;
  CHECK(f.version() == 3);
  CHECK(f.alignment() == 32);
  CHECK(f.metadata().size() == 19);
  CHECK(*f.GetString("general.architecture") == "llama");
  CHECK(*f.GetInt("llama.embedding_length") == 64);
  CHECK(*f.GetInt("llama.block_count") == 5);
  CHECK(*f.GetInt("llama.feed_forward_length") == 172);
  CHECK(*f.GetInt("llama.attention.head_count") == 8);
  CHECK(*f.GetInt("llama.attention.head_count_kv") == 4);
  CHECK(*f.GetInt("llama.context_length") == 512);
  CHECK(*f.GetFloat("llama.attention.layer_norm_rms_epsilon") == Approx(1e-5));
  CHECK(*f.GetString("tokenizer.ggml.model") == "llama");
  const GgufValue* tokens = f.Find("tokenizer.ggml.tokens");
  REQUIRE(tokens != nullptr);
  CHECK(tokens->elem_type == GgufType::kString);
  CHECK(tokens->array_size == 512);
  REQUIRE(tokens->strings.size() == 512);
  CHECK(tokens->strings[1] == "<s>");
  CHECK(f.Find("tokenizer.ggml.scores")->array_size == 512);
  CHECK(f.Find("tokenizer.ggml.token_type")->ArrayInt(0) == 2);  // <unk> is UNKNOWN

  REQUIRE(f.tensors().size() == 48);  // embd, output norm, output, 9 per block
  struct Shape {
    const char* name;
    int n_dims;
    int64_t ne0, ne1;
  };
  for (const Shape& s :
       {Shape{"token_embd.weight", 2, 64, 512}, Shape{"output.weight", 2, 64, 512},
        Shape{"output_norm.weight", 1, 64, 1}, Shape{"blk.0.attn_q.weight", 2, 64, 64},
        Shape{"blk.0.attn_k.weight", 2, 64, 32}, Shape{"blk.4.ffn_gate.weight", 2, 64, 172},
        Shape{"blk.4.ffn_down.weight", 2, 172, 64}}) {
    INFO(s.name);
    const GgufTensor* t = f.FindTensor(s.name);
    REQUIRE(t != nullptr);
    CHECK(t->type == DType::kF32);
    CHECK(t->n_dims == s.n_dims);
    CHECK(t->ne[0] == s.ne0);
    CHECK(t->ne[1] == s.ne1);
    CHECK(t->n_bytes == static_cast<uint64_t>(s.ne0 * s.ne1 * 4));
  }
  int64_t params = 0;
  for (const GgufTensor& t : f.tensors()) params += t.n_elements();
  CHECK(params == 292800);
  // The data is really there: a norm weight is a sane float.
  float w0;
  std::memcpy(&w0, f.FindTensor("output_norm.weight")->data, sizeof w0);
  CHECK(std::isfinite(w0));
}

// The strongest check that the writer's layout is llama.cpp's: rewriting the
// llama.cpp-converted model key by key and tensor by tensor gives the same bytes.
TEST_CASE("gguf: the writer reproduces llama.cpp's bytes for stories260K", "[gguf][shared]") {
  const std::string path = testing::SharedModel("stories260K.gguf");
  if (path.empty()) return;
  auto opened = GgufFile::Open(path);
  REQUIRE(opened.ok());
  const GgufFile& f = **opened;
  GgufWriter w;
  for (const GgufKv& kv : f.metadata()) {
    const GgufValue& v = kv.value;
    switch (v.type) {
      case GgufType::kString:
        w.AddString(kv.key, v.str);
        break;
      case GgufType::kUint32:
        w.AddUint32(kv.key, static_cast<uint32_t>(v.u));
        break;
      case GgufType::kFloat32:
        w.AddFloat32(kv.key, static_cast<float>(v.f));
        break;
      case GgufType::kArray:
        if (v.elem_type == GgufType::kString) {
          w.AddStringArray(kv.key, std::vector<std::string>(v.strings.begin(), v.strings.end()));
        } else if (v.elem_type == GgufType::kFloat32) {
          std::vector<float> x;
          for (uint64_t i = 0; i < v.array_size; ++i)
            x.push_back(static_cast<float>(v.ArrayFloat(i)));
          w.AddFloat32Array(kv.key, x);
        } else {
          REQUIRE(v.elem_type == GgufType::kInt32);
          std::vector<int32_t> x;
          for (uint64_t i = 0; i < v.array_size; ++i)
            x.push_back(static_cast<int32_t>(v.ArrayInt(i)));
          w.AddInt32Array(kv.key, x);
        }
        break;
      default:
        FAIL("unexpected type " << GgufTypeName(v.type));
    }
  }
  for (const GgufTensor& t : f.tensors()) {
    std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    w.AddTensor(t.name, t.type, ne, t.data, t.n_bytes);
  }
  const std::vector<uint8_t> ours = w.Serialize();
  REQUIRE(ours.size() == f.file_size());
  const uint8_t* theirs = f.tensors()[0].data - f.data_offset() - f.tensors()[0].offset;
  CHECK(std::memcmp(ours.data(), theirs, ours.size()) == 0);
}

TEST_CASE("gguf: dump shows header, metadata and the tensor table", "[gguf]") {
  GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddString("quote", "say \"hi\"\n\x01");
  w.AddString("long", std::string(200, 'x'));
  w.AddString("zh", "中文\xff");  // valid UTF-8 is kept, an invalid byte escaped
  w.AddUint32("llama.block_count", 5);
  w.AddFloat32("eps", 1e-5f);
  w.AddBool("flag", true);
  w.AddStringArray("tokens", {"<unk>", "<s>", "a", "b", "c", "d", "e", "f", "g", "h"});
  w.AddInt32Array("ids", {1, -2, 3});
  const std::vector<float> v(64 * 3, 0.5f);
  w.AddTensorF32("token_embd.weight", DType::kF32, {64, 3}, v.data());
  w.AddTensorF32("blk.0.attn_q.weight", DType::kQ8_0, {64, 3}, v.data());
  const std::vector<uint8_t> bytes = w.Serialize();
  auto f = ParseOk(bytes);
  std::ostringstream out;
  DumpGguf(*f, out);
  const std::string text = out.str();
  INFO(text);
  CHECK_THAT(text, Contains("GGUF v3") && Contains("2 tensors") && Contains("9 metadata keys") &&
                       Contains("alignment 32") &&
                       Contains("file size " + std::to_string(bytes.size())));
  CHECK_THAT(text, Contains("general.architecture = \"llama\""));
  CHECK_THAT(text, Contains("quote = \"say \\\"hi\\\"\\n\\x01\""));
  CHECK_THAT(text, Contains("\"...(200 bytes)"));
  CHECK_THAT(text, Contains("zh = \"中文\\xff\""));
  CHECK_THAT(text, Contains("uint32") && Contains("llama.block_count = 5"));
  CHECK_THAT(text, Contains("eps = 1e-05"));
  CHECK_THAT(text, Contains("flag = true"));
  CHECK_THAT(text, Contains("string[10]") && Contains("tokens = [\"<unk>\", \"<s>\", \"a\"") &&
                       Contains(", ...]"));
  CHECK_THAT(text, Contains("int32[3]") && Contains("ids = [1, -2, 3]"));
  CHECK_THAT(text, Contains("token_embd.weight") && Contains("[64, 3]") && Contains("q8_0"));
  CHECK_THAT(text, Contains("total: 384 parameters"));
}

}  // namespace
}  // namespace yuan
