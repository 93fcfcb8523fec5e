#!/usr/bin/env python3
"""Deterministic robustness fuzzer for nsa-opt.

Usage: fuzz.py NSA_OPT SEED_FILE... [--cases N] [--out-dir DIR] [--jobs J]
                                    [--timeout S] [--seed S]
                                    [--extra-pass SEED:ARGS]...

For every seed module:
  1. the seed itself must be accepted (exit 0) plainly, with -nsa-decompose
     and with -split-input-file -nsa-decompose;
  2. truncations of the seed (every k-th byte and at token boundaries);
  3. `--cases` random mutations: byte flips, token deletion/duplication/
     replacement, tensor dims (0, 1, -1, huge, `?`, rank changes), element
     types, config values/keys, deleted or duplicated operands, keyword and
     op-name changes, segment-size attributes, spliced lines, and
     combinations of these. Seeds holding tile ops also get tile edits
     (row_dims, dim, divisor, reduce kind, lhs/rhs_transposed,
     grid sizes, body arguments, outs, index lists, store destinations).

Each mutant is run through NSA_OPT plainly and with -nsa-decompose (every
third one also with -split-input-file -nsa-decompose). `--extra-pass
SEED:ARGS` (repeatable) adds one more run of the seed whose base name is
SEED and of each of its mutants, with the whitespace-separated nsa-opt
arguments ARGS, e.g.
  --extra-pass="tile.mlir:-split-input-file --convert-tile-to-scf"
(with -split-input-file, a chunk that fails to verify does not keep the
others from reaching the pass). Other seeds are unaffected.

A run passes if it exits 0, or exits > 0 with "error:" on stderr. It fails
on a signal (negative return code), a timeout, or a non-zero exit with no
diagnostic.

The last line of stdout is `N passed, M failed`; the exit code is 1 if any
run failed. Failing mutants are printed to stderr and, with --out-dir,
saved there as fail-NNNN.mlir (+ fail-NNNN.log).

Only the Python 3 standard library is used; the random stream is seeded
from --seed and each seed file's base name, so runs are reproducible.
"""

import argparse
import concurrent.futures
import os
import random
import re
import subprocess
import sys
import tempfile
import zlib

DEFAULT_SEED = 20250705

# --- Vocabulary --------------------------------------------------------------

# Dims the type parser accepts (so the nsa verifiers see them), including
# ones that overflow int64 arithmetic such as l*D or T*HQ...
DIM_VALUES = [b"0", b"1", b"?", b"2", b"3", b"5", b"7", b"17", b"4096",
              b"1000001", b"4294967296", b"9223372036854775807",
              b"4611686018427387904", b"3074457345618258603"]
# ... and ones it rejects.
BAD_DIM_VALUES = [b"-1", b"99999999999999999999", b"9223372036854775808",
                  b"", b"x", b"1.5", b"0x10", b"*"]
ELEM_TYPES = [b"bf16", b"f16", b"f32", b"f64", b"i32", b"i64", b"i1", b"i8",
              b"index", b"f8E4M3FN", b"complex<f32>", b"tf32", b"none",
              b"vector<2xbf16>", b"ui32"]
CONFIG_KEYS = [b"l", b"d", b"l_sel", b"n", b"init", b"local", b"w", b"scale"]
CONFIG_VALUES = [b"0", b"-1", b"-16", b"1", b"2", b"3", b"5", b"7", b"4096",
                 b"99999999999999999999", b"9223372036854775807",
                 b"-9223372036854775808", b"4611686018427387904",
                 b"1.5", b"-0.5", b"0.0", b"1e309", b"0x10", b"\"x\"",
                 b"true", b"unit", b"?", b"", b"[1, 2]", b"32 : i64",
                 b"0x7FF0000000000000", b"0x7FF8000000000000", b"nan", b"inf"]
SCALE_VALUES = [b"0.0", b"-0.0", b"-1.0", b"1e400", b"1e-400",
                b"0x7FF0000000000000", b"0x7FF8000000000000",
                b"0xFFF0000000000000", b"0x0", b"1", b"0", b"-3",
                b"99999999999999999999", b"1.0 : f16", b"\"s\""]
