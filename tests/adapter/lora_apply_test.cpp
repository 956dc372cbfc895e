// LoRA adapters applied at run time (runtime/engine/lora.h): the output with
// an adapter equals an independent PyTorch reference whose base weights have
// the adapter MERGED (W + scaling * B @ A, read from the PEFT files we
// export), a continuous batch mixing adapters gives each request exactly
// what a session with the same adapters gives alone, and adapters that do
// not fit the model are refused naming the tensor.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "runtime/adapter/adapter.h"
#include "runtime/core/thread_pool.h"
#include "runtime/cpu/kernels.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/forward.h"
#include "runtime/engine/kv_cache.h"
#include "runtime/engine/lora.h"
#include "runtime/engine/scheduler.h"
#include "runtime/model/model.h"
#include "tests/common/test_support.h"

namespace yuan {
namespace {

std::string Python() { return yuan::testing::ReferencePython(); }

bool HaveTorch() { return yuan::testing::PythonCanImport("torch, numpy"); }

using yuan::testing::RunCommand;

const char* const kModules[] = {"q", "k", "v", "o", "gate", "up", "down"};
const char* const kSuffix[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

// A random LoRA on `modules` (indices into kModules) of every layer, in the
// model's GGUF row order, with N(0, stddev) A and B.
std::shared_ptr<LoraAdapter> RandomAdapter(const Model& model, int32_t rank, float alpha,
                                           uint64_t seed, float stddev,
                                           std::vector<int> modules = {0, 1, 2, 3, 4, 5, 6}) {
  const ModelConfig& c = model.config();
  auto a = std::make_shared<LoraAdapter>();
  a->rank = rank;
  a->alpha = alpha;
  for (int m : modules) a->target_modules.push_back(kModules[m]);
  a->base.architecture = c.arch;
  a->base.n_head = c.n_head;
  a->base.n_head_kv = c.n_head_kv;
  a->base.qk_permuted = c.arch == "llama";
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, stddev);
  for (int layer = 0; layer < c.n_layer; ++layer) {
    const LayerWeights& L = model.weights().layers[layer];
    const Weight* w[] = {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down};
    for (int m : modules) {
      LoraTensor t;
      t.target = "blk." + std::to_string(layer) + "." + kSuffix[m] + ".weight";
      t.in = w[m]->cols;
      t.out = w[m]->rows;
      t.a.resize(static_cast<size_t>(rank * t.in));
      t.b.resize(static_cast<size_t>(t.out * rank));
      for (float& x : t.a) x = normal(rng);
      for (float& x : t.b) x = normal(rng);
      a->tensors.push_back(std::move(t));
    }
  }
  std::sort(a->tensors.begin(), a->tensors.end(),
            [](const LoraTensor& x, const LoraTensor& y) { return x.target < y.target; });
  return a;
}

std::shared_ptr<const LoraBinding> Bind(std::shared_ptr<const LoraAdapter> a, const Model& model,
                                        LoraStorage storage = LoraStorage::kMatchBase) {
  auto b = LoraBinding::Create(std::move(a), model, storage);
  INFO(b.status().ToString());
  REQUIRE(b.ok());
  return *b;
}

double MaxScaledError(const float* ours, const std::vector<double>& ref, size_t n) {
  double e = 0;
  for (size_t i = 0; i < n; ++i) e = std::max(e, std::fabs(ours[i] - ref[i]) / std::max(1.0, std::fabs(ref[i])));
  return e;
}

// The tolerance of tests/model/arch_reference_test.cpp (f32 KV cache,
// exact attention in the reference).
constexpr double kTolerance = 1e-4;
constexpr double kF16Tolerance = 5e-3;
// A Q8_0 base against the reference's exact products with its dequantized
// weights: every matrix product rounds its activations to int8 blocks, and
// over two layers of these random models that moves logits by up to ~0.2 of
// their range (the adapter itself moves them by ~4.5).
constexpr double kQ8Tolerance = 0.35;
const std::vector<int32_t> kPrompt = {1, 17, 260, 45, 299, 3, 101, 102, 7, 250, 33, 64, 128, 200, 5, 42};

TEST_CASE("LoRA output matches the PyTorch reference with merged weights", "[adapter][lora][reference]") {
  if (!HaveTorch()) {
    WARN("skipped: " << Python() << " cannot import torch and numpy");
    return;
  }
  for (const std::string arch : {"llama", "qwen2"}) for (const DType weights : {DType::kF32, DType::kQ8_0}) {
    INFO(arch << " " << DTypeName(weights));
    testing::RandomModelSpec spec;
    spec.stddev = 0.2f;
    spec.seed = 7;
    spec.arch = arch;
    spec.weight_type = weights;
    if (arch == "qwen2") {
      spec.tied_output = true;
      spec.rms_eps = 1e-6f;
      spec.rope_base = 1000000.0f;
    }
    const std::string path = testing::WriteRandomLlamaModel(
        spec, "lora-ref-" + arch + "-" + std::string(DTypeName(weights)) + ".gguf");
    auto model = Model::Open(path);
    REQUIRE(model.ok());
    const ModelConfig& config = (*model)->config();
    std::shared_ptr<LoraAdapter> adapter = RandomAdapter(**model, 4, 8.0f, 11, 0.1f);
    REQUIRE(ValidateAdapter(*adapter, "random").ok());
    const std::string peft = testing::TempDir() + "/lora-ref-peft-" + arch;
    REQUIRE(ExportPeft(*adapter, peft).ok());
    const float user_scale = 0.75f;  // the request's strength: lora_alpha scaled to match
    LoraAdapter for_reference = *adapter;
    for_reference.alpha = adapter->alpha * user_scale;
    const std::string peft_scaled = peft + "-scaled";
    REQUIRE(ExportPeft(for_reference, peft_scaled).ok());

    // The reference: every prompt position's logits, with and without the merge.
    auto run_reference = [&](const std::string& extra, std::vector<double>* logits) {
      std::string ids;
      for (int32_t t : kPrompt) ids += (ids.empty() ? "" : ",") + std::to_string(t);
      const std::string out = RunCommand(Python() + " " + YUAN_SOURCE_DIR +
                                         "/tests/reference/reference_model.py " + path +
                                         " --tokens " + ids + " --n-predict 0 --exact-attention " + extra);
      const nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
      if (!j.is_object() || !j.contains("logits")) return false;
      for (const auto& row : j["logits"]) {
        for (const auto& x : row) logits->push_back(x.get<double>());
      }
      return true;
    };
    std::vector<double> ref, ref_scaled, ref_base;
    REQUIRE(run_reference("--peft " + peft, &ref));
    REQUIRE(run_reference("--peft " + peft_scaled, &ref_scaled));
    REQUIRE(run_reference("", &ref_base));
    const int64_t V = config.n_vocab, T = static_cast<int64_t>(kPrompt.size());
    REQUIRE(ref.size() == static_cast<size_t>(T * V));

    // Beside the F32 base: F32 storage is exact; F16 storage (the default
    // there, for speed) rounds A and B to 11 significant bits, which moves
    // these logits by ~2e-3 of their range: still 20x less than the
    // adapter's own effect. Beside the Q8_0 base (whose matrix products
    // already round activations to int8 blocks; the reference multiplies
    // its dequantized weights exactly) the default is int8, and it must
    // stay within the base's own tolerance, as F16 does.
    const bool quantized = weights != DType::kF32;
    const double base_tol = quantized ? kQ8Tolerance : kTolerance;
    for (const LoraStorage storage : {quantized ? LoraStorage::kMatchBase : LoraStorage::kF32, LoraStorage::kF16}) {
      INFO((storage == LoraStorage::kF32 ? "F32" : storage == LoraStorage::kF16 ? "F16" : "int8"));
      const double tol = quantized ? kQ8Tolerance : storage == LoraStorage::kF32 ? kTolerance : kF16Tolerance;
      auto binding = Bind(adapter, **model, storage);
      const LoraPair* q = binding->pair(0, LoraProj::kQ);
      REQUIRE(q != nullptr);
      CHECK(q->a.type == (storage == LoraStorage::kMatchBase ? DType::kQ8_0 : storage == LoraStorage::kF16 ? DType::kF16 : DType::kF32));
      CHECK(q->b_type == q->a.type);
      ThreadPool pool(2);
      // Ours: the first 8 tokens as one batch, then one token at a time, so
      // the logits of positions 7..15 are compared.
      auto run_ours = [&](const std::vector<LoraChoice>& loras) {
        auto cache = KvCache::Create(config, 64, DType::kF32);
        REQUIRE(cache.ok());
        ForwardScratch scratch;
        std::vector<float> all((T - 7) * V), logits;
        constexpr int64_t kFirst = 8;
        for (int64_t pos = 0; pos < T;) {
          const int64_t n = pos == 0 ? kFirst : 1;
          SeqSlice slice;
          slice.n_tokens = n;
          slice.pos0 = pos;
          slice.loras = &loras;
          ForwardArgs args;
          args.tokens = kPrompt.data() + pos;
          args.n_tokens = n;
          args.seqs = &slice;
          args.n_seqs = 1;
          REQUIRE(Forward(**model, args, &*cache, &scratch, &pool, &logits).ok());
          REQUIRE(logits.size() == static_cast<size_t>(V));
          pos += n;
          std::copy(logits.begin(), logits.end(), all.begin() + (pos - kFirst) * V);
        }
        return all;
      };
      const size_t offset = static_cast<size_t>((kPrompt.size() - 9) * V);
      auto tail = [&](const std::vector<double>& r) {
        return std::vector<double>(r.begin() + static_cast<std::ptrdiff_t>(offset), r.end());
      };
      const std::vector<float> ours = run_ours({{binding, 1.0f}});
      const double err = MaxScaledError(ours.data(), tail(ref), ours.size());
      INFO("max scaled error with the adapter " << err);
      CHECK(err <= tol);
      // A user scale multiplies the delta (the reference: alpha scaled).
      const std::vector<float> ours_scaled = run_ours({{binding, user_scale}});
      CHECK(MaxScaledError(ours_scaled.data(), tail(ref_scaled), ours.size()) <= tol);
      // Negative controls: the adapter changes the output far beyond the
      // tolerance, and the base alone still matches the unmerged reference.
      const std::vector<float> base = run_ours({});
      INFO("max scaled error of the base " << MaxScaledError(base.data(), tail(ref_base), base.size()));
      CHECK(MaxScaledError(base.data(), tail(ref_base), base.size()) <= base_tol);
      CHECK(MaxScaledError(base.data(), tail(ref), base.size()) > 10 * tol);
      // The same adapter imported back from PEFT (HF q/k row order) binds to
      // the same result.
      auto imported = LoadPeftAdapter(peft);
      REQUIRE(imported.ok());
      auto rebound = Bind(std::make_shared<LoraAdapter>(*imported), **model, storage);
      const std::vector<float> again = run_ours({{rebound, 1.0f}});
      CHECK(MaxScaledError(again.data(), tail(ref), again.size()) <= tol);
    }
  }
}

// Collects one batch request's result.
struct Collector {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  StreamDone result;
  void Attach(BatchRequest* r) {
    r->on_done = [this](const StreamDone& d) {
      std::lock_guard<std::mutex> lock(mu);
      result = d;
      done = true;
      cv.notify_all();
    };
  }
  bool Wait() {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::duration<double>(120 * testing::TimeScale()),
                       [&] { return done; });
  }
};

TEST_CASE("a batch mixing adapters gives each request what it gets alone", "[adapter][lora][scheduler]") {
  testing::RandomModelSpec spec;
  spec.weight_type = DType::kQ8_0;  // repacked and quantized base: deltas stay separate
  spec.stddev = 0.2f;
  spec.seed = 3;
  const std::string path = testing::WriteRandomLlamaModel(spec, "lora-batch.gguf");
  EngineOptions eo;
  eo.model_path = path;
  eo.n_threads = 2;
  auto engine_or = Engine::Open(eo);
  REQUIRE(engine_or.ok());
  std::shared_ptr<Engine> engine = *engine_or;
  const Model& model = engine->model();
  auto a1 = Bind(RandomAdapter(model, 4, 8.0f, 21, 0.3f), model);
  auto a2 = Bind(RandomAdapter(model, 8, 8.0f, 22, 0.3f, {0, 2, 3}), model);
  auto a3 = Bind(RandomAdapter(model, 16, 16.0f, 23, 0.2f, {4, 5, 6}), model);
  const std::vector<std::vector<LoraChoice>> sets = {
      {{a1, 1.0f}}, {{a2, 1.0f}}, {{a3, 0.5f}}, {}, {{a1, 0.5f}, {a3, 1.0f}}};
  const std::vector<std::string> prompts = {"hello world", "the cat sat", "a b c d e f", "hello world",
                                            "one two"};
  constexpr int kTokens = 12;
  SamplingParams greedy;
  greedy.temperature = 0;

  // Alone: one session each.
  std::vector<std::vector<int32_t>> alone;
  auto session_or = Session::Create(engine, 256);
  REQUIRE(session_or.ok());
  Session& session = **session_or;
  for (size_t i = 0; i < sets.size(); ++i) {
    GenerateRequest req;
    req.prompt = prompts[i];
    req.max_tokens = kTokens;
    req.ignore_eos = true;
    req.sampling = greedy;
    req.loras = sets[i];
    GenerateResult res;
    REQUIRE(session.Generate(req, &res).ok());
    REQUIRE(res.tokens.size() == static_cast<size_t>(kTokens));
    alone.push_back(res.tokens);
  }
  // Same prompt (0 and 3), different adapters: different continuations.
  CHECK(alone[0] != alone[3]);

  // The session reuses no context built under other adapters, and reuses it
  // under the same ones.
  {
    GenerateRequest req;
    req.prompt = prompts[0];
    req.max_tokens = kTokens;
    req.ignore_eos = true;
    req.sampling = greedy;
    req.loras = sets[0];
    GenerateResult res;
    REQUIRE(session.Generate(req, &res).ok());  // history was built with sets[4]
    CHECK(res.cached_tokens == 0);
    CHECK(res.tokens == alone[0]);
    REQUIRE(session.Generate(req, &res).ok());
    CHECK(res.cached_tokens > 0);
    CHECK(res.tokens == alone[0]);
    req.loras = {};
    REQUIRE(session.Generate(req, &res).ok());
    CHECK(res.cached_tokens == 0);
    CHECK(res.tokens == alone[3]);
  }

  // Together: all in one scheduler, submitted at once, with small prompt
  // chunks so prompts and decoding steps of different requests share batches.
  for (int64_t batch_tokens : {512, 5}) {
    INFO("max_batch_tokens " << batch_tokens);
    Scheduler::Options opt;
    opt.max_sequences = 8;
    opt.n_ctx = 128;
    opt.max_batch_tokens = batch_tokens;
    auto sched = Scheduler::Start(engine, opt);
    REQUIRE(sched.ok());
    std::vector<std::unique_ptr<Collector>> collectors;
    for (size_t i = 0; i < sets.size(); ++i) {
      BatchRequest r;
      EncodeOptions enc;
      r.prompt = engine->tokenizer().Encode(prompts[i], enc);
      r.max_tokens = kTokens;
      r.ignore_eos = true;
      r.sampling = greedy;
      r.loras = sets[i];
      collectors.push_back(std::make_unique<Collector>());
      collectors.back()->Attach(&r);
      REQUIRE((*sched)->Submit(std::move(r)).ok());
    }
    for (size_t i = 0; i < sets.size(); ++i) {
      INFO("request " << i);
      REQUIRE(collectors[i]->Wait());
      CHECK(collectors[i]->result.status.ok());
      CHECK(collectors[i]->result.tokens == alone[i]);
    }
    CHECK((*sched)->stats().steps < static_cast<uint64_t>(sets.size() * (kTokens + 8)));
  }
}

TEST_CASE("LoraApply: a prompt on the pool equals token-by-token, and the math", "[adapter][lora]") {
  const int32_t R = 16;
  const int64_t in = 256, out = 380, T = 40;
  std::mt19937_64 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> a(R * in), b(out * R), x(T * in), y0(T * out);
  for (auto* v : {&a, &b, &x, &y0}) {
    for (float& f : *v) f = normal(rng);
  }
  // A and B as F32 and as F16 (what a binding stores); the math below uses
  // the values the matrices really hold.
  // B in lora_up's blocks of 8 outputs, as a binding holds it (out = 380: a
  // partial last block).
  std::vector<uint16_t> a16(a.size()), b16(b.size()), bb16((out + 7) / 8 * 8 * R);
  std::vector<float> bb(bb16.size());
  for (size_t i = 0; i < a.size(); ++i) a16[i] = F32ToF16(a[i]);
  for (size_t i = 0; i < b.size(); ++i) b16[i] = F32ToF16(b[i]);
  for (int64_t o = 0; o < out; ++o) {
    for (int r = 0; r < R; ++r) {
      bb[kernels::LoraUpIndex(o, r, R)] = b[o * R + r];
      bb16[kernels::LoraUpIndex(o, r, R)] = b16[o * R + r];
    }
  }
  // And in the int8 forms a binding keeps beside a quantized base, built
  // here from the layout kernels.h documents: A's rows as Q8_0 blocks,
  // interleaved by 8 rows (R = 16); B's rows as int8 with one f16 scale each
  // in LoraUpQ8Index's blocks.
  const int64_t row_q8 = in / 32 * static_cast<int64_t>(sizeof(BlockQ8_0));
  std::vector<uint8_t> aq_rows(R * row_q8), aq(R * row_q8);
  for (int r = 0; r < R; ++r) QuantizeRow(DType::kQ8_0, a.data() + r * in, aq_rows.data() + r * row_q8, in);
  kernels::Interleave8(MatRef{DType::kQ8_0, R, in, aq_rows.data(), static_cast<uint64_t>(row_q8)}, 0, R / 8,
                       aq.data());
  std::vector<float> a_q8(a.size()), b_q8(b.size());  // the values they hold
  DequantizeRow(DType::kQ8_0, aq_rows.data(), a_q8.data(), R * in);
  std::vector<uint8_t> bq((out + 7) / 8 * kernels::LoraUpQ8BlockBytes(R), 0);
  for (int64_t o = 0; o < out; ++o) {
    float amax = 0;
    for (int r = 0; r < R; ++r) amax = std::max(amax, std::fabs(b[o * R + r]));
    const uint16_t d16 = F32ToF16(amax / 127);
    std::memcpy(&bq[kernels::LoraUpQ8Scale(o, R)], &d16, 2);
    for (int r = 0; r < R; ++r) {
      const auto q = static_cast<int8_t>(std::lround(b[o * R + r] / F16ToF32(d16)));
      bq[kernels::LoraUpQ8Index(o, r, R)] = static_cast<uint8_t>(q);
      b_q8[o * R + r] = F16ToF32(d16) * q;
    }
  }
  for (const DType type : {DType::kF32, DType::kF16, DType::kQ8_0}) {
    INFO(DTypeName(type));
    const bool f16 = type == DType::kF16, q8 = type == DType::kQ8_0;
    const uint64_t es = f16 ? 2 : 4;
    LoraPair p;
    if (q8) {
      p.a = MatRef{type, R, in, aq.data(), static_cast<uint64_t>(row_q8), true};
      p.b = bq.data();
    } else {
      p.a = MatRef{type, R, in, f16 ? static_cast<const void*>(a16.data()) : a.data(), in * es};
      p.b = f16 ? static_cast<const void*>(bb16.data()) : bb.data();
    }
    p.b_type = type;
    p.in = in;
    p.out = out;
    ThreadPool pool(2);
    LoraScratch tmp;
    std::vector<float> pooled = y0, single = y0, triples = y0, serial = y0;
    LoraApply(p, R, 0.5f, x.data(), T, pooled.data(), &tmp, &pool);
    LoraApply(p, R, 0.5f, x.data(), T, serial.data(), &tmp, nullptr);
    for (int64_t t = 0; t < T; ++t) {
      LoraApply(p, R, 0.5f, x.data() + t * in, 1, single.data() + t * out, &tmp, &pool);
    }
    for (int64_t t = 0; t < T; t += 3) {  // the small-batch (decoding) path
      LoraApply(p, R, 0.5f, x.data() + t * in, std::min<int64_t>(3, T - t), triples.data() + t * out,
                &tmp, &pool);
    }
    // bit for bit: a sequence alone or in a batch, on the pool or not
    CHECK(pooled == single);
    CHECK(pooled == triples);
    CHECK(pooled == serial);
    // Two adapters on one output: added in task order, on the pool or not.
    {
      const LoraTask two[] = {{&p, R, 0.5f, x.data(), T, nullptr}, {&p, R, -0.25f, x.data(), T, nullptr}};
      std::vector<float> on_pool = y0, alone = y0;
      LoraTask a = two[0], b = two[1];
      a.y = b.y = on_pool.data();
      const LoraTask pooled_tasks[] = {a, b};
      LoraApply(pooled_tasks, 2, &tmp, &pool);
      a.y = b.y = alone.data();
      const LoraTask serial_tasks[] = {a, b};
      LoraApply(serial_tasks, 2, &tmp, nullptr);
      CHECK(on_pool == alone);
    }
    auto av = [&](int64_t i) { return q8 ? double{a_q8[i]} : f16 ? double{F16ToF32(a16[i])} : double{a[i]}; };
    auto bv = [&](int64_t i) { return q8 ? double{b_q8[i]} : f16 ? double{F16ToF32(b16[i])} : double{b[i]}; };
    // Error relative to the largest delta: the f32 paths are exact to float
    // rounding; the int8 one also rounds x to Q8_0 blocks and the rank-sized
    // intermediate to int8 (each ~0.4 % of its largest value).
    double max_err = 0, max_delta = 0;
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t o = 0; o < out; ++o) {
        double d = 0;
        for (int r = 0; r < R; ++r) {
          double u = 0;
          for (int64_t i = 0; i < in; ++i) u += av(r * in + i) * x[t * in + i];
          d += bv(o * R + r) * u;
        }
        const double want = y0[t * out + o] + 0.5 * d;
        max_err = std::max(max_err, std::fabs(pooled[t * out + o] - want));
        max_delta = std::max(max_delta, std::fabs(0.5 * d));
      }
    }
    INFO("max error " << max_err << " of a largest delta " << max_delta);
    CHECK(max_err / max_delta < (q8 ? 2e-2 : 1e-6));
  }
}

