// LoRA adapters: the .yadp FlatBuffers file, PEFT and llama.cpp GGUF interop,
// and the base-model fingerprint. See adapter.h and docs/adapters.md.
#include "runtime/adapter/adapter.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/numbers.h"
#include "nlohmann/json.hpp"
#include "runtime/adapter/adapter_generated.h"
#include "runtime/core/status.h"
#include "runtime/model/gguf_writer.h"
#include "runtime/model/model.h"
#include "runtime/model/safetensors.h"
#include "runtime/model/safetensors_writer.h"

namespace yuan {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kYadpVersion = 1;
// Sizes beyond these are refused before any allocation.
constexpr int64_t kMaxDim = int64_t{1} << 24;
constexpr int32_t kMaxRank = 1 << 16;

// The supported projections: target module, PEFT module suffix, GGUF name.
struct Projection {
  std::string_view module;
  std::string_view peft;  // after "model.layers.N."
  std::string_view gguf;  // between "blk.N." and ".weight"
};
constexpr Projection kProjections[] = {
    {"q", "self_attn.q_proj", "attn_q"},   {"k", "self_attn.k_proj", "attn_k"},
    {"v", "self_attn.v_proj", "attn_v"},   {"o", "self_attn.o_proj", "attn_output"},
    {"gate", "mlp.gate_proj", "ffn_gate"}, {"up", "mlp.up_proj", "ffn_up"},
    {"down", "mlp.down_proj", "ffn_down"},
};

bool ConsumePrefix(std::string_view* s, std::string_view prefix) {
  if (s->substr(0, prefix.size()) != prefix) return false;
  s->remove_prefix(prefix.size());
  return true;
}
bool ConsumeSuffix(std::string_view* s, std::string_view suffix) {
  if (s->size() < suffix.size() || s->substr(s->size() - suffix.size()) != suffix) return false;
  s->remove_suffix(suffix.size());
  return true;
}
// Reads a layer number "N." from the front of s.
bool ConsumeLayer(std::string_view* s, int* layer) {
  size_t n = 0;
  while (n < s->size() && n < 6 && (*s)[n] >= '0' && (*s)[n] <= '9') ++n;
  if (n == 0 || n >= s->size() || (*s)[n] != '.') return false;
  if (n > 1 && (*s)[0] == '0') return false;  // no leading zeros: one spelling per layer
  *layer = std::stoi(std::string(s->substr(0, n)));
  s->remove_prefix(n + 1);
  return true;
}

const Projection* ProjectionOfGguf(std::string_view name, int* layer) {
  if (!ConsumePrefix(&name, "blk.") || !ConsumeLayer(&name, layer) ||
      !ConsumeSuffix(&name, ".weight"))
    return nullptr;
  for (const auto& p : kProjections)
    if (name == p.gguf) return &p;
  return nullptr;
}

int ModuleOrder(std::string_view module) {
  for (size_t i = 0; i < std::size(kProjections); ++i)
    if (kProjections[i].module == module) return static_cast<int>(i);
  return 99;
}

bool IsQk(std::string_view target) {
  std::string_view m = TargetModuleOf(target);
  return m == "q" || m == "k";
}

absl::Status Err(std::string_view name, std::string_view what) {
  return FormatError(absl::StrCat("adapter '", Sv(name), "': ", Sv(what)));
}

// ---- element conversions ----------------------------------------------

// Converts n elements of F32/F16/BF16 bytes (any alignment) to float.
void ToFloat(fb::TensorDType dtype, const uint8_t* src, size_t n, float* dst) {
  for (size_t i = 0; i < n; ++i) {
    if (dtype == fb::TensorDType_F32) {
      std::memcpy(&dst[i], src + 4 * i, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      dst[i] = dtype == fb::TensorDType_F16 ? F16ToF32(h) : BF16ToF32(h);
    }
  }
}

std::optional<fb::TensorDType> FbDTypeOf(DType t) {
  switch (t) {
    case DType::kF32: return fb::TensorDType_F32;
    case DType::kF16: return fb::TensorDType_F16;
    case DType::kBF16: return fb::TensorDType_BF16;
    default: return std::nullopt;
  }
}

// ---- llama q/k row order ----------------------------------------------
//
// llama.cpp's convert_hf_to_gguf.py (LlamaModel.permute) reorders the rows of
// q_proj (n_head groups) and k_proj (n_head_kv groups) from HF's rotate-half
// layout to adjacent pairs:
//   w.reshape(n_head, 2, rows / n_head / 2, cols).swapaxes(1, 2).reshape(w.shape)
// and convert_lora_to_gguf.py applies the same modify_tensors to a LoRA pair,
// which (LoraTorchTensor.permute) permutes the rows of B and leaves A alone.
// gguf row h*2*half + 2*i + j  <-  hf row h*2*half + j*half + i.
absl::Status PermuteRows(std::vector<float>* b, int64_t out, int64_t rank, int n_groups,
                         bool to_gguf) {
  if (n_groups <= 0 || out % (2 * n_groups) != 0)
    return FormatError(absl::StrCat("cannot permute ", out, " q/k rows into ", n_groups,
                                    " heads"));
  const int64_t half = out / n_groups / 2;
  std::vector<float> r(b->size());
  for (int64_t h = 0; h < n_groups; ++h)
    for (int64_t j = 0; j < 2; ++j)
      for (int64_t i = 0; i < half; ++i) {
        int64_t g = h * 2 * half + 2 * i + j, f = h * 2 * half + j * half + i;
        int64_t dst = to_gguf ? g : f, src = to_gguf ? f : g;
        std::copy_n(b->data() + src * rank, rank, r.data() + dst * rank);
      }
  *b = std::move(r);
  return absl::OkStatus();
}

// Brings the q/k B rows of `a` to `permuted` order (no-op when already so).
absl::Status SetQkOrder(LoraAdapter* a, bool permuted, std::string_view name) {
  if (a->base.qk_permuted == permuted) return absl::OkStatus();
  for (auto& t : a->tensors) {
    if (!IsQk(t.target)) continue;
    int heads = TargetModuleOf(t.target) == "q" ? a->base.n_head : a->base.n_head_kv;
    if (heads <= 0)
      return Err(name, "the llama q/k row order needs the head counts; give the base model (--base)");
    YUAN_RETURN_IF_ERROR(PermuteRows(&t.b, t.out, a->rank, heads, permuted));
  }
  a->base.qk_permuted = permuted;
  return absl::OkStatus();
}

void Canonicalize(LoraAdapter* a) {
  std::sort(a->tensors.begin(), a->tensors.end(),
            [](const LoraTensor& x, const LoraTensor& y) { return x.target < y.target; });
  std::set<std::string> modules;
  for (const auto& t : a->tensors) modules.insert(std::string(TargetModuleOf(t.target)));
  a->target_modules.assign(modules.begin(), modules.end());
  std::sort(a->target_modules.begin(), a->target_modules.end(),
            [](const std::string& x, const std::string& y) { return ModuleOrder(x) < ModuleOrder(y); });
}

absl::StatusOr<std::string> ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open '", path, "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::Status WriteBytes(const std::string& path, const void* data, size_t n) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write '", path, "'"));
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
  if (!out) return absl::DataLossError(absl::StrCat("short write to '", path, "'"));
  return absl::OkStatus();
}

// FNV-1a 64 (http://www.isthe.com/chongo/tech/comp/fnv/).
struct Fnv1a {
  uint64_t h = 14695981039346656037ull;
  void Add(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  }
  template <typename T>
  void AddValue(T v) { Add(&v, sizeof v); }
};

}  // namespace

