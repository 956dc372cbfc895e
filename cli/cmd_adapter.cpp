// yuan adapter inspect FILE | convert IN OUT [--base MODEL]: LoRA adapter
// files (.yadp, PEFT folders, llama.cpp GGUF LoRA); see docs/adapters.md.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "cli/args.h"
#include "runtime/adapter/adapter.h"
#include "runtime/model/model.h"

namespace yuan::cli {
namespace {

namespace fs = std::filesystem;

int Fail(const std::string& what, const absl::Status& s) {
  std::fprintf(stderr, "yuan adapter %s: %s\n", what.c_str(), std::string(s.message()).c_str());
  return kExitFailure;
}

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void Print(const LoraAdapter& a, AdapterFormat format) {
  std::printf("format:        %s\n", std::string(AdapterFormatName(format)).c_str());
  std::printf("rank:          %d\n", a.rank);
  std::printf("alpha:         %g\n", a.alpha);
  std::printf("use_rslora:    %s\n", a.use_rslora ? "true" : "false");
  std::printf("scaling:       %g (%s)\n", a.scaling(), a.use_rslora ? "alpha / sqrt(rank)" : "alpha / rank");
  std::string modules;
  for (const auto& m : a.target_modules) modules += (modules.empty() ? "" : ",") + m;
  std::printf("targets:       %s\n", modules.c_str());
  uint64_t params = 0;
  for (const auto& t : a.tensors) params += t.a.size() + t.b.size();
  std::printf("tensors:       %zu pairs, %llu parameters\n", a.tensors.size(),
              static_cast<unsigned long long>(params));
  std::printf("\nbase fingerprint:\n");
  std::printf("  architecture:  %s\n", a.base.architecture.empty() ? "(not recorded)" : a.base.architecture.c_str());
  std::printf("  name:          %s\n", a.base.name.c_str());
  std::printf("  heads:         %d (kv %d)\n", a.base.n_head, a.base.n_head_kv);
  std::printf("  q/k row order: %s\n", a.base.qk_permuted ? "llama.cpp (permuted)" : "HF");
  if (a.base.content_hash)
    std::printf("  content hash:  %016llx\n", static_cast<unsigned long long>(a.base.content_hash));
  else
    std::printf("  content hash:  (not recorded)\n");
  std::printf("  tensors:       %zu recorded\n", a.base.tensors.size());
  std::printf("\nprovenance:\n");
  std::printf("  source:        %s\n", a.provenance.source.c_str());
  std::printf("  trainer:       %s\n", a.provenance.trainer_version.c_str());
  std::printf("  data hash:     %s\n", a.provenance.data_hash.c_str());
  std::printf("  steps:         %lld\n", static_cast<long long>(a.provenance.steps));
  std::printf("  created:       %lld (unix time)\n", static_cast<long long>(a.provenance.created_unix));
  std::printf("\n%-32s %14s %14s\n", "target", "A (rank x in)", "B (out x rank)");
  for (const auto& t : a.tensors) {
    const std::string sa = std::to_string(a.rank) + " x " + std::to_string(t.in);
    const std::string sb = std::to_string(t.out) + " x " + std::to_string(a.rank);
    std::printf("%-32s %14s %14s\n", t.target.c_str(), sa.c_str(), sb.c_str());
  }
}

int Inspect(int argc, char** argv) {
  ArgParser p("adapter inspect", "FILE   (a .yadp file, a PEFT folder or a GGUF LoRA)");
  if (int rc = p.Parse(argc, argv, 3); rc >= 0) return rc;
  if (p.positional().size() != 1) return p.UsageError("expected exactly one FILE");
  const std::string& path = p.positional()[0];
  auto format = DetectAdapterFormat(path);
  if (!format.ok()) return Fail("inspect", format.status());
  auto a = LoadAdapter(path);
  if (!a.ok()) return Fail("inspect", a.status());
  Print(*a, *format);
  return kExitOk;
}

int Convert(int argc, char** argv) {
  ArgParser p("adapter convert",
              "IN OUT [--base MODEL]   (OUT: *.yadp, *.gguf, or a folder for PEFT)");
  std::string base_path;
  p.Add({"--base"}, "base model (GGUF): fills the fingerprint and checks the adapter against it",
        &base_path);
  if (int rc = p.Parse(argc, argv, 3); rc >= 0) return rc;
  if (p.positional().size() != 2) return p.UsageError("expected IN and OUT");
  const std::string& in = p.positional()[0];
  const std::string& out = p.positional()[1];
  std::unique_ptr<Model> base;
  if (!base_path.empty()) {
    auto m = Model::Open(base_path);
    if (!m.ok()) return Fail("convert", m.status());
    base = std::move(*m);
  }
  AdapterLoadOptions options;
  options.base = base.get();
  auto a = LoadAdapter(in, options);
  if (!a.ok()) return Fail("convert", a.status());
  if (base) {
    // An adapter that already names its base must match this one before the
    // fingerprint is refreshed from it.
    if (a->base.content_hash != 0)
      if (auto s = CheckAdapterMatchesBase(*a, *base); !s.ok()) return Fail("convert", s);
    if (auto s = FillFingerprint(*base, &*a); !s.ok()) return Fail("convert", s);
    if (auto s = CheckAdapterMatchesBase(*a, *base); !s.ok()) return Fail("convert", s);
  }
  absl::Status s;
  std::error_code ec;
  if (EndsWith(out, ".yadp")) {
    s = SaveAdapter(*a, out);
  } else if (EndsWith(out, ".gguf")) {
    s = ExportGgufLora(*a, out);
  } else if (fs::is_directory(out, ec) || !fs::exists(out, ec)) {
    s = ExportPeft(*a, out);
  } else {
    return p.UsageError("OUT '" + out + "' is an existing file that is not .yadp or .gguf");
  }
  if (!s.ok()) return Fail("convert", s);
  std::fprintf(stderr, "yuan adapter convert: wrote %s (%zu tensor pairs, rank %d)\n", out.c_str(),
               a->tensors.size(), a->rank);
  return kExitOk;
}

}  // namespace

int AdapterCommand(int argc, char** argv) {
  const std::string sub = argc >= 3 ? argv[2] : "";
  if (sub == "inspect") return Inspect(argc, argv);
  if (sub == "convert") return Convert(argc, argv);
  if (sub == "-h" || sub == "--help") {
    std::printf(
        "usage: yuan adapter inspect FILE\n"
        "       yuan adapter convert IN OUT [--base MODEL]\n\n"
        "LoRA adapters as yuan .yadp files, PEFT folders (adapter_config.json +\n"
        "adapter_model.safetensors) or llama.cpp GGUF LoRA files. convert picks the\n"
        "output format from OUT: *.yadp, *.gguf, anything else is a PEFT folder.\n");
    return kExitOk;
  }
  std::fprintf(stderr, "yuan adapter: expected 'inspect' or 'convert' (see 'yuan adapter --help')\n");
  return kExitUsage;
}

}  // namespace yuan::cli
