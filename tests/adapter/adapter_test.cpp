// LoRA adapter files: .yadp round trips and hostile input, PEFT and llama.cpp
// GGUF interop (including a PEFT folder written by an independent Python
// script), and refusing an adapter made for another base.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "runtime/adapter/adapter.h"
#include "runtime/core/status.h"
#include "runtime/model/gguf.h"
#include "runtime/model/gguf_writer.h"
#include "runtime/model/model.h"
#include "tests/common/random_adapter.h"
#include "tests/common/test_support.h"

namespace yuan {
namespace {

namespace fs = std::filesystem;
using testing::RandomModelSpec;
using testing::TempDir;

LoraAdapter RandomAdapter(const RandomModelSpec& s, int rank, uint64_t seed,
                          std::vector<std::string> modules = testing::kAllLoraModules) {
  return testing::RandomLoraAdapter(s, rank, seed, modules);
}

void RequireSameTensors(const LoraAdapter& x, const LoraAdapter& y) {
  REQUIRE(x.rank == y.rank);
  REQUIRE(x.alpha == y.alpha);
  REQUIRE(x.use_rslora == y.use_rslora);
  REQUIRE(x.scaling() == y.scaling());
  REQUIRE(x.target_modules == y.target_modules);
  REQUIRE(x.tensors.size() == y.tensors.size());
  for (size_t i = 0; i < x.tensors.size(); ++i) {
    INFO(x.tensors[i].target);
    REQUIRE(x.tensors[i].target == y.tensors[i].target);
    REQUIRE(x.tensors[i].in == y.tensors[i].in);
    REQUIRE(x.tensors[i].out == y.tensors[i].out);
    REQUIRE(x.tensors[i].a == y.tensors[i].a);  // exact: F32 all the way
    REQUIRE(x.tensors[i].b == y.tensors[i].b);
  }
}

std::string Tmp(const std::string& name) { return (fs::path(TempDir()) / name).string(); }

std::vector<uint8_t> ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

TEST_CASE("names map between PEFT and GGUF") {
  CHECK(PeftModuleToGguf("base_model.model.model.layers.3.self_attn.q_proj") == "blk.3.attn_q.weight");
  CHECK(PeftModuleToGguf("base_model.model.model.layers.12.self_attn.o_proj") == "blk.12.attn_output.weight");
  CHECK(PeftModuleToGguf("base_model.model.model.layers.0.mlp.down_proj") == "blk.0.ffn_down.weight");
  CHECK(PeftModuleToGguf("base_model.model.lm_head").empty());
  CHECK(PeftModuleToGguf("base_model.model.model.layers.x.mlp.up_proj").empty());
  CHECK(GgufToPeftModule("blk.7.ffn_gate.weight") == "base_model.model.model.layers.7.mlp.gate_proj");
  CHECK(GgufToPeftModule("blk.7.attn_k.weight") == "base_model.model.model.layers.7.self_attn.k_proj");
  CHECK(GgufToPeftModule("token_embd.weight").empty());
  CHECK(TargetModuleOf("blk.1.attn_v.weight") == "v");
  CHECK(TargetModuleOf("blk.1.attn_norm.weight").empty());
}

TEST_CASE("scaling is alpha/r, or alpha/sqrt(r) with rsLoRA") {
  LoraAdapter a;
  a.rank = 16;
  a.alpha = 32;
  CHECK(a.scaling() == Approx(2.0));
  a.use_rslora = true;
  CHECK(a.scaling() == Approx(8.0));
}

TEST_CASE(".yadp round trip keeps every value and field") {
  RandomModelSpec spec;
  LoraAdapter a = RandomAdapter(spec, 4, 1);
  a.base.name = "tiny";
  a.base.content_hash = 0x1234567890abcdefull;
  a.base.tensors = {{"blk.0.attn_q.weight", {64, 64}}};
  a.use_rslora = true;
  const std::string path = Tmp("rt.yadp");
  REQUIRE(SaveAdapter(a, path).ok());
  REQUIRE(DetectAdapterFormat(path).value() == AdapterFormat::kYadp);
  auto b = LoadAdapter(path);
  REQUIRE(b.ok());
  RequireSameTensors(a, *b);
  CHECK(b->base.architecture == "llama");
  CHECK(b->base.name == "tiny");
  CHECK(b->base.content_hash == a.base.content_hash);
  CHECK(b->base.tensors == a.base.tensors);
  CHECK(b->base.n_head == 4);
  CHECK(b->base.n_head_kv == 2);
  CHECK(b->base.qk_permuted);
  CHECK(b->provenance.trainer_version == "yuan-trainer 0.1");
  CHECK(b->provenance.data_hash == "sha256:abc");
  CHECK(b->provenance.steps == 123);
  CHECK(b->provenance.created_unix == 1764460800);
  CHECK(b->provenance.source == "yuan-trainer");
}

TEST_CASE(".yadp tensor data is 32-byte aligned in the file") {
  RandomModelSpec spec;
  LoraAdapter a = RandomAdapter(spec, 3, 2, {"q"});
  auto bytes = SerializeYadp(a);
  REQUIRE(bytes.ok());
  CHECK(bytes->size() % 32 == 0);
  // The checks in ParseYadp would refuse misaligned data; an unaligned copy
  // of the buffer (offsets are what count) still parses.
  std::vector<uint8_t> shifted(bytes->size() + 1);
  std::memcpy(shifted.data() + 1, bytes->data(), bytes->size());
  REQUIRE(ParseYadp(shifted.data() + 1, bytes->size()).ok());
}

TEST_CASE("yadp -> PEFT -> GGUF -> yadp keeps every value", "[interop]") {
  for (const std::string arch : {"llama", "qwen2"}) {
    DYNAMIC_SECTION(arch) {
      RandomModelSpec spec;
      spec.arch = arch;
      LoraAdapter a = RandomAdapter(spec, 8, 3);
      a.use_rslora = arch == "qwen2";
      a.base.content_hash = 0xfedcba9876543210ull;  // top bit set: a u64 everywhere
      const std::string peft = Tmp("peft-" + arch);
      REQUIRE(ExportPeft(a, peft).ok());
      REQUIRE(fs::exists(fs::path(peft) / "adapter_config.json"));
      REQUIRE(DetectAdapterFormat(peft).value() == AdapterFormat::kPeft);
      auto p = LoadAdapter(peft);
      REQUIRE(p.ok());
      RequireSameTensors(a, *p);  // the llama q/k permutation is undone and redone exactly
      CHECK(p->base.architecture == arch);
      CHECK(p->base.content_hash == a.base.content_hash);
      CHECK(p->provenance.source == "peft");

      const std::string gguf = Tmp("lora-" + arch + ".gguf");
      REQUIRE(ExportGgufLora(*p, gguf).ok());
      REQUIRE(DetectAdapterFormat(gguf).value() == AdapterFormat::kGguf);
      auto g = LoadAdapter(gguf);
      REQUIRE(g.ok());
      RequireSameTensors(a, *g);
      CHECK(g->base.content_hash == a.base.content_hash);
      CHECK(g->base.n_head == a.base.n_head);
      CHECK(g->base.n_head_kv == a.base.n_head_kv);
      CHECK(g->base.architecture == arch);

      const std::string yadp = Tmp("back-" + arch + ".yadp");
      REQUIRE(SaveAdapter(*g, yadp).ok());
      auto y = LoadAdapter(yadp);
      REQUIRE(y.ok());
      RequireSameTensors(a, *y);
    }
  }
}

TEST_CASE("PEFT export undoes llama.cpp's q/k row permutation") {
  RandomModelSpec spec;  // llama: n_head 4, n_head_kv 2, head_dim 16
  LoraAdapter a = RandomAdapter(spec, 2, 4, {"q", "k", "v"});
  REQUIRE(a.base.qk_permuted);
  const std::string peft = Tmp("peft-perm");
  REQUIRE(ExportPeft(a, peft).ok());
  auto st = ReadAll((fs::path(peft) / "adapter_model.safetensors").string());
  auto contains = [&](const std::vector<float>& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(v.data());
    return std::search(st.begin(), st.end(), p, p + v.size() * 4) != st.end();
  };
  // convert_hf_to_gguf.py's permute: GGUF row h*2*half + 2*i + j holds HF row
  // h*2*half + j*half + i; the file must hold the HF order.
  auto hf_order = [](const std::vector<float>& b, int heads, int64_t out, int64_t rank) {
    const int64_t half = out / heads / 2;
    std::vector<float> hf(b.size());
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t j = 0; j < 2; ++j)
        for (int64_t i = 0; i < half; ++i)
          for (int64_t r = 0; r < rank; ++r)
            hf[(h * 2 * half + j * half + i) * rank + r] = b[(h * 2 * half + 2 * i + j) * rank + r];
    return hf;
  };
  const LoraTensor* q = a.Find("blk.0.attn_q.weight");
  const LoraTensor* k = a.Find("blk.1.attn_k.weight");
  const LoraTensor* v = a.Find("blk.0.attn_v.weight");
  REQUIRE((q && k && v));
  CHECK(contains(hf_order(q->b, 4, q->out, 2)));
  CHECK(!contains(q->b));
  CHECK(contains(hf_order(k->b, 2, k->out, 2)));
  CHECK(contains(q->a));  // A is not permuted
  CHECK(contains(v->b));  // v is not permuted
  auto back = LoadAdapter(peft);
  REQUIRE(back.ok());
  RequireSameTensors(a, *back);
}

TEST_CASE("GGUF LoRA in llama.cpp's layout reads back") {
  // Written tensor by tensor here, as convert_lora_to_gguf.py lays it out:
  // NAME.lora_a ne = {in, rank}, NAME.lora_b ne = {rank, out}, F16 data.
  const int rank = 2, in = 8, out = 6;
  std::vector<float> av(rank * in), bv(out * rank);
  for (size_t i = 0; i < av.size(); ++i) av[i] = 0.125f * static_cast<float>(i) - 1.0f;
  for (size_t i = 0; i < bv.size(); ++i) bv[i] = 0.25f * static_cast<float>(i) - 0.5f;
  GgufWriter w;
  w.AddString("general.architecture", "qwen2");
  w.AddString("general.type", "adapter");
  w.AddString("adapter.type", "lora");
  w.AddFloat32("adapter.lora.alpha", 4.0f);
  w.AddTensorF32("blk.1.ffn_up.weight.lora_a", DType::kF16, {in, rank}, av.data());
  w.AddTensorF32("blk.1.ffn_up.weight.lora_b", DType::kF16, {rank, out}, bv.data());
  const std::string path = Tmp("llamacpp.gguf");
  REQUIRE(w.WriteFile(path).ok());
  auto a = LoadAdapter(path);
  REQUIRE(a.ok());
  CHECK(a->rank == rank);
  CHECK(a->alpha == 4.0f);
  CHECK(a->scaling() == Approx(2.0));
  CHECK(a->base.architecture == "qwen2");
  CHECK(a->target_modules == std::vector<std::string>{"up"});
  const LoraTensor* t = a->Find("blk.1.ffn_up.weight");
  REQUIRE(t != nullptr);
  CHECK(t->in == in);
  CHECK(t->out == out);
  CHECK(t->a == av);  // all exactly representable in F16
  CHECK(t->b == bv);

  SECTION("alpha 0 means scale 1 (llama.cpp)") {
    GgufWriter w0;
    w0.AddString("general.architecture", "qwen2");
    w0.AddString("general.type", "adapter");
    w0.AddString("adapter.type", "lora");
    w0.AddTensorF32("blk.0.attn_v.weight.lora_a", DType::kF32, {in, rank}, av.data());
    w0.AddTensorF32("blk.0.attn_v.weight.lora_b", DType::kF32, {rank, out}, bv.data());
    REQUIRE(w0.WriteFile(Tmp("alpha0.gguf")).ok());
    auto b = LoadAdapter(Tmp("alpha0.gguf"));
    REQUIRE(b.ok());
    CHECK(b->scaling() == Approx(1.0));
  }
  SECTION("a model, a lone lora_a and a rank mismatch are refused") {
    GgufWriter m;
    m.AddString("general.architecture", "qwen2");
    const std::vector<float> w(static_cast<size_t>(in * out), 0.5f);  // a base weight [out x in]
    m.AddTensorF32("blk.0.attn_v.weight", DType::kF32, {in, out}, w.data());
    REQUIRE(m.WriteFile(Tmp("model.gguf")).ok());
    auto e = LoadAdapter(Tmp("model.gguf"));
    REQUIRE(!e.ok());
    CHECK_THAT(std::string(e.status().message()), Catch::Contains("general.type"));

    GgufWriter lone;
    lone.AddString("general.architecture", "qwen2");
    lone.AddString("general.type", "adapter");
    lone.AddString("adapter.type", "lora");
    lone.AddTensorF32("blk.0.attn_v.weight.lora_a", DType::kF32, {in, rank}, av.data());
    REQUIRE(lone.WriteFile(Tmp("lone.gguf")).ok());
    e = LoadAdapter(Tmp("lone.gguf"));
    REQUIRE(!e.ok());
    CHECK_THAT(std::string(e.status().message()), Catch::Contains("only one of"));

    GgufWriter bad;
    bad.AddString("general.architecture", "qwen2");
    bad.AddString("general.type", "adapter");
    bad.AddString("adapter.type", "lora");
    bad.AddTensorF32("blk.0.attn_v.weight.lora_a", DType::kF32, {in, rank}, av.data());
    bad.AddTensorF32("blk.0.attn_v.weight.lora_b", DType::kF32, {rank + 1, 4}, bv.data());
    REQUIRE(bad.WriteFile(Tmp("bad.gguf")).ok());
    e = LoadAdapter(Tmp("bad.gguf"));
    REQUIRE(!e.ok());
    CHECK_THAT(std::string(e.status().message()), Catch::Contains("rank"));
  }
}

std::string Python() { return yuan::testing::ReferencePython(); }

bool HaveTorch() { return yuan::testing::PythonCanImport("torch"); }

TEST_CASE("a PEFT adapter written by an independent Python script loads", "[python]") {
  if (!HaveTorch()) {
    WARN("skipped: " << Python() << " with torch is not available");
    return;
  }
  RandomModelSpec spec;  // n_embd 64, n_head 4, n_head_kv 2, n_ff 96, 2 layers
  spec.arch = "qwen2";   // no q/k permutation: file order == ours
  const std::string dir = Tmp("py-peft");
  const std::string cmd = Python() + " " + YUAN_SOURCE_DIR + "/tests/adapter/write_peft_adapter.py " + dir +
                          " 64 4 2 96 2 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  REQUIRE(pclose(p) == 0);
  INFO(out);

  auto a = LoadAdapter(dir);
  REQUIRE(a.ok());
  CHECK(a->rank == 4);
  CHECK(a->alpha == 8.0f);
  CHECK(a->use_rslora);
  CHECK(a->scaling() == Approx(4.0));  // 8 / sqrt(4)
  CHECK(a->target_modules == std::vector<std::string>{"q", "k", "v", "down"});
  CHECK(a->base.name == "test/tiny-llama");
  CHECK(a->tensors.size() == 8);
  auto expected = [&](const std::string& name) {
    auto bytes = ReadAll(dir + "/expected/" + name + ".f32");
    std::vector<float> v(bytes.size() / 4);
    std::memcpy(v.data(), bytes.data(), v.size() * 4);
    return v;
  };
  for (int l = 0; l < 2; ++l)
    for (const std::string m : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "mlp.down_proj"}) {
      const std::string peft = "base_model.model.model.layers." + std::to_string(l) + "." + m;
      const LoraTensor* t = a->Find(PeftModuleToGguf(peft));
      REQUIRE(t != nullptr);
      CHECK(t->a == expected(peft + ".lora_A.weight"));
      CHECK(t->b == expected(peft + ".lora_B.weight"));
    }
  const LoraTensor* down = a->Find("blk.1.ffn_down.weight");
  REQUIRE(down != nullptr);
  CHECK(down->in == 96);
  CHECK(down->out == 64);

