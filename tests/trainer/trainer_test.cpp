// The training job end to end (trainer/trainer.h): it learns (a LoRA adapter
// on the real stories260K teaches it a name it never says, and the runtime
// then says it; a model pre-trained from scratch approaches the entropy of
// its data), it is reproducible (same seed, same curve), and stopping and
// resuming gives the uninterrupted curve bit for bit.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/tokenizer/tokenizer.h"
#include "tests/common/test_support.h"
#include "trainer/trainer.h"
#include "yuan/yuan.h"

namespace {

using yuan::testing::TempDir;
using namespace yuan::train;

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// Short stories about a dragon with a name the base model has never seen,
// in varied wording (so the adapter must learn the name, not one sentence).
std::string DragonStories(int n, uint64_t seed) {
  const char* const places[] = {"a big forest", "a small town", "the park", "a tall hill",
                                "the garden", "a sunny beach"};
  const char* const likes[] = {"to play with the ball", "to eat red apples", "to run fast",
                               "to sing songs", "to help his friends", "to look at the sky"};
  const char* const friends[] = {"Lily", "Tom", "Sue", "Ben", "Max", "Mia"};
  std::mt19937_64 rng(seed);
  std::ostringstream out;
  for (int i = 0; i < n; ++i) {
    const auto pick = [&](int k) { return static_cast<int>(rng() % k); };
    out << "Once upon a time, there was a little dragon named Zubaroo. Zubaroo lived in "
        << places[pick(6)] << ". Zubaroo liked " << likes[pick(6)] << ". One day, "
        << friends[pick(6)] << " came to see Zubaroo. They were very happy.\n\n";
  }
  return out.str();
}

TrainOptions BaseOptions(const std::string& model, const std::string& data,
                         const std::string& out) {
  TrainOptions o;
  o.model_path = model;
  o.data_path = data;
  o.out_path = out;
  o.threads = 2;
  return o;
}

// Greedy continuation of `prompt` through the public C API, with an adapter
// file or without one.
std::string Continue(const std::string& model, const std::string& adapter,
                     const std::string& prompt, int n_tokens) {
  yuan_engine_options eo;
  yuan_engine_options_init(&eo);
  eo.model = model.c_str();
  eo.n_threads = 2;
  yuan_engine* e = nullptr;
  REQUIRE(yuan_engine_open(&eo, &e) == YUAN_OK);
  yuan_adapter* a = nullptr;
  if (!adapter.empty()) {
    const yuan_status st = yuan_adapter_load(e, adapter.c_str(), &a);
    INFO(yuan_last_error());
    REQUIRE(st == YUAN_OK);
  }
  yuan_session* s = nullptr;
  REQUIRE(yuan_session_open(e, nullptr, &s) == YUAN_OK);
  yuan_sampling_params sp;
  yuan_sampling_params_init(&sp);
  sp.temperature = 0;
  yuan_generate_options go;
  yuan_generate_options_init(&go);
  go.max_tokens = n_tokens;
  go.sampling = &sp;
  yuan_adapter_choice choice{a, 1.0f};
  if (a != nullptr) {
    go.adapters = &choice;
    go.n_adapters = 1;
  }
  yuan_generate_result r;
  yuan_generate_result_init(&r);
  const yuan_status st = yuan_session_generate(s, prompt.c_str(), &go, &r);
  INFO(yuan_last_error());
  REQUIRE(st == YUAN_OK);
  std::string text(r.text, r.text_len);
  yuan_free(r.text);
  yuan_session_free(s);
  yuan_adapter_free(a);
  yuan_engine_free(e);
  return text;
}

}  // namespace

TEST_CASE("a LoRA adapter trained on stories260K teaches it a new name", "[trainer][learn]") {
  const std::string model = yuan::testing::SharedModel("stories260K.gguf");
  if (model.empty()) return;
  const std::string dir = TempDir();
  const std::string data = dir + "/dragon.txt";
  WriteText(data, DragonStories(48, 7));
  TrainOptions o = BaseOptions(model, data, dir + "/dragon.yadp");
  o.data.seq_len = 64;
  o.data.eval_fraction = 0.125;
  o.spec.mode = Mode::kLora;
  o.spec.lora.rank = 8;
  o.spec.lora.alpha = 16;
  o.adamw.lr = 1e-2f;
  o.warmup_steps = 5;
  o.batch_rows = 4;
  o.max_steps = 60;
  o.eval_every = 20;
  auto job = TrainJob::Create(o);
  INFO(job.status().ToString());
  REQUIRE(job.ok());
  REQUIRE((*job)->dataset().eval.size() >= 6);
  const absl::Status st = (*job)->Run();
  INFO(st.ToString());
  REQUIRE(st.ok());

  // The held-out stories: loss well below the base's on the same text.
  const double base = (*job)->initial_eval_loss();
  const double tuned = (*job)->log().back().eval_loss.value_or(NAN);
  INFO("eval loss: base " << base << ", after training " << tuned);
  REQUIRE(std::isfinite(base));
  CHECK(tuned < 0.6 * base);

  // The files a watcher reads: the CSV (one row per step) and the plot.
  auto rows = ReadLossCsv(dir + "/dragon.yadp.csv");
  REQUIRE(rows.ok());
  CHECK(rows->size() == 60);
  CHECK(std::ifstream(dir + "/dragon.yadp.png").good());

  // The runtime, given the adapter file, now tells the story with the name;
  // the base alone does not.
  const std::string prompt = "Once upon a time, there was a little dragon named";
  const std::string plain = Continue(model, "", prompt, 12);
  const std::string adapted = Continue(model, dir + "/dragon.yadp", prompt, 12);
  INFO("base: " << plain << "\nadapted: " << adapted);
  CHECK(plain.find("Zubaroo") == std::string::npos);
  CHECK(adapted.find("Zubaroo") != std::string::npos);
}

