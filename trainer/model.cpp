// TrainableModel: creation (which tensors train, their initial values, the
// transposed copies the backward pass multiplies by), the parameter list and
// the exports. The passes themselves are in model_pass.cpp.
#include "trainer/model.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/core/status.h"
#include "runtime/model/gguf_writer.h"
#include "trainer/model_impl.h"

namespace yuan::train {
namespace {

// The matrix as MatMul reads it in row-major order: the file's bytes, which
// stay row-major even when an engine has repacked the Weight it shares.
MatRef RowMajor(const Model& model, const std::string& name, const Weight& w) {
  const GgufTensor* t = model.gguf().FindTensor(name);
  const void* data = t != nullptr ? t->data : w.data;
  return MatRef{w.type, w.rows, w.cols, data, w.row_bytes, false};
}

// normal(0, std) for element i of param p, from the seed (Box-Muller on two
// counter hashes).
float InitNormal(uint64_t seed, int p, int64_t i, float std) {
  const uint64_t h1 = Mix64(seed ^ Mix64(static_cast<uint64_t>(p) * 0x100000001B3ull) ^
                            Mix64(static_cast<uint64_t>(i)));
  const uint64_t h2 = Mix64(h1);
  const double u1 = (static_cast<double>(h1 >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
  const double u2 = HashUniform(h2);
  return static_cast<float>(std * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2));
}

float InitUniform(uint64_t seed, int p, int64_t i, float bound) {
  const uint64_t h = Mix64(seed ^ Mix64(static_cast<uint64_t>(p) * 0x9E3779B97F4A7C15ull + 7) ^
                           Mix64(static_cast<uint64_t>(i) + 0x5851F42D4C957F2Dull));
  return static_cast<float>((2.0 * HashUniform(h) - 1.0) * bound);
}

}  // namespace

MatRef TrainableModel::Impl::Fwd(const Matrix& m) const {
  if (m.param >= 0) {
    return MatRef{DType::kF32, m.rows, m.cols, Value(m.param),
                  static_cast<uint64_t>(m.cols) * sizeof(float), false};
  }
  if (!m.fwd.empty()) return m.fwd.ref();
  return BaseRef(*m.base);
}

void TrainableModel::Impl::RefreshTransposed() {
  auto refresh = [&](Matrix& m, bool needed) {
    if (m.param < 0 || !needed) return;
    TransposedF32(Value(m.param), m.rows, m.cols, &m.t, pool);
  };
  refresh(output, true);
  for (size_t l = 0; l < layers.size(); ++l) {
    for (Matrix& m : layers[l].m) refresh(m, static_cast<int>(l) >= lowest);
  }
}

TrainableModel::TrainableModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TrainableModel::~TrainableModel() = default;

absl::StatusOr<std::unique_ptr<TrainableModel>> TrainableModel::Create(const Model& base,
                                                                       const TrainSpec& spec,
                                                                       ThreadPool* pool) {
  if (pool == nullptr) return absl::InvalidArgumentError("no thread pool");
  const ModelConfig& c = base.config();
  const ModelWeights& W = base.weights();
  if (c.n_layer < 1 || c.n_head_kv < 1 || c.n_head % c.n_head_kv != 0) {
    return absl::InvalidArgumentError("the model's head counts are not usable for training");
  }
  if (c.head_dim > 512) return absl::InvalidArgumentError("head_dim above 512 is not supported");
  std::vector<bool> targeted(kProjCount, false);
  switch (spec.mode) {
    case Mode::kLora: {
      const LoraSpec& ls = spec.lora;
      if (ls.rank < 1) return absl::InvalidArgumentError(absl::StrCat("LoRA rank must be >= 1, got ", ls.rank));
      if (!std::isfinite(ls.alpha) || ls.alpha <= 0.0f) {
        return absl::InvalidArgumentError("LoRA alpha must be a positive number");
      }
      if (!(ls.dropout >= 0.0f && ls.dropout < 1.0f)) {
        return absl::InvalidArgumentError("LoRA dropout must be in [0, 1)");
      }
      if (ls.targets.empty()) return absl::InvalidArgumentError("LoRA needs at least one target");
      for (const std::string& t : ls.targets) {
        const auto* it = std::find_if(std::begin(kProjTarget), std::end(kProjTarget),
                                      [&](const char* n) { return t == n; });
        if (it == std::end(kProjTarget)) {
          return absl::InvalidArgumentError(absl::StrCat(
              "unknown LoRA target '", t, "' (want q, k, v, o, gate, up or down)"));
        }
        const size_t p = static_cast<size_t>(it - std::begin(kProjTarget));
        if (targeted[p]) return absl::InvalidArgumentError(absl::StrCat("LoRA target '", t, "' given twice"));
        targeted[p] = true;
      }
      break;
    }
    case Mode::kPartial:
      if (spec.top_layers < 1 || spec.top_layers > c.n_layer) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "top_layers must be in [1, %d], got %d", c.n_layer, spec.top_layers));
      }
      break;
    case Mode::kFull:
      if (spec.random_init && !(std::isfinite(spec.init_std) && spec.init_std > 0.0f)) {
        return absl::InvalidArgumentError("init_std must be a positive number");
      }
      break;
    default:
      return absl::InvalidArgumentError("unknown training mode");
  }

  auto impl = std::make_unique<Impl>();
  Impl& m = *impl;
  m.base = &base;
  m.spec = spec;
  m.pool = pool;
  m.tied = W.tied_output;
  const bool full = spec.mode == Mode::kFull;
  const bool random = full && spec.random_init;
  auto layer_trains = [&](int l) {
    return full || (spec.mode == Mode::kPartial && l >= c.n_layer - spec.top_layers);
  };
  const bool head_trains = full || (spec.mode == Mode::kPartial && spec.train_head);

  // Params are created with their values here; Vec/Matrix keep indices.
  enum class Init { kCopy, kOne, kZero };
  auto add_param = [&](const std::string& name, std::vector<int64_t> ne, bool decay) {
    Param p;
    p.name = name;
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    p.ne = std::move(ne);
    p.value.assign(static_cast<size_t>(n), 0.0f);
    p.grad.assign(static_cast<size_t>(n), 0.0f);
    p.decay = decay;
    m.params.push_back(std::move(p));
    return static_cast<int>(m.params.size() - 1);
  };
  auto vec_param = [&](Vec& v, Init one_or_zero) {
    if (v.n == 0) return;
    v.param = add_param(v.name, {v.n}, false);
    float* d = m.params.back().value.data();
    if (random) {
      std::fill(d, d + v.n, one_or_zero == Init::kOne ? 1.0f : 0.0f);
    } else {
      std::copy(v.base, v.base + v.n, d);
    }
  };
  auto mat_param = [&](Matrix& mt) {
    mt.param = add_param(mt.name, {mt.cols, mt.rows}, true);
    float* d = m.params.back().value.data();
    const int p = mt.param;
    if (random) {
      ParallelEach(pool, mt.rows, [&](int64_t r) {
        for (int64_t i = r * mt.cols; i < (r + 1) * mt.cols; ++i) {
          d[i] = InitNormal(spec.seed, p, i, spec.init_std);
        }
      });
    } else {
      const MatRef src = RowMajor(base, mt.name, *mt.base);
      ParallelEach(pool, mt.rows, [&](int64_t r) {
        DequantizeRow(src.type, static_cast<const uint8_t*>(src.data) + r * src.row_bytes,
                      d + r * mt.cols, mt.cols);
      });
    }
  };
  auto vec_of = [&](const std::string& name, const Weight& w) {
    Vec v;
    v.name = name;
    if (!w.empty()) {
      v.base = static_cast<const float*>(w.data);
      v.n = w.cols * w.rows;
    }
    return v;
  };

  Matrix embd;
  embd.name = "token_embd.weight";
  embd.base = &W.tok_embd;
  embd.rows = W.tok_embd.rows;
  embd.cols = W.tok_embd.cols;
  if (full) {
    mat_param(embd);
    m.embd_param = embd.param;
  }

  m.layers.resize(static_cast<size_t>(c.n_layer));
  for (int l = 0; l < c.n_layer; ++l) {
    const LayerWeights& L = W.layers[static_cast<size_t>(l)];
    LayerParams& P = m.layers[static_cast<size_t>(l)];
    const std::string pre = absl::StrCat("blk.", l, ".");
    P.attn_norm = vec_of(pre + "attn_norm.weight", L.attn_norm);
    P.ffn_norm = vec_of(pre + "ffn_norm.weight", L.ffn_norm);
    P.bq = vec_of(pre + "attn_q.bias", L.bq);
    P.bk = vec_of(pre + "attn_k.bias", L.bk);
    P.bv = vec_of(pre + "attn_v.bias", L.bv);
    P.q_norm = vec_of(pre + "attn_q_norm.weight", L.q_norm);
    P.k_norm = vec_of(pre + "attn_k_norm.weight", L.k_norm);
    const Weight* ws[kProjCount] = {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down};
    for (int p = 0; p < kProjCount; ++p) {
      Matrix& mt = P.m[static_cast<size_t>(p)];
      mt.name = absl::StrCat(pre, kProjGguf[p], ".weight");
      mt.base = ws[p];
      mt.rows = ws[p]->rows;
      mt.cols = ws[p]->cols;
    }
    if (layer_trains(l)) {
      vec_param(P.attn_norm, Init::kOne);
      mat_param(P.m[kQ]);
      vec_param(P.bq, Init::kZero);
      mat_param(P.m[kK]);
      vec_param(P.bk, Init::kZero);
      mat_param(P.m[kV]);
      vec_param(P.bv, Init::kZero);
      vec_param(P.q_norm, Init::kOne);
      vec_param(P.k_norm, Init::kOne);
      mat_param(P.m[kO]);
      vec_param(P.ffn_norm, Init::kOne);
      mat_param(P.m[kGate]);
      mat_param(P.m[kUp]);
      mat_param(P.m[kDown]);
    }
    if (spec.mode == Mode::kLora) {
      const int64_t r = spec.lora.rank;
      for (int p = 0; p < kProjCount; ++p) {
        if (!targeted[static_cast<size_t>(p)]) continue;
        const Matrix& mt = P.m[static_cast<size_t>(p)];
        LoraPairParams& lp = P.lora[static_cast<size_t>(p)];
        lp.in = mt.cols;
        lp.out = mt.rows;
        lp.a = add_param(mt.name + ".lora_a", {mt.cols, r}, true);
        const float bound = static_cast<float>(1.0 / std::sqrt(static_cast<double>(mt.cols)));
        std::vector<float>& a = m.params.back().value;
        const int pa = lp.a;
        for (size_t i = 0; i < a.size(); ++i) {
          a[i] = InitUniform(spec.seed, pa, static_cast<int64_t>(i), bound);
        }
        lp.b = add_param(mt.name + ".lora_b", {r, mt.rows}, true);
      }
    }
  }

  m.output_norm = vec_of("output_norm.weight", W.output_norm);
  m.output.name = m.tied ? "token_embd.weight" : "output.weight";
  m.output.base = m.tied ? &W.tok_embd : &W.output;
  m.output.rows = m.output.base->rows;
  m.output.cols = m.output.base->cols;
  if (head_trains) {
    vec_param(m.output_norm, Init::kOne);
    if (!m.tied) {
      mat_param(m.output);
    } else {
      if (m.embd_param < 0) {  // kPartial: the tied head trains, and with it the embedding
        mat_param(embd);
        m.embd_param = embd.param;
      }
      m.output.param = m.embd_param;
    }
  }

  if (spec.mode == Mode::kLora) {
    m.lora_scaling = spec.lora.use_rslora
                         ? spec.lora.alpha / std::sqrt(static_cast<float>(spec.lora.rank))
                         : spec.lora.alpha / static_cast<float>(spec.lora.rank);
  }
  m.lowest = spec.mode == Mode::kPartial && m.embd_param < 0 ? c.n_layer - spec.top_layers : 0;

  // W^T of the frozen matrices the backward pass multiplies by: the head,
  // and every projection of the layers it enters, except q/k/v of the
  // lowest one when nothing below their input trains.
  const bool below_lowest = m.embd_param >= 0 || m.layers[static_cast<size_t>(m.lowest)].attn_norm.param >= 0;
  if (m.output.param < 0) {
    m.output.t = TransposedCopy(RowMajor(base, m.output.name, *m.output.base), pool);
  }
  for (int l = m.lowest; l < c.n_layer; ++l) {
    for (int p = 0; p < kProjCount; ++p) {
      Matrix& mt = m.layers[static_cast<size_t>(l)].m[static_cast<size_t>(p)];
      if (mt.param >= 0) continue;
      if (l == m.lowest && p <= kV && !below_lowest) continue;
      mt.t = TransposedCopy(RowMajor(base, mt.name, *mt.base), pool);
    }
  }
  // Frozen matrices in the fastest layout (the engine does the same when it
  // loads a model); the tied head stays as is: its rows are also looked up.
  for (LayerParams& P : m.layers) {
    for (int p = 0; p < kProjCount; ++p) {
      Matrix& mt = P.m[static_cast<size_t>(p)];
      if (mt.param < 0) mt.fwd = InterleavedCopy(RowMajor(base, mt.name, *mt.base), pool);
    }
  }
  if (m.output.param < 0 && !m.tied) {
    m.output.fwd = InterleavedCopy(RowMajor(base, m.output.name, *m.output.base), pool);
  }
  m.RefreshTransposed();
  m.saved.resize(static_cast<size_t>(c.n_layer));
  return std::unique_ptr<TrainableModel>(new TrainableModel(std::move(impl)));
}

