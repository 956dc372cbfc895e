// Status helpers shared by every room. Internally all fallible code returns
// absl::Status / absl::StatusOr<T>; only sdk/src converts them to yuan_status.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace yuan {

// Debian's Abseil (20220623) is built with its own absl::string_view, which
// absl::StrCat and absl::Status do not accept from std::string_view (the
// type of our interfaces). Wrap such arguments: StrCat("key ", Sv(name)).
inline absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// A malformed model, tokenizer or adapter file. sdk/src maps this to
// YUAN_ERR_FORMAT (absl has no code of its own for it, so we tag the payload).
absl::Status FormatError(std::string_view message);
bool IsFormatError(const absl::Status& status);

}  // namespace yuan

#define YUAN_CONCAT_INNER_(a, b) a##b
#define YUAN_CONCAT_(a, b) YUAN_CONCAT_INNER_(a, b)

// Returns from the enclosing function when `expr` is not OK.
#define YUAN_RETURN_IF_ERROR(expr)                 \
  do {                                             \
    ::absl::Status yuan_status_ = (expr);          \
    if (!yuan_status_.ok()) return yuan_status_;   \
  } while (0)

// `YUAN_ASSIGN_OR_RETURN(auto x, Foo());` declares x from an OK StatusOr or
// returns its error.
#define YUAN_ASSIGN_OR_RETURN(lhs, expr) \
  YUAN_ASSIGN_OR_RETURN_IMPL_(YUAN_CONCAT_(yuan_statusor_, __LINE__), lhs, expr)
#define YUAN_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()
