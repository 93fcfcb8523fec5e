//===- Json.cpp - Strict JSON with source positions -----------------------===//

#include "Json.h"

#include <cstdint>

namespace nsa::rt {

bool JsonValue::isIntegerLiteral() const {
  return kind == Kind::Number && text.find_first_of(".eE") == std::string::npos;
}

const char *JsonValue::kindName() const {
  switch (kind) {
  case Kind::Null:
    return "null";
  case Kind::Bool:
    return "a boolean";
  case Kind::Number:
    return "a number";
  case Kind::String:
    return "a string";
  case Kind::Array:
    return "an array";
  case Kind::Object:
    return "an object";
  }
  return "a value";
}

namespace {

// Deep enough for any manifest, shallow enough that hostile input cannot
// overflow the stack through recursion.
constexpr int MaxDepth = 64;

class Parser {
public:
  Parser(std::string_view text, const std::string &sourceName)
      : Text(text), SourceName(sourceName) {}

  Status parseDocument(JsonValue &result) {
    skipWhitespace();
    if (Status s = parseValue(result, 0); !s.ok())
      return s;
    skipWhitespace();
    if (Pos != Text.size())
      return error("unexpected content after the top-level value");
    return Status::success();
  }

private:
  std::string_view Text;
  const std::string &SourceName;
  size_t Pos = 0;
  int Line = 1;
  size_t LineStart = 0;

  int column() const { return static_cast<int>(Pos - LineStart) + 1; }
  bool atEnd() const { return Pos >= Text.size(); }
  char peek() const { return atEnd() ? '\0' : Text[Pos]; }

  Status errorAt(int line, int column, const std::string &message) const {
    return Status(NSA_ERROR_MANIFEST_SYNTAX,
                  format("%s:%d:%d: %s", SourceName.c_str(), line, column,
                         message.c_str()));
  }
  Status error(const std::string &message) const {
    return errorAt(Line, column(), message);
  }
  Status unexpected(const char *expected) const {
    if (atEnd())
      return error(format("expected %s, found the end of the input", expected));
    unsigned char c = static_cast<unsigned char>(Text[Pos]);
    if (c >= 0x20 && c < 0x7f)
      return error(format("expected %s, found '%c'", expected, c));
    return error(format("expected %s, found byte 0x%02x", expected, c));
  }

  void skipWhitespace() {
    while (!atEnd()) {
      char c = Text[Pos];
      if (c == '\n') {
        ++Pos;
        ++Line;
        LineStart = Pos;
      } else if (c == ' ' || c == '\t' || c == '\r') {
        ++Pos;
      } else {
        return;
      }
    }
  }

  bool consumeWord(std::string_view word) {
    if (Text.substr(Pos, word.size()) != word)
      return false;
    Pos += word.size();
    return true;
  }

  Status parseValue(JsonValue &value, int depth) {
    value.line = Line;
    value.column = column();
    switch (peek()) {
    case '{':
      return parseObject(value, depth);
    case '[':
      return parseArray(value, depth);
    case '"':
      value.kind = JsonValue::Kind::String;
      return parseString(value.text);
    case 't':
    case 'f':
      value.kind = JsonValue::Kind::Bool;
      value.boolean = peek() == 't';
      if (consumeWord(value.boolean ? "true" : "false"))
        return Status::success();
      return error("invalid literal (expected true, false or null)");
    case 'n':
      value.kind = JsonValue::Kind::Null;
      if (consumeWord("null"))
        return Status::success();
      return error("invalid literal (expected true, false or null)");
    default:
      if (peek() == '-' || (peek() >= '0' && peek() <= '9'))
        return parseNumber(value);
      return unexpected("a value");
    }
  }

  Status parseObject(JsonValue &value, int depth) {
    if (depth >= MaxDepth)
      return error(format("nesting deeper than %d levels", MaxDepth));
    value.kind = JsonValue::Kind::Object;
    ++Pos; // '{'
    skipWhitespace();
    if (peek() == '}') {
      ++Pos;
      return Status::success();
    }
    while (true) {
      JsonMember member;
      member.line = Line;
      member.column = column();
      if (peek() != '"')
        return unexpected("a string key");
      if (Status s = parseString(member.key); !s.ok())
        return s;
      for (const JsonMember &other : value.members)
        if (other.key == member.key)
          return errorAt(member.line, member.column,
                         format("duplicate key \"%s\" (first at line %d)",
                                member.key.c_str(), other.line));
      skipWhitespace();
      if (peek() != ':')
        return unexpected("':' after the key");
      ++Pos;
      skipWhitespace();
      if (Status s = parseValue(member.value, depth + 1); !s.ok())
        return s;
      value.members.push_back(std::move(member));
      skipWhitespace();
      if (peek() == ',') {
        ++Pos;
        skipWhitespace();
        continue;
      }
      if (peek() == '}') {
        ++Pos;
        return Status::success();
      }
      return unexpected("',' or '}' in the object");
    }
  }

  Status parseArray(JsonValue &value, int depth) {
    if (depth >= MaxDepth)
      return error(format("nesting deeper than %d levels", MaxDepth));
    value.kind = JsonValue::Kind::Array;
    ++Pos; // '['
    skipWhitespace();
    if (peek() == ']') {
      ++Pos;
      return Status::success();
    }
    while (true) {
      JsonValue element;
      if (Status s = parseValue(element, depth + 1); !s.ok())
        return s;
      value.elements.push_back(std::move(element));
      skipWhitespace();
      if (peek() == ',') {
        ++Pos;
        skipWhitespace();
        continue;
      }
      if (peek() == ']') {
        ++Pos;
        return Status::success();
      }
      return unexpected("',' or ']' in the array");
    }
  }