// ---- names ------------------------------------------------------------

std::string_view TargetModuleOf(std::string_view gguf_name) {
  int layer = 0;
  const Projection* p = ProjectionOfGguf(gguf_name, &layer);
  return p ? p->module : std::string_view();
}

std::string PeftModuleToGguf(std::string_view s) {
  ConsumePrefix(&s, "base_model.model.");
  int layer = 0;
  if (!ConsumePrefix(&s, "model.layers.") || !ConsumeLayer(&s, &layer)) return "";
  for (const auto& p : kProjections)
    if (s == p.peft) return absl::StrCat("blk.", layer, ".", Sv(p.gguf), ".weight");
  return "";
}

std::string GgufToPeftModule(std::string_view gguf_name) {
  int layer = 0;
  const Projection* p = ProjectionOfGguf(gguf_name, &layer);
  if (!p) return "";
  return absl::StrCat("base_model.model.model.layers.", layer, ".", Sv(p->peft));
}

std::string_view AdapterFormatName(AdapterFormat format) {
  switch (format) {
    case AdapterFormat::kYadp: return "yadp";
    case AdapterFormat::kPeft: return "peft";
    case AdapterFormat::kGguf: return "gguf";
  }
  return "?";
}

float LoraAdapter::scaling() const {
  if (rank <= 0) return 0.0f;
  return use_rslora ? alpha / std::sqrt(static_cast<float>(rank)) : alpha / static_cast<float>(rank);
}

const LoraTensor* LoraAdapter::Find(std::string_view target) const {
  for (const auto& t : tensors)
    if (t.target == target) return &t;
  return nullptr;
}

// ---- validation ---------------------------------------------------------

absl::Status ValidateAdapter(const LoraAdapter& a, std::string_view name) {
  if (a.rank <= 0 || a.rank > kMaxRank)
    return Err(name, absl::StrCat("rank ", a.rank, " is not in 1..", kMaxRank));
  if (!std::isfinite(a.alpha)) return Err(name, "alpha is not a finite number");
  if (a.tensors.empty()) return Err(name, "has no LoRA tensors");
  std::set<std::string_view> seen;
  for (const auto& t : a.tensors) {
    if (TargetModuleOf(t.target).empty())
      return Err(name, absl::StrCat("target '", t.target,
                                    "' is not a supported projection (blk.N.attn_{q,k,v,output} / "
                                    "ffn_{gate,up,down}.weight)"));
    if (!seen.insert(t.target).second)
      return Err(name, absl::StrCat("target '", t.target, "' appears twice"));
    if (t.in <= 0 || t.out <= 0 || t.in > kMaxDim || t.out > kMaxDim)
      return Err(name, absl::StrCat("target '", t.target, "' has a bad size ", t.out, "x", t.in));
    if (t.a.size() != static_cast<size_t>(a.rank * t.in))
      return Err(name, absl::StrCat("lora_a of '", t.target, "' has ", t.a.size(),
                                    " values, expected rank x in = ", a.rank, "x", t.in));
    if (t.b.size() != static_cast<size_t>(t.out * a.rank))
      return Err(name, absl::StrCat("lora_b of '", t.target, "' has ", t.b.size(),
                                    " values, expected out x rank = ", t.out, "x", a.rank));
    for (const auto* v : {&t.a, &t.b})
      for (float x : *v)
        if (!std::isfinite(x))
          return Err(name, absl::StrCat("'", t.target, "' holds a value that is not finite"));
  }
  return absl::OkStatus();
}

// ---- .yadp ----------------------------------------------------------------

