//===- ModuleWriter.cpp - the MLIR text of nsa-cpu-check's forward module -===//
//
// One function @nsa on memrefs: the branch ops (nsa.compress x2,
// nsa.compressed_attention, nsa.select_blocks, nsa.selected_attention,
// nsa.window_attention, nsa.combine) and with --backward their grad ops,
// every intermediate stored into its own output buffer (%<name>_out) so that
// each op can be checked on its own.
//
//===----------------------------------------------------------------------===//

#include "CpuCheck.h"

#include "llvm/Support/raw_ostream.h"

#include <functional>

namespace cpucheck {

std::string CaseRunner::moduleText() const {
  const ref::Config &k = c.cfg;
  std::string cfg =
      "config <l = " + std::to_string(k.l) + ", d = " + std::to_string(k.d) +
      ", l_sel = " + std::to_string(k.lSel) + ", n = " + std::to_string(k.n) +
      ", init = " + std::to_string(k.init) +
      ", local = " + std::to_string(k.local) + ", w = " + std::to_string(k.w) +
      ">";
  auto ty = [&](const std::string &name) { return buf(name).tensorType(); };

  std::string s;
  llvm::raw_string_ostream os(s);
  os << "// nsa-cpu-check case: " << c.label() << "\n";
  os << "// pipeline: builtin.module(" << c.pipeline() << ")\n";
  os << "module {\n  func.func @nsa(";
  bool first = true;
  for (const Buffer &b : inputs) {
    os << (first ? "" : ",\n      ") << "%" << b.name << ": " << b.memrefType();
    first = false;
  }
  for (const Buffer &b : outputs)
    os << ",\n      %" << b.name << "_out: " << b.memrefType();
  os << ") attributes {llvm.emit_c_interface} {\n";
  for (const Buffer &b : inputs)
    os << "    %" << b.name << "_t = bufferization.to_tensor %" << b.name
       << " restrict : " << b.memrefType() << " to " << b.tensorType() << "\n";

  std::string kc = c.kName("cmp"), vc = c.vName("cmp");
  std::string ks = c.kName("slc"), vs = c.vName("slc");
  std::string kw = c.kName("win"), vw = c.vName("win");
  auto compress = [&](const std::string &result, const std::string &src,
                      const std::string &w, const std::string &pe) {
    os << "    %" << result << " = nsa.compress "
       << (c.linear ? "linear" : "mean") << " %" << src << "_t";
    std::string types = ty(src);
    if (c.linear) {
      os << " weight %" << w << "_t";
      types += ", " + ty(w);
      if (c.pe) {
        os << " pe %" << pe << "_t";
        types += ", " + ty(pe);
      }
    }
    os << " " << cfg << " : (" << types << ") -> " << ty(result) << "\n";
  };
  compress("kc", kc, "w_k", "pe_k");
  compress("vc", vc, "w_v", "pe_v");
  os << "    %o_cmp, %lse_cmp = nsa.compressed_attention %q_t, %kc, %vc " << cfg
     << " : (" << ty("q") << ", " << ty("kc") << ", " << ty("vc") << ") -> ("
     << ty("o_cmp") << ", " << ty("lse_cmp") << ")\n";
  if (!c.idxFromReference)
    os << "    %idx = nsa.select_blocks %q_t, %kc, %lse_cmp " << cfg << " : ("
       << ty("q") << ", " << ty("kc") << ", " << ty("lse_cmp") << ") -> "
       << ty("idx") << "\n";
  os << "    %o_slc, %lse_slc = nsa.selected_attention %q_t, %" << ks << "_t, %"
     << vs << "_t, %" << (c.idxFromReference ? "idx_t" : "idx") << " " << cfg
     << " : (" << ty("q") << ", " << ty(ks) << ", " << ty(vs) << ", "
     << ty("idx") << ") -> (" << ty("o_slc") << ", " << ty("lse_slc") << ")\n";
  os << "    %o_win, %lse_win = nsa.window_attention %q_t, %" << kw << "_t, %"
     << vw << "_t " << cfg << " : (" << ty("q") << ", " << ty(kw) << ", "
     << ty(vw) << ") -> (" << ty("o_win") << ", " << ty("lse_win") << ")\n";
  os << "    %o = nsa.combine %g_t, %o_cmp, %o_slc, %o_win : (" << ty("g")
     << ", " << ty("o_cmp") << ", " << ty("o_slc") << ", " << ty("o_win")
     << ") -> " << ty("o") << "\n";
  if (c.backward) {
    // nsa-decompose's decomposition of nsa.attention_grad, written out so
    // that every gradient is an output: the gates, the three branches (idx
    // from the forward), compression, and the sums of d_q (and of d_k, d_v
    // when K/V are shared).
    auto list = [](std::initializer_list<std::string> names,
                   const std::function<std::string(const std::string &)> &f) {
      std::string s;
      for (const std::string &n : names)
        s += (s.empty() ? "" : ", ") + f(n);
      return s;
    };
    auto types = [&](std::initializer_list<std::string> names) {
      return list(names, ty);
    };
    auto values = [&](std::initializer_list<std::string> names) {
      return list(names, [](const std::string &n) { return "%" + n; });
    };
    os << "    " << values({"d_g", "d_o_cmp", "d_o_slc", "d_o_win"})
       << " = nsa.combine_grad %g_t, %o_cmp, %o_slc, %o_win grad %d_o_t : ("
       << types({"g", "o_cmp", "o_slc", "o_win", "d_o"}) << ") -> ("
       << types({"d_g", "d_o_cmp", "d_o_slc", "d_o_win"}) << ")\n";
    os << "    %d_q_cmp, %d_kc, %d_vc = nsa.compressed_attention_grad %q_t, "
          "%kc, %vc, %o_cmp, %lse_cmp grad %d_o_cmp "
       << cfg << " : ("
       << types({"q", "kc", "vc", "o_cmp", "lse_cmp", "d_o_cmp"}) << ") -> ("
       << types({"d_q_cmp", "d_kc", "d_vc"}) << ")\n";
    auto compressGrad = [&](const std::string &dSrc, const std::string &src,
                            const std::string &w, const std::string &pe,
                            const std::string &dResult) {
      std::string results = "%" + dSrc, resultTypes = ty(dSrc);
      std::string args = "%" + src + "_t", operands = ty(src);
      if (c.linear) {
        args += " weight %" + w + "_t";
        operands += ", " + ty(w);
        results += ", %d_" + w;
        resultTypes += ", " + ty("d_" + w);
        if (c.pe) {
          args += " pe %" + pe + "_t";
          operands += ", " + ty(pe);
          results += ", %d_" + pe;
          resultTypes += ", " + ty("d_" + pe);
        }
      }
      os << "    " << results << " = nsa.compress_grad "
         << (c.linear ? "linear " : "mean ") << args << " grad %" << dResult
         << " " << cfg << " : (" << operands << ", " << ty(dResult) << ") -> ("
         << resultTypes << ")\n";
    };
    compressGrad("d_k_cmp", kc, "w_k", "pe_k", "d_kc");
    compressGrad("d_v_cmp", vc, "w_v", "pe_v", "d_vc");
    std::string idx = c.idxFromReference ? "idx_t" : "idx";
    os << "    %d_q_slc, %d_k_slc, %d_v_slc = nsa.selected_attention_grad "
          "%q_t, %"
       << ks << "_t, %" << vs << "_t, %" << idx
       << ", %o_slc, %lse_slc grad %d_o_slc " << cfg << " : ("
       << types({"q", ks, vs, "idx", "o_slc", "lse_slc", "d_o_slc"}) << ") -> ("
       << types({"d_q_slc", "d_k_slc", "d_v_slc"}) << ")\n";
    os << "    %d_q_win, %d_k_win, %d_v_win = nsa.window_attention_grad %q_t, %"
       << kw << "_t, %" << vw << "_t, %o_win, %lse_win grad %d_o_win " << cfg
       << " : (" << types({"q", kw, vw, "o_win", "lse_win", "d_o_win"})
       << ") -> (" << types({"d_q_win", "d_k_win", "d_v_win"}) << ")\n";
    auto sum3 = [&](const std::string &name) {
      os << "    %" << name << "_cs = arith.addf %" << name << "_cmp, %" << name
         << "_slc : " << ty(name) << "\n";
      os << "    %" << name << " = arith.addf %" << name << "_cs, %" << name
         << "_win : " << ty(name) << "\n";
    };
    sum3("d_q");
    if (c.sharedKV) {
      sum3("d_k");
      sum3("d_v");
    }
  }
  for (const Buffer &b : outputs)
    os << "    bufferization.materialize_in_destination %" << b.name
       << " in restrict writable %" << b.name << "_out : (" << b.tensorType()
       << ", " << b.memrefType() << ") -> ()\n";
  os << "    return\n  }\n}\n";
  return s;
}

} // namespace cpucheck
