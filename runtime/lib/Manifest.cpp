//===- Manifest.cpp - The kernel manifest, parsed and checked -------------===//

#include "Manifest.h"

#include "DType.h"
#include "Json.h"

#include <charconv>
#include <climits>
#include <cmath>
#include <set>

namespace nsa::rt {

const std::array<ConfigIntField, NumConfigInts> ConfigIntFields = {{
    {"l", &nsa_config::l, 1},
    {"d", &nsa_config::d, 1},
    {"l_sel", &nsa_config::l_sel, 1},
    {"n", &nsa_config::n, 1},
    {"init", &nsa_config::init, 0},
    {"local", &nsa_config::local, 1},
    {"w", &nsa_config::w, 1},
    {"G", &nsa_config::G, 1},
    {"Dk", &nsa_config::Dk, 1},
    {"Dv", &nsa_config::Dv, 1},
}};

const Kernel *Manifest::find(std::string_view name) const {
  for (const Kernel &kernel : kernels)
    if (kernel.name == name)
      return &kernel;
  return nullptr;
}

namespace {

constexpr const char *FormatName = "nsa-kernel-manifest";
constexpr int64_t FormatVersion = 1;

bool isIdentifier(std::string_view s) {
  if (s.empty())
    return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    bool digit = c >= '0' && c <= '9';
    if (!letter && !(digit && i > 0))
      return false;
  }
  return true;
}

// PTX entry names may also use '$' (PTX ISA, Identifiers).
bool isPtxIdentifier(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9'))
    return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_' || c == '$'))
      return false;
  return true;
}

bool isFunctionName(std::string_view s) {
  return s == "ceil" || s == "min" || s == "max";
}

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.substr(s.size() - suffix.size()) == suffix;
}

// Reads the JSON tree against the schema, producing errors that give the
// position and the path of the offending field.
class SchemaReader {
public:
  explicit SchemaReader(const std::string &sourceName)
      : SourceName(sourceName) {}

  Status error(int line, int column, const std::string &path,
               const std::string &message) const {
    std::string where = path.empty() ? "" : path + ": ";
    return Status(NSA_ERROR_MANIFEST_SCHEMA,
                  format("%s:%d:%d: %s%s", SourceName.c_str(), line, column,
                         where.c_str(), message.c_str()));
  }
  Status error(const JsonValue &at, const std::string &path,
               const std::string &message) const {
    return error(at.line, at.column, path, message);
  }

  Status expectKind(const JsonValue &value, JsonValue::Kind kind,
                    const char *kindName, const std::string &path) const {
    if (value.kind == kind)
      return Status::success();
    return error(value, path,
                 format("expected %s, got %s", kindName, value.kindName()));
  }

  /// Rejects keys outside `allowed`: a misspelt optional field would
  /// otherwise be silently ignored.
  Status checkKeys(const JsonValue &object, const std::string &path,
                   std::initializer_list<const char *> allowed) const {
    for (const JsonMember &member : object.members) {
      bool known = false;
      for (const char *key : allowed)
        known |= member.key == key;
      if (known)
        continue;
      std::string list;
      for (const char *key : allowed)
        list += (list.empty() ? "" : ", ") + std::string(key);
      return error(member.line, member.column, path,
                   format("unknown field \"%s\" (expected one of: %s)",
                          member.key.c_str(), list.c_str()));
    }
    return Status::success();
  }

  static const JsonValue *find(const JsonValue &object, const char *key) {
    for (const JsonMember &member : object.members)
      if (member.key == key)
        return &member.value;
    return nullptr;
  }

  Status require(const JsonValue &object, const std::string &path,
                 const char *key, const JsonValue *&value) const {
    value = find(object, key);
    if (!value)
      return error(object, path, format("missing field \"%s\"", key));
    return Status::success();
  }

  /// require() and readString() of one field; `value` is left on the field
  /// so that later checks of its content can point at it.
  Status requireString(const JsonValue &object, const std::string &path,
                       const char *key, const JsonValue *&value,
                       std::string &result) const {
    if (Status s = require(object, path, key, value); !s.ok())
      return s;
    return readString(*value, path.empty() ? key : path + "." + key, result);
  }

