// The loss log (trainer/log.h): CSV round trips and errors, the progress
// line, and the PNG plot, decoded by an independent reader
// (tests/trainer/read_png.py: Python's struct + zlib only) that checks the
// signature, chunk CRCs, the stored-block zlib stream and the filter bytes.
// The PNG tests skip with a WARN when /usr/bin/python3 is missing.
#include <sys/stat.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/common/test_support.h"
#include "trainer/log.h"

namespace yuan::train {
namespace {

namespace fs = std::filesystem;

std::string Python() { return yuan::testing::ReferencePython(); }

bool HavePython() { return yuan::testing::PythonCanImport("zlib, struct, json"); }

using yuan::testing::RunCommand;

// The series colours log.cpp draws with (matplotlib's tab:blue, tab:orange).
const char* const kLossColour = "31,119,180";
const char* const kEvalColour = "255,127,14";

// Runs read_png.py; the JSON report, or a failed CHECK with its error.
nlohmann::json ReadPng(const std::string& path, const std::string& extra = "") {
  const std::string out = RunCommand(Python() + " " + YUAN_SOURCE_DIR +
                                     "/tests/trainer/read_png.py " + path + " " + extra);
  nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
  INFO("read_png.py said: " << out.substr(0, 300));
  CHECK_FALSE(j.is_discarded());
  if (j.is_discarded()) return nlohmann::json::object({{"error", "no JSON"}});
  CHECK_FALSE(j.contains("error"));
  return j;
}

std::string Slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<LogRow> FallingRun(int n, int eval_every) {
  std::vector<LogRow> rows;
  for (int i = 1; i <= n; ++i) {
    LogRow r;
    r.step = i;
    r.epoch = i / 100.0;
    r.loss = 1.0 + 3.0 * std::exp(-i / 40.0) + 0.05 * std::sin(i * 1.7);
    if (eval_every > 0 && i % eval_every == 0) r.eval_loss = 1.1 + 3.0 * std::exp(-i / 40.0);
    r.lr = 1e-4 * (1.0 - i / static_cast<double>(n + 1));
    r.grad_norm = 0.5 + 1.0 / i;
    r.tokens = 256LL * i;
    r.tokens_per_s = 842.25;
    r.elapsed_s = 0.3 * i;
    rows.push_back(r);
  }
  return rows;
}

TEST_CASE("loss CSV round trip, eval_loss empty between evaluations", "[log]") {
  std::vector<LogRow> rows = FallingRun(25, 10);
  rows[3].loss = 1.0 / 3.0;  // needs all 17 digits
  rows[4].lr = 1e-300;
  rows[5].tokens = 9007199254740993LL;  // not representable as a double
  rows[6].eval_loss = 0.0;
  rows[7].loss = std::nan("");  // a diverged step is logged, not lost
  rows[8].grad_norm = std::numeric_limits<double>::infinity();
  const std::string path = testing::TempDir() + "/loss.csv";
  REQUIRE(WriteLossCsv(path, rows).ok());

  const std::string text = Slurp(path);
  CHECK(text.rfind("step,epoch,loss,eval_loss,lr,grad_norm,tokens,tokens_per_s,elapsed_s\n", 0) ==
        0);
  // Row 1 (step 1) has no eval: two commas in a row after the loss.
  std::istringstream lines(text);
  std::string header, first;
  std::getline(lines, header);
  std::getline(lines, first);
  CHECK(first.rfind("1,0.01,", 0) == 0);
  CHECK(first.find(",,") != std::string::npos);

  auto back = ReadLossCsv(path);
  REQUIRE(back.ok());
  REQUIRE(back->size() == rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const LogRow& a = rows[i];
    const LogRow& b = (*back)[i];
    INFO("row " << i);
    CHECK(a.step == b.step);
    CHECK(a.epoch == b.epoch);  // exact: shortest round-trip text
    if (std::isnan(a.loss)) {
      CHECK(std::isnan(b.loss));
    } else {
      CHECK(a.loss == b.loss);
    }
    CHECK(a.eval_loss == b.eval_loss);
    CHECK(a.lr == b.lr);
    CHECK(a.grad_norm == b.grad_norm);
    CHECK(a.tokens == b.tokens);
    CHECK(a.tokens_per_s == b.tokens_per_s);
    CHECK(a.elapsed_s == b.elapsed_s);
  }
  CHECK_FALSE((*back)[0].eval_loss.has_value());
  CHECK((*back)[9].eval_loss.has_value());

  // No rows: a header-only file that reads back as no rows.
  REQUIRE(WriteLossCsv(path, {}).ok());
  auto empty = ReadLossCsv(path);
  REQUIRE(empty.ok());
  CHECK(empty->empty());
}

TEST_CASE("loss CSV is replaced atomically, leaving no temporary behind", "[log]") {
  const std::string dir = testing::TempDir() + "/atomic";
  fs::create_directories(dir);
  const std::string path = dir + "/loss.csv";
  REQUIRE(WriteLossCsv(path, FallingRun(50, 0)).ok());
  // Hard-link the old file: an atomic replace gives the path a new inode and
  // leaves the old contents intact under the link; an in-place rewrite
  // would change what the link sees.
  const std::string link = dir + "/old.csv";
  REQUIRE(::link(path.c_str(), link.c_str()) == 0);
  const std::string before = Slurp(link);
  REQUIRE(WriteLossCsv(path, FallingRun(3, 0)).ok());
  CHECK(Slurp(link) == before);
  CHECK(Slurp(path) != before);
  REQUIRE(ReadLossCsv(path).ok());
  CHECK(ReadLossCsv(path)->size() == 3);
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    INFO(e.path());
    ++files;
  }
  CHECK(files == 2);  // loss.csv and old.csv, no *.tmp.*

