// Recursive-descent parser following jinja2's parser.py precedence (see jinja_parser.h).
#include "chat/jinja_parser.h"

#include <algorithm>
#include <initializer_list>

#include "chat/jinja.h"

namespace lmstream::jinja {
namespace {

using TK = Token::Kind;

class Parser {
 public:
  Parser(const std::string& src, const std::vector<Token>& toks, int max_depth)
      : src_(src), t_(toks), max_depth_(max_depth) {}

  Body template_body() {
    std::string end;
    Body b = body({}, end);
    return b;
  }

 private:
  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser, size_t offset) : p(parser) {
      if (++p.depth_ > p.max_depth_) p.fail(offset, "template nesting too deep");
    }
    ~DepthGuard() { --p.depth_; }
  };

  [[noreturn]] void fail(size_t offset, const std::string& msg) const {
    int line, col;
    line_col(src_, offset, line, col);
    throw JinjaError(msg, line, col);
  }

  const Token& cur() const { return t_[i_]; }
  const Token& peek(size_t k = 1) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
  void advance() {
    if (i_ + 1 < t_.size()) ++i_;
  }
  bool is_op(const char* op) const { return cur().kind == TK::kOp && cur().text == op; }
  bool is_name(const char* n) const { return cur().kind == TK::kName && cur().text == n; }
  bool skip_op(const char* op) {
    if (is_op(op)) {
      advance();
      return true;
    }
    return false;
  }
  bool skip_name(const char* n) {
    if (is_name(n)) {
      advance();
      return true;
    }
    return false;
  }

  std::string describe(const Token& t) const {
    switch (t.kind) {
      case TK::kEof:
        return "end of template";
      case TK::kBlockEnd:
        return "end of statement block";
      case TK::kVarEnd:
        return "end of print statement";
      case TK::kText:
        return "template data";
      case TK::kString:
        return "string";
      default:
        return "'" + t.text + "'";
    }
  }
  void expect_op(const char* op) {
    if (!skip_op(op))
      fail(cur().offset, std::string("expected '") + op + "', got " + describe(cur()));
  }
  std::string expect_name() {
    if (cur().kind != TK::kName) fail(cur().offset, "expected a name, got " + describe(cur()));
    std::string n = cur().text;
    advance();
    return n;
  }
  void expect_block_end() {
    if (cur().kind != TK::kBlockEnd)
      fail(cur().offset, "expected end of statement block, got " + describe(cur()));
    advance();
  }

