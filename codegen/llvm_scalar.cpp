#include "codegen/llvm_scalar.h"

#include "ir/error.h"
#include "ir/host_tensor.h"

#include <fmt/format.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/Support/DynamicLibrary.h>
#include <llvm/TargetParser/Host.h>
#include <llvm/Transforms/Utils/ModuleUtils.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace kiln {

using K = ScalarExpr::Kind;

LType *ScalarIr::storage_type(DType d) {
  switch (d) {
  case DType::f32:
    return b_.getFloatTy();
  case DType::f64:
    return b_.getDoubleTy();
  case DType::i32:
    return b_.getInt32Ty();
  case DType::i64:
    return b_.getInt64Ty();
  case DType::boolean:
    return b_.getInt8Ty();
  }
  return nullptr;
}

LValue *ScalarIr::load(DType d, LValue *base, LValue *index) {
  LType *t = storage_type(d);
  LValue *v = b_.CreateLoad(t, b_.CreateInBoundsGEP(t, base, index));
  return d == DType::boolean ? b_.CreateICmpNE(v, b_.getInt8(0)) : v;
}

void ScalarIr::store(DType d, LValue *base, LValue *index, LValue *v) {
  LType *t = storage_type(d);
  if (d == DType::boolean)
    v = b_.CreateZExt(v, t);
  b_.CreateStore(v, b_.CreateInBoundsGEP(t, base, index));
}

// A register value of dtype `d` as working type `w` (bool stays i1).
LValue *ScalarIr::to_work(LValue *v, DType d, LType *w) {
  if (d == DType::boolean)
    return v;
  if (is_float(d))
    return v->getType() == w ? v : b_.CreateFPCast(v, w);
  return b_.CreateSIToFP(v, w);
}

LValue *ScalarIr::as_w(LValue *v, LType *w) {
  return v->getType()->isIntegerTy(1) ? b_.CreateUIToFP(v, w) : v;
}

LValue *ScalarIr::as_cond(LValue *v) {
  if (v->getType()->isIntegerTy(1))
    return v;
  return b_.CreateFCmpUNE(v, llvm::ConstantFP::get(v->getType(), 0.0));
}

// A working-type (or i1) value converted to a register of dtype `d`, with
// the interpreter's rounding (ir/host_tensor.h, round_to): floats round,
// integers truncate toward zero and saturate (NaN gives 0), bool is x != 0.
LValue *ScalarIr::from_work(LValue *v, DType d) {
  bool bit = v->getType()->isIntegerTy(1);
  LType *t = storage_type(d);
  switch (d) {
  case DType::boolean:
    return as_cond(v);
  case DType::f32:
  case DType::f64:
    return bit ? b_.CreateUIToFP(v, t) : b_.CreateFPCast(v, t);
  case DType::i32:
  case DType::i64: {
    if (bit)
      return b_.CreateZExt(v, t);
    // llvm.fptosi.sat is exactly round_to's rule: truncate, saturate to
    // the range (infinities included), NaN -> 0.
    return b_.CreateIntrinsic(llvm::Intrinsic::fptosi_sat, {t, v->getType()},
                              {v});
  }
  }
  return v;
}

namespace {

// The AVX2 variant of libm function `fn` in glibc's libmvec (_ZGVdN8v_tanhf,
// _ZGVdN4v_erf), when the host has AVX2 and the process has libmvec loaded
// (the JIT session loads it); empty otherwise. LLVM 19's LIBMVEC_X86 table
// lists exp, log, pow, sin, cos, tan but not tanh or erf, which glibc 2.35+
// provides, so the call names its variant itself.
std::string libmvec_variant(const std::string &fn, bool f32) {
  static const bool avx2 = [] {
    auto features = llvm::sys::getHostCPUFeatures();
    auto it = features.find("avx2");
    return it != features.end() && it->second;
  }();
  if (!avx2)
    return {};
  std::string v = fmt::format("_ZGVdN{}v_{}", f32 ? 8 : 4, fn);
  if (!llvm::sys::DynamicLibrary::SearchForAddressOfSymbol(v))
    return {};
  return v;
}

} // namespace

