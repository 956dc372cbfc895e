#include "runtime/model/safetensors_writer.h"

#include <cstdio>
#include <cstring>
#include <memory>

#include "nlohmann/json.hpp"
#include "runtime/core/status.h"
#include "runtime/model/safetensors.h"

namespace yuan {

void SafetensorsWriter::AddTensor(std::string_view name, std::string_view dtype,
                                  std::vector<int64_t> shape, const void* data, size_t n_bytes) {
  Tensor t;
  t.name = std::string(name);
  t.dtype = std::string(dtype);
  t.shape = std::move(shape);
  const uint8_t* p = static_cast<const uint8_t*>(data);
  t.data.assign(p, p + n_bytes);
  tensors_.push_back(std::move(t));
}

void SafetensorsWriter::AddTensor(std::string_view name, DType type, std::vector<int64_t> shape,
                                  const void* data, size_t n_bytes) {
  AddTensor(name, SafetensorsDTypeName(type), std::move(shape), data, n_bytes);
}

void SafetensorsWriter::AddTensorF32(std::string_view name, DType type, std::vector<int64_t> shape,
                                     const float* values) {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  std::vector<uint8_t> bytes;
  if (type == DType::kF16 || type == DType::kBF16) {
    bytes.resize(n * 2);
    for (size_t i = 0; i < n; ++i) {
      const uint16_t h = type == DType::kF16 ? F32ToF16(values[i]) : F32ToBF16(values[i]);
      std::memcpy(bytes.data() + 2 * i, &h, 2);
    }
  } else {
    type = DType::kF32;
    bytes.resize(n * 4);
    if (n != 0) std::memcpy(bytes.data(), values, n * 4);
  }
  AddTensor(name, type, std::move(shape), bytes.data(), bytes.size());
}

void SafetensorsWriter::AddMetadata(std::string_view key, std::string_view value) {
  metadata_.emplace_back(std::string(key), std::string(value));
}

std::vector<uint8_t> SafetensorsWriter::Serialize() const {
  // The header is written by hand so that tensors keep the order they were
  // added in; nlohmann only escapes the strings.
  auto quote = [](const std::string& s) {
    return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  std::string header = "{";
  bool first = true;
  if (!metadata_.empty()) {
    header += "\"__metadata__\":{";
    for (size_t i = 0; i < metadata_.size(); ++i) {
      if (i) header += ",";
      header += quote(metadata_[i].first) + ":" + quote(metadata_[i].second);
    }
    header += "}";
    first = false;
  }
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    if (!first) header += ",";
    first = false;
    header += quote(t.name) + ":{\"dtype\":" + quote(t.dtype) + ",\"shape\":[";
    for (size_t d = 0; d < t.shape.size(); ++d) {
      if (d) header += ",";
      header += std::to_string(t.shape[d]);
    }
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(offset + t.data.size()) + "]}";
    offset += t.data.size();
  }
  header += "}";
  while (header.size() % 8 != 0) header += ' ';

  std::vector<uint8_t> out(8);
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  out.insert(out.end(), header.begin(), header.end());
  for (const Tensor& t : tensors_) out.insert(out.end(), t.data.begin(), t.data.end());
  return out;
}

absl::Status SafetensorsWriter::WriteFile(const std::string& path) const {
  for (const Tensor& t : tensors_) {
    const std::optional<SafetensorsDTypeInfo> info = GetSafetensorsDType(t.dtype);
    if (!info) return absl::InvalidArgumentError(absl::StrCat("unknown dtype '", t.dtype, "'"));
    uint64_t n = static_cast<uint64_t>(info->size);
    for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
    if (n != t.data.size()) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", t.name, "' has ", t.data.size(),
                                                     " bytes, its dtype and shape need ", n));
    }
  }
  const std::vector<uint8_t> bytes = Serialize();
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!f) return absl::PermissionDeniedError(absl::StrCat("cannot write '", path, "'"));
  if (std::fwrite(bytes.data(), 1, bytes.size(), f.get()) != bytes.size()) {
    return absl::DataLossError(absl::StrCat("short write to '", path, "'"));
  }
  if (std::fclose(f.release()) != 0) {
    return absl::DataLossError(absl::StrCat("cannot close '", path, "'"));
  }
  return absl::OkStatus();
}

}  // namespace yuan
