// The safetensors reader: round trips through SafetensorsWriter, one case per
// class of malformed file (each a FormatError naming the problem), and a
// seeded mutation run that must never crash.
#include <catch2/catch.hpp>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "runtime/core/status.h"
#include "runtime/model/safetensors.h"
#include "runtime/model/safetensors_writer.h"
#include "tests/common/test_support.h"

namespace yuan {
namespace {

using ::Catch::Matchers::Contains;

// A file from a raw header text and `data_bytes` bytes of data.
std::vector<uint8_t> Raw(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> b(8);
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(n >> (8 * i));
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), data_bytes, 0x11);
  return b;
}

// A header with one tensor entry `body` (the JSON object's members).
std::vector<uint8_t> OneTensor(const std::string& body, size_t data_bytes) {
  return Raw("{\"w\":{" + body + "}}", data_bytes);
}

std::string FormatErrorOf(const std::vector<uint8_t>& bytes) {
  auto file = SafetensorsFile::FromBuffer(bytes.data(), bytes.size());
  REQUIRE_FALSE(file.ok());
  INFO(file.status().ToString());
  CHECK(IsFormatError(file.status()));
  CHECK_THAT(std::string(file.status().message()), Contains("safetensors '<memory>': "));
  return std::string(file.status().message());
}

bool Parses(const std::vector<uint8_t>& bytes) {
  auto file = SafetensorsFile::FromBuffer(bytes.data(), bytes.size());
  INFO(file.status().ToString());
  return file.ok();
}

TEST_CASE("safetensors: every dtype round-trips", "[safetensors]") {
  const char* dtypes[] = {"F32", "F16",  "BF16", "F64",     "I8",      "I16",    "I32", "I64",
                          "U8",  "U16",  "U32",  "U64",     "BOOL",    "F8_E4M3", "F8_E5M2"};
  SafetensorsWriter w;
  std::vector<std::vector<uint8_t>> payloads;
  for (const char* dtype : dtypes) {
    const auto info = GetSafetensorsDType(dtype);
    REQUIRE(info.has_value());
    std::vector<uint8_t> bytes(static_cast<size_t>(2 * 3 * info->size));
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 7 + dtype[0]);
    w.AddTensor(std::string("t_") + dtype, dtype, {2, 3}, bytes.data(), bytes.size());
    payloads.push_back(bytes);
  }
  w.AddMetadata("format", "pt");
  w.AddMetadata("note", "\"quoted\"\n");
  const std::string path = testing::TempDir() + "/all_dtypes.safetensors";
  REQUIRE(w.WriteFile(path).ok());

  auto file = SafetensorsFile::Open(path);
  REQUIRE(file.ok());
  const SafetensorsFile& f = **file;
  CHECK(f.data_offset() % 8 == 0);  // the writer pads the header as the reference does
  CHECK(f.tensors().size() == std::size(dtypes));
  for (size_t k = 0; k < std::size(dtypes); ++k) {
    const SafetensorsTensor* t = f.Find(std::string("t_") + dtypes[k]);
    REQUIRE(t != nullptr);
    CHECK(t->dtype == dtypes[k]);
    CHECK(t->shape == std::vector<int64_t>{2, 3});
    int64_t ne[4];
    t->GgmlNe(ne);
    CHECK(ne[0] == 3);
    CHECK(ne[1] == 2);
    CHECK(ne[2] == 1);
    CHECK(t->n_elements() == 6);
    REQUIRE(t->n_bytes() == payloads[k].size());
    CHECK(std::memcmp(t->data, payloads[k].data(), payloads[k].size()) == 0);
  }
  CHECK(f.Find("t_F32")->type == DType::kF32);
  CHECK(f.Find("t_BF16")->type == DType::kBF16);
  CHECK(f.Find("t_F16")->type == DType::kF16);
  CHECK(f.Find("t_I64")->type == DType::kI64);
  CHECK_FALSE(f.Find("t_BOOL")->type.has_value());
  // Sorted by offset, i.e. the order written.
  for (size_t k = 1; k < f.tensors().size(); ++k) {
    CHECK(f.tensors()[k - 1].end <= f.tensors()[k].begin);
  }
  REQUIRE(f.metadata().size() == 2);
  CHECK(f.metadata()[0] == std::make_pair(std::string("format"), std::string("pt")));
  CHECK(f.metadata()[1].second == "\"quoted\"\n");
  CHECK(f.Find("missing") == nullptr);
}