INTERESTING_BYTES = b"<>(){}[]%:,=x?-#@!\"\\0129 \n\t\x00\x7f\x80\xff"

# Whole-word op-name groups that share an assembly format, so a swap reaches
# the verifier instead of stopping in the parser.
OP_SWAPS = [
    (b"nsa.compressed_attention ", b"nsa.window_attention "),
    (b"nsa.window_attention ", b"nsa.compressed_attention "),
    (b"nsa.compressed_attention ", b"nsa.select_blocks "),
    (b"nsa.select_blocks ", b"nsa.window_attention "),
    (b"nsa.selected_attention ", b"nsa.selected_attention_grad "),
    (b"nsa.compressed_attention_grad ", b"nsa.window_attention_grad "),
    (b"nsa.window_attention_grad ", b"nsa.compressed_attention_grad "),
    (b"nsa.combine ", b"nsa.combine_grad "),
    (b"nsa.combine_grad ", b"nsa.combine "),
    (b"nsa.attention ", b"nsa.attention_grad "),
    (b"nsa.attention_grad ", b"nsa.attention "),
    (b"nsa.compress ", b"nsa.compress_grad "),
    (b"nsa.compress_grad ", b"nsa.compress "),
    (b"nsa.attention ", b"nsa.bogus "),
    (b"nsa.", b"nsb."),
]

