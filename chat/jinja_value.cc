// Python semantics for template values (see jinja_value.h).
#include "chat/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "base/utf8.h"

namespace lmstream::jinja {

const Value* Args::get(size_t index, std::string_view name) const {
  for (const auto& [k, v] : kw)
    if (k == name) return &v;
  return index < pos.size() ? &pos[index] : nullptr;
}

namespace {

template <typename Json>
Value from_json_impl(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null:
      return Value::none();
    case Json::value_t::boolean:
      return Value::boolean(j.template get<bool>());
    case Json::value_t::number_integer:
      return Value::integer(j.template get<int64_t>());
    case Json::value_t::number_unsigned: {
      uint64_t u = j.template get<uint64_t>();
      if (u <= static_cast<uint64_t>(INT64_MAX)) return Value::integer(static_cast<int64_t>(u));
      return Value::number(static_cast<double>(u));
    }
    case Json::value_t::number_float:
      return Value::number(j.template get<double>());
    case Json::value_t::string:
      return Value::string(j.template get<std::string>());
    case Json::value_t::array: {
      List l;
      l.reserve(j.size());
      for (const auto& e : j) l.push_back(from_json_impl(e));
      return Value::make_list(std::move(l));
    }
    case Json::value_t::object: {
      Dict d;
      d.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it)
        d.emplace_back(it.key(), from_json_impl(it.value()));
      return Value::make_dict(std::move(d));
    }
    default:
      return Value::none();  // binary / discarded: not produced by JSON parsing
  }
}

}  // namespace

Value from_json(const nlohmann::json& j) { return from_json_impl(j); }
Value from_json(const nlohmann::ordered_json& j) { return from_json_impl(j); }

const Value* dict_find(const Dict& d, std::string_view key) {
  for (const auto& [k, v] : d)
    if (k == key) return &v;
  return nullptr;
}

void dict_set(Dict& d, const std::string& key, Value v) {
  for (auto& [k, old] : d)
    if (k == key) {
      old = std::move(v);
      return;
    }
  d.emplace_back(key, std::move(v));
}

bool truthy(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return false;
    case Value::Kind::kBool:
      return v.b;
    case Value::Kind::kInt:
      return v.i != 0;
    case Value::Kind::kFloat:
      return v.f != 0;
    case Value::Kind::kString:
      return !v.s.empty();
    case Value::Kind::kList:
      return !v.list->empty();
    case Value::Kind::kDict:
      return !v.dict->empty();
    case Value::Kind::kNamespace:
    case Value::Kind::kFunction:
      return true;
  }
  return false;
}

std::string type_name(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kUndefined:
      return "Undefined";
    case Value::Kind::kNone:
      return "NoneType";
    case Value::Kind::kBool:
      return "bool";
    case Value::Kind::kInt:
      return "int";
    case Value::Kind::kFloat:
      return "float";
    case Value::Kind::kString:
      return "str";
    case Value::Kind::kList:
      return v.is_tuple ? "tuple" : "list";
    case Value::Kind::kDict:
      return "dict";
    case Value::Kind::kNamespace:
      return "Namespace";
    case Value::Kind::kFunction:
      return "function";
  }
  return "?";
}

// Python's float repr: the shortest round-tripping digits, fixed notation for exponents in
// [-4, 16), scientific otherwise ("1e+16", "1.5e-05").
std::string py_float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, r.ptr);
  size_t e = sci.find('e');
  std::string mant = sci.substr(0, e);
  int exp = std::stoi(sci.substr(e + 1));
  bool neg = !mant.empty() && mant[0] == '-';
  if (neg) mant.erase(0, 1);
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  std::string out = neg ? "-" : "";
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out += "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    } else if (static_cast<size_t>(exp) + 1 >= digits.size()) {
      out += digits + std::string(static_cast<size_t>(exp) + 1 - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, static_cast<size_t>(exp) + 1) + "." +
             digits.substr(static_cast<size_t>(exp) + 1);
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char eb[16];
  std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
  return out + eb;
}