TEST_CASE("safetensors: F32, F16 and BF16 values", "[safetensors]") {
  const std::vector<float> v = {0.0f, 1.0f, -2.5f, 0.125f, 65504.0f, -3.0e-3f};
  for (DType type : {DType::kF32, DType::kF16, DType::kBF16}) {
    SafetensorsWriter w;
    w.AddTensorF32("x", type, {3, 2}, v.data());
    w.AddTensorF32("scalar", type, {}, v.data() + 2);
    const std::vector<uint8_t> bytes = w.Serialize();
    auto f = SafetensorsFile::FromBuffer(bytes.data(), bytes.size());
    REQUIRE(f.ok());
    const SafetensorsTensor* t = (*f)->Find("x");
    REQUIRE(t != nullptr);
    REQUIRE(t->type == type);
    for (size_t i = 0; i < v.size(); ++i) {
      float got;
      if (type == DType::kF32) {
        std::memcpy(&got, t->data + 4 * i, 4);
        CHECK(got == v[i]);
      } else {
        uint16_t h;
        std::memcpy(&h, t->data + 2 * i, 2);
        got = type == DType::kF16 ? F16ToF32(h) : BF16ToF32(h);
        CHECK(got == Approx(v[i]).epsilon(type == DType::kF16 ? 1e-3 : 1e-2));
      }
    }
    const SafetensorsTensor* s = (*f)->Find("scalar");
    REQUIRE(s != nullptr);
    CHECK(s->shape.empty());
    CHECK(s->n_elements() == 1);
  }
}

TEST_CASE("safetensors malformed: the base files are valid", "[safetensors][malformed]") {
  CHECK(Parses(OneTensor(R"("dtype":"F32","shape":[2,3],"data_offsets":[0,24])", 24)));
  CHECK(Parses(Raw("{}", 0)));
  CHECK(Parses(Raw("{\"__metadata__\":{\"a\":\"b\"}}   ", 0)));
  // Empty tensors and unused bytes are allowed.
  CHECK(Parses(OneTensor(R"("dtype":"F32","shape":[0,3],"data_offsets":[4,4])", 8)));
}

TEST_CASE("safetensors malformed: header length", "[safetensors][malformed]") {
  CHECK_THAT(FormatErrorOf({1, 2, 3}), Contains("too small for the 8-byte header length"));
  std::vector<uint8_t> b = Raw("{}", 0);
  b[0] = 3;  // one byte more than there is
  CHECK_THAT(FormatErrorOf(b), Contains("header length 3 runs past the end of the file"));
  for (int i = 0; i < 8; ++i) b[i] = 0xff;
  CHECK_THAT(FormatErrorOf(b), Contains("header length 18446744073709551615 is absurd"));
  b[7] = 0;
  b[6] = 0;
  CHECK_THAT(FormatErrorOf(b), Contains("is absurd"));
  CHECK_THAT(FormatErrorOf(Raw("", 4)), Contains("does not start with '{'"));
  CHECK_THAT(FormatErrorOf(Raw("[1,2]", 4)), Contains("does not start with '{'"));
  const std::string gguf = "GGUF\x03\0\0\0";
  CHECK_THAT(FormatErrorOf(std::vector<uint8_t>(gguf.begin(), gguf.end())), Contains("header length"));
}

