#include "tools/ir_file.h"

#include "ir/error.h"
#include "ir/parser.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

namespace kiln {

std::string read_source(const std::string &path) {
  if (path == "-") {
    std::ostringstream ss;
    ss << std::cin.rdbuf();
    if (std::cin.bad())
      fail("cannot read stdin");
    return ss.str();
  }
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  if (std::filesystem::is_directory(status))
    fail("cannot read '{}': it is a directory", path);
  // Opening a FIFO waits for a writer, possibly forever; a device may never
  // end. '-' reads a pipe on purpose.
  if (std::filesystem::exists(status) &&
      !std::filesystem::is_regular_file(status))
    fail("cannot read '{}': not a regular file (use '-' to read stdin)", path);
  std::ifstream in(path, std::ios::binary);
  if (!in)
    fail("cannot open '{}': {}", path, std::strerror(errno));
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  if (in.bad())
    fail("cannot read '{}'", path);
  return text;
}

std::unique_ptr<Graph> load_graph(const std::string &path) {
  std::string text = read_source(path);
  return parse(text, path == "-" ? "<stdin>" : path);
}

void write_output(const std::string &path, const std::string &text) {
  if (path.empty() || path == "-") {
    fmt::print("{}", text);
    return;
  }
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out)
    fail("cannot write '{}'", path);
}

} // namespace kiln