  Status parseNumber(JsonValue &value) {
    value.kind = JsonValue::Kind::Number;
    size_t start = Pos;
    auto digits = [&] {
      size_t first = Pos;
      while (peek() >= '0' && peek() <= '9')
        ++Pos;
      return Pos - first;
    };
    if (peek() == '-')
      ++Pos;
    if (peek() == '0') {
      ++Pos;
      if (peek() >= '0' && peek() <= '9')
        return error("numbers may not have leading zeros");
    } else if (digits() == 0) {
      return unexpected("a digit");
    }
    if (peek() == '.') {
      ++Pos;
      if (digits() == 0)
        return unexpected("a digit after the decimal point");
    }
    if (peek() == 'e' || peek() == 'E') {
      ++Pos;
      if (peek() == '+' || peek() == '-')
        ++Pos;
      if (digits() == 0)
        return unexpected("a digit in the exponent");
    }
    value.text = std::string(Text.substr(start, Pos - start));
    return Status::success();
  }

  Status parseHex4(uint32_t &code) {
    code = 0;
    for (int i = 0; i < 4; ++i, ++Pos) {
      char c = peek();
      code <<= 4;
      if (c >= '0' && c <= '9')
        code |= c - '0';
      else if (c >= 'a' && c <= 'f')
        code |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        code |= c - 'A' + 10;
      else
        return unexpected("a hexadecimal digit in the \\u escape");
    }
    return Status::success();
  }

  static void appendUtf8(std::string &out, uint32_t code) {
    if (code < 0x80) {
      out += static_cast<char>(code);
    } else if (code < 0x800) {
      out += static_cast<char>(0xc0 | (code >> 6));
      out += static_cast<char>(0x80 | (code & 0x3f));
    } else if (code < 0x10000) {
      out += static_cast<char>(0xe0 | (code >> 12));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (code & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (code >> 18));
      out += static_cast<char>(0x80 | ((code >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (code & 0x3f));
    }
  }

  Status parseEscape(std::string &out) {
    ++Pos; // '\'
    char c = peek();
    const char *simple = "\"\\/bfnrt";
    const char *decoded = "\"\\/\b\f\n\r\t";
    for (int i = 0; simple[i]; ++i) {
      if (c == simple[i]) {
        out += decoded[i];
        ++Pos;
        return Status::success();
      }
    }
    if (c != 'u')
      return unexpected("an escape character (one of \"\\/bfnrtu)");
    ++Pos;
    uint32_t code;
    if (Status s = parseHex4(code); !s.ok())
      return s;
    if (code >= 0xdc00 && code <= 0xdfff)
      return error("unpaired low surrogate in a \\u escape");
    if (code >= 0xd800 && code <= 0xdbff) {
      if (!consumeWord("\\u"))
        return error("high surrogate not followed by a \\u low surrogate");
      uint32_t low;
      if (Status s = parseHex4(low); !s.ok())
        return s;
      if (low < 0xdc00 || low > 0xdfff)
        return error("high surrogate not followed by a low surrogate");
      code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
    }
    appendUtf8(out, code);
    return Status::success();
  }

  // Copies one UTF-8 encoded character, rejecting overlong forms,
  // surrogates and code points past U+10FFFF.
  Status copyUtf8(std::string &out) {
    unsigned char lead = static_cast<unsigned char>(Text[Pos]);
    int length;
    uint32_t code, minimum;
    if (lead >= 0xc2 && lead <= 0xdf) {
      length = 2, code = lead & 0x1f, minimum = 0x80;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3, code = lead & 0x0f, minimum = 0x800;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4, code = lead & 0x07, minimum = 0x10000;
    } else {
      return error(format("invalid UTF-8 byte 0x%02x", lead));
    }
    if (Pos + length > Text.size())
      return error("truncated UTF-8 sequence");
    for (int i = 1; i < length; ++i) {
      unsigned char next = static_cast<unsigned char>(Text[Pos + i]);
      if ((next & 0xc0) != 0x80)
        return error("invalid UTF-8 continuation byte");
      code = (code << 6) | (next & 0x3f);
    }
    if (code < minimum || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
      return error("invalid UTF-8 sequence");
    out.append(Text.substr(Pos, length));
    Pos += length;
    return Status::success();
  }

  Status parseString(std::string &out) {
    ++Pos; // '"'
    while (true) {
      if (atEnd())
        return error("unterminated string");
      unsigned char c = static_cast<unsigned char>(Text[Pos]);
      if (c == '"') {
        ++Pos;
        return Status::success();
      }
      if (c < 0x20)
        return error(
            format("control character 0x%02x in a string (escape it)", c));
      Status s = Status::success();
      if (c == '\\')
        s = parseEscape(out);
      else if (c >= 0x80)
        s = copyUtf8(out);
      else
        out += Text[Pos++];
      if (!s.ok())
        return s;
    }
  }
};

} // namespace

Status parseJson(std::string_view text, const std::string &sourceName,
                 JsonValue &result) {
  result = JsonValue();
  return Parser(text, sourceName).parseDocument(result);
}

} // namespace nsa::rt