  Status readString(const JsonValue &value, const std::string &path,
                    std::string &result) const {
    if (Status s = expectKind(value, JsonValue::Kind::String, "a string", path);
        !s.ok())
      return s;
    result = value.text;
    return Status::success();
  }

  Status readInteger(const JsonValue &value, const std::string &path,
                     int64_t minimum, int64_t maximum, int64_t &result) const {
    if (!value.isIntegerLiteral())
      return error(value, path,
                   format("expected an integer, got %s",
                          value.kind == JsonValue::Kind::Number
                              ? value.text.c_str()
                              : value.kindName()));
    auto [end, ec] = std::from_chars(
        value.text.data(), value.text.data() + value.text.size(), result);
    if (ec != std::errc() || result < minimum || result > maximum)
      return error(value, path,
                   format("%s is out of range [%lld, %lld]", value.text.c_str(),
                          static_cast<long long>(minimum),
                          static_cast<long long>(maximum)));
    return Status::success();
  }

  Status readFiniteNumber(const JsonValue &value, const std::string &path,
                          double &result) const {
    if (Status s = expectKind(value, JsonValue::Kind::Number, "a number", path);
        !s.ok())
      return s;
    auto [end, ec] = std::from_chars(
        value.text.data(), value.text.data() + value.text.size(), result);
    if (ec != std::errc() || !std::isfinite(result))
      return error(value, path,
                   format("%s is not a finite double", value.text.c_str()));
    return Status::success();
  }

  /// An expression is a string in the grammar, or a plain JSON integer.
  Status readExpression(const JsonValue &value, const std::string &path,
                        Expression &result) const {
    std::string text;
    if (value.isIntegerLiteral()) {
      text = value.text;
    } else if (value.kind == JsonValue::Kind::String) {
      text = value.text;
    } else {
      return error(value, path,
                   format("expected an expression (a string or an integer), "
                          "got %s",
                          value.kindName()));
    }
    Status s = Expression::parse(text, result);
    if (!s.ok())
      return error(value, path,
                   format("bad expression \"%s\": %s", text.c_str(),
                          s.message().c_str()));
    return Status::success();
  }

private:
  const std::string &SourceName;
};

class ManifestParser {
public:
  ManifestParser(const std::string &sourceName, const std::string &baseDir,
                 Manifest &result)
      : Reader(sourceName), BaseDir(baseDir), Result(result) {}

  Status parse(const JsonValue &root) {
    if (Status s = Reader.expectKind(root, JsonValue::Kind::Object, "an object",
                                     "manifest");
        !s.ok())
      return s;
    if (Status s = Reader.checkKeys(root, "",
                                    {"format", "version", "target", "kernels"});
        !s.ok())
      return s;
    const JsonValue *field;
    std::string formatName;
    if (Status s = Reader.requireString(root, "", "format", field, formatName);
        !s.ok())
      return s;
    if (formatName != FormatName)
      return Reader.error(*field, "format",
                          format("expected \"%s\", got \"%s\"", FormatName,
                                 formatName.c_str()));
    int64_t version;
    if (Status s = Reader.require(root, "", "version", field); !s.ok())
      return s;
    if (Status s = Reader.readInteger(*field, "version", 0, INT64_MAX, version);
        !s.ok())
      return s;
    if (version != FormatVersion)
      return Reader.error(*field, "version",
                          format("this runtime reads version %lld, the "
                                 "manifest is version %lld",
                                 static_cast<long long>(FormatVersion),
                                 static_cast<long long>(version)));
    if (Status s =
            Reader.requireString(root, "", "target", field, Result.target);
        !s.ok())
      return s;
    if (Status s = Reader.require(root, "", "kernels", field); !s.ok())
      return s;
    if (Status s = Reader.expectKind(*field, JsonValue::Kind::Array, "an array",
                                     "kernels");
        !s.ok())
      return s;
    for (size_t i = 0; i < field->elements.size(); ++i) {
      Kernel kernel;
      if (Status s = parseKernel(field->elements[i], format("kernels[%zu]", i),
                                 kernel);
          !s.ok())
        return s;
      Result.kernels.push_back(std::move(kernel));
    }
    return Status::success();
  }

private:
  SchemaReader Reader;
  const std::string &BaseDir;
  Manifest &Result;