TEST_CASE("a binding keeps the adapter's description, not its f32 values", "[adapter][lora]") {
  testing::RandomModelSpec spec;
  spec.weight_type = DType::kQ8_0;
  const std::string path = testing::WriteRandomLlamaModel(spec, "lora-keep.gguf");
  auto model = Model::Open(path);
  REQUIRE(model.ok());
  std::shared_ptr<LoraAdapter> adapter = RandomAdapter(**model, 8, 16.0f, 2, 0.1f);
  adapter->provenance.steps = 42;
  const std::weak_ptr<LoraAdapter> watch = adapter;
  const LoraAdapter copy = *adapter;
  auto binding = Bind(std::move(adapter), **model);
  CHECK(watch.expired());  // the values went with the caller's last reference
  const LoraAdapter& kept = binding->adapter();
  CHECK(kept.rank == copy.rank);
  CHECK(kept.alpha == copy.alpha);
  CHECK(kept.target_modules == copy.target_modules);
  CHECK(kept.provenance.steps == 42);
  CHECK(kept.scaling() == copy.scaling());
  REQUIRE(kept.tensors.size() == copy.tensors.size());
  for (size_t i = 0; i < kept.tensors.size(); ++i) {
    CHECK(kept.tensors[i].target == copy.tensors[i].target);
    CHECK(kept.tensors[i].in == copy.tensors[i].in);
    CHECK(kept.tensors[i].out == copy.tensors[i].out);
    CHECK(kept.tensors[i].a.empty());
    CHECK(kept.tensors[i].b.empty());
  }
  // int8 beside the Q8_0 base: about a quarter of the f32 values' bytes
  uint64_t f32_bytes = 0;
  for (const LoraTensor& t : copy.tensors) f32_bytes += (t.a.size() + t.b.size()) * sizeof(float);
  CHECK(binding->storage_bytes() < f32_bytes / 2);
  CHECK(binding->storage_bytes() > f32_bytes / 5);
}