TEST_CASE("safetensors malformed: invalid JSON", "[safetensors][malformed]") {
  CHECK_THAT(FormatErrorOf(Raw("{\"w\":", 0)), Contains("header: invalid JSON"));
  CHECK_THAT(FormatErrorOf(Raw("{} trailing", 0)), Contains("invalid JSON"));
  CHECK_THAT(FormatErrorOf(Raw("{\"\xff\":1}", 0)), Contains("invalid JSON"));  // bad UTF-8
  CHECK_THAT(FormatErrorOf(Raw("{\"a\":1e999}", 0)), Contains("invalid JSON"));
  std::string deep(5000, '[');
  CHECK_THAT(FormatErrorOf(Raw("{\"a\":" + deep, 0)), Contains("invalid JSON"));
  deep += std::string(5000, ']') + "}";
  CHECK_THAT(FormatErrorOf(Raw("{\"a\":" + deep, 0)), Contains("tensor 'a' is a JSON array"));
}

TEST_CASE("safetensors malformed: duplicate names", "[safetensors][malformed]") {
  const std::string t = R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
  CHECK_THAT(FormatErrorOf(Raw("{\"w\":" + t + ",\"w\":" + t + "}", 4)),
             Contains("duplicate key 'w'"));
  CHECK_THAT(FormatErrorOf(OneTensor(R"("dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4])", 4)),
             Contains("duplicate key 'dtype'"));
}

TEST_CASE("safetensors malformed: entries that are not tensors", "[safetensors][malformed]") {
  CHECK_THAT(FormatErrorOf(Raw("{\"w\":3}", 0)), Contains("tensor 'w' is a JSON unsigned integer"));
  CHECK_THAT(FormatErrorOf(Raw("{\"__metadata__\":[]}", 0)), Contains("__metadata__ is a JSON array"));
  CHECK_THAT(FormatErrorOf(Raw("{\"__metadata__\":{\"k\":1}}", 0)),
             Contains("__metadata__ value 'k' is a JSON unsigned integer, expected a string"));
}

TEST_CASE("safetensors malformed: dtype", "[safetensors][malformed]") {
  CHECK_THAT(FormatErrorOf(OneTensor(R"("shape":[1],"data_offsets":[0,4])", 4)),
             Contains("tensor 'w' has no string 'dtype'"));
  CHECK_THAT(FormatErrorOf(OneTensor(R"("dtype":4,"shape":[1],"data_offsets":[0,4])", 4)),
             Contains("no string 'dtype'"));
  CHECK_THAT(FormatErrorOf(OneTensor(R"("dtype":"Q4_0","shape":[1],"data_offsets":[0,4])", 4)),
             Contains("tensor 'w' has unknown dtype 'Q4_0'"));
  CHECK_THAT(FormatErrorOf(OneTensor(R"("dtype":"f32","shape":[1],"data_offsets":[0,4])", 4)),
             Contains("unknown dtype 'f32'"));
}

TEST_CASE("safetensors malformed: shapes", "[safetensors][malformed]") {
  CHECK_THAT(FormatErrorOf(OneTensor(R"("dtype":"F32","data_offsets":[0,4])", 4)),
             Contains("tensor 'w' has no array 'shape'"));
  CHECK_THAT(FormatErrorOf(OneTensor(R"("dtype":"F32","shape":4,"data_offsets":[0,4])", 4)),
             Contains("no array 'shape'"));
  CHECK_THAT(FormatErrorOf(OneTensor(R"("dtype":"F32","shape":[1,1,1,1,1],"data_offsets":[0,4])", 4)),
             Contains("tensor 'w' has 5 dimensions (at most 4 supported)"));
  CHECK_THAT(FormatErrorOf(OneTensor(R"("dtype":"F32","shape":[-1],"data_offsets":[0,4])", 4)),
             Contains("shape[0] is a negative integer"));
  CHECK_THAT(FormatErrorOf(OneTensor(R"("dtype":"F32","shape":[1,2.0],"data_offsets":[0,8])", 8)),
             Contains("shape[1] is a float"));
  CHECK_THAT(FormatErrorOf(OneTensor(R"("dtype":"F32","shape":["1"],"data_offsets":[0,4])", 4)),
             Contains("shape[0] is a string"));
  CHECK_THAT(FormatErrorOf(OneTensor(
                 R"("dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4])", 4)),
             Contains("shape overflows 64 bits at dimension 1"));
  CHECK_THAT(FormatErrorOf(OneTensor(
                 R"("dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,4])", 4)),
             Contains("shape overflows 64 bits at dimension 0"));
  CHECK_THAT(FormatErrorOf(OneTensor(
                 R"("dtype":"F64","shape":[3000000000000000000],"data_offsets":[0,4])", 4)),
             Contains("byte size overflows 64 bits"));
}

