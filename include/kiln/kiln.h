// kiln/kiln.h: everything a model author uses, in one include (as
// <torch/torch.h>). Installed as <prefix>/include/kiln/kiln.h; with kiln::kiln
// linked, `#include <kiln/kiln.h>` is all a program needs:
//
//   #include <kiln/kiln.h>
//
//   struct Net : kiln::nn::Module { ... };
//
// The individual headers stay includable as "frontend/layers.h" etc. (the
// package puts both <prefix>/include and <prefix>/include/kiln on the
// include path).
#pragma once

#include "frontend/checkpoint.h"
#include "frontend/compile.h"
#include "frontend/conv.h"
#include "frontend/dataloader.h"
#include "frontend/dataset.h"
#include "frontend/device.h"
#include "frontend/fashion_mnist.h"
#include "frontend/layers.h"
#include "frontend/loss.h"
#include "frontend/lr_scheduler.h"
#include "frontend/module.h"
#include "frontend/norm.h"
#include "frontend/optim.h"
#include "frontend/parameter.h"
#include "frontend/random.h"
#include "frontend/tensor.h"
#include "runtime/device.h"
#include "runtime/npy.h"
#include "runtime/safetensors.h"