  SECTION("for a llama base, q/k lora_B rows follow llama.cpp's permutation") {
    RandomModelSpec llama = spec;
    llama.arch = "llama";
    auto model = Model::Open(testing::WriteRandomLlamaModel(llama, "py-llama.gguf"));
    REQUIRE(model.ok());
    AdapterLoadOptions options;
    options.base = model->get();
    auto l = LoadAdapter(dir, options);
    REQUIRE(l.ok());
    CHECK(l->base.qk_permuted);
    CHECK(l->base.architecture == "llama");
    for (int layer = 0; layer < 2; ++layer)
      for (const std::string m : {"self_attn.q_proj", "self_attn.k_proj"}) {
        const std::string peft = "base_model.model.model.layers." + std::to_string(layer) + "." + m;
        const LoraTensor* t = l->Find(PeftModuleToGguf(peft));
        REQUIRE(t != nullptr);
        CHECK(t->a == expected(peft + ".lora_A.weight"));
        CHECK(t->b == expected(peft + ".lora_B.weight.llama"));
      }
    CHECK(l->Find("blk.0.attn_v.weight")->b == expected("base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"));
    // Without the base it cannot know, and a llama base refuses it.
    auto check = CheckAdapterMatchesBase(*a, **model);
    REQUIRE(!check.ok());
    CHECK_THAT(std::string(check.message()), Catch::Contains("q/k row order"));
  }
  SECTION("and matches its base once the fingerprint is filled") {
    const std::string model_path = testing::WriteRandomLlamaModel(spec, "py-base.gguf");
    auto model = Model::Open(model_path);
    REQUIRE(model.ok());
    LoraAdapter f = *a;
    REQUIRE(FillFingerprint(**model, &f).ok());
    CHECK(f.base.architecture == "qwen2");
    CHECK(f.base.tensors.size() == 8);
    CHECK(f.base.content_hash != 0);
    CHECK(CheckAdapterMatchesBase(f, **model).ok());
  }
}

