// Operators, filters, tests and methods (see jinja_builtins.h).
#include "chat/jinja_builtins.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>

#include "base/strings.h"
#include "base/utf8.h"

namespace lmstream::jinja {
namespace {

using K = Value::Kind;

[[noreturn]] void type_error(const std::string& msg) { throw ValueError(msg); }

std::string arg_str(const Args& a, size_t i, const char* name, const std::string& def,
                    bool required = false) {
  const Value* v = a.get(i, name);
  if (!v) {
    if (required) type_error(std::string("missing argument '") + name + "'");
    return def;
  }
  if (!v->is_string())
    type_error(std::string("argument '") + name + "' must be a string, not " + type_name(*v));
  return v->s;
}

bool is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Python str.title() on ASCII letters: upper after a non-letter, lower after a letter.
std::string py_title(std::string s) {
  bool prev_cased = false;
  for (char& c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (is_alpha(u)) {
      c = prev_cased ? static_cast<char>(std::tolower(u)) : static_cast<char>(std::toupper(u));
      prev_cased = true;
    } else {
      prev_cased = false;
    }
  }
  return s;
}

// jinja2's title filter: words begin after "-", whitespace, "(", "{", "[", "<".
std::string jinja_title(const std::string& s) {
  std::string out;
  bool at_start = true;
  for (char c : s) {
    bool delim = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || c == ' ' ||
                 c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
    unsigned char u = static_cast<unsigned char>(c);
    if (delim) {
      out += c;
      at_start = true;
      continue;
    }
    out += at_start ? static_cast<char>(std::toupper(u)) : static_cast<char>(std::tolower(u));
    at_start = false;
  }
  return out;
}

std::string capitalize(const std::string& s) {
  std::string out = base::to_lower(s);
  if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to,
                        int64_t count, Budget& budget) {
  std::string out;
  if (from.empty()) {  // Python inserts `to` around every character
    std::vector<std::string_view> cps = utf8::characters(s);
    int64_t n = 0;
    for (std::string_view cp : cps) {
      if (count < 0 || n < count) {
        out += to;
        ++n;
      }
      out += cp;
      budget.check_size(out.size());
    }
    if (count < 0 || n < count) out += to;
    budget.check_size(out.size());
    return out;
  }
  size_t pos = 0;
  int64_t n = 0;
  while (count < 0 || n < count) {
    size_t f = s.find(from, pos);
    if (f == std::string::npos) break;
    out.append(s, pos, f - pos).append(to);
    budget.check_size(out.size());
    pos = f + from.size();
    ++n;
  }
  out.append(s, pos);
  budget.check_size(out.size());
  return out;
}

List py_split(const std::string& s, const Value* sep, int64_t maxsplit) {
  List out;
  if (!sep || sep->kind == K::kNone) {
    std::vector<std::string_view> cps = utf8::characters(s);
    size_t i = 0;
    while (i < cps.size()) {
      while (i < cps.size() && is_space_char(cps[i])) ++i;
      if (i >= cps.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit) {
        std::string rest(cps[i].data(), s.data() + s.size());
        out.push_back(Value::string(py_strip(rest, false, true)));
        break;
      }
      size_t j = i;
      while (j < cps.size() && !is_space_char(cps[j])) ++j;
      out.push_back(
          Value::string(std::string(cps[i].data(), cps[j - 1].data() + cps[j - 1].size())));
      i = j;
    }
    return out;
  }
  if (!sep->is_string()) type_error("split() separator must be str or None");
  if (sep->s.empty()) type_error("empty separator");
  size_t pos = 0;
  while (true) {
    size_t f = s.find(sep->s, pos);
    if (f == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit))
      break;
    out.push_back(Value::string(s.substr(pos, f - pos)));
    pos = f + sep->s.size();
  }
  out.push_back(Value::string(s.substr(pos)));
  return out;
}

int64_t arg_int(const Args& a, size_t i, const char* name, int64_t def) {
  const Value* v = a.get(i, name);
  if (!v || v->kind == K::kNone) return def;
  if (v->kind != K::kInt && v->kind != K::kBool)
    type_error(std::string("argument '") + name + "' must be an integer");
  return v->kind == K::kBool ? v->b : v->i;
}

bool affix_match(const std::string& s, const Value& arg, bool prefix) {
  auto one = [&](const Value& x) {
    if (!x.is_string()) type_error("startswith/endswith argument must be str or a tuple of str");
    if (x.s.size() > s.size()) return false;
    return prefix ? s.compare(0, x.s.size(), x.s) == 0
                  : s.compare(s.size() - x.s.size(), x.s.size(), x.s) == 0;
  };
  if (arg.kind == K::kList) {
    for (const Value& x : *arg.list)
      if (one(x)) return true;
    return false;
  }
  return one(arg);
}

Value string_method(const std::string& s, const std::string& name) {
  auto bind = [&](auto f) { return Value::function([s, f](Args& a) -> Value { return f(s, a); }); };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    bool l = name != "rstrip", r = name != "lstrip";
    return bind([l, r](const std::string& self, Args& a) {
      const Value* c = a.get(0, "chars");
      if (c && c->kind != K::kNone && !c->is_string()) type_error("strip arg must be None or str");
      return Value::string(py_strip(self, l, r, c && c->is_string() ? &c->s : nullptr));
    });
  }
  if (name == "upper")
    return bind([](const std::string& self, Args&) { return Value::string(base::to_upper(self)); });
  if (name == "lower")
    return bind([](const std::string& self, Args&) { return Value::string(base::to_lower(self)); });
  if (name == "title")
    return bind([](const std::string& self, Args&) { return Value::string(py_title(self)); });
  if (name == "capitalize")
    return bind([](const std::string& self, Args&) { return Value::string(capitalize(self)); });
  if (name == "startswith" || name == "endswith") {
    bool prefix = name == "startswith";
    return bind([prefix](const std::string& self, Args& a) {
      const Value* v = a.get(0, "prefix");
      if (!v) type_error("startswith/endswith takes one argument");
      return Value::boolean(affix_match(self, *v, prefix));
    });
  }
  if (name == "split")
    return bind([](const std::string& self, Args& a) {
      return Value::make_list(py_split(self, a.get(0, "sep"), arg_int(a, 1, "maxsplit", -1)));
    });
  if (name == "replace")
    return bind([](const std::string& self, Args& a) {
      Budget b{0, UINT64_MAX, 1 << 20};
      return Value::string(replace_all(self, arg_str(a, 0, "old", "", true),
                                       arg_str(a, 1, "new", "", true), arg_int(a, 2, "count", -1),
                                       b));
    });
  if (name == "find")
    return bind([](const std::string& self, Args& a) {
      size_t f = self.find(arg_str(a, 0, "sub", "", true));
      if (f == std::string::npos) return Value::integer(-1);
      return Value::integer(
          static_cast<int64_t>(utf8::characters(std::string_view(self).substr(0, f)).size()));
    });
  return Value::undefined(name);
}

