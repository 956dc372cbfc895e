#include "runtime/engine/forward.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <initializer_list>
#include <tuple>
#include <vector>

#include "runtime/core/status.h"
#include "runtime/cpu/attention.h"
#include "runtime/cpu/matmul.h"
#include "runtime/cpu/ops.h"

namespace yuan {
namespace {

MatRef Mat(const Weight& w) {
  return MatRef{w.type, w.rows, w.cols, w.data, w.row_bytes, w.interleaved8};
}

// y = x W^T (+ bias) for up to 3 weights on the same input x: one
// quantization of x and one hand-off to the pool (MatMulGroup).
// `next`: the weights of the product that follows, whose start the pool's
// idle workers read ahead (MatMulGroup).
void ProjectGroup(std::initializer_list<std::tuple<const Weight*, const Weight*, float*>> ps, const float* x,
                  int64_t T, ThreadPool* pool, std::initializer_list<const Weight*> next = {}) {
  MatRef ws[3], nexts[3];
  float* ys[3] = {};
  int n = 0, n_next = 0;
  for (const auto& [w, bias, y] : ps) {
    ws[n] = Mat(*w);
    ys[n++] = y;
  }
  for (const Weight* w : next) nexts[n_next++] = Mat(*w);
  MatMulGroup(ws, ys, n, x, T, pool, nexts, n_next);
  for (const auto& [w, bias, y] : ps) {
    if (bias->empty()) continue;
    const float* b = static_cast<const float*>(bias->data);
    for (int64_t t = 0; t < T; ++t) AddInPlace(y + t * w->rows, b, w->rows);
  }
}

// y[T][w.rows] = x[T][w.cols] . W^T (+ bias)
void Project(const Weight& w, const Weight& bias, const float* x, int64_t T, float* y, ThreadPool* pool,
             std::initializer_list<const Weight*> next = {}) {
  ProjectGroup({{&w, &bias, y}}, x, T, pool, next);
}

const float* F32(const Weight& w) { return static_cast<const float*>(w.data); }

// Runs fn(t) for every token t < T, each touching about `width` values:
// inline when that is little work (decoding, short prompts of a small model:
// a pool hand-off would cost more than it saves), else spread over the pool.
template <typename Fn>
void ForTokens(ThreadPool* pool, int64_t T, int64_t width, const Fn& fn) {
  if (T == 1 || T * width < (int64_t{1} << 14)) {
    for (int64_t t = 0; t < T; ++t) fn(t);
    return;
  }
  pool->ParallelFor(T, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) fn(t);
  });
}

// Adds the time since the previous mark to a step of args.step_times; does
// nothing when that is null.
class StepClock {
 public:
  explicit StepClock(ForwardStepTimes* times) : times_(times) {
    if (times_ != nullptr) last_ = std::chrono::steady_clock::now();
  }
  void Mark(ForwardStep step) {
    if (times_ == nullptr) return;
    const auto now = std::chrono::steady_clock::now();
    times_->seconds[static_cast<int>(step)] += std::chrono::duration<double>(now - last_).count();
    last_ = now;
  }

