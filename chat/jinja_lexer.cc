// jinja2's lexer rules for trim_blocks=True, lstrip_blocks=True (see jinja_lexer.h).
#include "chat/jinja_lexer.h"

#include <cerrno>
#include <cstdlib>

#include "base/utf8.h"
#include "chat/jinja.h"
#include "chat/jinja_value.h"

namespace lmstream::jinja {
namespace {

[[noreturn]] void fail(const std::string& src, size_t offset, const std::string& msg) {
  int line, col;
  line_col(src, offset, line, col);
  throw JinjaError(msg, line, col);
}

// Length of the Python-whitespace character at s[pos], or 0.
size_t space_at(std::string_view s, size_t pos) {
  char32_t u = 0;
  const size_t len = utf8::decode(s, pos, u);
  return len != 0 && utf8::is_python_space(u) ? len : 0;
}

size_t skip_spaces(std::string_view s, size_t pos) {
  while (pos < s.size()) {
    size_t n = space_at(s, pos);
    if (!n) break;
    pos += n;
  }
  return pos;
}

std::string rstrip_spaces(std::string_view s) { return py_strip(s, false, true); }

bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Appends code point u as UTF-8.
void put_utf8(std::string& out, uint32_t u) {
  if (u < 0x80)
    out += static_cast<char>(u);
  else if (u < 0x800) {
    out += static_cast<char>(0xC0 | (u >> 6));
    out += static_cast<char>(0x80 | (u & 0x3F));
  } else if (u < 0x10000) {
    out += static_cast<char>(0xE0 | (u >> 12));
    out += static_cast<char>(0x80 | ((u >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (u & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (u >> 18));
    out += static_cast<char>(0x80 | ((u >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((u >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (u & 0x3F));
  }
}

int hex_val(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Python "unicode-escape" decoding of a string literal body, as jinja2 does.
std::string unescape(const std::string& src, size_t start, size_t end) {
  std::string out;
  for (size_t i = start; i < end; ++i) {
    char c = src[i];
    if (c != '\\' || i + 1 >= end) {
      out += c;
      continue;
    }
    char e = src[++i];
    switch (e) {
      case '\n':
        break;
      case '\\':
        out += '\\';
        break;
      case '\'':
        out += '\'';
        break;
      case '"':
        out += '"';
        break;
      case 'a':
        out += '\a';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'v':
        out += '\v';
        break;
      case 'x':
      case 'u':
      case 'U': {
        size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        uint32_t u = 0;
        for (size_t k = 0; k < n; ++k) {
          int h = i + 1 + k < end ? hex_val(src[i + 1 + k]) : -1;
          if (h < 0)
            fail(src, i - 1, "invalid \\" + std::string(1, e) + " escape in string literal");
          u = u * 16 + static_cast<uint32_t>(h);
        }
        if (u > 0x10FFFF || (u >= 0xD800 && u <= 0xDFFF))
          fail(src, i - 1, "invalid code point in string escape");
        put_utf8(out, u);
        i += n;
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          uint32_t u = static_cast<uint32_t>(e - '0');
          for (int k = 0; k < 2 && i + 1 < end && src[i + 1] >= '0' && src[i + 1] <= '7'; ++k)
            u = u * 8 + static_cast<uint32_t>(src[++i] - '0');
          put_utf8(out, u);
        } else {
          out += '\\';
          out += e;
        }
    }
  }
  return out;
}

class Lexer {
 public:
  explicit Lexer(const std::string& src) : s_(src) {}

  std::vector<Token> run() {
    size_t pos = 0;
    bool line_starting = true;
    while (pos < s_.size()) {
      size_t tag = find_tag(pos);
      if (tag == std::string::npos) {
        push_text(pos, s_.substr(pos));
        break;
      }
      const char kind = s_[tag + 1];
      char sign =
          tag + 2 < s_.size() && (s_[tag + 2] == '-' || s_[tag + 2] == '+') ? s_[tag + 2] : 0;
      std::string text = s_.substr(pos, tag - pos);
      if (sign == '-') {
        text = rstrip_spaces(text);
      } else if (sign != '+' && kind != '{') {
        size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        if ((l_pos > 0 || line_starting) && l_pos < text.size() && all_space(text, l_pos))
          text.resize(l_pos);
      }
      push_text(pos, text);
      size_t body = tag + 2 + (sign ? 1 : 0);
      size_t end;
      if (kind == '#')
        end = comment(tag, body);
      else if (kind == '%' && is_raw(body, end))
        end = raw(tag, end);
      else
        end = tag_tokens(kind, tag, body);
      line_starting = end > 0 && s_[end - 1] == '\n';
      pos = end;
    }
    out_.push_back({Token::Kind::kEof, s_.size(), "", 0, 0});
    return std::move(out_);
  }

 private:
  bool all_space(const std::string& t, size_t from) { return skip_spaces(t, from) == t.size(); }

  size_t find_tag(size_t pos) {
    while (true) {
      size_t p = s_.find('{', pos);
      if (p == std::string::npos || p + 1 >= s_.size()) return std::string::npos;
      char c = s_[p + 1];
      if (c == '{' || c == '%' || c == '#') return p;
      pos = p + 1;
    }
  }

  void push_text(size_t offset, const std::string& text) {
    if (!text.empty()) out_.push_back({Token::Kind::kText, offset, text, 0, 0});
  }

  // After a block or comment end ("%}" / "#}") at p (exclusive end e), with the marker before it:
  // "-" strips all following whitespace, "+" nothing, otherwise trim_blocks drops one "\n".
  size_t after_end(size_t e, char marker) {
    if (marker == '-') return skip_spaces(s_, e);
    if (marker == '+') return e;
    return e < s_.size() && s_[e] == '\n' ? e + 1 : e;
  }

  size_t comment(size_t tag, size_t body) {
    size_t q = s_.find("#}", body);
    if (q == std::string::npos) fail(s_, tag, "Missing end of comment tag");
    char marker = q > body && (s_[q - 1] == '-' || s_[q - 1] == '+') ? s_[q - 1] : 0;
    return after_end(q + 2, marker);
  }

  // "{% raw %}" (body is just after "{%" and its marker): sets end to just after the tag.
  bool is_raw(size_t body, size_t& end) {
    size_t p = skip_spaces(s_, body);
    if (s_.compare(p, 3, "raw") != 0) return false;
    p = skip_spaces(s_, p + 3);
    if (s_.compare(p, 3, "-%}") == 0) {
      end = skip_spaces(s_, p + 3);
      return true;
    }
    if (s_.compare(p, 2, "%}") == 0) {
      end = p + 2;
      return true;
    }
    return false;
  }

  size_t raw(size_t tag, size_t pos) {
    for (size_t p = s_.find("{%", pos); p != std::string::npos; p = s_.find("{%", p + 2)) {
      size_t q = p + 2;
      char sign = q < s_.size() && (s_[q] == '-' || s_[q] == '+') ? s_[q] : 0;
      if (sign) ++q;
      q = skip_spaces(s_, q);
      if (s_.compare(q, 6, "endraw") != 0) continue;
      q = skip_spaces(s_, q + 6);
      char marker = 0;
      if (q < s_.size() && (s_[q] == '-' || s_[q] == '+')) marker = s_[q++];
      if (s_.compare(q, 2, "%}") != 0) continue;
      std::string text = s_.substr(pos, p - pos);
      if (sign == '-') {
        text = rstrip_spaces(text);
      } else if (sign != '+') {
        size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        if (l_pos > 0 && l_pos < text.size() && all_space(text, l_pos)) text.resize(l_pos);
      }
      push_text(pos, text);
      return after_end(q + 2, marker);
    }
    fail(s_, tag, "Missing end of raw directive");
  }

  // Tokens inside "{{ ... }}" or "{% ... %}"; returns the offset after the closing delimiter.
  size_t tag_tokens(char kind, size_t tag, size_t p) {
    const bool block = kind == '%';
    out_.push_back({block ? Token::Kind::kBlockBegin : Token::Kind::kVarBegin, tag, "", 0, 0});
    std::vector<char> balance;
    while (true) {
      p = skip_spaces(s_, p);
      if (p >= s_.size())
        fail(s_, tag,
             block ? "unexpected end of template, expected '%}'"
                   : "unexpected end of template, expected '}}'");
      if (balance.empty()) {
        const Token::Kind end_kind = block ? Token::Kind::kBlockEnd : Token::Kind::kVarEnd;
        const char* close = block ? "%}" : "}}";
        if (s_.compare(p, 3, std::string("-") + close) == 0) {
          out_.push_back({end_kind, p, "", 0, 0});
          return skip_spaces(s_, p + 3);
        }
        if (block && s_.compare(p, 3, "+%}") == 0) {
          out_.push_back({end_kind, p, "", 0, 0});
          return p + 3;
        }
        if (s_.compare(p, 2, close) == 0) {
          out_.push_back({end_kind, p, "", 0, 0});
          return block ? after_end(p + 2, 0) : p + 2;
        }
      }
      p = one_token(p, balance);
    }
  }

  size_t one_token(size_t p, std::vector<char>& balance) {
    const char c = s_[p];
    if (is_name_start(c)) {
      size_t e = p;
      while (e < s_.size() && (is_name_start(s_[e]) || is_digit(s_[e]))) ++e;
      out_.push_back({Token::Kind::kName, p, s_.substr(p, e - p), 0, 0});
      return e;
    }
    if (is_digit(c)) return number(p);
    if (c == '\'' || c == '"') {
      size_t e = p + 1;
      while (e < s_.size() && s_[e] != c) e += s_[e] == '\\' ? 2 : 1;
      if (e >= s_.size()) fail(s_, p, "unterminated string literal");
      out_.push_back({Token::Kind::kString, p, unescape(s_, p + 1, e), 0, 0});
      return e + 1;
    }
    static const char* const kOps2[] = {"//", "**", "==", "!=", ">=", "<="};
    for (const char* op : kOps2)
      if (s_.compare(p, 2, op) == 0) {
        out_.push_back({Token::Kind::kOp, p, op, 0, 0});
        return p + 2;
      }
    if (std::string_view("+-/*%~[](){}<>=.:|,;").find(c) == std::string_view::npos)
      fail(s_, p, std::string("unexpected char '") + c + "'");
    if (c == '(' || c == '[' || c == '{') {
      balance.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    } else if (c == ')' || c == ']' || c == '}') {
      if (balance.empty()) fail(s_, p, std::string("unexpected '") + c + "'");
      if (balance.back() != c)
        fail(s_, p, std::string("unexpected '") + c + "', expected '" + balance.back() + "'");
      balance.pop_back();
    }
    out_.push_back({Token::Kind::kOp, p, std::string(1, c), 0, 0});
    return p + 1;
  }

  size_t number(size_t p) {
    size_t e = p;
    std::string digits;
    auto run = [&] {
      while (e < s_.size() &&
             (is_digit(s_[e]) || (s_[e] == '_' && e + 1 < s_.size() && is_digit(s_[e + 1])))) {
        if (s_[e] != '_') digits += s_[e];
        ++e;
      }
    };
    run();
    bool is_float = false;
    if (e + 1 < s_.size() && s_[e] == '.' && is_digit(s_[e + 1])) {
      is_float = true;
      digits += s_[e++];
      run();
    }
    if (e < s_.size() && (s_[e] == 'e' || s_[e] == 'E')) {
      size_t k = e + 1;
      if (k < s_.size() && (s_[k] == '+' || s_[k] == '-')) ++k;
      if (k < s_.size() && is_digit(s_[k])) {
        is_float = true;
        digits += 'e';
        digits.append(s_, e + 1, k - e - 1);
        e = k;
        run();
      }
    }
    Token t{is_float ? Token::Kind::kFloat : Token::Kind::kInt, p, s_.substr(p, e - p), 0, 0};
    errno = 0;
    if (is_float) {
      t.f = std::strtod(digits.c_str(), nullptr);
    } else {
      t.i = std::strtoll(digits.c_str(), nullptr, 10);
      if (errno == ERANGE) fail(s_, p, "integer literal too large");
    }
    out_.push_back(std::move(t));
    return e;
  }

  const std::string& s_;
  std::vector<Token> out_;
};

}  // namespace

std::string normalize_source(std::string_view src) {
  std::string out;
  out.reserve(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    if (src[i] == '\r') {
      out += '\n';
      if (i + 1 < src.size() && src[i + 1] == '\n') ++i;
    } else {
      out += src[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::vector<Token> lex(const std::string& src) { return Lexer(src).run(); }

void line_col(const std::string& src, size_t offset, int& line, int& col) {
  line = 1;
  col = 1;
  for (size_t i = 0; i < offset && i < src.size(); ++i) {
    if (src[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
}

}  // namespace lmstream::jinja
