//===- KernelProducts.cpp - tile.dot on tensor cores and exactly ----------===//

#include "KernelEmitter.h"

namespace mlir::nsa::tile::kernel {

//===----------------------------------------------------------------------===//
// Ops: products (tile.dot on mma.sync, split bf16, exact f32)
//===----------------------------------------------------------------------===//

/// The 16-bit type a dot's operand is a widening of (or has), if any.
std::pair<Value, Type> narrowSource(Value v) {
  if (auto ext = v.getDefiningOp<arith::ExtFOp>())
    v = ext.getIn();
  Type t = getElementTypeOrSelf(v.getType());
  if (t.isBF16() || t.isF16())
    return {v, t};
  return {v, Type()};
}

/// Whether every element of the constant `v` is a bf16 value (the 0/1 and
/// small-count matrices of selection).
bool isBF16Constant(Value v) {
  DenseElementsAttr attr;
  if (!matchPattern(v, m_Constant(&attr)) ||
      !isa<FloatType>(attr.getElementType()))
    return false;
  return llvm::all_of(attr.getValues<APFloat>(), [](APFloat x) {
    bool losesInfo = false;
    x.convert(APFloat::BFloat(), APFloat::rmNearestTiesToEven, &losesInfo);
    return !losesInfo;
  });
}

/// An f32 product one of whose operands is a bf16-exact constant runs on
/// tensor cores with the other operand split into bf16 hi + lo parts (about
/// 16 bits of mantissa, selection's scores stay at f32 accuracy): bf16, or
/// null when the product must stay on the CUDA cores.
Type splitType(DotOp op) {
  if (op.getLhsTransposed() ||
      !getElementTypeOrSelf(op.getLhs().getType()).isF32())
    return Type();
  bool lhsConst = isBF16Constant(op.getLhs());
  bool rhsConst = isBF16Constant(op.getRhs());
  if (lhsConst == rhsConst)
    return Type();
  return BFloat16Type::get(op.getContext());
}

LogicalResult KernelEmitter::emitDot(DotOp op) {
  auto [rhs, rhsType] = narrowSource(op.getRhs());
  if (rhsType && op.getLhsTransposed())
    return emitTransposedMmaDot(op, rhs, rhsType);
  if (rhsType) {
    auto [lhs, lhsType] = narrowSource(op.getLhs());
    // An f32 left operand is rounded to the right operand's type, as
    // attention rounds p before p . v.
    return emitMmaDot(op, lhsType == rhsType ? lhs : op.getLhs(), rhs, rhsType);
  }
  if (Type type = splitType(op))
    return emitSplitDot(op, type);
  return emitExactDot(op);
}

/// A product on tensor cores: the left operand from registers, the right
/// one staged (straight from global memory when it is a staged load).
LogicalResult KernelEmitter::emitMmaDot(DotOp op, Value lhs, Value rhs,
                                        Type type) {
  auto lhsType = cast<RankedTensorType>(lhs.getType());
  auto resultType = op.getResult().getType();
  int64_t m = resultType.getDimSize(0), n = resultType.getDimSize(1);
  Staged s;
  auto it = staged.find(rhs);
  if (it != staged.end()) {
    s = it->second;
  } else {
    s = dotRegions[op][0];
    restage(get(rhs, Kind::Tile), cast<RankedTensorType>(rhs.getType()), s);
  }
  // A left operand that is a staged load is read by wgmma from shared
  // memory, K-major (onlyMmaOperand staged it only where wgmma runs).
  std::optional<Staged> aStaged;
  if (auto it = staged.find(lhs); it != staged.end())
    aStaged = it->second;
  const Staged *a = aStaged ? &*aStaged : nullptr;
  emitAccumulating(op, onWarpgroups(s, m, a), [&](const Dist *init) {
    return mmaProduct(a ? Dist{Kind::Tile, {}, Value()} : get(lhs, Kind::Tile),
                      m, lhsType.getDimSize(1), s, n, op.getRhsTransposed(),
                      type, a, init, /*aKMajor=*/true);
  });
  return success();
}

/// wgmma accumulates into the registers of `acc + dot`'s acc, rather than
/// into fresh ones added afterwards (an [m, n] tile fewer live at once).
void KernelEmitter::emitAccumulating(DotOp op, bool wgmma,
                                     function_ref<Dist(const Dist *)> product) {
  arith::AddFOp add = wgmma ? accumulatingAdd(op) : arith::AddFOp();
  if (!add) {
    dists[op.getResult()] = product(nullptr);
    return;
  }
  Dist init = get(add.getLhs() == op.getResult() ? add.getRhs() : add.getLhs(),
                  Kind::Tile);
  dists[add.getResult()] = product(&init);
  fusedAdds.insert(add);
}

arith::AddFOp KernelEmitter::accumulatingAdd(DotOp op) {
  if (!op.getResult().hasOneUse())
    return {};
  auto add = dyn_cast<arith::AddFOp>(*op.getResult().getUsers().begin());
  if (!add || add->getBlock() != op->getBlock())
    return {};
  Value acc = add.getLhs() == op.getResult() ? add.getRhs() : add.getLhs();
  if (acc == op.getResult() || acc.getType() != op.getResult().getType())
    return {};
  // The accumulator must exist when the product is emitted.
  Operation *def = acc.getDefiningOp();
  if (def ? !(def->getBlock() == op->getBlock() && def->isBeforeInBlock(op))
          : !cast<BlockArgument>(acc).getOwner()->getParentOp()->isAncestor(op))
    return {};
  return add;
}

/// lhs^T . rhs (the backward's p^T . d_o and ds^T . q) on tensor cores: the
/// left operand, rounded to the right one's type as FlashAttention-2 rounds
/// p and ds, is staged as it is ([K][M]) and read transposed: by wgmma as an
/// M-major operand when both are swizzled, else into A fragments by
/// ldmatrix.x4.trans. The right operand is staged too unless it is a staged
/// load.
LogicalResult KernelEmitter::emitTransposedMmaDot(DotOp op, Value rhs,
                                                  Type type) {
  auto lt = cast<RankedTensorType>(op.getLhs().getType());
  auto resultType = op.getResult().getType();
  int64_t m = resultType.getDimSize(0), n = resultType.getDimSize(1);
  ArrayRef<Staged> regions = dotRegions[op];
  Staged sa = regions[0];
  auto it = staged.find(rhs);
  bool rhsStaged = it != staged.end();
  Staged sb = rhsStaged ? it->second : regions[1];
  gpu::BarrierOp::create(b, loc);
  writeStaged(get(op.getLhs(), Kind::Tile), lt, sa);
  if (!rhsStaged)
    writeStaged(get(rhs, Kind::Tile), cast<RankedTensorType>(rhs.getType()),
                sb);
  publishStaged();
  emitAccumulating(op, onWarpgroups(sb, m, &sa), [&](const Dist *init) {
    return mmaProduct(Dist{Kind::Tile, {}, Value()}, m, lt.getDimSize(0), sb, n,
                      op.getRhsTransposed(), type, &sa, init);
  });
  return success();
}

/// x = hi + lo with hi = bf16(x), lo = bf16(x - hi), elementwise.
static std::pair<Dist, Dist> splitBF16(OpBuilder &b, Location loc,
                                       const Dist &x) {
  Type bf16 = b.getBF16Type(), f32 = b.getF32Type();
  Dist hi{x.kind, {}, Value()}, lo{x.kind, {}, Value()};
  auto split = [&](Value v) -> std::pair<Value, Value> {
    Value h = arith::TruncFOp::create(b, loc, bf16, v);
    Value rest =
        arith::SubFOp::create(b, loc, v, arith::ExtFOp::create(b, loc, f32, h));
    return {h, arith::TruncFOp::create(b, loc, bf16, rest)};
  };
  if (x.splat) {
    auto [h, l] = split(x.splat);
    return {Dist{x.kind, {}, h}, Dist{x.kind, {}, l}};
  }
  for (Value v : x.elems) {
    auto [h, l] = split(v);
    hi.elems.push_back(h);
    lo.elems.push_back(l);
  }
  return {hi, lo};
}

static Dist addDists(OpBuilder &b, Location loc, const Dist &x, const Dist &y) {
  Dist out{x.kind, {}, Value()};
  for (auto [u, v] : llvm::zip(x.elems, y.elems))
    out.elems.push_back(arith::AddFOp::create(b, loc, u, v));
  return out;
}

LogicalResult KernelEmitter::emitSplitDot(DotOp op, Type type) {
  auto lt = cast<RankedTensorType>(op.getLhs().getType());
  auto rt = cast<RankedTensorType>(op.getRhs().getType());
  auto resultType = op.getResult().getType();
  int64_t m = resultType.getDimSize(0), n = resultType.getDimSize(1);
  int64_t k = lt.getDimSize(1);
  bool transposed = op.getRhsTransposed();
  Dist lhs = get(op.getLhs(), Kind::Tile), rhs = get(op.getRhs(), Kind::Tile);
  if (isBF16Constant(op.getLhs())) {
    auto [hi, lo] = splitBF16(b, loc, rhs);
    Staged sHi = dotRegions[op][0], sLo = dotRegions[op][1];
    gpu::BarrierOp::create(b, loc);
    writeStaged(hi, rt, sHi);
    writeStaged(lo, rt, sLo);
    publishStaged();
    dists[op.getResult()] =
        addDists(b, loc, mmaProduct(lhs, m, k, sHi, n, transposed, type),
                 mmaProduct(lhs, m, k, sLo, n, transposed, type));
    return success();
  }
  // The constant right operand was staged once, at the kernel's start.
  Staged sc = staged.lookup(op.getRhs());
  auto [hi, lo] = splitBF16(b, loc, lhs);
  dists[op.getResult()] =
      addDists(b, loc, mmaProduct(hi, m, k, sc, n, transposed, type),
               mmaProduct(lo, m, k, sc, n, transposed, type));
  return success();
}

/// mma.sync.m16n8k16 with f32 accumulation. Warp w computes the row blocks
/// it owns, for every 8 columns of the result.
Dist KernelEmitter::mmaProduct(const Dist &a, int64_t m, int64_t k,
                               const Staged &s, int64_t n, bool transposed,
                               Type type, const Staged *aStaged,
                               const Dist *init, bool aKMajor) {
  Value base = stagedBase(s);
  int64_t aCols = colSlots(k);
  MLIRContext *ctx = b.getContext();
  Type f32 = b.getF32Type();
  bool bf16 = type.isBF16();
  auto pairType = VectorType::get({2}, type);
  Type regType = bf16 ? Type(b.getI32Type()) : Type(pairType);
  auto pack = [&](Value lo, Value hi) -> Value {
    Value v = LLVM::PoisonOp::create(b, loc, pairType);
    v = LLVM::InsertElementOp::create(b, loc, v, lo, ci32(0));
    v = LLVM::InsertElementOp::create(b, loc, v, hi, ci32(1));
    return bf16 ? LLVM::BitcastOp::create(b, loc, regType, v).getResult() : v;
  };
  Value typeZero = zero(type);
  // Element (rs, column slot cs) of the left operand in `type`; zero past K.
  auto aElem = [&](int64_t rs, int64_t cs) -> Value {
    if (cs >= aCols)
      return typeZero;
    Value v = at(a, rs * aCols + cs);
    if (v.getType() != type)
      v = castFloat(b, loc, v, cast<FloatType>(type));
    if (Value ok = colValid(cs, k))
      v = arith::SelectOp::create(b, loc, ok, v, typeZero);
    return v;
  };
  // B fragments with ldmatrix.x2: two 8x8 matrices, k in [k0, k0 + 8) and
  // [k0 + 8, k0 + 16), columns n0 .. n0 + 7. Lanes 0-15 give the rows'
  // addresses. [N][K] storage is read as is; [K][N] storage transposed.
  Value laneRow = arith::RemUIOp::create(b, loc, lane, cidx(8));
  Value laneHalf = arith::RemUIOp::create(
      b, loc, arith::DivUIOp::create(b, loc, lane, cidx(8)), cidx(2));
  Value half8 = arith::MulIOp::create(b, loc, laneHalf, cidx(8));
  // Padded storage: the lane's row start plus its half's 8 elements along
  // the row ([N][K]) or 8 rows down ([K][N]). Swizzled storage: the lane's
  // row (row % 8 is laneRow) and the value its chunk index is xor-ed with
  // (for [N][K] storage the lane's chunk is k0 / 8 + laneHalf, k0 / 8 even,
  // so the xor folds laneHalf in).
  Value laneBase, swizzle;
  if (s.swizzled) {
    Value rowPart =
        transposed ? laneRow : arith::AddIOp::create(b, loc, laneRow, half8);
    laneBase = elementPtr(base, type,
                          arith::MulIOp::create(b, loc, rowPart, cidx(64)));
    swizzle =
        transposed ? arith::XOrIOp::create(b, loc, laneRow, laneHalf) : laneRow;
  } else {
    Value laneOffset;
    if (transposed)
      laneOffset = arith::AddIOp::create(
          b, loc, arith::MulIOp::create(b, loc, laneRow, cidx(s.stride)),
          half8);
    else
      laneOffset = arith::MulIOp::create(
          b, loc, arith::AddIOp::create(b, loc, laneRow, half8),
          cidx(s.stride));
    laneBase = elementPtr(base, type, laneOffset);
  }
  auto ldShape = NVVM::LdStMatrixShapeAttr::get(ctx, 8, 8);
  auto ldType =
      NVVM::LdStMatrixEltTypeAttr::get(ctx, NVVM::LdStMatrixEltType::B16);
  // ldmatrix of `count` 8x8 matrices at each lane's `ptr` (`col`: .trans):
  // one register per matrix, in the MMA operand's register type.
  auto ldmatrix = [&](Value ptr, int64_t count,
                      NVVM::MMALayout layout) -> SmallVector<Value> {
    auto structType = LLVM::LLVMStructType::getLiteral(
        ctx, SmallVector<Type>(count, b.getI32Type()));
    Value matrices = NVVM::LdMatrixOp::create(
        b, loc, structType, ptr, b.getI32IntegerAttr(count),
        NVVM::MMALayoutAttr::get(ctx, layout), ldShape, ldType);
    SmallVector<Value> regs;
    for (int64_t e = 0; e < count; ++e) {
      Value r =
          LLVM::ExtractValueOp::create(b, loc, matrices, ArrayRef<int64_t>{e});
      regs.push_back(bf16 ? r : LLVM::BitcastOp::create(b, loc, regType, r));
    }
    return regs;
  };
  auto bFragments = [&](int64_t n0, int64_t k0) -> SmallVector<Value> {
    NVVM::MMALayout layout =
        transposed ? NVVM::MMALayout::row : NVVM::MMALayout::col;
    if (!s.swizzled) {
      int64_t offset = transposed ? n0 * s.stride + k0 : k0 * s.stride + n0;
      return ldmatrix(elementPtr(laneBase, type, cidx(offset)), 2, layout);
    }
    int64_t r0 = transposed ? n0 : k0, c0 = transposed ? k0 : n0;
    Value chunk = arith::XOrIOp::create(b, loc, swizzle, cidx(c0 % 64 / 8));
    Value ptr =
        elementPtr(laneBase, type, cidx(c0 / 64 * s.rows * 64 + r0 * 64));
    return ldmatrix(
        elementPtr(ptr, type, arith::MulIOp::create(b, loc, chunk, cidx(8))), 2,
        layout);
  };

  // A fragments of a staged [K][M] left operand, transposed: ldmatrix.x4
  // .trans, lanes 8i .. 8i + 7 addressing the rows of matrix i, which holds
  // k0 + 8*(i/2) .. + 7 by m0 + 8*(i%2) .. + 7 (the fragment's register
  // order: rows g and g + 8, then k + 8).
  Value aLaneBase;
  if (aStaged && !aStaged->swizzled) {
    Value laneK = arith::AddIOp::create(
        b, loc, laneRow,
        arith::MulIOp::create(
            b, loc, arith::DivUIOp::create(b, loc, lane, cidx(16)), cidx(8)));
    Value laneM = arith::AddIOp::create(
        b, loc, half8, arith::MulIOp::create(b, loc, warpId, cidx(16)));
    aLaneBase = elementPtr(
        sharedPtr(aStaged->offset), type,
        arith::AddIOp::create(
            b, loc, arith::MulIOp::create(b, loc, laneK, cidx(aStaged->stride)),
            laneM));
  }
  auto aFragments = [&](int64_t i, int64_t step) -> SmallVector<Value> {
    if (!aStaged) {
      int64_t r0 = 2 * i, r1 = 2 * i + 1, c0 = 4 * step, c1 = 4 * step + 2;
      return {pack(aElem(r0, c0), aElem(r0, c0 + 1)),
              pack(aElem(r1, c0), aElem(r1, c0 + 1)),
              pack(aElem(r0, c1), aElem(r0, c1 + 1)),
              pack(aElem(r1, c1), aElem(r1, c1 + 1))};
    }
    int64_t offset = 16 * step * aStaged->stride + rowStep(2 * i);
    return ldmatrix(elementPtr(aLaneBase, type, cidx(offset)), 4,
                    NVVM::MMALayout::col);
  };

  auto structType = LLVM::LLVMStructType::getLiteral(ctx, {f32, f32, f32, f32});
  Dist out{Kind::Tile, {}, Value()};
  int64_t rSlots = rowSlots(m), cSlots = colSlots(n);
  out.elems.assign(rSlots * cSlots, Value());
  Value fzero = zero(f32);
  NVVM::MMATypes mmaType = bf16 ? NVVM::MMATypes::bf16 : NVVM::MMATypes::f16;
  // One row block (16 rows) of the warp: every 8 columns, over K.
  auto rowBlock = [&](int64_t i) -> SmallVector<Value> {
    SmallVector<Value> results;
    for (int64_t j = 0; j < cSlots / 2; ++j) {
      SmallVector<Value> acc(4, fzero);
      for (int64_t step = 0; step < ceilDiv(k, 16); ++step) {
        SmallVector<Value> fa = aFragments(i, step);
        SmallVector<Value> fb = bFragments(8 * j, 16 * step);
        auto mma = NVVM::MmaOp::create(
            b, loc, structType, fa, fb, acc, {16, 8, 16}, std::nullopt,
            std::nullopt, std::array<NVVM::MMATypes, 2>{mmaType, mmaType},
            std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row,
                                           NVVM::MMALayout::col});
        for (int64_t e = 0; e < 4; ++e)
          acc[e] = LLVM::ExtractValueOp::create(b, loc, mma.getResult(),
                                                ArrayRef<int64_t>{e});
      }
      llvm::append_range(results, acc);
    }
    return results;
  };
  // Whole warpgroups (4 warps, 64 rows) multiply on wgmma when the right
  // operand (and a staged left one) is in the swizzled layout. mma.sync
  // reads neither a swizzled left operand nor an initial accumulator: the
  // staging decisions (emit()) must have put every row block on wgmma.
  bool warpgroups =
      s.swizzled && (!aStaged || aStaged->swizzled) && warps % 4 == 0;
  if ((init || (aStaged && aStaged->swizzled)) && !onWarpgroups(s, m, aStaged))
    llvm::report_fatal_error("convert-tile-to-gpu: a product set up for "
                             "wgmma does not fill whole warpgroups");
  for (int64_t i = 0; i < rSlots / 2; ++i) {
    SmallVector<Value> acc;
    if (rowStep(2 * i) + 16 * (warps - 1) < m) {
      SmallVector<Value> initAcc;
      for (int64_t j = 0; init && j < cSlots / 2; ++j)
        for (int64_t e = 0; e < 4; ++e)
          initAcc.push_back(
              at(*init, (2 * i + e / 2) * cSlots + 2 * j + e % 2));
      acc = warpgroups
                ? wgmmaRowBlock(
                      i, [&](int64_t step) { return aFragments(i, step); },
                      aStaged, aKMajor, k, s, n, transposed, type, initAcc)
                : rowBlock(i);
    } else {
      // Warps whose block is all padding rows skip its products (the test
      // is warp-uniform, as mma.sync needs).
      Value firstRow = arith::AddIOp::create(
          b, loc, arith::MulIOp::create(b, loc, warpId, cidx(16)),
          cidx(rowStep(2 * i)));
      Value live = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                                         firstRow, cidx(m));
      SmallVector<Type> types(4 * (cSlots / 2), f32);
      auto guard = scf::IfOp::create(b, loc, types, live,
                                     /*withElseRegion=*/true);
      OpBuilder::InsertionGuard g(b);
      b.setInsertionPointToStart(guard.thenBlock());
      scf::YieldOp::create(b, loc, rowBlock(i));
      b.setInsertionPointToStart(guard.elseBlock());
      scf::YieldOp::create(b, loc, SmallVector<Value>(types.size(), fzero));
      acc.assign(guard.getResults().begin(), guard.getResults().end());
    }
    for (int64_t j = 0; j < cSlots / 2; ++j) {
      out.elems[(2 * i) * cSlots + 2 * j] = acc[4 * j];
      out.elems[(2 * i) * cSlots + 2 * j + 1] = acc[4 * j + 1];
      out.elems[(2 * i + 1) * cSlots + 2 * j] = acc[4 * j + 2];
      out.elems[(2 * i + 1) * cSlots + 2 * j + 1] = acc[4 * j + 3];
    }
  }
  return out;
}

