//===- ManifestTests.cpp - Loading manifests, valid and malformed ---------===//

#include "Check.h"
#include "Fixtures.h"

#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace nsa::test {

namespace {

// A one-kernel manifest that every malformed case edits.
const char *Header = R"json({
  "format": "nsa-kernel-manifest",
  "version": 1,
  "target": "sm_90a",
  "kernels": [
)json";
const char *KernelText = R"json(    {
      "name": "k1",
      "op": "window_attention",
      "module": "m.ptx",
      "config": {"l": 32, "d": 16, "l_sel": 64, "n": 16, "init": 1, "local": 2, "w": 512, "scale": 0.125, "G": 4, "Dk": 64, "Dv": 64, "dtype": "bf16"},
      "derived": {"HQ": "G*HKV"},
      "params": [
        {"name": "q", "kind": "tensor", "dtype": "bf16", "shape": ["B", "T", "HQ", "Dk"]},
        {"name": "k", "kind": "tensor", "dtype": "bf16", "shape": ["B", "T", "HKV", "Dk"]},
        {"name": "T", "kind": "i32", "value": "T"}
      ],
      "grid": ["ceil(T/16)", "HKV", "B"],
      "block": [128, 1, 1],
      "shared_bytes": 0
    })json";
const char *Footer = "\n  ]\n}\n";

std::string minimalManifest() {
  return std::string(Header) + KernelText + Footer;
}

using Edits = std::vector<std::pair<std::string, std::string>>;

struct Case {
  const char *name;
  Edits edits;
  nsa_status status;
  const char *needle;
};

void expectRejected(const std::string &name, const std::string &json,
                    nsa_status status, const std::string &needle) {
  nsa_manifest *manifest = nullptr;
  nsa_status got =
      nsa_manifest_parse(json.data(), json.size(), "test.json", "", &manifest);
  expectStatus(got, status, needle, "manifest rejects " + name);
  check(manifest == nullptr, "manifest: no handle after " + name);
  nsa_manifest_destroy(manifest);
}

