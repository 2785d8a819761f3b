// Training checkpoints in the safetensors format (what PyTorch and Hugging
// Face users read): every parameter as "model.<dotted name>", every
// optimizer state slot as "optim.<name>" ("optim.fc1.weight.momentum_buffer",
// "optim.sgd.step"), and string metadata (epoch, step, lr, ...). The
// metadata 'optimizer' records the optimizer's kind ("sgd", "adam",
// "adamw"), so that no other optimizer takes its state. Written atomically
// (temporary file, fsync, rename), so an interrupted save never leaves a
// half-written checkpoint.
#pragma once

#include "frontend/module.h"
#include "frontend/optim.h"

#include <map>
#include <string>

namespace kiln {

using CheckpointMetadata = std::map<std::string, std::string>;

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

} // namespace kiln