/// One row block of the warpgroup on wgmma.mma_async.m64nNk16 (N <= 256 a
/// chain, over K in steps of 16): fence, the chains, commit, wait. The
/// accumulators then pass through an empty asm so that no read of them is
/// scheduled before the wait.
SmallVector<Value> KernelEmitter::wgmmaRowBlock(
    int64_t i, function_ref<SmallVector<Value>(int64_t)> aFragments,
    const Staged *aStaged, bool aKMajor, int64_t k, const Staged &s, int64_t n,
    bool transposed, Type type, ArrayRef<Value> init) {
  Type i32 = b.getI32Type(), i64 = b.getI64Type();
  auto c64 = [&](uint64_t v) {
    return arith::ConstantIntOp::create(b, loc, i64, (int64_t)v);
  };
  // Matrix descriptor of a swizzled region's start (bits 0-13: address /
  // 16; 16-29: leading, 32-45: stride byte offset / 16; 62-63: 1 = 128-byte
  // swizzle). K-major ([N][K]) operands: 8-row groups 1024 bytes apart, the
  // leading offset unused. MN-major ([K][N]): 8-row (K) groups 1024 bytes
  // apart, 64-column blocks `blockBytes` apart.
  auto descriptorOf = [&](const Staged &r, bool kMajor) -> Value {
    Value base = stagedBase(r);
    Value address = LLVM::PtrToIntOp::create(b, loc, i64, base);
    Value start = arith::AndIOp::create(
        b, loc, arith::ShRUIOp::create(b, loc, address, c64(4)), c64(0x3fff));
    uint64_t leading = kMajor ? 1 : r.blockBytes() / 16;
    return arith::OrIOp::create(
        b, loc, start,
        c64(leading << 16 | uint64_t(1024 / 16) << 32 | uint64_t(1) << 62));
  };
  Value descriptor = descriptorOf(s, transposed);
  // A staged left operand: this warpgroup's 64 rows start at row
  // rowStep(2i) + 64 * (warp / 4), a row of 128 bytes in [M][K] (K-major),
  // a column block in [K][M] (M-major).
  Value aDescriptor;
  if (aStaged) {
    Value block = arith::AddIOp::create(
        b, loc, arith::DivUIOp::create(b, loc, warpId, cidx(4)),
        cidx(rowStep(2 * i) / 64));
    Value blockOffset = arith::IndexCastOp::create(
        b, loc, i64,
        arith::MulIOp::create(
            b, loc, block,
            cidx((aKMajor ? 64 * 128 : aStaged->blockBytes()) / 16)));
    aDescriptor = arith::AddIOp::create(b, loc, descriptorOf(*aStaged, aKMajor),
                                        blockOffset);
  }
  std::string ab = type.isBF16() ? "bf16" : "f16";

  NVVM::WgmmaFenceAlignedOp::create(b, loc);
  int64_t cols = 8 * ceilDiv(n, 8);
  SmallVector<Value> acc;
  SmallVector<SmallVector<Value>> chains;
  for (int64_t n0 = 0; n0 < cols; n0 += 256) {
    int64_t width = std::min<int64_t>(256, cols - n0), count = width / 2;
    // The chain starts from `init`'s columns, or from zero (scale-d = 0).
    SmallVector<Value> d;
    if (!init.empty())
      d.assign(init.begin() + n0 / 2, init.begin() + n0 / 2 + count);
    for (int64_t step = 0; step < ceilDiv(k, 16); ++step) {
      int64_t k0 = 16 * step;
      int64_t offset = transposed
                           ? k0 / 64 * s.blockBytes() + k0 % 64 * 2 + n0 * 128
                           : k0 * 128 + n0 / 64 * s.blockBytes();
      // Operands after the accumulators: A (4 registers, or a descriptor
      // advanced by k0 rows of 128 bytes), B's descriptor, scale-d.
      SmallVector<Value> operands;
      if (aStaged) {
        int64_t aOffset =
            aKMajor ? k0 / 64 * aStaged->blockBytes() + k0 % 64 * 2 : k0 * 128;
        operands.push_back(
            arith::AddIOp::create(b, loc, aDescriptor, c64(aOffset / 16)));
      } else {
        for (Value r : aFragments(step))
          operands.push_back(
              r.getType() == i32 ? r : LLVM::BitcastOp::create(b, loc, i32, r));
      }
      int64_t aCount = operands.size();
      operands.push_back(
          arith::AddIOp::create(b, loc, descriptor, c64(offset / 16)));
      operands.push_back(ci32(!d.empty()));
      llvm::append_range(operands, d);
      std::string text, constraints;
      llvm::raw_string_ostream os(text), cs(constraints);
      os << "{\n.reg .pred p;\nsetp.ne.b32 p, $" << count + aCount + 1
         << ", 0;\nwgmma.mma_async.sync.aligned.m64n" << width << "k16.f32."
         << ab << "." << ab << " {";
      for (int64_t e = 0; e < count; ++e) {
        os << (e ? ", $" : "$") << e;
        cs << "=f,";
      }
      if (aStaged) {
        os << "}, $" << count;
        cs << "l,";
      } else {
        os << "}, {$" << count << ", $" << count + 1 << ", $" << count + 2
           << ", $" << count + 3 << "}";
        cs << "r,r,r,r,";
      }
      // imm-scale-a, imm-scale-b, (imm-trans-a,) imm-trans-b.
      os << ", $" << count + aCount << ", p, 1, 1, "
         << (aStaged ? (aKMajor ? "0, " : "1, ") : "") << (transposed ? 0 : 1)
         << ";\n}";
      cs << "l,r";
      for (int64_t e = 0; e < (int64_t)d.size(); ++e)
        cs << "," << e;
      d = asmResults(text, constraints, operands);
    }
    chains.push_back(d);
  }
  NVVM::WgmmaGroupSyncAlignedOp::create(b, loc);
  NVVM::WgmmaWaitGroupSyncOp::create(b, loc, 0);
  for (SmallVector<Value> &d : chains) {
    std::string constraints;
    llvm::raw_string_ostream cs(constraints);
    for (int64_t e = 0; e < (int64_t)d.size(); ++e)
      cs << (e ? ",=f" : "=f");
    for (int64_t e = 0; e < (int64_t)d.size(); ++e)
      cs << "," << e;
    llvm::append_range(acc, asmResults("", constraints, d));
  }
  return acc;
}

