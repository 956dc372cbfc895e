#include "runtime/engine/engine.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>

#include <sys/mman.h>

#include "runtime/core/log.h"
#include "runtime/core/mapped_file.h"
#include "runtime/core/status.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/matmul.h"
#include "runtime/engine/text_stream.h"
#include "runtime/grammar/matcher.h"
#include "runtime/model/hf_folder.h"
#include "runtime/tokenizer/tokenizer_json.h"

namespace yuan {
namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

int DefaultThreads() {
  // hardware_concurrency counts SMT siblings; half of it approximates the
  // physical cores, which is what memory-bound decoding wants.
  const unsigned hw = std::thread::hardware_concurrency();
  return std::clamp<int>(hw > 2 ? static_cast<int>(hw / 2) : static_cast<int>(hw), 1, 8);
}

// FNV-1a over the model's architecture, hyper-parameters and tensor table.
uint64_t ModelFingerprint(const Model& model) {
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  };
  const ModelConfig& c = model.config();
  mix(c.arch.data(), c.arch.size());
  for (int32_t v : {c.n_vocab, c.n_embd, c.n_layer, c.n_head, c.n_head_kv, c.head_dim, c.n_ff}) {
    mix(&v, sizeof v);
  }
  for (const GgufTensor& t : model.gguf().tensors()) {
    mix(t.name.data(), t.name.size());
    mix(&t.type, sizeof t.type);
    mix(t.ne, sizeof t.ne);
  }
  return h;
}

// Prompt tokens are evaluated in batches of up to this many (llama.cpp's
// default n_ubatch): large enough for the matrix-matrix kernels to reuse each
// weight block across many tokens, small enough for modest scratch buffers.
// Forward checks cancel between layers, so a cancel still lands quickly.
constexpr int64_t kPromptChunk = 512;

}  // namespace

absl::StatusOr<std::unique_ptr<GgufFile>> OpenModelFile(const std::string& path) {
  if (!LooksLikeHfFolder(path)) return GgufFile::Open(path);
  // A Hugging Face folder: its tokenizer.json (+ tokenizer_config.json)
  // becomes the tokenizer.ggml.* metadata, as llama.cpp's converter does.
  auto tokenizer_keys = [](const std::string& dir) -> absl::StatusOr<GgufParts> {
    auto read = [](const std::string& file, std::string* out) {
      std::ifstream in(file, std::ios::binary);
      if (!in) return false;
      out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      return true;
    };
    std::string json, config;
    if (!read(dir + "/tokenizer.json", &json)) {
      return FormatError(absl::StrCat("'", dir, "' has no readable tokenizer.json"));
    }
    read(dir + "/tokenizer_config.json", &config);  // optional
    return TokenizerJsonToGgufKvs(json, config);
  };
  return OpenHfFolder(path, tokenizer_keys);
}

