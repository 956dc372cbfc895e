// yuan tokenize -m MODEL [--ids] TEXT: token ids (and pieces) of a text.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/args.h"
#include "yuan/yuan.h"

namespace yuan::cli {

int TokenizeCommand(int argc, char** argv) {
  std::string model;
  bool ids_only = false, no_bos = false, special = false;
  ArgParser p("tokenize", "-m MODEL [--ids] TEXT");
  p.Add({"-m", "--model"}, "model file (GGUF)", &model);
  p.Add({"--ids"}, "print only the ids, space-separated, on one line", &ids_only);
  p.Add({"--no-bos"}, "do not prepend BOS", &no_bos);
  p.Add({"--special"}, "parse special-token text such as <s>", &special);
  if (int rc = p.Parse(argc, argv, 2); rc >= 0) return rc;
  if (model.empty()) return p.UsageError("no model given (-m MODEL)");
  if (p.positional().size() != 1) return p.UsageError("expected exactly one TEXT");
  const std::string& text = p.positional()[0];

  yuan_engine_options eo;
  yuan_engine_options_init(&eo);
  eo.model = model.c_str();
  eo.n_threads = 1;
  yuan_engine* engine = nullptr;
  if (yuan_engine_open(&eo, &engine) != YUAN_OK) {
    std::fprintf(stderr, "yuan tokenize: %s\n", yuan_last_error());
    return kExitFailure;
  }
  const uint32_t flags = (no_bos ? 0 : YUAN_TOKENIZE_ADD_BOS) | (special ? YUAN_TOKENIZE_PARSE_SPECIAL : 0);
  size_t n = 0;
  yuan_status st = yuan_tokenize(engine, text.data(), text.size(), flags, nullptr, 0, &n);
  std::vector<yuan_token> ids(n);
  if (st == YUAN_ERR_BUFFER_TOO_SMALL) {
    st = yuan_tokenize(engine, text.data(), text.size(), flags, ids.data(), ids.size(), &n);
  }
  if (st != YUAN_OK) {
    std::fprintf(stderr, "yuan tokenize: %s\n", yuan_last_error());
    yuan_engine_free(engine);
    return kExitFailure;
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids_only) {
      std::printf("%s%d", i ? " " : "", ids[i]);
      continue;
    }
    char piece[256];
    size_t needed = 0;
    // A single token's text as it would appear mid-sentence.
    if (yuan_detokenize(engine, &ids[i], 1, YUAN_DETOKENIZE_RENDER_SPECIAL, piece, sizeof piece, &needed) != YUAN_OK) {
      piece[0] = '\0';
    }
    std::printf("%6d -> '%s'\n", ids[i], piece);
  }
  if (ids_only) std::printf("\n");
  yuan_engine_free(engine);
  return kExitOk;
}

}  // namespace yuan::cli