TEST_CASE("pre-training from scratch approaches the entropy of the data", "[trainer][learn]") {
  // Words drawn uniformly from a list, 8 per line: everything but the choice
  // of word is predictable, so the data's entropy is 8 ln(4) nats per line,
  // spread over the line's tokens. A model trained from random weights must
  // come close to that on held-out lines and can never beat it.
  const std::string model = yuan::testing::SharedModel("stories260K.gguf");
  if (model.empty()) return;
  const std::string dir = TempDir();
  const std::vector<std::string> words = {"apple", "river", "yellow", "moon"};
  std::mt19937_64 rng(11);
  std::string text;
  const int n_docs = 400, n_words = 8;
  for (int d = 0; d < n_docs; ++d) {
    std::string line = "I saw";
    for (int w = 0; w < n_words; ++w) line += " " + words[rng() % words.size()];
    text += line + ".\n\n";
  }
  const std::string data = dir + "/words.txt";
  WriteText(data, text);

  TrainOptions o = BaseOptions(model, data, dir + "/scratch.gguf");
  o.data.seq_len = 64;
  o.data.eval_fraction = 0.1;
  o.spec.mode = Mode::kFull;
  o.spec.random_init = true;
  o.adamw.lr = 3e-3f;
  o.adamw.weight_decay = 0.0f;
  o.warmup_steps = 10;
  o.batch_rows = 8;
  o.max_steps = 150;
  auto job = TrainJob::Create(o);
  INFO(job.status().ToString());
  REQUIRE(job.ok());

  // The bound: total entropy of the eval lines over their target tokens.
  int64_t targets = 0;
  for (const Example& ex : (*job)->dataset().eval) {
    for (size_t i = 1; i < ex.loss_mask.size(); ++i) targets += ex.loss_mask[i];
  }
  REQUIRE(targets > 0);
  const double entropy = static_cast<double>((*job)->dataset().eval.size()) * n_words *
                         std::log(4.0) / static_cast<double>(targets);
  REQUIRE((*job)->Run().ok());
  const double start = (*job)->initial_eval_loss();
  const double end = (*job)->log().back().eval_loss.value_or(NAN);
  INFO("eval loss " << start << " -> " << end << ", data entropy " << entropy << " nats/token");
  CHECK(start > std::log(300.0));   // random weights: about ln(vocab)
  CHECK(end < entropy + 0.25);      // close to the entropy ...
  CHECK(end > entropy - 0.05);      // ... and not below it (held-out data)
  // The written model loads and has the trained weights' loss.
  CHECK(yuan::Model::Open(dir + "/scratch.gguf").ok());
}

namespace {

// A small LoRA run on a random model with everything that draws random
// numbers switched on: shuffling, an eval split, dropout, accumulation.
TrainOptions ReproOptions(const std::string& dir) {
  yuan::testing::RandomModelSpec spec;
  spec.n_layer = 2;
  const std::string model = dir + "/repro-model.gguf";
  REQUIRE(yuan::testing::RandomLlamaModel(spec).WriteFile(model).ok());
  const std::string data = dir + "/repro.txt";
  std::string text;
  for (int i = 0; i < 40; ++i) text += "story " + std::to_string(i * 7919 % 97) + " of the sea\n\n";
  WriteText(data, text);
  TrainOptions o = BaseOptions(model, data, dir + "/repro.yadp");
  o.data.seq_len = 32;
  o.data.eval_fraction = 0.1;
  o.spec.lora.rank = 4;
  o.spec.lora.dropout = 0.1f;
  o.adamw.lr = 5e-3f;
  o.adamw.weight_decay = 0.01f;
  o.warmup_steps = 2;
  o.batch_rows = 2;
  o.grad_accum = 2;
  o.epochs = 3;
  o.eval_every = 3;
  return o;
}

std::vector<std::vector<float>> Values(TrainJob& job) {
  std::vector<std::vector<float>> v;
  for (const Param& p : job.model().params()) v.push_back(p.value);
  return v;
}

void RequireSameCurve(const std::vector<LogRow>& a, const std::vector<LogRow>& b) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("step " << a[i].step);
    CHECK(a[i].step == b[i].step);
    CHECK(a[i].loss == b[i].loss);  // bit for bit
    CHECK(a[i].grad_norm == b[i].grad_norm);
    CHECK(a[i].lr == b[i].lr);
    CHECK(a[i].eval_loss.has_value() == b[i].eval_loss.has_value());
    if (a[i].eval_loss && b[i].eval_loss) CHECK(*a[i].eval_loss == *b[i].eval_loss);
  }
}

}  // namespace

