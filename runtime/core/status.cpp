#include "runtime/core/status.h"

#include "absl/strings/cord.h"

namespace yuan {
namespace {
constexpr char kFormatTag[] = "yuan.format";
}  // namespace

absl::Status FormatError(std::string_view message) {
  absl::Status status(absl::StatusCode::kInvalidArgument,
                      absl::string_view(message.data(), message.size()));
  status.SetPayload(kFormatTag, absl::Cord("1"));
  return status;
}

bool IsFormatError(const absl::Status& status) {
  return status.GetPayload(kFormatTag).has_value();
}

}  // namespace yuan
