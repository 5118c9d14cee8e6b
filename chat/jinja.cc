// The template evaluator: walks the syntax tree with jinja2's scoping (each for-loop iteration
// and macro call gets its own frame; "if" does not; namespaces carry values out of loops) and
// charges every step to a work budget. See jinja.h.
#include "chat/jinja.h"

#include <ctime>
#include <memory>
#include <unordered_map>

#include "chat/jinja_ast.h"
#include "chat/jinja_builtins.h"
#include "chat/jinja_lexer.h"
#include "chat/jinja_parser.h"

namespace lmstream {

JinjaError::JinjaError(const std::string& message, int line, int column)
    : std::invalid_argument("template line " + std::to_string(line) + ", column " +
                            std::to_string(column) + ": " + message),
      message_(message),
      line_(line),
      column_(column) {}

namespace jinja {
namespace {

using K = Value::Kind;
enum class Flow { kNormal, kBreak, kContinue };

class Interp {
 public:
  Interp(const std::string& src, const JinjaLimits& limits)
      : src_(src), limits_(limits), budget_{0, limits.max_work, limits.max_output_bytes} {}
  // Namespaces are the only mutable, shared values, so the only way to make a reference cycle
  // ({% set ns.self = [ns] %}); emptying them all when the render ends frees every cycle.
  ~Interp() {
    for (const auto& d : namespaces_) d->clear();
  }
  Interp(const Interp&) = delete;
  Interp& operator=(const Interp&) = delete;

  // context: a dict of the template's variables.
  std::string run(const Body& body, const Value& context) {
    frames_.push_back(std::make_shared<Frame>());
    define_globals();
    for (const auto& [k, v] : *context.dict) (*frames_[0])[k] = v;
    std::string out;
    out_ = &out;
    exec(body);
    return out;
  }

 private:
  using Frame = std::unordered_map<std::string, Value>;

  struct DepthGuard {
    Interp& in;
    DepthGuard(Interp& interp, size_t offset) : in(interp) {
      if (++in.depth_ > in.limits_.max_depth * 4) in.fail(offset, "template recursion too deep");
    }
    ~DepthGuard() { --in.depth_; }
  };

  [[noreturn]] void fail(size_t offset, const std::string& msg) const {
    int line, col;
    line_col(src_, offset, line, col);
    throw JinjaError(msg, line, col);
  }

  void define_globals() {
    Frame& g = *frames_[0];
    g["raise_exception"] = Value::function([](Args& a) -> Value {
      const Value* m = a.get(0, "message");
      throw ValueError(m ? to_str(*m) : std::string("raise_exception() called"));
    });
    g["namespace"] = Value::function([this](Args& a) {
      Value ns = Value::make_dict();
      ns.kind = K::kNamespace;
      namespaces_.push_back(ns.dict);
      for (const Value& p : a.pos) {
        if (p.kind != K::kDict)
          throw ValueError("namespace() positional arguments must be mappings");
        for (const auto& [k, v] : *p.dict) dict_set(*ns.dict, k, v);
      }
      for (const auto& [k, v] : a.kw) dict_set(*ns.dict, k, v);
      return ns;
    });
    g["range"] = Value::function([this](Args& a) {
      for (const Value& v : a.pos)
        if (v.kind != K::kInt) throw ValueError("range() arguments must be integers");
      if (a.pos.empty() || a.pos.size() > 3) throw ValueError("range expected 1 to 3 arguments");
      int64_t start = a.pos.size() > 1 ? a.pos[0].i : 0;
      int64_t stop = a.pos.size() > 1 ? a.pos[1].i : a.pos[0].i;
      int64_t step = a.pos.size() > 2 ? a.pos[2].i : 1;
      if (step == 0) throw ValueError("range() arg 3 must not be zero");
      List out;
      for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        budget_.charge(1);
        if (out.size() >= budget_.max_bytes) throw ValueError("range() too large");
        out.push_back(Value::integer(i));
        if ((step > 0 && i > INT64_MAX - step) || (step < 0 && i < INT64_MIN - step)) break;
      }
      return Value::make_list(std::move(out));
    });
    g["strftime_now"] = Value::function([](Args& a) {
      const Value* f = a.get(0, "format");
      if (!f || !f->is_string()) throw ValueError("strftime_now() needs a format string");
      std::time_t now = std::time(nullptr);
      std::tm tm{};
      localtime_r(&now, &tm);
      char buf[256];
      size_t n = f->s.size() < 64 ? std::strftime(buf, sizeof buf, f->s.c_str(), &tm) : 0;
      return Value::string(std::string(buf, n));
    });
  }

