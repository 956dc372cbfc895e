// yuan bench -m MODEL [-m MODEL ...] [-t 2] [-p 512] [-n 128] [-d 0] [-r 5] [-o md|csv|json]
//            [--lora FILE[:SCALE]] [--steps]
//
// llama-bench's method, so the figures compare with it on the same file:
// for each model, thread count and test, one untimed warm-up, then `r`
// repetitions of
//   ppN: evaluate N random tokens (BOS first) in an empty context, and
//   tgN: N single-token decoding steps from an empty context,
// reporting tokens/s as mean ± sd (and the median). With -d D (llama-bench's
// --n-depth) each repetition first fills the context with D random tokens
// (BOS first, untimed), and the test is "ppN @ dD" / "tgN @ dD": speed with
// that much context already cached, where attention weighs most. Decoding reads every
// weight once per token, so tgN is also shown as a share of the
// memory-bandwidth bound: the bytes read per token against the read
// bandwidth measured right before and right after each repetition (the
// higher of the two; a VM's memory speed can move by half within a minute,
// so a figure from earlier in the run would not describe the repetition).
// A memory line checks that resident memory stays within file size + KV
// cache + 64 MiB (issue 4, item 5).
//
// --steps times the steps of the forward pass during the tg repetitions
// (runtime/engine/forward.h) and prints, per tg row, each step's time per
// token, its share, and for the weight products the rate their weights were
// read at: where a token's time goes, next to the bound; with -o csv/json
// the tg records carry the same microseconds per token (steps_us).
//
// --lora FILE[:SCALE] adds, for every test, a row with that adapter applied
// at run time (runtime/engine/lora.h); its repetitions alternate with the
// base row's, so both see the same machine noise and "lora/base" (printed
// below the table) is the adapter's cost (issue 6, item 5).
//
// Uses the runtime's Engine/Session directly (not the C ABI): the benchmark
// needs raw token batches, which the public API does not take.
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "cli/args.h"
#include "runtime/cpu/bandwidth.h"
#include "runtime/cpu/kernels.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/lora.h"

namespace yuan::cli {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;
constexpr uint64_t kMemorySlack = uint64_t{64} << 20;  // issue 4, item 5

// "1,2" and repeated flags -> {1, 2}. False (with *bad set) on an item that
// is not an integer >= min.
bool ParseIntList(const std::vector<std::string>& flags, int64_t min, std::vector<int64_t>* out,
                  std::string* bad) {
  for (const std::string& flag : flags) {
    std::stringstream ss(flag);
    std::string item;
    while (std::getline(ss, item, ',')) {
      size_t used = 0;
      int64_t v = 0;
      try {
        v = std::stoll(item, &used);
      } catch (...) {
        used = 0;
      }
      if (item.empty() || used != item.size() || v < min) {
        *bad = item;
        return false;
      }
      out->push_back(v);
    }
  }
  return true;
}

struct Stats {
  double mean = 0, sd = 0, median = 0;
};

Stats Summarize(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= v.size();
  if (v.size() > 1) {
    double ss = 0;
    for (double x : v) ss += (x - s.mean) * (x - s.mean);
    s.sd = std::sqrt(ss / (v.size() - 1));  // sample sd, as llama-bench
  }
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  s.median = v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
  return s;
}

// ---- resident memory (/proc/self) -----------------------------------------

struct Rss {
  uint64_t current = 0, peak = 0;  // bytes: VmRSS, VmHWM
};

Rss ReadRss() {
  Rss r;
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    unsigned long long kib = 0;
    if (std::sscanf(line.c_str(), "VmRSS: %llu kB", &kib) == 1) r.current = kib * 1024;
    if (std::sscanf(line.c_str(), "VmHWM: %llu kB", &kib) == 1) r.peak = kib * 1024;
  }
  return r;
}

// The multi-stream probe: the best of 2, 4 and 8 streams per thread (which
// is best varies by CPU, and on a VM from minute to minute).
BandwidthResult BestOfStreams(BandwidthOptions o) {
  BandwidthResult best;
  for (int streams : {2, 4, 8}) {
    o.streams = streams;
    const BandwidthResult r = MeasureReadBandwidth(o);
    if (r.gb_per_s > best.gb_per_s) best = r;
  }
  return best;
}

// Resets VmHWM to the current RSS (Linux >= 4.0), so each model's peak
// excludes the bandwidth probe's buffer and earlier models. False when the
// kernel refuses.
bool ResetPeakRss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.flush();
  return f.good();
}

// ---- model description ------------------------------------------------------

std::string FormatBytes(uint64_t b) {
  char buf[32];
  if (b >= (uint64_t{1} << 30)) {
    std::snprintf(buf, sizeof buf, "%.2f GiB", b / (kMiB * 1024));
  } else {
    std::snprintf(buf, sizeof buf, "%.2f MiB", b / kMiB);
  }
  return buf;
}

std::string FormatParams(uint64_t n) {
  char buf[32];
  if (n >= 1000000000) {
    std::snprintf(buf, sizeof buf, "%.2f B", n / 1e9);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f M", n / 1e6);
  }
  return buf;
}

