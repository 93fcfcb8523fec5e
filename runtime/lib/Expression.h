//===- Expression.h - The manifest's integer expressions --------*- C++ -*-===//
//
// Shapes, derived symbols, scalar values and grids in the manifest are small
// integer expressions over named symbols (B, T, HKV, the configuration's l,
// d, ...). The grammar is deliberately tiny so that a launcher in any
// language can evaluate it (docs/runtime-abi.md, Expressions):
//
//   expr    := term (('+' | '-') term)*
//   term    := unary (('*' | '/') unary)*
//   unary   := '-' unary | primary
//   primary := integer | symbol | '(' expr ')'
//            | 'ceil' '(' expr '/' expr ')'
//            | 'min' '(' expr ',' expr ')' | 'max' '(' expr ',' expr ')'
//
// Arithmetic is on int64 with overflow detected; '/' rounds toward negative
// infinity (Python's //), so that "max(0, (T - l)/d + 1)" counts compressed
// tokens correctly for T < l.
//
//===----------------------------------------------------------------------===//

#ifndef NSA_RUNTIME_EXPRESSION_H
#define NSA_RUNTIME_EXPRESSION_H

#include "Status.h"

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace nsa::rt {

using SymbolTable = std::map<std::string, int64_t, std::less<>>;

class Expression {
public:
  /// Parses `text`. Errors are NSA_ERROR_EXPRESSION with a message that
  /// gives the column ("column 7: expected ')'").
  static Status parse(std::string_view text, Expression &result);

  const std::string &text() const { return Text; }

  /// The symbol's name when the whole expression is one symbol, else null.
  const std::string *bareSymbol() const;

  /// Every symbol the expression reads, in order of appearance.
  std::vector<std::string> symbols() const;

  /// Evaluates with `symbols` bound. Errors (NSA_ERROR_EXPRESSION) name the
  /// unbound symbol, the division by zero or the overflow.
  Status evaluate(const SymbolTable &symbols, int64_t &result) const;

private:
  enum class Op {
    Constant,
    Symbol,
    Negate,
    Add,
    Subtract,
    Multiply,
    FloorDivide,
    CeilDivide,
    Min,
    Max
  };
  // Nodes are stored children first, so evaluation is one forward sweep
  // with no recursion however long the expression.
  struct Node {
    Op op;
    int64_t value = 0;
    std::string symbol;
    int lhs = -1;
    int rhs = -1;
  };

  std::string Text;
  std::vector<Node> Nodes;

  friend class ExpressionParser;
};

} // namespace nsa::rt

#endif // NSA_RUNTIME_EXPRESSION_H
