// Node attributes: small typed values kept in name order so that printing is
// deterministic.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace kiln {

using AttrValue =
    std::variant<int64_t, double, std::vector<int64_t>, std::string, bool>;

class Attrs {
public:
  Attrs() = default;
  Attrs(std::initializer_list<std::pair<std::string, AttrValue>> init);

  void set(const std::string &name, AttrValue v);
  bool has(const std::string &name) const;
  const AttrValue *find(const std::string &name) const;

  // Typed getters throw kiln::Error naming the attribute when it is missing
  // or of another kind. There are no getters with a default: an op's
  // defaults are in its schema (ir/ops.def), read by attr_int and friends
  // (ir/op.h), so that no caller repeats them.
  int64_t get_int(const std::string &name) const;
  double get_float(const std::string &name) const; // accepts an int too
  const std::vector<int64_t> &get_ints(const std::string &name) const;
  const std::string &get_str(const std::string &name) const;
  bool get_bool(const std::string &name) const;

  const std::vector<std::pair<std::string, AttrValue>> &items() const {
    return items_;
  }
  bool empty() const { return items_.empty(); }
  bool operator==(const Attrs &) const = default;

private:
  std::vector<std::pair<std::string, AttrValue>> items_; // sorted by name
};

// Text form of one attribute value: 3, 0.5, [1, 2], "f32", true.
std::string attr_str(const AttrValue &v);

} // namespace kiln