# (pattern, replacement) keyword edits applied at one random match.
KEYWORD_EDITS = [
    (rb"\blinear\b", b"mean"),
    (rb"\bmean\b", b"linear"),
    (rb"\b(linear|mean)\b", b"max"),
    (rb"\b(linear|mean)\b ?", b""),
    (rb"config <[^>]*> ?", b""),
    (rb"config ", b""),
    (rb"config <", b"config #nsa.config<"),
    (rb"config <[^>]*>", b"config #nsa.config"),
    (rb"config <[^>]*>", b"config 1 : i32"),
    (rb"config <[^>]*>", b"config unit"),
    (rb"config <[^>]*>", b"config #nsa.bogus<>"),
    (rb"config <", b"config <<"),
    (rb"\bkeys\(", b"values("),
    (rb"\bvalues\(", b"keys("),
    (rb"\bkeys\([^)]*\) ", b""),
    (rb"\bvalues\([^)]*\) ", b""),
    (rb"\bkeys\(([^)]*)\)", b"keys()"),
    (rb"\bweights\([^)]*\) ", b""),
    (rb"\bweights\(([^)]*)\)", b"weights()"),
    (rb"\bpe\([^)]*\) ", b""),
    (rb"\bpe\(", b"weights("),
    (rb"\bweight %\w+ ", b""),
    (rb"\bpe %\w+ ", b""),
    (rb"\bgrad ", b""),
    (rb"\bgates ", b""),
    (rb"\bcompress (linear|mean)", b"compress"),
    (rb" : \(", b" : "),
    (rb"\) -> ", b") "),
    (rb"-> \(", b"-> "),
    (rb" \{resultSegmentSizes = array<i32: [-0-9, ]*>\}", b""),
    (rb"array<i32: [-0-9, ]*>", b"array<i32: 1, 1, 1>"),
    (rb"array<i32: [-0-9, ]*>", b"array<i32: -1, 1, 1, 1, 1, 1>"),
    (rb"array<i32: [-0-9, ]*>", b"array<i32: 1, 100, 1, 1, 0, 0>"),
    (rb"array<i32: [-0-9, ]*>", b"array<i32: 2147483647, -2147483647, 1, 1, 2, 2>"),
    (rb"array<i32: [-0-9, ]*>", b"array<i32>"),
    (rb"array<i32: [-0-9, ]*>", b"array<i64: 1, 1, 1, 1, 2, 2>"),
    (rb"array<i32: [-0-9, ]*>", b"dense<1> : vector<6xi32>"),
    (rb"resultSegmentSizes", b"operandSegmentSizes"),
    (rb" config <([^>]*)> :", b" config <\\1> {operandSegmentSizes = array<i32: 1, 1, 1, 1, 0, 0>} :"),
    (rb" config <([^>]*)> :", b" config <\\1> {operandSegmentSizes = array<i32: 1, 3, 3, 1, 2, 2, 1>} :"),
    (rb" config <([^>]*)> :", b" config <\\1> {resultSegmentSizes = array<i32: 1, 1, 1>} :"),
    (rb" config <([^>]*)> :", b" config <\\1> {config = 3, mode = 7 : i32} :"),
    (rb" config <([^>]*)> :", b" config <\\1> {mode = 7 : i32} :"),
    # Generic-form properties.
    (rb"mode = \d+ : i32", b"mode = 2 : i32"),
    (rb"mode = \d+ : i32", b"mode = -1 : i32"),
    (rb"mode = \d+ : i32", b"mode = 1 : i64"),
    (rb"mode = \d+ : i32", b"mode = \"linear\""),
    (rb"mode = \d+ : i32", b"mode = #nsa.config<>"),
    (rb"mode = \d+ : i32, ", b""),
    (rb"config = #nsa.config<[^>]*>, ", b""),
    (rb"config = #nsa.config<[^>]*>", b"config = 0 : i32"),
    (rb"config = #nsa.config<[^>]*>", b"config = #nsa.config"),
    (rb", operandSegmentSizes = array<i32: [-0-9, ]*>", b""),
    (rb"<\{", b"{"),
    (rb"\}>", b"}"),
    (rb"<\{([^}]*)\}> \{resultSegmentSizes", b"<{\\1, resultSegmentSizes"),
    (rb"\"nsa\.\w+\"", b"\"nsa.combine\""),
    (rb"\"nsa\.\w+\"", b"\"nsa.select_blocks\""),
    (rb"\"nsa\.\w+\"", b"\"nsa.attention_grad\""),
    (rb"\"nsa\.\w+\"", b"\"nsa.compress_grad\""),
    (rb"\"nsa\.\w+\"", b"\"nsa.window_attention\""),
    (rb"\"nsa\.\w+\"", b"\"nsa.selected_attention_grad\""),
    (rb"%(\w+):\d+ = ", b"%\\1:2 = "),
    (rb"\breturn\b[^\n]*", b"return"),
    (rb"\bfunc\.func\b", b"func.funk"),
    (rb"tensor<", b"memref<"),
    (rb"tensor<", b"tensor<*x"),
    (rb"tensor<([^>]*)>", b"vector<\\1>"),
    (rb"xf32>", b"xf32, #enc>"),
    (rb"x(bf16|f16)>", b"x\\1, 1 : i64>"),
    (rb"%(\w+)", b"%\\1#5"),
    (rb"%(\w+), %(\w+)", b"%\\2, %\\1"),
]

TOKEN_RE = re.compile(
    rb'"(?:[^"\\\n]|\\.)*"'          # string
    rb"|//[^\n]*"                      # comment (skipped below)
    rb"|[%@#^!][\w.$\-]+(?:#\d+)?"     # SSA value, symbol, attribute alias
    rb"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?"  # number
    rb"|[A-Za-z_][\w.$]*"              # identifier / keyword / type
    rb"|->|\S")
TENSOR_RE = re.compile(rb"tensor<([^<>]*)>")
CONFIG_RE = re.compile(rb"<((?:\s*\w+\s*=\s*[-\w.]+\s*,?)*)>")
NSA_LINE_RE = re.compile(rb"^(?P<head>.*?= nsa\.\w+ )(?P<body>.*?) : "
                         rb"\((?P<types>[^()]*)\)(?P<tail> -> .*)$", re.M)


def tokens(text):
    """(start, end) spans of the non-comment tokens of `text`."""
    return [(m.start(), m.end()) for m in TOKEN_RE.finditer(text)
            if not m.group().startswith(b"//")]


