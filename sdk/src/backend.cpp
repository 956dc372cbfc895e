#include "sdk/src/backend.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "yuan/yuan.h"

namespace yuan::api {

absl::StatusOr<std::unique_ptr<Backend>> OpenBackend(const BackendOptions& options) {
  const bool is_url = absl::StartsWith(options.model, "http://") ||
                      absl::StartsWith(options.model, "https://");
  int backend = options.backend;
  if (backend == YUAN_BACKEND_AUTO) backend = is_url ? YUAN_BACKEND_REMOTE : YUAN_BACKEND_CPU;
  switch (backend) {
    case YUAN_BACKEND_CPU:
      if (is_url) return absl::InvalidArgumentError("the CPU backend needs a model file, not a URL");
      return OpenLocalBackend(options);
    case YUAN_BACKEND_CUDA:
      return absl::UnimplementedError("the CUDA backend is not in this build yet");
    case YUAN_BACKEND_REMOTE:
      if (!is_url) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the remote backend needs a server URL (http(s)://host:port/v1), not '",
            options.model, "'"));
      }
      return OpenRemoteBackend(options);
    default:
      return absl::InvalidArgumentError(absl::StrCat("unknown backend ", backend));
  }
}

}  // namespace yuan::api
