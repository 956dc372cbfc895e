// Writes the seed corpus for gguf_fuzz (fuzz/corpus/gguf/): small valid files
// that between them use every metadata type, nested arrays, a non-default
// alignment and several tensor types, so mutations start from deep paths.
//   ./build/fuzz/fuzz/make_gguf_seeds fuzz/corpus/gguf
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "runtime/model/gguf_writer.h"
#include "tests/model/gguf_bytes.h"

namespace {

bool Save(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  std::printf("%s: %zu bytes\n", path.c_str(), bytes.size());
  return static_cast<bool>(out);
}

// A tiny llama-like model: scalars, a vocabulary, f32 / f16 / q8_0 / q4_0 tensors.
std::vector<uint8_t> Model() {
  yuan::GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddUint32("llama.block_count", 1);
  w.AddUint32("llama.embedding_length", 32);
  w.AddFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.AddStringArray("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "\xe4\xb8\xad", "a"});
  w.AddFloat32Array("tokenizer.ggml.scores", {0, 0, 0, -1, -2});
  w.AddInt32Array("tokenizer.ggml.token_type", {2, 3, 3, 1, 1});
  std::vector<float> v(64);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) / 8 - 4;
  w.AddTensorF32("output_norm.weight", yuan::DType::kF32, {8}, v.data());
  w.AddTensorF32("blk.0.attn_q.weight", yuan::DType::kF16, {4, 2}, v.data());
  w.AddTensorF32("token_embd.weight", yuan::DType::kQ8_0, {32, 2}, v.data());
  w.AddTensorF32("output.weight", yuan::DType::kQ4_0, {32, 2}, v.data());
  return w.Serialize();
}

// Every scalar type once, through the writer, with 64-byte alignment.
std::vector<uint8_t> Scalars() {
  yuan::GgufWriter w;
  w.SetAlignment(64);
  w.AddUint8("u8", 200);
  w.AddInt8("i8", -3);
  w.AddUint16("u16", 60000);
  w.AddInt16("i16", -300);
  w.AddUint32("u32", 4000000000u);
  w.AddInt32("i32", -70000);
  w.AddUint64("u64", 1ull << 60);
  w.AddInt64("i64", -(1ll << 60));
  w.AddFloat32("f32", 0.5f);
  w.AddFloat64("f64", 1e100);
  w.AddBool("bool", true);
  w.AddString("str", "x\ny");
  std::vector<float> v(16, 1.0f);
  w.AddTensorF32("t", yuan::DType::kBF16, {4, 2, 2}, v.data());
  return w.Serialize();
}

// What the writer cannot produce: nested arrays and arrays of every scalar
// type, in a v2 file.
std::vector<uint8_t> Arrays() {
  using yuan::GgufType;
  yuan::testing::GgufBytes b;
  b.Header(1, 5, 2);
  b.Key("nested", GgufType::kArray).Type(GgufType::kArray).U64(2);
  b.Type(GgufType::kInt16).U64(2).Le<int16_t>(-1).Le<int16_t>(2);
  b.Type(GgufType::kArray).U64(1).Type(GgufType::kString).U64(1).Str("deep");
  b.Key("u8s", GgufType::kArray).Type(GgufType::kUint8).U64(3).U8(1).U8(2).U8(3);
  b.Key("u64s", GgufType::kArray).Type(GgufType::kUint64).U64(1).U64(~0ull);
  b.Key("f64s", GgufType::kArray).Type(GgufType::kFloat64).U64(1).Le<double>(-0.5);
  b.Key("bools", GgufType::kArray).Type(GgufType::kBool).U64(2).U8(1).U8(0);
  b.TensorInfo("t", {32}, 8, 0).PadTo(32).Fill(34, 1);  // one q8_0 block
  return b.bytes;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const bool ok = Save(dir + "/model.gguf", Model()) && Save(dir + "/scalars.gguf", Scalars()) &&
                  Save(dir + "/arrays.gguf", Arrays());
  return ok ? 0 : 1;
}
