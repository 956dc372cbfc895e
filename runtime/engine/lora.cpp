#include "runtime/engine/lora.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <thread>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "runtime/core/dtype.h"
#include "runtime/core/status.h"
#include "runtime/cpu/kernels.h"

namespace yuan {
namespace {

// "blk.N.<suffix>.weight" -> (N, projection); false for anything else.
bool ParseTarget(std::string_view name, int* layer, LoraProj* proj) {
  constexpr std::string_view kBlk = "blk.", kWeight = ".weight";
  if (name.substr(0, kBlk.size()) != kBlk || name.size() <= kBlk.size() + kWeight.size() ||
      name.substr(name.size() - kWeight.size()) != kWeight) {
    return false;
  }
  std::string_view rest = name.substr(kBlk.size(), name.size() - kBlk.size() - kWeight.size());
  const size_t dot = rest.find('.');
  if (dot == std::string_view::npos || dot == 0) return false;
  int n = -1;
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + dot, n);
  if (ec != std::errc() || end != rest.data() + dot || n < 0) return false;
  const std::string_view suffix = rest.substr(dot + 1);
  static constexpr std::pair<std::string_view, LoraProj> kNames[] = {
      {"attn_q", LoraProj::kQ},      {"attn_k", LoraProj::kK},       {"attn_v", LoraProj::kV},
      {"attn_output", LoraProj::kO}, {"ffn_gate", LoraProj::kGate}, {"ffn_up", LoraProj::kUp},
      {"ffn_down", LoraProj::kDown}};
  for (const auto& [s, p] : kNames) {
    if (suffix == s) {
      *layer = n;
      *proj = p;
      return true;
    }
  }
  return false;
}

const Weight& BaseWeight(const LayerWeights& L, LoraProj p) {
  switch (p) {
    case LoraProj::kQ: return L.wq;
    case LoraProj::kK: return L.wk;
    case LoraProj::kV: return L.wv;
    case LoraProj::kO: return L.wo;
    case LoraProj::kGate: return L.w_gate;
    case LoraProj::kUp: return L.w_up;
    case LoraProj::kDown: return L.w_down;
  }
  return L.wq;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const LoraBinding>> LoraBinding::Create(
    std::shared_ptr<const LoraAdapter> adapter, const Model& model, LoraStorage storage) {
  if (adapter == nullptr) return absl::InvalidArgumentError("no adapter");
  const ModelConfig& c = model.config();
  if (!adapter->base.architecture.empty() && adapter->base.architecture != c.arch) {
    return absl::FailedPreconditionError(absl::StrCat("the adapter was made for architecture '",
                                                      adapter->base.architecture,
                                                      "', the model is '", c.arch, "'"));
  }
  if (adapter->rank <= 0) {
    return absl::FailedPreconditionError(absl::StrCat("the adapter's rank ", adapter->rank,
                                                      " is not positive"));
  }
  const float scaling = adapter->scaling();
  if (!std::isfinite(scaling)) {
    return absl::FailedPreconditionError("the adapter's scaling (alpha / rank) is not finite");
  }
  // The llama q/k rows: the model's GGUF order is llama.cpp's permuted one.
  bool has_qk = false;
  for (const LoraTensor& t : adapter->tensors) {
    int layer;
    LoraProj p;
    if (ParseTarget(t.target, &layer, &p) && (p == LoraProj::kQ || p == LoraProj::kK)) has_qk = true;
  }
  const bool want_permuted = c.arch == "llama" && c.rope_style == RopeStyle::kNormal;
  if (has_qk && adapter->base.qk_permuted != want_permuted) {
    auto copy = std::make_shared<LoraAdapter>(*adapter);
    absl::Status st = FillFingerprint(model, copy.get());  // reorders q/k, checks shapes
    if (!st.ok()) return st;
    adapter = std::move(copy);
  }

  std::shared_ptr<LoraBinding> b(new LoraBinding());
  b->model_ = &model;
  b->rank_ = adapter->rank;
  b->scaling_ = scaling;
  b->storage_ = storage;
  b->pairs_.resize(static_cast<size_t>(c.n_layer));
  const int64_t rank = adapter->rank;
  std::vector<std::array<const LoraTensor*, kLoraProjCount>> src(static_cast<size_t>(c.n_layer));
  for (const LoraTensor& t : adapter->tensors) {
    int layer = -1;
    LoraProj p;
    if (!ParseTarget(t.target, &layer, &p)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the adapter targets '", t.target,
          "', which is not an attention or MLP projection (q, k, v, o, gate, up, down)"));
    }
    if (layer >= c.n_layer) {
      return absl::FailedPreconditionError(absl::StrCat("the adapter targets '", t.target,
                                                        "' but the model has only ", c.n_layer,
                                                        " layers"));
    }
    const Weight& w = BaseWeight(model.weights().layers[static_cast<size_t>(layer)], p);
    if (w.cols != t.in || w.rows != t.out) {
      return absl::FailedPreconditionError(absl::StrCat("'", t.target, "' is ", w.rows, "x", w.cols,
                                                        " in the model, ", t.out, "x", t.in,
                                                        " in the adapter"));
    }
    if (static_cast<int64_t>(t.a.size()) != rank * t.in ||
        static_cast<int64_t>(t.b.size()) != t.out * rank) {
      return absl::FailedPreconditionError(absl::StrCat(
          "'", t.target, "': A has ", t.a.size(), " values and B ", t.b.size(), ", expected ",
          rank * t.in, " and ", t.out * rank, " for rank ", rank));
    }
    LoraPair& slot = b->pairs_[static_cast<size_t>(layer)][static_cast<size_t>(p)];
    if (slot.in != 0) {
      return absl::FailedPreconditionError(absl::StrCat("the adapter targets '", t.target, "' twice"));
    }
    slot.in = t.in;
    slot.out = t.out;
    src[static_cast<size_t>(layer)][static_cast<size_t>(p)] = &t;
  }
  b->Lay(src);
  // From here on the arena holds what the kernels read: keep the adapter's
  // description, not a second (f32) copy of its values for as long as it is
  // served.
  auto described = std::make_shared<LoraAdapter>();
  described->rank = adapter->rank;
  described->alpha = adapter->alpha;
  described->use_rslora = adapter->use_rslora;
  described->target_modules = adapter->target_modules;
  described->base = adapter->base;
  described->provenance = adapter->provenance;
  for (const LoraTensor& t : adapter->tensors) described->tensors.push_back(LoraTensor{t.target, t.in, t.out, {}, {}});
  b->adapter_ = std::move(described);
  return std::shared_ptr<const LoraBinding>(std::move(b));
}

