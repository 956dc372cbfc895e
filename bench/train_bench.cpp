// Training speed of a LoRA step (issue 7, item 8): the same step as
// bench/pytorch_lora_step.py, on a GGUF base that stays as the file stores
// it (Q4_0 by default).
//
//   yuan_bench_train [-m MODEL.gguf] [-t THREADS] [-n STEPS] [--warmup W]
//                    [--seq N] [--rank R] [--alpha A]
//
// Defaults: build/bench-models/bench-0.3b-q4_0.gguf (bench/make-bench-models.sh),
// 2 threads, 10 measured steps after 3 warm-up steps, 1 x 256 tokens, LoRA
// rank 16, alpha 32 on q, k, v, o, gate, up and down of every layer.
//
// A step is ZeroGrad + ForwardBackward + AdamW::Step (lr 1e-4) +
// ParamsChanged, over seq random tokens (fixed seed) whose next tokens are
// the targets, so every position has one and grad_scale 1/seq makes the
// gradient that of the mean loss, as PyTorch's cross_entropy. Prints the
// per-step times and losses on stderr, then the same markdown row as the
// PyTorch script: median ms per step, median tokens/s, and the peak RSS of
// the whole process (getrusage), which includes the mmapped file pages the
// step reads, the transposed copies TrainableModel makes and the
// activations. bench/train-vs-pytorch.sh runs both and prints the ratio.
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "runtime/core/dtype.h"
#include "runtime/core/thread_pool.h"
#include "runtime/model/model.h"
#include "trainer/model.h"
#include "trainer/optimizer.h"

namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kTokenSeed = 1234;

struct Options {
  std::string model = "build/bench-models/bench-0.3b-q4_0.gguf";
  int threads = 2;
  int steps = 10;
  int warmup = 3;
  int64_t seq = 256;
  int32_t rank = 16;
  float alpha = 32.0f;
};

void Usage(FILE* out) {
  std::fprintf(out,
               "usage: yuan_bench_train [-m MODEL.gguf] [-t THREADS] [-n STEPS] [--warmup W]\n"
               "                        [--seq N] [--rank R] [--alpha A]\n"
               "LoRA training steps (all seven projections) on random tokens; prints the median\n"
               "ms per step, tokens/s and peak RSS. Default model %s.\n",
               Options().model.c_str());
}

// Parses an integer flag value in [lo, hi]; false on anything else.
bool ParseInt(const char* s, int64_t lo, int64_t hi, int64_t* out) {
  char* end = nullptr;
  const long long v = std::strtoll(s, &end, 10);
  if (end == s || *end != '\0' || v < lo || v > hi) return false;
  *out = v;
  return true;
}

// Returns an error message, or "" when argv parsed.
std::string ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      Usage(stdout);
      std::exit(0);
    }
    static const char* const kFlags[] = {"-m", "--model", "-t", "--threads", "-n", "--steps",
                                         "--warmup", "--seq", "--rank", "--alpha"};
    if (std::find(std::begin(kFlags), std::end(kFlags), a) == std::end(kFlags)) {
      return "unknown flag " + a;
    }
    if (i + 1 >= argc) return "missing value after " + a;
    const char* v = argv[++i];
    int64_t n = 0;
    if (a == "-m" || a == "--model") {
      o->model = v;
    } else if (a == "-t" || a == "--threads") {
      if (!ParseInt(v, 1, 1024, &n)) return "-t wants 1..1024 threads, got " + std::string(v);
      o->threads = static_cast<int>(n);
    } else if (a == "-n" || a == "--steps") {
      if (!ParseInt(v, 1, 1000000, &n)) return "-n wants at least 1 step, got " + std::string(v);
      o->steps = static_cast<int>(n);
    } else if (a == "--warmup") {
      if (!ParseInt(v, 0, 1000000, &n)) return "--warmup wants >= 0 steps, got " + std::string(v);
      o->warmup = static_cast<int>(n);
    } else if (a == "--seq") {
      if (!ParseInt(v, 1, 1 << 20, &n)) return "--seq wants >= 1 tokens, got " + std::string(v);
      o->seq = n;
    } else if (a == "--rank") {
      if (!ParseInt(v, 1, 1 << 16, &n)) return "--rank wants >= 1, got " + std::string(v);
      o->rank = static_cast<int32_t>(n);
    } else if (a == "--alpha") {
      char* end = nullptr;
      o->alpha = std::strtof(v, &end);
      if (end == v || *end != '\0') return "--alpha wants a number, got " + std::string(v);
    }
  }
  return "";
}

double PeakRssMiB() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // KiB on Linux
}