Value dict_method(const Value& d, const std::string& name) {
  if (name == "items")
    return Value::function([d](Args&) {
      List out;
      for (const auto& [k, v] : *d.dict) {
        Value t = Value::make_list({Value::string(k), v});
        t.is_tuple = true;
        out.push_back(std::move(t));
      }
      return Value::make_list(std::move(out));
    });
  if (name == "keys")
    return Value::function([d](Args&) {
      List out;
      for (const auto& kv : *d.dict) out.push_back(Value::string(kv.first));
      return Value::make_list(std::move(out));
    });
  if (name == "values")
    return Value::function([d](Args&) {
      List out;
      for (const auto& kv : *d.dict) out.push_back(kv.second);
      return Value::make_list(std::move(out));
    });
  if (name == "get")
    return Value::function([d](Args& a) {
      const Value* k = a.get(0, "key");
      if (!k) type_error("get() takes at least one argument");
      if (k->is_string())
        if (const Value* v = dict_find(*d.dict, k->s)) return *v;
      const Value* def = a.get(1, "default");
      return def ? *def : Value::none();
    });
  return Value::undefined(name);
}

// Python ints are unbounded; ours are 64-bit and overflow is an error.
int64_t checked_op(char op, int64_t x, int64_t y) {
  int64_t r = 0;
  bool overflow = op == '+'   ? __builtin_add_overflow(x, y, &r)
                  : op == '-' ? __builtin_sub_overflow(x, y, &r)
                              : __builtin_mul_overflow(x, y, &r);
  if (overflow) type_error("integer overflow");
  return r;
}