absl::StatusOr<std::shared_ptr<Engine>> Engine::Open(const EngineOptions& options) {
  if (options.model_path.empty()) return absl::InvalidArgumentError("no model path given");
  if (options.n_threads < 0 || options.n_threads > 1024) {
    return absl::InvalidArgumentError(absl::StrCat("n_threads = ", options.n_threads, " is out of range"));
  }
  if (options.n_ctx < 0) return absl::InvalidArgumentError("n_ctx must not be negative");
  std::shared_ptr<Engine> engine(new Engine());
  YUAN_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, OpenModelFile(options.model_path));
  std::shared_ptr<const GgufFile> shared_file(std::move(file));
  YUAN_ASSIGN_OR_RETURN(engine->tokenizer_, Tokenizer::FromGguf(*shared_file));
  YUAN_ASSIGN_OR_RETURN(engine->model_, Model::FromGguf(shared_file));
  const ModelConfig& c = engine->model_->config();
  if (engine->tokenizer_->n_vocab() > c.n_vocab) {
    return FormatError(absl::StrFormat("the tokenizer has %d tokens but the model only %d",
                                       engine->tokenizer_->n_vocab(), c.n_vocab));
  }
  if (options.kv_type != DType::kF16 && options.kv_type != DType::kF32) {
    return absl::InvalidArgumentError("the KV cache type must be f16 or f32");
  }
  engine->kv_type_ = options.kv_type;
  engine->fingerprint_ = ModelFingerprint(*engine->model_);
  engine->n_ctx_ = options.n_ctx > 0 ? options.n_ctx : std::min(c.n_ctx_train, 4096);
  engine->pool_ = std::make_unique<ThreadPool>(options.n_threads > 0 ? options.n_threads
                                                                     : DefaultThreads());
  // Repacking is only safe for weights in a file mapping (see
  // ReleaseMappedPages); Hugging Face folders hold no Q8_0/Q4_0 anyway.
  if (options.repack_weights && !LooksLikeHfFolder(options.model_path)) engine->RepackWeights();
  Logf(LogLevel::kInfo, "loaded %s (%s, %d layers, %d threads)", options.model_path, c.arch,
       c.n_layer, engine->pool_->size());
  return engine;
}

void Engine::RepackWeights() {
  if (kernels::ActiveKernels().isa == kernels::Isa::kScalar) return;  // no interleaved kernels
  ModelWeights* W = model_->mutable_weights();
  // Everything every token reads in full: the projections, the output head
  // and the small vectors (norms, biases). The vectors matter for memory,
  // not speed: left in the mapping, each read of one faults in the file's
  // large folio around it, which holds the neighbouring matrices' released
  // pages, and those then count twice (about 57 MiB on bench-1b Q4_0).
  std::vector<Weight*> ws;
  for (LayerWeights& L : W->layers) {
    for (Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) ws.push_back(w);
    for (Weight* w : {&L.attn_norm, &L.bq, &L.bk, &L.bv, &L.q_norm, &L.k_norm, &L.ffn_norm}) ws.push_back(w);
  }
  const bool tied = W->tied_output;
  if (!tied) ws.push_back(&W->output);
  ws.push_back(&W->output_norm);
  // And the token embeddings, copied as they are (each token reads its row
  // by index), for the TLB too: in the mapping each token's row lies on
  // another 4 KiB page, and on the development VM the first read of such a
  // page cost 15-20 µs (no fault counted: the hypervisor filling its own
  // page tables), 31-60 µs of a bench-0.3b Q4_0 token (1-2.5 %) with
  // llama-bench's random tokens. A head tied to them is read whole by
  // every token, as a projection is, so then they are interleaved like one
  // where their type has the layout (a lookup reassembles its row:
  // MatRow). Read row-major, the tied Q8_0 head of a model like
  // Qwen2.5-0.5B (151936 x 896, 145 MB: more than a third of its weights)
  // decoded at 45-90 GFLOP/s from cache on one Zen 5 thread, against
  // 126-216 interleaved (yuan_bench_matmul -n 1 [--row-major]).
  ws.push_back(&W->tok_embd);
  std::erase_if(ws, [](const Weight* w) { return w->data == nullptr || w->rows <= 0; });
  // One arena for all of them, 2 MiB aligned and advised as transparent huge
  // pages: decoding streams every weight once per token, and with 4 KiB
  // pages each of them costs a TLB miss (a two-level page walk on a virtual
  // machine) that caps the read rate well below what the memory delivers.
  constexpr size_t kHuge = size_t{2} << 20, kAlign = 64;
  std::vector<size_t> offsets;
  size_t total = 0;
  for (const Weight* w : ws) {
    offsets.push_back(total);
    total += (static_cast<size_t>(w->rows) * w->row_bytes + kAlign - 1) / kAlign * kAlign;
  }
  if (total == 0) return;
  const size_t alloc = (total + kHuge - 1) / kHuge * kHuge;
  uint8_t* arena = static_cast<uint8_t*>(std::aligned_alloc(kHuge, alloc));
  if (arena == nullptr) return;  // keep computing from the mapping
#ifdef MADV_HUGEPAGE
  ::madvise(arena, alloc, MADV_HUGEPAGE);  // a hint; without it only speed is lost
#endif
  packed_weights_.emplace_back(arena);
  packed_bytes_ = total;
  std::vector<std::pair<const void*, size_t>> moved;  // the mapped ranges copied
  for (size_t i = 0; i < ws.size(); ++i) {
    Weight* w = ws[i];
    uint8_t* dst = arena + offsets[i];
    const size_t bytes = static_cast<size_t>(w->rows) * w->row_bytes;
    const MatRef m{w->type, w->rows, w->cols, w->data, w->row_bytes, w->interleaved8};
    if ((w != &W->tok_embd || tied) && kernels::CanInterleave8(w->type, w->rows) && !w->interleaved8) {
      // Q8_0/Q4_0/Q5_0/Q4_1/Q5_1: the layout the vector kernels compute 8 rows at a time with
      pool_->ParallelFor(w->rows / 8, 8, [&](int64_t b0, int64_t b1) { kernels::Interleave8(m, b0, b1, dst); });
      w->interleaved8 = true;
    } else {
      pool_->ParallelFor(w->rows, 64, [&](int64_t r0, int64_t r1) {
        std::memcpy(dst + r0 * w->row_bytes, static_cast<const uint8_t*>(w->data) + r0 * w->row_bytes,
                    static_cast<size_t>(r1 - r0) * w->row_bytes);
      });
    }
    ReleaseMappedPages(w->data, bytes);
    moved.emplace_back(w->data, bytes);
    w->data = dst;
  }
  // And once more when all is copied: reading a later weight (a small
  // vector most of all) faults in the file's large folio around it, which
  // maps pages of matrices released before it again. On bench-0.3b F16,
  // 59 MiB of them stayed resident after loading, and generation peaked
  // at 544 MiB against issue 4's limit of 541.9 (480 with this).
  for (const auto& [data, bytes] : moved) ReleaseMappedPages(data, bytes);
  if (tied) W->output = W->tok_embd;
}

