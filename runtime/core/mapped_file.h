// A read-only view of a whole file, memory-mapped (weights stay in the page
// cache and are shared between processes) or, for tests and fuzzing, a
// borrowed in-memory buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace yuan {

class MappedFile {
 public:
  // Maps `path` read-only. NOT_FOUND / PERMISSION_DENIED / INVALID_ARGUMENT
  // (a directory, an empty file) with the path in the message.
  static absl::StatusOr<std::unique_ptr<MappedFile>> Open(const std::string& path);
  // Wraps memory the caller keeps alive longer than this object.
  static std::unique_ptr<MappedFile> Borrow(const void* data, size_t size,
                                            std::string path = "<memory>");

  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // A file mapping (Open), whose pages ReleaseMappedPages may drop; false
  // for borrowed memory.
  bool mapped() const { return mapped_; }

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  std::string path_;
};

// Drops the whole pages inside [p, p + n) of a read-only file mapping from
// this process's resident memory. The data stays in the file (and the page
// cache) and is read back if touched again. Only for memory mapped by
// MappedFile::Open: anonymous memory would read back as zeros.
void ReleaseMappedPages(const void* p, size_t n);

}  // namespace yuan
