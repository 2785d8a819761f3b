// Training checkpoints in the safetensors format (what PyTorch and Hugging
// Face users read): every parameter as "model.<dotted name>", every
// optimizer state slot as "optim.<name>" ("optim.fc1.weight.momentum_buffer",
// "optim.sgd.step"), and string metadata (epoch, step, lr, ...). Written
// atomically (temporary file, fsync, rename), so an interrupted save never
// leaves a half-written checkpoint.
#pragma once

#include "frontend/module.h"
#include "frontend/optim.h"

#include <map>
#include <string>

namespace kiln {

using CheckpointMetadata = std::map<std::string, std::string>;

void save_checkpoint(const std::string &path, const nn::Module &model,
                     optim::Optimizer *opt, const CheckpointMetadata &meta);

// Loads into the existing parameter and state Arrays (copying, so compiled
// steps stay bound to them). Every parameter of the model must be present
// with its exact type; a missing, extra or mistyped tensor, or a corrupt
// file, is a kiln::Error naming the path and the tensor. Every tensor's
// name and type is checked before any Array is written.
CheckpointMetadata load_checkpoint(const std::string &path, nn::Module &model,
                                   optim::Optimizer *opt);

} // namespace kiln
