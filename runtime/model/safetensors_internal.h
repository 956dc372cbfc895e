// JSON parsing shared by the safetensors reader and the Hugging Face folder
// loader (not part of the public model API: it exposes nlohmann::json).
#pragma once

#include <string>
#include <string_view>

#include "nlohmann/json.hpp"

namespace yuan::internal {

// Parses [first, last) as one JSON value without letting any exception
// escape. Duplicate keys in an object are an error (nlohmann would keep one
// silently). On failure returns false and a short reason in `error`.
bool ParseJsonNoThrow(const char* first, const char* last, nlohmann::json* out,
                      std::string* error);

// "unsigned integer", "string", "object", ... for messages; never throws.
std::string JsonTypeName(const nlohmann::json& j);

// Printable ASCII, other bytes as \xNN, cut at 80 bytes (for messages).
std::string Printable(std::string_view s);

}  // namespace yuan::internal