# --- Mutators ----------------------------------------------------------------
# Each takes (rng, text, toks) and returns (description, mutant) or None.

def mut_byte(rng, text, toks):
    pos = rng.randrange(len(text))
    new = bytes([rng.choice(INTERESTING_BYTES) if rng.random() < 0.7
                 else rng.randrange(256)])
    kind = rng.choice(["replace", "insert", "delete"])
    if kind == "replace":
        out = text[:pos] + new + text[pos + 1:]
    elif kind == "insert":
        out = text[:pos] + new + text[pos:]
    else:
        out = text[:pos] + text[pos + 1:]
    return "byte %s @%d (%r)" % (kind, pos, new), out


def mut_token(rng, text, toks):
    s, e = rng.choice(toks)
    kind = rng.choice(["delete", "duplicate", "replace", "swap"])
    if kind == "delete":
        out = text[:s] + text[e:]
    elif kind == "duplicate":
        out = text[:e] + b" " + text[s:e] + text[e:]
    elif kind == "replace":
        s2, e2 = rng.choice(toks)
        out = text[:s] + text[s2:e2] + text[e:]
    else:
        i = toks.index((s, e))
        if i + 1 >= len(toks):
            return None
        s2, e2 = toks[i + 1]
        out = text[:s] + text[s2:e2] + text[e:s2] + text[s:e] + text[e2:]
    return "token %s %r @%d" % (kind, text[s:e], s), out


def _pick_dim(rng, old):
    vals = BAD_DIM_VALUES if rng.random() < 0.2 else DIM_VALUES
    return rng.choice([v for v in vals if v != old])


def _mutate_tensor_body(rng, body):
    """Returns a mutated `AxBx...xelem` tensor body."""
    parts = body.split(b"x")
    dims, elem = parts[:-1], parts[-1]
    kind = rng.choice(["dim", "dim", "dim", "elem", "elem", "rank"])
    if kind == "dim" and dims:
        i = rng.randrange(len(dims))
        dims[i] = _pick_dim(rng, dims[i])
    elif kind == "elem" or not dims:
        elem = rng.choice([t for t in ELEM_TYPES if t != elem])
    elif rng.random() < 0.5:
        del dims[rng.randrange(len(dims))]
    else:
        dims.insert(rng.randrange(len(dims) + 1), rng.choice([b"1", b"2", b"?"]))
    return b"x".join(dims + [elem])


def mut_tensor(rng, text, toks):
    """Mutates one tensor type, either at one use or at every occurrence of
    that exact type (which keeps SSA uses consistent and reaches the
    verifiers)."""
    ms = list(TENSOR_RE.finditer(text))
    if not ms:
        return None
    m = rng.choice(ms)
    new = b"tensor<" + _mutate_tensor_body(rng, m.group(1)) + b">"
    if rng.random() < 0.6:
        return ("tensor all %r -> %r" % (m.group(), new),
                text.replace(m.group(), new))
    return ("tensor @%d %r -> %r" % (m.start(), m.group(), new),
            text[:m.start()] + new + text[m.end():])


def mut_elem_global(rng, text, toks):
    """Swaps one element type for another everywhere (bf16->f32 etc.)."""
    present = [t for t in (b"bf16", b"f16", b"f32", b"i32")
               if re.search(rb"x" + t + rb">", text)]
    if not present:
        return None
    old = rng.choice(present)
    new = rng.choice([t for t in ELEM_TYPES if t != old])
    return ("elem all %r -> %r" % (old, new),
            re.sub(rb"x" + old + rb">", b"x" + new + b">", text))


def mut_dim_global(rng, text, toks):
    """Replaces one dim value with another in every tensor type."""
    dims = sorted({d for m in TENSOR_RE.finditer(text)
                   for d in m.group(1).split(b"x")[:-1]})
    if not dims:
        return None
    old = rng.choice(dims)
    new = _pick_dim(rng, old)

    def fix(m):
        parts = m.group(1).split(b"x")
        parts = [new if p == old else p for p in parts[:-1]] + parts[-1:]
        return b"tensor<" + b"x".join(parts) + b">"
    return "dim all %r -> %r" % (old, new), TENSOR_RE.sub(fix, text)