  Status parseKernel(const JsonValue &object, std::string path,
                     Kernel &kernel) {
    if (Status s = Reader.expectKind(object, JsonValue::Kind::Object,
                                     "an object", path);
        !s.ok())
      return s;
    const JsonValue *field;
    if (Status s =
            Reader.requireString(object, path, "name", field, kernel.name);
        !s.ok())
      return s;
    if (!isPtxIdentifier(kernel.name))
      return Reader.error(
          *field, path + ".name",
          format("\"%s\" is not a PTX entry name", kernel.name.c_str()));
    if (Result.find(kernel.name))
      return Reader.error(
          *field, path + ".name",
          format("duplicate kernel name \"%s\"", kernel.name.c_str()));
    // From here on, messages say which kernel they are about.
    path += " (" + kernel.name + ")";
    if (Status s =
            Reader.checkKeys(object, path,
                             {"name", "op", "module", "config", "derived",
                              "params", "grid", "block", "shared_bytes"});
        !s.ok())
      return s;

    if (Status s = Reader.requireString(object, path, "op", field, kernel.op);
        !s.ok())
      return s;
    if (!isIdentifier(kernel.op))
      return Reader.error(
          *field, path + ".op",
          format("\"%s\" is not an op name", kernel.op.c_str()));

    if (Status s = parseModule(object, path, kernel); !s.ok())
      return s;
    if (Status s = Reader.require(object, path, "config", field); !s.ok())
      return s;
    if (Status s = parseConfig(*field, path + ".config", kernel.config);
        !s.ok())
      return s;
    if (Status s = Reader.require(object, path, "params", field); !s.ok())
      return s;
    if (Status s = parseParams(*field, path + ".params", kernel.params);
        !s.ok())
      return s;
    if (const JsonValue *derived = SchemaReader::find(object, "derived"))
      if (Status s = parseDerived(*derived, path + ".derived", kernel); !s.ok())
        return s;
    if (Status s = Reader.require(object, path, "grid", field); !s.ok())
      return s;
    if (Status s = parseGrid(*field, path + ".grid", kernel); !s.ok())
      return s;
    if (Status s = Reader.require(object, path, "block", field); !s.ok())
      return s;
    if (Status s = parseBlock(*field, path + ".block", kernel); !s.ok())
      return s;
    if (Status s = Reader.require(object, path, "shared_bytes", field); !s.ok())
      return s;
    int64_t shared;
    if (Status s = Reader.readInteger(*field, path + ".shared_bytes", 0,
                                      INT32_MAX, shared);
        !s.ok())
      return s;
    kernel.sharedBytes = static_cast<int32_t>(shared);
    return checkSymbols(object, path, kernel);
  }

  Status parseModule(const JsonValue &object, const std::string &path,
                     Kernel &kernel) {
    const JsonValue *field;
    std::string module;
    if (Status s = Reader.requireString(object, path, "module", field, module);
        !s.ok())
      return s;
    // The driver tells PTX from cubin by content, but the suffix documents
    // which one the compiler meant and catches a manifest pointing at the
    // wrong file.
    if (!endsWith(module, ".ptx") && !endsWith(module, ".cubin"))
      return Reader.error(
          *field, path + ".module",
          format("\"%s\" must end in .ptx or .cubin", module.c_str()));
    if (module.find('\0') != std::string::npos)
      return Reader.error(*field, path + ".module", "contains a NUL byte");
    kernel.modulePath =
        module[0] == '/' || BaseDir.empty() ? module : BaseDir + "/" + module;
    return Status::success();
  }