TEST_CASE("corrupt or truncated .yadp files give errors, never crashes") {
  RandomModelSpec spec;
  spec.n_layer = 1;
  LoraAdapter a = RandomAdapter(spec, 2, 5, {"q", "down"});
  a.base.tensors = {{"blk.0.attn_q.weight", {64, 64}}};
  auto bytes = SerializeYadp(a);
  REQUIRE(bytes.ok());
  REQUIRE(ParseYadp(bytes->data(), bytes->size()).ok());
  for (size_t len = 0; len < bytes->size(); ++len) {
    std::vector<uint8_t> cut(bytes->begin(), bytes->begin() + len);
    auto r = ParseYadp(cut.data(), cut.size());
    if (r.ok()) FAIL("truncation to " << len << " bytes was accepted");
    if (!IsFormatError(r.status())) FAIL("truncation to " << len << ": " << r.status().ToString());
  }
  std::mt19937 rng(11);
  int accepted = 0;
  for (size_t pos = 0; pos < bytes->size(); ++pos) {
    std::vector<uint8_t> bad = *bytes;
    bad[pos] ^= static_cast<uint8_t>(1u << (rng() % 8));
    auto r = ParseYadp(bad.data(), bad.size());
    if (r.ok()) {
      ++accepted;  // a flipped data or scalar byte can still be a valid adapter
      REQUIRE(ValidateAdapter(*r, "flipped").ok());
    }
  }
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<uint8_t> bad = *bytes;
    for (int k = 0; k < 8; ++k) bad[rng() % bad.size()] = static_cast<uint8_t>(rng());
    (void)ParseYadp(bad.data(), bad.size());
  }
  SUCCEED("flipped single bits accepted: " << accepted);
}