// llama.cpp's names for general.file_type (llama_model_ftype_name).
std::string FileTypeName(const GgufFile& f) {
  static const std::map<int64_t, const char*> kNames = {
      {0, "all F32"},        {1, "F16"},           {2, "Q4_0"},          {3, "Q4_1"},
      {7, "Q8_0"},           {8, "Q5_0"},          {9, "Q5_1"},          {10, "Q2_K - Medium"},
      {11, "Q3_K - Small"},  {12, "Q3_K - Medium"}, {13, "Q3_K - Large"}, {14, "Q4_K - Small"},
      {15, "Q4_K - Medium"}, {16, "Q5_K - Small"},  {17, "Q5_K - Medium"}, {18, "Q6_K"},
      {32, "BF16"}};
  absl::StatusOr<int64_t> ftype = f.GetInt("general.file_type");
  if (ftype.ok() && kNames.count(*ftype)) return kNames.at(*ftype);
  // No (known) file type: name the type holding most matrix bytes.
  std::map<DType, uint64_t> bytes;
  for (const GgufTensor& t : f.tensors()) {
    if (t.n_dims >= 2) bytes[t.type] += t.n_bytes;
  }
  DType best = DType::kF32;
  uint64_t most = 0;
  for (const auto& [type, n] : bytes) {
    if (n > most) {
      most = n;
      best = type;
    }
  }
  std::string name(DTypeName(best));
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

// "llama 0.3B Q4_0", as llama-bench's model column.
std::string ModelDesc(const Model& m) {
  std::string size(m.gguf().GetString("general.size_label", "").value_or(""));
  if (size.empty()) {
    char buf[32];
    const double n = static_cast<double>(m.n_params());
    if (n >= 1e9) {
      std::snprintf(buf, sizeof buf, "%.1fB", n / 1e9);
    } else if (n >= 1e6) {
      std::snprintf(buf, sizeof buf, "%.0fM", n / 1e6);
    } else {
      std::snprintf(buf, sizeof buf, "%.0fK", n / 1e3);
    }
    size = buf;
  }
  return m.config().arch + " " + size + " " + FileTypeName(m.gguf());
}

// Weight bytes one decoding step reads: every tensor once, except that the
// token embedding contributes one row (unless it doubles as the output).
uint64_t WeightBytesPerToken(const Model& m) {
  const bool tied = m.weights().tied_output;
  uint64_t bytes = 0;
  for (const GgufTensor& t : m.gguf().tensors()) {
    if (t.name == "token_embd.weight" && !tied && t.ne[1] > 0) {
      bytes += t.n_bytes / static_cast<uint64_t>(t.ne[1]);
    } else {
      bytes += t.n_bytes;
    }
  }
  return bytes;
}

// K and V bytes per context position (all layers).
uint64_t KvBytesPerPosition(const Engine& e) {
  const ModelConfig& c = e.model().config();
  const uint64_t elem = e.kv_type() == DType::kF32 ? 4 : 2;
  return uint64_t{2} * c.n_layer * c.n_head_kv * c.head_dim * elem;
}

// ---- the tests --------------------------------------------------------------

struct Row {
  std::string model_path, desc;
  uint64_t file_bytes = 0, n_params = 0;
  int threads = 0;
  int64_t n_prompt = 0, n_gen = 0, depth = 0;
  std::vector<double> samples;  // tokens/s per repetition
  Stats stats;
  // tg only (0 for pp): per repetition, the bandwidth (GB/s) the bound uses
  // and the bandwidth-bound tokens/s; their medians; the median of the
  // repetitions' tokens/s over their bounds.
  std::vector<double> bandwidths, bounds;
  double bandwidth = 0, bound = 0, share = 0;
  uint64_t bytes_per_token = 0;  // tg: weights + average KV read
  // tg with --steps: the steps' times over the timed repetitions, and those
  // repetitions' whole time
  ForwardStepTimes steps;
  double timed_seconds = 0;
  uint64_t step_bytes[kForwardSteps] = {};  // StepWeightBytes
  std::string test() const {
    return (n_prompt > 0 ? "pp" + std::to_string(n_prompt) : "tg" + std::to_string(n_gen)) +
           (depth > 0 ? " @ d" + std::to_string(depth) : "");
  }
};

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// An empty context, then (depth > 0) `depth` random tokens, BOS first, in
// it: what every repetition starts from. The tokens go in batches of
// kFillBatch, so that the fill's activations stay small beside the
// generation's (the memory check covers generating with the context full).
constexpr int64_t kFillBatch = 64;
absl::Status Prepare(Session* s, int64_t depth, int32_t n_vocab, std::mt19937* rng,
                     const LoraSet* loras) {
  s->Reset();
  std::uniform_int_distribution<int32_t> tok(0, n_vocab - 1);
  for (int64_t done = 0; done < depth; done += kFillBatch) {
    std::vector<int32_t> tokens(std::min(kFillBatch, depth - done));
    for (auto& t : tokens) t = tok(*rng);
    if (done == 0 && s->engine().tokenizer().bos() >= 0) tokens[0] = s->engine().tokenizer().bos();
    if (absl::Status st = s->Decode(tokens, loras); !st.ok()) return st;
  }
  return absl::OkStatus();
}

// One pp run after Prepare: `n` tokens, BOS first when the context is empty.
absl::Status RunPrompt(Session* s, int64_t n, int32_t n_vocab, std::mt19937* rng,
                       const LoraSet* loras) {
  std::uniform_int_distribution<int32_t> tok(0, n_vocab - 1);
  std::vector<int32_t> tokens(n);
  for (auto& t : tokens) t = tok(*rng);
  if (s->n_past() == 0 && s->engine().tokenizer().bos() >= 0) tokens[0] = s->engine().tokenizer().bos();
  return s->Decode(tokens, loras);
}

// One tg run after Prepare: `n` single-token steps, BOS first when the
// context is empty.
absl::Status RunGenerate(Session* s, int64_t n, int32_t n_vocab, std::mt19937* rng,
                         const LoraSet* loras) {
  std::uniform_int_distribution<int32_t> tok(0, n_vocab - 1);
  const int32_t bos = s->engine().tokenizer().bos();
  int32_t next = bos >= 0 && s->n_past() == 0 ? bos : tok(*rng);
  for (int64_t i = 0; i < n; ++i) {
    if (absl::Status st = s->Decode({next}, loras); !st.ok()) return st;
    next = tok(*rng);
  }
  return absl::OkStatus();
}

// Bytes of the weights a step's products read per token (0 for the steps
// without a weight product).
uint64_t StepWeightBytes(const Model& m, ForwardStep step) {
  auto bytes = [](const Weight& w) {
    return w.empty() ? 0 : static_cast<uint64_t>(w.rows) * w.row_bytes;
  };
  const ModelWeights& W = m.weights();
  uint64_t total = 0;
  for (const LayerWeights& L : W.layers) {
    switch (step) {
      case ForwardStep::kQkv: total += bytes(L.wq) + bytes(L.wk) + bytes(L.wv); break;
      case ForwardStep::kO: total += bytes(L.wo); break;
      case ForwardStep::kGateUp: total += bytes(L.w_gate) + bytes(L.w_up); break;
      case ForwardStep::kDown: total += bytes(L.w_down); break;
      default: break;
    }
  }
  return step == ForwardStep::kHead ? bytes(W.output) : total;
}

// ---- output -----------------------------------------------------------------

std::string Fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

void PrintMarkdown(const std::vector<Row>& rows) {
  const std::vector<std::string> head = {"model", "size", "params", "backend", "threads",
                                         "test",  "t/s",  "median", "% of bw bound"};
  std::vector<std::vector<std::string>> cells;
  for (const Row& r : rows) {
    cells.push_back({r.desc, FormatBytes(r.file_bytes), FormatParams(r.n_params), "CPU",
                     std::to_string(r.threads), r.test(),
                     Fixed(r.stats.mean, 2) + " ± " + Fixed(r.stats.sd, 2), Fixed(r.stats.median, 2),
                     r.bound > 0 ? Fixed(100 * r.share, 1) + " %" : ""});
  }
  // Widths in code points: "±" is two bytes of UTF-8 but one column.
  auto width = [](const std::string& s) {
    size_t w = 0;
    for (unsigned char c : s) w += (c & 0xC0) != 0x80;
    return w;
  };
  std::vector<size_t> w(head.size());
  for (size_t i = 0; i < head.size(); ++i) {
    w[i] = width(head[i]);
    for (const auto& row : cells) w[i] = std::max(w[i], width(row[i]));
  }
  auto print_row = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size(); ++i) {
      const std::string pad(w[i] - width(row[i]), ' ');
      // The model column reads left-aligned, the figures right-aligned.
      std::printf("| %s ", i == 0 ? (row[i] + pad).c_str() : (pad + row[i]).c_str());
    }
    std::printf("|\n");
  };
  print_row(head);
  for (size_t i = 0; i < head.size(); ++i) {  // ":---" left, "---:" right-aligned
    const std::string dashes(w[i] - 1, '-');
    std::printf("| %s ", i == 0 ? (":" + dashes).c_str() : (dashes + ":").c_str());
  }
  std::printf("|\n");
  for (const auto& row : cells) print_row(row);
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// RFC 4180: quoted, inner quotes doubled.
std::string CsvString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// --steps, per tg row: each step's microseconds per token, in step order
// (empty when the steps were not timed).
std::vector<std::pair<const char*, double>> StepMicros(const Row& r) {
  std::vector<std::pair<const char*, double>> out;
  if (r.steps.passes == 0) return out;
  for (int i = 0; i < kForwardSteps; ++i) {
    out.emplace_back(ForwardStepName(static_cast<ForwardStep>(i)),
                     1e6 * r.steps.seconds[i] / static_cast<double>(r.steps.passes));
  }
  return out;
}