  Value lookup(const std::string& name) const {
    for (auto it = frames_.rbegin(); it != frames_.rend(); ++it) {
      auto f = (*it)->find(name);
      if (f != (*it)->end()) return f->second;
    }
    return Value::undefined(name);
  }

  void emit(const std::string& s, size_t offset) {
    if (out_->size() + s.size() > limits_.max_output_bytes)
      fail(offset,
           "template output exceeds " + std::to_string(limits_.max_output_bytes) + " bytes");
    out_->append(s);
  }

  Flow exec(const Body& body) {
    for (const auto& n : body) {
      Flow f = exec(*n);
      if (f != Flow::kNormal) return f;
    }
    return Flow::kNormal;
  }

  Flow exec(const Node& n) {
    DepthGuard g(*this, n.offset);
    charge(n.offset, 1);
    switch (n.kind) {
      case Node::Kind::kText:
        charge(n.offset, n.text.size());
        emit(n.text, n.offset);
        return Flow::kNormal;
      case Node::Kind::kOutput: {
        Value v = eval(*n.expr);
        std::string s = to_str(v);
        charge(n.offset, s.size());
        emit(s, n.offset);
        return Flow::kNormal;
      }
      case Node::Kind::kIf:
        for (size_t i = 0; i < n.conds.size(); ++i)
          if (truthy(eval(*n.conds[i]))) return exec(n.branches[i]);
        return exec(n.else_body);
      case Node::Kind::kFor:
        return exec_for(n);
      case Node::Kind::kSet: {
        Value v = eval(*n.expr);
        if (!n.attr.empty()) {
          Value ns = lookup(n.targets[0]);
          if (ns.kind != K::kNamespace)
            fail(n.offset, "cannot assign attribute on non-namespace object");
          dict_set(*ns.dict, n.attr, std::move(v));
        } else {
          bind(n.targets, std::move(v), n.offset);
        }
        return Flow::kNormal;
      }
      case Node::Kind::kSetBlock:
        (*frames_.back())[n.name] = Value::string(capture(n.body));
        return Flow::kNormal;
      case Node::Kind::kMacro: {
        const Node* m = &n;
        (*frames_.back())[n.name] =
            Value::function([this, m](Args& a) { return call_macro(*m, a); });
        return Flow::kNormal;
      }
      case Node::Kind::kBreak:
      case Node::Kind::kContinue:
        if (loop_depth_ == 0)
          fail(n.offset, "'break' and 'continue' are only allowed inside a loop");
        return n.kind == Node::Kind::kBreak ? Flow::kBreak : Flow::kContinue;
    }
    return Flow::kNormal;
  }

  void charge(size_t offset, uint64_t n) {
    try {
      budget_.charge(n);
    } catch (const ValueError& e) {
      fail(offset, e.what());
    }
  }

  void bind(const std::vector<std::string>& names, Value v, size_t offset) {
    Frame& f = *frames_.back();
    if (names.size() == 1) {
      f[names[0]] = std::move(v);
      return;
    }
    List items;
    try {
      items = iterate(v);
    } catch (const ValueError& e) {
      fail(offset, std::string("cannot unpack: ") + e.what());
    }
    if (items.size() != names.size())
      fail(offset, "cannot unpack " + std::to_string(items.size()) + " values into " +
                       std::to_string(names.size()));
    for (size_t i = 0; i < names.size(); ++i) f[names[i]] = items[i];
  }

  std::string capture(const Body& body) {
    std::string buf;
    std::string* saved = out_;
    out_ = &buf;
    struct Restore {
      std::string*& slot;
      std::string* saved;
      ~Restore() { slot = saved; }
    } restore{out_, saved};
    exec(body);
    return buf;
  }