  Status parseConfig(const JsonValue &object, const std::string &path,
                     KernelConfig &config) {
    if (Status s = Reader.expectKind(object, JsonValue::Kind::Object,
                                     "an object", path);
        !s.ok())
      return s;
    if (Status s = Reader.checkKeys(object, path,
                                    {"l", "d", "l_sel", "n", "init", "local",
                                     "w", "scale", "G", "Dk", "Dv", "dtype"});
        !s.ok())
      return s;
    // Every field is required, null included: a kernel that forgot a field
    // must not silently match every configuration.
    const JsonValue *field;
    for (size_t i = 0; i < NumConfigInts; ++i) {
      const ConfigIntField &info = ConfigIntFields[i];
      std::string fieldPath = path + "." + info.name;
      if (Status s = Reader.require(object, path, info.name, field); !s.ok())
        return s;
      if (field->kind == JsonValue::Kind::Null)
        continue;
      int64_t value;
      if (Status s = Reader.readInteger(*field, fieldPath, info.minimum,
                                        INT32_MAX, value);
          !s.ok())
        return s;
      config.ints[i] = value;
    }
    if (Status s = Reader.require(object, path, "scale", field); !s.ok())
      return s;
    if (field->kind != JsonValue::Kind::Null) {
      double scale;
      if (Status s = Reader.readFiniteNumber(*field, path + ".scale", scale);
          !s.ok())
        return s;
      if (scale <= 0)
        return Reader.error(*field, path + ".scale",
                            format("%s is not positive", field->text.c_str()));
      config.scale = scale;
    }
    if (Status s = Reader.require(object, path, "dtype", field); !s.ok())
      return s;
    if (field->kind != JsonValue::Kind::Null) {
      std::string name;
      if (Status s = Reader.readString(*field, path + ".dtype", name); !s.ok())
        return s;
      nsa_dtype dtype;
      if (!parseDtype(name, dtype) ||
          (dtype != NSA_DTYPE_BF16 && dtype != NSA_DTYPE_F16))
        return Reader.error(*field, path + ".dtype",
                            format("\"%s\" is not an activation dtype (bf16 "
                                   "or f16)",
                                   name.c_str()));
      config.dtype = dtype;
    }
    return Status::success();
  }

  Status parseParams(const JsonValue &array, const std::string &path,
                     std::vector<Param> &params) {
    if (Status s =
            Reader.expectKind(array, JsonValue::Kind::Array, "an array", path);
        !s.ok())
      return s;
    for (size_t i = 0; i < array.elements.size(); ++i) {
      Param param;
      if (Status s =
              parseParam(array.elements[i], format("%s[%zu]", path.c_str(), i),
                         params, param);
          !s.ok())
        return s;
      params.push_back(std::move(param));
    }
    return Status::success();
  }

  Status parseParam(const JsonValue &object, std::string path,
                    const std::vector<Param> &earlier, Param &param) {
    if (Status s = Reader.expectKind(object, JsonValue::Kind::Object,
                                     "an object", path);
        !s.ok())
      return s;
    const JsonValue *field;
    if (Status s =
            Reader.requireString(object, path, "name", field, param.name);
        !s.ok())
      return s;
    if (!isIdentifier(param.name))
      return Reader.error(
          *field, path + ".name",
          format("\"%s\" is not an identifier", param.name.c_str()));
    for (const Param &other : earlier)
      if (other.name == param.name)
        return Reader.error(
            *field, path + ".name",
            format("duplicate parameter name \"%s\"", param.name.c_str()));
    path += " (" + param.name + ")";

    std::string kind;
    if (Status s = Reader.requireString(object, path, "kind", field, kind);
        !s.ok())
      return s;
    if (kind == "tensor")
      return parseTensorParam(object, path, param);
    if (kind == "i32" || kind == "i64") {
      param.kind = kind == "i32" ? ParamKind::I32 : ParamKind::I64;
      if (Status s = Reader.checkKeys(object, path, {"name", "kind", "value"});
          !s.ok())
        return s;
      if (const JsonValue *value = SchemaReader::find(object, "value")) {
        param.intValue.emplace();
        return Reader.readExpression(*value, path + ".value", *param.intValue);
      }
      return Status::success();
    }
    if (kind == "f32") {
      param.kind = ParamKind::F32;
      if (Status s = Reader.checkKeys(object, path, {"name", "kind", "value"});
          !s.ok())
        return s;
      if (const JsonValue *value = SchemaReader::find(object, "value")) {
        double number;
        if (Status s = Reader.readFiniteNumber(*value, path + ".value", number);
            !s.ok())
          return s;
        param.floatValue = number;
      }
      return Status::success();
    }
    return Reader.error(*field, path + ".kind",
                        format("\"%s\" is not a parameter kind (tensor, i32, "
                               "i64 or f32)",
                               kind.c_str()));
  }