void PrintCsv(const std::vector<Row>& rows) {
  std::printf("model_filename,model_type,model_size,model_n_params,backend,n_threads,n_prompt,"
              "n_gen,n_depth,avg_ts,stddev_ts,median_ts,bw_gbps,bytes_per_token,bound_ts,bound_share,samples_ts,"
              "steps_us\n");
  for (const Row& r : rows) {
    std::string samples, steps;
    for (double s : r.samples) samples += (samples.empty() ? "" : ";") + Fixed(s, 3);
    // "name=us;name=us..." (names hold commas, never '=' or ';')
    for (const auto& [name, us] : StepMicros(r)) steps += (steps.empty() ? "" : ";") + std::string(name) + "=" + Fixed(us, 1);
    std::printf("%s,%s,%llu,%llu,CPU,%d,%lld,%lld,%lld,%.3f,%.3f,%.3f,%.2f,%llu,%.3f,%.4f,\"%s\",%s\n",
                CsvString(r.model_path).c_str(), CsvString(r.desc).c_str(),
                static_cast<unsigned long long>(r.file_bytes),
                static_cast<unsigned long long>(r.n_params), r.threads,
                static_cast<long long>(r.n_prompt), static_cast<long long>(r.n_gen),
                static_cast<long long>(r.depth), r.stats.mean, r.stats.sd, r.stats.median, r.bandwidth,
                static_cast<unsigned long long>(r.bytes_per_token), r.bound, r.share, samples.c_str(),
                CsvString(steps).c_str());
  }
}