TEST_CASE("safetensors malformed: data offsets", "[safetensors][malformed]") {
  CHECK_THAT(FormatErrorOf(OneTensor(R"("dtype":"F32","shape":[1])", 4)),
             Contains("tensor 'w' needs 'data_offsets': [begin, end]"));
  CHECK_THAT(FormatErrorOf(OneTensor(R"("dtype":"F32","shape":[1],"data_offsets":[0])", 4)),
             Contains("needs 'data_offsets'"));
  CHECK_THAT(FormatErrorOf(OneTensor(R"("dtype":"F32","shape":[1],"data_offsets":[0,-4])", 4)),
             Contains("needs 'data_offsets'"));
  CHECK_THAT(FormatErrorOf(OneTensor(R"("dtype":"F32","shape":[1],"data_offsets":[8,4])", 8)),
             Contains("data_offsets [8, 4] end before they begin"));
  CHECK_THAT(FormatErrorOf(OneTensor(R"("dtype":"F32","shape":[2],"data_offsets":[0,8])", 4)),
             Contains("data_offsets [0, 8] run past the end of the data section (4 bytes)"));
  CHECK_THAT(FormatErrorOf(OneTensor(
                 R"("dtype":"F32","shape":[1],"data_offsets":[18446744073709551615,18446744073709551615])",
                 4)),
             Contains("run past the end"));
  CHECK_THAT(FormatErrorOf(OneTensor(R"("dtype":"F32","shape":[2],"data_offsets":[0,4])", 8)),
             Contains("data_offsets [0, 4] hold 4 bytes but dtype F32 x shape needs 8"));
  CHECK_THAT(FormatErrorOf(OneTensor(R"("dtype":"BF16","shape":[3],"data_offsets":[0,8])", 8)),
             Contains("hold 8 bytes but dtype BF16 x shape needs 6"));
}

TEST_CASE("safetensors malformed: overlapping tensors", "[safetensors][malformed]") {
  const std::string h =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  CHECK_THAT(FormatErrorOf(Raw(h, 12)), Contains("tensors 'a' [0, 8) and 'b' [4, 12) overlap"));
  const std::string same =
      R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
      R"("b":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})";
  CHECK_THAT(FormatErrorOf(Raw(same, 4)), Contains("overlap"));
  const std::string inside =
      R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
      R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
      R"("c":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
  CHECK_THAT(FormatErrorOf(Raw(inside, 16)), Contains("'a' [0, 16) and 'b' [4, 8) overlap"));
}

TEST_CASE("safetensors malformed: names are escaped in messages", "[safetensors][malformed]") {
  const std::string h = "{\"a\\nb\\u0001\":{\"dtype\":\"X\",\"shape\":[],\"data_offsets\":[0,0]}}";
  CHECK_THAT(FormatErrorOf(Raw(h, 0)), Contains("tensor 'a\\x0ab\\x01' has unknown dtype 'X'"));
}

// ---- mutation run ----------------------------------------------------------

uint64_t Touch(const SafetensorsFile& f) {
  uint64_t sum = f.data_offset() + f.file_size();
  for (const SafetensorsTensor& t : f.tensors()) {
    for (uint64_t i = 0; i < t.n_bytes(); ++i) sum += t.data[i];
    sum += static_cast<uint64_t>(t.n_elements()) + (f.Find(t.name) == &t);
    int64_t ne[4];
    t.GgmlNe(ne);
    sum += static_cast<uint64_t>(ne[0] + ne[3]);
  }
  for (const auto& [k, v] : f.metadata()) sum += k.size() + v.size();
  return sum;
}