absl::StatusOr<std::shared_ptr<const LoraBinding>> LoadLora(const std::string& path,
                                                            const Model& model) {
  AdapterLoadOptions options;
  options.base = &model;
  YUAN_ASSIGN_OR_RETURN(LoraAdapter adapter, LoadAdapter(path, options));
  YUAN_RETURN_IF_ERROR(CheckAdapterMatchesBase(adapter, model));
  return LoraBinding::Create(std::make_shared<const LoraAdapter>(std::move(adapter)), model);
}

absl::Status CheckLoraSet(const LoraSet& set, const Model& model) {
  for (const LoraChoice& ch : set) {
    if (ch.lora == nullptr) return absl::InvalidArgumentError("an adapter choice has no adapter");
    if (ch.lora->model() != &model) {
      return absl::InvalidArgumentError("an adapter was bound to another model");
    }
    if (!std::isfinite(ch.scale)) return absl::InvalidArgumentError("an adapter scale is not finite");
  }
  return absl::OkStatus();
}

namespace {

constexpr int kBarrierSpins = 1 << 14;  // ~50 µs of pause instructions on Zen 1

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

using Items = LoraItems;

// The first item whose cost starts at or after `target`.
int64_t ItemAtCost(const Items& it, int64_t target) {
  const int64_t n = static_cast<int64_t>(it.cost.size());
  for (int64_t i = 0; i < n; ++i) {
    if (it.cum[i + 1] > target) {
      const int64_t k = (target - it.cum[i] + it.cost[i] - 1) / it.cost[i];
      return it.first[i] + k;
    }
  }
  return it.total_items();
}

// Calls fn(task, row0, row1) for the rows of global items [g0, g1).
template <class Fn>
void ForItems(const Items& it, int64_t g0, int64_t g1, Fn fn) {
  const int64_t n = static_cast<int64_t>(it.cost.size());
  for (int64_t i = 0; i < n && g0 < g1; ++i) {
    const int64_t b = std::max(g0, it.first[i]), e = std::min(g1, it.first[i + 1]);
    if (b < e) fn(i, b - it.first[i], e - it.first[i]);
  }
}

}  // namespace