 private:
  ForwardStepTimes* times_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace

const char* ForwardStepName(ForwardStep step) {
  switch (step) {
    case ForwardStep::kEmbed: return "embedding";
    case ForwardStep::kQkv: return "q/k/v";
    case ForwardStep::kRope: return "RoPE, K/V rows";
    case ForwardStep::kAttention: return "attention";
    case ForwardStep::kO: return "o";
    case ForwardStep::kFfnNorm: return "residual, norm";
    case ForwardStep::kGateUp: return "gate/up";
    case ForwardStep::kSilu: return "SiLU";
    case ForwardStep::kDown: return "down";
    case ForwardStep::kResidual: return "residual, next norm";
    case ForwardStep::kHead: return "head";
    case ForwardStep::kCount: break;
  }
  return "?";
}

absl::Status Forward(const Model& model, const ForwardArgs& a, KvCache* cache,
                     ForwardScratch* s, ThreadPool* pool, std::vector<float>* logits) {
  StepClock clock(a.step_times);
  const ModelConfig& c = model.config();
  const ModelWeights& W = model.weights();
  const int64_t T = a.n_tokens;
  const int64_t E = c.n_embd, hd = c.head_dim;
  const int64_t q_dim = int64_t{c.n_head} * hd, kv_dim = int64_t{c.n_head_kv} * hd;
  const int64_t group = c.n_head / c.n_head_kv;  // query heads per KV head
  if (T <= 0) return absl::InvalidArgumentError("no tokens to evaluate");
  for (int64_t t = 0; t < T; ++t) {
    if (a.tokens[t] < 0 || a.tokens[t] >= c.n_vocab) {
      return absl::InvalidArgumentError(
          absl::StrFormat("token id %d is out of range [0, %d)", a.tokens[t], c.n_vocab));
    }
  }
  const SeqSlice single{T, a.pos0, nullptr, true};
  const SeqSlice* seqs = a.seqs != nullptr ? a.seqs : &single;
  const int64_t n_seqs = a.seqs != nullptr ? a.n_seqs : 1;
  const bool all_logits = a.seqs == nullptr && a.all_logits;
  const int64_t P = cache->page_size();
  // Each token's position and slice; which rows give logits
  s->pos.resize(T);
  s->seq.resize(T);
  s->out_rows.clear();
  int64_t t_end = 0;
  for (int64_t i = 0; i < n_seqs; ++i) {
    const SeqSlice& q = seqs[i];
    if (q.n_tokens <= 0 || q.pos0 < 0 || t_end + q.n_tokens > T) {
      return absl::InvalidArgumentError("the batch's sequences do not cover its tokens");
    }
    const int64_t end = q.pos0 + q.n_tokens;
    if (q.pages == nullptr ? end > cache->capacity() || (cache->n_pages() > 1 && end > P)
                           : false) {
      return absl::OutOfRangeError(absl::StrFormat(
          "context is full: %d + %d tokens exceed the context size %d", q.pos0, q.n_tokens,
          cache->capacity()));
    }
    if (q.pages != nullptr) {
      for (int64_t pg = 0; pg < (end + P - 1) / P; ++pg) {
        if (q.pages[pg] < 0 || q.pages[pg] >= cache->n_pages()) {
          return absl::InvalidArgumentError("a page table names a page outside the cache");
        }
      }
    }
    for (int64_t j = 0; j < q.n_tokens; ++j) {
      s->pos[t_end + j] = q.pos0 + j;
      s->seq[t_end + j] = static_cast<int32_t>(i);
      if (all_logits || (q.logits && j + 1 == q.n_tokens)) s->out_rows.push_back(t_end + j);
    }
    t_end += q.n_tokens;
  }
  if (t_end != T) return absl::InvalidArgumentError("the batch's sequences do not cover its tokens");
  bool any_lora = false;
  for (int64_t i = 0; i < n_seqs; ++i) {
    if (seqs[i].loras == nullptr || seqs[i].loras->empty()) continue;
    absl::Status st = CheckLoraSet(*seqs[i].loras, model);
    if (!st.ok()) return st;
    any_lora = true;
  }
  // (page, row) of position `pos` of slice `i`
  auto page_of = [&](int64_t i, int64_t pos) -> int32_t {
    return seqs[i].pages != nullptr ? seqs[i].pages[pos / P] : static_cast<int32_t>(pos / P);
  };
  s->x.resize(T * E);
  s->xn.resize(T * E);
  s->gate.resize(T * c.n_ff);
  s->work.resize(std::max(T * (E + 2 * q_dim + 2 * kv_dim), T * c.n_ff));
  s->att = s->work.data();
  s->att_out = s->att + T * E;
  s->q = s->att_out + T * q_dim;
  s->k = s->q + T * q_dim;
  s->v = s->k + T * kv_dim;
  s->up = s->work.data();

  const int64_t n_rot = c.n_rot;
  s->rope.resize(T * n_rot);

  // x = embedding rows; the (cos, sin) table of each token's position, made
  // once here and used by every head of every layer
  const float* freq_factors = c.rope_freq_factors.empty() ? nullptr : c.rope_freq_factors.data();
  ForTokens(pool, T, E, [&](int64_t t) {
    MatRow(Mat(W.tok_embd), a.tokens[t], &s->x[t * E]);
    RopeTable(n_rot, s->pos[t], c.rope_freq_base, c.rope_freq_scale, freq_factors,
              &s->rope[t * n_rot]);
  });
  // xn = rmsnorm(x) * attn_norm of the first layer (later layers fuse it into
  // the previous layer's last step)
  ForTokens(pool, T, E, [&](int64_t t) {
    RmsNorm(&s->x[t * E], F32(W.layers[0].attn_norm), E, c.rms_eps, &s->xn[t * E]);
  });

  const float attn_scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const bool neox = c.rope_style == RopeStyle::kNeox;
  const size_t kv_elem = cache->elem_bytes();
  // Attention work items: (tile of tokens, KV head, part of its query
  // group). A tile is up to kTileRows / heads_per_item consecutive tokens of
  // one sequence (AttendTile widens each K/V block once for all of them and
  // multiplies in register tiles). A group is split only when there would
  // be too few items to keep every thread busy (decoding a model with few
  // KV heads).
  int64_t heads_per_item = group;
  while (heads_per_item > 1 && T * c.n_head_kv * (group / heads_per_item) < 2 * pool->size()) {
    heads_per_item = (heads_per_item + 1) / 2;
  }
  const int64_t parts = (group + heads_per_item - 1) / heads_per_item;
  constexpr int64_t kTileRows = 64;
  const int64_t tile_tokens = std::max<int64_t>(1, kTileRows / heads_per_item);
  s->attn_tiles.clear();  // [first token, tokens]
  for (int64_t t = 0; t < T;) {
    int64_t n = 1;
    while (n < tile_tokens && t + n < T && s->seq[t + n] == s->seq[t] && s->pos[t + n] == s->pos[t] + n) ++n;
    s->attn_tiles.push_back({t, n});
    t += n;
  }
  const int64_t n_tiles = static_cast<int64_t>(s->attn_tiles.size());
  const int64_t n_items = n_tiles * c.n_head_kv * parts;
  const int64_t attn_scratch =
      AttentionScratchFloats(static_cast<int>(heads_per_item * std::min(tile_tokens, T)), hd);
  // A short decoding step (a few thousand multiply-adds) is done by the
  // calling thread alone: waking the pool would cost more than it saves.
  int64_t attn_positions = 0;
  for (int64_t t = 0; t < T; ++t) attn_positions += s->pos[t] + 1;
  const int64_t attn_macs = c.n_head * hd * attn_positions;
  // Per layer, the page tables of the paged slices as row pointers:
  // [slice][K, V][kv head][page], at kv_base[slice].
  std::vector<int64_t> kv_base(n_seqs, -1), kv_n_pages(n_seqs, 0);
  int64_t n_ptrs = 0;
  for (int64_t i = 0; i < n_seqs; ++i) {
    if (seqs[i].pages == nullptr) continue;
    kv_base[i] = n_ptrs;
    kv_n_pages[i] = (seqs[i].pos0 + seqs[i].n_tokens + P - 1) / P;
    n_ptrs += 2 * c.n_head_kv * kv_n_pages[i];
  }
  s->kv_pages.resize(n_ptrs);
  const int64_t attn_workers = attn_macs < (int64_t{1} << 15) ? 1 : pool->size();
  if (static_cast<int64_t>(s->attn.size()) < attn_workers) s->attn.resize(attn_workers);
  for (int64_t i = 0; i < attn_workers; ++i) {
    if (static_cast<int64_t>(s->attn[i].size()) < attn_scratch) s->attn[i].resize(attn_scratch);
  }

  clock.Mark(ForwardStep::kEmbed);
  for (int layer = 0; layer < c.n_layer; ++layer) {
    if (a.cancel != nullptr && a.cancel->load(std::memory_order_relaxed)) {
      return absl::CancelledError("cancelled");
    }
    const LayerWeights& L = W.layers[layer];
    // y += the LoRA deltas of the projections `ps` (outputs `ys`), which
    // all read the rows of `x`, for the tokens of each slice that chose
    // adapters; consecutive slices with the same adapters go as one run of
    // tokens, and all of it as one LoraApply (one hand-off to the pool).
    auto lora = [&](std::initializer_list<std::pair<LoraProj, float*>> ps, const float* x) {
      if (!any_lora) return;
      s->lora_tasks.clear();
      int64_t t0 = 0;
      for (int64_t i = 0; i < n_seqs;) {
        const LoraSet* set = seqs[i].loras;
        int64_t n = 0, j = i;
        for (; j < n_seqs && (seqs[j].loras == set ||
                              (set != nullptr && seqs[j].loras != nullptr && *seqs[j].loras == *set));
             ++j) {
          n += seqs[j].n_tokens;
        }
        static const LoraSet kNone;
        for (const LoraChoice& ch : set != nullptr ? *set : kNone) {
          for (const auto& [p, y] : ps) {
            const LoraPair* pr = ch.lora->pair(layer, p);
            if (pr == nullptr) continue;
            s->lora_tasks.push_back(LoraTask{pr, ch.lora->rank(), ch.scale * ch.lora->scaling(),
                                             x + t0 * pr->in, n, y + t0 * pr->out});
          }
        }
        t0 += n;
        i = j;
      }
      LoraApply(s->lora_tasks.data(), static_cast<int64_t>(s->lora_tasks.size()), &s->lora_scratch,
                pool);
    };

    // ---- attention: q,k,v = xn W^T
    ProjectGroup({{&L.wq, &L.bq, s->q}, {&L.wk, &L.bk, s->k}, {&L.wv, &L.bv, s->v}},
                 s->xn.data(), T, pool, {&L.wo});
    lora({{LoraProj::kQ, s->q}, {LoraProj::kK, s->k}, {LoraProj::kV, s->v}},
         s->xn.data());
    clock.Mark(ForwardStep::kQkv);

    // RoPE at each token's position, with the optional per-head q/k RMSNorm
    // before it (qwen3) or after it (hunyuan-dense); K and V rows into the cache
    auto rope_and_norm = [&](float* x, const Weight& norm, const float* cos_sin) {
      const bool has_norm = !norm.empty();
      if (has_norm && !c.qk_norm_after_rope) RmsNorm(x, F32(norm), hd, c.rms_eps, x);
      RopeApply(x, n_rot, neox, cos_sin);
      if (has_norm && c.qk_norm_after_rope) RmsNorm(x, F32(norm), hd, c.rms_eps, x);
    };
    ForTokens(pool, T, q_dim + 2 * kv_dim, [&](int64_t t) {
      const int64_t pos = s->pos[t];
      const int32_t page = page_of(s->seq[t], pos);
      const int64_t row = pos % P;
      const float* cos_sin = &s->rope[t * n_rot];
      for (int h = 0; h < c.n_head; ++h) rope_and_norm(&s->q[t * q_dim + h * hd], L.q_norm, cos_sin);
      for (int h = 0; h < c.n_head_kv; ++h) {
        rope_and_norm(&s->k[t * kv_dim + h * hd], L.k_norm, cos_sin);
      }
      if (cache->type() == DType::kF16) {
        F32ToF16Row(&s->k[t * kv_dim], static_cast<uint16_t*>(cache->k(layer, page, row)), kv_dim);
        F32ToF16Row(&s->v[t * kv_dim], static_cast<uint16_t*>(cache->v(layer, page, row)), kv_dim);
      } else {
        QuantizeRow(cache->type(), &s->k[t * kv_dim], cache->k(layer, page, row), kv_dim);
        QuantizeRow(cache->type(), &s->v[t * kv_dim], cache->v(layer, page, row), kv_dim);
      }
    });

    for (int64_t i = 0; i < n_seqs; ++i) {
      if (kv_base[i] < 0) continue;
      const void** ptr = &s->kv_pages[kv_base[i]];
      for (int64_t g = 0; g < c.n_head_kv; ++g) {
        for (int64_t pg = 0; pg < kv_n_pages[i]; ++pg) {
          const int32_t page = seqs[i].pages[pg];
          ptr[g * kv_n_pages[i] + pg] =
              static_cast<const uint8_t*>(cache->k(layer, page, 0)) + g * hd * kv_elem;
          ptr[(c.n_head_kv + g) * kv_n_pages[i] + pg] =
              static_cast<const uint8_t*>(cache->v(layer, page, 0)) + g * hd * kv_elem;
        }
      }
    }

    clock.Mark(ForwardStep::kRope);

    // Causal attention. A tile's items cost ~ its tokens' positions, so the
    // threads take items from a shared counter, the batch's last tiles (the
    // longest) first, rather than fixed ranges (which would give the first
    // thread the short rows of the triangle). Each item is computed whole by
    // one thread, so the result does not depend on who takes it.
    //
    // With one tile (decoding one sequence, or a short prompt) every item
    // attends the same positions, and each thread takes a fixed range of
    // them instead: the shared counter's line would otherwise cross between
    // the cores for every item taken (about 300 ns each way on the Zen 5
    // VM). There, alternating in one process (tg128, -r 10), decoding's
    // attention went 179 -> 166 µs per token on bench-0.3b Q4_0 and
    // 313 -> 283 on bench-1b Q4_0.
    std::atomic<int64_t> next_item{0};
    const bool fixed_items = n_tiles == 1;
    pool->ParallelFor(attn_workers, 1, [&](int64_t worker, int64_t) {
      float* scratch = s->attn[worker].data();
      int64_t mine = 0, mine_end = 0;
      if (fixed_items) {
        SplitRange(n_items, 1, static_cast<int>(attn_workers), static_cast<int>(worker), &mine,
                   &mine_end);
      }
      for (;;) {
        const int64_t i = fixed_items ? mine++ : next_item.fetch_add(1, std::memory_order_relaxed);
        if (i >= (fixed_items ? mine_end : n_items)) break;
        const auto [t, n_tok] = s->attn_tiles[n_tiles - 1 - i / (c.n_head_kv * parts)];
        const int64_t g = (i / parts) % c.n_head_kv;
        const int64_t h0 = g * group + (i % parts) * heads_per_item;
        const int n_q = static_cast<int>(std::min(heads_per_item, (g + 1) * group - h0));
        const int64_t si = s->seq[t];
        AttentionKv kv;
        kv.type = cache->type();
        if (kv_base[si] < 0) {
          kv.k = static_cast<const uint8_t*>(cache->k(layer, 0, 0)) + g * hd * kv_elem;
          kv.v = static_cast<const uint8_t*>(cache->v(layer, 0, 0)) + g * hd * kv_elem;
        } else {
          const void* const* ptr = &s->kv_pages[kv_base[si]];
          kv.k_pages = ptr + g * kv_n_pages[si];
          kv.v_pages = ptr + (c.n_head_kv + g) * kv_n_pages[si];
          kv.page_size = P;
        }
        kv.row_stride = kv_dim;
        kv.head_dim = hd;
        kv.scale = attn_scale;
        AttendTile(kv, &s->q[t * q_dim + h0 * hd], hd, q_dim, n_q, static_cast<int>(n_tok), s->pos[t] + 1,
                   &s->att_out[t * q_dim + h0 * hd], hd, q_dim, scratch);
      }
    });
    clock.Mark(ForwardStep::kAttention);
    Project(L.wo, Weight{}, s->att_out, T, s->att, pool, {&L.w_gate, &L.w_up});
    lora({{LoraProj::kO, s->att}}, s->att_out);
    clock.Mark(ForwardStep::kO);

    // x += attention; xn = rmsnorm(x) * ffn_norm
    ForTokens(pool, T, E, [&](int64_t t) {
      AddInPlace(&s->x[t * E], &s->att[t * E], E);
      RmsNorm(&s->x[t * E], F32(L.ffn_norm), E, c.rms_eps, &s->xn[t * E]);
    });
    clock.Mark(ForwardStep::kFfnNorm);

    // ---- feed-forward (SwiGLU): x += W_down (silu(xn W_gate^T) * (xn W_up^T))
    const Weight none;
    ProjectGroup({{&L.w_gate, &none, s->gate.data()}, {&L.w_up, &none, s->up}}, s->xn.data(), T, pool,
                 {&L.w_down});
    lora({{LoraProj::kGate, s->gate.data()}, {LoraProj::kUp, s->up}}, s->xn.data());
    clock.Mark(ForwardStep::kGateUp);
    ForTokens(pool, T, c.n_ff, [&](int64_t t) {
      SiluMul(&s->gate[t * c.n_ff], &s->up[t * c.n_ff], c.n_ff);
    });
    clock.Mark(ForwardStep::kSilu);
    const LayerWeights* next = layer + 1 < c.n_layer ? &W.layers[layer + 1] : nullptr;
    if (next != nullptr) {
      Project(L.w_down, Weight{}, s->gate.data(), T, s->att, pool, {&next->wq, &next->wk, &next->wv});
    } else {
      Project(L.w_down, Weight{}, s->gate.data(), T, s->att, pool, {&W.output});
    }
    lora({{LoraProj::kDown, s->att}}, s->gate.data());
    clock.Mark(ForwardStep::kDown);
    // x += feed-forward; xn = rmsnorm(x) * attn_norm of the next layer
    ForTokens(pool, T, E, [&](int64_t t) {
      AddInPlace(&s->x[t * E], &s->att[t * E], E);
      if (next != nullptr) RmsNorm(&s->x[t * E], F32(next->attn_norm), E, c.rms_eps, &s->xn[t * E]);
    });
    clock.Mark(ForwardStep::kResidual);
  }

  // ---- head: logits = rmsnorm(x) W_out^T, for the rows asked for
  const int64_t n_out = static_cast<int64_t>(s->out_rows.size());
  ForTokens(pool, n_out, E, [&](int64_t i) {
    RmsNorm(&s->x[s->out_rows[i] * E], F32(W.output_norm), E, c.rms_eps, &s->xn[i * E]);
  });
  logits->resize(static_cast<size_t>(n_out) * c.n_vocab);
  if (n_out > 0) Project(W.output, Weight{}, s->xn.data(), n_out, logits->data(), pool);
  clock.Mark(ForwardStep::kHead);
  if (a.step_times != nullptr) ++a.step_times->passes;
  return absl::OkStatus();
}

}  // namespace yuan
