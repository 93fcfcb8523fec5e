//===- Expression.cpp - The manifest's integer expressions ----------------===//

#include "Expression.h"

#include <charconv>

namespace nsa::rt {

namespace {

// Parentheses, unary minus and function calls nest the parser's recursion;
// a manifest never needs more than a handful.
constexpr int MaxNesting = 32;

bool isIdentifierStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool isDigit(char c) { return c >= '0' && c <= '9'; }

Status expressionError(const std::string &message) {
  return Status(NSA_ERROR_EXPRESSION, message);
}

} // namespace

class ExpressionParser {
public:
  ExpressionParser(std::string_view text, Expression &result)
      : Text(text), Result(result) {}

  Status parse() {
    Result.Text = std::string(Text);
    Result.Nodes.clear();
    int root;
    if (Status s = parseSum(root, 0); !s.ok())
      return s;
    skipSpaces();
    if (Pos != Text.size())
      return unexpected("an operator or the end of the expression");
    return Status::success();
  }

private:
  using Op = Expression::Op;

  std::string_view Text;
  Expression &Result;
  size_t Pos = 0;

  void skipSpaces() {
    while (Pos < Text.size() && Text[Pos] == ' ')
      ++Pos;
  }
  char peek() {
    skipSpaces();
    return Pos < Text.size() ? Text[Pos] : '\0';
  }

  Status unexpected(const char *expected) {
    skipSpaces();
    std::string found = Pos < Text.size()
                            ? format("'%c'", Text[Pos])
                            : std::string("the end of the expression");
    return expressionError(format("column %zu: expected %s, found %s", Pos + 1,
                                  expected, found.c_str()));
  }

  Status expect(char c) {
    if (peek() != c) {
      char expected[] = {'\'', c, '\'', '\0'};
      return unexpected(expected);
    }
    ++Pos;
    return Status::success();
  }

  int addNode(Op op, int lhs = -1, int rhs = -1) {
    Expression::Node node;
    node.op = op;
    node.lhs = lhs;
    node.rhs = rhs;
    Result.Nodes.push_back(std::move(node));
    return static_cast<int>(Result.Nodes.size()) - 1;
  }

  Status parseSum(int &node, int nesting) {
    if (Status s = parseProduct(node, nesting); !s.ok())
      return s;
    while (peek() == '+' || peek() == '-') {
      Op op = Text[Pos++] == '+' ? Op::Add : Op::Subtract;
      int rhs;
      if (Status s = parseProduct(rhs, nesting); !s.ok())
        return s;
      node = addNode(op, node, rhs);
    }
    return Status::success();
  }

  Status parseProduct(int &node, int nesting) {
    if (Status s = parseUnary(node, nesting); !s.ok())
      return s;
    while (peek() == '*' || peek() == '/') {
      Op op = Text[Pos++] == '*' ? Op::Multiply : Op::FloorDivide;
      int rhs;
      if (Status s = parseUnary(rhs, nesting); !s.ok())
        return s;
      node = addNode(op, node, rhs);
    }
    return Status::success();
  }

  Status parseUnary(int &node, int nesting) {
    if (nesting > MaxNesting)
      return expressionError(format("column %zu: nested deeper than %d levels",
                                    Pos + 1, MaxNesting));
    if (peek() != '-')
      return parsePrimary(node, nesting);
    ++Pos;
    int operand;
    if (Status s = parseUnary(operand, nesting + 1); !s.ok())
      return s;
    node = addNode(Op::Negate, operand);
    return Status::success();
  }

  Status parsePrimary(int &node, int nesting) {
    char c = peek();
    if (c == '(') {
      ++Pos;
      if (Status s = parseSum(node, nesting + 1); !s.ok())
        return s;
      return expect(')');
    }
    if (isDigit(c))
      return parseInteger(node);
    if (!isIdentifierStart(c))
      return unexpected("an integer, a symbol or '('");
    size_t start = Pos;
    while (Pos < Text.size() &&
           (isIdentifierStart(Text[Pos]) || isDigit(Text[Pos])))
      ++Pos;
    std::string name(Text.substr(start, Pos - start));
    if (name == "ceil" || name == "min" || name == "max")
      return parseCall(name, start, node, nesting);
    node = addNode(Op::Symbol);
    Result.Nodes[node].symbol = std::move(name);
    return Status::success();
  }

