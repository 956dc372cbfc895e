// Helpers shared by the Catch2 tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/core/dtype.h"
#include "runtime/cpu/kernels.h"
#include "runtime/model/gguf_writer.h"

namespace yuan::testing {

// The folder with the real test models: $YUAN_TEST_MODELS, else
// <source>/../shared/models. Empty when it does not exist; callers then skip
// with SkipWithoutShared().
std::string SharedModelsDir();
std::string SharedGoldenDir();
// Path of a shared model, or "" (with a WARN naming what is missing) when
// ../shared is absent, so the suite still runs elsewhere.
std::string SharedModel(const std::string& file);
std::string SharedGolden(const std::string& file);

// Factor for wall-clock bounds in tests: sanitizer builds run several times
// slower (1 in normal builds).
double TimeScale();

// The kernel sets this CPU supports, scalar first; tests of code that
// follows kernels::ActiveKernels() run under each in an IsaScope, which
// makes it the active set and restores the best one when it ends.
std::vector<kernels::Isa> SupportedIsas();
struct IsaScope {
  explicit IsaScope(kernels::Isa isa) { kernels::SetActiveIsa(isa); }
  ~IsaScope() { kernels::SetActiveIsa(kernels::BestIsa()); }
  IsaScope(const IsaScope&) = delete;
  IsaScope& operator=(const IsaScope&) = delete;
};

// A fresh temporary directory for this test process, removed at exit.
std::string TempDir();

// The Python that runs the independent reference scripts (PyTorch, jinja2,
// jsonschema, ...): $YUAN_REFERENCE_PYTHON, else Debian's /usr/bin/python3.
std::string ReferencePython();
// Whether ReferencePython() can `import <modules>` ("torch, numpy");
// checked once per distinct list. Tests skip with a WARN when it cannot.
bool PythonCanImport(const std::string& modules);
// Runs a shell command and returns its standard output; *status, when
// given, receives pclose()'s status.
std::string RunCommand(const std::string& command, int* status = nullptr);

// Shapes of a random model (llama architecture unless `arch` says otherwise).
struct RandomModelSpec {
  int n_vocab = 300;  // >= 259: byte tokens + specials + some merges
  int n_embd = 64;
  int n_layer = 2;
  int n_head = 4;
  int n_head_kv = 2;
  int n_ff = 96;
  int n_ctx = 256;
  float rope_base = 10000.0f;
  DType weight_type = DType::kF32;  // for the 2-D projection matrices
  uint64_t seed = 1;
  float stddev = 0.02f;

  // The architecture: "llama", "qwen2", "qwen3" or "hunyuan-dense". Keys use
  // it as prefix and it adds its tensors: qwen2 q/k/v biases, qwen3 and
  // hunyuan-dense per-head q/k norms. A llama spec with the defaults below
  // writes the same bytes as before these fields existed.
  std::string arch = "llama";
  int head_dim = 0;          // 0: n_embd / n_head; else also writes attention.key_length
  bool tied_output = false;  // leave out output.weight (tied to token_embd)
  float rms_eps = 1e-5f;
  // Llama 3 rope scaling when llama3_factor > 0: writes rope_freqs.weight as
  // llama.cpp's converter computes it from these HF rope_scaling values.
  float llama3_factor = 0.0f;
  float llama3_low_freq_factor = 1.0f;
  float llama3_high_freq_factor = 4.0f;
  int llama3_original_context = 8192;
  // > 0: writes <arch>.rope.scaling.alpha (hunyuan-dense NTK-alpha rope).
  float ntk_alpha = 0.0f;
};

// A model big enough that one decoding step takes noticeable time on one
// thread (cancellation and threading tests), with a 4096-token context.
RandomModelSpec SlowModelSpec();

// A GGUF of spec.arch (llama by default) with a small SentencePiece
// vocabulary (specials, 256 byte tokens, a few word pieces) and random normal
// weights.
GgufWriter RandomLlamaModel(const RandomModelSpec& spec);

// The two halves of RandomLlamaModel, for writers that fill the weights
// their own way (bench/make_bench_model.cpp):
// the hyper-parameters and the vocabulary,
void AddRandomModelMetadata(const RandomModelSpec& spec, GgufWriter* w);
// and the tensors in file order, each normal(mean, spec.stddev) unless it
// has fixed `values`.
struct RandomTensor {
  std::string name;
  DType type;
  std::vector<int64_t> ne;  // ggml order
  float mean = 0;           // 1 for norm weights
  std::vector<float> values;
};
std::vector<RandomTensor> RandomModelTensors(const RandomModelSpec& spec);
// The per-pair rope frequency divisors llama.cpp's converter writes as
// rope_freqs.weight for Llama 3 rope scaling (n_rot / 2 values).
std::vector<float> Llama3RopeFreqFactors(const RandomModelSpec& spec, int n_rot);
// Writes it to TempDir()/name and returns the path.
std::string WriteRandomLlamaModel(const RandomModelSpec& spec, const std::string& name);

// Parsed golden generation file (../shared/golden/stories260K-*.txt).
struct GoldenGeneration {
  std::string prompt;
  std::vector<int32_t> prompt_ids;
  std::vector<std::pair<int32_t, float>> top5;  // (id, logit)
  std::vector<int32_t> generated_ids;
  std::string generated_text;
};
bool LoadGoldenGeneration(const std::string& path, GoldenGeneration* out);
std::vector<std::string> GoldenGenerationFiles();  // every stories260K-*.txt present

}  // namespace yuan::testing