void PrintJson(const std::vector<Row>& rows) {
  std::printf("[\n");
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    std::string samples, steps;
    for (double s : r.samples) samples += (samples.empty() ? "" : ", ") + Fixed(s, 3);
    for (const auto& [name, us] : StepMicros(r)) {
      steps += (steps.empty() ? ", \"steps_us\": {" : ", ") + JsonString(name) + ": " + Fixed(us, 1);
    }
    if (!steps.empty()) steps += "}";
    std::printf(
        "  {\"model_filename\": %s, \"model_type\": %s, \"model_size\": %llu, "
        "\"model_n_params\": %llu, \"backend\": \"CPU\", \"n_threads\": %d, \"n_prompt\": %lld, "
        "\"n_gen\": %lld, \"n_depth\": %lld, \"avg_ts\": %.3f, \"stddev_ts\": %.3f, \"median_ts\": %.3f, "
        "\"bw_gbps\": %.2f, \"bytes_per_token\": %llu, \"bound_ts\": %.3f, \"bound_share\": %.4f, "
        "\"samples_ts\": [%s]%s}%s\n",
        JsonString(r.model_path).c_str(), JsonString(r.desc).c_str(),
        static_cast<unsigned long long>(r.file_bytes), static_cast<unsigned long long>(r.n_params),
        r.threads, static_cast<long long>(r.n_prompt), static_cast<long long>(r.n_gen),
        static_cast<long long>(r.depth), r.stats.mean, r.stats.sd, r.stats.median, r.bandwidth,
        static_cast<unsigned long long>(r.bytes_per_token), r.bound, r.share, samples.c_str(), steps.c_str(),
        i + 1 < rows.size() ? "," : "");
  }
  std::printf("]\n");
}

// --steps: one table per tg row, in microseconds per token.
void PrintSteps(std::FILE* out, const Row& r) {
  const ForwardStepTimes& st = r.steps;
  if (st.passes == 0) return;
  double total = 0;
  for (double v : st.seconds) total += v;
  std::fprintf(out, "steps %s %s t=%d, per token over %lld timed tokens:\n", r.desc.c_str(),
               r.test().c_str(), r.threads, static_cast<long long>(st.passes));
  std::fprintf(out, "  %-20s %9s %7s %12s\n", "step", "us/token", "share", "weights GB/s");
  for (int i = 0; i < kForwardSteps; ++i) {
    const auto step = static_cast<ForwardStep>(i);
    const double per_token = st.seconds[i] / static_cast<double>(st.passes);
    const uint64_t bytes = r.step_bytes[i];
    const std::string rate = bytes > 0 && per_token > 0 ? Fixed(bytes / per_token / 1e9, 1) : "";
    std::fprintf(out, "  %-20s %9.1f %6.1f%% %12s\n", ForwardStepName(step), 1e6 * per_token,
                 total > 0 ? 100 * st.seconds[i] / total : 0.0, rate.c_str());
  }
  std::fprintf(out, "  %-20s %9.1f (the timed tokens: %.1f us each)\n", "all steps",
               1e6 * total / static_cast<double>(st.passes),
               1e6 * r.timed_seconds / static_cast<double>(st.passes));
  // What the steps themselves allow. The steps that read no weights
  // (attention, RoPE, norms, SiLU, ...) run while the memory waits, one
  // after the other with the products; so even with every product reading
  // its weights at the bound's bandwidth and costing nothing more, a token
  // takes the weights' time plus theirs. That ceiling on "% of bound" is
  // printed beside the products' own rate against the bound's bandwidth.
  if (r.bandwidth <= 0 || r.bytes_per_token == 0) return;
  double weight_bytes = 0, product_seconds = 0, other_seconds = 0;
  for (int i = 0; i < kForwardSteps; ++i) {
    weight_bytes += static_cast<double>(r.step_bytes[i]);
    (r.step_bytes[i] > 0 ? product_seconds : other_seconds) += st.seconds[i];
  }
  const double passes = static_cast<double>(st.passes);
  const double bound_us = 1e6 * static_cast<double>(r.bytes_per_token) / (r.bandwidth * 1e9);
  const double weights_us = 1e6 * weight_bytes / (r.bandwidth * 1e9);
  const double other_us = 1e6 * other_seconds / passes, product_us = 1e6 * product_seconds / passes;
  if (product_us > 0) {
    std::fprintf(out, "  the products: %.1f us a token for %.1f MiB of weights: %.1f GB/s, %.1f %% of the bound's %.1f GB/s\n",
                 product_us, weight_bytes / (1 << 20), weight_bytes / product_us / 1e3,
                 100 * weights_us / product_us, r.bandwidth);
  }
  std::fprintf(out,
               "  the steps without weights: %.1f us a token; with the products at the bound's bandwidth "
               "(%.1f us) a token takes %.1f us: at most %.1f %% of the bound\n",
               other_us, weights_us, weights_us + other_us, 100 * bound_us / (weights_us + other_us));
}

}  // namespace

