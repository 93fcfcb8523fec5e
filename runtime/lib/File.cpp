//===- File.cpp - Whole-file reads for manifests and modules --------------===//

#include "File.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace nsa::rt {

Status readFile(const std::string &path, const char *what,
                std::string &contents) {
  auto failure = [&](int error) {
    return Status(NSA_ERROR_IO, format("cannot read %s '%s': %s", what,
                                       path.c_str(), std::strerror(error)));
  };
  std::FILE *file = std::fopen(path.c_str(), "rb");
  if (!file)
    return failure(errno);
  contents.clear();
  char buffer[1 << 16];
  size_t count;
  while ((count = std::fread(buffer, 1, sizeof(buffer), file)) > 0)
    contents.append(buffer, count);
  // A directory opens fine on Linux and fails only here, with EISDIR.
  int error = std::ferror(file) ? errno : 0;
  std::fclose(file);
  if (error)
    return failure(error);
  return Status::success();
}

std::string directoryOf(const std::string &path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos)
    return "";
  return slash == 0 ? "/" : path.substr(0, slash);
}

} // namespace nsa::rt
