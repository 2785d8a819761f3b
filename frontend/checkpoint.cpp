#include "frontend/checkpoint.h"

#include "frontend/trace.h"
#include "ir/error.h"
#include "ir/escape.h"
#include "runtime/safetensors.h"

#include <algorithm>
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

// A parameter or buffer of the model, by its dotted name.
struct StateEntry {
  std::string name;
  Type type;
  Array *bound; // written on load
  bool is_parameter;
};

std::vector<StateEntry> model_state(nn::Module &model) {
  std::vector<StateEntry> out;
  for (const auto &[name, p] : model.named_parameters())
    out.push_back({name, p->type(), &p->bound_value(), true});
  for (const auto &[name, b] : model.named_buffers())
    out.push_back({name, b->type(), &b->bound_value(), false});
  return out;
}

// The metadata 'format' of a kiln checkpoint, or "" when the file is none
// (no 'format', or another one such as "pt"). Format 1 is refused with the
// reason (see checkpoint.h), as is a later kiln-checkpoint-N.
std::string kiln_format(const std::string &path, const SafeTensorsFile &file) {
  auto it = file.metadata.find("format");
  if (it == file.metadata.end())
    return "";
  if (it->second == "kiln-checkpoint-1")
    fail("{}: checkpoint format kiln-checkpoint-1 is from an older kiln, "
         "which stored Linear weights transposed ([in, out]); this kiln "
         "stores them [out, in] as PyTorch does ({}) and does not convert "
         "old checkpoints (the file does not record which tensors are Linear "
         "weights); train again, or transpose each Linear weight and its "
         "optimizer state and set the metadata 'format' to {}",
         path, kCheckpointFormat, kCheckpointFormat);
  if (it->second.rfind("kiln-checkpoint-", 0) == 0 &&
      it->second != kCheckpointFormat)
    fail("{}: checkpoint format {} is not one this kiln reads (it reads {}; "
         "was the file written by a newer kiln?)",
         path, escape_for_message(it->second), kCheckpointFormat);
  return it->second == kCheckpointFormat ? it->second : "";
}

// Writes the converted or copied values of `t` into `a` (already checked:
// same element count, compatible dtype).
void store(const SafeTensor &t, Array &a) {
  if (t.dtype == st_dtype(a.type().dtype)) {
    std::memcpy(a.data(), t.bytes.data(), t.bytes.size());
  } else if (a.type().dtype == DType::f32) {
    float_safetensor_elements(t, static_cast<float *>(a.data()));
  } else {
    float_safetensor_elements(t, static_cast<double *>(a.data()));
  }
}

// The index of the first non-finite element of a float Array, or -1.
int64_t first_non_finite(const Array &a) {
  if (!is_float(a.type().dtype))
    return -1;
  for (int64_t i = 0; i < a.numel(); ++i)
    if (!std::isfinite(a.get(i)))
      return i;
  return -1;
}

} // namespace

void save_checkpoint(const std::string &path, const nn::Module &model,
                     optim::Optimizer *opt, const CheckpointMetadata &meta) {
  // Params and state may live on the device, newer than their host Arrays.
  sync_device_state();
  std::map<std::string, SafeTensor> tensors;
  for (const auto &[name, p] : model.named_parameters())
    tensors["model." + name] = to_safetensor(std::as_const(*p).value());
  for (const auto &[name, b] : model.named_buffers())
    tensors["model." + name] = to_safetensor(std::as_const(*b).value());
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
  m["format"] = kCheckpointFormat;
  save_safetensors(path, tensors, m);
}