TEST_CASE("our own checks refuse what the verifier accepts") {
  RandomModelSpec spec;
  LoraAdapter good = RandomAdapter(spec, 2, 6, {"q"});
  SECTION("duplicate targets") {
    LoraAdapter a = good;
    a.tensors.push_back(a.tensors[0]);
    auto s = SerializeYadp(a);
    REQUIRE(!s.ok());
    CHECK_THAT(std::string(s.status().message()), Catch::Contains("appears twice"));
  }
  SECTION("non-finite alpha, zero rank, a bad target") {
    LoraAdapter a = good;
    a.alpha = std::nanf("");
    CHECK(!ValidateAdapter(a, "x").ok());
    a = good;
    a.rank = 0;
    CHECK(!ValidateAdapter(a, "x").ok());
    a = good;
    a.tensors[0].target = "token_embd.weight";
    CHECK_THAT(std::string(ValidateAdapter(a, "x").message()), Catch::Contains("not a supported projection"));
    a = good;
    a.tensors[0].a.pop_back();
    CHECK_THAT(std::string(ValidateAdapter(a, "x").message()), Catch::Contains("lora_a"));
  }
  SECTION("a file that is not an adapter") {
    const std::string path = Tmp("not-an-adapter.bin");
    std::ofstream(path) << "hello world, not an adapter";
    auto r = LoadAdapter(path);
    REQUIRE(!r.ok());
    CHECK(IsFormatError(r.status()));
  }
}