  static ExprPtr make(Expr::Kind k, size_t offset) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->offset = offset;
    return e;
  }

  // Statements until a block whose first name is in ends (returned in end; the tag's name is
  // consumed, its remaining tokens are left for the caller).
  Body body(std::initializer_list<const char*> ends, std::string& end) {
    Body out;
    while (true) {
      const Token& t = cur();
      if (t.kind == TK::kEof) {
        if (ends.size() == 0) return out;
        std::string want;
        for (const char* e : ends) want += (want.empty() ? "'" : " or '") + std::string(e) + "'";
        fail(t.offset, "unexpected end of template, expected " + want);
      }
      if (t.kind == TK::kText) {
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::kText;
        n->offset = t.offset;
        n->text = t.text;
        out.push_back(std::move(n));
        advance();
      } else if (t.kind == TK::kVarBegin) {
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::kOutput;
        n->offset = t.offset;
        advance();
        n->expr = tuple(true, false);
        if (cur().kind != TK::kVarEnd)
          fail(cur().offset, "expected end of print statement, got " + describe(cur()));
        advance();
        out.push_back(std::move(n));
      } else if (t.kind == TK::kBlockBegin) {
        const Token& name = peek();
        if (name.kind != TK::kName)
          fail(name.offset, "expected a statement name, got " + describe(name));
        for (const char* e : ends) {
          if (name.text == e) {
            end = e;
            advance();
            advance();
            return out;
          }
        }
        advance();
        out.push_back(statement());
      } else {
        fail(t.offset, "unexpected " + describe(t));
      }
    }
  }

  std::unique_ptr<Node> statement() {
    DepthGuard g(*this, cur().offset);
    auto n = std::make_unique<Node>();
    n->offset = cur().offset;
    const std::string kw = expect_name();
    std::string end;
    if (kw == "if") {
      n->kind = Node::Kind::kIf;
      n->conds.push_back(tuple(false, false));
      while (true) {
        expect_block_end();
        n->branches.push_back(body({"elif", "else", "endif"}, end));
        if (end == "elif") {
          n->conds.push_back(tuple(false, false));
          continue;
        }
        if (end == "else") {
          expect_block_end();
          n->else_body = body({"endif"}, end);
        }
        break;
      }
    } else if (kw == "for") {
      n->kind = Node::Kind::kFor;
      n->targets = assign_names();
      if (!skip_name("in")) fail(cur().offset, "expected 'in', got " + describe(cur()));
      n->expr = tuple(false, false);
      if (skip_name("if")) n->filter = expression(true);
      if (is_name("recursive")) fail(cur().offset, "recursive loops are not supported");
      expect_block_end();
      n->body = body({"endfor", "else"}, end);
      if (end == "else") {
        expect_block_end();
        n->else_body = body({"endfor"}, end);
      }
    } else if (kw == "set") {
      std::string first = expect_name();
      if (skip_op(".")) {
        n->kind = Node::Kind::kSet;
        n->targets = {first};
        n->attr = expect_name();
        expect_op("=");
        n->expr = tuple(true, false);
      } else if (is_op("=") || is_op(",")) {
        n->kind = Node::Kind::kSet;
        n->targets = {first};
        while (skip_op(",")) {
          if (cur().kind != TK::kName) break;
          n->targets.push_back(expect_name());
        }
        expect_op("=");
        n->expr = tuple(true, false);
      } else {
        n->kind = Node::Kind::kSetBlock;
        n->name = first;
        expect_block_end();
        n->body = body({"endset"}, end);
      }
    } else if (kw == "macro") {
      n->kind = Node::Kind::kMacro;
      n->name = expect_name();
      expect_op("(");
      while (!is_op(")")) {
        if (!n->params.empty()) expect_op(",");
        if (is_op(")")) break;
        n->params.push_back(expect_name());
        n->defaults.push_back(skip_op("=") ? expression(true) : nullptr);
      }
      expect_op(")");
      expect_block_end();
      n->body = body({"endmacro"}, end);
    } else if (kw == "break" || kw == "continue") {
      n->kind = kw == "break" ? Node::Kind::kBreak : Node::Kind::kContinue;
    } else {
      fail(n->offset, "unknown or unsupported tag '" + kw + "'");
    }
    // The closing tag of a block statement ("endif" etc.) may carry the block's name (endmacro x).
    if (n->kind == Node::Kind::kMacro && cur().kind == TK::kName) advance();
    expect_block_end();
    return n;
  }

  std::vector<std::string> assign_names() {
    std::vector<std::string> names;
    bool paren = skip_op("(");
    names.push_back(expect_name());
    while (skip_op(",")) {
      if (cur().kind != TK::kName || is_name("in")) break;
      names.push_back(expect_name());
    }
    if (paren) expect_op(")");
    return names;
  }

  // Comma-separated expressions: a tuple when there is a comma, else the one expression.
  ExprPtr tuple(bool with_condexpr, bool explicit_parens) {
    size_t offset = cur().offset;
    std::vector<ExprPtr> items;
    bool comma = false;
    while (true) {
      if (!items.empty()) {
        if (!skip_op(",")) break;
        comma = true;
      }
      if (cur().kind == TK::kVarEnd || cur().kind == TK::kBlockEnd || is_op(")") ||
          (!items.empty() && (is_name("if") || is_name("in") || is_name("recursive")) &&
           !with_condexpr))
        break;
      items.push_back(expression(with_condexpr));
    }
    if (items.size() == 1 && !comma) return std::move(items[0]);
    if (items.empty() && !explicit_parens)
      fail(cur().offset, "expected an expression, got " + describe(cur()));
    auto t = make(Expr::Kind::kTuple, offset);
    t->kids = std::move(items);
    return t;
  }

  ExprPtr expression(bool with_condexpr) {
    DepthGuard g(*this, cur().offset);
    if (!with_condexpr) return or_expr();
    ExprPtr e = or_expr();
    while (is_name("if")) {
      size_t offset = cur().offset;
      advance();
      ExprPtr cond = or_expr();
      ExprPtr other = skip_name("else") ? expression(true) : nullptr;
      auto c = make(Expr::Kind::kCond, offset);
      c->kids.push_back(std::move(e));
      c->kids.push_back(std::move(cond));
      c->kids.push_back(std::move(other));
      e = std::move(c);
    }
    return e;
  }

  ExprPtr binary(const std::string& op, size_t offset, ExprPtr a, ExprPtr b) {
    auto e = make(Expr::Kind::kBinary, offset);
    e->name = op;
    e->kids.push_back(std::move(a));
    e->kids.push_back(std::move(b));
    return e;
  }

  ExprPtr or_expr() {
    ExprPtr e = and_expr();
    while (is_name("or")) {
      size_t o = cur().offset;
      advance();
      e = binary("or", o, std::move(e), and_expr());
    }
    return e;
  }
  ExprPtr and_expr() {
    ExprPtr e = not_expr();
    while (is_name("and")) {
      size_t o = cur().offset;
      advance();
      e = binary("and", o, std::move(e), not_expr());
    }
    return e;
  }
  ExprPtr not_expr() {
    if (is_name("not")) {
      DepthGuard g(*this, cur().offset);
      auto e = make(Expr::Kind::kNot, cur().offset);
      advance();
      e->kids.push_back(not_expr());
      return e;
    }
    return compare();
  }
  // a < b < c is (a < b) and (b < c), with b a shared subtree evaluated twice (expressions are
  // pure).
  ExprPtr compare() {
    ExprPtr first = math1();
    ExprPtr result;
    Expr* left = first.get();
    while (true) {
      size_t o = cur().offset;
      std::string op;
      if (cur().kind == TK::kOp &&
          (cur().text == "==" || cur().text == "!=" || cur().text == "<" || cur().text == "<=" ||
           cur().text == ">" || cur().text == ">=")) {
        op = cur().text;
        advance();
      } else if (is_name("in")) {
        op = "in";
        advance();
      } else if (is_name("not") && peek().kind == TK::kName && peek().text == "in") {
        op = "not in";
        advance();
        advance();
      } else {
        break;
      }
      ExprPtr right = math1();
      Expr* right_raw = right.get();
      ExprPtr lhs = result ? clone(*left) : std::move(first);
      ExprPtr cmp = binary(op, o, std::move(lhs), std::move(right));
      result = result ? binary("and", o, std::move(result), std::move(cmp)) : std::move(cmp);
      left = right_raw;
    }
    return result ? std::move(result) : std::move(first);
  }
  ExprPtr clone(const Expr& e) {
    auto c = make(e.kind, e.offset);
    c->value = e.value;
    c->name = e.name;
    c->negated = e.negated;
    c->arg_names = e.arg_names;
    for (const auto& k : e.kids) c->kids.push_back(k ? clone(*k) : nullptr);
    for (const auto& a : e.args) c->args.push_back(a ? clone(*a) : nullptr);
    return c;
  }
  ExprPtr math1() {
    ExprPtr e = concat();
    while (is_op("+") || is_op("-")) {
      std::string op = cur().text;
      size_t o = cur().offset;
      advance();
      e = binary(op, o, std::move(e), concat());
    }
    return e;
  }
  ExprPtr concat() {
    ExprPtr e = math2();
    while (is_op("~")) {
      size_t o = cur().offset;
      advance();
      e = binary("~", o, std::move(e), math2());
    }
    return e;
  }
  ExprPtr math2() {
    ExprPtr e = pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = cur().text;
      size_t o = cur().offset;
      advance();
      e = binary(op, o, std::move(e), pow());
    }
    return e;
  }
  ExprPtr pow() {
    ExprPtr e = unary(true);
    while (is_op("**")) {
      size_t o = cur().offset;
      advance();
      e = binary("**", o, std::move(e), unary(true));
    }
    return e;
  }
  ExprPtr unary(bool with_filter) {
    DepthGuard g(*this, cur().offset);
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      e = make(is_op("-") ? Expr::Kind::kNeg : Expr::Kind::kPos, cur().offset);
      advance();
      e->kids.push_back(unary(false));
    } else {
      e = primary();
    }
    e = postfix(std::move(e));
    if (with_filter) e = filters(std::move(e));
    return e;
  }

  ExprPtr primary() {
    const Token& t = cur();
    ExprPtr e;
    switch (t.kind) {
      case TK::kName:
        e = make(Expr::Kind::kLiteral, t.offset);
        if (t.text == "true" || t.text == "True")
          e->value = Value::boolean(true);
        else if (t.text == "false" || t.text == "False")
          e->value = Value::boolean(false);
        else if (t.text == "none" || t.text == "None")
          e->value = Value::none();
        else {
          e->kind = Expr::Kind::kName;
          e->name = t.text;
        }
        advance();
        return e;
      case TK::kString: {
        e = make(Expr::Kind::kLiteral, t.offset);
        std::string s;
        while (cur().kind == TK::kString) {
          s += cur().text;
          advance();
        }
        e->value = Value::string(std::move(s));
        return e;
      }
      case TK::kInt:
        e = make(Expr::Kind::kLiteral, t.offset);
        e->value = Value::integer(t.i);
        advance();
        return e;
      case TK::kFloat:
        e = make(Expr::Kind::kLiteral, t.offset);
        e->value = Value::number(t.f);
        advance();
        return e;
      case TK::kOp:
        if (t.text == "(") {
          advance();
          e = tuple(true, true);
          expect_op(")");
          return e;
        }
        if (t.text == "[") {
          e = make(Expr::Kind::kList, t.offset);
          advance();
          while (!is_op("]")) {
            if (!e->kids.empty()) expect_op(",");
            if (is_op("]")) break;
            e->kids.push_back(expression(true));
          }
          expect_op("]");
          return e;
        }
        if (t.text == "{") {
          e = make(Expr::Kind::kDict, t.offset);
          advance();
          while (!is_op("}")) {
            if (!e->kids.empty()) expect_op(",");
            if (is_op("}")) break;
            e->kids.push_back(expression(true));
            expect_op(":");
            e->kids.push_back(expression(true));
          }
          expect_op("}");
          return e;
        }
        break;
      default:
        break;
    }
    fail(t.offset, "unexpected " + describe(t));
  }

  ExprPtr postfix(ExprPtr e) {
    while (true) {
      if (is_op(".") || is_op("["))
        e = subscript(std::move(e));
      else if (is_op("("))
        e = call(std::move(e));
      else
        return e;
    }
  }

  ExprPtr filters(ExprPtr e) {
    while (true) {
      if (is_op("|")) {
        size_t o = cur().offset;
        advance();
        auto f = make(Expr::Kind::kFilter, o);
        f->name = expect_name();
        while (skip_op(".")) f->name += "." + expect_name();
        f->kids.push_back(std::move(e));
        if (is_op("(")) call_args(*f);
        e = std::move(f);
      } else if (is_name("is")) {
        size_t o = cur().offset;
        advance();
        auto t = make(Expr::Kind::kTest, o);
        t->negated = skip_name("not");
        t->name = expect_name();
        while (skip_op(".")) t->name += "." + expect_name();
        t->kids.push_back(std::move(e));
        const Token& n = cur();
        if (is_op("(")) {
          call_args(*t);
        } else if ((n.kind == TK::kName || n.kind == TK::kString || n.kind == TK::kInt ||
                    n.kind == TK::kFloat || is_op("[") || is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and")) {
          t->args.push_back(postfix(primary()));
          t->arg_names.emplace_back();
        }
        e = std::move(t);
      } else if (is_op("(")) {
        e = call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr subscript(ExprPtr e) {
    size_t o = cur().offset;
    if (skip_op(".")) {
      if (cur().kind == TK::kName) {
        auto g = make(Expr::Kind::kGetAttr, o);
        g->name = cur().text;
        advance();
        g->kids.push_back(std::move(e));
        return g;
      }
      if (cur().kind == TK::kInt) {
        auto g = make(Expr::Kind::kGetItem, o);
        g->kids.push_back(std::move(e));
        auto k = make(Expr::Kind::kLiteral, cur().offset);
        k->value = Value::integer(cur().i);
        advance();
        g->kids.push_back(std::move(k));
        return g;
      }
      fail(cur().offset, "expected a name after '.', got " + describe(cur()));
    }
    expect_op("[");
    ExprPtr parts[3];
    int n = 0;
    bool slice = false;
    while (true) {
      if (is_op(":")) {
        advance();
        slice = true;
        if (++n > 2) fail(cur().offset, "too many ':' in subscript");
        continue;
      }
      if (is_op("]")) break;
      if (parts[n]) fail(cur().offset, "expected ']' or ':', got " + describe(cur()));
      parts[n] = expression(true);
    }
    expect_op("]");
    if (!slice) {
      if (!parts[0]) fail(o, "empty subscript");
      auto g = make(Expr::Kind::kGetItem, o);
      g->kids.push_back(std::move(e));
      g->kids.push_back(std::move(parts[0]));
      return g;
    }
    auto s = make(Expr::Kind::kSlice, o);
    s->kids.push_back(std::move(e));
    for (auto& p : parts) s->kids.push_back(std::move(p));
    return s;
  }

  ExprPtr call(ExprPtr e) {
    auto c = make(Expr::Kind::kCall, cur().offset);
    c->kids.push_back(std::move(e));
    call_args(*c);
    return c;
  }

  void call_args(Expr& e) {
    expect_op("(");
    while (!is_op(")")) {
      if (!e.args.empty()) expect_op(",");
      if (is_op(")")) break;
      if (cur().kind == TK::kName && peek().kind == TK::kOp && peek().text == "=") {
        e.arg_names.push_back(cur().text);
        advance();
        advance();
      } else {
        if (!e.arg_names.empty() && !e.arg_names.back().empty())
          fail(cur().offset, "positional argument after keyword argument");
        e.arg_names.emplace_back();
      }
      e.args.push_back(expression(true));
    }
    expect_op(")");
  }

  const std::string& src_;
  const std::vector<Token>& t_;
  size_t i_ = 0;
  int depth_ = 0;
  int max_depth_;
};

}  // namespace

Body parse(const std::string& src, const std::vector<Token>& tokens, int max_depth) {
  return Parser(src, tokens, max_depth).template_body();
}

}  // namespace lmstream::jinja
