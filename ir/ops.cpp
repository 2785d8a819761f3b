// The op table, built from ir/ops.def, and the checks and accessors of its
// attribute schema.
#include "ir/op_impl.h"

#include "ir/error.h"
#include "ir/escape.h"
#include "ir/graph.h"

#include <algorithm>
#include <array>
#include <fmt/format.h>

namespace kiln {

// One schema array per op. A trailing empty entry keeps the array non-empty
// for ops without attributes; the span below leaves it out.
#define KILN_OP(id, name, arity, traits, infer, vjp, eval, scalar, ...)        \
  static constexpr AttrSpec kAttrs##id[] = {__VA_ARGS__ __VA_OPT__(, )         \
                                                AttrSpec{}};
#include "ir/ops.def"
#undef KILN_OP

static const OpInfo kOpTable[] = {
#define KILN_OP(id, name, arity, traits, infer, vjp, eval, scalar, ...)        \
  {Op::id,                                                                     \
   name,                                                                       \
   arity,                                                                      \
   traits,                                                                     \
   infer,                                                                      \
   vjp,                                                                        \
   eval,                                                                       \
   scalar,                                                                     \
   std::span<const AttrSpec>(kAttrs##id, std::size(kAttrs##id) - 1)},
#include "ir/ops.def"
#undef KILN_OP
};

static_assert(std::size(kOpTable) == kNumOps);

const OpInfo &op_info(Op op) { return kOpTable[static_cast<size_t>(op)]; }

std::optional<Op> op_by_name(std::string_view name) {
  for (const OpInfo &info : kOpTable)
    if (info.name == name)
      return info.op;
  return std::nullopt;
}

namespace {

std::string_view type_desc(AttrType t) {
  switch (t) {
  case AttrType::Int:
    return "an integer";
  case AttrType::Number:
    return "a number";
  case AttrType::Ints:
    return "a list of integers";
  case AttrType::Str:
    return "a string";
  case AttrType::Bool:
    return "true or false";
  case AttrType::DType:
    return "a dtype name (\"f32\", \"f64\", \"i32\", \"i64\" or \"bool\")";
  }
  return "?";
}

bool has_type(const AttrValue &v, AttrType t) {
  switch (t) {
  case AttrType::Int:
    return std::holds_alternative<int64_t>(v);
  case AttrType::Number:
    return std::holds_alternative<int64_t>(v) ||
           std::holds_alternative<double>(v);
  case AttrType::Ints:
    return std::holds_alternative<std::vector<int64_t>>(v);
  case AttrType::Str:
    return std::holds_alternative<std::string>(v);
  case AttrType::Bool:
    return std::holds_alternative<bool>(v);
  case AttrType::DType: {
    const std::string *s = std::get_if<std::string>(&v);
    return s && parse_dtype(*s);
  }
  }
  return false;
}

// Levenshtein distance, for "did you mean".
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min(
          {row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string unknown_message(const OpInfo &info, const std::string &name) {
  std::string quoted = escape_for_message(name);
  if (info.attrs.empty())
    return fmt::format("{} has no attribute '{}' ({} takes no attributes)",
                       info.name, quoted, info.name);
  // The closest declared name, when it is a likely typo: at most two edits
  // and fewer than the name's length (so "x" does not suggest "axis").
  const AttrSpec *best = nullptr;
  size_t best_d = 0;
  for (const AttrSpec &a : info.attrs) {
    size_t d = edit_distance(name, a.name);
    if (!best || d < best_d) {
      best = &a;
      best_d = d;
    }
  }
  if (best_d <= 2 && best_d < name.size())
    return fmt::format("{} has no attribute '{}' (did you mean '{}'?)",
                       info.name, quoted, best->name);
  std::vector<std::string> names;
  for (const AttrSpec &a : info.attrs)
    names.push_back(fmt::format("'{}'", a.name));
  return fmt::format("{} has no attribute '{}' (expected {}{})", info.name,
                     quoted, names.size() == 1 ? "" : "one of ",
                     fmt::join(names, ", "));
}

// The schema entry of `name`, which the calling code must have declared
// with the type it reads.
const AttrSpec &declared(Op op, std::string_view name, AttrType type) {
  const OpInfo &info = op_info(op);
  const AttrSpec *a = info.attr(name);
  if (!a)
    fail("{} declares no attribute '{}' in ir/ops.def", info.name, name);
  if (a->type != type)
    fail("{} declares attribute '{}' as {}, not {}", info.name, name,
         type_desc(a->type), type_desc(type));
  return *a;
}

// The value of `name`, nullptr when absent (the caller takes the default).
const AttrValue *present(Op op, const Attrs &attrs, const AttrSpec &spec) {
  const AttrValue *v = attrs.find(std::string(spec.name));
  if (!v && spec.presence != AttrSpec::Defaulted)
    fail("{} needs attribute '{}' ({})", op_name(op), spec.name,
         type_desc(spec.type));
  if (v && !has_type(*v, spec.type))
    fail("{} attribute '{}' must be {}, got {}", op_name(op), spec.name,
         type_desc(spec.type), escape_for_message(attr_str(*v)));
  return v;
}

} // namespace

std::optional<AttrProblem> find_attr_problem(const OpInfo &info,
                                             const Attrs &attrs) {
  for (const auto &[name, value] : attrs.items()) {
    const AttrSpec *spec = info.attr(name);
    if (!spec)
      return AttrProblem{name, unknown_message(info, name)};
    if (!has_type(value, spec->type))
      return AttrProblem{name,
                         fmt::format("{} attribute '{}' must be {}, got {}",
                                     info.name, name, type_desc(spec->type),
                                     escape_for_message(attr_str(value)))};
  }
  for (const AttrSpec &spec : info.attrs)
    if (spec.presence == AttrSpec::Required &&
        !attrs.has(std::string(spec.name)))
      return AttrProblem{std::string(spec.name),
                         fmt::format("{} needs attribute '{}' ({})", info.name,
                                     spec.name, type_desc(spec.type))};
  return std::nullopt;
}

void check_attrs(const OpInfo &info, const Attrs &attrs) {
  if (auto p = find_attr_problem(info, attrs))
    throw Error(p->message);
}

int64_t attr_int(Op op, const Attrs &attrs, std::string_view name) {
  const AttrSpec &spec = declared(op, name, AttrType::Int);
  if (const AttrValue *v = present(op, attrs, spec))
    return std::get<int64_t>(*v);
  return spec.int_default;
}

bool attr_bool(Op op, const Attrs &attrs, std::string_view name) {
  const AttrSpec &spec = declared(op, name, AttrType::Bool);
  if (const AttrValue *v = present(op, attrs, spec))
    return std::get<bool>(*v);
  return spec.bool_default;
}

DType attr_dtype(Op op, const Attrs &attrs, std::string_view name) {
  const AttrSpec &spec = declared(op, name, AttrType::DType);
  const AttrValue *v = present(op, attrs, spec);
  return *parse_dtype(v ? std::string_view(std::get<std::string>(*v))
                        : spec.str_default);
}

int64_t attr_int(const Node &n, std::string_view name) {
  return attr_int(n.op, n.attrs, name);
}
bool attr_bool(const Node &n, std::string_view name) {
  return attr_bool(n.op, n.attrs, name);
}
DType attr_dtype(const Node &n, std::string_view name) {
  return attr_dtype(n.op, n.attrs, name);
}

} // namespace kiln