std::shared_ptr<const grammar::TokenVocab> Engine::grammar_vocab() const {
  std::call_once(grammar_vocab_once_,
                 [this] { grammar_vocab_ = grammar::TokenVocab::Build(*tokenizer_); });
  return grammar_vocab_;
}

absl::StatusOr<std::unique_ptr<Session>> Session::Create(std::shared_ptr<const Engine> engine,
                                                          int n_ctx) {
  if (n_ctx < 0) return absl::InvalidArgumentError("n_ctx must not be negative");
  if (n_ctx == 0) n_ctx = engine->n_ctx();
  YUAN_ASSIGN_OR_RETURN(KvCache cache, KvCache::Create(engine->model().config(), n_ctx, engine->kv_type()));
  return std::unique_ptr<Session>(new Session(std::move(engine), std::move(cache)));
}

Session::Session(std::shared_ptr<const Engine> engine, KvCache cache)
    : engine_(std::move(engine)), cache_(std::move(cache)) {}

void Session::Cancel() {
  std::lock_guard<std::mutex> lock(run_mu_);
  if (running_) cancel_.store(true);
}

void Session::Reset() {
  history_.clear();
  history_loras_.clear();
  history_text_.clear();
  logits_.clear();
}

absl::Status Session::Eval(const int32_t* tokens, int64_t n) {
  for (int64_t i = 0; i < n; i += kPromptChunk) {
    ForwardArgs args;
    args.tokens = tokens + i;
    args.n_tokens = std::min(kPromptChunk, n - i);
    args.pos0 = static_cast<int64_t>(history_.size());
    args.cancel = &cancel_;
    args.step_times = step_times_;
    SeqSlice slice;
    if (!history_loras_.empty()) {  // one slice carrying the adapters
      slice.n_tokens = args.n_tokens;
      slice.pos0 = args.pos0;
      slice.loras = &history_loras_;
      args.seqs = &slice;
      args.n_seqs = 1;
    }
    absl::Status st = Forward(engine_->model(), args, &cache_, &scratch_, engine_->pool(), &logits_);
    if (!st.ok()) return st;
    history_.insert(history_.end(), args.tokens, args.tokens + args.n_tokens);
  }
  return absl::OkStatus();
}