  // A directory that does not exist: an error, not a crash.
  const absl::Status s = WriteLossCsv(dir + "/missing/loss.csv", {});
  CHECK_FALSE(s.ok());
  CHECK(ReadLossCsv(dir + "/nope.csv").status().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("malformed loss CSV: an error naming the line", "[log]") {
  const std::string path = testing::TempDir() + "/bad.csv";
  const std::string header = "step,epoch,loss,eval_loss,lr,grad_norm,tokens,tokens_per_s,elapsed_s\n";
  const std::string good = "1,0.1,2.5,,1e-4,0.7,256,800,0.3\n";
  const auto read_error = [&](const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
    auto r = ReadLossCsv(path);
    CHECK_FALSE(r.ok());
    return std::string(r.status().message());
  };
  struct Case {
    std::string text, where, why;
  };
  const std::vector<Case> cases = {
      {"", ":1:", "header"},
      {"step,loss\n" + good, ":1:", "header"},
      {header + good + "2,0.2,2.4,,1e-4,0.7,512,800\n", ":3:", "expected 9 fields, found 8"},
      {header + good + good + "3,0.3,abc,,1e-4,0.7,768,800,0.9\n", ":4:", "loss"},
      {header + "1.5,0.1,2.5,,1e-4,0.7,256,800,0.3\n", ":2:", "step"},
      {header + "1,0.1,2.5,x,1e-4,0.7,256,800,0.3\n", ":2:", "eval_loss"},
      {header + "1,0.1,2.5,,1e-4,0.7,256,800,0.3,9\n", ":2:", "found 10"},
      {header + good + "\n" + good, ":3:", "empty line"},
      {header + "1,0.1,2.5,,1e-4,0.7,,800,0.3\n", ":2:", "tokens"},
  };
  for (const Case& c : cases) {
    const std::string message = read_error(c.text);
    INFO(message);
    CHECK(message.find(path + c.where) != std::string::npos);
    CHECK(message.find(c.why) != std::string::npos);
  }
  // Windows line ends and a trailing blank line are fine.
  std::ofstream(path, std::ios::binary) << "step,epoch,loss,eval_loss,lr,grad_norm,tokens,"
                                           "tokens_per_s,elapsed_s\r\n1,0.1,2.5,,1e-4,0.7,256,800,0.3\r\n\n";
  auto ok = ReadLossCsv(path);
  REQUIRE(ok.ok());
  REQUIRE(ok->size() == 1);
  CHECK((*ok)[0].tokens == 256);
  CHECK((*ok)[0].elapsed_s == 0.3);
}

TEST_CASE("progress line", "[log]") {
  LogRow r;
  r.step = 12;
  r.loss = 2.31414;
  r.eval_loss = 2.40008;
  r.lr = 1e-4;
  r.tokens_per_s = 841.6;
  CHECK(ProgressLine(r, 300, 312.0) ==
        "step 12/300 | loss 2.3141 | eval 2.4001 | lr 1.0e-04 | 842 tok/s | ETA 5m12s");
  r.eval_loss.reset();
  r.lr = 3.21e-5;
  CHECK(ProgressLine(r, 300, 3723.4) ==
        "step 12/300 | loss 2.3141 | lr 3.2e-05 | 842 tok/s | ETA 1h02m03s");
  CHECK(ProgressLine(r, 300, 42.0).ends_with("| ETA 42s"));
  CHECK(ProgressLine(r, 300, 0.2).ends_with("| ETA 0s"));
  CHECK(ProgressLine(r, 300, 65.0).ends_with("| ETA 1m05s"));
  CHECK(ProgressLine(r, 300, 3600.0).ends_with("| ETA 1h00m00s"));
  CHECK(ProgressLine(r, 300, 100.0 * 3600).ends_with("| ETA 100h00m00s"));
  CHECK(ProgressLine(r, 300, std::nan("")).ends_with("| ETA ?"));
  CHECK(ProgressLine(r, 300, -1.0).ends_with("| ETA ?"));
  CHECK(ProgressLine(r, 0, 1.0).rfind("step 12 | loss", 0) == 0);
}

TEST_CASE("EncodePng: a valid PNG with the same pixels, across stored blocks", "[log]") {
  if (!HavePython()) {
    WARN("skipped: " << Python() << " is missing");
    return;
  }
  // 3x2 and 211x157 (99,620 bytes of scanlines: two stored blocks).
  for (const auto& [w, h] : std::vector<std::pair<int, int>>{{3, 2}, {211, 157}, {1, 1}}) {
    std::vector<uint8_t> rgb(static_cast<size_t>(w) * h * 3);
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        uint8_t* p = &rgb[(static_cast<size_t>(y) * w + x) * 3];
        p[0] = static_cast<uint8_t>(x * 7 + y * 13);
        p[1] = static_cast<uint8_t>(x * y);
        p[2] = static_cast<uint8_t>(255 - x - y);
      }
    }
    const std::vector<uint8_t> png = EncodePng(rgb, w, h);
    REQUIRE(!png.empty());
    const std::string path = testing::TempDir() + "/enc.png";
    const std::string raw = testing::TempDir() + "/enc.rgb";
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(png.data()),
                                                static_cast<std::streamsize>(png.size()));
    const nlohmann::json j = ReadPng(path, "--raw-out " + raw);
    CHECK(j.value("width", 0) == w);
    CHECK(j.value("height", 0) == h);
    const std::string decoded = Slurp(raw);
    CHECK(decoded == std::string(rgb.begin(), rgb.end()));
  }
  // A flipped CRC bit is caught by the reader (the check can fail).
  std::vector<uint8_t> png = EncodePng(std::vector<uint8_t>(12, 9), 2, 2);
  png[8 + 8 + 13] ^= 1;  // IHDR's CRC
  const std::string bad = testing::TempDir() + "/bad.png";
  std::ofstream(bad, std::ios::binary).write(reinterpret_cast<const char*>(png.data()),
                                             static_cast<std::streamsize>(png.size()));
  const std::string out = RunCommand(Python() + " " + YUAN_SOURCE_DIR +
                                     "/tests/trainer/read_png.py " + bad);
  CHECK(out.find("CRC mismatch") != std::string::npos);
  // Bad sizes give an empty result.
  CHECK(EncodePng(std::vector<uint8_t>(11), 2, 2).empty());
  CHECK(EncodePng({}, 0, 0).empty());
}

