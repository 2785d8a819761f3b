// Training checkpoints in the safetensors format (what PyTorch and Hugging
// Face users read): every parameter and buffer as "model.<dotted name>",
// every optimizer state slot as "optim.<name>"
// ("optim.fc1.weight.momentum_buffer", "optim.sgd.step"), and string
// metadata (epoch, step, lr, ...). The metadata 'optimizer' records the
// optimizer's kind ("sgd", "adam", "adamw"), so that no other optimizer
// takes its state. Written atomically (temporary file, fsync, rename), so an
// interrupted save never leaves a half-written checkpoint.
//
// The metadata 'format' is kCheckpointFormat, "kiln-checkpoint-2": Linear
// weights are [out, in], as in PyTorch. Format 1 (kiln before the change)
// stored them [in, out]; such a file is refused with an error that says so,
// not converted: the file does not record which tensors were Linear
// weights, and a square weight would load silently transposed.
//
// load_state_dict reads a PyTorch state_dict exported as safetensors
// (`safetensors.torch.save_file(model.state_dict(), path)`): tensors by
// name, F16/BF16/F32/F64 converted to the parameter's dtype.
#pragma once

#include "frontend/module.h"
#include "frontend/optim.h"

#include <map>
#include <string>

namespace kiln {

using CheckpointMetadata = std::map<std::string, std::string>;

inline constexpr const char *kCheckpointFormat = "kiln-checkpoint-2";

// With `opt`, writes every state slot its configuration uses
// (Optimizer::expected_state; zeros for slots not created yet, their initial
// value) and sets the metadata 'optimizer' to opt->kind(); without, writes
// no optimizer state and no 'optimizer'.
void save_checkpoint(const std::string &path, const nn::Module &model,
                     optim::Optimizer *opt, const CheckpointMetadata &meta);

// Loads into the existing parameter and state Arrays (copying, so compiled
// steps stay bound to them). Every parameter of the model must be present
// with its exact type and finite values. With `opt`, the checkpoint must
// come from the same kind of optimizer (metadata 'optimizer') and hold
// exactly the state slots `opt` uses, each finite; with opt == nullptr only
// the weights are loaded and any optimizer state in the file is skipped on
// purpose (a fresh optimizer then starts from zero state). A missing, extra,
// mistyped or non-finite tensor, another optimizer's state, or a corrupt
// file is a kiln::Error naming the path and the tensors. Everything is
// checked before any Array is written.
CheckpointMetadata load_checkpoint(const std::string &path, nn::Module &model,
                                   optim::Optimizer *opt);

struct StateDictOptions {
  // Stripped from the start of every tensor name in the file before it is
  // matched against the model's names; a tensor without it is unexpected.
  // PyTorch names a state_dict's tensors from the module it was taken of
  // ("fc1.weight"); a network kept as `self.model` in a wrapper module
  // gives "model.fc1.weight", loaded with prefix "model.". A kiln
  // checkpoint (metadata 'format') uses "model." by itself and its
  // optimizer state is skipped.
  std::string prefix;
  // false: missing and unexpected tensors are allowed (torch's
  // strict=False); mis-shaped or mistyped ones are still an error.
  bool strict = true;
};

// Loads parameters and buffers by name (torch's Module.load_state_dict)
// from a safetensors file. Floating-point tensors (F16, BF16, F32, F64)
// convert to the parameter's dtype (widening is exact; F64 into f32 rounds
// to nearest); integer tensors must have the parameter's dtype exactly;
// parameter values must be finite. Every problem is found first and
// reported in one kiln::Error naming the path that lists each missing,
// unexpected, mis-shaped and mistyped tensor with the expected and actual
// type; then nothing is written.
void load_state_dict(const std::string &path, nn::Module &model,
                     const StateDictOptions &options = {});

// Writes the model's parameters and buffers by their dotted names, with
// metadata {"format": "pt"}, as `safetensors.torch.save_file(
// model.state_dict(), path)` does: what PyTorch's load_state_dict (via
// safetensors.torch.load_file) reads back.
void save_state_dict(const std::string &path, const nn::Module &model);

} // namespace kiln
