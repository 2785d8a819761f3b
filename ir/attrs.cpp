#include "ir/attrs.h"

#include "ir/error.h"

#include <algorithm>
#include <fmt/format.h>

namespace kiln {

Attrs::Attrs(std::initializer_list<std::pair<std::string, AttrValue>> init) {
  for (auto &[k, v] : init)
    set(k, v);
}

void Attrs::set(const std::string &name, AttrValue v) {
  auto it = std::lower_bound(
      items_.begin(), items_.end(), name,
      [](const auto &item, const std::string &n) { return item.first < n; });
  if (it != items_.end() && it->first == name)
    it->second = std::move(v);
  else
    items_.insert(it, {name, std::move(v)});
}

const AttrValue *Attrs::find(const std::string &name) const {
  for (auto &[k, v] : items_)
    if (k == name)
      return &v;
  return nullptr;
}

bool Attrs::has(const std::string &name) const { return find(name); }

template <typename T>
static const T &get_as(const Attrs &a, const std::string &name,
                       const char *kind) {
  const AttrValue *v = a.find(name);
  if (!v)
    fail("missing attribute '{}'", name);
  if (auto *p = std::get_if<T>(v))
    return *p;
  fail("attribute '{}' must be {}", name, kind);
}

int64_t Attrs::get_int(const std::string &name) const {
  return get_as<int64_t>(*this, name, "an integer");
}
double Attrs::get_float(const std::string &name) const {
  const AttrValue *v = find(name);
  if (v)
    if (auto *i = std::get_if<int64_t>(v))
      return static_cast<double>(*i);
  return get_as<double>(*this, name, "a number");
}
const std::vector<int64_t> &Attrs::get_ints(const std::string &name) const {
  return get_as<std::vector<int64_t>>(*this, name, "a list of integers");
}
const std::string &Attrs::get_str(const std::string &name) const {
  return get_as<std::string>(*this, name, "a string");
}
bool Attrs::get_bool(const std::string &name) const {
  return get_as<bool>(*this, name, "true or false");
}

std::string attr_str(const AttrValue &v) {
  struct V {
    std::string operator()(int64_t i) const { return fmt::format("{}", i); }
    std::string operator()(double d) const {
      // Shortest text that reads back to the same double, always with a
      // '.' or exponent so that it parses as a float again.
      std::string s = fmt::format("{}", d);
      if (s.find_first_of(".eEn") == std::string::npos)
        s += ".0";
      return s;
    }
    std::string operator()(const std::vector<int64_t> &l) const {
      return fmt::format("[{}]", fmt::join(l, ", "));
    }
    std::string operator()(const std::string &s) const {
      return fmt::format("\"{}\"", s);
    }
    std::string operator()(bool b) const { return b ? "true" : "false"; }
  };
  return std::visit(V{}, v);
}

} // namespace kiln