// Columns of one colour's pixels: x -> mean y.
std::map<int, double> Columns(const nlohmann::json& colour) {
  std::map<int, double> m;
  for (const auto& [x, y] : colour["columns"].items()) m[std::stoi(x)] = y.get<double>();
  return m;
}

double MedianY(const std::map<int, double>& columns, int x_lo, int x_hi) {
  std::vector<double> ys;
  for (const auto& [x, y] : columns) {
    if (x >= x_lo && x < x_hi) ys.push_back(y);
  }
  if (ys.empty()) return std::nan("");
  std::sort(ys.begin(), ys.end());
  return ys[ys.size() / 2];
}

TEST_CASE("loss plot: both series drawn, a falling curve falls", "[log]") {
  if (!HavePython()) {
    WARN("skipped: " << Python() << " is missing");
    return;
  }
  const std::string path = testing::TempDir() + "/loss.png";
  const std::string colours = std::string("--colour ") + kLossColour + " --colour " + kEvalColour;

  REQUIRE(WriteLossPlot(path, FallingRun(300, 25)).ok());
  nlohmann::json j = ReadPng(path, colours);
  REQUIRE(j["colours"].size() == 2);
  CHECK(j["width"] == 800);
  CHECK(j["height"] == 480);
  const int loss_pixels = j["colours"][0]["count"];
  const int eval_pixels = j["colours"][1]["count"];
  CHECK(loss_pixels > 500);
  CHECK(eval_pixels > 200);
  // Falling: the curve's pixels sit higher (smaller y) in the left quarter
  // of the columns it covers than in the right quarter.
  const std::map<int, double> loss = Columns(j["colours"][0]);
  REQUIRE(loss.size() > 100);
  const int x0 = loss.begin()->first, x1 = loss.rbegin()->first;
  const double left = MedianY(loss, x0, x0 + (x1 - x0) / 4);
  const double right = MedianY(loss, x1 - (x1 - x0) / 4, x1 + 1);
  INFO("median y left " << left << ", right " << right);
  CHECK(left + 100 < right);
  // The eval curve too.
  const std::map<int, double> eval = Columns(j["colours"][1]);
  REQUIRE(eval.size() > 50);
  CHECK(MedianY(eval, eval.begin()->first, eval.begin()->first + 60) + 100 <
        MedianY(eval, eval.rbegin()->first - 60, eval.rbegin()->first + 1));

  // A rising curve draws the other way round (the check can fail).
  std::vector<LogRow> rising = FallingRun(300, 0);
  for (LogRow& r : rising) r.loss = -r.loss;
  REQUIRE(WriteLossPlot(path, rising).ok());
  j = ReadPng(path, colours);
  const std::map<int, double> up = Columns(j["colours"][0]);
  REQUIRE(!up.empty());
  const int u0 = up.begin()->first, u1 = up.rbegin()->first;
  CHECK(MedianY(up, u0, u0 + (u1 - u0) / 4) > MedianY(up, u1 - (u1 - u0) / 4, u1 + 1) + 100);
  // Without eval rows there is no eval colour at all (legend included).
  CHECK(j["colours"][1]["count"] == 0);
}