LValue *ScalarIr::call_libm(const char *name, LValue *x) {
  bool f32 = x->getType()->isFloatTy();
  std::string fn = f32 ? std::string(name) + "f" : std::string(name);
  auto callee = m_.getOrInsertFunction(
      fn, llvm::FunctionType::get(x->getType(), {x->getType()}, false));
  auto *call = b_.CreateCall(callee, {x});
  call->setDoesNotThrow();
  // No memory effects (kiln never reads errno): a call that may write memory
  // keeps the loop vectorizer from using a vector variant.
  call->setDoesNotAccessMemory();
  if (std::string v = libmvec_variant(fn, f32); !v.empty()) {
    // The vectorizer takes the variant named by the call's
    // vector-function-abi-variant attribute; the declaration must survive
    // until it runs, hence llvm.compiler.used.
    unsigned lanes = f32 ? 8 : 4;
    auto *vt = llvm::FixedVectorType::get(x->getType(), lanes);
    llvm::Function *vf = m_.getFunction(v);
    if (!vf) {
      vf = llvm::Function::Create(llvm::FunctionType::get(vt, {vt}, false),
                                  llvm::Function::ExternalLinkage, v, m_);
      llvm::appendToCompilerUsed(m_, {vf});
    }
    call->addFnAttr(llvm::Attribute::get(
        c_, "vector-function-abi-variant",
        fmt::format("_ZGV_LLVM_N{}v_{}({})", lanes, fn, v)));
  }
  return call;
}

LValue *ScalarIr::expr(const ScalarExpr &e, const std::vector<LValue *> &args,
                       LType *w) {
  auto kid = [&](int i) { return expr(e.kids[i], args, w); };
  auto kidw = [&](int i) { return as_w(kid(i), w); };
  switch (e.kind) {
  case K::Arg:
    return args.at(e.arg);
  case K::Const:
    return llvm::ConstantFP::get(w, e.value);
  case K::Neg:
    return b_.CreateFNeg(kidw(0));
  case K::Add:
    return b_.CreateFAdd(kidw(0), kidw(1));
  case K::Sub:
    return b_.CreateFSub(kidw(0), kidw(1));
  case K::Mul:
    return b_.CreateFMul(kidw(0), kidw(1));
  case K::Div:
    return b_.CreateFDiv(kidw(0), kidw(1));
  case K::Eq:
    return b_.CreateFCmpOEQ(kidw(0), kidw(1));
  case K::Ne:
    return b_.CreateFCmpUNE(kidw(0), kidw(1));
  case K::Lt:
    return b_.CreateFCmpOLT(kidw(0), kidw(1));
  case K::Le:
    return b_.CreateFCmpOLE(kidw(0), kidw(1));
  case K::Gt:
    return b_.CreateFCmpOGT(kidw(0), kidw(1));
  case K::Ge:
    return b_.CreateFCmpOGE(kidw(0), kidw(1));
  case K::Select: {
    LValue *c = as_cond(kid(0));
    LValue *t = kid(1), *f = kid(2);
    if (!(t->getType()->isIntegerTy(1) && f->getType()->isIntegerTy(1))) {
      t = as_w(t, w);
      f = as_w(f, w);
    }
    return b_.CreateSelect(c, t, f);
  }
  case K::Call: {
    using llvm::Intrinsic::ID;
    auto un = [&](ID id) { return b_.CreateUnaryIntrinsic(id, kidw(0)); };
    auto bin = [&](ID id) {
      return b_.CreateBinaryIntrinsic(id, kidw(0), kidw(1));
    };
    if (e.fn == "exp")
      return un(llvm::Intrinsic::exp);
    if (e.fn == "log")
      return un(llvm::Intrinsic::log);
    if (e.fn == "sqrt")
      return un(llvm::Intrinsic::sqrt);
    if (e.fn == "fabs")
      return un(llvm::Intrinsic::fabs);
    if (e.fn == "maximum")
      return bin(llvm::Intrinsic::maximum);
    if (e.fn == "minimum")
      return bin(llvm::Intrinsic::minimum);
    if (e.fn == "pow")
      return bin(llvm::Intrinsic::pow);
    if (e.fn == "tanh")
      return call_libm("tanh", kidw(0));
    if (e.fn == "erf")
      return call_libm("erf", kidw(0));
    fail("LLVM emitter: unknown function '{}' in a scalar expression", e.fn);
  }
  case K::Attr:
    fail("LLVM emitter: unbound attribute '{}' in a scalar expression", e.fn);
  }
  fail("LLVM emitter: bad scalar expression");
}

