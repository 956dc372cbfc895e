// Hugging Face model folders (config.json + *.safetensors) presented as a
// GgufFile, translated on the fly into llama.cpp's GGUF conventions the way
// convert_hf_to_gguf.py would: metadata keys ("llama.embedding_length", ...)
// and tensor names ("blk.0.attn_q.weight", ...). Weights are not copied:
// tensor data points into the mapped safetensors files, which the returned
// GgufFile keeps alive. The only copies are 1-D tensors (norm gains, biases),
// converted to F32 as the converter does, and any tensor whose data is not
// aligned to its element size in the file.
//
// Supported config.json model_type values and the GGUF architecture they
// become: llama and mistral -> llama, qwen2 -> qwen2, qwen3 -> qwen3,
// hunyuan_v1_dense -> hunyuan-dense. Weights must be F32, F16 or BF16.
//
// HF llama checkpoints keep q_proj/k_proj in HF's rotate-half order, which the
// GGUF converter permutes away; we do not, and mark the model with
// `yuan.rope.neox = true` instead (the llama architecture must honour it).
//
// Every input is hostile: config.json, the shard index and each safetensors
// file are checked (see docs/formats.md); failures are FormatErrors naming the
// file and the problem.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/model/gguf.h"

namespace yuan {

// Extra metadata for the folder, e.g. the tokenizer converted from
// tokenizer.json into "tokenizer.ggml.*" keys. Called with the folder path
// after config.json has been read; its kvs are appended to the translated
// ones (a key present in both is a FormatError) and its keep_alive is kept by
// the returned GgufFile. `path` and `tensors` of the returned parts are
// ignored.
using HfExtraMetadataFn = std::function<absl::StatusOr<GgufParts>(const std::string& dir)>;

// True when `path` is a directory holding config.json and either
// model.safetensors or model.safetensors.index.json. Never fails.
bool LooksLikeHfFolder(const std::string& path);

// Opens the folder: config.json, then model.safetensors.index.json (every
// shard it lists must exist and hold the tensors it is listed for) or else
// model.safetensors. `extra` may be empty (no tokenizer keys are added then).
absl::StatusOr<std::unique_ptr<GgufFile>> OpenHfFolder(const std::string& dir,
                                                       const HfExtraMetadataFn& extra = nullptr);

// The metadata translation alone, from config.json text (for tests and
// fuzzing). `parts` receives the kvs and owns their strings.
absl::Status HfConfigToGguf(std::string_view config_json, const std::string& name,
                            GgufParts* parts);

}  // namespace yuan
