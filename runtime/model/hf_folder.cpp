#include "runtime/model/hf_folder.h"

#include <cmath>
#include <cstring>
#include <deque>
#include <filesystem>
#include <limits>
#include <map>
#include <numbers>
#include <optional>
#include <system_error>

#include "absl/container/flat_hash_map.h"
#include "runtime/core/mapped_file.h"
#include "runtime/core/status.h"
#include "runtime/model/safetensors.h"
#include "runtime/model/safetensors_internal.h"

namespace yuan {
namespace {

using Json = nlohmann::json;
using internal::JsonTypeName;
using internal::Printable;

constexpr char kConfigName[] = "config.json";
constexpr char kIndexName[] = "model.safetensors.index.json";
constexpr char kSingleName[] = "model.safetensors";
constexpr uint64_t kMaxConfigBytes = 16u << 20;
constexpr uint64_t kMaxIndexBytes = 64u << 20;

// Owns everything the GgufKv / GgufTensor views point at.
struct Store {
  std::deque<std::string> strings;
  std::deque<std::vector<uint8_t>> buffers;  // converted or realigned tensor data
  std::vector<std::unique_ptr<SafetensorsFile>> files;

  std::string_view Keep(std::string s) { return strings.emplace_back(std::move(s)); }
};

// Builds the translated metadata.
class KvBuilder {
 public:
  KvBuilder(Store* store, std::vector<GgufKv>* kvs) : store_(store), kvs_(kvs) {}

  void Str(std::string key, std::string value) {
    GgufValue v;
    v.type = GgufType::kString;
    v.str = store_->Keep(std::move(value));
    Add(std::move(key), std::move(v));
  }
  void U32(std::string key, uint32_t value) {
    GgufValue v;
    v.type = GgufType::kUint32;
    v.u = value;
    v.i = value;
    v.f = value;
    Add(std::move(key), std::move(v));
  }
  void F32(std::string key, double value) {
    GgufValue v;
    v.type = GgufType::kFloat32;
    v.f = static_cast<float>(value);
    Add(std::move(key), std::move(v));
  }
  void Bool(std::string key, bool value) {
    GgufValue v;
    v.type = GgufType::kBool;
    v.u = value;
    v.i = value;
    Add(std::move(key), std::move(v));
  }

 private:
  void Add(std::string key, GgufValue value) {
    kvs_->push_back(GgufKv{store_->Keep(std::move(key)), std::move(value)});
  }
  Store* store_;
  std::vector<GgufKv>* kvs_;
};

struct ArchMap {
  const char* model_type;  // config.json
  const char* arch;        // general.architecture
};
constexpr ArchMap kArchs[] = {
    {"llama", "llama"},
    {"mistral", "llama"},
    {"qwen2", "qwen2"},
    {"qwen3", "qwen3"},
    {"hunyuan_v1_dense", "hunyuan-dense"},
};

// What the tensor translation needs from config.json.
struct HfConfig {
  std::string arch;
  int64_t n_layer = 0;
  bool tie_word_embeddings = false;
  std::vector<float> rope_freqs;  // llama3 rope scaling factors (rope_freqs.weight)
};

// Reads config.json fields with their types checked.
class ConfigReader {
 public:
  explicit ConfigReader(const Json& j) : j_(j) {}