const Model& TrainableModel::base() const { return *impl_->base; }
const TrainSpec& TrainableModel::spec() const { return impl_->spec; }
std::vector<Param>& TrainableModel::params() { return impl_->params; }
const std::vector<Param>& TrainableModel::params() const { return impl_->params; }

int64_t TrainableModel::n_trainable() const {
  int64_t n = 0;
  for (const Param& p : impl_->params) n += static_cast<int64_t>(p.value.size());
  return n;
}

absl::StatusOr<LossSum> TrainableModel::ForwardBackward(const Batch& batch, float grad_scale,
                                                        uint64_t dropout_seed) {
  return impl_->Run(batch, true, grad_scale, dropout_seed, nullptr);
}

absl::StatusOr<LossSum> TrainableModel::Evaluate(const Batch& batch) {
  return impl_->Run(batch, false, 0.0f, 0, nullptr);
}

absl::StatusOr<std::vector<float>> TrainableModel::Logits(const Batch& batch) {
  std::vector<float> logits;
  YUAN_ASSIGN_OR_RETURN(LossSum unused, impl_->Run(batch, false, 0.0f, 0, &logits));
  (void)unused;
  return logits;
}

void TrainableModel::ZeroGrad() {
  for (Param& p : impl_->params) std::fill(p.grad.begin(), p.grad.end(), 0.0f);
}

