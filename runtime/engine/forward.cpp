#include "runtime/engine/forward.h"

#include <cmath>
#include <type_traits>

#include "runtime/core/status.h"
#include "runtime/cpu/matmul.h"
#include "runtime/cpu/ops.h"

namespace yuan {
namespace {

MatRef Mat(const Weight& w) { return MatRef{w.type, w.rows, w.cols, w.data, w.row_bytes}; }

// y[T][w.rows] = x[T][w.cols] . W^T (+ bias)
void Project(const Weight& w, const Weight& bias, const float* x, int64_t T, float* y,
             ThreadPool* pool) {
  MatMul(Mat(w), x, T, y, pool);
  if (!bias.empty()) {
    const float* b = static_cast<const float*>(bias.data);
    for (int64_t t = 0; t < T; ++t) AddInPlace(y + t * w.rows, b, w.rows);
  }
}

const float* F32(const Weight& w) { return static_cast<const float*>(w.data); }

// out = softmax(q . K[0..pos]^T * scale) . V[0..pos] for one query head,
// whose K/V columns start at `kv_off` in the cache rows.
//
// One pass with an online softmax (flash attention): running max M, running
// sum S, and an accumulator rescaled whenever M grows. With an f16 cache the
// numerics follow ggml's CPU flash-attention kernel, which produced our
// reference outputs: q is rounded to f16 for the q.k products (K is f16), and
// the accumulator is kept in f16 because V is. With an f32 cache everything
// stays f32. `scratch` holds 2 * hd floats.
template <bool kF16>
void AttendOneHead(const float* q, const KvCache& cache, int layer, int64_t kv_off, int64_t hd,
                   int64_t pos, float scale, float* scratch, float* out) {
  using Elem = std::conditional_t<kF16, uint16_t, float>;
  auto load = [](Elem e) -> float {
    if constexpr (kF16) return F16ToF32Fast(e); else return e;
  };
  auto round = [](float x) -> float {
    if constexpr (kF16) return RoundToF16(x); else return x;
  };
  float* qr = scratch;
  float* acc = scratch + hd;
  for (int64_t d = 0; d < hd; ++d) {
    qr[d] = round(q[d]);
    acc[d] = 0.0f;
  }
  float M = -INFINITY, S = 0.0f;
  for (int64_t p = 0; p <= pos; ++p) {
    const Elem* k = static_cast<const Elem*>(cache.k(layer, p)) + kv_off;
    const Elem* v = static_cast<const Elem*>(cache.v(layer, p)) + kv_off;
    float dot = 0.0f;
    for (int64_t d = 0; d < hd; ++d) dot += qr[d] * load(k[d]);
    const float score = dot * scale;
    float ms = 1.0f;  // rescales the old accumulator
    float vs = 1.0f;  // weight of this position's value
    if (score > M) {
      ms = std::exp(M - score);
      M = score;
      for (int64_t d = 0; d < hd; ++d) acc[d] = round(acc[d] * ms);
    } else {
      vs = std::exp(score - M);
    }
    for (int64_t d = 0; d < hd; ++d) acc[d] = round(acc[d] + load(v[d]) * vs);
    S = S * ms + vs;
  }
  for (int64_t d = 0; d < hd; ++d) out[d] = acc[d] / S;
}

}  // namespace

absl::Status Forward(const Model& model, const ForwardArgs& a, KvCache* cache,
                     ForwardScratch* s, ThreadPool* pool, std::vector<float>* logits) {
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
  if (a.pos0 + T > cache->capacity()) {
    return absl::OutOfRangeError(absl::StrFormat(
        "context is full: %d + %d tokens exceed the context size %d", a.pos0, T, cache->capacity()));
  }
  s->x.resize(T * E);
  s->xn.resize(T * E);
  s->q.resize(T * q_dim);
  s->k.resize(T * kv_dim);
  s->v.resize(T * kv_dim);
  s->att_out.resize(T * q_dim);
  s->gate.resize(T * c.n_ff);
  s->up.resize(T * c.n_ff);
  s->att.resize(T * E);

  // x = embedding rows
  for (int64_t t = 0; t < T; ++t) {
    DequantizeRow(W.tok_embd.type, W.tok_embd.row(a.tokens[t]), &s->x[t * E], E);
  }

  const float attn_scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (int layer = 0; layer < c.n_layer; ++layer) {
    if (a.cancel != nullptr && a.cancel->load(std::memory_order_relaxed)) {
      return absl::CancelledError("cancelled");
    }
    const LayerWeights& L = W.layers[layer];

    // ---- attention: xn = rmsnorm(x) * attn_norm; q,k,v = xn W^T
    for (int64_t t = 0; t < T; ++t) RmsNorm(&s->x[t * E], F32(L.attn_norm), E, c.rms_eps, &s->xn[t * E]);
    Project(L.wq, L.bq, s->xn.data(), T, s->q.data(), pool);
    Project(L.wk, L.bk, s->xn.data(), T, s->k.data(), pool);
    Project(L.wv, L.bv, s->xn.data(), T, s->v.data(), pool);

    // RoPE at each token's position, with the optional per-head q/k RMSNorm
    // before it (qwen3) or after it (hunyuan-dense)
    const bool neox = c.rope_style == RopeStyle::kNeox;
    const float* freq_factors = c.rope_freq_factors.empty() ? nullptr : c.rope_freq_factors.data();
    auto rope_and_norm = [&](float* x, const Weight& norm, int64_t pos) {
      const bool has_norm = !norm.empty();
      if (has_norm && !c.qk_norm_after_rope) RmsNorm(x, F32(norm), hd, c.rms_eps, x);
      Rope(x, c.n_rot, pos, c.rope_freq_base, c.rope_freq_scale, neox, freq_factors);
      if (has_norm && c.qk_norm_after_rope) RmsNorm(x, F32(norm), hd, c.rms_eps, x);
    };
    for (int64_t t = 0; t < T; ++t) {
      const int64_t pos = a.pos0 + t;
      for (int h = 0; h < c.n_head; ++h) {
        rope_and_norm(&s->q[t * q_dim + h * hd], L.q_norm, pos);
      }
      for (int h = 0; h < c.n_head_kv; ++h) {
        rope_and_norm(&s->k[t * kv_dim + h * hd], L.k_norm, pos);
      }
      QuantizeRow(cache->type(), &s->k[t * kv_dim], cache->k(layer, pos), kv_dim);
      QuantizeRow(cache->type(), &s->v[t * kv_dim], cache->v(layer, pos), kv_dim);
    }

    // causal attention, one (token, head) pair per work item
    const auto attend = cache->type() == DType::kF16 ? &AttendOneHead<true> : &AttendOneHead<false>;
    pool->ParallelFor(T * c.n_head, 1, [&](int64_t i0, int64_t i1) {
      std::vector<float> scratch(static_cast<size_t>(2 * hd));
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t t = i / c.n_head, h = i % c.n_head;
        attend(&s->q[t * q_dim + h * hd], *cache, layer, (h / group) * hd, hd, a.pos0 + t,
               attn_scale, scratch.data(), &s->att_out[t * q_dim + h * hd]);
      }
    });
    Project(L.wo, Weight{}, s->att_out.data(), T, s->att.data(), pool);
    AddInPlace(s->x.data(), s->att.data(), T * E);

    // ---- feed-forward (SwiGLU): x += W_down (silu(xn W_gate^T) * (xn W_up^T))
    for (int64_t t = 0; t < T; ++t) RmsNorm(&s->x[t * E], F32(L.ffn_norm), E, c.rms_eps, &s->xn[t * E]);
    Project(L.w_gate, Weight{}, s->xn.data(), T, s->gate.data(), pool);
    Project(L.w_up, Weight{}, s->xn.data(), T, s->up.data(), pool);
    for (int64_t t = 0; t < T; ++t) SiluMul(&s->gate[t * c.n_ff], &s->up[t * c.n_ff], c.n_ff);
    Project(L.w_down, Weight{}, s->gate.data(), T, s->att.data(), pool);
    AddInPlace(s->x.data(), s->att.data(), T * E);
  }

  // ---- head: logits = rmsnorm(x) W_out^T, for the last token or all of them
  const int64_t first = a.all_logits ? 0 : T - 1;
  const int64_t n_out = T - first;
  for (int64_t t = first; t < T; ++t) {
    RmsNorm(&s->x[t * E], F32(W.output_norm), E, c.rms_eps, &s->xn[(t - first) * E]);
  }
  logits->resize(static_cast<size_t>(n_out) * c.n_vocab);
  Project(W.output, Weight{}, s->xn.data(), n_out, logits->data(), pool);
  return absl::OkStatus();
}

}  // namespace yuan