  // A positive integer that fits in int32; nullopt when absent or null.
  absl::StatusOr<std::optional<int64_t>> Int(const char* key) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return std::optional<int64_t>();
    if (!it->is_number_unsigned() || it->get<uint64_t>() == 0 ||
        it->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
      return Bad(key, *it, "a positive 32-bit integer");
    }
    return std::optional<int64_t>(static_cast<int64_t>(it->get<uint64_t>()));
  }
  absl::StatusOr<int64_t> RequiredInt(const char* key) const {
    YUAN_ASSIGN_OR_RETURN(std::optional<int64_t> v, Int(key));
    if (!v) return FormatError(absl::StrCat("config.json: '", key, "' is missing"));
    return *v;
  }
  // A positive finite number; nullopt when absent or null.
  absl::StatusOr<std::optional<double>> Positive(const Json& obj, const char* key,
                                                 const char* where) const {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return std::optional<double>();
    // Values end up as float32 metadata: larger ones are refused too.
    if (!it->is_number() || !(it->get<double>() > 0.0) ||
        !(it->get<double>() <= std::numeric_limits<float>::max())) {
      return FormatError(absl::StrCat("config.json: '", where, key, "' is ",
                                      Describe(*it), ", expected a positive number"));
    }
    return std::optional<double>(it->get<double>());
  }
  absl::StatusOr<bool> Bool(const char* key, bool fallback) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) return Bad(key, *it, "true or false");
    return it->get<bool>();
  }

  static std::string Describe(const Json& v) {
    if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
    if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
    if (v.is_number_float()) return absl::StrCat(v.get<double>());
    return absl::StrCat("a JSON ", JsonTypeName(v));
  }

 private:
  static absl::Status Bad(const char* key, const Json& v, const char* expected) {
    return FormatError(
        absl::StrCat("config.json: '", key, "' is ", Describe(v), ", expected ", expected));
  }
  const Json& j_;
};