TEST_CASE("an adapter for another base is refused, naming the mismatch") {
  RandomModelSpec spec;
  const std::string base_path = testing::WriteRandomLlamaModel(spec, "fp-base.gguf");
  auto base = Model::Open(base_path);
  REQUIRE(base.ok());
  LoraAdapter a = RandomAdapter(spec, 4, 7);
  a.base = {};
  REQUIRE(FillFingerprint(**base, &a).ok());
  REQUIRE(CheckAdapterMatchesBase(a, **base).ok());
  // Survives a save/load.
  REQUIRE(SaveAdapter(a, Tmp("fp.yadp")).ok());
  auto loaded = LoadAdapter(Tmp("fp.yadp"));
  REQUIRE(loaded.ok());
  REQUIRE(CheckAdapterMatchesBase(*loaded, **base).ok());

  auto refused = [&](RandomModelSpec other, const std::string& name, const std::string& word) {
    auto m = Model::Open(testing::WriteRandomLlamaModel(other, name));
    REQUIRE(m.ok());
    absl::Status s = CheckAdapterMatchesBase(*loaded, **m);
    INFO(s.ToString());
    REQUIRE(!s.ok());
    CHECK_THAT(std::string(s.message()), Catch::Contains(word));
  };
  SECTION("other weights, same shapes: the content hash") {
    RandomModelSpec other = spec;
    other.seed = 99;
    refused(other, "fp-seed.gguf", "content hash");
  }
  SECTION("other shapes") {
    RandomModelSpec other = spec;
    other.n_ff = 128;
    refused(other, "fp-ff.gguf", "shape of 'blk.0.ffn_down.weight'");
  }
  SECTION("fewer layers: a missing tensor") {
    RandomModelSpec other = spec;
    other.n_layer = 1;
    refused(other, "fp-layers.gguf", "missing tensor");
  }
  SECTION("another architecture") {
    RandomModelSpec other = spec;
    other.arch = "qwen2";
    refused(other, "fp-arch.gguf", "architecture");
  }
}