def _mutate_config_body(rng, body):
    items = [i.strip() for i in body.split(b",") if i.strip()]
    kind = rng.choice(["value", "value", "value", "delete", "duplicate",
                       "unknown", "rename", "garbage", "empty"])
    if kind == "value" or (not items and kind in ("delete", "duplicate",
                                                  "rename")):
        key = rng.choice(CONFIG_KEYS)
        vals = SCALE_VALUES if key == b"scale" else CONFIG_VALUES
        val = rng.choice(vals)
        items = [i for i in items if i.split(b"=")[0].strip() != key]
        items.insert(rng.randrange(len(items) + 1), key + b" = " + val)
    elif kind == "delete":
        del items[rng.randrange(len(items))]
    elif kind == "duplicate":
        items.append(rng.choice(items))
    elif kind == "unknown":
        items.append(rng.choice([b"bogus = 1", b"L = 32", b"l", b"= 3",
                                 b"l = ", b"scale", b"n = 1 = 2"]))
    elif kind == "rename":
        i = rng.randrange(len(items))
        items[i] = rng.choice(CONFIG_KEYS) + b" =" + items[i].split(b"=", 1)[-1]
    elif kind == "garbage":
        return rng.choice([b"l = 32 d = 16", b"l = 32,, d = 16", b",",
                           b"l: 32", b"32, 16", b"l = (32)", b"<>",
                           b"l = 32, d = 16 : i64"])
    else:
        return b""
    return b", ".join(items)


def mut_config(rng, text, toks):
    """Edits one `config <...>`, or every copy of that exact config."""
    ms = [m for m in CONFIG_RE.finditer(text)
          if text[max(0, m.start() - 11):m.start()].endswith(
              (b"config ", b"#nsa.config"))]
    if not ms:
        return None
    m = rng.choice(ms)
    new = b"<" + _mutate_config_body(rng, m.group(1)) + b">"
    if rng.random() < 0.5:
        return ("config all %r -> %r" % (m.group(), new),
                text.replace(b"config " + m.group(), b"config " + new)
                .replace(b"#nsa.config" + m.group(), b"#nsa.config" + new))
    return ("config @%d %r -> %r" % (m.start(), m.group(), new),
            text[:m.start()] + new + text[m.end():])


def mut_operand(rng, text, toks):
    """Deletes or duplicates the i-th operand of an nsa op together with its
    type in the functional type (so the parser accepts it and the segment
    sizes and verifier see it), or deletes just the operand or the type."""
    ms = list(NSA_LINE_RE.finditer(text))
    if not ms:
        return None
    m = rng.choice(ms)
    body, types = m.group("body"), m.group("types")
    ops = list(re.finditer(rb"%[\w#]+", body))
    tys = types.split(b", ")
    if not ops:
        return None
    i = rng.randrange(len(ops))
    o = ops[i]
    kind = rng.choice(["both", "both", "dup", "operand", "type"])

    def drop(s, start, end):
        # Remove the span together with one neighbouring ", ".
        if s[end:end + 2] == b", ":
            return s[:start] + s[end + 2:]
        if s[start - 2:start] == b", ":
            return s[:start - 2] + s[end:]
        return s[:start] + s[end:]

    if kind in ("both", "operand"):
        body = drop(body, o.start(), o.end())
    if kind in ("both", "type") and i < len(tys):
        tys = tys[:i] + tys[i + 1:]
    if kind == "dup":
        body = body[:o.end()] + b", " + o.group() + body[o.end():]
        if i < len(tys):
            tys = tys[:i + 1] + [tys[i]] + tys[i + 1:]
    line = (m.group("head") + body + b" : (" + b", ".join(tys) + b")"
            + m.group("tail"))
    return ("operand %s #%d %r in line @%d" % (kind, i, o.group(), m.start()),
            text[:m.start()] + line + text[m.end():])