double num(const Value& v) {
  return v.kind == K::kFloat  ? v.f
         : v.kind == K::kBool ? (v.b ? 1.0 : 0.0)
                              : static_cast<double>(v.i);
}
int64_t inum(const Value& v) { return v.kind == K::kBool ? v.b : v.i; }

[[noreturn]] void unsupported(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) type_error("'" + a.s + "' is undefined");
  if (b.is_undefined()) type_error("'" + b.s + "' is undefined");
  type_error("unsupported operand type(s) for " + op + ": '" + type_name(a) + "' and '" +
             type_name(b) + "'");
}

Value repeat(const Value& seq, int64_t n, Budget& budget) {
  if (n <= 0) return seq.is_string() ? Value::string("") : Value::make_list();
  size_t unit = seq.is_string() ? seq.s.size() : seq.list->size();
  if (unit && static_cast<uint64_t>(n) > budget.max_bytes / unit + 1)
    type_error("template value exceeds the output size limit");
  budget.check_size(unit * static_cast<size_t>(n));
  budget.charge(unit * static_cast<uint64_t>(n));
  if (seq.is_string()) {
    std::string out;
    for (int64_t i = 0; i < n; ++i) out += seq.s;
    return Value::string(std::move(out));
  }
  List out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq.list->begin(), seq.list->end());
  return Value::make_list(std::move(out));
}

Value arith(const std::string& op, const Value& a, const Value& b, Budget& budget) {
  const bool ints =
      (a.kind == K::kInt || a.kind == K::kBool) && (b.kind == K::kInt || b.kind == K::kBool);
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      budget.check_size(a.s.size() + b.s.size());
      budget.charge(a.s.size() + b.s.size());
      return Value::string(a.s + b.s);
    }
    if (a.kind == K::kList && b.kind == K::kList && a.is_tuple == b.is_tuple) {
      budget.check_size(a.list->size() + b.list->size());
      budget.charge(a.list->size() + b.list->size());
      List out(*a.list);
      out.insert(out.end(), b.list->begin(), b.list->end());
      Value r = Value::make_list(std::move(out));
      r.is_tuple = a.is_tuple;
      return r;
    }
  }
  if (op == "*") {
    if ((a.is_string() || a.kind == K::kList) && (b.kind == K::kInt || b.kind == K::kBool))
      return repeat(a, inum(b), budget);
    if ((b.is_string() || b.kind == K::kList) && (a.kind == K::kInt || a.kind == K::kBool))
      return repeat(b, inum(a), budget);
  }
  if (op == "%" && a.is_string()) type_error("printf-style string formatting is not supported");
  if (!a.is_number() || !b.is_number()) unsupported(op, a, b);
  if (ints) {
    int64_t x = inum(a), y = inum(b);
    if (op == "+" || op == "-" || op == "*") return Value::integer(checked_op(op[0], x, y));
    if (op == "/") {
      if (y == 0) type_error("division by zero");
      return Value::number(static_cast<double>(x) / static_cast<double>(y));
    }
    if (op == "//" || op == "%") {
      if (y == 0) type_error("integer division or modulo by zero");
      if (x == INT64_MIN && y == -1) type_error("integer overflow");
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {
        --q;
        m += y;
      }
      return Value::integer(op == "//" ? q : m);
    }
    if (op == "**") {
      if (y < 0) return Value::number(std::pow(static_cast<double>(x), static_cast<double>(y)));
      if (x == 0 || x == 1) return Value::integer(y == 0 ? 1 : x);
      if (x == -1) return Value::integer(y % 2 ? -1 : 1);
      int64_t acc = 1;
      for (int64_t i = 0; i < y; ++i) acc = checked_op('*', acc, x);  // |x| >= 2: under 64 steps
      return Value::integer(acc);
    }
  }
  double x = num(a), y = num(b);
  if (op == "+") return Value::number(x + y);
  if (op == "-") return Value::number(x - y);
  if (op == "*") return Value::number(x * y);
  if (op == "/") {
    if (y == 0) type_error("float division by zero");
    return Value::number(x / y);
  }
  if (op == "//" || op == "%") {
    if (y == 0) type_error("float modulo");
    double m = std::fmod(x, y);
    if (m != 0 && ((m < 0) != (y < 0))) m += y;
    if (op == "%") return Value::number(m);
    return Value::number(std::floor(x / y));
  }
  if (op == "**") return Value::number(std::pow(x, y));
  unsupported(op, a, b);
}

