#include "runtime/model/model.h"

#include <limits>

#include "absl/strings/str_join.h"
#include "runtime/core/status.h"

namespace yuan {

// Defined in each arch_*.cpp; listed here so static linking keeps them.
extern const ArchInfo kLlamaArch;

namespace {
const ArchInfo* const kArchs[] = {&kLlamaArch};
}  // namespace

const ArchInfo* FindArch(std::string_view name) {
  for (const ArchInfo* a : kArchs) {
    if (name == a->name) return a;
  }
  return nullptr;
}

std::vector<std::string> KnownArchs() {
  std::vector<std::string> names;
  for (const ArchInfo* a : kArchs) names.emplace_back(a->name);
  return names;
}

absl::Status BindWeight(const GgufFile& file, const std::string& name, int64_t cols,
                        int64_t rows, bool required, Weight* out) {
  const GgufTensor* t = file.FindTensor(name);
  if (t == nullptr) {
    if (!required) return absl::OkStatus();
    return FormatError(absl::StrCat("tensor '", name, "' is missing"));
  }
  const bool is_2d = rows > 1 || t->n_dims == 2;
  if (t->ne[0] != cols || t->ne[1] != rows || t->ne[2] != 1 || t->ne[3] != 1 ||
      (is_2d && t->n_dims != 2)) {
    return FormatError(absl::StrFormat("tensor '%s' has shape [%d, %d, %d, %d], expected [%d, %d]",
                                       name, t->ne[0], t->ne[1], t->ne[2], t->ne[3], cols, rows));
  }
  auto info = GetDTypeInfo(static_cast<uint32_t>(t->type));
  if (!info || !info->can_compute) {
    return absl::UnimplementedError(absl::StrCat("tensor '", name, "' has type ",
                                                 std::string(DTypeName(t->type)),
                                                 ", which yuan cannot compute with yet"));
  }
  out->type = t->type;
  out->cols = cols;
  out->rows = rows;
  out->data = t->data;
  out->row_bytes = *RowBytes(t->type, cols);  // the reader checked divisibility
  return absl::OkStatus();
}

absl::Status BindVector(const GgufFile& file, const std::string& name, int64_t n, bool required,
                        Weight* out) {
  YUAN_RETURN_IF_ERROR(BindWeight(file, name, n, 1, required, out));
  if (!out->empty() && out->type != DType::kF32) {
    return FormatError(absl::StrCat("tensor '", name, "' is ", std::string(DTypeName(out->type)),
                                    "; 1-D weights must be f32"));
  }
  return absl::OkStatus();
}

absl::StatusOr<int32_t> ArchInt(const GgufFile& file, std::string_view arch,
                                std::string_view suffix, std::optional<int32_t> fallback) {
  const std::string key = absl::StrFormat("%s.%s", arch, suffix);
  absl::StatusOr<int64_t> v = fallback ? file.GetInt(key, *fallback) : file.GetInt(key);
  if (!v.ok()) {
    if (absl::IsNotFound(v.status())) return FormatError(absl::StrCat("missing key '", key, "'"));
    return v.status();
  }
  if (*v <= 0 || *v > (1 << 24)) {
    return FormatError(absl::StrCat("key '", key, "' = ", *v, " is out of range"));
  }
  return static_cast<int32_t>(*v);
}

absl::StatusOr<float> ArchFloat(const GgufFile& file, std::string_view arch,
                                std::string_view suffix, float fallback) {
  const std::string key = absl::StrFormat("%s.%s", arch, suffix);
  YUAN_ASSIGN_OR_RETURN(double v, file.GetFloat(key, fallback));
  if (!(v > 0.0) || v > std::numeric_limits<float>::max()) {
    return FormatError(absl::StrCat("key '", key, "' = ", v, " is out of range"));
  }
  return static_cast<float>(v);
}

absl::StatusOr<std::unique_ptr<Model>> Model::FromGguf(std::shared_ptr<const GgufFile> file) {
  YUAN_ASSIGN_OR_RETURN(std::string_view arch_name, file->GetString("general.architecture"));
  const ArchInfo* arch = FindArch(arch_name);
  if (arch == nullptr) {
    return absl::UnimplementedError(absl::StrCat("architecture '", std::string(arch_name),
                                                 "' is not supported (known: ",
                                                 absl::StrJoin(KnownArchs(), ", "), ")"));
  }
  std::unique_ptr<Model> model(new Model());
  model->config_.arch = std::string(arch_name);
  YUAN_ASSIGN_OR_RETURN(std::string_view name, file->GetString("general.name", ""));
  model->config_.name = std::string(name);
  YUAN_RETURN_IF_ERROR(arch->load_config(*file, &model->config_));
  YUAN_RETURN_IF_ERROR(arch->bind_weights(*file, model->config_, &model->weights_));
  for (const GgufTensor& t : file->tensors()) model->n_params_ += t.n_elements();
  model->file_ = std::move(file);
  return model;
}

absl::StatusOr<std::unique_ptr<Model>> Model::Open(const std::string& path) {
  YUAN_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, GgufFile::Open(path));
  return FromGguf(std::shared_ptr<const GgufFile>(std::move(file)));
}

}  // namespace yuan