SmallVector<Value> KernelEmitter::asmResults(StringRef text,
                                             StringRef constraints,
                                             ValueRange operands) {
  int64_t count = llvm::count(constraints, '=');
  auto structType = LLVM::LLVMStructType::getLiteral(
      b.getContext(), SmallVector<Type>(count, b.getF32Type()));
  auto op = LLVM::InlineAsmOp::create(
      b, loc, structType, operands, text, constraints,
      /*has_side_effects=*/true, /*is_align_stack=*/false,
      LLVM::TailCallKind::None,
      LLVM::AsmDialectAttr::get(b.getContext(), LLVM::AsmDialect::AD_ATT),
      /*operand_attrs=*/ArrayAttr());
  SmallVector<Value> results;
  for (int64_t e = 0; e < count; ++e)
    results.push_back(LLVM::ExtractValueOp::create(b, loc, op.getRes(),
                                                   ArrayRef<int64_t>{e}));
  return results;
}

/// f32 products (selection's score sums, small and exact-sensitive) on the
/// CUDA cores: both operands in scratch, one dot product per element.
LogicalResult KernelEmitter::emitExactDot(DotOp op) {
  auto lt = cast<RankedTensorType>(op.getLhs().getType());
  auto rt = cast<RankedTensorType>(op.getRhs().getType());
  auto resultType = op.getResult().getType();
  Type f32 = b.getF32Type();
  int64_t lBytes = lt.getNumElements() * 4 + 16;
  int64_t rBytes = rt.getNumElements() * 4 + 16;
  beginScratch(lBytes + rBytes);
  Value lBase = sharedPtr(stagedBytes);
  Value rBase = sharedPtr(stagedBytes + roundUp(lBytes, 16));
  writeDist(get(op.getLhs(), Kind::Tile), lt, lBase, lt.getDimSize(1), f32);
  writeDist(get(op.getRhs(), Kind::Tile), rt, rBase, rt.getDimSize(1), f32);
  gpu::BarrierOp::create(b, loc);
  int64_t m = resultType.getDimSize(0), n = resultType.getDimSize(1);
  int64_t k = op.getLhsTransposed() ? lt.getDimSize(0) : lt.getDimSize(1);
  Dist out{Kind::Tile, {}, Value()};
  for (int64_t rs = 0; rs < rowSlots(m); ++rs) {
    Value row = rowOf(rs);
    for (int64_t cs = 0; cs < colSlots(n); ++cs) {
      Value col = colOf(cs);
      auto dotProduct = [&]() -> Value {
        auto loop = forLoop(
            0, k, ValueRange{zero(f32)},
            [&](Value kk, ValueRange acc) -> SmallVector<Value> {
              auto idx = [&](Value r, Value c, int64_t stride) -> Value {
                return arith::AddIOp::create(
                    b, loc, arith::MulIOp::create(b, loc, r, cidx(stride)), c);
              };
              Value li = op.getLhsTransposed() ? idx(kk, row, lt.getDimSize(1))
                                               : idx(row, kk, lt.getDimSize(1));
              Value ri = op.getRhsTransposed() ? idx(col, kk, rt.getDimSize(1))
                                               : idx(kk, col, rt.getDimSize(1));
              Value lv =
                  LLVM::LoadOp::create(b, loc, f32, elementPtr(lBase, f32, li));
              Value rv =
                  LLVM::LoadOp::create(b, loc, f32, elementPtr(rBase, f32, ri));
              return {arith::AddFOp::create(
                  b, loc, acc[0], arith::MulFOp::create(b, loc, lv, rv))};
            });
        return loop.getResult(0);
      };
      // Padding elements skip the loop (a warp whose rows are all padding
      // skips the whole product).
      Value valid = andOpt(rowValid(rs, m), colValid(cs, n));
      if (!valid) {
        out.elems.push_back(dotProduct());
        continue;
      }
      auto guard = scf::IfOp::create(b, loc, TypeRange{f32}, valid,
                                     /*withElseRegion=*/true);
      {
        OpBuilder::InsertionGuard g(b);
        b.setInsertionPointToStart(guard.thenBlock());
        scf::YieldOp::create(b, loc, dotProduct());
        b.setInsertionPointToStart(guard.elseBlock());
        scf::YieldOp::create(b, loc, zero(f32));
      }
      out.elems.push_back(guard.getResult(0));
    }
  }
  dists[op.getResult()] = out;
  return success();
}

} // namespace mlir::nsa::tile::kernel