// jinja2's item lookup for the "sort of attribute" a filter names ("a.b" walks nested keys).
Value attr_path(const Value& v, const std::string& path) {
  Value cur = v;
  size_t pos = 0;
  while (true) {
    size_t dot = path.find('.', pos);
    std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    bool numeric = !part.empty() && std::all_of(part.begin(), part.end(),
                                                [](char c) { return c >= '0' && c <= '9'; });
    cur = numeric && part.size() < 18 ? get_item(cur, Value::integer(std::atoll(part.c_str())))
                                      : get_item(cur, Value::string(part));
    if (cur.is_undefined() || dot == std::string::npos) return cur;
    pos = dot + 1;
  }
}

// select/reject/selectattr/rejectattr: filter by a test (truthiness when none is named).
Value select(const Value& seq, Args& a, bool by_attr, bool keep, Budget& budget) {
  size_t next = 0;
  std::string attr;
  if (by_attr) attr = arg_str(a, next++, "attribute", "", true);
  std::string test;
  Args test_args;
  if (a.pos.size() > next) {
    if (!a.pos[next].is_string()) type_error("test name must be a string");
    test = a.pos[next].s;
    if (!has_test(test)) type_error("no test named '" + test + "'");
    test_args.pos.assign(a.pos.begin() + static_cast<long>(next) + 1, a.pos.end());
  }
  List out;
  for (const Value& item : iterate(seq)) {
    budget.charge(1);
    Value x = by_attr ? attr_path(item, attr) : item;
    bool ok = test.empty() ? truthy(x) : call_test(test, x, test_args);
    if (ok == keep) out.push_back(item);
  }
  return Value::make_list(std::move(out));
}

using Filter = Value (*)(const Value&, Args&, Budget&);