void LoraItems::Add(int64_t rows, int64_t item_cost) {
  if (first.empty()) {
    first.push_back(0);
    cum.push_back(0);
  }
  first.push_back(first.back() + rows);
  cost.push_back(item_cost);
  cum.push_back(cum.back() + rows * item_cost);
}

void LoraItems::Clear() {
  first.clear();
  cost.clear();
  cum.clear();
}

void LoraApply(const LoraTask* tasks, int64_t n_tasks, LoraScratch* scratch, ThreadPool* pool) {
  if (n_tasks <= 0) return;
  const kernels::KernelSet& ks = kernels::ActiveKernels();
  std::vector<int64_t>& u_off = scratch->u_off;
  u_off.assign(static_cast<size_t>(n_tasks) + 1, 0);
  for (int64_t i = 0; i < n_tasks; ++i) u_off[i + 1] = u_off[i] + tasks[i].n_tokens * tasks[i].rank;
  scratch->u.resize(static_cast<size_t>(u_off[n_tasks]));
  float* u = scratch->u.data();
  // The inputs of Q8_0 A's quantized to Q8_0 blocks, once per distinct x
  // (q, k and v share theirs), before the hand-off: task i reads
  // scratch->xq[xq[i]] (-1: f32 x).
  std::vector<int64_t>& xq = scratch->task_xq;
  xq.assign(static_cast<size_t>(n_tasks), -1);
  int64_t n_xq = 0;
  for (int64_t i = 0; i < n_tasks; ++i) {
    const LoraTask& t = tasks[i];
    if (t.pair->a.type != DType::kQ8_0) continue;
    for (int64_t j = 0; j < i && xq[i] < 0; ++j) {
      if (xq[j] >= 0 && tasks[j].x == t.x && tasks[j].n_tokens == t.n_tokens && tasks[j].pair->in == t.pair->in) {
        xq[i] = xq[j];
      }
    }
    if (xq[i] >= 0) continue;
    if (static_cast<int64_t>(scratch->xq.size()) <= n_xq) scratch->xq.resize(static_cast<size_t>(n_xq) + 1);
    kernels::Acts& a = scratch->xq[static_cast<size_t>(n_xq)];
    a.kind = DType::kQ8_0;
    a.n_tokens = t.n_tokens;
    a.cols = t.pair->in;
    a.f32 = t.x;
    kernels::PrepareActs(ks, &a, pool);
    xq[i] = n_xq++;
  }
  // Tasks that add to the same output (several adapters on one projection)
  // form one up family, whose rows take the tasks in order: every element
  // sees the same additions in the same order, whoever computes it.
  // group_tasks[group_first[g] ..< group_first[g + 1]] are group g's tasks.
  std::vector<int64_t>& group_of = scratch->group_of;
  std::vector<int64_t>& first = scratch->group_first;
  std::vector<int64_t>& members = scratch->group_tasks;
  group_of.assign(static_cast<size_t>(n_tasks), -1);
  int64_t n_groups = 0;
  for (int64_t i = 0; i < n_tasks; ++i) {
    for (int64_t j = 0; j < i && group_of[i] < 0; ++j) {
      if (tasks[j].y == tasks[i].y) group_of[i] = group_of[j];
    }
    if (group_of[i] < 0) group_of[i] = n_groups++;
  }
  first.assign(static_cast<size_t>(n_groups) + 1, 0);
  for (int64_t i = 0; i < n_tasks; ++i) ++first[group_of[i] + 1];
  for (int64_t g = 0; g < n_groups; ++g) first[g + 1] += first[g];
  members.resize(static_cast<size_t>(n_tasks));
  for (int64_t g = 0, k = 0; g < n_groups; ++g) {  // in task order within each group
    for (int64_t i = 0; i < n_tasks; ++i) {
      if (group_of[i] == g) members[k++] = i;
    }
  }
  Items& down = scratch->down;
  Items& up = scratch->up;
  down.Clear();
  up.Clear();
  for (int64_t i = 0; i < n_tasks; ++i) {
    const LoraTask& t = tasks[i];
    // an interleaved A is cut in bands of 8 rows, the unit its kernel takes
    const int64_t band = t.pair->a.interleaved8 ? 8 : 1;
    down.Add(t.rank / band, band * (t.n_tokens * t.pair->in + 1));
  }
  for (int64_t g = 0; g < n_groups; ++g) {
    int64_t c = 1;
    for (int64_t k = first[g]; k < first[g + 1]; ++k) c += tasks[members[k]].n_tokens * tasks[members[k]].rank;
    up.Add(tasks[members[first[g]]].pair->out, c);
  }

  // u[t][r] = A[r] . x[t] for rows (bands, when interleaved) [r0, r1) of task i.
  auto down_rows = [&](int64_t i, int64_t r0, int64_t r1) {
    const LoraTask& t = tasks[i];
    const int64_t band = t.pair->a.interleaved8 ? 8 : 1;
    kernels::Acts xf;  // f32 activations for F16 / F32 A's
    xf.n_tokens = t.n_tokens;
    xf.cols = t.pair->in;
    xf.f32 = t.x;
    ks.matmul_rows(t.pair->a, xq[i] >= 0 ? scratch->xq[static_cast<size_t>(xq[i])] : xf, r0 * band,
                   r1 * band, u + u_off[i], t.rank);
  };
  // y[t][o] += scale * (B[o] . u[t]) for rows [o0, o1), for each task of
  // group g in order. An int8 B meets u quantized here, per token, to int8
  // with one scale (so a token's bits do not depend on its batch).
  auto up_rows = [&](int64_t g, int64_t o0, int64_t o1) {
    constexpr int64_t kSmallRank4 = 256;
    int8_t uq_small[kSmallRank4];
    std::vector<int8_t> uq_big;
    for (int64_t k = first[g]; k < first[g + 1]; ++k) {
      const LoraTask& t = tasks[members[k]];
      const int64_t i = members[k];
      for (int64_t tok = 0; tok < t.n_tokens; ++tok) {
        const float* ut = u + u_off[i] + tok * t.rank;
        float* yt = t.y + tok * t.pair->out;
        if (t.pair->b_type != DType::kQ8_0) {
          ks.lora_up(t.pair->b_type, t.pair->b, t.rank, ut, t.scale, yt, o0, o1);
          continue;
        }
        const int64_t rank4 = (t.rank + 3) / 4 * 4;
        if (rank4 > kSmallRank4) uq_big.resize(static_cast<size_t>(rank4));
        int8_t* uq = rank4 > kSmallRank4 ? uq_big.data() : uq_small;
        std::fill(uq + t.rank, uq + rank4, int8_t{0});
        float amax = 0.0f;
        for (int64_t r = 0; r < t.rank; ++r) amax = std::fmax(amax, std::fabs(ut[r]));
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int64_t r = 0; r < t.rank; ++r) uq[r] = static_cast<int8_t>(std::nearbyint(ut[r] * id));
        ks.lora_up_q8(static_cast<const uint8_t*>(t.pair->b), rank4, uq, t.scale * d, yt, o0, o1);
      }
    }
  };

  const int workers = pool != nullptr ? pool->size() : 1;
  const bool serial = workers <= 1 || down.total_cost() + up.total_cost() < 4096;
  if (serial) {
    ForItems(down, 0, down.total_items(), down_rows);
    ForItems(up, 0, up.total_items(), up_rows);
    return;
  }
  // ParallelFor(n = workers, grain 1) runs chunk w on pool thread w, all at
  // once, so the workers can meet at a barrier between the two phases.
  std::atomic<int> arrived{0};
  pool->ParallelFor(workers, 1, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t total = down.total_cost();
      ForItems(down, ItemAtCost(down, total * w / workers), ItemAtCost(down, total * (w + 1) / workers),
               down_rows);
    }
    arrived.fetch_add(static_cast<int>(w1 - w0), std::memory_order_acq_rel);
    // Spin briefly (the other workers are normally microseconds away), then
    // give the core up: on a machine with more busy threads than cores a
    // worker that was descheduled would otherwise cost a whole time slice.
    for (int spins = 0; arrived.load(std::memory_order_acquire) < workers; ++spins) {
      if (spins < kBarrierSpins) CpuRelax();
      else std::this_thread::yield();
    }
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t total = up.total_cost();
      ForItems(up, ItemAtCost(up, total * w / workers), ItemAtCost(up, total * (w + 1) / workers),
               up_rows);
    }
  });
}