TEST_CASE("loss plot: one row, non-finite values, huge step counts, odd sizes", "[log]") {
  if (!HavePython()) {
    WARN("skipped: " << Python() << " is missing");
    return;
  }
  const std::string path = testing::TempDir() + "/edge.png";
  const std::string colours = std::string("--colour ") + kLossColour + " --colour " + kEvalColour;

  // The legend alone: every loss non-finite, so only its sample line.
  std::vector<LogRow> all_nan = FallingRun(5, 0);
  for (LogRow& r : all_nan) r.loss = std::nan("");
  REQUIRE(WriteLossPlot(path, all_nan).ok());
  nlohmann::json j = ReadPng(path, colours);
  const int legend_only = j["colours"][0]["count"];
  CHECK(legend_only > 0);
  CHECK(j["colours"][1]["count"] == 0);

  // One row: a visible loss mark (more than a pixel), and with an eval loss
  // an eval mark.
  std::vector<LogRow> one = FallingRun(1, 0);
  REQUIRE(WriteLossPlot(path, one).ok());
  j = ReadPng(path, colours);
  CHECK(j["colours"][0]["count"].get<int>() >= legend_only + 9);
  one[0].eval_loss = 2.0;
  REQUIRE(WriteLossPlot(path, one).ok());
  j = ReadPng(path, colours);
  CHECK(j["colours"][0]["count"].get<int>() >= legend_only + 9);
  CHECK(j["colours"][1]["count"].get<int>() > 9);

  // No rows: empty axes, still a valid image.
  REQUIRE(WriteLossPlot(path, {}).ok());
  ReadPng(path);

  // NaN and inf are skipped; the finite rest is drawn and the y range is
  // not blown up by them (the curve spans a good part of the height).
  std::vector<LogRow> holes = FallingRun(200, 20);
  holes[10].loss = std::nan("");
  holes[50].loss = std::numeric_limits<double>::infinity();
  holes[51].loss = -std::numeric_limits<double>::infinity();
  holes[99].eval_loss = std::nan("");
  holes[119].eval_loss = std::numeric_limits<double>::infinity();
  REQUIRE(WriteLossPlot(path, holes).ok());
  j = ReadPng(path, colours);
  const std::map<int, double> cols = Columns(j["colours"][0]);
  REQUIRE(cols.size() > 100);
  CHECK(MedianY(cols, cols.rbegin()->first - 50, cols.rbegin()->first + 1) -
            MedianY(cols, cols.begin()->first, cols.begin()->first + 50) >
        150);
  // A million steps at huge step numbers: fast and drawn across the width.
  std::vector<LogRow> big;
  big.reserve(1000000);
  for (int64_t i = 0; i < 1000000; ++i) {
    LogRow r;
    r.step = 4000000000LL + i * 1000;
    r.loss = 2.0 + std::exp(-i / 2e5) + 0.1 * std::sin(static_cast<double>(i));
    if (i % 100000 == 0) r.eval_loss = 2.0 + std::exp(-i / 2e5);
    big.push_back(r);
  }
  REQUIRE(WriteLossPlot(path, big).ok());
  j = ReadPng(path, colours);
  const std::map<int, double> wide = Columns(j["colours"][0]);
  CHECK(wide.size() > 600);
  CHECK(j["colours"][1]["count"].get<int>() > 100);

  // Other sizes, including the smallest allowed; bad sizes are errors.
  REQUIRE(WriteLossPlot(path, FallingRun(50, 10), 160, 120).ok());
  j = ReadPng(path, colours);
  CHECK(j["width"] == 160);
  CHECK(j["colours"][0]["count"].get<int>() > 50);
  REQUIRE(WriteLossPlot(path, FallingRun(50, 10), 1600, 960).ok());
  CHECK(ReadPng(path)["height"] == 960);
  CHECK(WriteLossPlot(path, one, 10, 10).code() == absl::StatusCode::kInvalidArgument);
  CHECK(WriteLossPlot(path, one, 100000, 480).code() == absl::StatusCode::kInvalidArgument);
  CHECK_FALSE(WriteLossPlot(testing::TempDir() + "/no/such/dir/x.png", one).ok());
}

}  // namespace
}  // namespace yuan::train