absl::Status Session::Decode(const std::vector<int32_t>& tokens, const LoraSet* loras) {
  if (tokens.empty()) return absl::InvalidArgumentError("no tokens to decode");
  if (loras != nullptr && *loras != history_loras_) {
    YUAN_RETURN_IF_ERROR(CheckLoraSet(*loras, engine_->model()));
    if (!history_.empty()) {
      return absl::FailedPreconditionError(
          "the context was computed with other adapters; reset the session before decoding with "
          "these");
    }
    history_loras_ = *loras;
  }
  {
    std::lock_guard<std::mutex> lock(run_mu_);
    running_ = true;
    cancel_.store(false);
  }
  const size_t n_before = history_.size();
  logits_before_.swap(logits_);
  history_text_.clear();  // raw tokens: the text view of the context is lost
  absl::Status st = Eval(tokens.data(), static_cast<int64_t>(tokens.size()));
  if (!st.ok()) {  // restore: the cache past n_before is simply ignored
    history_.resize(n_before);
    logits_.swap(logits_before_);
  }
  std::lock_guard<std::mutex> lock(run_mu_);
  running_ = false;
  return st;
}

absl::Status Session::Generate(const GenerateRequest& req, GenerateResult* result) {
  *result = GenerateResult{};
  if (req.max_tokens < 0) return absl::InvalidArgumentError("max_tokens must not be negative");
  YUAN_RETURN_IF_ERROR(CheckLoraSet(req.loras, engine_->model()));
  if (req.loras != history_loras_) {
    // The cached K/V were computed under other adapters: nothing is reusable.
    history_.clear();
    history_text_.clear();
    logits_.clear();
    history_loras_ = req.loras;
  }
  const Tokenizer& tok = engine_->tokenizer();
  EncodeOptions enc;
  enc.add_bos = req.add_bos;
  enc.parse_special = req.parse_special;
  std::vector<int32_t> prompt;
  if (!history_text_.empty() && req.parse_special == history_parse_special_ &&
      req.prompt.size() >= history_text_.size() &&
      req.prompt.compare(0, history_text_.size(), history_text_) == 0) {
    // The prompt extends this session's context (a chat's next turn): keep
    // the tokens we have, including the generated ones, and tokenize only
    // the new text. Re-tokenizing the reply could split it differently and
    // lose the cache from there on.
    EncodeOptions tail = enc;
    tail.add_bos = false;
    tail.continuation = true;
    prompt = history_;
    const std::vector<int32_t> rest = tok.Encode(std::string_view(req.prompt).substr(history_text_.size()), tail);
    prompt.insert(prompt.end(), rest.begin(), rest.end());
  } else {
    prompt = tok.Encode(req.prompt, enc);
  }
  history_text_.clear();
  if (prompt.empty()) {
    return absl::InvalidArgumentError("the prompt is empty and the model has no BOS token");
  }
  if (static_cast<int64_t>(prompt.size()) > cache_.capacity()) {
    return absl::OutOfRangeError(absl::StrFormat("the prompt has %d tokens; the context holds %d",
                                                 prompt.size(), cache_.capacity()));
  }
  {
    std::lock_guard<std::mutex> lock(run_mu_);
    running_ = true;
    cancel_.store(false);
  }
  if (req.cancel != nullptr && req.cancel->load()) cancel_.store(true);
  struct Done {  // clears running_ on every return path
    Session* s;
    ~Done() {
      std::lock_guard<std::mutex> lock(s->run_mu_);
      s->running_ = false;
    }
  } done{this};

  // Reuse the longest common prefix, but always evaluate at least the last
  // prompt token so there are fresh logits to sample from.
  size_t common = 0;
  while (common < history_.size() && common < prompt.size() && history_[common] == prompt[common]) {
    ++common;
  }
  if (common == prompt.size()) --common;
  history_.resize(common);
  result->prompt_tokens = static_cast<int32_t>(prompt.size());
  result->cached_tokens = static_cast<int32_t>(common);

  Sampler sampler(req.sampling,
                  req.sampling.grammar != nullptr ? engine_->grammar_vocab() : nullptr);
  for (int32_t t : prompt) sampler.Accept(t);

  auto t0 = Clock::now();
  absl::Status st = Eval(prompt.data() + common, static_cast<int64_t>(prompt.size() - common));
  result->prompt_ms = MsSince(t0);
  if (absl::IsCancelled(st)) {
    result->finish_reason = FinishReason::kCancelled;
    return absl::OkStatus();
  }
  if (!st.ok()) {
    result->finish_reason = FinishReason::kError;
    return st;
  }
  std::string context_text = req.prompt;  // grows with each evaluated token's piece

  TextStream stream(req.stop);
  const int32_t n_vocab = engine_->model().config().n_vocab;
  auto t1 = Clock::now();
  FinishReason reason = FinishReason::kLength;
  bool stop_string = false;
  for (int32_t i = 0; i < req.max_tokens; ++i) {
    if (cancel_.load()) {
      reason = FinishReason::kCancelled;
      break;
    }
    const int32_t token = sampler.Sample(logits_.data(), n_vocab);
    if (token == Sampler::kNoToken) {
      result->finish_reason = FinishReason::kError;
      return absl::FailedPreconditionError(
          "the grammar allows no token of this model's vocabulary at this point");
    }
    sampler.Accept(token);
    if (tok.IsEog(token) && (!req.ignore_eos || sampler.GrammarDone())) {
      reason = FinishReason::kStop;
      break;
    }
    result->tokens.push_back(token);
    bool stopped = false;
    std::string text = stream.Push(tok.TokenToPiece(token), &stopped);
    if (req.on_token && !req.on_token(text, token, i)) {
      reason = FinishReason::kCancelled;
      break;
    }
    if (stopped) {
      reason = FinishReason::kStop;
      stop_string = true;
      break;
    }
    if (sampler.GrammarDone()) {  // the grammar's sentence is complete
      reason = FinishReason::kStop;
      break;
    }
    if (i + 1 == req.max_tokens) break;  // no need to evaluate the last token
    if (history_.size() >= static_cast<size_t>(cache_.capacity())) break;  // context full: length
    st = Eval(&token, 1);
    if (st.ok()) context_text += tok.TokenToPiece(token);
    if (absl::IsCancelled(st)) {
      reason = FinishReason::kCancelled;
      break;
    }
    if (!st.ok()) {
      result->finish_reason = FinishReason::kError;
      return st;
    }
  }
  // Text still held back (a partial stop-string match, an unfinished
  // character) belongs to the output when generation ends for another reason.
  if (!stop_string) {
    std::string tail = stream.Flush();
    if (!tail.empty() && req.on_token) {
      req.on_token(tail, -1, static_cast<int32_t>(result->tokens.size()));
    }
  }
  if (history_.size() == prompt.size() + result->tokens.size() ||
      (!result->tokens.empty() && history_.size() == prompt.size() + result->tokens.size() - 1)) {
    history_text_ = std::move(context_text);
    history_parse_special_ = req.parse_special;
  }
  result->generation_ms = MsSince(t1);
  result->completion_tokens = static_cast<int32_t>(result->tokens.size());
  result->text = stream.emitted();
  result->finish_reason = reason;
  return absl::OkStatus();
}

}  // namespace yuan