void LoraApply(const LoraPair& p, int32_t rank, float s, const float* x, int64_t n_tokens,
               float* y, LoraScratch* scratch, ThreadPool* pool) {
  const LoraTask task{&p, rank, s, x, n_tokens, y};
  LoraApply(&task, 1, scratch, pool);
}

namespace {

// The projections that read one input (q, k, v; o; gate, up; down), in the
// order the forward pass applies their deltas; -1 pads.
constexpr std::array<std::array<int, 3>, 4> kGroupProjs = {{
    {0, 1, 2}, {3, -1, -1}, {4, 5, -1}, {6, -1, -1}}};

// Every A and B in the arena starts on a cache line.
constexpr int64_t kArenaAlign = 64;
int64_t AlignUp(int64_t n) { return (n + kArenaAlign - 1) / kArenaAlign * kArenaAlign; }

bool IsFloat(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

// The dtype a pair is kept in (kQ8_0: the int8 forms), and the bytes of its
// A and B in it.
DType PairType(LoraStorage storage, const Weight& base, int64_t in) {
  switch (storage) {
    case LoraStorage::kF32: return DType::kF32;
    case LoraStorage::kF16: return DType::kF16;
    case LoraStorage::kMatchBase: break;
  }
  return !IsFloat(base.type) && in % kernels::kQ8Block == 0 ? DType::kQ8_0 : DType::kF16;
}
int64_t Rank4(int64_t rank) { return (rank + 3) / 4 * 4; }
int64_t ABytes(DType type, int64_t rank, int64_t in) {
  if (type == DType::kQ8_0) return rank * (in / kernels::kQ8Block) * static_cast<int64_t>(sizeof(BlockQ8_0));
  return rank * in * (type == DType::kF16 ? 2 : 4);
}
int64_t BBytes(DType type, int64_t rank, int64_t out) {
  const int64_t blocks = (out + 7) / 8;
  if (type == DType::kQ8_0) return blocks * kernels::LoraUpQ8BlockBytes(Rank4(rank));
  return blocks * 8 * rank * (type == DType::kF16 ? 2 : 4);
}

// A (rank x in, row-major) and B in lora_up's blocks of 8 outputs
// (kernels::LoraUpIndex, zero past `out`), converted to T.
template <class T, class Conv>
void FillFloatPair(const LoraTensor& t, int64_t rank, T* a, T* b, Conv conv) {
  for (size_t i = 0; i < t.a.size(); ++i) a[i] = conv(t.a[i]);
  for (int64_t o = 0; o < t.out; ++o)
    for (int64_t r = 0; r < rank; ++r) b[kernels::LoraUpIndex(o, r, rank)] = conv(t.b[o * rank + r]);
}

// The int8 forms: A's rows as Q8_0 (ggml's rounding), interleaved by 8 rows
// when rank allows; B's rows as int8 with one f16 scale each, in
// lora_up_q8's blocks (zero past `out` and past `rank`). Returns whether A
// is interleaved.
bool FillQ8Pair(const LoraTensor& t, int64_t rank, uint8_t* a, uint8_t* b) {
  const int64_t row_bytes = ABytes(DType::kQ8_0, 1, t.in);
  const bool interleave = kernels::CanInterleave8(DType::kQ8_0, rank);
  std::vector<uint8_t> rows(interleave ? static_cast<size_t>(rank * row_bytes) : 0);
  uint8_t* dst = interleave ? rows.data() : a;
  for (int64_t r = 0; r < rank; ++r) QuantizeRow(DType::kQ8_0, t.a.data() + r * t.in, dst + r * row_bytes, t.in);
  if (interleave) kernels::Interleave8(MatRef{DType::kQ8_0, rank, t.in, dst, static_cast<uint64_t>(row_bytes)}, 0, rank / 8, a);
  const int64_t rank4 = Rank4(rank);
  for (int64_t o = 0; o < t.out; ++o) {
    const float* row = t.b.data() + o * rank;
    float amax = 0.0f;
    for (int64_t r = 0; r < rank; ++r) amax = std::fmax(amax, std::fabs(row[r]));
    const uint16_t d16 = F32ToF16(amax / 127.0f);
    const float d = F16ToF32(d16), id = d != 0.0f ? 1.0f / d : 0.0f;
    std::memcpy(b + kernels::LoraUpQ8Scale(o, rank4), &d16, sizeof d16);
    for (int64_t r = 0; r < rank; ++r) {
      const float q = std::clamp(std::nearbyint(row[r] * id), -127.0f, 127.0f);
      b[kernels::LoraUpQ8Index(o, r, rank4)] = static_cast<uint8_t>(static_cast<int8_t>(q));
    }
  }
  return interleave;
}

}  // namespace

void LoraBinding::Lay(const std::vector<std::array<const LoraTensor*, kLoraProjCount>>& src) {
  // Each pair's dtype and the byte offsets of every A and B in forward
  // order, then the arena, then the values.
  const int64_t rank = rank_;
  std::vector<std::array<DType, kLoraProjCount>> type(src.size());
  std::vector<std::array<std::pair<int64_t, int64_t>, kLoraProjCount>> off(src.size());
  int64_t n = 0;
  for (size_t l = 0; l < src.size(); ++l) {
    const LayerWeights& L = model_->weights().layers[l];
    for (const auto& group : kGroupProjs) {
      for (int p : group) {  // the A's of the group
        if (p < 0 || src[l][static_cast<size_t>(p)] == nullptr) continue;
        const LoraTensor& t = *src[l][static_cast<size_t>(p)];
        type[l][static_cast<size_t>(p)] = PairType(storage_, BaseWeight(L, static_cast<LoraProj>(p)), t.in);
        off[l][static_cast<size_t>(p)].first = n;
        n += AlignUp(ABytes(type[l][static_cast<size_t>(p)], rank, t.in));
      }
      for (int p : group) {  // then its B's
        if (p < 0 || src[l][static_cast<size_t>(p)] == nullptr) continue;
        off[l][static_cast<size_t>(p)].second = n;
        n += AlignUp(BBytes(type[l][static_cast<size_t>(p)], rank, src[l][static_cast<size_t>(p)]->out));
      }
    }
  }
  const size_t bytes = static_cast<size_t>(n);
  arena_bytes_ = bytes;
  arena_.reset(static_cast<uint8_t*>(std::aligned_alloc(kArenaAlign, std::max<size_t>(bytes, kArenaAlign))));
  std::memset(arena_.get(), 0, bytes);  // the padding of B's last block (and of int8 B's ranks)
  for (size_t l = 0; l < src.size(); ++l) {
    for (size_t p = 0; p < kLoraProjCount; ++p) {
      const LoraTensor* t = src[l][p];
      if (t == nullptr) continue;
      const DType ty = type[l][p];
      uint8_t* a = arena_.get() + off[l][p].first;
      uint8_t* b = arena_.get() + off[l][p].second;
      bool interleaved = false;
      if (ty == DType::kQ8_0) {
        interleaved = FillQ8Pair(*t, rank, a, b);
      } else if (ty == DType::kF16) {
        FillFloatPair(*t, rank, reinterpret_cast<uint16_t*>(a), reinterpret_cast<uint16_t*>(b),
                      [](float v) { return F32ToF16(v); });
      } else {
        FillFloatPair(*t, rank, reinterpret_cast<float*>(a), reinterpret_cast<float*>(b),
                      [](float v) { return v; });
      }
      LoraPair& slot = pairs_[l][p];
      slot.a = MatRef{ty, rank, t->in, a, static_cast<uint64_t>(ABytes(ty, 1, t->in)), interleaved};
      slot.b = b;
      slot.b_type = ty;
    }
  }
}

}  // namespace yuan
