//===- File.h - Whole-file reads for manifests and modules ------*- C++ -*-===//

#ifndef NSA_RUNTIME_FILE_H
#define NSA_RUNTIME_FILE_H

#include "Status.h"

namespace nsa::rt {

/// Reads `path` whole. NSA_ERROR_IO "cannot read <what> '<path>': <errno>".
Status readFile(const std::string &path, const char *what,
                std::string &contents);

/// The directory part of `path` ("" for a bare file name).
std::string directoryOf(const std::string &path);

} // namespace nsa::rt

#endif // NSA_RUNTIME_FILE_H
