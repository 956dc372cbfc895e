// Session state bytes, little-endian:
//   "YUANKV01"  magic                      8
//   u32         format version (1)         4
//   u64         model fingerprint          8
//   u32 x4      n_layer, kv_dim, n_vocab, KV dtype (ggml id)  16
//   u32         n_past                     4
//   i32[n_past] tokens
//   u32         n_logits (0 or n_vocab), then f32[n_logits]
//   per layer:  K[n_past * kv_dim], V[n_past * kv_dim] in the KV dtype
//   u64         FNV-1a checksum of all bytes before it
#include <cstring>

#include "runtime/core/status.h"
#include "runtime/engine/engine.h"

namespace yuan {
namespace {

constexpr char kMagic[8] = {'Y', 'U', 'A', 'N', 'K', 'V', '0', '1'};
constexpr uint32_t kVersion = 1;

uint64_t Fnv1a(const uint8_t* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

template <typename T>
void Put(std::string* out, const T& v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof v);
}

class Cursor {
 public:
  Cursor(std::string_view d) : d_(d) {}
  template <typename T>
  bool Get(T* v) { return Bytes(v, sizeof *v); }
  bool Bytes(void* dst, size_t n) {
    if (n == 0) return true;  // dst may be an empty vector's null data()
    if (n > d_.size() - pos_) return false;
    std::memcpy(dst, d_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  size_t remaining() const { return d_.size() - pos_; }

 private:
  std::string_view d_;
  size_t pos_ = 0;
};

}  // namespace

std::string Session::SaveState() const {
  const ModelConfig& c = engine_->model().config();
  const uint32_t n_past = static_cast<uint32_t>(history_.size());
  const uint64_t row = static_cast<uint64_t>(cache_.kv_dim());
  const uint64_t row_bytes = cache_.row_bytes();
  std::string out;
  out.reserve(64 + n_past * 4 + logits_.size() * 4 + 2 * c.n_layer * n_past * row_bytes);
  out.append(kMagic, sizeof kMagic);
  Put(&out, kVersion);
  Put(&out, engine_->fingerprint());
  Put(&out, static_cast<uint32_t>(c.n_layer));
  Put(&out, static_cast<uint32_t>(row));
  Put(&out, static_cast<uint32_t>(c.n_vocab));
  Put(&out, static_cast<uint32_t>(cache_.type()));
  Put(&out, n_past);
  out.append(reinterpret_cast<const char*>(history_.data()), n_past * sizeof(int32_t));
  Put(&out, static_cast<uint32_t>(logits_.size()));
  out.append(reinterpret_cast<const char*>(logits_.data()), logits_.size() * sizeof(float));
  for (int l = 0; l < c.n_layer; ++l) {
    if (n_past == 0) break;
    out.append(static_cast<const char*>(cache_.k(l, 0)), n_past * row_bytes);
    out.append(static_cast<const char*>(cache_.v(l, 0)), n_past * row_bytes);
  }
  Put(&out, Fnv1a(reinterpret_cast<const uint8_t*>(out.data()), out.size()));
  return out;
}

absl::Status Session::LoadState(std::string_view data) {
  const ModelConfig& c = engine_->model().config();
  if (data.size() < sizeof kMagic + 8 || std::memcmp(data.data(), kMagic, sizeof kMagic) != 0) {
    return FormatError("not a yuan session state (bad magic)");
  }
  uint64_t stored_sum;
  std::memcpy(&stored_sum, data.data() + data.size() - 8, 8);
  if (Fnv1a(reinterpret_cast<const uint8_t*>(data.data()), data.size() - 8) != stored_sum) {
    return FormatError("session state is damaged (checksum mismatch)");
  }
  Cursor r(data.substr(sizeof kMagic, data.size() - sizeof kMagic - 8));
  uint32_t version, n_layer, kv_dim, n_vocab, kv_type, n_past, n_logits;
  uint64_t fingerprint;
  if (!r.Get(&version) || !r.Get(&fingerprint) || !r.Get(&n_layer) || !r.Get(&kv_dim) ||
      !r.Get(&n_vocab) || !r.Get(&kv_type) || !r.Get(&n_past)) {
    return FormatError("session state is truncated (header)");
  }
  if (version != kVersion) {
    return FormatError(absl::StrCat("session state format version ", version, " is not supported"));
  }
  if (fingerprint != engine_->fingerprint() || n_layer != static_cast<uint32_t>(c.n_layer) ||
      kv_dim != cache_.kv_dim() || n_vocab != static_cast<uint32_t>(c.n_vocab)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "session state was saved with another model (layers %d, kv dim %d, vocab %d, "
        "fingerprint %016x; this model: %d, %d, %d, %016x)",
        n_layer, kv_dim, n_vocab, fingerprint, c.n_layer, cache_.kv_dim(), c.n_vocab,
        engine_->fingerprint()));
  }
  if (kv_type != static_cast<uint32_t>(cache_.type())) {
    return absl::FailedPreconditionError(
        absl::StrCat("session state holds a ", Sv(DTypeName(static_cast<DType>(kv_type))),
                     " KV cache; this session's is ", Sv(DTypeName(cache_.type()))));
  }
  if (n_past > static_cast<uint32_t>(cache_.capacity())) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "session state holds %d tokens; this session's context is %d", n_past, cache_.capacity()));
  }
  if (static_cast<uint64_t>(n_past) * 4 > r.remaining()) return FormatError("session state is truncated (tokens)");
  std::vector<int32_t> tokens(n_past);
  r.Bytes(tokens.data(), n_past * sizeof(int32_t));
  for (int32_t t : tokens) {
    if (t < 0 || t >= c.n_vocab) return FormatError("session state holds an out-of-range token id");
  }
  if (!r.Get(&n_logits) || (n_logits != 0 && n_logits != n_vocab) ||
      static_cast<uint64_t>(n_logits) * 4 > r.remaining()) {
    return FormatError("session state is truncated or damaged (logits)");
  }
  std::vector<float> logits(n_logits);
  r.Bytes(logits.data(), n_logits * sizeof(float));
  const uint64_t layer_bytes = 2ull * n_past * cache_.row_bytes();
  if (r.remaining() != layer_bytes * n_layer) {
    return FormatError("session state is truncated or has trailing bytes (KV cache)");
  }
  // Everything checked: now modify the session.
  for (uint32_t l = 0; l < n_layer && n_past > 0; ++l) {
    r.Bytes(cache_.k(static_cast<int>(l), 0), n_past * cache_.row_bytes());
    r.Bytes(cache_.v(static_cast<int>(l), 0), n_past * cache_.row_bytes());
  }
  history_ = std::move(tokens);
  logits_ = std::move(logits);
  // A saved state records no adapters: the loaded context counts as the
  // base model's, so a request with adapters recomputes it.
  history_loras_.clear();
  return absl::OkStatus();
}

}  // namespace yuan
