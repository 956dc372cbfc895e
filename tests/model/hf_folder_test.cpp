// Hugging Face folders (config.json + safetensors) presented as GgufFiles:
// metadata and tensor names translated to GGUF conventions, single and
// sharded checkpoints, and hostile folders (each a FormatError naming the
// problem).
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "runtime/core/status.h"
#include "runtime/model/hf_folder.h"
#include "runtime/model/model.h"
#include "runtime/model/safetensors.h"
#include "runtime/model/safetensors_writer.h"
#include "tests/common/test_support.h"

namespace yuan {
namespace {

using ::Catch::Matchers::Contains;
namespace fs = std::filesystem;

constexpr int kVocab = 32, kEmbd = 16, kLayers = 2, kHeads = 4, kHeadsKv = 2, kFf = 24;
constexpr int kHd = kEmbd / kHeads;

struct HfTensor {
  std::vector<int64_t> shape;
  std::vector<float> values;
};

// The tensors of a small random model of `model_type`, HF names and shapes.
std::map<std::string, HfTensor> RandomHfTensors(const std::string& model_type, bool lm_head,
                                                uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  std::map<std::string, HfTensor> out;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    HfTensor t;
    t.shape = shape;
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    for (size_t i = 0; i < n; ++i) t.values.push_back(normal(rng));
    out[name] = std::move(t);
  };
  add("model.embed_tokens.weight", {kVocab, kEmbd});
  add("model.norm.weight", {kEmbd});
  if (lm_head) add("lm_head.weight", {kVocab, kEmbd});
  for (int l = 0; l < kLayers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {kEmbd});
    add(p + "post_attention_layernorm.weight", {kEmbd});
    add(p + "self_attn.q_proj.weight", {kHeads * kHd, kEmbd});
    add(p + "self_attn.k_proj.weight", {kHeadsKv * kHd, kEmbd});
    add(p + "self_attn.v_proj.weight", {kHeadsKv * kHd, kEmbd});
    add(p + "self_attn.o_proj.weight", {kEmbd, kHeads * kHd});
    add(p + "mlp.gate_proj.weight", {kFf, kEmbd});
    add(p + "mlp.up_proj.weight", {kFf, kEmbd});
    add(p + "mlp.down_proj.weight", {kEmbd, kFf});
    if (model_type == "qwen2") {
      add(p + "self_attn.q_proj.bias", {kHeads * kHd});
      add(p + "self_attn.k_proj.bias", {kHeadsKv * kHd});
      add(p + "self_attn.v_proj.bias", {kHeadsKv * kHd});
    }
    if (model_type == "qwen3") {
      add(p + "self_attn.q_norm.weight", {kHd});
      add(p + "self_attn.k_norm.weight", {kHd});
    }
    if (model_type == "hunyuan_v1_dense") {
      add(p + "self_attn.query_layernorm.weight", {kHd});
      add(p + "self_attn.key_layernorm.weight", {kHd});
    }
  }
  return out;
}

