// Runs tests/chat/render_reference.py (Python's jinja2, configured as HF
// transformers configures it) on a batch of (template, context) cases.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "runtime/chat/jinja_value.h"

namespace yuan::testing {

struct ReferenceCase {
  std::string template_source;
  jinja::Dict context;
};

struct ReferenceResult {
  bool ok = false;
  std::string out;    // rendered text when ok
  std::string error;  // Python's exception when not
};

// One result per case, or nullopt (after a WARN) when /usr/bin/python3 cannot
// import jinja2, so callers skip. Fails the test on any other problem.
std::optional<std::vector<ReferenceResult>> RenderWithJinja2(
    const std::vector<ReferenceCase>& cases);

// Reads tests/chat/templates/<file>.
std::string ReadChatTemplate(const std::string& file);

}  // namespace yuan::testing
