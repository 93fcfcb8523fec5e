//===- Json.h - Strict JSON with source positions ---------------*- C++ -*-===//
//
// The manifest's JSON parser. It follows RFC 8259 strictly (no comments, no
// trailing commas, no NaN, duplicate keys rejected, UTF-8 validated) because
// the manifest is written by a program: anything loose is a compiler bug to
// report, not to guess around. Every value remembers its line and column so
// that schema errors point into the file.
//
//===----------------------------------------------------------------------===//

#ifndef NSA_RUNTIME_JSON_H
#define NSA_RUNTIME_JSON_H

#include "Status.h"

#include <string>
#include <string_view>
#include <vector>

namespace nsa::rt {

struct JsonMember;

struct JsonValue {
  enum class Kind { Null, Bool, Number, String, Array, Object };

  Kind kind = Kind::Null;
  int line = 0;
  int column = 0;
  bool boolean = false;
  /// A string's decoded contents, or a number's literal text.
  std::string text;
  std::vector<JsonValue> elements;
  std::vector<JsonMember> members;

  /// A number literal without fraction or exponent.
  bool isIntegerLiteral() const;
  /// "null", "a boolean", ... for messages.
  const char *kindName() const;
};

struct JsonMember {
  std::string key;
  int line = 0;
  int column = 0;
  JsonValue value;
};

/// Parses `text` as one JSON document. Errors are NSA_ERROR_MANIFEST_SYNTAX
/// with "<sourceName>:<line>:<column>: <what>".
Status parseJson(std::string_view text, const std::string &sourceName,
                 JsonValue &result);

} // namespace nsa::rt

#endif // NSA_RUNTIME_JSON_H