const std::map<std::string, Filter>& filters() {
  static const std::map<std::string, Filter> f = {
      {"trim",
       [](const Value& v, Args& a, Budget&) {
         const Value* c = a.get(0, "chars");
         return Value::string(
             py_strip(to_str(v), true, true, c && c->is_string() ? &c->s : nullptr));
       }},
      {"length", [](const Value& v, Args&, Budget&) { return Value::integer(length(v)); }},
      {"count", [](const Value& v, Args&, Budget&) { return Value::integer(length(v)); }},
      {"upper",
       [](const Value& v, Args&, Budget&) { return Value::string(base::to_upper(to_str(v))); }},
      {"lower",
       [](const Value& v, Args&, Budget&) { return Value::string(base::to_lower(to_str(v))); }},
      {"title",
       [](const Value& v, Args&, Budget&) { return Value::string(jinja_title(to_str(v))); }},
      {"capitalize",
       [](const Value& v, Args&, Budget&) { return Value::string(capitalize(to_str(v))); }},
      {"string", [](const Value& v, Args&, Budget&) { return Value::string(to_str(v)); }},
      {"safe", [](const Value& v, Args&, Budget&) { return v; }},
      {"tojson",
       [](const Value& v, Args& a, Budget& b) {
         if (v.is_undefined()) type_error("Object of type Undefined is not JSON serializable");
         // transformers' tojson(x, ensure_ascii=False, indent=None, separators=None,
         // sort_keys=False)
         const Value* ea = a.get(0, "ensure_ascii");
         const Value* sk = a.get(3, "sort_keys");
         int indent = static_cast<int>(std::clamp<int64_t>(arg_int(a, 1, "indent", -1), -1, 64));
         std::string s = to_json(v, indent, sk && truthy(*sk), ea && truthy(*ea));
         b.check_size(s.size());
         return Value::string(std::move(s));
       }},
      {"default",
       [](const Value& v, Args& a, Budget&) {
         const Value* d = a.get(0, "default_value");
         const Value* boolean = a.get(1, "boolean");
         bool use = v.is_undefined() || (boolean && truthy(*boolean) && !truthy(v));
         return use ? (d ? *d : Value::string("")) : v;
       }},
      {"first",
       [](const Value& v, Args&, Budget&) {
         List l = iterate(v);
         return l.empty() ? Value::undefined("first") : l.front();
       }},
      {"last",
       [](const Value& v, Args&, Budget&) {
         List l = iterate(v);
         return l.empty() ? Value::undefined("last") : l.back();
       }},
      {"reverse",
       [](const Value& v, Args&, Budget&) {
         if (v.is_string()) {
           std::vector<std::string_view> cps = utf8::characters(v.s);
           std::string out;
           for (auto it = cps.rbegin(); it != cps.rend(); ++it) out += *it;
           return Value::string(std::move(out));
         }
         List l = iterate(v);
         std::reverse(l.begin(), l.end());
         return Value::make_list(std::move(l));
       }},
      {"join",
       [](const Value& v, Args& a, Budget& b) {
         std::string sep = to_str(a.get(0, "d") ? *a.get(0, "d") : Value::string(""));
         const Value* attr = a.get(1, "attribute");
         std::string out;
         bool first = true;
         for (const Value& x : iterate(v)) {
           if (!first) out += sep;
           first = false;
           out += to_str(attr ? attr_path(x, to_str(*attr)) : x);
           b.check_size(out.size());
         }
         b.charge(out.size());
         return Value::string(std::move(out));
       }},
      {"replace",
       [](const Value& v, Args& a, Budget& b) {
         return Value::string(replace_all(
             to_str(v), to_str(a.get(0, "old") ? *a.get(0, "old") : Value()),
             to_str(a.get(1, "new") ? *a.get(1, "new") : Value()), arg_int(a, 2, "count", -1), b));
       }},
      {"list", [](const Value& v, Args&, Budget&) { return Value::make_list(iterate(v)); }},
      {"items",
       [](const Value& v, Args&, Budget&) {
         if (v.is_undefined()) return Value::make_list();
         if (v.kind != K::kDict) type_error("items filter needs a mapping, not " + type_name(v));
         Args none;
         return get_attr(v, "items").fn->operator()(none);
       }},
      {"int",
       [](const Value& v, Args& a, Budget&) {
         int64_t def = arg_int(a, 0, "default", 0);
         if (v.kind == K::kInt || v.kind == K::kBool) return Value::integer(inum(v));
         if (v.kind == K::kFloat)
           return std::isfinite(v.f) && std::fabs(v.f) < 9.2e18
                      ? Value::integer(static_cast<int64_t>(v.f))
                      : Value::integer(def);
         if (v.is_string()) {
           std::string t = py_strip(v.s, true, true);
           char* end = nullptr;
           errno = 0;
           long long x = std::strtoll(t.c_str(), &end, 10);
           if (!t.empty() && end && *end == 0 && errno == 0) return Value::integer(x);
           double d = std::strtod(t.c_str(), &end);
           if (!t.empty() && end && *end == 0 && std::isfinite(d) && std::fabs(d) < 9.2e18)
             return Value::integer(static_cast<int64_t>(d));
         }
         return Value::integer(def);
       }},
      {"float",
       [](const Value& v, Args&, Budget&) {
         if (v.is_number()) return Value::number(num(v));
         if (v.is_string()) {
           std::string t = py_strip(v.s, true, true);
           char* end = nullptr;
           double d = std::strtod(t.c_str(), &end);
           if (!t.empty() && end && *end == 0) return Value::number(d);
         }
         return Value::number(0.0);
       }},
      {"abs",
       [](const Value& v, Args&, Budget&) {
         if (v.kind == K::kFloat) return Value::number(std::fabs(v.f));
         if (v.kind == K::kInt || v.kind == K::kBool) {
           if (inum(v) == INT64_MIN) type_error("integer overflow");
           return Value::integer(std::llabs(inum(v)));
         }
         type_error("bad operand type for abs(): '" + type_name(v) + "'");
       }},
      {"selectattr",
       [](const Value& v, Args& a, Budget& b) { return select(v, a, true, true, b); }},
      {"rejectattr",
       [](const Value& v, Args& a, Budget& b) { return select(v, a, true, false, b); }},
      {"select", [](const Value& v, Args& a, Budget& b) { return select(v, a, false, true, b); }},
      {"reject", [](const Value& v, Args& a, Budget& b) { return select(v, a, false, false, b); }},
      {"map",
       [](const Value& v, Args& a, Budget& b) {
         List out;
         if (const Value* attr = a.get(SIZE_MAX, "attribute")) {
           const Value* def = a.get(SIZE_MAX, "default");
           for (const Value& x : iterate(v)) {
             Value r = attr_path(x, to_str(*attr));
             out.push_back(r.is_undefined() && def ? *def : r);
           }
           return Value::make_list(std::move(out));
         }
         std::string name = arg_str(a, 0, "name", "", true);
         if (!has_filter(name) || name == "map") type_error("no filter named '" + name + "'");
         Args rest;
         rest.pos.assign(a.pos.begin() + 1, a.pos.end());
         for (const Value& x : iterate(v)) {
           b.charge(1);
           out.push_back(call_filter(name, x, rest, b));
         }
         return Value::make_list(std::move(out));
       }},
  };
  return f;
}