absl::StatusOr<std::vector<uint8_t>> SerializeYadp(const LoraAdapter& a) {
  YUAN_RETURN_IF_ERROR(ValidateAdapter(a, "<to save>"));
  flatbuffers::FlatBufferBuilder fbb(1 << 16);
  auto matrix = [&](const std::vector<float>& v, int64_t rows, int64_t cols) {
    std::vector<int64_t> shape = {rows, cols};
    auto shape_off = fbb.CreateVector(shape);
    fbb.ForceVectorAlignment(v.size() * 4, 1, 32);
    auto data_off = fbb.CreateVector(reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4);
    return fb::CreateMatrix(fbb, fb::TensorDType_F32, shape_off, data_off);
  };
  std::vector<flatbuffers::Offset<fb::LoraTensor>> tensors;
  for (const auto& t : a.tensors) {
    auto target = fbb.CreateString(t.target);
    auto ma = matrix(t.a, a.rank, t.in);
    auto mb = matrix(t.b, t.out, a.rank);
    tensors.push_back(fb::CreateLoraTensor(fbb, target, ma, mb));
  }
  std::vector<flatbuffers::Offset<fb::BaseTensor>> base_tensors;
  for (const auto& bt : a.base.tensors)
    base_tensors.push_back(fb::CreateBaseTensorDirect(fbb, bt.name.c_str(), &bt.ne));
  auto base = fb::CreateBaseFingerprintDirect(fbb, a.base.architecture.c_str(), a.base.name.c_str(),
                                              &base_tensors, a.base.content_hash, a.base.n_head,
                                              a.base.n_head_kv, a.base.qk_permuted);
  const auto& p = a.provenance;
  auto prov = fb::CreateProvenanceDirect(fbb, p.trainer_version.c_str(), p.data_hash.c_str(),
                                         p.steps, p.created_unix, p.source.c_str());
  auto modules = fbb.CreateVectorOfStrings(a.target_modules);
  auto tensors_off = fbb.CreateVector(tensors);
  auto root = fb::CreateAdapter(fbb, kYadpVersion, a.rank, a.alpha, a.use_rslora, modules,
                                tensors_off, base, prov);
  fb::FinishAdapterBuffer(fbb, root);
  return std::vector<uint8_t>(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
}

absl::Status SaveAdapter(const LoraAdapter& adapter, const std::string& path) {
  YUAN_ASSIGN_OR_RETURN(auto bytes, SerializeYadp(adapter));
  return WriteBytes(path, bytes.data(), bytes.size());
}

// Element i of a [long] vector. FlatBuffers 2.0.8's verifier checks the
// alignment of a vector's length, not of 8-byte elements, so a corrupt file
// can place them at a 4-byte boundary: read through memcpy, never in place.
int64_t LoadI64(const flatbuffers::Vector<int64_t>* v, flatbuffers::uoffset_t i) {
  int64_t x;
  std::memcpy(&x, v->Data() + size_t{i} * sizeof(int64_t), sizeof x);
  return flatbuffers::EndianScalar(x);
}

absl::StatusOr<LoraAdapter> ParseYadp(const void* data, size_t size, std::string_view name) {
  const auto* buf = static_cast<const uint8_t*>(data);
  if (size < 8 || !flatbuffers::BufferHasIdentifier(buf, fb::AdapterIdentifier()))
    return Err(name, "not a yuan adapter file (no \"YADP\" identifier)");
  if (size >= FLATBUFFERS_MAX_BUFFER_SIZE) return Err(name, "file too large");
  // The generated verifier reads scalars in place: give it an aligned copy
  // when the caller's buffer is not.
  std::vector<uint8_t> copy;
  if (reinterpret_cast<uintptr_t>(buf) % 32 != 0) {
    copy.resize(size + 32);
    size_t shift = (32 - reinterpret_cast<uintptr_t>(copy.data()) % 32) % 32;
    std::memcpy(copy.data() + shift, buf, size);
    buf = copy.data() + shift;
  }
  flatbuffers::Verifier verifier(buf, size, /*max_depth=*/16, /*max_tables=*/1 << 22);
  if (!fb::VerifyAdapterBuffer(verifier))
    return Err(name, "the FlatBuffers verifier rejects the file (truncated or corrupt)");
  const fb::Adapter* root = fb::GetAdapter(buf);
  if (root->version() == 0 || root->version() > kYadpVersion)
    return Err(name, absl::StrCat("format version ", root->version(), " is not supported (this build reads 1..",
                                  kYadpVersion, ")"));
  LoraAdapter a;
  a.rank = root->rank();
  a.alpha = root->alpha();
  a.use_rslora = root->use_rslora();
  if (a.rank <= 0 || a.rank > kMaxRank)
    return Err(name, absl::StrCat("rank ", a.rank, " is not in 1..", kMaxRank));
  if (!root->tensors()) return Err(name, "has no tensor list");
  auto matrix = [&](const fb::Matrix* m, std::string_view which, const std::string& target,
                    int64_t* rows, int64_t* cols, std::vector<float>* out) -> absl::Status {
    std::string what = absl::StrCat(Sv(which), " of '", target, "'");
    if (!m || !m->shape() || !m->data()) return Err(name, absl::StrCat(what, " is missing"));
    if (m->dtype() > fb::TensorDType_MAX)
      return Err(name, absl::StrCat(what, " has unknown dtype ", static_cast<int>(m->dtype())));
    if (m->shape()->size() != 2)
      return Err(name, absl::StrCat(what, " is not 2-D (", m->shape()->size(), " dims)"));
    *rows = LoadI64(m->shape(), 0);
    *cols = LoadI64(m->shape(), 1);
    if (*rows <= 0 || *cols <= 0 || *rows > kMaxDim || *cols > kMaxDim)
      return Err(name, absl::StrCat(what, " has a bad shape [", *rows, ", ", *cols, "]"));
    const size_t elem = m->dtype() == fb::TensorDType_F32 ? 4 : 2;
    const uint64_t n = static_cast<uint64_t>(*rows) * static_cast<uint64_t>(*cols);
    if (m->data()->size() != n * elem)
      return Err(name, absl::StrCat(what, " holds ", m->data()->size(), " bytes, shape [", *rows, ", ",
                                    *cols, "] needs ", n * elem));
    if ((m->data()->data() - buf) % 32 != 0)
      return Err(name, absl::StrCat(what, " data is not 32-byte aligned"));
    out->resize(n);
    ToFloat(m->dtype(), m->data()->data(), n, out->data());
    return absl::OkStatus();
  };
  for (const fb::LoraTensor* t : *root->tensors()) {
    if (!t || !t->target()) return Err(name, "a tensor has no target name");
    LoraTensor lt;
    lt.target = t->target()->str();
    int64_t ar, ac, br, bc;
    YUAN_RETURN_IF_ERROR(matrix(t->lora_a(), "lora_a", lt.target, &ar, &ac, &lt.a));
    YUAN_RETURN_IF_ERROR(matrix(t->lora_b(), "lora_b", lt.target, &br, &bc, &lt.b));
    if (ar != a.rank || bc != a.rank)
      return Err(name, absl::StrCat("'", lt.target, "': lora_a [", ar, ", ", ac, "] and lora_b [", br,
                                    ", ", bc, "] do not match rank ", a.rank));
    lt.in = ac;
    lt.out = br;
    a.tensors.push_back(std::move(lt));
  }
  if (root->target_modules())
    for (const auto* s : *root->target_modules())
      if (s) a.target_modules.push_back(s->str());
  if (const fb::BaseFingerprint* b = root->base()) {
    if (b->architecture()) a.base.architecture = b->architecture()->str();
    if (b->name()) a.base.name = b->name()->str();
    a.base.content_hash = b->content_hash();
    a.base.n_head = b->n_head();
    a.base.n_head_kv = b->n_head_kv();
    a.base.qk_permuted = b->qk_permuted();
    if (a.base.n_head < 0 || a.base.n_head_kv < 0) return Err(name, "negative head count");
    if (b->tensors())
      for (const auto* bt : *b->tensors()) {
        if (!bt || !bt->name() || !bt->ne() || bt->ne()->size() < 1 || bt->ne()->size() > 4)
          return Err(name, "a base fingerprint tensor has no name or a bad shape");
        std::vector<int64_t> ne(bt->ne()->size());
        for (flatbuffers::uoffset_t d = 0; d < bt->ne()->size(); ++d) ne[d] = LoadI64(bt->ne(), d);
        a.base.tensors.push_back({bt->name()->str(), std::move(ne)});
      }
  }
  if (const fb::Provenance* p = root->provenance()) {
    if (p->trainer_version()) a.provenance.trainer_version = p->trainer_version()->str();
    if (p->data_hash()) a.provenance.data_hash = p->data_hash()->str();
    if (p->source()) a.provenance.source = p->source()->str();
    a.provenance.steps = p->steps();
    a.provenance.created_unix = p->created_unix();
  }
  YUAN_RETURN_IF_ERROR(ValidateAdapter(a, name));
  Canonicalize(&a);
  return a;
}

// ---- PEFT -------------------------------------------------------------------

absl::StatusOr<LoraAdapter> LoadPeftAdapter(const std::string& dir, const AdapterLoadOptions& options) {
  const std::string cfg_path = (fs::path(dir) / "adapter_config.json").string();
  YUAN_ASSIGN_OR_RETURN(std::string text, ReadText(cfg_path));
  nlohmann::json cfg = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (cfg.is_discarded() || !cfg.is_object()) return Err(cfg_path, "is not a JSON object");
  auto peft_type = cfg.find("peft_type");
  if (peft_type != cfg.end() && !(peft_type->is_string() && *peft_type == "LORA"))
    return absl::UnimplementedError(absl::StrCat("adapter '", cfg_path, "': peft_type ", peft_type->dump(),
                                                 " is not supported (only LORA)"));
  for (const char* key : {"use_dora"})
    if (auto it = cfg.find(key); it != cfg.end() && it->is_boolean() && it->get<bool>())
      return absl::UnimplementedError(absl::StrCat("adapter '", cfg_path, "': ", key, " is not supported"));
  for (const char* key : {"rank_pattern", "alpha_pattern"})
    if (auto it = cfg.find(key); it != cfg.end() && it->is_object() && !it->empty())
      return absl::UnimplementedError(absl::StrCat("adapter '", cfg_path, "': per-module ", key,
                                                   " is not supported"));
  LoraAdapter a;
  auto r = cfg.find("r");
  if (r == cfg.end() || !r->is_number_integer()) return Err(cfg_path, "\"r\" is missing or not an integer");
  if (r->get<int64_t>() <= 0 || r->get<int64_t>() > kMaxRank)
    return Err(cfg_path, absl::StrCat("\"r\" = ", r->get<int64_t>(), " is not in 1..", kMaxRank));
  a.rank = static_cast<int32_t>(r->get<int64_t>());
  auto alpha = cfg.find("lora_alpha");
  if (alpha == cfg.end() || !alpha->is_number()) return Err(cfg_path, "\"lora_alpha\" is missing or not a number");
  a.alpha = alpha->get<float>();
  if (auto it = cfg.find("use_rslora"); it != cfg.end()) {
    if (!it->is_boolean()) return Err(cfg_path, "\"use_rslora\" is not a boolean");
    a.use_rslora = it->get<bool>();
  }
  if (auto it = cfg.find("base_model_name_or_path"); it != cfg.end() && it->is_string())
    a.base.name = it->get<std::string>();
  a.provenance.source = "peft";
  if (auto it = cfg.find("revision"); it != cfg.end() && it->is_string())
    a.provenance.trainer_version = absl::StrCat("peft revision ", it->get<std::string>());

  const std::string st_path = (fs::path(dir) / "adapter_model.safetensors").string();
  if (!fs::exists(st_path)) {
    if (fs::exists(fs::path(dir) / "adapter_model.bin"))
      return absl::UnimplementedError(absl::StrCat("adapter '", dir,
                                                   "': adapter_model.bin (pickle) is not read; save it as safetensors"));
    return Err(dir, "has no adapter_model.safetensors");
  }
  YUAN_ASSIGN_OR_RETURN(auto st, SafetensorsFile::Open(st_path));
  std::map<std::string, std::string> meta(st->metadata().begin(), st->metadata().end());
  std::map<std::string, LoraTensor> pairs;
  std::map<std::string, std::pair<bool, bool>> have;
  for (const SafetensorsTensor& t : st->tensors()) {
    std::string_view n = t.name;
    bool is_a = ConsumeSuffix(&n, ".lora_A.weight");
    bool is_b = !is_a && ConsumeSuffix(&n, ".lora_B.weight");
    if (!is_a && !is_b)
      return absl::UnimplementedError(absl::StrCat("adapter '", st_path, "': tensor '", t.name,
                                                   "' is not a LoRA A/B weight (DoRA, embeddings and "
                                                   "modules_to_save are not supported)"));
    std::string target = PeftModuleToGguf(n);
    if (target.empty())
      return absl::UnimplementedError(absl::StrCat("adapter '", st_path, "': tensor '", t.name,
                                                   "' targets a module yuan does not adapt (q/k/v/o/gate/up/down_proj)"));
    if (!t.type || (*t.type != DType::kF32 && *t.type != DType::kF16 && *t.type != DType::kBF16))
      return Err(st_path, absl::StrCat("tensor '", t.name, "' has dtype ", t.dtype, " (want F32, F16 or BF16)"));
    if (t.shape.size() != 2) return Err(st_path, absl::StrCat("tensor '", t.name, "' is not 2-D"));
    const int64_t rows = t.shape[0], cols = t.shape[1];
    if (rows <= 0 || cols <= 0 || rows > kMaxDim || cols > kMaxDim)
      return Err(st_path, absl::StrCat("tensor '", t.name, "' has a bad shape"));
    if (is_a ? rows != a.rank : cols != a.rank)
      return Err(st_path, absl::StrCat("tensor '", t.name, "' has shape [", rows, ", ", cols,
                                       "], which does not match r = ", a.rank));
    LoraTensor& lt = pairs[target];
    lt.target = target;
    auto& h = have[target];
    if (is_a ? h.first : h.second) return Err(st_path, absl::StrCat("tensor '", t.name, "' appears twice"));
    (is_a ? h.first : h.second) = true;
    std::vector<float>& dst = is_a ? lt.a : lt.b;
    dst.resize(static_cast<size_t>(rows * cols));
    ToFloat(*FbDTypeOf(*t.type), t.data, dst.size(), dst.data());
    (is_a ? lt.in : lt.out) = is_a ? cols : rows;
  }
  for (auto& [target, lt] : pairs) {
    if (!have[target].first || !have[target].second)
      return Err(st_path, absl::StrCat("'", target, "' has only one of lora_A / lora_B"));
    a.tensors.push_back(std::move(lt));
  }
  // yuan's own export records the architecture (safetensors __metadata__,
  // which PEFT ignores) so that the llama q/k order survives a round trip.
  if (auto it = meta.find("yuan.architecture"); it != meta.end()) a.base.architecture = it->second;
  if (auto it = meta.find("yuan.n_head"); it != meta.end()) absl::SimpleAtoi(it->second, &a.base.n_head);
  if (auto it = meta.find("yuan.n_head_kv"); it != meta.end()) absl::SimpleAtoi(it->second, &a.base.n_head_kv);
  if (auto it = meta.find("yuan.content_hash"); it != meta.end())
    a.base.content_hash = std::strtoull(it->second.c_str(), nullptr, 16);
  if (a.base.n_head < 0 || a.base.n_head_kv < 0) return Err(st_path, "negative head count in the metadata");
  YUAN_RETURN_IF_ERROR(ValidateAdapter(a, st_path));
  Canonicalize(&a);
  a.base.qk_permuted = false;  // PEFT keeps HF's row order
  if (options.base) {
    const ModelConfig& c = options.base->config();
    if (a.base.architecture.empty()) a.base.architecture = c.arch;
    if (a.base.n_head == 0) a.base.n_head = c.n_head;
    if (a.base.n_head_kv == 0) a.base.n_head_kv = c.n_head_kv;
    if (c.arch == "llama" && c.rope_style == RopeStyle::kNormal)
      YUAN_RETURN_IF_ERROR(SetQkOrder(&a, true, dir));
  } else if (a.base.architecture == "llama") {
    YUAN_RETURN_IF_ERROR(SetQkOrder(&a, true, dir));
  }
  return a;
}

absl::Status ExportPeft(const LoraAdapter& adapter, const std::string& dir,
                        std::string_view base_architecture) {
  YUAN_RETURN_IF_ERROR(ValidateAdapter(adapter, "<to export>"));
  LoraAdapter a = adapter;
  if (!base_architecture.empty()) a.base.architecture = std::string(base_architecture);
  YUAN_RETURN_IF_ERROR(SetQkOrder(&a, false, "<to export>"));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("cannot create '", dir, "': ", ec.message()));

  nlohmann::json modules = nlohmann::json::array();
  for (const auto& m : a.target_modules)
    for (const auto& p : kProjections)
      if (p.module == m) modules.push_back(std::string(p.peft.substr(p.peft.find('.') + 1)));
  nlohmann::json cfg = {
      {"peft_type", "LORA"},
      {"task_type", "CAUSAL_LM"},
      {"r", a.rank},
      {"lora_alpha", a.alpha},
      {"use_rslora", a.use_rslora},
      {"target_modules", modules},
      {"lora_dropout", 0.0},
      {"bias", "none"},
      {"fan_in_fan_out", false},
      {"inference_mode", true},
      {"use_dora", false},
      {"rank_pattern", nlohmann::json::object()},
      {"alpha_pattern", nlohmann::json::object()},
      {"modules_to_save", nullptr},
      {"base_model_name_or_path", a.base.name},
  };
  const std::string cfg_text = cfg.dump(2) + "\n";
  YUAN_RETURN_IF_ERROR(WriteBytes((fs::path(dir) / "adapter_config.json").string(), cfg_text.data(),
                                  cfg_text.size()));
  SafetensorsWriter w;
  w.AddMetadata("format", "pt");
  if (!a.base.architecture.empty()) w.AddMetadata("yuan.architecture", a.base.architecture);
  if (a.base.n_head > 0) w.AddMetadata("yuan.n_head", absl::StrCat(a.base.n_head));
  if (a.base.n_head_kv > 0) w.AddMetadata("yuan.n_head_kv", absl::StrCat(a.base.n_head_kv));
  if (a.base.content_hash != 0)
    w.AddMetadata("yuan.content_hash", absl::StrFormat("%016x", a.base.content_hash));
  for (const auto& t : a.tensors) {
    const std::string m = GgufToPeftModule(t.target);
    w.AddTensor(m + ".lora_A.weight", DType::kF32, {a.rank, t.in}, t.a.data(), t.a.size() * 4);
    w.AddTensor(m + ".lora_B.weight", DType::kF32, {t.out, a.rank}, t.b.data(), t.b.size() * 4);
  }
  return w.WriteFile((fs::path(dir) / "adapter_model.safetensors").string());
}