  Status parseTensorParam(const JsonValue &object, const std::string &path,
                          Param &param) {
    param.kind = ParamKind::Tensor;
    if (Status s = Reader.checkKeys(
            object, path, {"name", "kind", "dtype", "shape", "align"});
        !s.ok())
      return s;
    const JsonValue *field;
    std::string dtype;
    if (Status s = Reader.requireString(object, path, "dtype", field, dtype);
        !s.ok())
      return s;
    if (!parseDtype(dtype, param.dtype))
      return Reader.error(*field, path + ".dtype",
                          format("\"%s\" is not a dtype (bf16, f16, f32, i32 "
                                 "or i64)",
                                 dtype.c_str()));
    if (Status s = Reader.require(object, path, "shape", field); !s.ok())
      return s;
    if (Status s = Reader.expectKind(*field, JsonValue::Kind::Array, "an array",
                                     path + ".shape");
        !s.ok())
      return s;
    if (field->elements.size() > NSA_MAX_RANK)
      return Reader.error(*field, path + ".shape",
                          format("rank %zu exceeds NSA_MAX_RANK (%d)",
                                 field->elements.size(), NSA_MAX_RANK));
    for (size_t i = 0; i < field->elements.size(); ++i) {
      Expression dim;
      if (Status s = Reader.readExpression(
              field->elements[i], format("%s.shape[%zu]", path.c_str(), i),
              dim);
          !s.ok())
        return s;
      param.shape.push_back(std::move(dim));
    }
    param.align = dtypeSize(param.dtype);
    if (const JsonValue *align = SchemaReader::find(object, "align")) {
      if (Status s =
              Reader.readInteger(*align, path + ".align", 1, 4096, param.align);
          !s.ok())
        return s;
      if ((param.align & (param.align - 1)) != 0)
        return Reader.error(*align, path + ".align",
                            format("%lld is not a power of two",
                                   static_cast<long long>(param.align)));
    }
    return Status::success();
  }

  Status parseDerived(const JsonValue &object, const std::string &path,
                      Kernel &kernel) {
    if (Status s = Reader.expectKind(object, JsonValue::Kind::Object,
                                     "an object", path);
        !s.ok())
      return s;
    for (const JsonMember &member : object.members) {
      std::string memberPath = path + "." + member.key;
      if (!isIdentifier(member.key) || isFunctionName(member.key))
        return Reader.error(
            member.line, member.column, path,
            format("\"%s\" is not a symbol name", member.key.c_str()));
      for (const ConfigIntField &info : ConfigIntFields)
        if (member.key == info.name)
          return Reader.error(member.line, member.column, path,
                              format("\"%s\" is a configuration field and "
                                     "cannot be derived",
                                     member.key.c_str()));
      Expression expression;
      if (Status s =
              Reader.readExpression(member.value, memberPath, expression);
          !s.ok())
        return s;
      kernel.derived.emplace_back(member.key, std::move(expression));
    }
    return Status::success();
  }

  Status parseGrid(const JsonValue &array, const std::string &path,
                   Kernel &kernel) {
    if (array.kind != JsonValue::Kind::Array || array.elements.size() != 3)
      return Reader.error(array, path,
                          "expected an array of three expressions (x, y, z)");
    for (size_t i = 0; i < 3; ++i)
      if (Status s = Reader.readExpression(array.elements[i],
                                           format("%s[%zu]", path.c_str(), i),
                                           kernel.grid[i]);
          !s.ok())
        return s;
    return Status::success();
  }