std::vector<uint8_t> Mutate(const std::vector<uint8_t>& base, std::mt19937_64& rng) {
  std::vector<uint8_t> b = base;
  auto pos = [&](size_t n) { return static_cast<size_t>(rng() % (n == 0 ? 1 : n)); };
  static const char* kTokens[] = {"{", "}", "[", "]", ",", ":", "\"", "0", "-1", "1e400",
                                  "18446744073709551615", "\"F32\"", "\"dtype\"", "null",
                                  "\"data_offsets\"", "\"shape\"", "4294967296", "\\u0000"};
  const int n_edits = 1 + static_cast<int>(rng() % 3);
  for (int e = 0; e < n_edits && !b.empty(); ++e) {
    switch (rng() % 7) {
      case 0:
        b[pos(b.size())] ^= static_cast<uint8_t>(1u << (rng() % 8));
        break;
      case 1:
        b[pos(b.size())] = static_cast<uint8_t>(rng());
        break;
      case 2:
        b.resize(pos(b.size()));
        break;
      case 3: {  // a JSON token inserted into the header
        const std::string tok = kTokens[rng() % std::size(kTokens)];
        const size_t at = 8 + pos(b.size() > 8 ? b.size() - 8 : 1);
        if (at <= b.size()) b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), tok.begin(), tok.end());
        break;
      }
      case 4: {  // a digit changed inside the header (offsets, shapes)
        std::vector<size_t> digits;
        for (size_t i = 8; i < b.size(); ++i) {
          if (b[i] >= '0' && b[i] <= '9') digits.push_back(i);
        }
        if (!digits.empty()) b[digits[rng() % digits.size()]] = static_cast<uint8_t>('0' + rng() % 10);
        break;
      }
      case 5: {  // a plausible header length
        uint64_t v = rng() % 4 == 0 ? rng() : (b.size() > 8 ? b.size() - 8 - rng() % 16 : 0);
        for (size_t i = 0; i < 8 && i < b.size(); ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
        break;
      }
      case 6: {
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

TEST_CASE("safetensors malformed: 6000 seeded mutations never crash",
          "[safetensors][malformed][mutation]") {
  SafetensorsWriter w;
  const std::vector<float> v(24, 0.5f);
  w.AddTensorF32("model.embed_tokens.weight", DType::kBF16, {4, 3}, v.data());
  w.AddTensorF32("model.norm.weight", DType::kF32, {3}, v.data());
  w.AddTensorF32("lm_head.weight", DType::kF16, {2, 3}, v.data());
  w.AddMetadata("format", "pt");
  const std::vector<uint8_t> base1 = w.Serialize();
  const std::vector<uint8_t> base2 = Raw(
      R"({"a":{"dtype":"I64","shape":[1,1,2],"data_offsets":[0,16]},)"
      R"("e":{"dtype":"BOOL","shape":[0],"data_offsets":[16,16]},)"
      R"("b":{"dtype":"F8_E4M3","shape":[3],"data_offsets":[16,19]}})",
      19);
  std::mt19937_64 rng(20261130);
  int ok_count = 0;
  uint64_t sum = 0;
  for (const std::vector<uint8_t>* base : {&base1, &base2}) {
    REQUIRE(Parses(*base));
    for (int i = 0; i < 3000; ++i) {
      const std::vector<uint8_t> m = Mutate(*base, rng);
      auto f = SafetensorsFile::FromBuffer(m.data(), m.size());
      if (f.ok()) {
        ++ok_count;
        sum += Touch(**f);
      } else if (!IsFormatError(f.status())) {
        FAIL(f.status().ToString());
      }
    }
  }
  CHECK(sum != 0);
  CHECK(ok_count > 0);
  CHECK(ok_count < 6000);
}

}  // namespace
}  // namespace yuan