def mut_keyword(rng, text, toks):
    if rng.random() < 0.25:
        pat, rep = rng.choice(OP_SWAPS)
        pat = re.escape(pat)
    else:
        pat, rep = rng.choice(KEYWORD_EDITS)
    ms = list(re.finditer(pat, text))
    if not ms:
        return None
    m = rng.choice(ms)
    new = m.expand(rep) if b"\\" in rep else rep
    return ("keyword %r -> %r @%d" % (m.group(), new, m.start()),
            text[:m.start()] + new + text[m.end():])


def mut_splice(rng, text, toks):
    """Moves, copies or deletes a whole line (dominance, redefinition,
    missing terminator)."""
    lines = text.split(b"\n")
    i = rng.randrange(len(lines))
    kind = rng.choice(["delete", "copy", "move"])
    line = lines[i]
    if kind == "delete":
        del lines[i]
    else:
        if kind == "move":
            del lines[i]
        lines.insert(rng.randrange(len(lines) + 1), line)
    return "line %s #%d" % (kind, i + 1), b"\n".join(lines)


MUTATORS = [
    (mut_byte, 3), (mut_token, 4), (mut_tensor, 5), (mut_elem_global, 2),
    (mut_dim_global, 2), (mut_config, 5), (mut_operand, 4), (mut_keyword, 5),
    (mut_splice, 2),
]


# --- Tile-dialect edits ---------------------------------------------------------
# Only offered for texts holding tile ops, so that the random stream (and the
# mutants) of the other seeds stay as they were.

ROW_DIMS_VALUES = [b"array<i64>", b"array<i64: 0>", b"array<i64: -1>",
                   b"array<i64: 1, 3>", b"array<i64: 3, 1>",
                   b"array<i64: 1, 1>", b"array<i64: 2, 3>",
                   b"array<i64: 0, 1, 2, 3>", b"array<i64: 0, 1, 2, 3, 4>",
                   b"array<i64: 4>", b"array<i64: 5>",
                   b"array<i64: 9223372036854775807>",
                   b"array<i64: -9223372036854775808>",
                   b"array<i64: 1, 9223372036854775807>",
                   b"array<i32: 1>", b"dense<1> : tensor<1xi64>", b"[1]",
                   b"unit"]
TILE_INT_VALUES = [b"-1", b"0", b"1", b"2", b"3", b"4", b"5", b"64",
                   b"9223372036854775807", b"-9223372036854775808",
                   b"4294967296", b"-4", b"1 : i32", b"1.0", b"\"x\"",
                   b"99999999999999999999"]
TILE_EDITS = [
    (rb"array<i64[^>]*>", None),            # a ROW_DIMS_VALUES entry
    (rb"\bdim = -?\d+", b"dim = %s"),  # a TILE_INT_VALUES entry
    (rb"\bdivisor = -?\d+", b"divisor = %s"),
    (rb"(tile\.range %\w+) :", b"\\1 {divisor = %s} :"),
    (rb"\{rhs_transposed\} ", b""),
    (rb"\{rhs_transposed\}", b"{rhs_transposed = true}"),
    (rb"(tile\.dot %\w+, %\w+) :", b"\\1 {rhs_transposed} :"),
    (rb"(tile\.dot %\w+, %\w+) :", b"\\1 {lhs_transposed} :"),
    (rb"\{lhs_transposed\}", b"{rhs_transposed}"),
    (rb"\{rhs_transposed\}", b"{lhs_transposed, rhs_transposed}"),
    (rb"\{lhs_transposed\}", b"{lhs_transposed = 1 : i64}"),
    (rb"\{row_dims = [^}]*\} ", b""),
    (rb" \{dim = [^}]*\}", b""),
    (rb"\btile\.reduce (max|sum)", b"tile.reduce min"),
    (rb"\btile\.reduce max", b"tile.reduce sum"),
    (rb"\btile\.reduce sum", b"tile.reduce max"),
    (rb"\btile\.\w+", b"tile.bogus"),
    # Grid sizes and coordinates, outs and their views.
    (rb"\bgrid\([^)]*\)", b"grid()"),
    (rb"\bgrid\((%\w+)", b"grid(\\1, \\1, \\1"),
    (rb"\bgrid\(%\w+, ", b"grid("),
    (rb"\^bb0\(", b"^bb0(%extra: index, "),
    (rb"\bouts\(%\w+, ([^:]*) : [^,)]*, ", b"outs(\\1 : "),
    (rb"\bouts\((%\w+)([^:]*) : ([^,)]*)", b"outs(\\1, \\1\\2 : \\3, \\3"),
    # Index lists of load/store/gather.
    (rb"\[%\w+, ", b"["),
    (rb"\[(%\w+)", b"[\\1, \\1"),
    (rb"\[[^\]\n]*\]", b"[]"),
    # Where a store writes and where it sits.
    (rb"\binto %\w+\[", b"into %o["),
    (rb"(\n *)(tile\.store [^\n]*)",
     b"\\1scf.execute_region {\\1  \\2\\1  scf.yield\\1}"),
    (rb"(\n *)(tile\.store [^\n]*)", b"\\1\\2\\1tile.end"),
    (rb"(\n  )(\})", b"\\1  tile.end\\1\\2"),
]


