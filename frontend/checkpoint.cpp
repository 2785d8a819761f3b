#include "frontend/checkpoint.h"

#include "frontend/trace.h"
#include "ir/error.h"
#include "ir/escape.h"
#include "runtime/safetensors.h"

#include <cmath>
#include <cstring>
#include <set>
#include <utility>
#include <vector>

namespace kiln {

namespace {

std::string st_dtype(DType d) {
  switch (d) {
  case DType::f32:
    return "F32";
  case DType::f64:
    return "F64";
  case DType::i32:
    return "I32";
  case DType::i64:
    return "I64";
  case DType::boolean:
    return "BOOL";
  }
  return "?";
}

SafeTensor to_safetensor(const Array &a) {
  SafeTensor t;
  t.dtype = st_dtype(a.type().dtype);
  t.shape = a.type().shape;
  const auto *p = static_cast<const uint8_t *>(a.data());
  t.bytes.assign(p, p + a.bytes());
  return t;
}

// Checks that `t` holds exactly an Array of `type` with finite values (a
// NaN or inf weight or state would only show later as a diverged loss).
void check_tensor(const std::string &path, const std::string &name,
                  const SafeTensor &t, const Type &type) {
  if (t.dtype != st_dtype(type.dtype) || t.shape != type.shape ||
      t.bytes.size() != type.bytes())
    fail("{}: tensor '{}' is {}{}, expected {}", path, name, t.dtype,
         shape_str(t.shape), type.str());
  auto check = [&]<typename T>(T) {
    size_t n = t.bytes.size() / sizeof(T);
    for (size_t i = 0; i < n; ++i) {
      T v;
      std::memcpy(&v, t.bytes.data() + i * sizeof(T), sizeof(T));
      if (!std::isfinite(v))
        fail("{}: tensor '{}' holds non-finite values (element {} is {}); "
             "the checkpoint is damaged or was saved after training diverged",
             path, name, i, v);
    }
  };
  if (type.dtype == DType::f32)
    check(float{});
  else if (type.dtype == DType::f64)
    check(double{});
}

// "a, b, c" (the first 8, then how many more).
std::string name_list(const std::vector<std::string> &names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < 8; ++i)
    out += (i ? ", " : "") + ("'" + escape_for_message(names[i]) + "'");
  if (names.size() > 8)
    out += fmt::format(" and {} more", names.size() - 8);
  return out;
}

} // namespace

void save_checkpoint(const std::string &path, const nn::Module &model,
                     optim::Optimizer *opt, const CheckpointMetadata &meta) {
  // Params and state may live on the device, newer than their host Arrays.
  sync_device_state();
  std::map<std::string, SafeTensor> tensors;
  for (const auto &[name, p] : model.named_parameters())
    tensors["model." + name] = to_safetensor(std::as_const(*p).value());
  CheckpointMetadata m = meta;
  m.erase("optimizer");
  if (opt) {
    auto state = opt->named_state();
    for (const auto &[name, type] : opt->expected_state()) {
      auto it = state.find(name);
      tensors["optim." + name] =
          to_safetensor(it != state.end() ? *it->second : Array(type));
    }
    m["optimizer"] = opt->kind();
  }
  m["format"] = "kiln-checkpoint-1";
  save_safetensors(path, tensors, m);
}

CheckpointMetadata load_checkpoint(const std::string &path, nn::Module &model,
                                   optim::Optimizer *opt) {
  SafeTensorsFile file = load_safetensors(path);
  auto fmt_it = file.metadata.find("format");
  if (fmt_it == file.metadata.end() || fmt_it->second != "kiln-checkpoint-1")
    fail("{}: not a kiln checkpoint (metadata 'format' is missing or not "
         "kiln-checkpoint-1)",
         path);
  // Validate everything before changing anything.
  auto params = model.named_parameters();
  std::set<std::string> param_names;
  for (const auto &[name, p] : params) {
    auto it = file.tensors.find("model." + name);
    if (it == file.tensors.end())
      fail("{}: parameter '{}' is missing", path, name);
    check_tensor(path, "model." + name, it->second, p->type());
    param_names.insert("model." + name);
  }
  std::map<std::string, Type> expected;
  if (opt) {
    auto kind = file.metadata.find("optimizer");
    if (kind == file.metadata.end())
      fail("{}: holds no optimizer kind (metadata 'optimizer'), so no {} "
           "optimizer state to resume from",
           path, opt->kind());
    if (kind->second != opt->kind())
      fail("{}: holds {} optimizer state, not {}", path, kind->second,
           opt->kind());
    expected = opt->expected_state();
  }
  std::vector<std::string> extra;
  std::vector<std::pair<std::string, Array>> state;
  for (const auto &[name, t] : file.tensors) {
    if (param_names.count(name))
      continue;
    if (name.rfind("optim.", 0) == 0 && !opt)
      continue; // the weights only, on purpose
    auto want = name.rfind("optim.", 0) == 0 ? expected.find(name.substr(6))
                                             : expected.end();
    if (want == expected.end()) {
      extra.push_back(name);
      continue;
    }
    check_tensor(path, name, t, want->second);
    Array a(want->second);
    try {
      opt->check_state(want->first, a.type());
    } catch (const Error &e) {
      fail("{}: {}", path, e.what());
    }
    std::memcpy(a.data(), t.bytes.data(), t.bytes.size());
    state.emplace_back(want->first, std::move(a));
  }
  if (!extra.empty())
    fail("{}: holds tensors this model{} does not have: {}", path,
         opt ? " and its optimizer" : "", name_list(extra));
  std::vector<std::string> missing;
  for (const auto &[name, type] : expected)
    if (!file.tensors.count("optim." + name))
      missing.push_back("optim." + name);
  if (!missing.empty())
    fail("{}: {} optimizer state is missing: {}", path, opt->kind(),
         name_list(missing));
  // Written on the host: each Array is marked modified, so a backend that
  // keeps a device copy copies it in again before the next step.
  for (const auto &[name, p] : params) {
    const SafeTensor &t = file.tensors.at("model." + name);
    Array &a = p->bound_value();
    std::memcpy(a.data(), t.bytes.data(), t.bytes.size());
    mark_host_modified(a);
  }
  for (const auto &[name, a] : state) {
    try {
      opt->load_state(name, a);
    } catch (const Error &e) {
      fail("{}: {}", path, e.what());
    }
  }
  if (opt)
    for (const auto &[name, a] : opt->named_state())
      mark_host_modified(*a);
  return file.metadata;
}

} // namespace kiln