void runMalformedCases() {
  const std::vector<Case> cases = {
      // JSON syntax.
      {"a trailing comma",
       {{"\"shared_bytes\": 0", "\"shared_bytes\": 0,"}},
       NSA_ERROR_MANIFEST_SYNTAX,
       "test.json:20:5: expected a string key, "
       "found '}'"},
      {"a comment",
       {{"\"version\": 1,", "\"version\": 1, // v1"}},
       NSA_ERROR_MANIFEST_SYNTAX,
       "test.json:3:17: expected a string key, "
       "found '/'"},
      {"a duplicate key",
       {{"\"target\": \"sm_90a\",",
         "\"target\": \"sm_90a\", \"target\": \"sm_80\","}},
       NSA_ERROR_MANIFEST_SYNTAX,
       "duplicate key \"target\" (first at line 4)"},
      {"a missing colon",
       {{"\"version\": 1", "\"version\" 1"}},
       NSA_ERROR_MANIFEST_SYNTAX,
       "expected ':' after the key, found '1'"},
      {"a leading zero",
       {{"\"shared_bytes\": 0", "\"shared_bytes\": 01"}},
       NSA_ERROR_MANIFEST_SYNTAX,
       "numbers may not have leading zeros"},
      {"NaN",
       {{"\"scale\": 0.125", "\"scale\": NaN"}},
       NSA_ERROR_MANIFEST_SYNTAX,
       "expected a value, found 'N'"},
      {"a bare decimal point",
       {{"\"scale\": 0.125", "\"scale\": 1."}},
       NSA_ERROR_MANIFEST_SYNTAX,
       "expected a digit after the decimal point"},
      {"a misspelt literal",
       {{"\"derived\": {\"HQ\": \"G*HKV\"}", "\"derived\": nul"}},
       NSA_ERROR_MANIFEST_SYNTAX,
       "invalid literal"},
      {"a raw tab in a string",
       {{"\"sm_90a\"", "\"sm_\t90a\""}},
       NSA_ERROR_MANIFEST_SYNTAX,
       "control character 0x09 in a string"},
      {"an unknown escape",
       {{"\"sm_90a\"", "\"sm_\\x90a\""}},
       NSA_ERROR_MANIFEST_SYNTAX,
       "expected an escape character"},
      {"a lone low surrogate",
       {{"\"sm_90a\"", "\"\\udc00\""}},
       NSA_ERROR_MANIFEST_SYNTAX,
       "unpaired low surrogate"},
      {"a high surrogate without its pair",
       {{"\"sm_90a\"", "\"\\ud800x\""}},
       NSA_ERROR_MANIFEST_SYNTAX,
       "high surrogate not followed by"},
      {"invalid UTF-8",
       {{"\"sm_90a\"", "\"sm_\xff\""}},
       NSA_ERROR_MANIFEST_SYNTAX,
       "invalid UTF-8 byte 0xff"},
      {"an overlong UTF-8 form",
       {{"\"sm_90a\"", "\"\xe0\x80\xaf\""}},
       NSA_ERROR_MANIFEST_SYNTAX,
       "invalid UTF-8 sequence"},
      {"content after the document",
       {{"\n  ]\n}\n", "\n  ]\n}\n{}"}},
       NSA_ERROR_MANIFEST_SYNTAX,
       "unexpected content after the top-level"},
      // Top level.
      {"a missing format",
       {{"\"format\": \"nsa-kernel-manifest\",", ""}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "test.json:1:1: missing field \"format\""},
      {"a foreign format",
       {{"nsa-kernel-manifest", "other"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "format: expected \"nsa-kernel-manifest\", got \"other\""},
      {"version 2",
       {{"\"version\": 1", "\"version\": 2"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "this runtime reads version 1, the manifest is version 2"},
      {"a string version",
       {{"\"version\": 1", "\"version\": \"1\""}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "version: expected an integer, got a string"},
      {"an unknown top-level field",
       {{"\"target\": \"sm_90a\",", "\"target\": \"sm_90a\", \"targte\": 1,"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "test.json:4:23: unknown field \"targte\" (expected one of: format, "
       "version, target, kernels)"},
      {"kernels as an object",
       {{"\"kernels\": [", "\"kernels\": {\"a\": ["},
        {"\n  ]\n}", "\n  ]}\n}"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "kernels: expected an array, got an object"},
      // Kernel fields.
      {"a misspelt kernel field",
       {{"\"shared_bytes\": 0", "\"shared_bytes\": 0, \"sharedbytes\": 0"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "kernels[0] (k1): unknown field \"sharedbytes\""},
      {"a missing kernel name",
       {{"\"name\": \"k1\",", ""}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "kernels[0]: missing field \"name\""},
      {"a kernel name that is no PTX entry",
       {{"\"k1\"", "\"1k\""}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "\"1k\" is not a PTX entry name"},
      {"an op that is no identifier",
       {{"\"window_attention\"", "\"window attention\""}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "is not an op name"},
      {"a module that is neither PTX nor cubin",
       {{"m.ptx", "m.so"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "\"m.so\" must end in .ptx or .cubin"},
      {"a missing grid",
       {{"\"grid\": [\"ceil(T/16)\", \"HKV\", \"B\"],", ""}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "missing field \"grid\""},
      {"a two-dimensional grid",
       {{"[\"ceil(T/16)\", \"HKV\", \"B\"]", "[\"ceil(T/16)\", \"HKV\"]"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "expected an array of three expressions"},
      {"ceil without a division",
       {{"ceil(T/16)", "ceil(T)"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "grid[0]: bad expression \"ceil(T)\": column 1: ceil() takes a "
       "division"},
      {"2048 threads",
       {{"[128, 1, 1]", "[1024, 2, 1]"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "2048 threads per block exceed CUDA's 1024"},
      {"block z of 65",
       {{"[128, 1, 1]", "[1, 1, 65]"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "block[2]: 65 is out of range [1, 64]"},
      {"an empty block dimension",
       {{"[128, 1, 1]", "[0, 1, 1]"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "block[0]: 0 is out of range [1, 1024]"},
      {"negative shared memory",
       {{"\"shared_bytes\": 0", "\"shared_bytes\": -1"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "shared_bytes: -1 is out of range"},
      // Configuration.
      {"a missing configuration field",
       {{"\"w\": 512, ", ""}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "config: missing field \"w\""},
      {"an unknown configuration field",
       {{"\"dtype\": \"bf16\"}", "\"dtype\": \"bf16\", \"lsel\": 1}"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "unknown field \"lsel\""},
      {"l = 0",
       {{"\"l\": 32", "\"l\": 0"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "config.l: 0 is out of range [1, 2147483647]"},
      {"init = -1",
       {{"\"init\": 1", "\"init\": -1"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "config.init: -1 is out of range [0, "},
      {"a fractional l",
       {{"\"l\": 32", "\"l\": 1.5"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "config.l: expected an integer, got 1.5"},
      {"l as a string",
       {{"\"l\": 32", "\"l\": \"32\""}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "config.l: expected an integer, got a string"},
      {"a negative scale",
       {{"\"scale\": 0.125", "\"scale\": -0.125"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "config.scale: -0.125 is not positive"},
      {"an infinite scale",
       {{"\"scale\": 0.125", "\"scale\": 1e999"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "1e999 is not a finite double"},
      {"an f32 configuration",
       {{"\"dtype\": \"bf16\"}", "\"dtype\": \"f32\"}"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "config.dtype: \"f32\" is not an activation dtype"},
      // Parameters.
      {"an unknown parameter kind",
       {{"\"kind\": \"i32\"", "\"kind\": \"u32\""}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "params[2] (T).kind: \"u32\" is not a parameter kind"},
      {"an unknown dtype",
       {{"{\"name\": \"q\", \"kind\": \"tensor\", \"dtype\": \"bf16\"",
         "{\"name\": \"q\", \"kind\": \"tensor\", \"dtype\": \"fp16\""}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "params[0] (q).dtype: \"fp16\" is not a dtype"},
      {"a duplicate parameter",
       {{"{\"name\": \"k\"", "{\"name\": \"q\""}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "duplicate parameter name \"q\""},
      {"a parameter name with a dash",
       {{"{\"name\": \"k\"", "{\"name\": \"k-1\""}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "\"k-1\" is not an identifier"},
      {"a scalar with a shape",
       {{"\"value\": \"T\"}", "\"value\": \"T\", \"shape\": []}"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "params[2] (T): unknown field \"shape\""},
      {"a tensor without a shape",
       {{", \"shape\": [\"B\", \"T\", \"HKV\", \"Dk\"]", ""}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "params[1] (k): missing field \"shape\""},
      {"a boolean dimension",
       {{"[\"B\", \"T\", \"HKV\", \"Dk\"]", "[\"B\", \"T\", true, \"Dk\"]"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "params[1] (k).shape[2]: expected an expression (a string or an "
       "integer), got a boolean"},
      {"rank 9",
       {{"[\"B\", \"T\", \"HKV\", \"Dk\"]", "[1, 1, 1, 1, 1, 1, 1, 1, 1]"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "rank 9 exceeds NSA_MAX_RANK (8)"},
      {"a broken dimension",
       {{"[\"B\", \"T\", \"HKV\", \"Dk\"]",
         "[\"B\", \"T +\", \"HKV\", \"Dk\"]"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "shape[1]: bad expression \"T +\": column 4: expected an integer"},
      {"an alignment of 3",
       {{"\"shape\": [\"B\", \"T\", \"HKV\", \"Dk\"]",
         "\"shape\": [\"B\", \"T\", \"HKV\", \"Dk\"], "
         "\"align\": 3"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "align: 3 is not a power of two"},
      {"an f32 value given as a string",
       {{"{\"name\": \"T\", \"kind\": \"i32\", \"value\": \"T\"}",
         "{\"name\": \"s\", \"kind\": \"f32\", \"value\": \"0.5\"}"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "params[2] (s).value: expected a number, got a string"},
      // Symbols.
      {"an unbound symbol",
       {{"[\"B\", \"T\", \"HKV\", \"Dk\"]",
         "[\"B\", \"T\", \"HKV\", \"Dk + X\"]"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "params (k).shape[3]: symbol 'X' in \"Dk + X\" is unbound: no tensor "
       "dimension is exactly this symbol"},
      {"a null configuration field in the grid",
       {{"\"l\": 32", "\"l\": null"}, {"ceil(T/16)", "ceil(T/l)"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "grid[0]: symbol 'l' in \"ceil(T/l)\" is unbound: the kernel's "
       "configuration leaves it null"},
      {"a derived configuration field",
       {{"{\"HQ\": \"G*HKV\"}", "{\"HQ\": \"G*HKV\", \"n\": \"1\"}"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "\"n\" is a configuration field and cannot be derived"},
      {"a derived symbol used before it is derived",
       {{"{\"HQ\": \"G*HKV\"}", "{\"A\": \"HQ + 1\", \"HQ\": \"G*HKV\"}"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "derived.A: symbol 'HQ' in \"HQ + 1\" is unbound: it is derived later"},
      {"a derived symbol named like a function",
       {{"{\"HQ\": \"G*HKV\"}", "{\"HQ\": \"G*HKV\", \"min\": \"1\"}"}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "\"min\" is not a symbol name"},
      {"an unbound scalar value rule",
       {{"\"value\": \"T\"", "\"value\": \"Q\""}},
       NSA_ERROR_MANIFEST_SCHEMA,
       "params (T).value: symbol 'Q'"},
  };
  for (const Case &c : cases) {
    std::string json = minimalManifest();
    bool applied = true;
    for (const auto &[from, to] : c.edits) {
      size_t at = json.find(from);
      applied &= at != std::string::npos;
      if (applied)
        json.replace(at, from.size(), to);
    }
    if (!applied) {
      check(false, std::string("manifest case '") + c.name + "'",
            "the test's edit does not apply");
      continue;
    }
    expectRejected(c.name, json, c.status, c.needle);
  }

  expectRejected("an empty input", "", NSA_ERROR_MANIFEST_SYNTAX,
                 "test.json:1:1: expected a value, found the end of the input");
  expectRejected("a truncated string", "{\"format\": \"nsa",
                 NSA_ERROR_MANIFEST_SYNTAX,
                 "test.json:1:16: unterminated string");
  expectRejected("a misplaced comma", "{\n  \"a\": [1,\n 2,,]}",
                 NSA_ERROR_MANIFEST_SYNTAX,
                 "test.json:3:4: expected a value, found ','");
  expectRejected("100 nested arrays", std::string(100, '['),
                 NSA_ERROR_MANIFEST_SYNTAX, "nesting deeper than 64 levels");
  expectRejected("an array at the top", "[]", NSA_ERROR_MANIFEST_SCHEMA,
                 "test.json:1:1: manifest: expected an object, got an array");
  expectRejected("a duplicate kernel name",
                 std::string(Header) + KernelText + ",\n" + KernelText + Footer,
                 NSA_ERROR_MANIFEST_SCHEMA,
                 "kernels[1].name: duplicate kernel name \"k1\"");
}

// Malformed input of every shape must come back as an error, never a
// crash: every truncation, and every byte replaced by JSON's structural
// characters.
void runMutations() {
  const std::string json = minimalManifest();
  size_t contentLength = json.find_last_not_of(" \n") + 1;
  int accepted = 0;
  for (size_t length = 0; length < contentLength; ++length) {
    nsa_manifest *manifest = nullptr;
    if (nsa_manifest_parse(json.data(), length, "cut.json", "", &manifest) ==
        NSA_SUCCESS)
      ++accepted;
    nsa_manifest_destroy(manifest);
  }
  check(accepted == 0, "manifest: every truncation is rejected",
        std::to_string(contentLength) + " prefixes");

  int cleanly = 0;
  for (size_t at = 0; at < json.size(); ++at) {
    for (char c : {'"', '{', '}', '[', ']', ',', ':', '0', '\\', '\0'}) {
      std::string mutated = json;
      mutated[at] = c;
      nsa_manifest *manifest = nullptr;
      nsa_status status = nsa_manifest_parse(mutated.data(), mutated.size(),
                                             "mutated.json", "", &manifest);
      bool clean = status == NSA_SUCCESS
                       ? manifest != nullptr
                       : manifest == nullptr && *nsa_last_error_message();
      cleanly += clean;
      nsa_manifest_destroy(manifest);
    }
  }
  check(cleanly == static_cast<int>(json.size()) * 10,
        "manifest: every one-byte mutation parses or fails cleanly",
        std::to_string(json.size() * 10) + " mutations");
}

void runValidManifests() {
  nsa_manifest *manifest = parseOrFail(minimalManifest(), "minimal manifest");
  check(manifest != nullptr, "manifest: minimal manifest parses");
  nsa_manifest_destroy(manifest);

  manifest = nullptr;
  nsa_status status =
      nsa_manifest_load(exampleManifestPath().c_str(), &manifest);
  expectStatus(status, NSA_SUCCESS, "",
               "manifest: Inputs/paper_d128.json loads");
  if (!manifest)
    return;
  int32_t count = 0;
  nsa_manifest_kernel_count(manifest, &count);
  check(count == 6, "manifest: example has 6 kernels", std::to_string(count));
  const char *name = nullptr;
  status = nsa_manifest_kernel_name(manifest, 4, &name);
  check(status == NSA_SUCCESS && name &&
            std::string(name) == "nsa_window_attention_fwd",
        "manifest: kernel 4 is nsa_window_attention_fwd", name ? name : "null");
  expectStatus(nsa_manifest_kernel_name(manifest, 6, &name),
               NSA_ERROR_INVALID_ARGUMENT, "index 6 is outside [0, 6)",
               "manifest: kernel index past the end");

  nsa_config config = paperConfig();
  for (const char *op : {"compress", "compressed_attention", "select_blocks",
                         "selected_attention", "window_attention", "combine"}) {
    name = nullptr;
    status = nsa_find_kernel(manifest, op, &config, &name);
    check(status == NSA_SUCCESS && name, std::string("find_kernel: ") + op,
          name ? name : nsa_last_error_message());
  }
  // Kernels leave fields they do not depend on null, and match any value.
  config.w = 256;
  config.G = 4;
  status = nsa_find_kernel(manifest, "compress", &config, &name);
  check(status == NSA_SUCCESS, "find_kernel: compress ignores w and G",
        nsa_last_error_message());
  expectStatus(nsa_find_kernel(manifest, "window_attention", &config, &name),
               NSA_ERROR_NO_MATCHING_KERNEL,
               "kernel 'nsa_window_attention_fwd' was compiled for w = 512, "
               "the call asks for w = 256",
               "find_kernel: window attention for w = 256");
  check(name == nullptr, "find_kernel: no name after a failure");
  expectStatus(nsa_find_kernel(manifest, "attention_grad", &config, &name),
               NSA_ERROR_NO_MATCHING_KERNEL,
               "has no kernel for op 'attention_grad' (ops: compress, "
               "compressed_attention, select_blocks, selected_attention, "
               "window_attention, combine)",
               "find_kernel: an op without kernels");
  config = paperConfig();
  config.dtype = NSA_DTYPE_F16;
  expectStatus(nsa_find_kernel(manifest, "combine", &config, &name),
               NSA_ERROR_NO_MATCHING_KERNEL,
               "compiled for dtype = bf16, the call asks for dtype = f16",
               "find_kernel: combine in f16");
  nsa_manifest_destroy(manifest);
}

void runFileAndNullCases() {
  nsa_manifest *manifest = nullptr;
  expectStatus(nsa_manifest_load("/nonexistent/m.json", &manifest),
               NSA_ERROR_IO,
               "cannot read manifest '/nonexistent/m.json': No such file or "
               "directory",
               "manifest: a missing file");
  expectStatus(nsa_manifest_load(NSA_RUNTIME_TEST_INPUTS, &manifest),
               NSA_ERROR_IO, "Is a directory", "manifest: a directory");
  expectStatus(nsa_manifest_load(nullptr, &manifest), NSA_ERROR_NULL_ARGUMENT,
               "nsa_manifest_load: 'path' is null", "manifest: null path");
  expectStatus(nsa_manifest_load("m.json", nullptr), NSA_ERROR_NULL_ARGUMENT,
               "'out' is null", "manifest: null out");
  expectStatus(nsa_manifest_parse(nullptr, 0, "x", "", &manifest),
               NSA_ERROR_NULL_ARGUMENT, "'json' is null",
               "manifest: null json");
  int32_t count;
  expectStatus(nsa_manifest_kernel_count(nullptr, &count),
               NSA_ERROR_NULL_ARGUMENT, "'manifest' is null",
               "manifest: count of a null manifest");
  const char *name;
  expectStatus(nsa_manifest_kernel_name(nullptr, 0, &name),
               NSA_ERROR_NULL_ARGUMENT, "'manifest' is null",
               "manifest: name in a null manifest");
  nsa_config config = paperConfig();
  expectStatus(nsa_find_kernel(nullptr, "combine", &config, &name),
               NSA_ERROR_NULL_ARGUMENT, "'manifest' is null",
               "find_kernel: null manifest");
  nsa_manifest_destroy(nullptr);
  check(true, "manifest: destroying null is a no-op");

  check(std::string(nsa_status_name(NSA_SUCCESS)) == "NSA_SUCCESS" &&
            std::string(nsa_status_name(NSA_ERROR_CUDA)) == "NSA_ERROR_CUDA" &&
            std::string(nsa_status_name(99)) == "NSA_UNKNOWN_STATUS" &&
            std::string(nsa_status_name(-1)) == "NSA_UNKNOWN_STATUS",
        "status names");
  check(nsa_runtime_abi_version() == NSA_RUNTIME_ABI_VERSION, "ABI version");
  nsa_eval_expression("1", nullptr, nullptr, 0, nullptr);
  int64_t value;
  nsa_eval_expression("1", nullptr, nullptr, 0, &value);
  check(std::string(nsa_last_error_message()).empty(),
        "a successful call clears the last error");

  nsa_manifest_load("/nonexistent/m.json", &manifest);
  std::string otherThread;
  std::thread([&] {
    int64_t unused;
    nsa_eval_expression("1/0", nullptr, nullptr, 0, &unused);
    otherThread = nsa_last_error_message();
  }).join();
  check(otherThread == "division by zero in '1/0'" &&
            std::string(nsa_last_error_message()).find("/nonexistent") !=
                std::string::npos,
        "the last error is per thread");
}

} // namespace

void runManifestTests() {
  runValidManifests();
  runMalformedCases();
  runMutations();
  runFileAndNullCases();
}

} // namespace nsa::test
