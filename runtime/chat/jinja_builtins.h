// The library of the Jinja subset: filters, tests, attribute and item access,
// methods of Python's str/dict (s.startswith, d.items, ...) and the globals
// HF templates use. Each follows jinja2 3.1 / Python 3 behaviour.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "runtime/chat/jinja_value.h"

namespace yuan::jinja {

bool IsFilter(std::string_view name);
bool IsTest(std::string_view name);
// Filters and tests of jinja2 that this subset does not implement (named in
// the error message as unsupported rather than unknown).
bool IsUnsupportedJinjaFilter(std::string_view name);

absl::StatusOr<Value> ApplyFilter(std::string_view name, const Value& input, const CallArgs& args);
absl::StatusOr<bool> ApplyTest(std::string_view name, const Value& input, const CallArgs& args);

// jinja2's environment.getattr (obj.name): a method of the object's type, else
// the item; a missing one gives Undefined; any access on Undefined fails.
absl::StatusOr<Value> GetAttr(const Value& obj, const std::string& name);
// environment.getitem (obj[key]), including negative list indexes.
absl::StatusOr<Value> GetItem(const Value& obj, const Value& key);
// obj[start:stop:step] on lists and strings (null parts: Undefined values).
absl::StatusOr<Value> GetSlice(const Value& obj, const Value& start, const Value& stop,
                               const Value& step);

// Items iterated by `for` and by filters: list items, dict keys, string
// characters; Undefined iterates as empty.
absl::StatusOr<List> Iterate(const Value& v);

// range, namespace, dict, raise_exception, strftime_now.
Dict MakeGlobals();

// "'x' is undefined" style error for an operation on an Undefined value.
absl::Status UndefinedError(const Value& undefined);

}  // namespace yuan::jinja
