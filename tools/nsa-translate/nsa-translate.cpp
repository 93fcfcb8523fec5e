//===- nsa-translate.cpp - NSA translations -------------------------------===//
//
// Turns modules into what the runtime loads: `--nsa-to-ptx` gives PTX text
// for sm_90a from a module holding one gpu.module.
//
//===----------------------------------------------------------------------===//

#include "nsa/Target/PTX.h"

#include "mlir/Tools/mlir-translate/MlirTranslateMain.h"

int main(int argc, char **argv) {
  mlir::nsa::registerToPTXTranslation();
  return mlir::failed(
      mlir::mlirTranslateMain(argc, argv, "NSA translation driver"));
}
