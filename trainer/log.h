// Watching a run: the loss log as CSV and a plot of it as a PNG image.
//
// The CSV has one row per optimizer step:
//   step,epoch,loss,eval_loss,lr,grad_norm,tokens,tokens_per_s,elapsed_s
// eval_loss empty on steps without an evaluation. The PNG (written next to
// the CSV, same name with .png) draws loss and eval loss against the step,
// with labelled axes; it is rewritten at each evaluation and at the end.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace yuan::train {

struct LogRow {
  int64_t step = 0;  // 1-based optimizer step
  double epoch = 0.0;
  double loss = 0.0;
  std::optional<double> eval_loss;
  double lr = 0.0;
  double grad_norm = 0.0;
  int64_t tokens = 0;  // tokens seen so far
  double tokens_per_s = 0.0;
  double elapsed_s = 0.0;
};

// Writes the CSV header + rows (the whole file, atomically: temp + rename, so
// a resumed run rewrites it from its checkpointed rows).
absl::Status WriteLossCsv(const std::string& path, const std::vector<LogRow>& rows);
// Reads a file written by WriteLossCsv (for resuming and tests).
absl::StatusOr<std::vector<LogRow>> ReadLossCsv(const std::string& path);

// Draws loss (and eval loss, as points joined by a line) over the step as a
// width x height RGB PNG: axes with tick labels, a legend. Uncompressed
// deflate (stored blocks), so no zlib is needed; any PNG reader opens it.
absl::Status WriteLossPlot(const std::string& path, const std::vector<LogRow>& rows,
                           int width = 800, int height = 480);

// The PNG encoder on its own: 8-bit RGB rows, top to bottom.
std::vector<uint8_t> EncodePng(const std::vector<uint8_t>& rgb, int width, int height);

// The progress line printed each step:
//   "step 12/300 | loss 2.3141 | eval 2.4001 | lr 1.0e-04 | 842 tok/s | ETA 5m12s"
std::string ProgressLine(const LogRow& row, int64_t total_steps, double eta_s);

}  // namespace yuan::train