// ---- GGUF (llama.cpp) --------------------------------------------------------
//
// llama.cpp's layout (convert_lora_to_gguf.py; src/llama-adapter.cpp,
// llama_adapter_lora_init_impl): general.type = "adapter",
// general.architecture, adapter.type = "lora", adapter.lora.alpha (f32; 0
// means "no alpha": scale 1). For base weight NAME (ne = {in, out}) the file
// holds NAME.lora_a with ne = {in, rank} (PEFT's A [rank x in], untransposed)
// and NAME.lora_b with ne = {rank, out} (B [out x rank]); the loader checks
// model ne[0] == a.ne[0], model ne[1] == b.ne[1], a.ne[1] == b.ne[0], and
// scales by alpha / rank with rank = b.ne[0]. For llama, B of q/k carries
// the converter's row permutation. yuan adds yuan.adapter.* keys (ignored by
// llama.cpp) so that rsLoRA and the fingerprint survive a round trip.

absl::StatusOr<LoraAdapter> GgufToAdapter(const GgufFile& f) {
  const std::string& name = f.path();
  YUAN_ASSIGN_OR_RETURN(std::string_view type, f.GetString("general.type", ""));
  if (type != "adapter")
    return Err(name, absl::StrCat("general.type is '", Sv(type), "', not 'adapter' (a model, not a LoRA?)"));
  YUAN_ASSIGN_OR_RETURN(std::string_view atype, f.GetString("adapter.type", ""));
  if (atype != "lora") return absl::UnimplementedError(absl::StrCat("adapter '", name, "': adapter.type '", Sv(atype), "' is not supported (only lora)"));
  LoraAdapter a;
  YUAN_ASSIGN_OR_RETURN(std::string_view arch, f.GetString("general.architecture", ""));
  a.base.architecture = std::string(arch);
  YUAN_ASSIGN_OR_RETURN(double alpha, f.GetFloat("adapter.lora.alpha", 0.0));
  YUAN_ASSIGN_OR_RETURN(bool rslora, f.GetBool("yuan.adapter.use_rslora", false));
  YUAN_ASSIGN_OR_RETURN(double yuan_alpha, f.GetFloat("yuan.adapter.alpha", std::nan("")));
  YUAN_ASSIGN_OR_RETURN(int64_t n_head, f.GetInt("yuan.adapter.base.n_head", 0));
  YUAN_ASSIGN_OR_RETURN(int64_t n_head_kv, f.GetInt("yuan.adapter.base.n_head_kv", 0));
  // A u64 (GetInt would refuse values above INT64_MAX).
  uint64_t hash = 0;
  if (const GgufValue* v = f.Find("yuan.adapter.base.content_hash")) {
    if (v->type != GgufType::kUint64) return Err(name, "yuan.adapter.base.content_hash is not a uint64");
    hash = v->u;
  }
  YUAN_ASSIGN_OR_RETURN(std::string_view base_name, f.GetString("yuan.adapter.base.name", ""));
  YUAN_ASSIGN_OR_RETURN(std::string_view source, f.GetString("yuan.adapter.source", "gguf"));
  a.base.n_head = static_cast<int32_t>(std::clamp<int64_t>(n_head, 0, 1 << 20));
  a.base.n_head_kv = static_cast<int32_t>(std::clamp<int64_t>(n_head_kv, 0, 1 << 20));
  a.base.content_hash = hash;
  a.base.name = std::string(base_name);
  a.provenance.source = std::string(source);
  std::map<std::string, std::pair<const GgufTensor*, const GgufTensor*>> pairs;
  for (const GgufTensor& t : f.tensors()) {
    std::string_view n = t.name;
    bool is_a = ConsumeSuffix(&n, ".lora_a");
    bool is_b = !is_a && ConsumeSuffix(&n, ".lora_b");
    if (!is_a && !is_b)
      return absl::UnimplementedError(absl::StrCat("adapter '", name, "': tensor '", Sv(t.name),
                                                   "' is not a .lora_a/.lora_b tensor"));
    auto& p = pairs[std::string(n)];
    const GgufTensor*& slot = is_a ? p.first : p.second;
    if (slot) return Err(name, absl::StrCat("tensor '", Sv(t.name), "' appears twice"));
    slot = &t;
  }
  int64_t rank = -1;
  for (const auto& [target, p] : pairs) {
    if (!p.first || !p.second) return Err(name, absl::StrCat("'", target, "' has only one of lora_a / lora_b"));
    const GgufTensor& ta = *p.first;
    const GgufTensor& tb = *p.second;
    for (const GgufTensor* t : {&ta, &tb}) {
      if (t->n_dims != 2) return Err(name, absl::StrCat("tensor '", Sv(t->name), "' is not 2-D"));
      auto info = GetDTypeInfo(static_cast<uint32_t>(t->type));
      if (!info || !info->can_compute || t->ne[0] % info->block_size != 0)
        return Err(name, absl::StrCat("tensor '", Sv(t->name), "' has type ", Sv(DTypeName(t->type)),
                                      ", which yuan cannot read"));
      if (t->ne[0] <= 0 || t->ne[1] <= 0 || t->ne[0] > kMaxDim || t->ne[1] > kMaxDim)
        return Err(name, absl::StrCat("tensor '", Sv(t->name), "' has a bad shape"));
    }
    if (ta.ne[1] != tb.ne[0])
      return Err(name, absl::StrCat("'", target, "': lora_a ne[1] = ", ta.ne[1], " differs from lora_b ne[0] = ",
                                    tb.ne[0], " (the rank)"));
    if (rank >= 0 && ta.ne[1] != rank)
      return Err(name, absl::StrCat("'", target, "' has rank ", ta.ne[1], ", others ", rank,
                                    " (one rank per adapter)"));
    rank = ta.ne[1];
    LoraTensor lt;
    lt.target = target;
    lt.in = ta.ne[0];
    lt.out = tb.ne[1];
    auto read = [&](const GgufTensor& t, std::vector<float>* dst) {
      dst->resize(static_cast<size_t>(t.ne[0] * t.ne[1]));
      const uint64_t row_bytes = t.n_bytes / static_cast<uint64_t>(t.ne[1]);
      for (int64_t r = 0; r < t.ne[1]; ++r)
        DequantizeRow(t.type, t.data + r * row_bytes, dst->data() + r * t.ne[0], t.ne[0]);
    };
    read(ta, &lt.a);
    read(tb, &lt.b);
    a.tensors.push_back(std::move(lt));
  }
  if (rank <= 0) return Err(name, "has no LoRA tensors");
  if (rank > kMaxRank) return Err(name, absl::StrCat("rank ", rank, " is too large"));
  a.rank = static_cast<int32_t>(rank);
  a.use_rslora = rslora;
  if (!std::isnan(yuan_alpha)) {
    a.alpha = static_cast<float>(yuan_alpha);
  } else {
    // llama.cpp: alpha == 0 means scale 1, i.e. alpha = rank.
    a.alpha = alpha == 0.0 ? static_cast<float>(rank) : static_cast<float>(alpha);
  }
  a.base.qk_permuted = a.base.architecture == "llama";
  YUAN_RETURN_IF_ERROR(ValidateAdapter(a, name));
  Canonicalize(&a);
  return a;
}

