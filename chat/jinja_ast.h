// The syntax tree of a parsed template: expressions and statements, each with its source offset
// for error messages. Internal to chat/jinja*.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "chat/jinja_value.h"

namespace lmstream::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,  // value
    kName,     // name
    kList,     // kids
    kTuple,    // kids
    kDict,     // kids: key0, value0, key1, value1, ...
    kGetAttr,  // kids[0] . name
    kGetItem,  // kids[0] [ kids[1] ]
    kSlice,    // kids[0] [ kids[1] : kids[2] : kids[3] ] (null kids where omitted)
    kCall,     // kids[0] ( args )
    kFilter,   // kids[0] | name ( args )
    kTest,     // kids[0] is [not] name ( args ); negated
    kNot,      // not kids[0]
    kNeg,      // - kids[0]
    kPos,      // + kids[0]
    kBinary,   // kids[0] op kids[1]
    kCond,     // kids[0] if kids[1] else kids[2] (kids[2] null: undefined)
  };
  Kind kind;
  size_t offset = 0;
  Value value;
  std::string name;  // name, attribute, filter/test name, or binary operator
  bool negated = false;
  std::vector<ExprPtr> kids;
  std::vector<ExprPtr> args;           // call/filter/test arguments
  std::vector<std::string> arg_names;  // parallel to args: "" for positional
};

struct Node;
using Body = std::vector<std::unique_ptr<Node>>;

struct Node {
  enum class Kind { kText, kOutput, kIf, kFor, kSet, kSetBlock, kMacro, kBreak, kContinue };
  Kind kind;
  size_t offset = 0;
  std::string text;                  // kText
  ExprPtr expr;                      // kOutput, kSet value, kFor iterable
  std::vector<ExprPtr> conds;        // kIf: one per branch (if, elif...)
  std::vector<Body> branches;        // kIf: bodies parallel to conds
  Body body, else_body;              // kFor, kSetBlock, kMacro; kIf else
  ExprPtr filter;                    // kFor: "for x in xs if filter"
  std::vector<std::string> targets;  // kFor/kSet names (several: unpacking); kSet ns.attr: {ns}
  std::string attr;                  // kSet of a namespace attribute
  std::string name;                  // kMacro / kSetBlock
  std::vector<std::string> params;   // kMacro
  std::vector<ExprPtr> defaults;     // kMacro: parallel to params (null: none)
};

}  // namespace lmstream::jinja