// llama3-style RoPE scaling: one frequency factor per rotated pair, as
// llama.cpp's converter computes them into rope_freqs.weight.
std::vector<float> Llama3RopeFactors(double base, int64_t dim, double factor, double low_freq_factor,
                                     double high_freq_factor, double old_context_len) {
  std::vector<float> out;
  const double low_freq_wavelen = old_context_len / low_freq_factor;
  const double high_freq_wavelen = old_context_len / high_freq_factor;
  for (int64_t i = 0; i < dim; i += 2) {
    const double freq = 1.0 / std::pow(base, static_cast<double>(i) / static_cast<double>(dim));
    const double wavelen = 2.0 * std::numbers::pi / freq;
    if (wavelen < high_freq_wavelen) {
      out.push_back(1.0f);
    } else if (wavelen > low_freq_wavelen) {
      out.push_back(static_cast<float>(factor));
    } else {
      const double smooth =
          (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
      out.push_back(static_cast<float>(1.0 / ((1.0 - smooth) / factor + smooth)));
    }
  }
  return out;
}

absl::Status TranslateConfig(const Json& j, const std::string& name, Store* store,
                             std::vector<GgufKv>* kvs, HfConfig* cfg) {
  if (!j.is_object()) {
    return FormatError(
        absl::StrCat("config.json is a JSON ", JsonTypeName(j), ", expected an object"));
  }
  auto mt = j.find("model_type");
  if (mt == j.end() || !mt->is_string()) {
    return FormatError("config.json: 'model_type' is missing or not a string");
  }
  const std::string& model_type = mt->get_ref<const std::string&>();
  for (const ArchMap& m : kArchs) {
    if (model_type == m.model_type) cfg->arch = m.arch;
  }
  if (cfg->arch.empty()) {
    std::string known;
    for (const ArchMap& m : kArchs) absl::StrAppend(&known, known.empty() ? "" : ", ", m.model_type);
    return FormatError(absl::StrCat("config.json: model_type '", Printable(model_type),
                                    "' is not supported (supported: ", known, ")"));
  }
  const std::string& a = cfg->arch;
  const bool is_llama = a == "llama";
  ConfigReader r(j);

  YUAN_ASSIGN_OR_RETURN(const int64_t n_embd, r.RequiredInt("hidden_size"));
  YUAN_ASSIGN_OR_RETURN(const int64_t n_layer, r.RequiredInt("num_hidden_layers"));
  YUAN_ASSIGN_OR_RETURN(const int64_t n_ff, r.RequiredInt("intermediate_size"));
  YUAN_ASSIGN_OR_RETURN(const int64_t n_head, r.RequiredInt("num_attention_heads"));
  YUAN_ASSIGN_OR_RETURN(const std::optional<int64_t> n_head_kv, r.Int("num_key_value_heads"));
  YUAN_ASSIGN_OR_RETURN(const std::optional<int64_t> head_dim, r.Int("head_dim"));
  YUAN_ASSIGN_OR_RETURN(std::optional<int64_t> n_ctx, r.Int("max_position_embeddings"));
  YUAN_ASSIGN_OR_RETURN(const std::optional<int64_t> n_vocab, r.Int("vocab_size"));
  YUAN_ASSIGN_OR_RETURN(std::optional<double> rope_theta, r.Positive(j, "rope_theta", ""));
  YUAN_ASSIGN_OR_RETURN(const std::optional<double> rms_eps, r.Positive(j, "rms_norm_eps", ""));
  YUAN_ASSIGN_OR_RETURN(cfg->tie_word_embeddings, r.Bool("tie_word_embeddings", false));
  cfg->n_layer = n_layer;
  const int64_t rot_dim = head_dim ? *head_dim : n_embd / n_head;

  // RoPE scaling ("rope_type", or "type" in older configs).
  std::string rope_type;
  std::optional<double> scaling_factor;
  std::optional<int64_t> orig_ctx;
  auto rs = j.find("rope_scaling");
  if (rs != j.end() && !rs->is_null()) {
    if (!rs->is_object()) {
      return FormatError(absl::StrCat("config.json: 'rope_scaling' is a JSON ",
                                      JsonTypeName(*rs), ", expected an object"));
    }
    auto t = rs->find("rope_type");
    if (t == rs->end()) t = rs->find("type");
    if (t != rs->end() && !t->is_string()) {
      return FormatError("config.json: 'rope_scaling' type is not a string");
    }
    if (t != rs->end()) rope_type = t->get_ref<const std::string&>();
    ConfigReader sr(*rs);
    YUAN_ASSIGN_OR_RETURN(const std::optional<double> factor,
                          sr.Positive(*rs, "factor", "rope_scaling."));
    YUAN_ASSIGN_OR_RETURN(const std::optional<int64_t> orig,
                          sr.Int("original_max_position_embeddings"));
    if (rope_type == "linear" || rope_type == "yarn") {
      if (!factor) {
        return FormatError(absl::StrCat("config.json: rope_scaling of type '", rope_type,
                                        "' has no 'factor'"));
      }
      scaling_factor = factor;
      if (rope_type == "yarn") orig_ctx = orig;
    } else if (rope_type == "llama3" && is_llama) {
      YUAN_ASSIGN_OR_RETURN(const std::optional<double> low,
                            sr.Positive(*rs, "low_freq_factor", "rope_scaling."));
      YUAN_ASSIGN_OR_RETURN(const std::optional<double> high,
                            sr.Positive(*rs, "high_freq_factor", "rope_scaling."));
      if (rot_dim > 65536) {
        return FormatError(absl::StrCat("config.json: head size ", rot_dim, " is absurd"));
      }
      const double lo = low.value_or(1.0), hi = high.value_or(4.0);
      if (!(hi > lo)) {
        return FormatError("config.json: rope_scaling high_freq_factor must exceed low_freq_factor");
      }
      cfg->rope_freqs = Llama3RopeFactors(rope_theta.value_or(10000.0), rot_dim,
                                          factor.value_or(8.0), lo, hi,
                                          static_cast<double>(orig.value_or(8192)));
    } else if (rope_type == "dynamic" && a == "hunyuan-dense") {
      // NTK-aware alpha scaling folded into the base, as llama.cpp's converter
      // does; the usable context becomes 256K.
      YUAN_ASSIGN_OR_RETURN(const std::optional<double> alpha,
                            sr.Positive(*rs, "alpha", "rope_scaling."));
      if (rot_dim <= 2) return FormatError("config.json: head_dim too small for NTK-alpha RoPE");
      const double d = static_cast<double>(rot_dim);
      rope_theta = rope_theta.value_or(10000.0) * std::pow(alpha.value_or(50.0), d / (d - 2.0));
      if (!(*rope_theta <= std::numeric_limits<float>::max())) {
        return FormatError("config.json: rope_scaling alpha gives an infinite RoPE base");
      }
      rope_type = "none";
      scaling_factor = 1.0;
      orig_ctx = 256 * 1024;
      n_ctx = 256 * 1024;
    } else {
      rope_type.clear();  // "default", or a type the converter ignores too
    }
  }

  KvBuilder kv(store, kvs);
  kv.Str("general.architecture", a);
  if (!name.empty()) kv.Str("general.name", name);
  kv.U32(absl::StrCat(a, ".block_count"), static_cast<uint32_t>(n_layer));
  if (n_ctx) kv.U32(absl::StrCat(a, ".context_length"), static_cast<uint32_t>(*n_ctx));
  kv.U32(absl::StrCat(a, ".embedding_length"), static_cast<uint32_t>(n_embd));
  kv.U32(absl::StrCat(a, ".feed_forward_length"), static_cast<uint32_t>(n_ff));
  kv.U32(absl::StrCat(a, ".attention.head_count"), static_cast<uint32_t>(n_head));
  kv.U32(absl::StrCat(a, ".attention.head_count_kv"),
         static_cast<uint32_t>(n_head_kv.value_or(n_head)));
  if (rope_theta) kv.F32(absl::StrCat(a, ".rope.freq_base"), *rope_theta);
  if (rms_eps) kv.F32(absl::StrCat(a, ".attention.layer_norm_rms_epsilon"), *rms_eps);
  if (head_dim) {
    kv.U32(absl::StrCat(a, ".attention.key_length"), static_cast<uint32_t>(*head_dim));
    kv.U32(absl::StrCat(a, ".attention.value_length"), static_cast<uint32_t>(*head_dim));
  }
  if (is_llama) {
    if (n_vocab) kv.U32(absl::StrCat(a, ".vocab_size"), static_cast<uint32_t>(*n_vocab));
    kv.U32(absl::StrCat(a, ".rope.dimension_count"), static_cast<uint32_t>(rot_dim));
  }
  if (!rope_type.empty()) {
    kv.Str(absl::StrCat(a, ".rope.scaling.type"), rope_type);
    if (scaling_factor) kv.F32(absl::StrCat(a, ".rope.scaling.factor"), *scaling_factor);
    if (orig_ctx) {
      kv.U32(absl::StrCat(a, ".rope.scaling.original_context_length"),
             static_cast<uint32_t>(*orig_ctx));
    }
  }
  // HF llama checkpoints keep q/k in rotate-half order (the GGUF converter
  // permutes them to adjacent pairs; we do not copy weights to do that).
  if (is_llama) kv.Bool("yuan.rope.neox", true);
  return absl::OkStatus();
}

// Reads and parses a JSON file of the folder (bounded size).
absl::Status ReadJsonFile(const std::string& path, std::string_view what, uint64_t max_bytes,
                          Json* out) {
  absl::StatusOr<std::unique_ptr<MappedFile>> opened = MappedFile::Open(path);
  if (!opened.ok()) {
    // An empty file (or a directory in its place) is a malformed folder.
    if (absl::IsInvalidArgument(opened.status())) {
      return FormatError(std::string(opened.status().message()));
    }
    return opened.status();
  }
  std::unique_ptr<MappedFile> file = *std::move(opened);
  if (file->size() > max_bytes) {
    return FormatError(absl::StrCat("'", path, "': ", Sv(what), " of ", file->size(),
                                    " bytes is larger than the limit of ", max_bytes));
  }
  const char* first = reinterpret_cast<const char*>(file->data());
  std::string error;
  if (!internal::ParseJsonNoThrow(first, first + file->size(), out, &error)) {
    return FormatError(absl::StrCat("'", path, "': ", error));
  }
  return absl::OkStatus();
}

// HF tensor name -> GGUF tensor name. "" (and OK) for tensors the converter
// drops; FormatError for names it cannot map.
absl::StatusOr<std::string> MapTensorName(const std::string& hf, const HfConfig& cfg) {
  if (hf == "model.embed_tokens.weight") return std::string("token_embd.weight");
  if (hf == "model.norm.weight") return std::string("output_norm.weight");
  if (hf == "lm_head.weight") {
    return cfg.tie_word_embeddings ? std::string() : std::string("output.weight");
  }
  constexpr std::string_view kLayers = "model.layers.";
  if (std::string_view(hf).substr(0, kLayers.size()) == kLayers) {
    std::string_view rest = std::string_view(hf).substr(kLayers.size());
    size_t digits = 0;
    while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9') ++digits;
    if (digits > 0 && digits <= 9 && digits < rest.size() && rest[digits] == '.' &&
        (digits == 1 || rest[0] != '0')) {
      int64_t layer = 0;
      for (size_t i = 0; i < digits; ++i) layer = layer * 10 + (rest[i] - '0');
      const std::string_view part = rest.substr(digits + 1);
      if (part == "self_attn.rotary_emb.inv_freq") return std::string();  // recomputed
      const size_t dot = part.rfind('.');
      const std::string_view stem = dot == std::string_view::npos ? part : part.substr(0, dot);
      const std::string_view kind = dot == std::string_view::npos ? "" : part.substr(dot + 1);
      struct Entry {
        std::string_view hf, gguf;
        bool has_bias;
      };
      static constexpr Entry kLayerMap[] = {
          {"input_layernorm", "attn_norm", false},
          {"self_attn.q_proj", "attn_q", true},
          {"self_attn.k_proj", "attn_k", true},
          {"self_attn.v_proj", "attn_v", true},
          {"self_attn.o_proj", "attn_output", true},
          {"self_attn.q_norm", "attn_q_norm", false},          // qwen3
          {"self_attn.k_norm", "attn_k_norm", false},          // qwen3
          {"self_attn.query_layernorm", "attn_q_norm", false},  // hunyuan
          {"self_attn.key_layernorm", "attn_k_norm", false},    // hunyuan
          {"post_attention_layernorm", "ffn_norm", false},
          {"mlp.gate_proj", "ffn_gate", false},
          {"mlp.up_proj", "ffn_up", false},
          {"mlp.down_proj", "ffn_down", false},
      };
      for (const Entry& e : kLayerMap) {
        if (stem != e.hf || !(kind == "weight" || (kind == "bias" && e.has_bias))) continue;
        if (layer >= cfg.n_layer) {
          return FormatError(absl::StrCat("tensor '", Printable(hf), "' is for layer ", layer,
                                          " but num_hidden_layers is ", cfg.n_layer));
        }
        return absl::StrCat("blk.", layer, ".", Sv(e.gguf), ".", Sv(kind));
      }
    }
  }
  return FormatError(absl::StrCat("cannot map tensor '", Printable(hf), "' to a ", cfg.arch,
                                  " GGUF tensor"));
}

// Adds one safetensors tensor under its GGUF name: a view into the mapping
// when possible; 1-D tensors become F32 (as the converter stores norms and
// biases), and data not aligned to its element size is copied.
absl::Status AddTensor(const SafetensorsFile& file, const SafetensorsTensor& t,
                       std::string gguf_name, Store* store, std::vector<GgufTensor>* out) {
  const std::string where = absl::StrCat("'", file.path(), "': tensor '", Printable(t.name), "'");
  if (!t.type || (*t.type != DType::kF32 && *t.type != DType::kF16 && *t.type != DType::kBF16)) {
    return FormatError(absl::StrCat(where, " has dtype ", Printable(t.dtype),
                                    "; only F32, F16 and BF16 weights are supported"));
  }
  if (t.n_elements() == 0) return FormatError(absl::StrCat(where, " is empty"));
  GgufTensor g;
  g.name = store->Keep(std::move(gguf_name));
  g.type = *t.type;
  g.n_dims = std::max<int>(1, static_cast<int>(t.shape.size()));
  t.GgmlNe(g.ne);
  g.offset = t.begin;
  g.n_bytes = t.n_bytes();
  g.data = t.data;
  const bool misaligned = reinterpret_cast<uintptr_t>(t.data) % t.elem_size != 0;
  if (t.shape.size() <= 1 && g.type != DType::kF32) {
    const uint64_t n = static_cast<uint64_t>(t.n_elements());
    std::vector<uint8_t>& buf = store->buffers.emplace_back(n * sizeof(float));
    for (uint64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, t.data + 2 * i, 2);
      const float f = g.type == DType::kF16 ? F16ToF32(h) : BF16ToF32(h);
      std::memcpy(buf.data() + 4 * i, &f, 4);
    }
    g.type = DType::kF32;
    g.n_bytes = buf.size();
    g.data = buf.data();
  } else if (misaligned) {
    std::vector<uint8_t>& buf = store->buffers.emplace_back(t.data, t.data + t.n_bytes());
    g.data = buf.data();
  }
  out->push_back(g);
  return absl::OkStatus();
}