namespace {

// Code points Python's str.isprintable() rejects, beyond ASCII controls: C1 controls, the
// separators (Zs except space, Zl, Zp), common format characters (Cf), and surrogates/private use.
// (Unassigned code points are printed as they are.)
bool py_unprintable(uint32_t u) {
  return (u >= 0x80 && u <= 0xA0) || u == 0xAD || u == 0x61C || u == 0x1680 || u == 0x180E ||
         (u >= 0x2000 && u <= 0x200F) || (u >= 0x2028 && u <= 0x202F) ||
         (u >= 0x205F && u <= 0x2064) || (u >= 0x2066 && u <= 0x206F) || u == 0x3000 ||
         (u >= 0xD800 && u <= 0xF8FF) || u == 0xFEFF || (u >= 0xFFF9 && u <= 0xFFFB) ||
         u == 0x110BD || (u >= 0x1D173 && u <= 0x1D17A) || u == 0xE0001 ||
         (u >= 0xE0020 && u <= 0xE007F) || u >= 0xF0000;
}

// The code point of one character of utf8::characters; for an invalid byte, the byte's value.
uint32_t decode(std::string_view cp) {
  char32_t u = 0;
  if (utf8::decode(cp, 0, u) == cp.size()) return uint32_t(u);
  return static_cast<unsigned char>(cp[0]);
}

std::string repr_string(const std::string& s) {
  char q = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
  std::string out(1, q);
  char b[16];
  for (std::string_view cp : utf8::characters(s)) {
    uint32_t u = decode(cp);
    if (cp.size() == 1 && u >= 0x80) {  // an invalid byte (Python would show a surrogate escape)
      std::snprintf(b, sizeof b, "\\udc%02x", static_cast<unsigned>(u));
      out += b;
    } else if (u == '\\' || u == static_cast<unsigned char>(q)) {
      out += '\\';
      out += static_cast<char>(u);
    } else if (u == '\n') {
      out += "\\n";
    } else if (u == '\r') {
      out += "\\r";
    } else if (u == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f || py_unprintable(u)) {
      std::snprintf(b, sizeof b,
                    u < 0x100     ? "\\x%02x"
                    : u < 0x10000 ? "\\u%04x"
                                  : "\\U%08x",
                    static_cast<unsigned>(u));
      out += b;
    } else {
      out += cp;
    }
  }
  return out + q;
}

void json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  out += '"';
  for (std::string_view cp : utf8::characters(s)) {
    unsigned char c = static_cast<unsigned char>(cp[0]);
    uint32_t u = cp.size() == 1 && c >= 0x80 ? 0xFFFD : decode(cp);
    char b[16];
    switch (u) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    if (u >= 0x20 && u < 0x7f) {
      out += static_cast<char>(u);
      continue;
    }
    if (!ensure_ascii && u >= 0x80) {
      if (cp.size() == 1)
        out += "\\ufffd";  // an invalid byte: Python would hold U+DCxx
      else
        out += cp;
      continue;
    }
    if (u >= 0x10000) {  // ensure_ascii: a surrogate pair
      uint32_t v = u - 0x10000;
      std::snprintf(b, sizeof b, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
    } else {
      std::snprintf(b, sizeof b, "\\u%04x", u);
    }
    out += b;
  }
  out += '"';
}

struct JsonStyle {
  int indent;
  bool sort_keys, ensure_ascii;
};

void json_value(std::string& out, const Value& v, const JsonStyle& st, int level) {
  auto newline = [&](int lvl) {
    if (st.indent < 0) return;
    out += '\n';
    out.append(static_cast<size_t>(st.indent) * static_cast<size_t>(lvl), ' ');
  };
  const char* item_sep = st.indent < 0 ? ", " : ",";
  switch (v.kind) {
    case Value::Kind::kNone:
      out += "null";
      return;
    case Value::Kind::kBool:
      out += v.b ? "true" : "false";
      return;
    case Value::Kind::kInt:
      out += std::to_string(v.i);
      return;
    case Value::Kind::kFloat:
      if (std::isnan(v.f))
        out += "NaN";
      else if (std::isinf(v.f))
        out += v.f > 0 ? "Infinity" : "-Infinity";
      else
        out += py_float_repr(v.f);
      return;
    case Value::Kind::kString:
      json_string(out, v.s, st.ensure_ascii);
      return;
    case Value::Kind::kList: {
      if (v.list->empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t i = 0; i < v.list->size(); ++i) {
        if (i) out += item_sep;
        newline(level + 1);
        json_value(out, (*v.list)[i], st, level + 1);
      }
      newline(level);
      out += ']';
      return;
    }
    case Value::Kind::kDict: {
      if (v.dict->empty()) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& kv : *v.dict) items.push_back(&kv);
      if (st.sort_keys)
        std::stable_sort(items.begin(), items.end(),
                         [](auto* a, auto* b) { return a->first < b->first; });
      out += '{';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += item_sep;
        newline(level + 1);
        json_string(out, items[i]->first, st.ensure_ascii);
        out += ": ";
        json_value(out, items[i]->second, st, level + 1);
      }
      newline(level);
      out += '}';
      return;
    }
    default:
      throw ValueError("Object of type " + type_name(v) + " is not JSON serializable");
  }
}

}  // namespace