def mut_tile(rng, text, toks):
    pat, rep = rng.choice(TILE_EDITS)
    ms = list(re.finditer(pat, text))
    if not ms:
        return None
    m = rng.choice(ms)
    if rep is None:
        new = rng.choice([v for v in ROW_DIMS_VALUES if v != m.group()])
    else:
        if b"%s" in rep:
            rep = rep.replace(b"%s", rng.choice(TILE_INT_VALUES))
        new = m.expand(rep) if b"\\" in rep else rep
    return ("tile %r -> %r @%d" % (m.group(), new, m.start()),
            text[:m.start()] + new + text[m.end():])


TILE_OP_RE = re.compile(rb"\btile\.\w+ ")


def mutate(rng, text):
    toks = tokens(text)
    mutators = MUTATORS
    if TILE_OP_RE.search(text):
        mutators = MUTATORS + [(mut_tile, 8)]
    funcs = [f for f, w in mutators for _ in range(w)]
    count = 1 if rng.random() < 0.75 else rng.randint(2, 3)
    descs = []
    for _ in range(count):
        for _attempt in range(20):
            res = rng.choice(funcs)(rng, text, toks)
            if res is not None and res[1] != text:
                break
        else:
            continue
        descs.append(res[0])
        text = res[1]
        toks = tokens(text)
    return "; ".join(descs), text


# --- Running -----------------------------------------------------------------

MODES = [[], ["-nsa-decompose"]]
SPLIT_MODE = ["-split-input-file", "-nsa-decompose"]


class Case:
    def __init__(self, seed_name, desc, text, args, must_succeed=False):
        self.seed_name = seed_name
        self.desc = desc
        self.text = text
        self.args = args
        self.must_succeed = must_succeed
        self.path = None