bool IsPlainFileName(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos &&
         s.find('\\') == std::string::npos && s.find('\0') == std::string::npos;
}

std::string FolderName(const std::string& dir) {
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  const size_t slash = d.rfind('/');
  return slash == std::string::npos ? d : d.substr(slash + 1);
}

bool IsFile(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::is_regular_file(p, ec);
}

}  // namespace

bool LooksLikeHfFolder(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path dir(path);
  if (!std::filesystem::is_directory(dir, ec)) return false;
  return IsFile(dir / kConfigName) && (IsFile(dir / kSingleName) || IsFile(dir / kIndexName));
}

absl::Status HfConfigToGguf(std::string_view config_json, const std::string& name,
                            GgufParts* parts) {
  auto store = std::make_shared<Store>();
  Json j;
  std::string error;
  if (!internal::ParseJsonNoThrow(config_json.data(), config_json.data() + config_json.size(), &j,
                                  &error)) {
    return FormatError(absl::StrCat("config.json: ", error));
  }
  HfConfig cfg;
  std::vector<GgufKv> kvs;
  YUAN_RETURN_IF_ERROR(TranslateConfig(j, name, store.get(), &kvs, &cfg));
  for (GgufKv& kv : kvs) parts->kvs.push_back(std::move(kv));
  parts->keep_alive.push_back(std::move(store));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<GgufFile>> OpenHfFolder(const std::string& dir,
                                                       const HfExtraMetadataFn& extra) {
  const std::filesystem::path folder(dir);
  auto store = std::make_shared<Store>();
  GgufParts parts;
  parts.path = dir;

  // config.json -> metadata.
  Json config;
  const std::string config_path = (folder / kConfigName).string();
  {
    absl::Status s = ReadJsonFile(config_path, "config.json", kMaxConfigBytes, &config);
    if (!s.ok()) return s;
  }
  HfConfig cfg;
  {
    absl::Status s = TranslateConfig(config, FolderName(dir), store.get(), &parts.kvs, &cfg);
    if (!s.ok()) return FormatError(absl::StrCat("'", dir, "': ", s.message()));
  }
  if (extra) {
    YUAN_ASSIGN_OR_RETURN(GgufParts more, extra(dir));
    for (GgufKv& kv : more.kvs) parts.kvs.push_back(std::move(kv));
    for (auto& k : more.keep_alive) parts.keep_alive.push_back(std::move(k));
  }

  // The safetensors files, and which tensors the index says each holds.
  std::map<std::string, std::vector<std::string>> listed;  // shard -> tensor names
  const std::string index_path = (folder / kIndexName).string();
  if (IsFile(index_path)) {
    Json index;
    YUAN_RETURN_IF_ERROR(ReadJsonFile(index_path, kIndexName, kMaxIndexBytes, &index));
    auto wm = index.is_object() ? index.find("weight_map") : index.end();
    if (!index.is_object() || wm == index.end() || !wm->is_object()) {
      return FormatError(absl::StrCat("'", index_path, "': no 'weight_map' object"));
    }
    for (auto it = wm->cbegin(); it != wm->cend(); ++it) {
      if (!it.value().is_string() || !IsPlainFileName(it.value().get_ref<const std::string&>())) {
        return FormatError(absl::StrCat("'", index_path, "': tensor '", Printable(it.key()),
                                        "' maps to ", ConfigReader::Describe(it.value()),
                                        ", expected a file name in the folder"));
      }
      listed[it.value().get_ref<const std::string&>()].push_back(it.key());
    }
    if (listed.empty()) return FormatError(absl::StrCat("'", index_path, "': empty weight_map"));
  } else if (IsFile(folder / kSingleName)) {
    listed[kSingleName];
  } else {
    return absl::NotFoundError(absl::StrCat("'", dir, "': neither ", kSingleName, " nor ",
                                            kIndexName, " found"));
  }

  absl::flat_hash_map<std::string, std::string> seen;  // HF tensor name -> shard
  for (const auto& [shard, names] : listed) {
    const std::string shard_path = (folder / shard).string();
    if (!IsFile(shard_path)) {
      return FormatError(absl::StrCat("'", dir, "': shard '", Printable(shard), "' listed in ",
                                      kIndexName, " is missing"));
    }
    YUAN_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file,
                          SafetensorsFile::Open(shard_path));
    for (const std::string& name : names) {
      if (file->Find(name) == nullptr) {
        return FormatError(absl::StrCat("'", dir, "': ", kIndexName, " lists tensor '",
                                        Printable(name), "' in '", Printable(shard),
                                        "', which does not hold it"));
      }
    }
    for (const SafetensorsTensor& t : file->tensors()) {
      auto [it, inserted] = seen.emplace(t.name, shard);
      if (!inserted) {
        return FormatError(absl::StrCat("'", dir, "': tensor '", Printable(t.name),
                                        "' is in both '", Printable(it->second), "' and '",
                                        Printable(shard), "'"));
      }
      absl::StatusOr<std::string> gguf_name = MapTensorName(t.name, cfg);
      if (!gguf_name.ok()) {
        return FormatError(absl::StrCat("'", shard_path, "': ", gguf_name.status().message()));
      }
      if (gguf_name->empty()) continue;
      YUAN_RETURN_IF_ERROR(AddTensor(*file, t, std::move(*gguf_name), store.get(), &parts.tensors));
    }
    store->files.push_back(std::move(file));
  }

  if (!cfg.rope_freqs.empty()) {
    std::vector<uint8_t>& buf = store->buffers.emplace_back(cfg.rope_freqs.size() * sizeof(float));
    std::memcpy(buf.data(), cfg.rope_freqs.data(), buf.size());
    GgufTensor g;
    g.name = store->Keep("rope_freqs.weight");
    g.type = DType::kF32;
    g.n_dims = 1;
    g.ne[0] = static_cast<int64_t>(cfg.rope_freqs.size());
    g.n_bytes = buf.size();
    g.data = buf.data();
    parts.tensors.push_back(g);
  }
  parts.keep_alive.push_back(std::move(store));
  return GgufFile::FromParts(std::move(parts));
}

}  // namespace yuan
