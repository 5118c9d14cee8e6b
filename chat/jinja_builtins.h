// Operators, filters, tests, attribute/item access and string/dict methods of template values,
// with jinja2's (and Python's) semantics for the subset chat templates use. Internal to
// chat/jinja*. Errors are thrown as ValueError; the evaluator adds the position.
#pragma once

#include <cstdint>
#include <string>

#include "chat/jinja_value.h"

namespace lmstream::jinja {

// Work and size accounting shared by everything that builds values.
struct Budget {
  uint64_t used = 0;
  uint64_t max_work;
  size_t max_bytes;
  void charge(uint64_t n) {
    used += n;
    if (used > max_work) throw ValueError("template work limit exceeded");
  }
  void check_size(size_t n) const {
    if (n > max_bytes) throw ValueError("template value exceeds the output size limit");
  }
};

Value binary_op(const std::string& op, const Value& a, const Value& b, Budget& budget);
Value negate(const Value& v);
bool contains(const Value& container, const Value& item);

// obj.name: a dict key, namespace attribute, or a bound string/dict method; undefined if none.
Value get_attr(const Value& obj, const std::string& name);
// obj[key]: dict key, list/string index; undefined if missing.
Value get_item(const Value& obj, const Value& key);
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step,
            Budget& budget);

// The items "for x in v" visits (dict: keys; string: characters; undefined: none).
List iterate(const Value& v);
int64_t length(const Value& v);

bool has_filter(const std::string& name);
Value call_filter(const std::string& name, const Value& v, Args& args, Budget& budget);
bool has_test(const std::string& name);
bool call_test(const std::string& name, const Value& v, Args& args);

}  // namespace lmstream::jinja