absl::StatusOr<LoraAdapter> LoadGgufAdapter(const std::string& path) {
  YUAN_ASSIGN_OR_RETURN(auto f, GgufFile::Open(path));
  return GgufToAdapter(*f);
}

absl::Status ExportGgufLora(const LoraAdapter& adapter, const std::string& path) {
  YUAN_RETURN_IF_ERROR(ValidateAdapter(adapter, "<to export>"));
  LoraAdapter a = adapter;
  if (a.base.architecture.empty())
    return absl::FailedPreconditionError(
        "a GGUF LoRA needs the base architecture (general.architecture); give the base model (--base)");
  if (a.base.architecture == "llama") YUAN_RETURN_IF_ERROR(SetQkOrder(&a, true, "<to export>"));
  GgufWriter w;
  w.AddString("general.architecture", a.base.architecture);
  w.AddString("general.type", "adapter");
  w.AddString("adapter.type", "lora");
  // llama.cpp scales by alpha / rank: give it the alpha with that effect.
  const float eff_alpha = a.scaling() * static_cast<float>(a.rank);
  w.AddFloat32("adapter.lora.alpha", eff_alpha);
  w.AddFloat32("yuan.adapter.alpha", a.alpha);
  w.AddBool("yuan.adapter.use_rslora", a.use_rslora);
  if (!a.base.name.empty()) w.AddString("yuan.adapter.base.name", a.base.name);
  if (a.base.n_head > 0) w.AddInt32("yuan.adapter.base.n_head", a.base.n_head);
  if (a.base.n_head_kv > 0) w.AddInt32("yuan.adapter.base.n_head_kv", a.base.n_head_kv);
  if (a.base.content_hash) w.AddUint64("yuan.adapter.base.content_hash", a.base.content_hash);
  if (!a.provenance.source.empty()) w.AddString("yuan.adapter.source", a.provenance.source);
  for (const auto& t : a.tensors) {
    w.AddTensor(t.target + ".lora_a", DType::kF32, {t.in, a.rank}, t.a.data(), t.a.size() * 4);
    w.AddTensor(t.target + ".lora_b", DType::kF32, {a.rank, t.out}, t.b.data(), t.b.size() * 4);
  }
  return w.WriteFile(path);
}

