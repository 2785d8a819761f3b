#include "frontend/checkpoint.h"

#include "ir/error.h"
#include "runtime/safetensors.h"

#include <cstring>

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

// Checks that `t` holds exactly an Array of `type`.
void check_tensor(const std::string &path, const std::string &name,
                  const SafeTensor &t, const Type &type) {
  if (t.dtype != st_dtype(type.dtype) || t.shape != type.shape ||
      t.bytes.size() != type.bytes())
    fail("{}: tensor '{}' is {}{}, expected {}", path, name, t.dtype,
         shape_str(t.shape), type.str());
}

} // namespace

void save_checkpoint(const std::string &path, const nn::Module &model,
                     optim::Optimizer *opt, const CheckpointMetadata &meta) {
  std::map<std::string, SafeTensor> tensors;
  for (const auto &[name, p] : model.named_parameters())
    tensors["model." + name] = to_safetensor(p->value());
  if (opt)
    for (const auto &[name, a] : opt->named_state())
      tensors["optim." + name] = to_safetensor(*a);
  CheckpointMetadata m = meta;
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
  size_t used = 0;
  for (const auto &[name, p] : params) {
    auto it = file.tensors.find("model." + name);
    if (it == file.tensors.end())
      fail("{}: parameter '{}' is missing", path, name);
    check_tensor(path, "model." + name, it->second, p->type());
    ++used;
  }
  std::vector<std::pair<std::string, Array>> state;
  for (const auto &[name, t] : file.tensors) {
    if (name.rfind("model.", 0) == 0)
      continue;
    if (name.rfind("optim.", 0) != 0)
      fail("{}: unexpected tensor '{}'", path, name);
    if (!opt)
      continue;
    auto dtype = t.dtype == "F32"   ? DType::f32
                 : t.dtype == "F64" ? DType::f64
                 : t.dtype == "I32" ? DType::i32
                 : t.dtype == "I64" ? DType::i64
                                    : DType::boolean;
    Array a(Type{dtype, t.shape});
    check_tensor(path, name, t, a.type());
    try {
      opt->check_state(name.substr(6), a.type());
    } catch (const Error &e) {
      fail("{}: {}", path, e.what());
    }
    std::memcpy(a.data(), t.bytes.data(), t.bytes.size());
    state.emplace_back(name.substr(6), std::move(a));
    ++used;
  }
  if (opt == nullptr)
    used = file.tensors.size();
  if (used != file.tensors.size())
    fail("{}: holds tensors this model does not have", path);
  for (const auto &[name, p] : params) {
    const SafeTensor &t = file.tensors.at("model." + name);
    std::memcpy(p->value().data(), t.bytes.data(), t.bytes.size());
  }
  for (const auto &[name, a] : state) {
    try {
      opt->load_state(name, a);
    } catch (const Error &e) {
      fail("{}: {}", path, e.what());
    }
  }
  return file.metadata;
}

} // namespace kiln
