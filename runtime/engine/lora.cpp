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
    std::shared_ptr<const LoraAdapter> adapter, const Model& model, DType storage) {
  if (adapter == nullptr) return absl::InvalidArgumentError("no adapter");
  if (storage != DType::kF16 && storage != DType::kF32) {
    return absl::InvalidArgumentError("adapters are kept in F16 or F32");
  }
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
  b->adapter_ = adapter;
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

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// Work items of one phase, weighted by cost: the items of family i are
// rows[i] rows of cost[i] each (down: the rows of a task's A; up: the output
// rows of the tasks that add to one y). `ItemAtCost` cuts the items into
// runs of about equal cost, one per worker.
struct Items {
  std::vector<int64_t> first;  // first global item of each family (+ the total at the end)
  std::vector<int64_t> cost;   // cost of one item of each family
  std::vector<int64_t> cum;    // cost of all items of families before i
  void Add(int64_t rows, int64_t item_cost) {
    if (first.empty()) {
      first.push_back(0);
      cum.push_back(0);
    }
    first.push_back(first.back() + rows);
    cost.push_back(item_cost);
    cum.push_back(cum.back() + rows * item_cost);
  }
  int64_t total_items() const { return first.empty() ? 0 : first.back(); }
  int64_t total_cost() const { return cum.empty() ? 0 : cum.back(); }
};

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

void LoraApply(const LoraTask* tasks, int64_t n_tasks, LoraScratch* scratch, ThreadPool* pool) {
  if (n_tasks <= 0) return;
  const kernels::KernelSet& ks = kernels::ActiveKernels();
  std::vector<int64_t> u_off(static_cast<size_t>(n_tasks) + 1, 0);
  for (int64_t i = 0; i < n_tasks; ++i) u_off[i + 1] = u_off[i] + tasks[i].n_tokens * tasks[i].rank;
  scratch->u.resize(static_cast<size_t>(u_off[n_tasks]));
  float* u = scratch->u.data();
  // Tasks that add to the same output (several adapters on one projection)
  // form one up family, whose rows take the tasks in order: every element
  // sees the same additions in the same order, whoever computes it.
  std::vector<std::vector<int64_t>> groups;
  Items down, up;
  for (int64_t i = 0; i < n_tasks; ++i) {
    const LoraTask& t = tasks[i];
    down.Add(t.rank, t.n_tokens * t.pair->in + 1);
    size_t g = 0;
    while (g < groups.size() && tasks[groups[g][0]].y != t.y) ++g;
    if (g == groups.size()) groups.emplace_back();
    groups[g].push_back(i);
  }
  for (const std::vector<int64_t>& g : groups) {
    int64_t c = 1;
    for (int64_t i : g) c += tasks[i].n_tokens * tasks[i].rank;
    up.Add(tasks[g[0]].pair->out, c);
  }

  // u[t][r] = A[r] . x[t] for rows [r0, r1) of task i.
  auto down_rows = [&](int64_t i, int64_t r0, int64_t r1) {
    const LoraTask& t = tasks[i];
    kernels::Acts xa;  // f32 activations: A is F16 or F32
    xa.n_tokens = t.n_tokens;
    xa.cols = t.pair->in;
    xa.f32 = t.x;
    ks.matmul_rows(t.pair->a, xa, r0, r1, u + u_off[i], t.rank);
  };
  // y[t][o] += scale * (B[o] . u[t]) for rows [o0, o1), for each task of
  // group g in order.
  auto up_rows = [&](int64_t g, int64_t o0, int64_t o1) {
    for (int64_t i : groups[static_cast<size_t>(g)]) {
      const LoraTask& t = tasks[i];
      for (int64_t tok = 0; tok < t.n_tokens; ++tok) {
        ks.lora_up(t.pair->b_type, t.pair->b, t.rank, u + u_off[i] + tok * t.rank, t.scale,
                   t.y + tok * t.pair->out, o0, o1);
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
    while (arrived.load(std::memory_order_acquire) < workers) CpuRelax();
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

// Element offsets in the arena start on a cache line (64 bytes) for either dtype.
constexpr int64_t kArenaAlign = 32;
int64_t AlignUp(int64_t n) { return (n + kArenaAlign - 1) / kArenaAlign * kArenaAlign; }

// A (rank x in, row-major) and B in lora_up's blocks of 8 outputs
// (kernels::LoraUpIndex, zero past `out`), converted to T.
template <class T, class Conv>
void FillPair(const LoraTensor& t, int64_t rank, T* a, T* b, Conv conv) {
  for (size_t i = 0; i < t.a.size(); ++i) a[i] = conv(t.a[i]);
  for (int64_t o = 0; o < t.out; ++o)
    for (int64_t r = 0; r < rank; ++r) b[kernels::LoraUpIndex(o, r, rank)] = conv(t.b[o * rank + r]);
}

}  // namespace

void LoraBinding::Lay(const std::vector<std::array<const LoraTensor*, kLoraProjCount>>& src) {
  // Offsets (in elements) of every A and B in forward order, then the arena,
  // then the values.
  const int64_t rank = rank_;
  const int64_t elem = storage_ == DType::kF16 ? 2 : 4;
  std::vector<std::array<std::pair<int64_t, int64_t>, kLoraProjCount>> off(src.size());
  int64_t n = 0;
  for (size_t l = 0; l < src.size(); ++l) {
    for (const auto& group : kGroupProjs) {
      for (int p : group) {  // the A's of the group
        if (p >= 0 && src[l][static_cast<size_t>(p)] != nullptr) {
          off[l][static_cast<size_t>(p)].first = n;
          n += AlignUp(rank * src[l][static_cast<size_t>(p)]->in);
        }
      }
      for (int p : group) {  // then its B's
        if (p >= 0 && src[l][static_cast<size_t>(p)] != nullptr) {
          off[l][static_cast<size_t>(p)].second = n;
          n += AlignUp((src[l][static_cast<size_t>(p)]->out + 7) / 8 * 8 * rank);
        }
      }
    }
  }
  const size_t bytes = static_cast<size_t>(n * elem);
  arena_.reset(static_cast<uint8_t*>(std::aligned_alloc(64, std::max<size_t>(bytes, 64))));
  std::memset(arena_.get(), 0, bytes);  // the padding of B's last block
  for (size_t l = 0; l < src.size(); ++l) {
    for (size_t p = 0; p < kLoraProjCount; ++p) {
      const LoraTensor* t = src[l][p];
      if (t == nullptr) continue;
      uint8_t* a = arena_.get() + off[l][p].first * elem;
      uint8_t* b = arena_.get() + off[l][p].second * elem;
      if (storage_ == DType::kF16) {
        FillPair(*t, rank, reinterpret_cast<uint16_t*>(a), reinterpret_cast<uint16_t*>(b),
                 [](float v) { return F32ToF16(v); });
      } else {
        FillPair(*t, rank, reinterpret_cast<float*>(a), reinterpret_cast<float*>(b),
                 [](float v) { return v; });
      }
      LoraPair& slot = pairs_[l][p];
      slot.a = MatRef{storage_, rank, t->in, a, static_cast<uint64_t>(t->in * elem)};
      slot.b = b;
      slot.b_type = storage_;
    }
  }
}

}  // namespace yuan