TEST_CASE("the content hash samples every tensor") {
  RandomModelSpec spec;
  GgufWriter w1 = testing::RandomLlamaModel(spec);
  auto b1 = w1.Serialize();
  auto f1 = GgufFile::FromBuffer(b1.data(), b1.size());
  REQUIRE(f1.ok());
  const uint64_t h1 = BaseContentHash(**f1);
  CHECK(h1 == BaseContentHash(**f1));
  // Flip one byte of the last tensor (small tensors are hashed whole).
  auto b2 = b1;
  b2[b2.size() - 3] ^= 1;
  auto f2 = GgufFile::FromBuffer(b2.data(), b2.size());
  REQUIRE(f2.ok());
  CHECK(BaseContentHash(**f2) != h1);
}

// This process's resident memory, from /proc/self/statm (0 if unreadable).
uint64_t ResidentBytes() {
  std::ifstream in("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * 4096;
}

TEST_CASE("hashing a mapped model leaves its pages out of resident memory") {
  // An engine repacks and releases most of a model's pages; loading an
  // adapter hashes samples of every tensor, and the kernel maps pages around
  // each sample, which used to bring back up to the whole file.
  RandomModelSpec spec;
  spec.n_embd = 512;
  spec.n_ff = 1536;
  spec.n_vocab = 4000;
  const std::string path = testing::WriteRandomLlamaModel(spec, "hash-rss.gguf");
  const uint64_t file_bytes = std::filesystem::file_size(path);
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes(file_bytes);
  in.read(bytes.data(), static_cast<std::streamsize>(file_bytes));
  auto copy = GgufFile::FromBuffer(bytes.data(), bytes.size());
  auto mapped = GgufFile::Open(path);
  REQUIRE(copy.ok());
  REQUIRE(mapped.ok());
  REQUIRE((*mapped)->mapped());
  const uint64_t before = ResidentBytes();
  const uint64_t h = BaseContentHash(**mapped);
  const uint64_t grew = ResidentBytes() - std::min(before, ResidentBytes());
  INFO("file " << file_bytes << " bytes, resident memory grew by " << grew);
  CHECK(grew < file_bytes / 8);
  // Released pages read back from the file: the same hash, twice.
  CHECK(h == BaseContentHash(**copy));
  CHECK(h == BaseContentHash(**mapped));
}

}  // namespace
}  // namespace yuan