// ---- detection / loading ----------------------------------------------------

absl::StatusOr<AdapterFormat> DetectAdapterFormat(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    if (fs::exists(fs::path(path) / "adapter_config.json")) return AdapterFormat::kPeft;
    return Err(path, "is a folder without adapter_config.json (not a PEFT adapter)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open '", path, "'"));
  char head[8] = {};
  in.read(head, 8);
  if (in.gcount() >= 4 && std::memcmp(head, "GGUF", 4) == 0) return AdapterFormat::kGguf;
  if (in.gcount() == 8 && std::memcmp(head + 4, "YADP", 4) == 0) return AdapterFormat::kYadp;
  return Err(path, "is neither a yuan adapter (.yadp), a GGUF LoRA nor a PEFT folder");
}

absl::StatusOr<LoraAdapter> LoadAdapter(const std::string& path, const AdapterLoadOptions& options) {
  YUAN_ASSIGN_OR_RETURN(AdapterFormat format, DetectAdapterFormat(path));
  switch (format) {
    case AdapterFormat::kPeft: return LoadPeftAdapter(path, options);
    case AdapterFormat::kGguf: return LoadGgufAdapter(path);
    case AdapterFormat::kYadp: {
      YUAN_ASSIGN_OR_RETURN(auto file, MappedFile::Open(path));
      return ParseYadp(file->data(), file->size(), path);
    }
  }
  return absl::InternalError("unreachable");
}