// CPU seconds of all threads: on a busy machine the wall-clock figures
// mean little, and CPU time per step still compares the two engines'
// work (spin-waiting included).
double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// "Q4_0", "F16", ...: the type of the layers' projections, which is what
// a base is called by (the Q4_0 file keeps output.weight in Q6_K).
std::string BaseTypeName(const yuan::Model& m) {
  std::string name(yuan::DTypeName(m.weights().layers.at(0).wq.type));
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

int Run(const Options& o) {
  absl::StatusOr<std::unique_ptr<yuan::Model>> base = yuan::Model::Open(o.model);
  if (!base.ok()) {
    std::fprintf(stderr, "yuan_bench_train: %s: %s\n", o.model.c_str(),
                 std::string(base.status().message()).c_str());
    return 1;
  }
  if ((*base)->config().n_layer < 1) {
    std::fprintf(stderr, "yuan_bench_train: %s has no layers\n", o.model.c_str());
    return 1;
  }
  yuan::ThreadPool pool(o.threads);
  yuan::train::TrainSpec spec;
  spec.mode = yuan::train::Mode::kLora;
  spec.lora.rank = o.rank;
  spec.lora.alpha = o.alpha;
  spec.seed = 1;
  const auto t_create = Clock::now();
  absl::StatusOr<std::unique_ptr<yuan::train::TrainableModel>> created =
      yuan::train::TrainableModel::Create(**base, spec, &pool);
  if (!created.ok()) {
    std::fprintf(stderr, "yuan_bench_train: TrainableModel::Create: %s\n",
                 std::string(created.status().message()).c_str());
    return 1;
  }
  const double create_s = std::chrono::duration<double>(Clock::now() - t_create).count();
  yuan::train::TrainableModel& model = **created;
  yuan::train::AdamWOptions adam;
  adam.lr = 1e-4f;
  yuan::train::AdamW opt(adam, model.params());

  // seq + 1 random tokens: inputs [0, seq), targets [1, seq].
  const int32_t n_vocab = (*base)->config().n_vocab;
  std::mt19937_64 rng(kTokenSeed);
  std::uniform_int_distribution<int32_t> pick(0, n_vocab - 1);
  std::vector<int32_t> ids(static_cast<size_t>(o.seq) + 1);
  for (int32_t& id : ids) id = pick(rng);
  yuan::train::Batch batch;
  batch.n_rows = 1;
  batch.seq_len = o.seq;
  batch.tokens.assign(ids.begin(), ids.end() - 1);
  batch.targets.assign(ids.begin() + 1, ids.end());
  const float grad_scale = 1.0f / static_cast<float>(o.seq);

  std::vector<double> step_ms, step_cpu_s;
  const int total = o.warmup + o.steps;
  for (int i = 0; i < total; ++i) {
    const auto t0 = Clock::now();
    const double cpu0 = CpuSeconds();
    model.ZeroGrad();
    absl::StatusOr<yuan::train::LossSum> loss =
        model.ForwardBackward(batch, grad_scale, /*dropout_seed=*/static_cast<uint64_t>(i));
    if (!loss.ok()) {
      std::fprintf(stderr, "yuan_bench_train: ForwardBackward: %s\n",
                   std::string(loss.status().message()).c_str());
      return 1;
    }
    opt.Step(&model.params(), adam.lr, &pool);
    model.ParamsChanged();
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (i >= o.warmup) {
      step_ms.push_back(ms);
      step_cpu_s.push_back(CpuSeconds() - cpu0);
    }
    std::fprintf(stderr, "step %d/%d%s: loss %.4f, %.1f ms\n", i + 1, total,
                 i < o.warmup ? " (warm-up)" : "",
                 loss->n_targets > 0 ? loss->loss / static_cast<double>(loss->n_targets) : 0.0, ms);
  }

  const double med = Median(step_ms);
  std::printf("| engine | base | trainable | threads | test | ms/step | t/s | peak RSS |\n");
  std::printf("| :--- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  std::printf("| yuan | %s %.0f M | %.2f M | %d | lora r%d b1x%lld | %.1f | %.2f | %.1f MiB |\n",
              BaseTypeName(**base).c_str(), static_cast<double>((*base)->n_params()) / 1e6,
              static_cast<double>(model.n_trainable()) / 1e6, o.threads, o.rank,
              static_cast<long long>(o.seq), med, static_cast<double>(o.seq) * 1e3 / med,
              PeakRssMiB());
  std::printf("%s; TrainableModel::Create %.1f s; %d measured steps after %d warm-up, median;"
              " CPU time %.2f s/step\n",
              o.model.c_str(), create_s, o.steps, o.warmup, Median(step_cpu_s));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  const std::string err = ParseArgs(argc, argv, &o);
  if (!err.empty()) {
    std::fprintf(stderr, "yuan_bench_train: %s\n", err.c_str());
    Usage(stderr);
    return 2;
  }
  return Run(o);
}
