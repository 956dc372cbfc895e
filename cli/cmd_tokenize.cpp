// yuan tokenize -m MODEL|tokenizer.json [--ids] TEXT: token ids (and pieces)
// of a text. Reads only the vocabulary (no weights are bound), so it works
// on a bare tokenizer.json, a Hugging Face folder or any GGUF with a vocab.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "cli/args.h"
#include "runtime/engine/engine.h"
#include "runtime/tokenizer/tokenizer.h"

namespace yuan::cli {
namespace {

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& path) {
  if (absl::EndsWith(path, ".json")) return Tokenizer::FromTokenizerJson(path);
  auto file = OpenModelFile(path);
  if (!file.ok()) return file.status();
  return Tokenizer::FromGguf(**file);
}

}  // namespace

int TokenizeCommand(int argc, char** argv) {
  std::string model;
  bool ids_only = false, no_bos = false, special = false;
  ArgParser p("tokenize", "-m MODEL|tokenizer.json [--ids] TEXT");
  p.Add({"-m", "--model"}, "GGUF file, Hugging Face folder or tokenizer.json", &model);
  p.Add({"--ids"}, "print only the ids, space-separated, on one line", &ids_only);
  p.Add({"--no-bos"}, "do not add BOS (and EOS where the vocabulary adds one)", &no_bos);
  p.Add({"--special"}, "parse special-token text such as <s>", &special);
  if (int rc = p.Parse(argc, argv, 2); rc >= 0) return rc;
  if (model.empty()) return p.UsageError("no model given (-m MODEL)");
  if (p.positional().size() != 1) return p.UsageError("expected exactly one TEXT");
  const std::string& text = p.positional()[0];

  auto tok = LoadTokenizer(model);
  if (!tok.ok()) {
    std::fprintf(stderr, "yuan tokenize: %s\n", std::string(tok.status().message()).c_str());
    return kExitFailure;
  }
  EncodeOptions options;
  options.add_bos = !no_bos;
  options.parse_special = special;
  const std::vector<int32_t> ids = (*tok)->Encode(text, options);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids_only) {
      std::printf("%s%d", i ? " " : "", ids[i]);
    } else {
      std::printf("%6d -> '%s'\n", ids[i], (*tok)->TokenToPiece(ids[i], /*render_special=*/true).c_str());
    }
  }
  if (ids_only) std::printf("\n");
  return kExitOk;
}

}  // namespace yuan::cli