void TrainableModel::ParamsChanged() { impl_->RefreshTransposed(); }

absl::StatusOr<LoraAdapter> TrainableModel::ExportAdapter() const {
  const Impl& m = *impl_;
  if (m.spec.mode != Mode::kLora) {
    return absl::FailedPreconditionError("only a LoRA run has an adapter to export");
  }
  LoraAdapter adapter;
  adapter.rank = m.spec.lora.rank;
  adapter.alpha = m.spec.lora.alpha;
  adapter.use_rslora = m.spec.lora.use_rslora;
  for (int p = 0; p < kProjCount; ++p) {  // in the canonical order
    if (std::find(m.spec.lora.targets.begin(), m.spec.lora.targets.end(), kProjTarget[p]) !=
        m.spec.lora.targets.end()) {
      adapter.target_modules.push_back(kProjTarget[p]);
    }
  }
  for (const LayerParams& P : m.layers) {
    for (int p = 0; p < kProjCount; ++p) {
      const LoraPairParams& lp = P.lora[static_cast<size_t>(p)];
      if (lp.a < 0) continue;
      LoraTensor t;
      t.target = P.m[static_cast<size_t>(p)].name;
      t.in = lp.in;
      t.out = lp.out;
      t.a = m.params[static_cast<size_t>(lp.a)].value;
      t.b = m.params[static_cast<size_t>(lp.b)].value;
      adapter.tensors.push_back(std::move(t));
    }
  }
  std::sort(adapter.tensors.begin(), adapter.tensors.end(),
            [](const LoraTensor& x, const LoraTensor& y) { return x.target < y.target; });
  // The tensors are in the base's GGUF row order; saying so up front keeps
  // FillFingerprint from treating them as HF-ordered (which it assumes of an
  // adapter without an architecture) and permuting llama's q/k rows.
  const ModelConfig& c = m.base->config();
  adapter.base.architecture = c.arch;
  adapter.base.qk_permuted = c.arch == "llama" && c.rope_style == RopeStyle::kNormal;
  YUAN_RETURN_IF_ERROR(FillFingerprint(*m.base, &adapter));
  return adapter;
}