// ---- fingerprint ---------------------------------------------------------

uint64_t BaseContentHash(const GgufFile& file) {
  std::vector<const GgufTensor*> ts;
  for (const auto& t : file.tensors()) ts.push_back(&t);
  std::sort(ts.begin(), ts.end(), [](const GgufTensor* x, const GgufTensor* y) { return x->name < y->name; });
  constexpr uint64_t kWhole = 32 * 1024, kEdge = 4096, kWindow = 256, kWindows = 64;
  Fnv1a h;
  for (const GgufTensor* t : ts) {
    h.Add(t->name.data(), t->name.size());
    h.AddValue<uint32_t>(static_cast<uint32_t>(t->type));
    for (int d = 0; d < 4; ++d) h.AddValue<int64_t>(t->ne[d]);
    h.AddValue<uint64_t>(t->n_bytes);
    const uint64_t n = t->n_bytes;
    if (n <= kWhole) {
      h.Add(t->data, n);
    } else {
      h.Add(t->data, kEdge);
      for (uint64_t i = 0; i < kWindows; ++i) {
        uint64_t off = kEdge + (n - 2 * kEdge - kWindow) * i / (kWindows - 1);
        h.Add(t->data + off, kWindow);
      }
      h.Add(t->data + n - kEdge, kEdge);
    }
    // The sampled pages (and the neighbours the kernel maps around each
    // fault) would otherwise stay resident: up to the whole file for a
    // model whose weights the engine has repacked and released.
    if (file.mapped()) ReleaseMappedPages(t->data, n);
  }
  return h.h;
}