LValue *ScalarIr::constant(const Node &c) {
  const Type &t = c.result()->type;
  double v = c.attrs.get_float("value");
  switch (t.dtype) {
  case DType::f32:
    return llvm::ConstantFP::get(b_.getFloatTy(),
                                 static_cast<double>(static_cast<float>(v)));
  case DType::f64:
    return llvm::ConstantFP::get(b_.getDoubleTy(), v);
  case DType::i32:
  case DType::i64: {
    // round_to's rule; an integer attribute is taken exactly.
    const AttrValue *a = c.attrs.find("value");
    const int64_t *exact = a ? std::get_if<int64_t>(a) : nullptr;
    int64_t i = exact ? *exact : saturate_to_i64(v);
    if (t.dtype == DType::i32)
      i = std::clamp<int64_t>(i, std::numeric_limits<int32_t>::min(),
                              std::numeric_limits<int32_t>::max());
    return llvm::ConstantInt::get(storage_type(t.dtype),
                                  static_cast<uint64_t>(i),
                                  /*IsSigned=*/true);
  }
  case DType::boolean:
    return b_.getInt1(v != 0);
  }
  return nullptr;
}

// An iota's register at offset `off` (an i64): the offset in its dtype.
LValue *ScalarIr::iota_value(const Node &nd, LValue *off) {
  DType d = nd.result()->type.dtype;
  switch (d) {
  case DType::i64:
    return off;
  case DType::i32:
    return b_.CreateTrunc(off, b_.getInt32Ty());
  case DType::f32:
  case DType::f64:
    return b_.CreateSIToFP(off, storage_type(d));
  case DType::boolean:
    break;
  }
  fail("LLVM emitter: iota of dtype {}", dtype_name(d));
}

// Evaluates the body nodes marked in `needed` (all when empty); `env`
// holds the body inputs' and iotas' registers and receives every result.
// Reduction nodes are never evaluated here.
void ScalarIr::eval_body(const std::vector<bool> &needed, Env &env) {
  const auto &nodes = body_.nodes();
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node &nd = *nodes[i];
    if ((!needed.empty() && !needed[i]) || nd.info().has(kReduction))
      continue;
    if (nd.op == Op::Iota) {
      if (!env.count(nd.result()))
        fail("LLVM emitter: iota without an offset");
      continue;
    }
    if (nd.op == Op::Constant) {
      env[nd.result()] = constant(nd);
      continue;
    }
    DType wd = DType::f64;
    for (const kiln::Value *o : nd.operands)
      if (o->type.dtype != DType::boolean) {
        wd = is_float(o->type.dtype) ? o->type.dtype : DType::f64;
        break;
      }
    LType *w = storage_type(wd);
    std::vector<LValue *> args;
    for (const kiln::Value *o : nd.operands)
      args.push_back(to_work(env.at(o), o->type.dtype, w));
    LValue *r = expr(scalar_expr(nd), args, w);
    env[nd.result()] = from_work(r, nd.result()->type.dtype);
  }
}

LValue *ScalarIr::convert_reg(LValue *v, DType from, DType to) {
  if (from == to)
    return v;
  LType *w = b_.getDoubleTy();
  return from_work(to_work(v, from, w), to);
}

} // namespace kiln