using Test = bool (*)(const Value&, Args&);

const Value& test_arg(const Args& a) {
  const Value* v = a.get(0, "other");
  if (!v) type_error("test needs an argument");
  return *v;
}

// value % 2 as Python computes it (floats too: 3.0 is odd, 0.5 neither).
double parity(const Value& v) {
  if (v.kind == K::kInt || v.kind == K::kBool) return static_cast<double>(((inum(v) % 2) + 2) % 2);
  if (v.kind == K::kFloat) {
    double m = std::fmod(v.f, 2.0);
    return m < 0 ? m + 2.0 : m;
  }
  type_error("odd/even test needs a number, not " + type_name(v));
}

const std::map<std::string, Test>& tests() {
  static const std::map<std::string, Test> t = {
      {"defined", [](const Value& v, Args&) { return !v.is_undefined(); }},
      {"undefined", [](const Value& v, Args&) { return v.is_undefined(); }},
      {"none", [](const Value& v, Args&) { return v.kind == K::kNone; }},
      {"boolean", [](const Value& v, Args&) { return v.kind == K::kBool; }},
      {"true", [](const Value& v, Args&) { return v.kind == K::kBool && v.b; }},
      {"false", [](const Value& v, Args&) { return v.kind == K::kBool && !v.b; }},
      {"string", [](const Value& v, Args&) { return v.is_string(); }},
      {"mapping", [](const Value& v, Args&) { return v.kind == K::kDict; }},
      {"number", [](const Value& v, Args&) { return v.is_number(); }},
      {"integer", [](const Value& v, Args&) { return v.kind == K::kInt; }},
      {"float", [](const Value& v, Args&) { return v.kind == K::kFloat; }},
      {"sequence", [](const Value& v,
                      Args&) { return v.is_string() || v.kind == K::kList || v.kind == K::kDict; }},
      {"iterable",
       [](const Value& v, Args&) {
         return v.is_string() || v.kind == K::kList || v.kind == K::kDict || v.is_undefined();
       }},
      {"callable", [](const Value& v, Args&) { return v.kind == K::kFunction; }},
      {"odd", [](const Value& v, Args&) { return parity(v) == 1; }},
      {"even", [](const Value& v, Args&) { return parity(v) == 0; }},
      {"divisibleby",
       [](const Value& v, Args& a) {
         const Value& d = test_arg(a);
         if (v.kind != K::kInt || d.kind != K::kInt) type_error("divisibleby needs integers");
         if (d.i == 0) type_error("integer division or modulo by zero");
         return d.i == -1 || v.i % d.i == 0;
       }},
      {"lower", [](const Value& v, Args&) { return v.is_string() && base::to_lower(v.s) == v.s; }},
      {"upper", [](const Value& v, Args&) { return v.is_string() && base::to_upper(v.s) == v.s; }},
      {"eq", [](const Value& v, Args& a) { return equals(v, test_arg(a)); }},
      {"equalto", [](const Value& v, Args& a) { return equals(v, test_arg(a)); }},
      {"==", [](const Value& v, Args& a) { return equals(v, test_arg(a)); }},
      {"ne", [](const Value& v, Args& a) { return !equals(v, test_arg(a)); }},
      {"!=", [](const Value& v, Args& a) { return !equals(v, test_arg(a)); }},
      {"in", [](const Value& v, Args& a) { return contains(test_arg(a), v); }},
      {"sameas",
       [](const Value& v, Args& a) {
         const Value& o = test_arg(a);
         return v.kind == o.kind && (v.kind == K::kNone || v.kind == K::kUndefined ||
                                     (v.kind == K::kBool && v.b == o.b) ||
                                     (v.list && v.list == o.list) || (v.dict && v.dict == o.dict));
       }},
  };
  return t;
}

}  // namespace