TEST_CASE("adapters that do not fit the model are refused", "[adapter][lora]") {
  testing::RandomModelSpec spec;
  const std::string path = testing::WriteRandomLlamaModel(spec, "lora-refuse.gguf");
  auto model = Model::Open(path);
  REQUIRE(model.ok());
  auto message = [&](const LoraAdapter& a) {
    auto b = LoraBinding::Create(std::make_shared<LoraAdapter>(a), **model);
    REQUIRE_FALSE(b.ok());
    return std::string(b.status().message());
  };
  const auto good = RandomAdapter(**model, 4, 8.0f, 1, 0.1f);
  REQUIRE(LoraBinding::Create(good, **model).ok());

  SECTION("a projection of another width") {
    LoraAdapter a = *good;
    for (LoraTensor& t : a.tensors) {
      if (t.target != "blk.1.ffn_up.weight") continue;
      t.in = 32;
      t.a.resize(static_cast<size_t>(a.rank * t.in));
    }
    const std::string m = message(a);
    CHECK(m.find("blk.1.ffn_up.weight") != std::string::npos);
    CHECK(m.find("96x64 in the model, 96x32 in the adapter") != std::string::npos);
  }
  SECTION("a layer the model does not have") {
    LoraAdapter a = *good;
    a.tensors[0].target = "blk.7.attn_v.weight";
    CHECK(message(a).find("blk.7.attn_v.weight") != std::string::npos);
  }
  SECTION("a tensor that is no projection") {
    LoraAdapter a = *good;
    a.tensors[0].target = "blk.0.attn_norm.weight";
    CHECK(message(a).find("blk.0.attn_norm.weight") != std::string::npos);
  }
  SECTION("another architecture") {
    LoraAdapter a = *good;
    a.base.architecture = "qwen2";
    CHECK(message(a).find("qwen2") != std::string::npos);
  }
  SECTION("a binding for another model is refused by the forward pass") {
    const std::string other_path = testing::WriteRandomLlamaModel(spec, "lora-refuse-2.gguf");
    auto other = Model::Open(other_path);
    REQUIRE(other.ok());
    auto binding = Bind(good, **other);
    const std::vector<LoraChoice> loras = {{binding, 1.0f}};
    auto cache = KvCache::Create((*model)->config(), 16, DType::kF32);
    REQUIRE(cache.ok());
    ThreadPool pool(1);
    ForwardScratch scratch;
    std::vector<float> logits;
    SeqSlice slice;
    slice.n_tokens = 2;
    slice.loras = &loras;
    ForwardArgs args;
    args.tokens = kPrompt.data();
    args.n_tokens = 2;
    args.seqs = &slice;
    args.n_seqs = 1;
    const absl::Status st = Forward(**model, args, &*cache, &scratch, &pool, &logits);
    CHECK(absl::IsInvalidArgument(st));
    CHECK(std::string(st.message()).find("another model") != std::string::npos);
  }
}

}  // namespace
}  // namespace yuan