absl::Status FillFingerprint(const Model& model, LoraAdapter* a) {
  const ModelConfig& c = model.config();
  const GgufFile& f = model.gguf();
  if (!a->base.architecture.empty() && a->base.architecture != c.arch)
    return absl::FailedPreconditionError(absl::StrCat("the adapter was made for architecture '", a->base.architecture,
                                                      "', the model is '", c.arch, "'"));
  const bool was_llama = a->base.architecture == "llama";
  a->base.architecture = c.arch;
  a->base.name = c.name.empty() ? a->base.name : c.name;
  a->base.n_head = c.n_head;
  a->base.n_head_kv = c.n_head_kv;
  // An imported adapter whose architecture was unknown is in HF row order;
  // bring q/k to the model's order.
  const bool want_permuted = c.arch == "llama" && c.rope_style == RopeStyle::kNormal;
  if (!was_llama || a->base.qk_permuted != want_permuted)
    YUAN_RETURN_IF_ERROR(SetQkOrder(a, want_permuted, "<fingerprint>"));
  a->base.tensors.clear();
  for (const auto& t : a->tensors) {
    const GgufTensor* bt = f.FindTensor(t.target);
    if (!bt)
      return absl::FailedPreconditionError(absl::StrCat("the model has no tensor '", t.target, "' that the adapter targets"));
    if (bt->ne[0] != t.in || bt->ne[1] != t.out)
      return absl::FailedPreconditionError(absl::StrCat("'", t.target, "' is ", bt->ne[1], "x", bt->ne[0],
                                                        " in the model, ", t.out, "x", t.in, " in the adapter"));
    a->base.tensors.push_back({t.target, std::vector<int64_t>(bt->ne, bt->ne + bt->n_dims)});
  }
  a->base.content_hash = BaseContentHash(f);
  return absl::OkStatus();
}

absl::Status CheckAdapterMatchesBase(const LoraAdapter& a, const Model& model) {
  const ModelConfig& c = model.config();
  const GgufFile& f = model.gguf();
  auto mismatch = [](std::string what) {
    return absl::FailedPreconditionError(absl::StrCat("adapter does not match the base model: ", what));
  };
  if (!a.base.architecture.empty() && a.base.architecture != c.arch)
    return mismatch(absl::StrCat("architecture: adapter '", a.base.architecture, "', model '", c.arch, "'"));
  for (const auto& t : a.tensors) {
    const GgufTensor* bt = f.FindTensor(t.target);
    if (!bt) return mismatch(absl::StrCat("missing tensor: the model has no '", t.target, "'"));
    if (bt->n_dims != 2 || bt->ne[0] != t.in || bt->ne[1] != t.out)
      return mismatch(absl::StrCat("shape of '", t.target, "': model ", bt->ne[1], "x", bt->ne[0], ", adapter ",
                                   t.out, "x", t.in, " (out x in)"));
  }
  for (const auto& bt : a.base.tensors) {
    const GgufTensor* mt = f.FindTensor(bt.name);
    if (!mt) return mismatch(absl::StrCat("missing tensor: the model has no '", bt.name, "'"));
    std::vector<int64_t> ne(mt->ne, mt->ne + mt->n_dims);
    if (ne != bt.ne)
      return mismatch(absl::StrCat("shape of '", bt.name, "' differs from the fingerprint's"));
  }
  if (c.arch == "llama") {
    const bool want = c.rope_style == RopeStyle::kNormal;
    bool has_qk = false;
    for (const auto& t : a.tensors) has_qk |= IsQk(t.target);
    if (has_qk && a.base.qk_permuted != want)
      return mismatch(absl::StrCat("q/k row order: the adapter's is ", a.base.qk_permuted ? "llama.cpp's" : "HF's",
                                   ", the model's is ", want ? "llama.cpp's" : "HF's",
                                   " (convert the adapter with --base)"));
  }
  if (a.base.content_hash != 0) {
    const uint64_t h = BaseContentHash(f);
    if (h != a.base.content_hash)
      return mismatch(absl::StrFormat("content hash: adapter made for weights %016x, model has %016x "
                                      "(same shapes, other weights)",
                                      a.base.content_hash, h));
  }
  return absl::OkStatus();
}

}  // namespace yuan