def run_case(nsa_opt, case, timeout, env):
    cmd = [nsa_opt, case.path] + case.args + ["-o", os.devnull]
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        err = (e.stderr or b"").decode("utf-8", "replace")
        return "timeout after %ss" % timeout, err
    except OSError as e:
        return "could not run %s: %s" % (nsa_opt, e), ""
    err = p.stderr.decode("utf-8", "replace")
    rc = p.returncode
    if rc == 0:
        return None, err
    if case.must_succeed:
        return "seed rejected (exit %d)" % rc, err
    if rc < 0:
        return "killed by signal %d" % -rc, err
    if "error:" not in err:
        return "exit %d without an error: diagnostic" % rc, err
    return None, err


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("nsa_opt")
    ap.add_argument("seeds", nargs="+")
    ap.add_argument("--cases", type=int, default=100,
                    help="random mutants per seed (default 100)")
    ap.add_argument("--out-dir", help="where to save failing mutants")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--truncations", type=int, default=30,
                    help="evenly spaced truncation offsets per seed")
    ap.add_argument("--extra-pass", action="append", default=[],
                    metavar="SEED:ARGS",
                    help="also run the seed named SEED (base name) and each "
                         "of its mutants with the nsa-opt arguments ARGS, "
                         "e.g. --extra-pass=tile.mlir:--convert-tile-to-scf "
                         "(repeatable)")
    args = ap.parse_args()

    names = {os.path.basename(p) for p in args.seeds}
    extra_modes = {}
    for spec in args.extra_pass:
        name, _, passes = spec.partition(":")
        if name not in names or not passes.split():
            ap.error("--extra-pass %r: expected SEED:ARGS with SEED the base "
                     "name of a seed file" % spec)
        extra_modes.setdefault(name, []).append(passes.split())

    cases = []
    for seed_path in args.seeds:
        name = os.path.basename(seed_path)
        with open(seed_path, "rb") as f:
            text = f.read()
        extra = extra_modes.get(name, [])
        for mode in MODES + [SPLIT_MODE] + extra:
            cases.append(Case(name, "seed", text, mode, must_succeed=True))
        rng = random.Random(args.seed ^ zlib.crc32(name.encode()))
        mutants = {}

        def add(desc, mutant):
            if mutant != text and mutant not in mutants:
                mutants[mutant] = desc

        step = max(1, len(text) // args.truncations)
        for off in range(0, len(text), step):
            add("truncate @%d" % off, text[:off])
        toks = tokens(text)
        for s, e in sorted(rng.sample(toks, min(len(toks), 15))):
            add("truncate after token %r @%d" % (text[s:e], e), text[:e])
            add("truncate inside token %r @%d" % (text[s:e], s + 1),
                text[:max(s + 1, e - 1)])
        for _ in range(args.cases):
            add(*mutate(rng, text))
        for i, (mutant, desc) in enumerate(mutants.items()):
            modes = MODES + ([SPLIT_MODE] if i % 3 == 0 else []) + extra
            for mode in modes:
                cases.append(Case(name, desc, mutant, mode))

    env = dict(os.environ)
    env["LLVM_DISABLE_SYMBOLIZATION"] = "1"
    failures = []
    with tempfile.TemporaryDirectory(prefix="nsa-fuzz-") as tmp:
        paths = {}
        for case in cases:
            if case.text not in paths:
                paths[case.text] = os.path.join(tmp, "m%05d.mlir" % len(paths))
                with open(paths[case.text], "wb") as f:
                    f.write(case.text)
            case.path = paths[case.text]
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(
                lambda c: run_case(args.nsa_opt, c, args.timeout, env), cases))
        for case, (why, err) in zip(cases, results):
            if why is not None:
                failures.append((case, why, err))

    if args.out_dir:
        os.makedirs(args.out_dir, exist_ok=True)
    for n, (case, why, err) in enumerate(failures):
        cmd = " ".join(["nsa-opt", "<mutant>"] + case.args)
        header = ("FAIL #%d [%s] %s\n  mutation: %s\n  command: %s\n"
                  % (n, case.seed_name, why, case.desc, cmd))
        saved = ""
        if args.out_dir:
            base = os.path.join(args.out_dir, "fail-%04d" % n)
            with open(base + ".mlir", "wb") as f:
                f.write(case.text)
            with open(base + ".log", "w") as f:
                f.write(header + "--- stderr ---\n" + err)
            saved = "  saved: %s.mlir\n" % base
        sys.stderr.write(header + saved + "--- stderr ---\n" + err[-4000:]
                         + "\n--- mutant ---\n"
                         + case.text.decode("utf-8", "replace") + "\n\n")

    by_seed = {}
    for case in cases:
        by_seed[case.seed_name] = by_seed.get(case.seed_name, 0) + 1
    for name, count in by_seed.items():
        print("%s: %d runs" % (name, count))
    print("%d passed, %d failed" % (len(cases) - len(failures), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