namespace yuan {

TEST_CASE("lora_up gives the same bits in every kernel set and every split", "[adapter][lora]") {
  const int64_t rank = 16, out = 203;  // a partial last block
  std::mt19937_64 rng(9);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<uint16_t> b16((out + 7) / 8 * 8 * rank);
  std::vector<float> b32(b16.size()), u(rank), y0(out);
  for (size_t i = 0; i < b16.size(); ++i) {
    b32[i] = normal(rng);
    b16[i] = F32ToF16(b32[i]);
  }
  for (float& x : u) x = normal(rng);
  for (float& x : y0) x = normal(rng);
  for (const DType type : {DType::kF16, DType::kF32}) {
    const void* b = type == DType::kF16 ? static_cast<const void*>(b16.data()) : b32.data();
    std::vector<float> want = y0;
    kernels::LoraUpScalar(type, b, rank, u.data(), 0.3f, want.data(), 0, out);
    for (const kernels::Isa isa : {kernels::Isa::kScalar, kernels::Isa::kAvx2, kernels::Isa::kAvx512}) {
      if (!kernels::IsaSupported(isa)) continue;
      INFO(kernels::IsaName(isa) << " " << DTypeName(type));
      const kernels::KernelSet& ks = kernels::GetKernels(isa);
      std::vector<float> whole = y0, pieces = y0;
      ks.lora_up(type, b, rank, u.data(), 0.3f, whole.data(), 0, out);
      for (int64_t o = 0; o < out; o += 13) {
        ks.lora_up(type, b, rank, u.data(), 0.3f, pieces.data(), o, std::min<int64_t>(out, o + 13));
      }
      CHECK(whole == want);
      CHECK(pieces == want);
    }
  }
}

}  // namespace yuan

