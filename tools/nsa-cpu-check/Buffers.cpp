//===- Buffers.cpp - nsa-cpu-check's host buffers and random inputs -------===//
//
// The host buffers of one case: element rounding to bf16/f16, poison, the
// conversions to reference tensors, and the seeded inputs.
//
//===----------------------------------------------------------------------===//

#include "CpuCheck.h"

#include "llvm/ADT/APFloat.h"

#include <cmath>
#include <cstring>
#include <utility>

namespace cpucheck {

//===----------------------------------------------------------------------===//
// Buffer
//===----------------------------------------------------------------------===//

const char *elemName(Elem e) {
  switch (e) {
  case Elem::BF16:
    return "bf16";
  case Elem::F16:
    return "f16";
  case Elem::F32:
    return "f32";
  case Elem::I32:
    return "i32";
  }
  return "?";
}

Buffer::Buffer(std::string name, std::vector<int64_t> shape, Elem elem)
    : name(std::move(name)), shape(std::move(shape)), elem(elem) {
  size_t bytes = numElements() * elemBytes();
  storage.assign(bytes / 8 + 8, 0);
}

std::string Buffer::shapeText() const {
  std::string s;
  for (int64_t e : shape)
    s += std::to_string(e) + "x";
  return s + elemName(elem);
}

double Buffer::set(int64_t i, double x) {
  switch (elem) {
  case Elem::BF16:
  case Elem::F16: {
    llvm::APFloat f(x);
    bool losesInfo;
    f.convert(elem == Elem::BF16 ? llvm::APFloat::BFloat()
                                 : llvm::APFloat::IEEEhalf(),
              llvm::APFloat::rmNearestTiesToEven, &losesInfo);
    u16()[i] = static_cast<uint16_t>(f.bitcastToAPInt().getZExtValue());
    return get(i);
  }
  case Elem::F32:
    f32()[i] = static_cast<float>(x);
    return f32()[i];
  case Elem::I32:
    i32()[i] = static_cast<int32_t>(x);
    return i32()[i];
  }
  return 0;
}

double Buffer::get(int64_t i) const {
  switch (elem) {
  case Elem::BF16: {
    uint32_t bits = static_cast<uint32_t>(u16()[i]) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  case Elem::F16:
    return llvm::APFloat(llvm::APFloat::IEEEhalf(), llvm::APInt(16, u16()[i]))
        .convertToDouble();
  case Elem::F32:
    return f32()[i];
  case Elem::I32:
    return i32()[i];
  }
  return 0;
}

void Buffer::poison() {
  int64_t n = numElements();
  for (int64_t i = 0; i < n; ++i) {
    switch (elem) {
    case Elem::BF16:
      u16()[i] = 0x7fc1; // quiet NaN with a payload
      break;
    case Elem::F16:
      u16()[i] = 0x7e01;
      break;
    case Elem::F32: {
      uint32_t bits = 0x7fc00001;
      std::memcpy(&f32()[i], &bits, 4);
      break;
    }
    case Elem::I32:
      i32()[i] = kIdxPoison;
      break;
    }
  }
}

ref::Tensor Buffer::toTensor() const {
  ref::Tensor t(shape);
  for (int64_t i = 0, n = numElements(); i < n; ++i)
    t.data[i] = get(i);
  return t;
}

ref::IndexTensor Buffer::toIndexTensor() const {
  ref::IndexTensor t(shape);
  for (int64_t i = 0, n = numElements(); i < n; ++i)
    t.data[i] = i32()[i];
  return t;
}

//===----------------------------------------------------------------------===//
// Random inputs
//===----------------------------------------------------------------------===//

namespace {
/// splitmix64 and Box-Muller: the same numbers on every platform.
struct Rng {
  uint64_t state;
  explicit Rng(uint64_t seed) : state(seed * 0x9e3779b97f4a7c15ull + 1) {}
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  /// Uniform in the open interval (0, 1).
  double uniform() { return ((next() >> 11) + 0.5) * 0x1.0p-53; }
  double normal() {
    double u = uniform(), v = uniform();
    return std::sqrt(-2 * std::log(u)) * std::cos(2 * M_PI * v);
  }
};
} // namespace

//===----------------------------------------------------------------------===//
// The buffers of one case
//===----------------------------------------------------------------------===//

const Buffer &CaseRunner::buf(const std::string &name) const {
  for (const Buffer &b : inputs)
    if (b.name == name)
      return b;
  for (const Buffer &b : outputs)
    if (b.name == name)
      return b;
  ref::fatal("no buffer " + name);
}

Buffer &CaseRunner::buf(const std::string &name) {
  return const_cast<Buffer &>(std::as_const(*this).buf(name));
}

bool CaseRunner::has(const std::string &name) const {
  for (const Buffer &b : inputs)
    if (b.name == name)
      return true;
  return false;
}

void CaseRunner::makeBuffers() {
  Elem dt = c.f16 ? Elem::F16 : Elem::BF16;
  int64_t B = c.B, T = c.T, HQ = c.HQ, HKV = c.HKV, Dk = c.Dk, Dv = c.Dv;
  int64_t Nc = c.cfg.numCompressed(T), l = c.cfg.l;
  std::vector<int64_t> idxShape{B, T, HKV, c.cfg.n};
  const char *branches[] = {"cmp", "slc", "win"};
  // With shared K/V every branch names the same k and v: one buffer each.
  inputs.emplace_back("q", std::vector<int64_t>{B, T, HQ, Dk}, dt);
  for (const char *br : branches)
    if (!has(c.kName(br)))
      inputs.emplace_back(c.kName(br), std::vector<int64_t>{B, T, HKV, Dk}, dt);
  for (const char *br : branches)
    if (!has(c.vName(br)))
      inputs.emplace_back(c.vName(br), std::vector<int64_t>{B, T, HKV, Dv}, dt);
  inputs.emplace_back("g", std::vector<int64_t>{B, T, HQ, 3}, dt);
  if (c.linear) {
    inputs.emplace_back("w_k", std::vector<int64_t>{HKV, l * Dk, Dk}, dt);
    inputs.emplace_back("w_v", std::vector<int64_t>{HKV, l * Dv, Dv}, dt);
    if (c.pe) {
      inputs.emplace_back("pe_k", std::vector<int64_t>{HKV, l, Dk}, dt);
      inputs.emplace_back("pe_v", std::vector<int64_t>{HKV, l, Dv}, dt);
    }
  }
  outputs.emplace_back("kc", std::vector<int64_t>{B, Nc, HKV, Dk}, dt);
  outputs.emplace_back("vc", std::vector<int64_t>{B, Nc, HKV, Dv}, dt);
  for (const char *br : branches) {
    outputs.emplace_back(std::string("o_") + br,
                         std::vector<int64_t>{B, T, HQ, Dv}, dt);
    outputs.emplace_back(std::string("lse_") + br,
                         std::vector<int64_t>{B, T, HQ}, Elem::F32);
    if (std::string(br) == "cmp" && !c.idxFromReference)
      outputs.emplace_back("idx", idxShape, Elem::I32);
  }
  outputs.emplace_back("o", std::vector<int64_t>{B, T, HQ, Dv}, dt);
  if (c.backward) {
    // The cotangent of o, and every gradient of the grad ops (named like
    // their primal with d_; d_o_<branch> is a branch output's cotangent).
    inputs.emplace_back("d_o", std::vector<int64_t>{B, T, HQ, Dv}, dt);
    outputs.emplace_back("d_g", std::vector<int64_t>{B, T, HQ, 3}, dt);
    for (const char *br : branches)
      outputs.emplace_back(std::string("d_o_") + br,
                           std::vector<int64_t>{B, T, HQ, Dv}, dt);
    outputs.emplace_back("d_kc", std::vector<int64_t>{B, Nc, HKV, Dk}, dt);
    outputs.emplace_back("d_vc", std::vector<int64_t>{B, Nc, HKV, Dv}, dt);
    for (const char *br : branches) {
      outputs.emplace_back(std::string("d_q_") + br,
                           std::vector<int64_t>{B, T, HQ, Dk}, dt);
      outputs.emplace_back(std::string("d_k_") + br,
                           std::vector<int64_t>{B, T, HKV, Dk}, dt);
      outputs.emplace_back(std::string("d_v_") + br,
                           std::vector<int64_t>{B, T, HKV, Dv}, dt);
    }
    if (c.linear) {
      outputs.emplace_back("d_w_k", std::vector<int64_t>{HKV, l * Dk, Dk}, dt);
      outputs.emplace_back("d_w_v", std::vector<int64_t>{HKV, l * Dv, Dv}, dt);
      if (c.pe) {
        outputs.emplace_back("d_pe_k", std::vector<int64_t>{HKV, l, Dk}, dt);
        outputs.emplace_back("d_pe_v", std::vector<int64_t>{HKV, l, Dv}, dt);
      }
    }
    outputs.emplace_back("d_q", std::vector<int64_t>{B, T, HQ, Dk}, dt);
    if (c.sharedKV) {
      outputs.emplace_back("d_k", std::vector<int64_t>{B, T, HKV, Dk}, dt);
      outputs.emplace_back("d_v", std::vector<int64_t>{B, T, HKV, Dv}, dt);
    }
  }

  // Inputs: N(0, 1) for q, k, v; W ~ N(0, 1/(l*D)) so that kc has unit
  // scale; PE ~ N(0, 1/4); gates uniform in (0, 1). Each value is rounded to
  // the element type once, and the reference reads it back from the buffer.
  Rng rng(c.seed);
  for (Buffer &b : inputs) {
    double scale = 1;
    if (b.name == "q")
      scale = c.qScale;
    else if (b.name == "w_k")
      scale = 1 / std::sqrt(double(l * Dk));
    else if (b.name == "w_v")
      scale = 1 / std::sqrt(double(l * Dv));
    else if (b.name == "pe_k" || b.name == "pe_v")
      scale = 0.5;
    for (int64_t i = 0, n = b.numElements(); i < n; ++i) {
      double x = b.name == "g" ? rng.uniform() : scale * rng.normal();
      if (b.set(i, x) == 0) // never zero: a zero hides missing terms
        b.set(i, x < 0 ? -0x1p-8 : 0x1p-8);
    }
  }
  for (Buffer &b : outputs)
    b.poison();

  if (c.idxFromReference) {
    ref::Forward f = referenceForward();
    inputs.emplace_back("idx", idxShape, Elem::I32);
    Buffer &idx = inputs.back();
    for (int64_t i = 0, n = idx.numElements(); i < n; ++i)
      idx.i32()[i] = f.selection.idx.data[i];
  }
}

/// The float64 forward from the inputs alone.
ref::Forward CaseRunner::referenceForward() {
  auto t = [&](const char *name) {
    return has(name) ? buf(name).toTensor() : ref::Tensor();
  };
  ref::CompressionMode mode =
      c.linear ? ref::CompressionMode::Linear : ref::CompressionMode::Mean;
  if (c.sharedKV)
    return ref::forward(t("q"), t("k"), t("v"), t("g"), mode, t("w_k"),
                        t("w_v"), t("pe_k"), t("pe_v"), c.cfg);
  return ref::forward(t("q"), t("k_cmp"), t("v_cmp"), t("k_slc"), t("v_slc"),
                      t("k_win"), t("v_win"), t("g"), mode, t("w_k"), t("w_v"),
                      t("pe_k"), t("pe_v"), c.cfg);
}

} // namespace cpucheck
