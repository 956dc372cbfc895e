// LoRA adapters in memory, and their files: the yuan adapter file (.yadp,
// FlatBuffers, schema in adapter.fbs), PEFT folders (adapter_config.json +
// adapter_model.safetensors) and llama.cpp GGUF LoRA adapters.
//
// Conventions (the engine applies adapters in these terms):
//  * a target is the base weight's GGUF name ("blk.3.attn_q.weight") of shape
//    [out x in] (ggml ne = {in, out});
//  * A is [rank x in], B is [out x rank], row-major float32, and the adapted
//    weight is  W' = W + scaling() * B . A;
//  * rows are in GGUF order: for the llama architecture llama.cpp's converter
//    permutes the rows of q/k (and so of their B), as it does for the base
//    weights; PEFT import/export undoes/redoes that permutation, which needs
//    the head counts (base.n_head / n_head_kv).
//
// Every file is hostile: loaders check sizes, shapes, names and values and
// return FormatError (runtime/core/status.h) naming the file and the problem.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/model/gguf.h"

namespace yuan {

class Model;

// One LoRA pair for one base weight.
struct LoraTensor {
  std::string target;  // GGUF name of the base weight
  int64_t in = 0;      // base weight columns (ggml ne[0])
  int64_t out = 0;     // base weight rows (ggml ne[1])
  std::vector<float> a;  // (rank, in)
  std::vector<float> b;  // (out, rank)
};

struct BaseTensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // ggml order
  bool operator==(const BaseTensorInfo&) const = default;
};

// What the adapter was made for. An empty architecture means "not recorded"
// (an imported PEFT adapter converted without --base).
struct BaseFingerprint {
  std::string architecture;
  std::string name;
  std::vector<BaseTensorInfo> tensors;  // the targeted base weights, sorted by name
  uint64_t content_hash = 0;            // BaseContentHash(); 0: not recorded
  int32_t n_head = 0;                   // 0: unknown
  int32_t n_head_kv = 0;
  // The rows of q/k B are in llama.cpp's permuted order (llama bases read
  // from GGUF); false: HF's order (PEFT, other architectures).
  bool qk_permuted = false;
};

struct AdapterProvenance {
  std::string trainer_version;
  std::string data_hash;
  int64_t steps = 0;
  int64_t created_unix = 0;
  std::string source;  // "yuan-trainer", "peft", "gguf", ...
};

struct LoraAdapter {
  int32_t rank = 0;
  float alpha = 0.0f;
  bool use_rslora = false;
  std::vector<std::string> target_modules;  // q, k, v, o, gate, up, down
  std::vector<LoraTensor> tensors;          // sorted by target
  BaseFingerprint base;
  AdapterProvenance provenance;

  // alpha / rank, or alpha / sqrt(rank) with rsLoRA (PEFT's definition).
  float scaling() const;
  const LoraTensor* Find(std::string_view target) const;
};

// The file kinds LoadAdapter recognises.
enum class AdapterFormat { kYadp, kPeft, kGguf };
std::string_view AdapterFormatName(AdapterFormat format);
// Detects the kind of `path`: a directory with adapter_config.json is PEFT;
// a file starting with "GGUF" is GGUF; a file whose FlatBuffers identifier
// (bytes 4..7) is "YADP" is a yuan adapter. FormatError otherwise.
absl::StatusOr<AdapterFormat> DetectAdapterFormat(const std::string& path);

struct AdapterLoadOptions {
  // When set, fills an empty fingerprint (architecture, head counts) from it,
  // which PEFT import needs for the llama q/k row order.
  const Model* base = nullptr;
};

// Loads any of the three formats (DetectAdapterFormat) and checks it
// (ValidateAdapter). Does not compare it with a base: CheckAdapterMatchesBase.
absl::StatusOr<LoraAdapter> LoadAdapter(const std::string& path,
                                        const AdapterLoadOptions& options = {});
// .yadp from bytes the caller owns (tests, fuzzing): Verifier + our checks.
absl::StatusOr<LoraAdapter> ParseYadp(const void* data, size_t size,
                                      std::string_view name = "<memory>");
absl::StatusOr<LoraAdapter> LoadPeftAdapter(const std::string& dir,
                                            const AdapterLoadOptions& options = {});
absl::StatusOr<LoraAdapter> LoadGgufAdapter(const std::string& path);
absl::StatusOr<LoraAdapter> GgufToAdapter(const GgufFile& file);

// Writers. SaveAdapter writes .yadp (F32 data); ExportPeft writes
// adapter_config.json + adapter_model.safetensors (F32) into `dir` (created
// if needed), undoing the llama q/k permutation for `base_architecture`
// (empty: the adapter's own); ExportGgufLora writes llama.cpp's layout (F32).
absl::StatusOr<std::vector<uint8_t>> SerializeYadp(const LoraAdapter& adapter);
absl::Status SaveAdapter(const LoraAdapter& adapter, const std::string& path);
absl::Status ExportPeft(const LoraAdapter& adapter, const std::string& dir,
                        std::string_view base_architecture = "");
absl::Status ExportGgufLora(const LoraAdapter& adapter, const std::string& path);

// Structural checks every loader runs: rank > 0, finite alpha, unique known
// targets, A/B sizes consistent with rank and the in/out sizes, finite values.
absl::Status ValidateAdapter(const LoraAdapter& adapter, std::string_view name);

// The fingerprint content hash: FNV-1a 64 over, for each tensor of the base
// file in name order, its name, type id, ne[0..3], byte size, and a sample of
// its bytes (the first and last 4 KiB and 64 evenly spaced 256-byte windows;
// the whole tensor when it is smaller than 32 KiB). O(tensors), not O(bytes).
uint64_t BaseContentHash(const GgufFile& file);
// Fills adapter->base from the model: architecture, name, head counts, the
// shapes of the targeted weights and the content hash. FormatError when a
// target is missing from the model or has another shape.
absl::Status FillFingerprint(const Model& model, LoraAdapter* adapter);
// Refuses an adapter made for another base; the message names the mismatch
// (architecture, a missing tensor, a shape, the content hash).
absl::Status CheckAdapterMatchesBase(const LoraAdapter& adapter, const Model& model);

// PEFT <-> GGUF names: "base_model.model.model.layers.3.self_attn.q_proj" <->
// "blk.3.attn_q.weight" (without the ".lora_A.weight" suffix). Empty when the
// name is not a supported projection.
std::string PeftModuleToGguf(std::string_view peft_module);
std::string GgufToPeftModule(std::string_view gguf_name);
// The target module ("q", ..., "down") of a GGUF weight name; empty if none.
std::string_view TargetModuleOf(std::string_view gguf_name);

}  // namespace yuan
