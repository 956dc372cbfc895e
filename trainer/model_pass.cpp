// The forward pass (the engine's math, runtime/engine/forward.cpp, over
// packed rows without a KV cache), the loss, and the backward pass.
#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"
#include "runtime/core/status.h"
#include "runtime/cpu/ops.h"
#include "trainer/model_impl.h"

namespace yuan::train {
namespace {

template <typename V>
void Grow(V* v, int64_t n) {
  if (static_cast<int64_t>(v->size()) < n) v->resize(static_cast<size_t>(n));
}

// y[t * rows + r] = w[r] . x[t]: an f32 product with a small side (LoRA's
// rank). MatMul threads over the weight's rows, so when `w` has few of them
// the roles swap (x as the weight) and the result is transposed back.
void MulF32(const float* w, int64_t rows, int64_t cols, const float* x, int64_t n, float* y,
            std::vector<float>* tmp, ThreadPool* pool) {
  const uint64_t rb = static_cast<uint64_t>(cols) * sizeof(float);
  if (rows >= 96 || rows >= n) {
    MatMul(MatRef{DType::kF32, rows, cols, w, rb, false}, x, n, y, pool);
    return;
  }
  Grow(tmp, rows * n);
  MatMul(MatRef{DType::kF32, n, cols, x, rb, false}, w, rows, tmp->data(), pool);  // [rows][n]
  Transpose(tmp->data(), rows, n, y, pool);
}

// silu(g) = g * sigmoid(g) over n values and its derivative, from exp(-g)
// by the vector ExpArray (`e`: n floats of scratch).
void SiluBwd(const float* g, int64_t n, float* e, float* act, float* dact) {
  for (int64_t i = 0; i < n; ++i) e[i] = -g[i];
  ExpArray(e, e, n);
  for (int64_t i = 0; i < n; ++i) {
    const float sig = 1.0f / (1.0f + e[i]);
    act[i] = g[i] * sig;
    dact[i] = sig * (1.0f + g[i] * (1.0f - sig));
  }
}

}  // namespace

absl::Status TrainableModel::Impl::CheckBatch(const Batch& b) const {
  const int64_t V = base->config().n_vocab;
  if (b.n_rows < 1 || b.seq_len < 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("a batch needs n_rows >= 1 and seq_len >= 1, got %d x %d", b.n_rows, b.seq_len));
  }
  if (b.n_rows > (int64_t{1} << 24) / b.seq_len) {
    return absl::InvalidArgumentError("the batch is too large");
  }
  const size_t T = static_cast<size_t>(b.n_rows * b.seq_len);
  if (b.tokens.size() != T || b.targets.size() != T || (!b.doc.empty() && b.doc.size() != T)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "batch sizes do not match %d x %d: %d tokens, %d targets, %d doc ids", b.n_rows,
        b.seq_len, b.tokens.size(), b.targets.size(), b.doc.size()));
  }
  for (size_t i = 0; i < T; ++i) {
    if (b.tokens[i] < 0 || b.tokens[i] >= V) {
      return absl::InvalidArgumentError(
          absl::StrFormat("token id %d at %d is out of range [0, %d)", b.tokens[i], i, V));
    }
    if (b.targets[i] < -1 || b.targets[i] >= V) {
      return absl::InvalidArgumentError(
          absl::StrFormat("target %d at %d is out of range [0, %d) (or -1)", b.targets[i], i, V));
    }
    if (!b.doc.empty()) {
      const bool row_start = i % static_cast<size_t>(b.seq_len) == 0;
      if (b.doc[i] < 0 || (!row_start && b.doc[i] < b.doc[i - 1])) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "document ids must be >= 0 and non-decreasing within a row (at %d)", i));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<LossSum> TrainableModel::Impl::Run(const Batch& b, bool train, float grad_scale,
                                                  uint64_t seed, std::vector<float>* logits_out) {
  YUAN_RETURN_IF_ERROR(CheckBatch(b));
  const ModelConfig& c = base->config();
  const ModelWeights& W = base->weights();
  const int64_t T = b.n_rows * b.seq_len, S = b.seq_len;
  const int64_t E = c.n_embd, hd = c.head_dim, H = c.n_head, Hkv = c.n_head_kv, F = c.n_ff;
  const int64_t V = c.n_vocab, q_dim = H * hd, kv_dim = Hkv * hd, n_rot = c.n_rot;
  const float eps = c.rms_eps;
  const bool neox = c.rope_style == RopeStyle::kNeox;
  // A pass whose projections are a few million multiply-adds each (a small
  // model, a short batch) runs on this thread alone: on a busy machine every
  // hand-off to the pool can wait for a descheduled worker, which costs more
  // than the work (a 10x slowdown on the test models under load).
  ThreadPool* const pool = E * E * T < (int64_t{1} << 24) ? &serial : this->pool;
  const bool lora_mode = spec.mode == Mode::kLora;
  const float p_drop = train && lora_mode ? spec.lora.dropout : 0.0f;
  const int64_t R = lora_mode ? spec.lora.rank : 0;

  // Documents: each token's first key, and its position within its document.
  start.resize(static_cast<size_t>(T));
  Grow(&rope, T * n_rot);
  Grow(&rope_inv, T * n_rot);
  for (int64_t row = 0; row < b.n_rows; ++row) {
    int64_t st = row * S;
    for (int64_t t = row * S; t < (row + 1) * S; ++t) {
      if (t > row * S && !b.doc.empty() && b.doc[t] != b.doc[t - 1]) st = t;
      start[t] = static_cast<int32_t>(st);
    }
  }
  const float* freq_factors = c.rope_freq_factors.empty() ? nullptr : c.rope_freq_factors.data();
  ParallelEach(pool, T, E, [&](int64_t t) {
    float* cs = &rope[t * n_rot];
    RopeTable(n_rot, t - start[t], c.rope_freq_base, c.rope_freq_scale, freq_factors, cs);
    float* ci = &rope_inv[t * n_rot];
    for (int64_t i = 0; i < n_rot; i += 2) {
      ci[i] = cs[i];
      ci[i + 1] = -cs[i + 1];
    }
  });

  // dropout(x) for the LoRA branch of (layer, projection): x * keep / (1 - p),
  // the mask a hash of (seed, layer, projection, token, column).
  auto dropout = [&](int l, int p, const float* src, int64_t n, float* dst) {
    const uint64_t base_h = Mix64(seed ^ Mix64(static_cast<uint64_t>(l) * 8 + p + 0xD1B54A32D192ED03ull));
    const float keep_scale = 1.0f / (1.0f - p_drop);
    ParallelEach(pool, T, E, [&](int64_t t) {
      const uint64_t ht = Mix64(base_h ^ static_cast<uint64_t>(t));
      for (int64_t i = 0; i < n; ++i) {
        const bool keep = HashUniform(Mix64(ht + static_cast<uint64_t>(i))) >= p_drop;
        dst[t * n + i] = keep ? src[t * n + i] * keep_scale : 0.0f;
      }
    });
  };

  // y = x W^T (+ bias) (+ the LoRA branch, keeping scaling * dropout(x) A^T
  // in `lu` for the backward pass)
  auto project = [&](int l, int p, const Vec* bias, const float* x_in, float* y,
                     std::vector<float>* lu) {
    const Matrix& mt = layers[static_cast<size_t>(l)].m[static_cast<size_t>(p)];
    MatMul(Fwd(mt), x_in, T, y, pool);
    if (bias != nullptr && bias->n > 0) {
      const float* bv = VecData(*bias);
      ParallelEach(pool, T, E, [&](int64_t t) { AddInPlace(y + t * mt.rows, bv, mt.rows); });
    }
    LoraPairParams& lp = layers[static_cast<size_t>(l)].lora[static_cast<size_t>(p)];
    if (lp.a < 0) return;
    const float* xin = x_in;
    if (p_drop > 0.0f) {
      Grow(&xd, T * lp.in);
      dropout(l, p, x_in, lp.in, xd.data());
      xin = xd.data();
    }
    Grow(lu, T * R);
    MulF32(Value(lp.a), R, lp.in, xin, T, lu->data(), &lora_tmp, pool);
    const float s = lora_scaling;
    for (int64_t i = 0; i < T * R; ++i) (*lu)[i] *= s;
    lp.bt.resize(static_cast<size_t>(R * lp.out));
    Transpose(Value(lp.b), lp.out, R, lp.bt.data(), pool);
    MulSmallInner(lu->data(), T, R, lp.bt.data(), lp.out, y, true, pool);  // y += lu B^T
  };

  // ---- forward
  Grow(&x, T * E);
  ParallelEach(pool, T, E, [&](int64_t t) {
    const int32_t tok = b.tokens[t];
    if (embd_param >= 0) {
      std::copy(Value(embd_param) + tok * E, Value(embd_param) + (tok + 1) * E, &x[t * E]);
    } else {
      MatRow(BaseRef(W.tok_embd), tok, &x[t * E]);
    }
  });
  AttnShape shape{b.n_rows, S, H, Hkv, hd, 1.0f / std::sqrt(static_cast<float>(hd)), start.data()};
  for (int l = 0; l < c.n_layer; ++l) {
    const LayerParams& P = layers[static_cast<size_t>(l)];
    const bool keep = train && l >= lowest;
    Saved& s = keep ? saved[static_cast<size_t>(l)] : tmp;
    for (auto* v : {&s.xn1, &s.x1, &s.xn2}) Grow(v, T * E);
    for (auto* v : {&s.q, &s.ao}) Grow(v, T * q_dim);
    for (auto* v : {&s.k, &s.v}) Grow(v, T * kv_dim);
    for (auto* v : {&s.g, &s.u, &s.h}) Grow(v, T * F);
    for (auto* v : {&s.rstd1, &s.rstd2}) Grow(v, T);
    Grow(&s.lse, T * H);
    if (P.q_norm.n > 0) Grow(&s.qn, T * q_dim), Grow(&s.rq, T * H);
    if (P.k_norm.n > 0) Grow(&s.kn, T * kv_dim), Grow(&s.rk, T * Hkv);
    if (keep) {
      Grow(&s.x0, T * E);
      std::copy(x.begin(), x.begin() + T * E, s.x0.begin());
    }
    const float* w1 = VecData(P.attn_norm);
    ParallelEach(pool, T, E, [&](int64_t t) {
      s.rstd1[t] = RmsNormFwd(&x[t * E], w1, E, eps, &s.xn1[t * E]);
    });
    project(l, kQ, &P.bq, s.xn1.data(), s.q.data(), &s.lu[kQ]);
    project(l, kK, &P.bk, s.xn1.data(), s.k.data(), &s.lu[kK]);
    project(l, kV, &P.bv, s.xn1.data(), s.v.data(), &s.lu[kV]);
    // RoPE with the optional per-head norm before it (qwen3) or after it
    // (hunyuan-dense), keeping the norm's input and scale
    const bool after = c.qk_norm_after_rope;
    auto rope_norm = [&](float* xh, const Vec& norm, float* saved_in, float* saved_r,
                         const float* cs) {
      if (norm.n > 0 && !after) {
        std::copy(xh, xh + hd, saved_in);
        *saved_r = RmsNormFwd(xh, VecData(norm), hd, eps, xh);
      }
      RopeApply(xh, n_rot, neox, cs);
      if (norm.n > 0 && after) {
        std::copy(xh, xh + hd, saved_in);
        *saved_r = RmsNormFwd(xh, VecData(norm), hd, eps, xh);
      }
    };
    ParallelEach(pool, T, E, [&](int64_t t) {
      const float* cs = &rope[t * n_rot];
      for (int64_t h = 0; h < H; ++h) {
        const bool n = P.q_norm.n > 0;
        rope_norm(&s.q[t * q_dim + h * hd], P.q_norm, n ? &s.qn[t * q_dim + h * hd] : nullptr,
                  n ? &s.rq[t * H + h] : nullptr, cs);
      }
      for (int64_t h = 0; h < Hkv; ++h) {
        const bool n = P.k_norm.n > 0;
        rope_norm(&s.k[t * kv_dim + h * hd], P.k_norm, n ? &s.kn[t * kv_dim + h * hd] : nullptr,
                  n ? &s.rk[t * Hkv + h] : nullptr, cs);
      }
    });
    AttentionFwd(shape, s.q.data(), s.k.data(), s.v.data(), s.ao.data(), s.lse.data(), pool);
    Grow(&tmp_in, T * E);
    project(l, kO, nullptr, s.ao.data(), tmp_in.data(), &s.lu[kO]);
    const float* w2 = VecData(P.ffn_norm);
    ParallelEach(pool, T, E, [&](int64_t t) {
      for (int64_t i = 0; i < E; ++i) s.x1[t * E + i] = x[t * E + i] + tmp_in[t * E + i];
      s.rstd2[t] = RmsNormFwd(&s.x1[t * E], w2, E, eps, &s.xn2[t * E]);
    });
    project(l, kGate, nullptr, s.xn2.data(), s.g.data(), &s.lu[kGate]);
    project(l, kUp, nullptr, s.xn2.data(), s.u.data(), &s.lu[kUp]);
    ParallelEach(pool, T, E, [&](int64_t t) {  // h = silu(g) * u, as the engine's SiluMul
      std::copy(&s.g[t * F], &s.g[(t + 1) * F], &s.h[t * F]);
      SiluMul(&s.h[t * F], &s.u[t * F], F);
    });
    project(l, kDown, nullptr, s.h.data(), tmp_in.data(), &s.lu[kDown]);
    ParallelEach(pool, T, E, [&](int64_t t) {
      for (int64_t i = 0; i < E; ++i) x[t * E + i] = s.x1[t * E + i] + tmp_in[t * E + i];
    });
  }

  // ---- head, on the rows that are wanted
  target_rows.clear();
  for (int64_t t = 0; t < T; ++t) {
    if (logits_out != nullptr || b.targets[t] >= 0) target_rows.push_back(t);
  }
  const int64_t n_out = static_cast<int64_t>(target_rows.size());
  LossSum result;
  if (n_out == 0) return result;
  Grow(&xnf, n_out * E);
  Grow(&rstdf, n_out);
  const float* wf = VecData(output_norm);
  ParallelEach(pool, n_out, [&](int64_t i) {
    rstdf[i] = RmsNormFwd(&x[target_rows[i] * E], wf, E, eps, &xnf[i * E]);
  });
  Grow(&logits, n_out * V);
  MatMul(Fwd(output), xnf.data(), n_out, logits.data(), pool);
  if (logits_out != nullptr) {
    logits_out->assign(logits.begin(), logits.begin() + n_out * V);
    return result;
  }
  std::vector<double> row_loss(static_cast<size_t>(n_out));
  ParallelEach(pool, n_out, [&](int64_t i) {
    float* z = &logits[i * V];
    float mx = z[0];
    for (int64_t j = 1; j < V; ++j) mx = std::max(mx, z[j]);
    for (int64_t j = 0; j < V; ++j) z[j] -= mx;
    const int32_t tgt = b.targets[target_rows[i]];
    const float zt = z[tgt];
    ExpArray(z, z, V);
    double sum = 0.0;
    for (int64_t j = 0; j < V; ++j) sum += z[j];
    row_loss[i] = std::log(sum) - zt;
    if (train) {  // d loss / d z = softmax - onehot, in place
      const float k = static_cast<float>(grad_scale / sum);
      for (int64_t j = 0; j < V; ++j) z[j] *= k;
      z[tgt] -= grad_scale;
    }
  });
  for (double v : row_loss) result.loss += v;
  result.n_targets = n_out;
  if (!train) return result;

  // ---- backward
  const float* dlog = logits.data();
  Grow(&dx, T * E);
  Grow(&tmp_in, T * E);
  Grow(&part, std::max(T * std::max(E, hd), n_out * E));
  MatMul(output.t.ref(), dlog, n_out, tmp_in.data(), pool);  // d xnf, [n_out][E]
  if (output.param >= 0) {
    AccumulateOuter(dlog, V, xnf.data(), E, n_out, Grad(output.param), &outer, pool);
  }
  std::fill(dx.begin(), dx.begin() + T * E, 0.0f);
  ParallelEach(pool, n_out, [&](int64_t i) {
    const int64_t t = target_rows[i];
    RmsNormBwd(&x[t * E], rstdf[i], wf, &tmp_in[i * E], E, &dx[t * E], false,
               output_norm.param >= 0 ? &part[i * E] : nullptr);
  });
  if (output_norm.param >= 0) SumRowsInto(part.data(), n_out, E, Grad(output_norm.param), pool);

  // dx_out (+)= dy W, and the gradients of W and of its LoRA pair
  auto project_back = [&](int l, int p, const float* dy, const float* x_in,
                          const std::vector<float>& lu, float* dx_out, bool accumulate,
                          bool need_dx) {
    Matrix& mt = layers[static_cast<size_t>(l)].m[static_cast<size_t>(p)];
    if (need_dx) {
      Grow(&dbig, T * mt.cols);
      MatMul(mt.t.ref(), dy, T, accumulate ? dbig.data() : dx_out, pool);
      if (accumulate) AddScaled(dbig.data(), 1.0f, T * mt.cols, dx_out, pool);
    }
    if (mt.param >= 0) AccumulateOuter(dy, mt.rows, x_in, mt.cols, T, Grad(mt.param), &outer, pool);
    LoraPairParams& lp = layers[static_cast<size_t>(l)].lora[static_cast<size_t>(p)];
    if (lp.a < 0) return;
    // dB[o][r] += sum_t dy[t][o] lu[t][r], from its transpose lu^T dy
    Grow(&lora_tmp, R * lp.out);
    OuterSmall(lu.data(), R, dy, lp.out, T, lora_tmp.data(), pool);
    float* gb = Grad(lp.b);
    ParallelEach(pool, lp.out, R, [&](int64_t o) {
      for (int64_t r = 0; r < R; ++r) gb[o * R + r] += lora_tmp[r * lp.out + o];
    });
    // lp.bt = B^T was made by this pass's forward (B has not changed since)
    Grow(&lora_du, T * R);
    MulF32(lp.bt.data(), R, lp.out, dy, T, lora_du.data(), &lora_tmp, pool);  // dy B
    for (int64_t i = 0; i < T * R; ++i) lora_du[i] *= lora_scaling;
    const float* xin = x_in;
    if (p_drop > 0.0f) {
      Grow(&xd, T * lp.in);
      dropout(l, p, x_in, lp.in, xd.data());
      xin = xd.data();
    }
    // dA += du^T x, summed apart and then added (so that gradients of
    // successive batches add exactly, as everywhere)
    Grow(&lora_tmp, R * lp.in);
    OuterSmall(lora_du.data(), R, xin, lp.in, T, lora_tmp.data(), pool);
    AddScaled(lora_tmp.data(), 1.0f, R * lp.in, Grad(lp.a), pool);
    if (!need_dx) return;
    if (p_drop == 0.0f) {  // dx += du A
      MulSmallInner(lora_du.data(), T, R, Value(lp.a), lp.in, dx_out, true, pool);
      return;
    }
    Grow(&tmp_out, T * lp.in);  // dx += dropout(du A), the mask of the forward pass
    MulSmallInner(lora_du.data(), T, R, Value(lp.a), lp.in, tmp_out.data(), false, pool);
    dropout(l, p, tmp_out.data(), lp.in, tmp_out.data());
    AddScaled(tmp_out.data(), 1.0f, T * lp.in, dx_out, pool);
  };

  Grow(&dxn, T * E);
  Grow(&dg, T * F);
  Grow(&du, T * F);
  Grow(&dao, T * q_dim);
  Grow(&dq, T * q_dim);
  Grow(&dk, T * kv_dim);
  Grow(&dv, T * kv_dim);
  for (int l = c.n_layer - 1; l >= lowest; --l) {
    LayerParams& P = layers[static_cast<size_t>(l)];
    Saved& s = saved[static_cast<size_t>(l)];
    // feed-forward: dx is the gradient of the layer's output x1 + down(h)
    project_back(l, kDown, dx.data(), s.h.data(), s.lu[kDown], dg.data(), false, true);  // dh
    ParallelEach(pool, T, E, [&](int64_t t) {
      thread_local std::vector<float> buf;
      Grow(&buf, 3 * F);
      float *e = buf.data(), *act = e + F, *dact = act + F;
      SiluBwd(&s.g[t * F], F, e, act, dact);
      for (int64_t i = 0; i < F; ++i) {
        const int64_t j = t * F + i;
        const float dh = dg[j];
        du[j] = dh * act[i];
        dg[j] = dh * s.u[j] * dact[i];
      }
    });
    project_back(l, kGate, dg.data(), s.xn2.data(), s.lu[kGate], dxn.data(), false, true);
    project_back(l, kUp, du.data(), s.xn2.data(), s.lu[kUp], dxn.data(), true, true);
    const float* w2 = VecData(P.ffn_norm);
    ParallelEach(pool, T, E, [&](int64_t t) {  // dx becomes the gradient of x1
      RmsNormBwd(&s.x1[t * E], s.rstd2[t], w2, &dxn[t * E], E, &dx[t * E], true,
                 P.ffn_norm.param >= 0 ? &part[t * E] : nullptr);
    });
    if (P.ffn_norm.param >= 0) SumRowsInto(part.data(), T, E, Grad(P.ffn_norm.param), pool);

    // attention
    project_back(l, kO, dx.data(), s.ao.data(), s.lu[kO], dao.data(), false, true);
    AttentionBwd(shape, s.q.data(), s.k.data(), s.v.data(), s.ao.data(), s.lse.data(),
                 dao.data(), dq.data(), dk.data(), dv.data(), pool);
    const bool after = c.qk_norm_after_rope;
    // back through RoPE (the inverse rotation) and the per-head norms
    auto unrope = [&](float* d, const Vec& norm, const float* in, float r, float* dw,
                      const float* ci) {
      if (norm.n > 0 && after) RmsNormBwd(in, r, VecData(norm), d, hd, d, false, dw);
      RopeApply(d, n_rot, neox, ci);
      if (norm.n > 0 && !after) RmsNormBwd(in, r, VecData(norm), d, hd, d, false, dw);
    };
    for (int which = 0; which < 2; ++which) {
      const bool is_q = which == 0;
      const Vec& norm = is_q ? P.q_norm : P.k_norm;
      const int64_t nh = is_q ? H : Hkv, dim = nh * hd;
      float* d = is_q ? dq.data() : dk.data();
      const float* in = norm.n > 0 ? (is_q ? s.qn.data() : s.kn.data()) : nullptr;
      const float* rs = norm.n > 0 ? (is_q ? s.rq.data() : s.rk.data()) : nullptr;
      const bool want_dw = norm.param >= 0;
      ParallelEach(pool, T, E, [&](int64_t t) {
        float head_dw[512];
        float* acc = want_dw ? &part[t * hd] : nullptr;
        if (acc != nullptr) std::fill(acc, acc + hd, 0.0f);
        for (int64_t h = 0; h < nh; ++h) {
          const int64_t o = t * dim + h * hd;
          unrope(d + o, norm, in != nullptr ? in + o : nullptr, rs != nullptr ? rs[t * nh + h] : 0.0f,
                 want_dw ? head_dw : nullptr, &rope_inv[t * n_rot]);
          if (acc != nullptr) {
            for (int64_t i = 0; i < hd; ++i) acc[i] += head_dw[i];
          }
        }
      });
      if (want_dw) SumRowsInto(part.data(), T, hd, Grad(norm.param), pool);
    }
    if (P.bq.param >= 0) SumRowsInto(dq.data(), T, q_dim, Grad(P.bq.param), pool);
    if (P.bk.param >= 0) SumRowsInto(dk.data(), T, kv_dim, Grad(P.bk.param), pool);
    if (P.bv.param >= 0) SumRowsInto(dv.data(), T, kv_dim, Grad(P.bv.param), pool);
    const bool need_below = l > lowest || embd_param >= 0;
    const bool need_dxn1 = need_below || P.attn_norm.param >= 0;
    project_back(l, kQ, dq.data(), s.xn1.data(), s.lu[kQ], dxn.data(), false, need_dxn1);
    project_back(l, kK, dk.data(), s.xn1.data(), s.lu[kK], dxn.data(), true, need_dxn1);
    project_back(l, kV, dv.data(), s.xn1.data(), s.lu[kV], dxn.data(), true, need_dxn1);
    if (!need_dxn1) break;
    const float* w1 = VecData(P.attn_norm);
    ParallelEach(pool, T, E, [&](int64_t t) {  // dx becomes the gradient of the layer's input
      RmsNormBwd(&s.x0[t * E], s.rstd1[t], w1, &dxn[t * E], E, &dx[t * E], true,
                 P.attn_norm.param >= 0 ? &part[t * E] : nullptr);
    });
    if (P.attn_norm.param >= 0) SumRowsInto(part.data(), T, E, Grad(P.attn_norm.param), pool);
  }
  if (embd_param >= 0) {  // scatter-add, each column summed by one thread in token order
    float* g = Grad(embd_param);
    constexpr int64_t kChunk = 64;
    ParallelEach(pool, (E + kChunk - 1) / kChunk, [&](int64_t cb) {
      const int64_t i0 = cb * kChunk, i1 = std::min(E, i0 + kChunk);
      for (int64_t t = 0; t < T; ++t) {
        float* gr = g + static_cast<int64_t>(b.tokens[t]) * E;
        for (int64_t i = i0; i < i1; ++i) gr[i] += dx[t * E + i];
      }
    });
  }
  return result;
}

}  // namespace yuan::train