  Flow exec_for(const Node& n) {
    Value seq = eval(*n.expr);
    List items;
    try {
      items = iterate(seq);
    } catch (const ValueError& e) {
      fail(n.expr->offset, e.what());
    }
    if (n.filter) {
      List kept;
      for (Value& it : items) {
        frames_.push_back(std::make_shared<Frame>());
        bind(n.targets, it, n.offset);
        bool keep = truthy(eval(*n.filter));
        frames_.pop_back();
        if (keep) kept.push_back(std::move(it));
      }
      items = std::move(kept);
    }
    if (items.empty()) return exec(n.else_body);
    const int64_t len = static_cast<int64_t>(items.size());
    ++loop_depth_;
    struct Leave {
      Interp& in;
      size_t frames;
      ~Leave() {
        --in.loop_depth_;
        in.frames_.resize(frames);
      }
    } leave{*this, frames_.size()};
    for (int64_t i = 0; i < len; ++i) {
      charge(n.offset, 1);
      frames_.push_back(std::make_shared<Frame>());
      Dict loop = {
          {"index", Value::integer(i + 1)},
          {"index0", Value::integer(i)},
          {"revindex", Value::integer(len - i)},
          {"revindex0", Value::integer(len - i - 1)},
          {"first", Value::boolean(i == 0)},
          {"last", Value::boolean(i == len - 1)},
          {"length", Value::integer(len)},
          {"depth", Value::integer(1)},
          {"depth0", Value::integer(0)},
          {"previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value::undefined("previtem")},
          {"nextitem",
           i + 1 < len ? items[static_cast<size_t>(i + 1)] : Value::undefined("nextitem")},
          {"cycle", Value::function([i](Args& a) {
             if (a.pos.empty()) throw ValueError("no items for cycling given");
             return a.pos[static_cast<size_t>(i) % a.pos.size()];
           })}};
      (*frames_.back())["loop"] = Value::make_dict(std::move(loop));
      bind(n.targets, items[static_cast<size_t>(i)], n.offset);
      Flow f = exec(n.body);
      frames_.pop_back();
      if (f == Flow::kBreak) break;
    }
    return Flow::kNormal;
  }

  Value call_macro(const Node& m, Args& a) {
    if (a.pos.size() > m.params.size())
      throw ValueError("macro '" + m.name + "' takes " + std::to_string(m.params.size()) +
                       " arguments");
    auto frame = std::make_shared<Frame>();
    for (size_t i = 0; i < a.pos.size(); ++i) (*frame)[m.params[i]] = a.pos[i];
    for (const auto& [k, v] : a.kw) {
      bool known = false;
      for (const auto& p : m.params) known |= p == k;
      if (!known) throw ValueError("macro '" + m.name + "' takes no keyword argument '" + k + "'");
      (*frame)[k] = v;
    }
    std::vector<std::shared_ptr<Frame>> saved = {frames_[0], frame};
    std::swap(saved, frames_);
    int saved_loops = loop_depth_;
    loop_depth_ = 0;
    struct Restore {
      Interp& in;
      std::vector<std::shared_ptr<Frame>>& frames;
      int loops;
      ~Restore() {
        std::swap(in.frames_, frames);
        in.loop_depth_ = loops;
      }
    } restore{*this, saved, saved_loops};
    for (size_t i = 0; i < m.params.size(); ++i) {
      if (frame->count(m.params[i])) continue;
      (*frame)[m.params[i]] = m.defaults[i] ? eval(*m.defaults[i]) : Value::undefined(m.params[i]);
    }
    return Value::string(capture(m.body));
  }

  Args eval_args(const Expr& e) {
    Args a;
    for (size_t i = 0; i < e.args.size(); ++i) {
      if (e.arg_names[i].empty())
        a.pos.push_back(eval(*e.args[i]));
      else
        a.kw.emplace_back(e.arg_names[i], eval(*e.args[i]));
    }
    return a;
  }

  Value eval(const Expr& e) {
    DepthGuard g(*this, e.offset);
    charge(e.offset, 1);
    try {
      return eval_inner(e);
    } catch (const ValueError& err) {
      fail(e.offset, err.what());
    }
  }

  Value eval_inner(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::kLiteral:
        return e.value;
      case Expr::Kind::kName:
        return lookup(e.name);
      case Expr::Kind::kList:
      case Expr::Kind::kTuple: {
        List l;
        for (const auto& k : e.kids) l.push_back(eval(*k));
        Value v = Value::make_list(std::move(l));
        v.is_tuple = e.kind == Expr::Kind::kTuple;
        return v;
      }
      case Expr::Kind::kDict: {
        Dict d;
        for (size_t i = 0; i + 1 < e.kids.size(); i += 2) {
          Value k = eval(*e.kids[i]);
          if (!k.is_string())
            fail(e.kids[i]->offset, "only string keys are supported in dict literals");
          dict_set(d, k.s, eval(*e.kids[i + 1]));
        }
        return Value::make_dict(std::move(d));
      }
      case Expr::Kind::kGetAttr:
        return get_attr(eval(*e.kids[0]), e.name);
      case Expr::Kind::kGetItem: {
        Value obj = eval(*e.kids[0]);
        return get_item(obj, eval(*e.kids[1]));
      }
      case Expr::Kind::kSlice: {
        Value obj = eval(*e.kids[0]);
        Value parts[3];
        for (int i = 0; i < 3; ++i)
          if (e.kids[static_cast<size_t>(i) + 1])
            parts[i] = eval(*e.kids[static_cast<size_t>(i) + 1]);
        return slice(obj, parts[0], parts[1], parts[2], budget_);
      }
      case Expr::Kind::kCall: {
        Value fn = eval(*e.kids[0]);
        Args a = eval_args(e);
        if (fn.kind != K::kFunction) {
          if (fn.is_undefined()) throw ValueError("'" + fn.s + "' is undefined");
          throw ValueError("'" + type_name(fn) + "' object is not callable");
        }
        ++calls_;
        struct Dec {
          int& c;
          ~Dec() { --c; }
        } dec{calls_};
        if (calls_ > limits_.max_depth) throw ValueError("template recursion too deep");
        return (*fn.fn)(a);
      }
      case Expr::Kind::kFilter: {
        if (!has_filter(e.name)) throw ValueError("no filter named '" + e.name + "'");
        Value v = eval(*e.kids[0]);
        Args a = eval_args(e);
        return call_filter(e.name, v, a, budget_);
      }
      case Expr::Kind::kTest: {
        if (!has_test(e.name)) throw ValueError("no test named '" + e.name + "'");
        Value v = eval(*e.kids[0]);
        Args a = eval_args(e);
        return Value::boolean(call_test(e.name, v, a) != e.negated);
      }
      case Expr::Kind::kNot:
        return Value::boolean(!truthy(eval(*e.kids[0])));
      case Expr::Kind::kNeg:
        return negate(eval(*e.kids[0]));
      case Expr::Kind::kPos: {
        Value v = eval(*e.kids[0]);
        if (!v.is_number())
          throw ValueError("bad operand type for unary +: '" + type_name(v) + "'");
        return v.kind == K::kBool ? Value::integer(v.b) : v;
      }
      case Expr::Kind::kBinary: {
        Value a = eval(*e.kids[0]);
        if (e.name == "and") return truthy(a) ? eval(*e.kids[1]) : a;
        if (e.name == "or") return truthy(a) ? a : eval(*e.kids[1]);
        return binary_op(e.name, a, eval(*e.kids[1]), budget_);
      }
      case Expr::Kind::kCond:
        if (truthy(eval(*e.kids[1]))) return eval(*e.kids[0]);
        return e.kids[2] ? eval(*e.kids[2]) : Value::undefined();
    }
    return Value::undefined();
  }

