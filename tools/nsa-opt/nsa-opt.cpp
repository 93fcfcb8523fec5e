//===- nsa-opt.cpp - NSA pass driver --------------------------------------===//
//
// mlir-opt with the nsa dialect and passes added: every upstream dialect and
// pass stays available, so one tool runs the whole pipeline.
//
//===----------------------------------------------------------------------===//

#include "nsa/Dialect/NSA/IR/NSADialect.h"
#include "nsa/Dialect/NSA/Transforms/Passes.h"
#include "nsa/Dialect/Tile/IR/TileDialect.h"
#include "nsa/Dialect/Tile/Transforms/Passes.h"

#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::registerAllPasses();
  mlir::nsa::registerNSAPasses();
  mlir::nsa::registerNSAPipelines();
  mlir::nsa::tile::registerTilePasses();
  mlir::nsa::tile::registerTilePipelines();

  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  registry.insert<mlir::nsa::NSADialect, mlir::nsa::tile::TileDialect>();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "NSA optimizer driver\n", registry));
}