namespace yuan {

TEST_CASE("lora_up_q8 gives the same bits in every kernel set and every split, and the sum", "[adapter][lora]") {
  // ranks 6 (padded to 8) and 16 (broadcasts kept in registers), 64 and 72
  // (the vector kernels' path for any rank)
  for (const int64_t rank : {6, 16, 64, 72}) {
    INFO("rank " << rank);
    const int64_t rank4 = (rank + 3) / 4 * 4, out = 203;  // a partial last block
    std::mt19937_64 rng(static_cast<uint64_t>(rank));
    std::uniform_int_distribution<int> q(-127, 127);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<uint8_t> b((out + 7) / 8 * kernels::LoraUpQ8BlockBytes(rank4), 0);
    std::vector<int8_t> u(static_cast<size_t>(rank4), 0);
    std::vector<float> scale(out), y0(out);
    for (int64_t o = 0; o < out; ++o) {
      scale[o] = RoundToF16(std::fabs(normal(rng)) * 0.01f);
      const uint16_t h = F32ToF16(scale[o]);
      std::memcpy(&b[kernels::LoraUpQ8Scale(o, rank4)], &h, 2);
      for (int64_t r = 0; r < rank; ++r) b[kernels::LoraUpQ8Index(o, r, rank4)] = static_cast<uint8_t>(q(rng));
      y0[o] = normal(rng);
    }
    for (int64_t r = 0; r < rank; ++r) u[r] = static_cast<int8_t>(q(rng));
    std::vector<float> want = y0;
    kernels::LoraUpQ8Scalar(b.data(), rank4, u.data(), 0.3f, want.data(), 0, out);
    // the scalar kernel against the sum written out from the layout
    for (int64_t o = 0; o < out; ++o) {
      double sum = 0;
      for (int64_t r = 0; r < rank; ++r) {
        sum += static_cast<int8_t>(b[kernels::LoraUpQ8Index(o, r, rank4)]) * static_cast<double>(u[r]);
      }
      CHECK(std::fabs(want[o] - (y0[o] + 0.3 * scale[o] * sum)) <= 1e-5 * (1 + std::fabs(want[o])));
    }
    for (const kernels::Isa isa : {kernels::Isa::kScalar, kernels::Isa::kAvx2, kernels::Isa::kAvx512}) {
      if (!kernels::IsaSupported(isa)) continue;
      INFO(kernels::IsaName(isa));
      const kernels::KernelSet& ks = kernels::GetKernels(isa);
      std::vector<float> whole = y0, pieces = y0;
      ks.lora_up_q8(b.data(), rank4, u.data(), 0.3f, whole.data(), 0, out);
      for (int64_t o = 0; o < out; o += 13) {
        ks.lora_up_q8(b.data(), rank4, u.data(), 0.3f, pieces.data(), o, std::min<int64_t>(out, o + 13));
      }
      CHECK(whole == want);
      CHECK(pieces == want);
    }
  }
}

}  // namespace yuan
