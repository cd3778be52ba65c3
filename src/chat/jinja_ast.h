// The parsed form of a Jinja template: statement nodes holding expression trees.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/value.h"

namespace meshlm::jinja {

struct Expr;
using ExprPtr = std::shared_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,  // literal
    kName,     // name
    kList,     // args
    kDict,     // kwargs (key expressions in args, values in kwargs' second)
    kAttr,     // args[0].name
    kIndex,    // args[0][args[1]]
    kSlice,    // args[0][args[1]:args[2]:args[3]] (null parts allowed)
    kCall,     // args[0](args[1..], kwargs)
    kFilter,   // args[0] | name(args[1..], kwargs)
    kTest,     // args[0] is [not] name(args[1..])
    kUnary,    // name in {"not", "-", "+"}, args[0]
    kBinary,   // args[0] name args[1]: or and == != < > <= >= in notin + - ~ * / // % **
    kTernary,  // args[0] if args[1] else args[2] (args[2] may be null)
  };
  Kind kind = Kind::kLiteral;
  std::string name;
  Value literal;
  bool negate = false;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<ExprPtr> dict_keys;
  int depth = 1;  // of the tree below (the parser bounds it)
};

struct Node;
using Body = std::vector<Node>;

struct Node {
  enum class Kind { kText, kOutput, kIf, kFor, kSet, kSetBlock, kBreak, kContinue };
  Kind kind = Kind::kText;
  std::string text;                                // kText
  ExprPtr expr;                                    // kOutput, kSet value, kFor iterable
  std::vector<std::pair<ExprPtr, Body>> branches;  // kIf: (condition or null for else, body)
  std::vector<std::string> targets;                // kFor loop variables; kSet target (and .attr in attr)
  std::string attr;                                // kSet: `set ns.attr = ...`
  ExprPtr filter;                                  // kFor: `for x in xs if cond`
  Body body, else_body;                            // kFor, kSetBlock (body)
  int line = 0;
};

}  // namespace meshlm::jinja