namespace {

// Copies one metadata value into the writer, keeping its type where the
// writer can (scalars, strings, string / f32 / i32 arrays; other integer
// arrays become i32 arrays when their values fit).
absl::Status CopyKv(std::string_view key, const GgufValue& v, GgufWriter* w) {
  switch (v.type) {
    case GgufType::kUint8: w->AddUint8(key, static_cast<uint8_t>(v.u)); return absl::OkStatus();
    case GgufType::kInt8: w->AddInt8(key, static_cast<int8_t>(v.i)); return absl::OkStatus();
    case GgufType::kUint16: w->AddUint16(key, static_cast<uint16_t>(v.u)); return absl::OkStatus();
    case GgufType::kInt16: w->AddInt16(key, static_cast<int16_t>(v.i)); return absl::OkStatus();
    case GgufType::kUint32: w->AddUint32(key, static_cast<uint32_t>(v.u)); return absl::OkStatus();
    case GgufType::kInt32: w->AddInt32(key, static_cast<int32_t>(v.i)); return absl::OkStatus();
    case GgufType::kUint64: w->AddUint64(key, v.u); return absl::OkStatus();
    case GgufType::kInt64: w->AddInt64(key, v.i); return absl::OkStatus();
    case GgufType::kFloat32: w->AddFloat32(key, static_cast<float>(v.f)); return absl::OkStatus();
    case GgufType::kFloat64: w->AddFloat64(key, v.f); return absl::OkStatus();
    case GgufType::kBool: w->AddBool(key, v.u != 0); return absl::OkStatus();
    case GgufType::kString: w->AddString(key, v.str); return absl::OkStatus();
    case GgufType::kArray: break;
  }
  if (v.elem_type == GgufType::kString) {
    std::vector<std::string> s(v.strings.begin(), v.strings.end());
    w->AddStringArray(key, s);
    return absl::OkStatus();
  }
  if (v.elem_type == GgufType::kFloat32 || v.elem_type == GgufType::kFloat64) {
    std::vector<float> f(static_cast<size_t>(v.array_size));
    for (uint64_t i = 0; i < v.array_size; ++i) f[i] = static_cast<float>(v.ArrayFloat(i));
    w->AddFloat32Array(key, f);
    return absl::OkStatus();
  }
  if (v.elem_type != GgufType::kArray && v.elem_type != GgufType::kBool) {
    std::vector<int32_t> n(static_cast<size_t>(v.array_size));
    for (uint64_t i = 0; i < v.array_size; ++i) {
      const int64_t x = v.ArrayInt(i);
      if (x < INT32_MIN || x > INT32_MAX) {
        return absl::UnimplementedError(absl::StrCat("cannot copy metadata array '", Sv(key),
                                                     "': a value does not fit in int32"));
      }
      n[i] = static_cast<int32_t>(x);
    }
    w->AddInt32Array(key, n);
    return absl::OkStatus();
  }
  return absl::UnimplementedError(
      absl::StrCat("cannot copy metadata key '", Sv(key), "': unsupported array type"));
}

}  // namespace

absl::Status TrainableModel::ExportModel(const std::string& path) const {
  const Impl& m = *impl_;
  if (m.spec.mode == Mode::kLora) {
    return absl::FailedPreconditionError("a LoRA run exports an adapter, not a model");
  }
  const GgufFile& f = m.base->gguf();
  GgufWriter w;
  w.SetAlignment(f.alignment());
  for (const GgufKv& kv : f.metadata()) {
    if (kv.key == "general.alignment") continue;  // SetAlignment writes it
    YUAN_RETURN_IF_ERROR(CopyKv(kv.key, kv.value, &w));
  }
  for (const GgufTensor& t : f.tensors()) {
    const Param* trained = nullptr;
    for (const Param& p : m.params) {
      if (p.name == t.name) trained = &p;
    }
    std::vector<int64_t> ne(t.ne, t.ne + std::max(1, t.n_dims));
    if (trained != nullptr) {
      w.AddTensor(t.name, DType::kF32, ne, trained->value.data(),
                  trained->value.size() * sizeof(float));
    } else {
      w.AddTensor(t.name, t.type, ne, t.data, static_cast<size_t>(t.n_bytes));
    }
  }
  return w.WriteFile(path);
}

}  // namespace yuan::train
