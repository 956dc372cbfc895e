// UTF-8 helpers that give Python str semantics over our byte strings: length,
// indexing and slicing count code points; strip()/split() know Python's
// whitespace set (which includes U+3000 and other Unicode spaces).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace yuan::jinja {

// Code points of s; an invalid byte decodes as itself (U+0080..U+00FF range is
// never produced by valid text, so round trips stay byte-exact).
std::vector<uint32_t> DecodeUtf8(std::string_view s);
void AppendUtf8(uint32_t cp, std::string* out);
std::string EncodeUtf8(const std::vector<uint32_t>& cps, size_t begin, size_t end);
size_t CodePointCount(std::string_view s);

// str.isspace() for one code point.
bool IsPyWhitespace(uint32_t cp);

// str.strip / lstrip / rstrip; chars == nullptr strips whitespace.
std::string PyStrip(std::string_view s, const std::string* chars, bool left, bool right);

// str.upper / str.lower / str.title / str.capitalize. Case mapping covers ASCII,
// Latin-1, Greek and Cyrillic (CJK has no case); see docs/chat-templates.md.
std::string PyUpper(std::string_view s);
std::string PyLower(std::string_view s);
std::string PyTitle(std::string_view s);
std::string PyCapitalize(std::string_view s);

// str.split(sep, maxsplit); sep == nullptr splits on whitespace runs.
std::vector<std::string> PySplit(std::string_view s, const std::string* sep, int64_t maxsplit);

// str.replace(old, new, count); count < 0 replaces all.
std::string PyReplace(std::string_view s, std::string_view from, std::string_view to,
                      int64_t count);

}  // namespace yuan::jinja
