// TrainableModel's insides, shared by model.cpp (creation, parameters,
// export) and model_pass.cpp (the forward and backward passes).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "trainer/model.h"
#include "trainer/model_ops.h"

namespace yuan::train {

// The base model's weight as MatMul and MatRow read it (interleaved if the
// engine that shares the model repacked it).
inline MatRef BaseRef(const Weight& w) {
  return MatRef{w.type, w.rows, w.cols, w.data, w.row_bytes, w.interleaved8};
}

enum Proj { kQ = 0, kK, kV, kO, kGate, kUp, kDown, kProjCount };
inline constexpr const char* kProjGguf[kProjCount] = {
    "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
inline constexpr const char* kProjTarget[kProjCount] = {"q", "k", "v", "o", "gate", "up", "down"};

// A projection y = x W^T (W [rows x cols]): the base weight, or a Param.
struct Matrix {
  std::string name;
  const Weight* base = nullptr;
  int64_t rows = 0, cols = 0;
  int param = -1;       // index into params when trainable
  OwnedMatrix fwd;      // the frozen base interleaved for the kernels (empty: read in place)
  OwnedMatrix t;        // W^T for dx = dy W (empty when the backward pass never needs it)
};

// A 1-D gain or bias: the base's f32 data, or a Param; absent when n == 0.
struct Vec {
  std::string name;
  const float* base = nullptr;
  int64_t n = 0;
  int param = -1;
};

struct LoraPairParams {
  int a = -1, b = -1;   // Param indices; a < 0: no LoRA on this projection
  int64_t in = 0, out = 0;
  std::vector<float> bt;  // B^T [rank x out], made by each forward pass, read by its backward
};

struct LayerParams {
  Vec attn_norm, ffn_norm, bq, bk, bv, q_norm, k_norm;
  std::array<Matrix, kProjCount> m;
  std::array<LoraPairParams, kProjCount> lora;
};

// What the backward pass needs of one layer, kept by the forward pass.
struct Saved {
  std::vector<float> x0, rstd1, xn1;       // layer input, attn_norm scale, normed input
  std::vector<float> qn, kn, rq, rk;       // input of the q/k head norms and their scales
  std::vector<float> q, k, v, lse, ao;     // attention inputs (final), lse, output
  std::vector<float> x1, rstd2, xn2;       // after attention, ffn_norm scale, normed
  std::vector<float> g, u, h;              // gate (pre-activation), up, silu(g) * u
  std::array<std::vector<float>, kProjCount> lu;  // scaling * dropout(x) A^T per LoRA
};

struct TrainableModel::Impl {
  const Model* base = nullptr;
  TrainSpec spec;
  ThreadPool* pool = nullptr;
  // Small passes run on the calling thread alone (see Impl::Run).
  ThreadPool serial{1};
  std::vector<Param> params;
  bool tied = false;            // the head reads token_embd
  int embd_param = -1;          // token_embd.weight as a Param
  Matrix output;                // the head (for tied: token_embd's data)
  Vec output_norm;
  std::vector<LayerParams> layers;
  int lowest = 0;               // lowest layer the backward pass enters
  float lora_scaling = 0.0f;

  // Scratch reused across calls.
  std::vector<Saved> saved;     // [layer], only layers >= lowest are filled
  Saved tmp;                    // layers whose activations are not kept
  std::vector<int32_t> start;   // [T] first key of each token's document
  std::vector<float> rope, rope_inv;
  std::vector<float> x, xf, rstdf, xnf, logits, dlogits, xnt;
  std::vector<float> dx, dxn, dbig, dsmall, dq, dk, dv, dao, dg, du, tmp_in, tmp_out;
  std::vector<float> xd, lora_u, lora_du, lora_tmp, part;
  std::vector<int64_t> target_rows;
  OuterScratch outer;

  const float* Value(int p) const { return params[static_cast<size_t>(p)].value.data(); }
  float* Grad(int p) { return params[static_cast<size_t>(p)].grad.data(); }
  const float* VecData(const Vec& v) const { return v.param >= 0 ? Value(v.param) : v.base; }
  MatRef Fwd(const Matrix& m) const;

  absl::Status CheckBatch(const Batch& b) const;
  // The forward pass (keeping activations when `train`), the loss, and with
  // `train` the backward pass. `logits_out`: all logits (Logits()).
  absl::StatusOr<LossSum> Run(const Batch& b, bool train, float grad_scale, uint64_t seed,
                              std::vector<float>* logits_out);
  void RefreshTransposed();
};

}  // namespace yuan::train
