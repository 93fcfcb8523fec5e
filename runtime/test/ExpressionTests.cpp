//===- ExpressionTests.cpp - The manifest's expression grammar ------------===//

#include "Check.h"

#include <string>
#include <vector>

namespace nsa::test {

namespace {

struct Binding {
  const char *name;
  int64_t value;
};

nsa_status evaluate(const std::string &text,
                    const std::vector<Binding> &bindings, int64_t &result) {
  std::vector<const char *> names;
  std::vector<int64_t> values;
  for (const Binding &b : bindings) {
    names.push_back(b.name);
    values.push_back(b.value);
  }
  return nsa_eval_expression(text.c_str(), names.data(), values.data(),
                             static_cast<int32_t>(names.size()), &result);
}

void expectValue(const std::string &text, const std::vector<Binding> &bindings,
                 int64_t want) {
  int64_t got = 0;
  nsa_status status = evaluate(text, bindings, got);
  std::string where;
  for (const Binding &b : bindings)
    where += std::string(where.empty() ? " with " : ", ") + b.name + "=" +
             std::to_string(b.value);
  check(status == NSA_SUCCESS && got == want,
        "expression: " + text + where + " = " + std::to_string(want),
        status == NSA_SUCCESS ? "got " + std::to_string(got)
                              : nsa_last_error_message());
}

void expectError(const std::string &text, const std::string &needle) {
  int64_t got;
  nsa_status status = evaluate(text, {{"T", 100}, {"zero", 0}}, got);
  expectStatus(status, NSA_ERROR_EXPRESSION, needle,
               "expression error: \"" + text + "\"");
}

} // namespace

void runExpressionTests() {
  // The grid rule of a 16-token query tile, on ragged and exact T.
  expectValue("ceil(T/16)", {{"T", 1000}}, 63);
  expectValue("ceil(T/16)", {{"T", 1008}}, 63);
  expectValue("ceil(T/16)", {{"T", 1009}}, 64);
  expectValue("ceil(T/16)", {{"T", 0}}, 0);
  // Nc(T) of SPEC.md section 1 with l=32, d=16: '/' floors, so T < l gives 0.
  const char *nc = "max(0, (T - l)/d + 1)";
  expectValue(nc, {{"T", 0}, {"l", 32}, {"d", 16}}, 0);
  expectValue(nc, {{"T", 20}, {"l", 32}, {"d", 16}}, 0);
  expectValue(nc, {{"T", 31}, {"l", 32}, {"d", 16}}, 0);
  expectValue(nc, {{"T", 32}, {"l", 32}, {"d", 16}}, 1);
  expectValue(nc, {{"T", 47}, {"l", 32}, {"d", 16}}, 1);
  expectValue(nc, {{"T", 48}, {"l", 32}, {"d", 16}}, 2);
  expectValue(nc, {{"T", 65536}, {"l", 32}, {"d", 16}}, 4095);
  // Precedence, associativity, unary minus, rounding of negatives.
  expectValue("2 + 3*4", {}, 14);
  expectValue("(2 + 3)*4", {}, 20);
  expectValue("10 - 2 - 3", {}, 5);
  expectValue("100/10/5", {}, 2);
  expectValue("-T + 5", {{"T", 7}}, -2);
  expectValue("--T", {{"T", 7}}, 7);
  expectValue("-7/2", {}, -4);
  expectValue("ceil(-7/2)", {}, -3);
  expectValue("7/-2", {}, -4);
  expectValue("ceil(7/-2)", {}, -3);
  expectValue("ceil((T + 1)/2)", {{"T", 4}}, 3);
  expectValue("min(T, 5) + max(T, 5)", {{"T", 9}}, 14);
  expectValue("max(min(T, 64), 16)", {{"T", 3}}, 16);
  expectValue("G*HKV", {{"G", 16}, {"HKV", 4}}, 64);
  expectValue("l_sel2 * 2", {{"l_sel2", 21}}, 42);
  expectValue("9223372036854775807", {}, INT64_MAX);

  expectError("", "column 1: expected an integer, a symbol or '('");
  expectError("T +", "column 4: expected an integer, a symbol or '('");
  expectError("(T", "column 3: expected ')'");
  expectError("T)", "column 2: expected an operator or the end");
  expectError("T $ 2", "column 3: expected an operator");
  expectError("2T", "column 2: expected an operator");
  expectError("ceil(T)", "ceil() takes a division");
  expectError("ceil(T/2 + 1)", "ceil() takes a division");
  expectError("min(T)", "expected ','");
  expectError("max(T, 1, 2)", "expected ')'");
  expectError("min + 1", "'min' is a function");
  expectError("foo(T)", "expected an operator or the end");
  expectError("99999999999999999999", "does not fit in 64 bits");
  expectError(std::string(40, '(') + "T" + std::string(40, ')'),
              "nested deeper than 32 levels");
  expectError("T/zero", "division by zero in 'T/zero'");
  expectError("ceil(T/zero)", "division by zero");
  expectError("9223372036854775807 + 1", "integer overflow");
  expectError("(-9223372036854775807 - 1)/-1", "integer overflow");
  expectError("-(-9223372036854775807 - 1)", "integer overflow");
  expectError("4294967296 * 4294967296", "integer overflow");
  expectError("T + HKV", "unbound symbol 'HKV'");

  int64_t result;
  expectStatus(nsa_eval_expression(nullptr, nullptr, nullptr, 0, &result),
               NSA_ERROR_NULL_ARGUMENT, "'expression' is null",
               "expression: null text");
  expectStatus(nsa_eval_expression("T", nullptr, nullptr, 1, &result),
               NSA_ERROR_NULL_ARGUMENT, "'symbols' is null",
               "expression: null symbol table");
  expectStatus(nsa_eval_expression("1", nullptr, nullptr, -1, &result),
               NSA_ERROR_INVALID_ARGUMENT, "num_symbols is -1",
               "expression: negative symbol count");
  expectStatus(nsa_eval_expression("1", nullptr, nullptr, 0, nullptr),
               NSA_ERROR_NULL_ARGUMENT, "'result' is null",
               "expression: null result");
}

} // namespace nsa::test
