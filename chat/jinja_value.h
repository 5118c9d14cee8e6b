// The values a chat template computes with, with Python's semantics for the operations templates
// use: truthiness, str(), repr(), ==, <, and jinja2's tojson. Internal to chat/jinja*.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace lmstream::jinja {

struct Value;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<std::string, Value>>;  // insertion-ordered, string keys
struct Args;
using Function = std::function<Value(Args&)>;

struct Value {
  enum class Kind {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,
    kDict,
    kNamespace,
    kFunction
  };
  Kind kind = Kind::kUndefined;
  bool b = false;
  bool is_tuple = false;  // a list written (a, b): repr uses parentheses
  int64_t i = 0;
  double f = 0;
  std::string s;  // string value; for undefined, the missing name (for error messages)
  std::shared_ptr<List> list;
  std::shared_ptr<Dict> dict;  // dict or namespace (namespaces are mutable and shared)
  std::shared_ptr<Function> fn;

  static Value undefined(std::string name = {}) {
    Value v;
    v.s = std::move(name);
    return v;
  }
  static Value none() {
    Value v;
    v.kind = Kind::kNone;
    return v;
  }
  static Value boolean(bool x) {
    Value v;
    v.kind = Kind::kBool;
    v.b = x;
    return v;
  }
  static Value integer(int64_t x) {
    Value v;
    v.kind = Kind::kInt;
    v.i = x;
    return v;
  }
  static Value number(double x) {
    Value v;
    v.kind = Kind::kFloat;
    v.f = x;
    return v;
  }
  static Value string(std::string x) {
    Value v;
    v.kind = Kind::kString;
    v.s = std::move(x);
    return v;
  }
  static Value make_list(List x = {}) {
    Value v;
    v.kind = Kind::kList;
    v.list = std::make_shared<List>(std::move(x));
    return v;
  }
  static Value make_dict(Dict x = {}) {
    Value v;
    v.kind = Kind::kDict;
    v.dict = std::make_shared<Dict>(std::move(x));
    return v;
  }
  static Value function(Function f) {
    Value v;
    v.kind = Kind::kFunction;
    v.fn = std::make_shared<Function>(std::move(f));
    return v;
  }

  bool is_undefined() const { return kind == Kind::kUndefined; }
  bool is_string() const { return kind == Kind::kString; }
  bool is_number() const {
    return kind == Kind::kInt || kind == Kind::kFloat || kind == Kind::kBool;
  }
  bool is_mapping() const { return kind == Kind::kDict || kind == Kind::kNamespace; }
};

// Call arguments: positional then keyword, as written.
struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  // The argument named name, or at position index, or nullptr.
  const Value* get(size_t index, std::string_view name) const;
};

// Thrown by value operations; the evaluator adds the template position.
struct ValueError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// JSON objects become dicts in the JSON value's key order (ordered_json: insertion order).
Value from_json(const nlohmann::json& j);
Value from_json(const nlohmann::ordered_json& j);
const Value* dict_find(const Dict& d, std::string_view key);
void dict_set(Dict& d, const std::string& key, Value v);

bool truthy(const Value& v);
std::string type_name(const Value& v);  // Python's type name, for messages
std::string to_str(const Value& v);     // Python str(); undefined -> ""
std::string repr(const Value& v);       // Python repr()
std::string py_float_repr(double d);
// transformers' tojson filter: json.dumps(v, ensure_ascii, indent, sort_keys); indent < 0: one
// line.
std::string to_json(const Value& v, int indent, bool sort_keys = false, bool ensure_ascii = false);
bool equals(const Value& a, const Value& b);
int compare(const Value& a, const Value& b);  // <0, 0, >0; throws ValueError when unorderable

// Strings are UTF-8 bytes seen as Python str: characters come from base/utf8.h's
// utf8::characters (a byte that starts no well-formed character is one of its own).
// True when ch, one such character, is Python whitespace (str.isspace()).
bool is_space_char(std::string_view ch);
std::string py_strip(std::string_view s, bool left, bool right, const std::string* chars = nullptr);

}  // namespace lmstream::jinja