namespace yuan {
namespace {

TEST_CASE("the content hash of a 1 GiB model takes well under a second") {
  // calloc'd pages are mapped lazily: only the sampled bytes are touched.
  constexpr uint64_t kTotal = uint64_t{1} << 30, kTensors = 256, kEach = kTotal / kTensors;
  std::shared_ptr<void> mem(std::calloc(kTotal, 1), std::free);
  REQUIRE(mem != nullptr);
  GgufParts parts;
  parts.path = "<1 GiB>";
  parts.keep_alive.push_back(mem);
  std::vector<std::string> names;
  for (uint64_t i = 0; i < kTensors; ++i) names.push_back("t" + std::to_string(i) + ".weight");
  auto names_keep = std::make_shared<std::vector<std::string>>(std::move(names));
  parts.keep_alive.push_back(names_keep);
  for (uint64_t i = 0; i < kTensors; ++i) {
    GgufTensor t;
    t.name = (*names_keep)[i];
    t.type = DType::kF32;
    t.n_dims = 2;
    t.ne[0] = 1024;
    t.ne[1] = static_cast<int64_t>(kEach / 4 / 1024);
    t.n_bytes = kEach;
    t.data = static_cast<const uint8_t*>(mem.get()) + i * kEach;
    parts.tensors.push_back(t);
  }
  auto f = GgufFile::FromParts(std::move(parts));
  REQUIRE(f.ok());
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t h = BaseContentHash(**f);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(h != 0);
  CHECK(s < 1.0 * testing::TimeScale());
}

}  // namespace
}  // namespace yuan