TEST_CASE("training twice with one seed gives one curve", "[trainer][repro]") {
  const std::string dir = TempDir() + "/repro1";
  std::filesystem::create_directories(dir);
  TrainOptions o = ReproOptions(dir);
  auto a = TrainJob::Create(o);
  REQUIRE(a.ok());
  REQUIRE((*a)->Run().ok());
  auto b = TrainJob::Create(o);
  REQUIRE(b.ok());
  REQUIRE((*b)->Run().ok());
  REQUIRE((*a)->log().size() >= 6);
  RequireSameCurve((*a)->log(), (*b)->log());
  CHECK(Values(**a) == Values(**b));
  // ... and the loss went down (the run trains at all).
  CHECK((*a)->log().back().loss < (*a)->log().front().loss);

  // Another seed is another run.
  o.seed = 43;
  auto c = TrainJob::Create(o);
  REQUIRE(c.ok());
  REQUIRE((*c)->Run().ok());
  CHECK((*c)->log().front().loss != (*a)->log().front().loss);
}

TEST_CASE("stopping and resuming gives the uninterrupted curve", "[trainer][repro]") {
  const std::string dir = TempDir() + "/repro2";
  std::filesystem::create_directories(dir);
  TrainOptions o = ReproOptions(dir);
  auto whole = TrainJob::Create(o);
  REQUIRE(whole.ok());
  REQUIRE((*whole)->Run().ok());
  const int64_t total = (*whole)->total_steps();
  REQUIRE(total >= 6);

  // Stop after step 4 (mid-epoch, with eval rows before it): Run saves a
  // checkpoint and reports Cancelled.
  o.out_path = dir + "/part.yadp";
  o.checkpoint_path = dir + "/part.ckpt";
  auto first = TrainJob::Create(o);
  REQUIRE(first.ok());
  const absl::Status st = (*first)->Run([](const Progress& p) { return p.row.step < 4; });
  CHECK(absl::IsCancelled(st));
  CHECK((*first)->step() == 4);

  o.resume_from = dir + "/part.ckpt";
  auto second = TrainJob::Create(o);
  INFO(second.status().ToString());
  REQUIRE(second.ok());
  CHECK((*second)->step() == 4);
  REQUIRE((*second)->Run().ok());
  RequireSameCurve((*whole)->log(), (*second)->log());
  CHECK(Values(**whole) == Values(**second));

  // A checkpoint from another configuration is refused, naming the field.
  TrainOptions other = o;
  other.adamw.lr = 1e-3f;
  auto refused = TrainJob::Create(other);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message().find("lr") != std::string::npos);
  // A damaged checkpoint is an error, not a crash.
  {
    std::fstream f(dir + "/part.ckpt", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x7f');
  }
  auto damaged = TrainJob::Create(o);
  REQUIRE_FALSE(damaged.ok());
  CHECK(damaged.status().message().find("checksum") != std::string::npos);
}

TEST_CASE("a job refuses bad options and bad data before training", "[trainer]") {
  const std::string dir = TempDir() + "/bad";
  std::filesystem::create_directories(dir);
  TrainOptions o = ReproOptions(dir);
  TrainOptions no_model = o;
  no_model.model_path = dir + "/missing.gguf";
  CHECK_FALSE(TrainJob::Create(no_model).ok());
  TrainOptions bad_lr = o;
  bad_lr.adamw.lr = -1;
  CHECK(absl::IsInvalidArgument(TrainJob::Create(bad_lr).status()));
  TrainOptions bad_accum = o;
  bad_accum.grad_accum = 0;
  CHECK(absl::IsInvalidArgument(TrainJob::Create(bad_accum).status()));
  // A bad JSONL line names the file and the line.
  const std::string chat = dir + "/chat.jsonl";
  WriteText(chat,
            "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, "
            "{\"role\": \"assistant\", \"content\": \"hello\"}]}\n"
            "{\"messages\": [{\"role\": \"user\", \"content\": 3}]}\n");
  TrainOptions bad_data = o;
  bad_data.data_path = chat;
  bad_data.data.seq_len = 256;
  auto job = TrainJob::Create(bad_data);
  REQUIRE_FALSE(job.ok());
  INFO(job.status().ToString());
  CHECK(job.status().message().find("chat.jsonl:2") != std::string::npos);
}