Value binary_op(const std::string& op, const Value& a, const Value& b, Budget& budget) {
  if (op == "==") return Value::boolean(equals(a, b));
  if (op == "!=") return Value::boolean(!equals(a, b));
  if (op == "<") return Value::boolean(compare(a, b) < 0);
  if (op == "<=") return Value::boolean(compare(a, b) <= 0);
  if (op == ">") return Value::boolean(compare(a, b) > 0);
  if (op == ">=") return Value::boolean(compare(a, b) >= 0);
  if (op == "in") return Value::boolean(contains(b, a));
  if (op == "not in") return Value::boolean(!contains(b, a));
  if (op == "~") {
    std::string x = to_str(a), y = to_str(b);
    budget.check_size(x.size() + y.size());
    budget.charge(x.size() + y.size());
    return Value::string(x + y);
  }
  return arith(op, a, b, budget);
}

Value negate(const Value& v) {
  if (v.kind == K::kFloat) return Value::number(-v.f);
  if (v.kind == K::kInt || v.kind == K::kBool) {
    if (inum(v) == INT64_MIN) type_error("integer overflow");
    return Value::integer(-inum(v));
  }
  if (v.is_undefined()) type_error("'" + v.s + "' is undefined");
  type_error("bad operand type for unary -: '" + type_name(v) + "'");
}

bool contains(const Value& c, const Value& item) {
  switch (c.kind) {
    case K::kUndefined:
      return false;
    case K::kString:
      if (!item.is_string())
        type_error("'in <string>' requires string as left operand, not " + type_name(item));
      return c.s.find(item.s) != std::string::npos;
    case K::kList:
      for (const Value& x : *c.list)
        if (equals(x, item)) return true;
      return false;
    case K::kDict:
      return item.is_string() && dict_find(*c.dict, item.s);
    default:
      type_error("argument of type '" + type_name(c) + "' is not iterable");
  }
}

Value get_attr(const Value& obj, const std::string& name) {
  switch (obj.kind) {
    case K::kUndefined:
      type_error("'" + obj.s + "' is undefined");
    case K::kString:
      return string_method(obj.s, name);
    case K::kNamespace: {
      const Value* v = dict_find(*obj.dict, name);
      return v ? *v : Value::undefined(name);
    }
    case K::kDict: {
      Value m = dict_method(obj, name);
      if (!m.is_undefined()) return m;
      const Value* v = dict_find(*obj.dict, name);
      return v ? *v : Value::undefined(name);
    }
    default:
      return Value::undefined(name);
  }
}

