// File helpers shared by the tests of file formats (npy, safetensors, IDX):
// whole file reads and writes, a python3 that can import given modules, a
// fixture with a fresh temporary directory, and a reader's error on a FIFO.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace kiln::testing {

// Makes a FIFO at `path` and runs read(path) on another thread: opening a
// FIFO for reading waits for a writer, so a reader that does not refuse it
// first blocks forever. Returns the message of the error read throws,
// "<no error>", or "<blocked>" when it had not returned after 10 s (the
// stuck reader is then set free by a writer that opens and closes, so the
// test fails instead of hanging).
inline std::string
error_reading_fifo(const std::string &path,
                   const std::function<void(const std::string &)> &read) {
  if (::mkfifo(path.c_str(), 0600) != 0)
    return "<mkfifo failed: " + std::string(std::strerror(errno)) + ">";
  auto result = std::async(std::launch::async, [path, read]() -> std::string {
    try {
      read(path);
      return "<no error>";
    } catch (const std::exception &e) {
      return e.what();
    }
  });
  if (result.wait_for(std::chrono::seconds(10)) == std::future_status::ready)
    return result.get();
  for (int i = 0; i < 100 && result.wait_for(std::chrono::milliseconds(100)) !=
                                 std::future_status::ready;
       ++i) {
    int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0)
      ::close(fd);
  }
  return "<blocked>";
}

inline std::string read_bytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_bytes(const std::string &path, const std::string &bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  ASSERT_TRUE(out.good()) << path;
}

// A python3 that can `import <modules>`: $KILN_PYTHON, else python3 on PATH,
// else the system one (a pyenv python3 on PATH may lack Debian's packages).
// Empty when there is none. Memoized per module list.
inline const std::string &python_with(const std::string &modules) {
  static std::map<std::string, std::string> found;
  auto it = found.find(modules);
  if (it != found.end())
    return it->second;
  std::vector<std::string> candidates;
  if (const char *env = std::getenv("KILN_PYTHON"))
    candidates.emplace_back(env);
  candidates.emplace_back("python3");
  candidates.emplace_back("/usr/bin/python3");
  std::string py;
  for (const std::string &c : candidates) {
    std::string cmd =
        fmt::format("'{}' -c 'import {}' >/dev/null 2>&1", c, modules);
    if (std::system(cmd.c_str()) == 0) {
      py = c;
      break;
    }
  }
  return found[modules] = py;
}

// A fixture owning a fresh directory under the system's temporary one.
class TempDirTest : public ::testing::Test {
protected:
  explicit TempDirTest(std::string prefix) : prefix_(std::move(prefix)) {}

  void SetUp() override {
    std::string templ =
        (std::filesystem::temp_directory_path() / (prefix_ + "-XXXXXX"))
            .string();
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
  }
  void TearDown() override {
    ::chmod(dir_.c_str(), 0700); // a test may have made it read-only
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string path(const std::string &name) const {
    return (dir_ / name).string();
  }

  // Runs a python script with the interpreter `py`; its exit status.
  int run_python(const std::string &py, const std::string &script) {
    std::string file = path("script.py");
    write_bytes(file, script);
    std::string cmd = fmt::format("'{}' '{}'", py, file);
    return std::system(cmd.c_str());
  }

  // True when the directory holds exactly these names.
  bool only_files_are(std::vector<std::string> names) const {
    std::vector<std::string> present;
    for (const auto &entry : std::filesystem::directory_iterator(dir_))
      present.push_back(entry.path().filename().string());
    std::sort(present.begin(), present.end());
    std::sort(names.begin(), names.end());
    return present == names;
  }

  std::filesystem::path dir_;

private:
  std::string prefix_;
};

} // namespace kiln::testing