CheckpointMetadata load_checkpoint(const std::string &path, nn::Module &model,
                                   optim::Optimizer *opt) {
  SafeTensorsFile file = load_safetensors(path);
  if (kiln_format(path, file).empty())
    fail("{}: not a kiln checkpoint (metadata 'format' is missing or not "
         "{}; a PyTorch state_dict loads with load_state_dict)",
         path, kCheckpointFormat);
  // Validate everything before changing anything.
  std::vector<StateEntry> params = model_state(model);
  std::set<std::string> param_names;
  for (const StateEntry &e : params) {
    auto it = file.tensors.find("model." + e.name);
    if (it == file.tensors.end())
      fail("{}: {} '{}' is missing", path,
           e.is_parameter ? "parameter" : "buffer", e.name);
    check_tensor(path, "model." + e.name, it->second, e.type);
    param_names.insert("model." + e.name);
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
  for (const StateEntry &e : params) {
    const SafeTensor &t = file.tensors.at("model." + e.name);
    std::memcpy(e.bound->data(), t.bytes.data(), t.bytes.size());
    mark_host_modified(*e.bound);
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

void load_state_dict(const std::string &path, nn::Module &model,
                     const StateDictOptions &options) {
  SafeTensorsFile file = load_safetensors(path);
  bool kiln = !kiln_format(path, file).empty();
  std::string prefix =
      options.prefix.empty() && kiln ? "model." : options.prefix;
  // The file's tensors by the name they are matched with.
  std::map<std::string, const SafeTensor *> by_name;
  std::vector<std::string> unexpected;
  for (const auto &[name, t] : file.tensors) {
    if (kiln && name.rfind("optim.", 0) == 0)
      continue; // a checkpoint's optimizer state: not module state
    if (name.rfind(prefix, 0) == 0 && name.size() > prefix.size())
      by_name[name.substr(prefix.size())] = &t;
    else
      unexpected.push_back(name);
  }
  std::vector<StateEntry> entries = model_state(model);
  std::vector<std::string> missing, mismatched;
  std::set<std::string> known;
  // Converted values, written only when everything matches.
  std::vector<std::pair<Array *, Array>> loads;
  for (const StateEntry &e : entries) {
    known.insert(e.name);
    auto it = by_name.find(e.name);
    if (it == by_name.end()) {
      missing.push_back(
          fmt::format("'{}' ({})", escape_for_message(e.name), e.type.str()));
      continue;
    }
    const SafeTensor &t = *it->second;
    std::string got = t.dtype + shape_str(t.shape);
    std::string file_name = escape_for_message(prefix + e.name);
    bool float_ok =
        is_float(e.type.dtype) && is_float_safetensor_dtype(t.dtype);
    if (t.shape != e.type.shape) {
      std::string hint;
      if (t.shape.size() == 2 && e.type.shape.size() == 2 &&
          t.shape[0] == e.type.shape[1] && t.shape[1] == e.type.shape[0])
        hint = " (transposed: kiln stores Linear weights [out, in] as "
               "PyTorch does)";
      mismatched.push_back(fmt::format("'{}' is {}, expected {}{}", file_name,
                                       got, e.type.str(), hint));
      continue;
    }
    if (!float_ok && t.dtype != st_dtype(e.type.dtype)) {
      mismatched.push_back(fmt::format(
          "'{}' is {}, expected {} (floating-point tensors convert between "
          "F16, BF16, F32 and F64; integer ones must match)",
          file_name, got, e.type.str()));
      continue;
    }
    Array a(e.type);
    store(t, a);
    if (int64_t i = e.is_parameter ? first_non_finite(a) : -1; i >= 0) {
      mismatched.push_back(fmt::format("'{}' holds non-finite values "
                                       "(element {} is {})",
                                       file_name, i, a.get(i)));
      continue;
    }
    loads.emplace_back(e.bound, std::move(a));
  }
  for (const auto &[name, t] : by_name)
    if (!known.count(name))
      unexpected.push_back(prefix + name);
  std::sort(unexpected.begin(), unexpected.end());
  if (!options.strict) {
    missing.clear();
    unexpected.clear();
  }
  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    std::string msg = fmt::format(
        "{}: the tensors do not match the model's parameters and buffers "
        "({} missing, {} unexpected, {} mismatched)",
        path, missing.size(), unexpected.size(), mismatched.size());
    for (const std::string &m : missing)
      msg += "\n  missing: " + m;
    for (const std::string &u : unexpected) {
      const SafeTensor &t = file.tensors.at(u);
      msg += fmt::format("\n  unexpected: '{}' ({}{})", escape_for_message(u),
                         t.dtype, shape_str(t.shape));
    }
    for (const std::string &m : mismatched)
      msg += "\n  mismatched: " + m;
    // A prefix in the file's names ("model.fc1.weight" for "fc1.weight")
    // shows as every tensor missing and unexpected at once.
    if (!missing.empty() && !unexpected.empty()) {
      const std::string &u = unexpected.front();
      size_t dot = u.find('.');
      if (dot != std::string::npos && known.count(u.substr(dot + 1)))
        msg += fmt::format("\n  (the file's names have a prefix: load with "
                           "StateDictOptions::prefix = \"{}\")",
                           escape_for_message(u.substr(0, dot + 1)));
    }
    fail("{}", msg);
  }
  for (auto &[bound, a] : loads) {
    std::memcpy(bound->data(), a.data(), a.bytes());
    mark_host_modified(*bound);
  }
}

void save_state_dict(const std::string &path, const nn::Module &model) {
  sync_device_state();
  std::map<std::string, SafeTensor> tensors;
  for (const auto &[name, p] : model.named_parameters())
    tensors[name] = to_safetensor(std::as_const(*p).value());
  for (const auto &[name, b] : model.named_buffers())
    tensors[name] = to_safetensor(std::as_const(*b).value());
  save_safetensors(path, tensors, {{"format", "pt"}});
}

} // namespace kiln