Value get_item(const Value& obj, const Value& key) {
  switch (obj.kind) {
    case K::kUndefined:
      type_error("'" + obj.s + "' is undefined");
    case K::kDict:
    case K::kNamespace: {
      if (key.is_string())
        if (const Value* v = dict_find(*obj.dict, key.s)) return *v;
      if (obj.kind == K::kDict && key.is_string()) return dict_method(obj, key.s);
      return Value::undefined(key.is_string() ? key.s : repr(key));
    }
    case K::kList:
    case K::kString: {
      if (key.kind != K::kInt && key.kind != K::kBool) {
        if (obj.is_string() && key.is_string()) return string_method(obj.s, key.s);
        return Value::undefined(to_str(key));
      }
      int64_t i = inum(key);
      if (obj.kind == K::kList) {
        int64_t n = static_cast<int64_t>(obj.list->size());
        if (i < 0) i += n;
        if (i < 0 || i >= n) return Value::undefined(std::to_string(inum(key)));
        return (*obj.list)[static_cast<size_t>(i)];
      }
      std::vector<std::string_view> cps = utf8::characters(obj.s);
      int64_t n = static_cast<int64_t>(cps.size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value::undefined(std::to_string(inum(key)));
      return Value::string(std::string(cps[static_cast<size_t>(i)]));
    }
    default:
      return Value::undefined(to_str(key));
  }
}

Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step_v,
            Budget& budget) {
  auto idx = [](const Value& v, int64_t def) -> int64_t {
    if (v.is_undefined() || v.kind == K::kNone) return def;
    if (v.kind != K::kInt && v.kind != K::kBool)
      type_error("slice indices must be integers or None");
    return inum(v);
  };
  int64_t step = idx(step_v, 1);
  if (step == 0) type_error("slice step cannot be zero");
  std::vector<Value> items;
  std::vector<std::string_view> cps;
  int64_t n;
  if (obj.kind == K::kList)
    n = static_cast<int64_t>(obj.list->size());
  else if (obj.is_string()) {
    cps = utf8::characters(obj.s);
    n = static_cast<int64_t>(cps.size());
  } else if (obj.is_undefined())
    type_error("'" + obj.s + "' is undefined");
  else
    return Value::undefined("slice");  // jinja2: a failed subscript is undefined
  // Python's PySlice_AdjustIndices.
  auto adjust = [&](int64_t v, bool is_start) {
    if (v < 0) {
      v += n;
      if (v < 0) v = step < 0 ? -1 : 0;
    } else if (v >= n)
      v = step < 0 ? n - 1 : n;
    (void)is_start;
    return v;
  };
  int64_t b = step < 0 ? n - 1 : 0, e = step < 0 ? -1 : n;
  if (!(start.is_undefined() || start.kind == K::kNone)) b = adjust(idx(start, 0), true);
  if (!(stop.is_undefined() || stop.kind == K::kNone)) e = adjust(idx(stop, 0), false);
  List out;
  std::string s;
  for (int64_t i = b; step > 0 ? i < e : i > e; i += step) {
    budget.charge(1);
    if (obj.kind == K::kList)
      out.push_back((*obj.list)[static_cast<size_t>(i)]);
    else
      s += cps[static_cast<size_t>(i)];
  }
  if (obj.is_string()) return Value::string(std::move(s));
  Value r = Value::make_list(std::move(out));
  r.is_tuple = obj.is_tuple;
  return r;
}

List iterate(const Value& v) {
  switch (v.kind) {
    case K::kUndefined:
      return {};
    case K::kList:
      return *v.list;
    case K::kDict: {
      List out;
      for (const auto& kv : *v.dict) out.push_back(Value::string(kv.first));
      return out;
    }
    case K::kString: {
      List out;
      for (std::string_view cp : utf8::characters(v.s))
        out.push_back(Value::string(std::string(cp)));
      return out;
    }
    default:
      type_error("'" + type_name(v) + "' object is not iterable");
  }
}

int64_t length(const Value& v) {
  switch (v.kind) {
    case K::kUndefined:
      return 0;
    case K::kList:
      return static_cast<int64_t>(v.list->size());
    case K::kDict:
      return static_cast<int64_t>(v.dict->size());
    case K::kString:
      return static_cast<int64_t>(utf8::characters(v.s).size());
    default:
      type_error("object of type '" + type_name(v) + "' has no len()");
  }
}

bool has_filter(const std::string& name) { return filters().count(name) || name == "d"; }

Value call_filter(const std::string& name, const Value& v, Args& args, Budget& budget) {
  auto it = filters().find(name == "d" ? "default" : name);
  if (it == filters().end()) type_error("no filter named '" + name + "'");
  return it->second(v, args, budget);
}

bool has_test(const std::string& name) { return tests().count(name) != 0; }

bool call_test(const std::string& name, const Value& v, Args& args) {
  auto it = tests().find(name);
  if (it == tests().end()) type_error("no test named '" + name + "'");
  return it->second(v, args);
}

}  // namespace lmstream::jinja