  const std::string& src_;
  const JinjaLimits& limits_;
  Budget budget_;
  std::vector<std::shared_ptr<Frame>> frames_;
  std::vector<std::shared_ptr<Dict>> namespaces_;  // every namespace() of this render
  std::string* out_ = nullptr;
  int depth_ = 0;
  int loop_depth_ = 0;
  int calls_ = 0;
};

}  // namespace
}  // namespace jinja

namespace {

template <typename Json>
std::string render(std::string_view tpl, const Json& context, const JinjaLimits& limits) {
  if (tpl.size() > limits.max_template_bytes)
    throw JinjaError(
        "template is larger than " + std::to_string(limits.max_template_bytes) + " bytes", 1, 1);
  if (!context.is_object()) throw JinjaError("template context must be a JSON object", 1, 1);
  const std::string src = jinja::normalize_source(tpl);
  const std::vector<jinja::Token> tokens = jinja::lex(src);
  const jinja::Body body = jinja::parse(src, tokens, limits.max_depth);
  return jinja::Interp(src, limits).run(body, jinja::from_json(context));
}

}  // namespace

std::string render_jinja(std::string_view tpl, const nlohmann::json& context,
                         const JinjaLimits& limits) {
  return render(tpl, context, limits);
}

std::string render_jinja(std::string_view tpl, const nlohmann::ordered_json& context,
                         const JinjaLimits& limits) {
  return render(tpl, context, limits);
}

}  // namespace lmstream