  Status parseInteger(int &node) {
    size_t start = Pos;
    while (Pos < Text.size() && isDigit(Text[Pos]))
      ++Pos;
    int64_t value;
    auto [end, error] =
        std::from_chars(Text.data() + start, Text.data() + Pos, value);
    if (error != std::errc() || end != Text.data() + Pos)
      return expressionError(format("column %zu: integer does not fit in 64 "
                                    "bits",
                                    start + 1));
    node = addNode(Op::Constant);
    Result.Nodes[node].value = value;
    return Status::success();
  }

  Status parseCall(const std::string &name, size_t start, int &node,
                   int nesting) {
    if (peek() != '(')
      return expressionError(format("column %zu: '%s' is a function, not a "
                                    "symbol; write %s(...)",
                                    start + 1, name.c_str(), name.c_str()));
    ++Pos;
    int lhs, rhs;
    if (Status s = parseSum(lhs, nesting + 1); !s.ok())
      return s;
    if (name == "ceil") {
      // ceil() rounds its own division up, so its argument must end in one.
      if (Result.Nodes[lhs].op != Op::FloorDivide)
        return expressionError(format("column %zu: ceil() takes a division, "
                                      "as in ceil(T/16)",
                                      start + 1));
      Result.Nodes[lhs].op = Op::CeilDivide;
      node = lhs;
      return expect(')');
    }
    if (Status s = expect(','); !s.ok())
      return s;
    if (Status s = parseSum(rhs, nesting + 1); !s.ok())
      return s;
    node = addNode(name == "min" ? Op::Min : Op::Max, lhs, rhs);
    return expect(')');
  }
};

Status Expression::parse(std::string_view text, Expression &result) {
  return ExpressionParser(text, result).parse();
}

const std::string *Expression::bareSymbol() const {
  if (Nodes.size() == 1 && Nodes[0].op == Op::Symbol)
    return &Nodes[0].symbol;
  return nullptr;
}

std::vector<std::string> Expression::symbols() const {
  std::vector<std::string> result;
  for (const Node &node : Nodes)
    if (node.op == Op::Symbol)
      result.push_back(node.symbol);
  return result;
}

Status Expression::evaluate(const SymbolTable &symbols, int64_t &result) const {
  if (Nodes.empty())
    return expressionError("evaluating an expression that was never parsed");
  std::vector<int64_t> values(Nodes.size());
  auto fail = [&](const char *what) {
    return expressionError(format("%s in '%s'", what, Text.c_str()));
  };
  for (size_t i = 0; i < Nodes.size(); ++i) {
    const Node &node = Nodes[i];
    int64_t a = node.lhs >= 0 ? values[node.lhs] : 0;
    int64_t b = node.rhs >= 0 ? values[node.rhs] : 0;
    int64_t &v = values[i];
    bool overflow = false;
    switch (node.op) {
    case Op::Constant:
      v = node.value;
      break;
    case Op::Symbol: {
      auto it = symbols.find(node.symbol);
      if (it == symbols.end())
        return expressionError(format("unbound symbol '%s' in '%s'",
                                      node.symbol.c_str(), Text.c_str()));
      v = it->second;
      break;
    }
    case Op::Negate:
      overflow = __builtin_sub_overflow(int64_t(0), a, &v);
      break;
    case Op::Add:
      overflow = __builtin_add_overflow(a, b, &v);
      break;
    case Op::Subtract:
      overflow = __builtin_sub_overflow(a, b, &v);
      break;
    case Op::Multiply:
      overflow = __builtin_mul_overflow(a, b, &v);
      break;
    case Op::FloorDivide:
    case Op::CeilDivide: {
      if (b == 0)
        return fail("division by zero");
      if (a == INT64_MIN && b == -1) {
        overflow = true;
        break;
      }
      v = a / b;
      // C++ truncates toward zero; step to the floor or the ceiling when
      // the division is inexact.
      bool exact = a % b == 0;
      bool negative = (a < 0) != (b < 0);
      if (!exact && node.op == Op::FloorDivide && negative)
        --v;
      if (!exact && node.op == Op::CeilDivide && !negative)
        ++v;
      break;
    }
    case Op::Min:
      v = a < b ? a : b;
      break;
    case Op::Max:
      v = a > b ? a : b;
      break;
    }
    if (overflow)
      return fail("integer overflow");
  }
  result = values.back();
  return Status::success();
}

} // namespace nsa::rt
