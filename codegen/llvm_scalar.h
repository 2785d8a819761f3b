// The scalar half of the LLVM CPU code generator: how a body value of each
// dtype is held in registers and memory, the conversions between them, and
// the walk of an op's scalar expression tree (ir/scalar_expr.h) into IR. The
// loop structure of kernels is codegen/llvm_emit.cpp's. Internal to
// codegen/llvm_*.cpp.
//
// Value representation: in registers a body value of dtype f32/f64/i32/i64
// is float/double/i32/i64 and a bool is i1 (stored as one byte). An op is
// evaluated in a working type W: the dtype of its first non-bool operand when
// that is a float, else double (as the reference interpreter does, so integer
// ops round the same way); its result is then converted to the result dtype.
#pragma once

#include "ir/graph.h"
#include "ir/scalar_expr.h"

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Module.h>

#include <unordered_map>
#include <vector>

namespace kiln {

using LType = llvm::Type;
using LValue = llvm::Value;
// Registers of body values.
using Env = std::unordered_map<const Value *, LValue *>;

class ScalarIr {
public:
  ScalarIr(llvm::Module &m, const Graph &body)
      : m_(m), c_(m.getContext()), b_(c_), body_(body) {}

  // ---- types and conversions ----
  LType *storage_type(DType d);
  LValue *i64(int64_t v) { return b_.getInt64(static_cast<uint64_t>(v)); }
  LValue *load(DType d, LValue *base, LValue *index);
  void store(DType d, LValue *base, LValue *index, LValue *v);
  // A register value of dtype `d` as working type `w` (bool stays i1).
  LValue *to_work(LValue *v, DType d, LType *w);
  LValue *as_w(LValue *v, LType *w);
  LValue *as_cond(LValue *v);
  // A working-type (or i1) value converted to a register of dtype `d`, with
  // the interpreter's rounding: floats round, integers truncate toward zero
  // (non-finite values give 0), bool is x != 0.
  LValue *from_work(LValue *v, DType d);
  // ---- scalar expressions ----
  LValue *call_libm(const char *name, LValue *x);
  LValue *expr(const ScalarExpr &e, const std::vector<LValue *> &args,
               LType *w);
  LValue *constant(const Node &c);
  // An iota's register at offset `off` (an i64): the offset in its dtype.
  LValue *iota_value(const Node &nd, LValue *off);
  // Evaluates the body nodes marked in `needed` (all when empty); `env`
  // holds the body inputs' and iotas' registers and receives every result.
  // Reduction nodes are never evaluated here.
  void eval_body(const std::vector<bool> &needed, Env &env);
  // A register of dtype `from` as one of dtype `to`.
  LValue *convert_reg(LValue *v, DType from, DType to);

protected:
  llvm::Module &m_;
  llvm::LLVMContext &c_;
  llvm::IRBuilder<> b_;
  const Graph &body_;
};

} // namespace kiln
