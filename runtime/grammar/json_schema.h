// JSON Schema (a draft 2020-12 subset) -> GBNF, so generation can be held to
// a schema. docs/structured-output.md lists the supported keywords and the
// regular-expression subset of `pattern`.
//
// The grammar is sound, not complete: every text it accepts validates
// against the schema, but it emits one compact layout (properties in
// `properties` order, required ones first; at most one space after ':' and
// ','), so some valid documents are not generated. Every function here is
// thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace yuan::grammar {

// GBNF text whose rule "root" matches JSON documents valid under `schema`.
// InvalidArgument naming the keyword and its JSON pointer (e.g. "keyword
// 'uniqueItems' at /properties/tags is not supported") for a keyword that
// affects validity but is not supported, for an unsatisfiable schema
// (false, minItems > maxItems, ...) and for a $ref that is not local ("#...").
// Annotations (title, description, examples, default, $schema, $id,
// $comment, ...) and unknown keywords are ignored, as validators do.
// With nlohmann::json, whose objects sort their keys, properties come out in
// alphabetical order; the ordered_json and text overloads keep the schema's
// order.
absl::StatusOr<std::string> JsonSchemaToGbnf(const nlohmann::json& schema);
absl::StatusOr<std::string> JsonSchemaToGbnf(const nlohmann::ordered_json& schema);
// The same from JSON text (order kept); InvalidArgument when it is not JSON.
absl::StatusOr<std::string> JsonSchemaToGbnf(std::string_view schema_json);
// (Text overloads, so a std::string or literal is not taken for a JSON string value.)
inline absl::StatusOr<std::string> JsonSchemaToGbnf(const std::string& schema_json) {
  return JsonSchemaToGbnf(std::string_view(schema_json));
}
inline absl::StatusOr<std::string> JsonSchemaToGbnf(const char* schema_json) {
  return JsonSchemaToGbnf(std::string_view(schema_json));
}

// GBNF for any JSON object (OpenAI's response_format {"type": "json_object"}).
std::string JsonObjectGbnf();

// A `pattern` regular expression -> a GBNF expression over the JSON-encoded
// content of a string (no quotes), with anchors handled as JSON Schema does
// (unanchored patterns may have any text around them); it refers to the rule
// `char` (one JSON string character) that JsonSchemaToGbnf defines.
// InvalidArgument for syntax outside the documented subset.
absl::StatusOr<std::string> PatternToGbnf(std::string_view pattern);

// A GBNF string literal ("...") for UTF-8 text, with the escapes GBNF needs.
std::string GbnfLiteral(std::string_view text);

}  // namespace yuan::grammar