  Status parseBlock(const JsonValue &array, const std::string &path,
                    Kernel &kernel) {
    if (array.kind != JsonValue::Kind::Array || array.elements.size() != 3)
      return Reader.error(array, path,
                          "expected an array of three integers (x, y, z)");
    // CUDA's limits on every card since sm_20.
    const int64_t limits[3] = {1024, 1024, 64};
    int64_t threads = 1;
    for (size_t i = 0; i < 3; ++i) {
      int64_t value;
      if (Status s = Reader.readInteger(array.elements[i],
                                        format("%s[%zu]", path.c_str(), i), 1,
                                        limits[i], value);
          !s.ok())
        return s;
      kernel.block[i] = static_cast<int32_t>(value);
      threads *= value;
    }
    if (threads > 1024)
      return Reader.error(array, path,
                          format("%lld threads per block exceed CUDA's 1024",
                                 static_cast<long long>(threads)));
    return Status::success();
  }

  // Every symbol read anywhere must be bound at launch: a configuration
  // field the kernel fixes, a symbol that appears alone as some tensor
  // dimension (bound from the caller's shape), or an earlier derived one.
  Status checkSymbols(const JsonValue &object, const std::string &path,
                      const Kernel &kernel) {
    std::set<std::string, std::less<>> bound;
    std::set<std::string, std::less<>> configNames;
    for (size_t i = 0; i < NumConfigInts; ++i) {
      configNames.insert(ConfigIntFields[i].name);
      if (kernel.config.ints[i])
        bound.insert(ConfigIntFields[i].name);
    }
    std::set<std::string, std::less<>> derivedNames;
    for (const auto &[name, expression] : kernel.derived)
      derivedNames.insert(name);
    for (const Param &param : kernel.params)
      for (const Expression &dim : param.shape)
        if (const std::string *symbol = dim.bareSymbol();
            symbol && !derivedNames.count(*symbol))
          bound.insert(*symbol);

    auto check = [&](const Expression &expression,
                     const std::string &where) -> Status {
      for (const std::string &symbol : expression.symbols()) {
        if (bound.count(symbol))
          continue;
        std::string why =
            configNames.count(symbol)
                ? "the kernel's configuration leaves it null and no tensor "
                  "dimension binds it"
            : derivedNames.count(symbol)
                ? "it is derived later in \"derived\""
                : "no tensor dimension is exactly this symbol, and it "
                  "is neither a configuration field nor derived";
        return Reader.error(object, path,
                            format("%s: symbol '%s' in \"%s\" is unbound: %s",
                                   where.c_str(), symbol.c_str(),
                                   expression.text().c_str(), why.c_str()));
      }
      return Status::success();
    };
    for (const auto &[name, expression] : kernel.derived) {
      if (Status s = check(expression, "derived." + name); !s.ok())
        return s;
      bound.insert(name);
    }
    for (const Param &param : kernel.params) {
      for (size_t i = 0; i < param.shape.size(); ++i)
        if (Status s = check(param.shape[i], format("params (%s).shape[%zu]",
                                                    param.name.c_str(), i));
            !s.ok())
          return s;
      if (param.intValue)
        if (Status s = check(*param.intValue,
                             format("params (%s).value", param.name.c_str()));
            !s.ok())
          return s;
    }
    for (size_t i = 0; i < 3; ++i)
      if (Status s = check(kernel.grid[i], format("grid[%zu]", i)); !s.ok())
        return s;
    return Status::success();
  }
};

} // namespace

Status parseManifest(std::string_view json, const std::string &sourceName,
                     const std::string &baseDir, Manifest &result) {
  result = Manifest();
  result.sourceName = sourceName;
  JsonValue root;
  if (Status s = parseJson(json, sourceName, root); !s.ok())
    return s;
  return ManifestParser(sourceName, baseDir, result).parse(root);
}

} // namespace nsa::rt