std::string Config(const std::string& model_type, const std::string& extra = "") {
  return "{\"architectures\": [\"X\"], \"model_type\": \"" + model_type +
         "\", \"hidden_size\": 16, \"num_hidden_layers\": 2, \"intermediate_size\": 24, "
         "\"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"vocab_size\": 32, "
         "\"max_position_embeddings\": 128, \"rope_theta\": 500000.0, \"rms_norm_eps\": 1e-06, "
         "\"torch_dtype\": \"bfloat16\"" +
         extra + "}";
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

std::string NewDir(const std::string& name) {
  const std::string dir = testing::TempDir() + "/" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Writes `tensors` as `dtype` into one model.safetensors, or into `n_shards`
// files with an index.
void WriteWeights(const std::string& dir, const std::map<std::string, HfTensor>& tensors,
                  DType dtype, int n_shards = 1) {
  std::vector<SafetensorsWriter> writers(n_shards);
  std::string index = "{\"metadata\": {\"total_size\": 1}, \"weight_map\": {";
  int i = 0;
  for (const auto& [name, t] : tensors) {
    const int shard = i % n_shards;
    writers[shard].AddTensorF32(name, dtype, t.shape, t.values.data());
    index += (i ? ", \"" : "\"") + name + "\": \"model-0000" + std::to_string(shard + 1) +
             "-of-0000" + std::to_string(n_shards) + ".safetensors\"";
    ++i;
  }
  index += "}}";
  if (n_shards == 1) {
    REQUIRE(writers[0].WriteFile(dir + "/model.safetensors").ok());
    return;
  }
  for (int s = 0; s < n_shards; ++s) {
    REQUIRE(writers[s]
                .WriteFile(dir + "/model-0000" + std::to_string(s + 1) + "-of-0000" +
                           std::to_string(n_shards) + ".safetensors")
                .ok());
  }
  WriteText(dir + "/model.safetensors.index.json", index);
}

std::string WriteFolder(const std::string& name, const std::string& model_type, DType dtype,
                        int n_shards = 1, const std::string& extra_config = "",
                        bool lm_head = true) {
  const std::string dir = NewDir(name);
  WriteText(dir + "/config.json", Config(model_type, extra_config));
  WriteWeights(dir, RandomHfTensors(model_type, lm_head, 7), dtype, n_shards);
  return dir;
}

std::string FormatErrorOf(const std::string& dir, const HfExtraMetadataFn& extra = nullptr) {
  auto f = OpenHfFolder(dir, extra);
  REQUIRE_FALSE(f.ok());
  INFO(f.status().ToString());
  CHECK(IsFormatError(f.status()));
  return std::string(f.status().message());
}

float ValueAt(const GgufTensor& t, size_t i) {
  float f;
  uint16_t h;
  switch (t.type) {
    case DType::kF32:
      std::memcpy(&f, t.data + 4 * i, 4);
      return f;
    case DType::kF16:
      std::memcpy(&h, t.data + 2 * i, 2);
      return F16ToF32(h);
    default:
      std::memcpy(&h, t.data + 2 * i, 2);
      return BF16ToF32(h);
  }
}

// When the architecture is registered, its loader must accept the
// translation (shapes, keys); otherwise only the translation is checked.
void CheckArchLoads(std::unique_ptr<GgufFile> file) {
  const std::string arch(*file->GetString("general.architecture"));
  if (FindArch(arch) == nullptr) {
    WARN("architecture " << arch << " is not registered; skipping Model::FromGguf");
    return;
  }
  auto model = Model::FromGguf(std::shared_ptr<const GgufFile>(std::move(file)));
  INFO(arch);
  INFO(model.status().ToString());
  REQUIRE(model.ok());
  CHECK((*model)->config().n_layer == kLayers);
  CHECK((*model)->config().n_vocab == kVocab);
}

TEST_CASE("hf folder: a llama folder becomes GGUF metadata and tensors", "[hf]") {
  for (DType dtype : {DType::kBF16, DType::kF16, DType::kF32}) {
    const std::string dir = WriteFolder("llama-folder", "llama", dtype);
    CHECK(LooksLikeHfFolder(dir));
    auto opened = OpenHfFolder(dir);
    REQUIRE(opened.ok());
    const GgufFile& f = **opened;
    CHECK(f.path() == dir);
    CHECK(*f.GetString("general.architecture") == "llama");
    CHECK(*f.GetString("general.name") == "llama-folder");
    CHECK(*f.GetInt("llama.embedding_length") == kEmbd);
    CHECK(*f.GetInt("llama.block_count") == kLayers);
    CHECK(*f.GetInt("llama.feed_forward_length") == kFf);
    CHECK(*f.GetInt("llama.attention.head_count") == kHeads);
    CHECK(*f.GetInt("llama.attention.head_count_kv") == kHeadsKv);
    CHECK(*f.GetInt("llama.context_length") == 128);
    CHECK(*f.GetInt("llama.vocab_size") == kVocab);
    CHECK(*f.GetInt("llama.rope.dimension_count") == kHd);
    CHECK(*f.GetFloat("llama.rope.freq_base") == 500000.0);
    CHECK(*f.GetFloat("llama.attention.layer_norm_rms_epsilon") == Approx(1e-6));
    CHECK(*f.GetBool("yuan.rope.neox"));
    CHECK(f.Find("llama.attention.key_length") == nullptr);  // no head_dim in config
    CHECK(f.Find("llama.rope.scaling.type") == nullptr);

    CHECK(f.tensors().size() == 3 + 9 * kLayers);
    const auto hf = RandomHfTensors("llama", true, 7);
    const std::pair<const char*, const char*> names[] = {
        {"model.embed_tokens.weight", "token_embd.weight"},
        {"model.norm.weight", "output_norm.weight"},
        {"lm_head.weight", "output.weight"},
        {"model.layers.1.input_layernorm.weight", "blk.1.attn_norm.weight"},
        {"model.layers.1.post_attention_layernorm.weight", "blk.1.ffn_norm.weight"},
        {"model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight"},
        {"model.layers.0.self_attn.k_proj.weight", "blk.0.attn_k.weight"},
        {"model.layers.1.self_attn.v_proj.weight", "blk.1.attn_v.weight"},
        {"model.layers.1.self_attn.o_proj.weight", "blk.1.attn_output.weight"},
        {"model.layers.0.mlp.gate_proj.weight", "blk.0.ffn_gate.weight"},
        {"model.layers.0.mlp.up_proj.weight", "blk.0.ffn_up.weight"},
        {"model.layers.1.mlp.down_proj.weight", "blk.1.ffn_down.weight"},
    };
    for (const auto& [hf_name, gguf_name] : names) {
      INFO(gguf_name);
      const GgufTensor* t = f.FindTensor(gguf_name);
      REQUIRE(t != nullptr);
      const HfTensor& src = hf.at(hf_name);
      // Row-major [rows, cols] -> ggml ne {cols, rows}.
      if (src.shape.size() == 2) {
        CHECK(t->n_dims == 2);
        CHECK(t->ne[0] == src.shape[1]);
        CHECK(t->ne[1] == src.shape[0]);
        CHECK(t->type == dtype);  // matrices stay in the file's dtype
      } else {
        CHECK(t->n_dims == 1);
        CHECK(t->ne[0] == src.shape[0]);
        CHECK(t->type == DType::kF32);  // norms become F32, as the converter writes them
      }
      CHECK(t->ne[2] == 1);
      CHECK(t->ne[3] == 1);
      const float tol = dtype == DType::kF32 ? 0.0f : dtype == DType::kF16 ? 2e-3f : 1e-2f;
      for (size_t i = 0; i < src.values.size(); ++i) {
        if (std::fabs(ValueAt(*t, i) - src.values[i]) > tol * (1.0f + std::fabs(src.values[i]))) {
          FAIL("value " << i << " differs: " << ValueAt(*t, i) << " vs " << src.values[i]);
        }
      }
    }

    // The existing llama architecture binds it.
    auto model = Model::FromGguf(std::shared_ptr<const GgufFile>(std::move(*opened)));
    REQUIRE(model.ok());
    CHECK((*model)->config().n_vocab == kVocab);
    CHECK((*model)->config().n_layer == kLayers);
    CHECK((*model)->config().n_head_kv == kHeadsKv);
  }
}

TEST_CASE("hf folder: qwen2, qwen3 and hunyuan tensors and keys", "[hf]") {
  {
    const std::string dir = WriteFolder("qwen2", "qwen2", DType::kBF16, 1,
                                        ", \"tie_word_embeddings\": true", false);
    auto f = OpenHfFolder(dir);
    REQUIRE(f.ok());
    CHECK(*(*f)->GetString("general.architecture") == "qwen2");
    CHECK(*(*f)->GetInt("qwen2.embedding_length") == kEmbd);
    CHECK((*f)->Find("yuan.rope.neox") == nullptr);  // qwen2 is neox-style in GGUF too
    CHECK((*f)->Find("qwen2.vocab_size") == nullptr);
    CHECK((*f)->FindTensor("output.weight") == nullptr);  // tied
    const GgufTensor* b = (*f)->FindTensor("blk.1.attn_k.bias");
    REQUIRE(b != nullptr);
    CHECK(b->type == DType::kF32);
    CHECK(b->ne[0] == kHeadsKv * kHd);
    CHECK((*f)->FindTensor("blk.0.attn_q.bias") != nullptr);
    CHECK((*f)->FindTensor("blk.0.attn_v.bias") != nullptr);
    CheckArchLoads(std::move(*f));
  }
  {
    const std::string dir =
        WriteFolder("qwen3", "qwen3", DType::kBF16, 1, ", \"head_dim\": 4, \"rope_scaling\": null");
    auto f = OpenHfFolder(dir);
    REQUIRE(f.ok());
    CHECK(*(*f)->GetString("general.architecture") == "qwen3");
    CHECK(*(*f)->GetInt("qwen3.attention.key_length") == 4);
    CHECK(*(*f)->GetInt("qwen3.attention.value_length") == 4);
    const GgufTensor* qn = (*f)->FindTensor("blk.1.attn_q_norm.weight");
    REQUIRE(qn != nullptr);
    CHECK(qn->type == DType::kF32);
    CHECK(qn->ne[0] == kHd);
    CHECK((*f)->FindTensor("blk.0.attn_k_norm.weight") != nullptr);
    CHECK((*f)->FindTensor("output.weight") != nullptr);
    CheckArchLoads(std::move(*f));
  }
  {
    // Tied, with an lm_head present anyway: it is skipped, as the converter does.
    const std::string dir = WriteFolder("hunyuan", "hunyuan_v1_dense", DType::kBF16);
    std::string cfg = Config("hunyuan_v1_dense",
                             ", \"head_dim\": 4, \"tie_word_embeddings\": true, "
                             "\"rope_scaling\": {\"type\": \"dynamic\", \"alpha\": 1000.0}");
    cfg.replace(cfg.find("500000.0"), 8, "10000.0");
    WriteText(dir + "/config.json", cfg);
    auto f = OpenHfFolder(dir);
    REQUIRE(f.ok());
    const GgufFile& g = **f;
    CHECK(*g.GetString("general.architecture") == "hunyuan-dense");
    CHECK(*g.GetFloat("hunyuan-dense.rope.freq_base") ==
          Approx(10000.0 * std::pow(1000.0, 4.0 / 2.0)));
    CHECK(*g.GetString("hunyuan-dense.rope.scaling.type") == "none");
    CHECK(*g.GetFloat("hunyuan-dense.rope.scaling.factor") == 1.0);
    CHECK(*g.GetInt("hunyuan-dense.rope.scaling.original_context_length") == 262144);
    CHECK(*g.GetInt("hunyuan-dense.context_length") == 262144);
    CHECK(g.FindTensor("blk.0.attn_q_norm.weight") != nullptr);
    CHECK(g.FindTensor("blk.1.attn_k_norm.weight") != nullptr);
    CHECK(g.FindTensor("output.weight") == nullptr);
    CheckArchLoads(std::move(*f));
  }
}

TEST_CASE("hf folder: rope scaling keys", "[hf]") {
  auto keys = [](const std::string& model_type, const std::string& extra) {
    GgufParts parts;
    absl::Status s = HfConfigToGguf(Config(model_type, extra), "m", &parts);
    REQUIRE(s.ok());
    auto f = GgufFile::FromParts(std::move(parts));
    REQUIRE(f.ok());
    return std::shared_ptr<GgufFile>(std::move(*f));
  };
  auto lin = keys("llama", ", \"rope_scaling\": {\"type\": \"linear\", \"factor\": 4.0}");
  CHECK(*lin->GetString("llama.rope.scaling.type") == "linear");
  CHECK(*lin->GetFloat("llama.rope.scaling.factor") == 4.0);
  auto yarn = keys("qwen2",
                   ", \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0, "
                   "\"original_max_position_embeddings\": 32768}");
  CHECK(*yarn->GetString("qwen2.rope.scaling.type") == "yarn");
  CHECK(*yarn->GetFloat("qwen2.rope.scaling.factor") == 4.0);
  CHECK(*yarn->GetInt("qwen2.rope.scaling.original_context_length") == 32768);
  auto dflt = keys("qwen3", ", \"rope_scaling\": {\"rope_type\": \"default\"}");
  CHECK(dflt->Find("qwen3.rope.scaling.type") == nullptr);

  // llama3 scaling becomes a rope_freqs.weight tensor, as in converted GGUFs.
  const std::string dir = WriteFolder(
      "llama3", "llama", DType::kF16, 1,
      ", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, "
      "\"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192}");
  auto f = OpenHfFolder(dir);
  REQUIRE(f.ok());
  const GgufTensor* rf = (*f)->FindTensor("rope_freqs.weight");
  REQUIRE(rf != nullptr);
  CHECK(rf->type == DType::kF32);
  REQUIRE(rf->ne[0] == kHd / 2);
  CHECK(ValueAt(*rf, 0) == 1.0f);  // highest frequency: unscaled
  // Lowest frequency of a 4-dim head at base 5e5: wavelength 2*pi*sqrt(5e5) ~ 4443,
  // between 8192/4 and 8192: smoothly interpolated.
  const double wavelen = 2.0 * std::numbers::pi * std::pow(500000.0, 2.0 / 4.0);
  const double smooth = (8192.0 / wavelen - 1.0) / 3.0;
  CHECK(ValueAt(*rf, 1) == Approx(1.0 / ((1.0 - smooth) / 8.0 + smooth)));
  CheckArchLoads(std::move(*f));
}

TEST_CASE("hf folder: sharded checkpoints", "[hf]") {
  const std::string dir = WriteFolder("sharded", "llama", DType::kBF16, 3);
  CHECK(LooksLikeHfFolder(dir));
  auto f = OpenHfFolder(dir);
  REQUIRE(f.ok());
  CHECK((*f)->tensors().size() == 3 + 9 * kLayers);
  CHECK((*f)->FindTensor("blk.1.ffn_down.weight") != nullptr);
  auto model = Model::FromGguf(std::shared_ptr<const GgufFile>(std::move(*f)));
  CHECK(model.ok());

  SECTION("a listed shard is missing") {
    fs::remove(dir + "/model-00002-of-00003.safetensors");
    CHECK_THAT(FormatErrorOf(dir),
               Contains("shard 'model-00002-of-00003.safetensors' listed in "
                        "model.safetensors.index.json is missing"));
  }
  SECTION("a shard does not hold a tensor listed for it") {
    std::ifstream in(dir + "/model.safetensors.index.json");
    std::string index((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string key = "\"model.norm.weight\": \"model-0000";
    const size_t at = index.find(key);
    REQUIRE(at != std::string::npos);
    char& digit = index[at + key.size()];
    digit = digit == '1' ? '2' : '1';
    WriteText(dir + "/model.safetensors.index.json", index);
    CHECK_THAT(FormatErrorOf(dir), Contains("lists tensor 'model.norm.weight' in") &&
                                       Contains("which does not hold it"));
  }
  SECTION("a tensor in two shards") {
    // Rewrite a shard that lacks model.norm.weight with its own tensors plus a copy of it.
    for (int s = 1; s <= 3; ++s) {
      const std::string shard = dir + "/model-0000" + std::to_string(s) + "-of-00003.safetensors";
      auto st = SafetensorsFile::Open(shard);
      REQUIRE(st.ok());
      if ((*st)->Find("model.norm.weight") != nullptr) continue;
      SafetensorsWriter w;
      for (const SafetensorsTensor& t : (*st)->tensors()) {
        w.AddTensor(t.name, t.dtype, t.shape, t.data, t.n_bytes());
      }
      const std::vector<float> v(kEmbd, 1.0f);
      w.AddTensorF32("model.norm.weight", DType::kF32, {kEmbd}, v.data());
      st->reset();
      REQUIRE(w.WriteFile(shard).ok());
      break;
    }
    CHECK_THAT(FormatErrorOf(dir), Contains("tensor 'model.norm.weight' is in both"));
  }
  SECTION("shard names must stay in the folder") {
    WriteText(dir + "/model.safetensors.index.json",
              "{\"weight_map\": {\"model.norm.weight\": \"../sharded/model-00001-of-00003.safetensors\"}}");
    CHECK_THAT(FormatErrorOf(dir), Contains("tensor 'model.norm.weight' maps to") &&
                                       Contains("expected a file name in the folder"));
    WriteText(dir + "/model.safetensors.index.json", "{\"weight_map\": {\"a\": 3}}");
    CHECK_THAT(FormatErrorOf(dir), Contains("maps to 3"));
    WriteText(dir + "/model.safetensors.index.json", "{\"weight_map\": []}");
    CHECK_THAT(FormatErrorOf(dir), Contains("no 'weight_map' object"));
    WriteText(dir + "/model.safetensors.index.json", "{\"weight_map\": {}}");
    CHECK_THAT(FormatErrorOf(dir), Contains("empty weight_map"));
    WriteText(dir + "/model.safetensors.index.json", "{\"weight_map\": {");
    CHECK_THAT(FormatErrorOf(dir), Contains("model.safetensors.index.json': invalid JSON"));
  }
  SECTION("a corrupt shard is named") {
    WriteText(dir + "/model-00003-of-00003.safetensors", std::string("\x03\0\0\0\0\0\0\0{}", 10));
    CHECK_THAT(FormatErrorOf(dir),
               Contains("model-00003-of-00003.safetensors': header length 3 runs past the end"));
  }
}

TEST_CASE("hf folder: hostile config.json", "[hf][malformed]") {
  const std::string dir = WriteFolder("bad-config", "llama", DType::kF32);
  auto with = [&](const std::string& config) {
    WriteText(dir + "/config.json", config);
    return FormatErrorOf(dir);
  };
  CHECK_THAT(with("{\"model_type\": \"llama\""), Contains("config.json': invalid JSON"));
  CHECK_THAT(with("[]"), Contains("config.json is a JSON array"));
  CHECK_THAT(with("{}"), Contains("'model_type' is missing or not a string"));
  CHECK_THAT(with(Config("gpt2")),
             Contains("model_type 'gpt2' is not supported (supported: llama, mistral, qwen2"));
  std::string c = Config("llama");
  c.replace(c.find("\"hidden_size\": 16, "), 19, "");
  CHECK_THAT(with(c), Contains("config.json: 'hidden_size' is missing"));
  c = Config("llama");
  c.replace(c.find("\"hidden_size\": 16"), 17, "\"hidden_size\": \"16\"");
  CHECK_THAT(with(c), Contains("'hidden_size' is a JSON string, expected a positive 32-bit integer"));
  c = Config("llama");
  c.replace(c.find("\"num_hidden_layers\": 2"), 22, "\"num_hidden_layers\": -2");
  CHECK_THAT(with(c), Contains("'num_hidden_layers' is -2"));
  c = Config("llama");
  c.replace(c.find("\"intermediate_size\": 24"), 23, "\"intermediate_size\": 4294967296");
  CHECK_THAT(with(c), Contains("'intermediate_size' is 4294967296"));
  c = Config("llama");
  c.replace(c.find("\"num_attention_heads\": 4"), 24, "\"num_attention_heads\": 0");
  CHECK_THAT(with(c), Contains("'num_attention_heads' is 0"));
  CHECK_THAT(with(Config("llama", ", \"rms_norm_eps\": -1")),
             Contains("duplicate key 'rms_norm_eps'"));
  c = Config("llama");
  c.replace(c.find("1e-06"), 5, "-1.0");
  CHECK_THAT(with(c), Contains("'rms_norm_eps' is -1, expected a positive number"));
  CHECK_THAT(with(Config("llama", ", \"tie_word_embeddings\": 1")),
             Contains("'tie_word_embeddings' is 1, expected true or false"));
  CHECK_THAT(with(Config("llama", ", \"rope_scaling\": 2")), Contains("'rope_scaling' is a JSON"));
  CHECK_THAT(with(Config("llama", ", \"rope_scaling\": {\"type\": \"linear\"}")),
             Contains("rope_scaling of type 'linear' has no 'factor'"));
  CHECK_THAT(with(Config("llama", ", \"rope_scaling\": {\"type\": \"linear\", \"factor\": 0}")),
             Contains("'rope_scaling.factor' is 0, expected a positive number"));
  CHECK_THAT(with(Config("llama", ", \"rope_scaling\": {\"type\": 1}")),
             Contains("'rope_scaling' type is not a string"));
  CHECK_THAT(with(std::string(20u << 20, ' ')), Contains("larger than the limit"));
  CHECK(IsFormatError(OpenHfFolder((WriteText(dir + "/config.json", ""), dir)).status()));
  fs::remove(dir + "/config.json");
  auto missing = OpenHfFolder(dir);
  CHECK(absl::IsNotFound(missing.status()));
  CHECK_FALSE(LooksLikeHfFolder(dir));
}

TEST_CASE("hf folder: hostile tensors", "[hf][malformed]") {
  const std::string dir = NewDir("bad-tensors");
  WriteText(dir + "/config.json", Config("llama"));
  auto with = [&](const std::string& name, const char* dtype, std::vector<int64_t> shape) {
    SafetensorsWriter w;
    std::vector<uint8_t> bytes(64, 0);
    size_t n = GetSafetensorsDType(dtype)->size;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    w.AddTensor(name, dtype, shape, bytes.data(), n);
    REQUIRE(w.WriteFile(dir + "/model.safetensors").ok());
    return FormatErrorOf(dir);
  };
  CHECK_THAT(with("model.layers.0.self_attn.rotary.weight", "F32", {2}),
             Contains("cannot map tensor 'model.layers.0.self_attn.rotary.weight' to a llama"));
  CHECK_THAT(with("transformer.h.0.attn.weight", "F32", {2}), Contains("cannot map tensor"));
  CHECK_THAT(with("model.layers.2.mlp.up_proj.weight", "F32", {2, 2}),
             Contains("is for layer 2 but num_hidden_layers is 2"));
  CHECK_THAT(with("model.layers.01.mlp.up_proj.weight", "F32", {2, 2}), Contains("cannot map"));
  CHECK_THAT(with("model.layers.99999999999.mlp.up_proj.weight", "F32", {2, 2}),
             Contains("cannot map"));
  CHECK_THAT(with("model.layers.0.mlp.up_proj.bias", "F32", {2}), Contains("cannot map"));
  CHECK_THAT(with("model.layers.0.mlp.up_proj.weight", "I64", {2, 2}),
             Contains("has dtype I64; only F32, F16 and BF16 weights are supported"));
  CHECK_THAT(with("model.layers.0.mlp.up_proj.weight", "F16", {0, 2}), Contains("is empty"));
  // The reader's own checks surface with the file named.
  WriteText(dir + "/model.safetensors", "");
  CHECK_THAT(FormatErrorOf(dir), Contains("model.safetensors'"));
  WriteText(dir + "/model.safetensors", "not a safetensors file at all");
  CHECK_THAT(FormatErrorOf(dir), Contains("model.safetensors': header length"));
  fs::remove(dir + "/model.safetensors");
  CHECK_FALSE(LooksLikeHfFolder(dir));
  CHECK(absl::IsNotFound(OpenHfFolder(dir).status()));
  CHECK_FALSE(LooksLikeHfFolder(dir + "/config.json"));
  CHECK_FALSE(LooksLikeHfFolder(dir + "/nonexistent"));
}

TEST_CASE("hf folder: misaligned data is copied, inv_freq dropped", "[hf]") {
  const std::string dir = NewDir("misaligned");
  WriteText(dir + "/config.json", Config("llama"));
  const auto hf = RandomHfTensors("llama", false, 3);
  {
    SafetensorsWriter w;
    const uint8_t pad = 0;
    w.AddTensor("pad", "U8", {1}, &pad, 1);
    REQUIRE(w.WriteFile(dir + "/model.safetensors").ok());
    CHECK_THAT(FormatErrorOf(dir), Contains("cannot map tensor 'pad'"));
  }
  // Every tensor one byte off its 4-byte alignment (a 1-byte gap first), and
  // the rotary inv_freq buffer that some checkpoints carry.
  std::string header = "{";
  uint64_t offset = 1;
  std::vector<uint8_t> data(1, 0);
  for (const auto& [name, t] : hf) {
    const uint64_t n = t.values.size() * 4;
    header += (header.size() > 1 ? "," : "") + std::string("\"") + name +
              "\":{\"dtype\":\"F32\",\"shape\":[" + std::to_string(t.shape[0]) +
              (t.shape.size() > 1 ? "," + std::to_string(t.shape[1]) : "") +
              "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + n) +
              "]}";
    const uint8_t* p = reinterpret_cast<const uint8_t*>(t.values.data());
    data.insert(data.end(), p, p + n);
    offset += n;
  }
  header += ",\"model.layers.0.self_attn.rotary_emb.inv_freq\":{\"dtype\":\"F32\",\"shape\":[0],"
            "\"data_offsets\":[0,0]}}";
  while (header.size() % 8) header += ' ';
  std::vector<uint8_t> file(8);
  for (int i = 0; i < 8; ++i) file[i] = static_cast<uint8_t>(header.size() >> (8 * i));
  file.insert(file.end(), header.begin(), header.end());
  file.insert(file.end(), data.begin(), data.end());
  WriteText(dir + "/model.safetensors", std::string(file.begin(), file.end()));
  auto f = OpenHfFolder(dir);
  REQUIRE(f.ok());
  CHECK((*f)->tensors().size() == 2 + 9 * kLayers);
  for (const GgufTensor& t : (*f)->tensors()) {
    CHECK(reinterpret_cast<uintptr_t>(t.data) % 4 == 0);
  }
  const GgufTensor* q = (*f)->FindTensor("blk.1.attn_q.weight");
  REQUIRE(q != nullptr);
  const auto& src = hf.at("model.layers.1.self_attn.q_proj.weight").values;
  CHECK(std::memcmp(q->data, src.data(), src.size() * 4) == 0);
}

TEST_CASE("hf folder: extra metadata hook (tokenizer keys)", "[hf]") {
  const std::string dir = WriteFolder("with-tokenizer", "qwen3", DType::kBF16);
  auto tokenizer_keys = [](const std::string& folder) -> absl::StatusOr<GgufParts> {
    auto owned = std::make_shared<std::vector<std::string>>();
    owned->reserve(3);
    owned->push_back("tokenizer.ggml.model");
    owned->push_back("gpt2");
    owned->push_back(folder);
    GgufParts parts;
    GgufKv kv;
    kv.key = (*owned)[0];
    kv.value.type = GgufType::kString;
    kv.value.str = (*owned)[1];
    parts.kvs.push_back(kv);
    parts.keep_alive.push_back(owned);
    return parts;
  };
  auto f = OpenHfFolder(dir, tokenizer_keys);
  REQUIRE(f.ok());
  CHECK(*(*f)->GetString("tokenizer.ggml.model") == "gpt2");
  CHECK(*(*f)->GetString("general.architecture") == "qwen3");

  auto clash = [](const std::string&) -> absl::StatusOr<GgufParts> {
    GgufParts parts;
    GgufKv kv;
    kv.key = "general.architecture";
    kv.value.type = GgufType::kString;
    kv.value.str = "llama";
    parts.kvs.push_back(kv);
    return parts;
  };
  CHECK_THAT(FormatErrorOf(dir, clash), Contains("duplicate metadata key 'general.architecture'"));
  auto fails = [](const std::string&) -> absl::StatusOr<GgufParts> {
    return FormatError("tokenizer.json: bad merges");
  };
  CHECK_THAT(FormatErrorOf(dir, fails), Contains("tokenizer.json: bad merges"));
}

TEST_CASE("hf folder: 4000 seeded config.json mutations never crash", "[hf][malformed][mutation]") {
  const std::string base = Config(
      "qwen2", ", \"head_dim\": 4, \"tie_word_embeddings\": false, \"rope_scaling\": "
               "{\"rope_type\": \"yarn\", \"factor\": 4.0, \"original_max_position_embeddings\": 64}");
  const std::string base2 = Config(
      "llama", ", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, "
               "\"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0}");
  static const char* kTokens[] = {"{", "}", "[", "]", ",", ":", "\"", "0", "-1", "1e400", "1e30",
                                  "null", "true", "\"hunyuan_v1_dense\"", "\"dynamic\"", "2.5",
                                  "18446744073709551615", "\"alpha\": 1e300,"};
  std::mt19937_64 rng(99);
  int ok_count = 0;
  for (const std::string* b : {&base, &base2}) {
    REQUIRE(HfConfigToGguf(*b, "m", std::make_unique<GgufParts>().get()).ok());
    for (int i = 0; i < 2000; ++i) {
      std::string m = *b;
      const int edits = 1 + static_cast<int>(rng() % 3);
      for (int e = 0; e < edits && !m.empty(); ++e) {
        const size_t at = rng() % m.size();
        switch (rng() % 4) {
          case 0:
            m[at] = static_cast<char>(rng());
            break;
          case 1:
            m.insert(at, kTokens[rng() % std::size(kTokens)]);
            break;
          case 2:
            m.erase(at, 1 + rng() % 8);
            break;
          case 3:
            if (m[at] >= '0' && m[at] <= '9') m[at] = static_cast<char>('0' + rng() % 10);
            break;
        }
      }
      GgufParts parts;
      absl::Status s = HfConfigToGguf(m, "m", &parts);
      if (s.ok()) {
        ++ok_count;
        auto f = GgufFile::FromParts(std::move(parts));
        REQUIRE(f.ok());
        for (const GgufKv& kv : (*f)->metadata()) CHECK_FALSE(kv.key.empty());
      } else if (!IsFormatError(s)) {
        FAIL(s.ToString());
      }
    }
  }
  CHECK(ok_count > 0);
}

}  // namespace
}  // namespace yuan