int BenchCommand(int argc, char** argv) {
  std::vector<std::string> models, threads_flags, prompt_flags, gen_flags, depth_flags;
  int64_t reps = 5, bw_mib = 512;
  std::string output = "md", lora_flag, lora_path, lora_desc;
  float lora_scale = 1.0f;
  bool steps = false;
  ArgParser p("bench",
              "-m MODEL [-m MODEL ...] [-t N[,N...]] [-p N[,N...]] [-n N[,N...]] [-d N[,N...]] [-r N] "
              "[--lora FILE[:SCALE]] [--steps]");
  p.Add({"-m", "--model"}, "model file (GGUF); repeatable", &models);
  p.Add({"-t", "--threads"}, "thread counts, comma-separated (default: physical cores)", &threads_flags);
  p.Add({"-p", "--n-prompt"}, "prompt lengths for ppN tests, comma-separated (default 512; 0: none)",
        &prompt_flags);
  p.Add({"-n", "--n-gen"}, "generation lengths for tgN tests, comma-separated (default 128; 0: none)",
        &gen_flags);
  p.Add({"-d", "--n-depth"},
        "tokens already in the context before each test, comma-separated (default 0): ppN @ dD, tgN @ dD",
        &depth_flags);
  p.Add({"-r", "--repetitions"}, "timed repetitions of each test (default 5)", &reps);
  p.Add({"-o", "--output"}, "output format: md, csv or json (default md)", &output);
  p.Add({"--bw-mib"}, "bandwidth probe buffer in MiB (default 512; keep it far above the L3 cache)",
        &bw_mib);
  p.Add({"--lora"},
        "also run every test with this LoRA adapter (.yadp, PEFT folder or GGUF LoRA) at "
        "SCALE (default 1), alternating with the base",
        &lora_flag);
  p.Add({"--steps"},
        "time the forward pass's steps during the tg repetitions and print where a token's time goes",
        &steps);
  if (int rc = p.Parse(argc, argv, 2); rc >= 0) return rc;
  if (!lora_flag.empty() && !ParseAdapterSpec(lora_flag, &lora_path, &lora_scale)) {
    return p.UsageError("--lora needs FILE or FILE:SCALE, got '" + lora_flag + "'");
  }
  if (!p.positional().empty()) return p.UsageError("unexpected argument '" + p.positional()[0] + "'");
  if (models.empty()) return p.UsageError("no model given (-m MODEL)");
  std::vector<int64_t> threads, prompts, gens, depths;
  std::string bad;
  if (!ParseIntList(threads_flags, 0, &threads, &bad)) {
    return p.UsageError("-t needs thread counts like 2 or 1,2,4, got '" + bad + "'");
  }
  if (!ParseIntList(prompt_flags.empty() ? std::vector<std::string>{"512"} : prompt_flags, 0,
                    &prompts, &bad)) {
    return p.UsageError("-p needs token counts like 512 or 128,512, got '" + bad + "'");
  }
  if (!ParseIntList(gen_flags.empty() ? std::vector<std::string>{"128"} : gen_flags, 0, &gens,
                    &bad)) {
    return p.UsageError("-n needs token counts like 128 or 16,128, got '" + bad + "'");
  }
  if (!ParseIntList(depth_flags.empty() ? std::vector<std::string>{"0"} : depth_flags, 0, &depths,
                    &bad)) {
    return p.UsageError("-d needs token counts like 0 or 0,4096, got '" + bad + "'");
  }
  if (threads.empty()) threads.push_back(0);  // the engine's default
  for (int64_t t : threads) {
    if (t > 1024) return p.UsageError("-t " + std::to_string(t) + " is out of range");
  }
  if (reps < 1) return p.UsageError("-r must be at least 1");
  if (bw_mib < 1) return p.UsageError("--bw-mib must be at least 1");
  if (output != "md" && output != "csv" && output != "json") {
    return p.UsageError("-o must be md, csv or json, got '" + output + "'");
  }
  // Informative lines go with the table in md, to stderr otherwise so that
  // stdout stays machine-readable.
  std::FILE* info = output == "md" ? stdout : stderr;

  std::vector<Row> rows;
  std::vector<std::string> notes;
  std::map<int, BandwidthResult> bw_multi, bw_single;  // by thread count
  for (const std::string& path : models) {
    // Hand the heap that earlier models freed back to the OS (glibc keeps
    // it otherwise), so this model's peak counts only what it uses.
    malloc_trim(0);
    const bool peak_reset = ResetPeakRss();
    uint64_t max_kv = 0, file_bytes = 0, lora_bytes = 0, lora_read = 0;
    // Peak RSS while generating (the check of issue 4, item 5) and while
    // processing prompts (whose batch activations come on top), when measured.
    uint64_t gen_peak = 0, prompt_peak = 0;
    std::string desc;
    for (int64_t t : threads) {
      EngineOptions eo;
      eo.model_path = path;
      eo.n_threads = static_cast<int>(t);
      absl::StatusOr<std::shared_ptr<Engine>> engine = Engine::Open(eo);
      if (!engine.ok()) {
        std::fprintf(stderr, "yuan bench: %s\n", std::string(engine.status().message()).c_str());
        return kExitFailure;
      }
      const Engine& e = **engine;
      const Model& m = e.model();
      const int n_threads = e.pool()->size();
      desc = ModelDesc(m);
      file_bytes = m.gguf().file_size();
      const int32_t n_vocab = m.config().n_vocab;
      if (!bw_multi.count(n_threads)) {
        // Measured once per thread count, before the model's pages are
        // touched; the buffer is freed again before the memory check.
        // The multi-stream figure is the best of 4 and 8 streams per
        // thread (which is best varies by CPU); 1 stream is the naive probe.
        BandwidthOptions bo;
        bo.n_threads = n_threads;
        bo.bytes = static_cast<size_t>(bw_mib) << 20;
        bw_multi[n_threads] = BestOfStreams(bo);
        bo.streams = 1;
        bw_single[n_threads] = MeasureReadBandwidth(bo);
        ResetPeakRss();
      }
      // The same reader on the model's own weights, in the very pages
      // decoding reads: the probe's buffer may be granted huge pages when
      // the weights were not, or the other way round, and alone then reads
      // high or low. Only for weights well beyond the last-level cache;
      // then it is also the probe taken beside every tg repetition.
      const bool probe_in_place = e.weight_arena() != nullptr && e.weight_arena_bytes() >= (size_t{64} << 20);
      auto weights_bandwidth = [&](int passes) {
        BandwidthOptions bo;
        bo.pool = e.pool();  // the threads that decode
        bo.data = e.weight_arena();
        bo.bytes = e.weight_arena_bytes();
        bo.passes = passes;
        return BestOfStreams(bo).gb_per_s;
      };
      double bw_weights = 0;
      if (probe_in_place) {
        bw_weights = weights_bandwidth(8);
        notes.push_back(absl::StrFormat("read bandwidth of %s's weights in place (%.0f MiB), %d thread%s: %.1f GB/s",
                                        desc, e.weight_arena_bytes() / kMiB, n_threads, n_threads == 1 ? "" : "s",
                                        bw_weights));
      }
      const double bw = std::max({bw_multi[n_threads].gb_per_s, bw_single[n_threads].gb_per_s, bw_weights});
      // The bandwidth beside one tg repetition: the weights read in place
      // just now, else (weights that caches could hold) the figure above.
      auto bandwidth_now = [&] { return probe_in_place ? weights_bandwidth(3) : bw; };

      int64_t n_ctx = 1;
      for (int64_t v : prompts) n_ctx = std::max(n_ctx, v);
      for (int64_t v : gens) n_ctx = std::max(n_ctx, v);
      n_ctx += *std::max_element(depths.begin(), depths.end());
      if (n_ctx > std::numeric_limits<int>::max()) {
        std::fprintf(stderr, "yuan bench: -d plus -p or -n is too long a context\n");
        return kExitFailure;
      }
      absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(*engine, static_cast<int>(n_ctx));
      if (!session.ok()) {
        std::fprintf(stderr, "yuan bench: %s\n", std::string(session.status().message()).c_str());
        return kExitFailure;
      }
      std::unique_ptr<Session> owned = std::move(*session);
      Session* s = owned.get();
      max_kv = std::max(max_kv, KvBytesPerPosition(e) * static_cast<uint64_t>(n_ctx));
      std::mt19937 rng(42);

      // The adapter, bound to this engine's model (its load time is shown).
      LoraSet lora_set;
      if (!lora_path.empty()) {
        const auto l0 = std::chrono::steady_clock::now();
        absl::StatusOr<std::shared_ptr<const LoraBinding>> binding = LoadLora(lora_path, m);
        if (!binding.ok()) {
          std::fprintf(stderr, "yuan bench: %s\n", std::string(binding.status().message()).c_str());
          return kExitFailure;
        }
        lora_set.push_back({*binding, static_cast<float>(lora_scale)});
        lora_desc = absl::StrFormat(" + LoRA r%d", (*binding)->rank());
        // Binding holds the adapter's f32 values and builds the kernels'
        // copy, which stays and which decoding reads once per token.
        lora_read = (*binding)->storage_bytes();
        lora_bytes = lora_read;
        for (const LoraTensor& t : (*binding)->adapter().tensors) {
          lora_bytes += static_cast<uint64_t>((t.in + t.out) * (*binding)->rank()) * sizeof(float);
        }
        notes.push_back(absl::StrFormat("adapter %s: rank %d, %zu projections, loaded and bound in %.1f ms",
                                        lora_path, (*binding)->rank(),
                                        (*binding)->adapter().tensors.size(), 1e3 * Seconds(l0)));
      }

      // One test: the base row and, with --lora, the adapter's row, their
      // timed repetitions alternating.
      auto run_test = [&](int64_t n_prompt, int64_t n_gen, int64_t depth) -> bool {
        std::vector<const LoraSet*> variants = {nullptr};
        if (!lora_set.empty()) variants.push_back(&lora_set);
        std::vector<Row> out(variants.size());
        auto run_once = [&](const LoraSet* loras) {
          return n_prompt > 0 ? RunPrompt(s, n_prompt, n_vocab, &rng, loras)
                              : RunGenerate(s, n_gen, n_vocab, &rng, loras);
        };
        absl::Status st = absl::OkStatus();
        for (size_t v = 0; v < variants.size(); ++v) {
          Row& r = out[v];
          r.model_path = path;
          r.desc = desc + (variants[v] != nullptr ? lora_desc : "");
          r.file_bytes = file_bytes;
          r.n_params = m.n_params();
          r.threads = n_threads;
          r.n_prompt = n_prompt;
          r.n_gen = n_gen;
          r.depth = depth;
          // Warm-up as llama-bench: the prompt once, or one generated token.
          if (st.ok()) st = Prepare(s, depth, n_vocab, &rng, variants[v]);
          if (st.ok()) {
            st = n_prompt > 0 ? RunPrompt(s, n_prompt, n_vocab, &rng, variants[v])
                              : RunGenerate(s, 1, n_vocab, &rng, variants[v]);
          }
        }
        // Bytes one decoding step reads: step i attends to depth + i + 1
        // positions, depth + (n + 1) / 2 on average.
        for (size_t v = 0; v < variants.size(); ++v) {
          if (n_gen == 0) continue;
          out[v].bytes_per_token = WeightBytesPerToken(m) +
                                   KvBytesPerPosition(e) * static_cast<uint64_t>(2 * depth + n_gen + 1) / 2 +
                                   (variants[v] != nullptr ? lora_read : 0);
          for (int k = 0; k < kForwardSteps; ++k) {
            out[v].step_bytes[k] = StepWeightBytes(m, static_cast<ForwardStep>(k));
          }
        }
        // (the probe after one repetition is the one before the next)
        double bw_last = n_gen > 0 ? bandwidth_now() : 0;
        for (int64_t i = 0; st.ok() && i < reps; ++i) {
          for (size_t v = 0; st.ok() && v < variants.size(); ++v) {
            st = Prepare(s, depth, n_vocab, &rng, variants[v]);
            if (!st.ok()) break;
            // (a fill takes a while: the probe before is then taken after it)
            const double bw_before = n_gen > 0 && depth > 0 ? bandwidth_now() : bw_last;
            s->set_step_times(steps && n_gen > 0 ? &out[v].steps : nullptr);
            const auto t0 = std::chrono::steady_clock::now();
            st = run_once(variants[v]);
            const double seconds = Seconds(t0);
            s->set_step_times(nullptr);
            out[v].timed_seconds += seconds;
            out[v].samples.push_back((n_prompt > 0 ? n_prompt : n_gen) / seconds);
            if (n_gen > 0) {
              bw_last = bandwidth_now();
              const double bw_rep = std::max(bw_before, bw_last);
              out[v].bandwidths.push_back(bw_rep);
              out[v].bounds.push_back(bw_rep * 1e9 / static_cast<double>(out[v].bytes_per_token));
            }
          }
        }
        if (!st.ok()) {
          std::fprintf(stderr, "yuan bench: %s %s: %s\n", path.c_str(), out[0].test().c_str(),
                       std::string(st.message()).c_str());
          return false;
        }
        for (Row& r : out) {
          r.stats = Summarize(r.samples);
          if (n_gen > 0) {
            std::vector<double> shares;
            for (size_t i = 0; i < r.samples.size(); ++i) shares.push_back(r.samples[i] / r.bounds[i]);
            r.share = Summarize(shares).median;
            r.bandwidth = Summarize(r.bandwidths).median;
            r.bound = Summarize(r.bounds).median;
          }
        }
        if (out.size() == 2) {
          notes.push_back(absl::StrFormat(
              "%s %s t=%d: base %.2f t/s, with the adapter %.2f t/s (medians): %+.1f %% time per token",
              desc, out[0].test(), n_threads, out[0].stats.median, out[1].stats.median,
              100.0 * (out[0].stats.median / out[1].stats.median - 1.0)));
        }
        for (Row& r : out) rows.push_back(std::move(r));
        return true;
      };
      bool ran_prompts = false, ran_gens = false;
      for (int64_t n : prompts) {
        for (int64_t d : depths) {
          if (n > 0 && !run_test(n, 0, d)) return kExitFailure;
        }
        ran_prompts = ran_prompts || n > 0;
      }
      if (ran_prompts && peak_reset && std::any_of(gens.begin(), gens.end(), [](int64_t n) { return n > 0; })) {
        // A prompt batch's activations stay in its session's scratch; the
        // generation check gets a fresh session and peak.
        prompt_peak = std::max(prompt_peak, ReadRss().peak);
        owned.reset();
        malloc_trim(0);
        session = Session::Create(*engine, static_cast<int>(n_ctx));
        if (!session.ok()) {
          std::fprintf(stderr, "yuan bench: %s\n", std::string(session.status().message()).c_str());
          return kExitFailure;
        }
        owned = std::move(*session);
        s = owned.get();
        ResetPeakRss();
      }
      for (int64_t n : gens) {
        for (int64_t d : depths) {
          if (n > 0 && !run_test(0, n, d)) return kExitFailure;
        }
        ran_gens = ran_gens || n > 0;
      }
      if (ran_gens) gen_peak = std::max(gen_peak, ReadRss().peak);
      if (ran_prompts && !ran_gens) prompt_peak = std::max(prompt_peak, ReadRss().peak);
    }
    // Everything of this model is freed by now except what the allocator
    // keeps. The limit is for generating; a prompt batch's activations
    // (n_prompt tokens through every layer at once) come on top of it, so
    // the peak while processing prompts is shown beside it, not checked.
    const Rss rss = ReadRss();
    const uint64_t limit = file_bytes + max_kv + lora_bytes + kMemorySlack;
    const uint64_t checked = gen_peak > 0 ? gen_peak : rss.peak;
    const char* what = gen_peak > 0 ? "while generating" : "";
    std::string prompt_note;
    if (prompt_peak > 0 && gen_peak > 0) {
      prompt_note = absl::StrFormat("; with the prompt batches' activations %.1f MiB", prompt_peak / kMiB);
    }
    char line[640];
    std::snprintf(line, sizeof line,
                  "memory %s: peak RSS %s%s%.1f MiB%s (now %.1f MiB); file %.1f MiB + KV cache %.1f "
                  "MiB%s + 64 MiB = %.1f MiB: %s%s",
                  desc.c_str(), what, *what ? " " : "", checked / kMiB, peak_reset ? "" : " since start",
                  rss.current / kMiB, file_bytes / kMiB, max_kv / kMiB,
                  lora_bytes > 0 ? absl::StrFormat(" + adapter %.1f MiB", lora_bytes / kMiB).c_str() : "",
                  limit / kMiB, checked <= limit ? "within" : "EXCEEDED", prompt_note.c_str());
    notes.push_back(line);
  }

  if (output == "md") PrintMarkdown(rows);
  if (output == "csv") PrintCsv(rows);
  if (output == "json") PrintJson(rows);
  std::fprintf(info, "\n");
  std::fprintf(info, "kernels: %s", kernels::ActiveKernelsName().c_str());
  if (kernels::ActiveKernels().isa != kernels::Isa::kScalar) {
    std::fprintf(info, "; decoding prefetches %lld bytes ahead", static_cast<long long>(kernels::DecodePrefetchBytes()));
  }
  std::fprintf(info, "\n");
  for (const auto& [t, multi] : bw_multi) {
    std::fprintf(info,
                 "read bandwidth, %d thread%s: %.1f GB/s with %d streams/thread (%s), %.1f GB/s "
                 "with 1 stream/thread\n",
                 t, t == 1 ? "" : "s", multi.gb_per_s, multi.streams,
                 multi.simd ? "AVX2 loads" : "scalar loads", bw_single[t].gb_per_s);
  }
  for (const Row& r : rows) {
    if (r.n_gen == 0) continue;
    const auto [lo, hi] = std::minmax_element(r.bandwidths.begin(), r.bandwidths.end());
    std::fprintf(info,
                 "bound %s %s t=%d: %.1f MiB read per token; read bandwidth beside the repetitions "
                 "%.1f-%.1f GB/s (median %.1f) -> %.1f t/s; %% of bound = median of t/s over each "
                 "repetition's bound\n",
                 r.desc.c_str(), r.test().c_str(), r.threads, r.bytes_per_token / kMiB, *lo, *hi,
                 r.bandwidth, r.bound);
  }
  for (const std::string& n : notes) std::fprintf(info, "%s\n", n.c_str());
  for (const Row& r : rows) PrintSteps(info, r);
  return kExitOk;
}

}  // namespace yuan::cli
