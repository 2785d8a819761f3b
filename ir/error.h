// kiln::Error — the one exception type kiln's library code throws for user
// mistakes (bad shapes, malformed IR text, corrupt files). Its message says
// where and what, lower-case, no trailing period.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace kiln {

class Error : public std::runtime_error {
public:
  explicit Error(const std::string &msg) : std::runtime_error(msg) {}
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args &&...args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

} // namespace kiln