std::string to_str(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kUndefined:
      return "";
    case Value::Kind::kString:
      return v.s;
    default:
      return repr(v);
  }
}

std::string repr(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kUndefined:
      return "";
    case Value::Kind::kNone:
      return "None";
    case Value::Kind::kBool:
      return v.b ? "True" : "False";
    case Value::Kind::kInt:
      return std::to_string(v.i);
    case Value::Kind::kFloat:
      return py_float_repr(v.f);
    case Value::Kind::kString:
      return repr_string(v.s);
    case Value::Kind::kList: {
      std::string out = v.is_tuple ? "(" : "[";
      for (size_t i = 0; i < v.list->size(); ++i) {
        if (i) out += ", ";
        out += repr((*v.list)[i]);
      }
      if (v.is_tuple && v.list->size() == 1) out += ",";
      return out + (v.is_tuple ? ")" : "]");
    }
    case Value::Kind::kDict: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, e] : *v.dict) {
        if (!first) out += ", ";
        first = false;
        out += repr_string(k) + ": " + repr(e);
      }
      return out + "}";
    }
    case Value::Kind::kNamespace:
      return "<Namespace>";
    case Value::Kind::kFunction:
      return "<function>";
  }
  return "";
}

std::string to_json(const Value& v, int indent, bool sort_keys, bool ensure_ascii) {
  std::string out;
  json_value(out, v, JsonStyle{indent, sort_keys, ensure_ascii}, 0);
  return out;
}

namespace {
double as_double(const Value& v) {
  return v.kind == Value::Kind::kFloat  ? v.f
         : v.kind == Value::Kind::kBool ? (v.b ? 1.0 : 0.0)
                                        : static_cast<double>(v.i);
}
int64_t as_int(const Value& v) { return v.kind == Value::Kind::kBool ? (v.b ? 1 : 0) : v.i; }
}  // namespace

bool equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind == Value::Kind::kFloat || b.kind == Value::Kind::kFloat)
      return as_double(a) == as_double(b);
    return as_int(a) == as_int(b);
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return true;
    case Value::Kind::kString:
      return a.s == b.s;
    case Value::Kind::kList:
      if (a.list->size() != b.list->size()) return false;
      for (size_t i = 0; i < a.list->size(); ++i)
        if (!equals((*a.list)[i], (*b.list)[i])) return false;
      return true;
    case Value::Kind::kDict:
      if (a.dict->size() != b.dict->size()) return false;
      for (const auto& [k, v] : *a.dict) {
        const Value* o = dict_find(*b.dict, k);
        if (!o || !equals(v, *o)) return false;
      }
      return true;
    default:
      return a.dict == b.dict && a.fn == b.fn;
  }
}

int compare(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind == Value::Kind::kFloat || b.kind == Value::Kind::kFloat) {
      double x = as_double(a), y = as_double(b);
      return x < y ? -1 : x > y ? 1 : 0;
    }
    int64_t x = as_int(a), y = as_int(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string())
    return a.s < b.s ? -1 : a.s > b.s ? 1 : 0;  // UTF-8 order = code point order
  if (a.kind == Value::Kind::kList && b.kind == Value::Kind::kList) {
    size_t n = std::min(a.list->size(), b.list->size());
    for (size_t i = 0; i < n; ++i) {
      if (equals((*a.list)[i], (*b.list)[i])) continue;
      return compare((*a.list)[i], (*b.list)[i]);
    }
    return a.list->size() < b.list->size() ? -1 : a.list->size() > b.list->size() ? 1 : 0;
  }
  throw ValueError("'<' not supported between instances of '" + type_name(a) + "' and '" +
                   type_name(b) + "'");
}

bool is_space_char(std::string_view ch) {
  char32_t u = 0;
  return utf8::decode(ch, 0, u) == ch.size() && utf8::is_python_space(u);
}

std::string py_strip(std::string_view s, bool left, bool right, const std::string* chars) {
  std::vector<std::string_view> cps = utf8::characters(s);
  std::vector<std::string_view> set;
  if (chars) set = utf8::characters(*chars);
  auto strip_it = [&](std::string_view cp) {
    if (!chars) return is_space_char(cp);
    return std::find(set.begin(), set.end(), cp) != set.end();
  };
  size_t b = 0, e = cps.size();
  if (left)
    while (b < e && strip_it(cps[b])) ++b;
  if (right)
    while (e > b && strip_it(cps[e - 1])) --e;
  if (b == e) return "";
  const char* start = cps[b].data();
  const char* end = cps[e - 1].data() + cps[e - 1].size();
  return std::string(start, end);
}

}  // namespace lmstream::jinja
