// LLVM IR for CPU kernels: the loops of each kernel kind. The body of a fused
// node is walked once per loop body through codegen/llvm_scalar.h, which
// turns each elementwise op's scalar expression tree from the op table into
// IR — there is no per-op code here. Reductions accumulate in double.
//
// An iota is a virtual input: the plan gives it strides like an input's, and
// its value at a point is the computed offset in its dtype. A reduction's
// epilogue runs once per output element on the final (rounded) reduced value;
// its extra outputs are stored as the accumulation pass visits each point.
#include "codegen/llvm_emit.h"

#include "codegen/llvm_scalar.h"
#include "ir/error.h"
#include "ir/scalar_expr.h"
#include "plan/kernel_plan.h"

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/Module.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <unordered_map>

namespace kiln {

namespace {

class Emitter : private ScalarIr {
public:
  Emitter(llvm::Module &m, const Node &n) : ScalarIr(m, *n.body), n_(n) {}

  void emit(const KernelPlan &plan, const std::string &name) {
    auto *ptr = llvm::PointerType::getUnqual(c_);
    auto *fty = llvm::FunctionType::get(
        b_.getVoidTy(), {ptr, b_.getInt64Ty(), b_.getInt64Ty()}, false);
    f_ = llvm::Function::Create(fty, llvm::Function::ExternalLinkage, name, m_);
    f_->addFnAttr(llvm::Attribute::NoUnwind);
    f_->addParamAttr(0, llvm::Attribute::NoAlias);
    auto *entry = llvm::BasicBlock::Create(c_, "entry", f_);
    b_.SetInsertPoint(entry);
    LValue *args = f_->getArg(0), *begin = f_->getArg(1), *end = f_->getArg(2);
    size_t nargs = n_.operands.size() + n_.results.size();
    for (size_t k = 0; k < nargs; ++k)
      argp_.push_back(b_.CreateLoad(ptr, b_.CreateConstGEP1_64(ptr, args, k),
                                    fmt::format("arg{}", k)));
    // A multi_tensor kernel of a deep model has hundreds of segments; with
    // every row function inlined it is one huge function, on which LLVM's
    // code generation (register allocation, slot indexes) is superlinear:
    // minutes at 128 layers. Past a few segments each row function stays a
    // function of its own (one call per row of a segment), so the work
    // grows linearly with the segments.
    inline_rows_ = plan.segments.size() <= 8;
    if (plan.kind == KernelPlan::Kind::elementwise)
      for (const SegmentPlan &s : plan.segments)
        emit_segment(s, begin, end);
    else
      emit_reduction(plan.red, begin, end);
    b_.CreateRetVoid();
  }

private:
  // ---- loops ----
  // for (i = lo; i < hi; ++i) body(i)
  void loop(LValue *lo, LValue *hi, const std::function<void(LValue *)> &fn,
            const char *name = "i") {
    llvm::BasicBlock *pre = b_.GetInsertBlock();
    auto *head = llvm::BasicBlock::Create(c_, std::string(name) + ".head", f_);
    auto *bodyb = llvm::BasicBlock::Create(c_, std::string(name) + ".body", f_);
    auto *exit = llvm::BasicBlock::Create(c_, std::string(name) + ".exit", f_);
    b_.CreateBr(head);
    b_.SetInsertPoint(head);
    llvm::PHINode *i = b_.CreatePHI(b_.getInt64Ty(), 2, name);
    i->addIncoming(lo, pre);
    b_.CreateCondBr(b_.CreateICmpSLT(i, hi), bodyb, exit);
    b_.SetInsertPoint(bodyb);
    fn(i);
    LValue *next =
        b_.CreateAdd(i, i64(1), "", /*HasNUW=*/true, /*HasNSW=*/true);
    i->addIncoming(next, b_.GetInsertBlock());
    b_.CreateBr(head);
    b_.SetInsertPoint(exit);
  }

  // Offset of the element with linear index `lin` over the axes `axes` of
  // `dims` (row-major), given per-axis `strides`.
  LValue *group_offset(LValue *lin, const std::vector<int> &axes,
                       const Shape &dims, const std::vector<int64_t> &st) {
    LValue *off = i64(0);
    bool any = false;
    for (int a : axes)
      any = any || st[a] != 0;
    if (!any)
      return off;
    for (size_t k = axes.size(); k-- > 0;) {
      int a = axes[k];
      LValue *coord = lin;
      if (k > 0) {
        coord = b_.CreateURem(lin, i64(dims[a]));
        lin = b_.CreateUDiv(lin, i64(dims[a]));
      }
      if (st[a] != 0)
        off = b_.CreateAdd(off, b_.CreateMul(coord, i64(st[a])));
    }
    return off;
  }

  LValue *smin(LValue *a, LValue *b) {
    return b_.CreateSelect(b_.CreateICmpSLT(a, b), a, b);
  }
  LValue *smax(LValue *a, LValue *b) {
    return b_.CreateSelect(b_.CreateICmpSGT(a, b), a, b);
  }

  // ---- elementwise segments ----
  // One segment: a loop over rows of the collapsed space, each row handed
  // to an inlined row function whose pointers are noalias, so that the
  // contiguous inner loop vectorizes without run-time alias checks.
  void emit_segment(const SegmentPlan &s, LValue *begin, LValue *end) {
    size_t nin = body_.inputs().size();
    std::vector<int> used;
    for (size_t k = 0; k < nin; ++k)
      if (!s.in_strides[k].empty())
        used.push_back(static_cast<int>(k));
    int r = static_cast<int>(s.dims.size());
    int64_t inner = s.dims[r - 1];
    // Segments with the same structure (the hidden layers' updates of a
    // multi_tensor kernel) share one row function: the JIT's work grows
    // with the distinct chains, not with the model's depth.
    std::string key = row_key(s, used);
    llvm::Function *&row = rows_[key];
    if (!row)
      row = make_row_function(s, used);

    LValue *lo = smax(b_.CreateSub(begin, i64(s.start)), i64(0));
    LValue *hi = smin(b_.CreateSub(end, i64(s.start)), i64(s.numel));
    // while (i < hi) { row of n elements starting at i }
    llvm::BasicBlock *pre = b_.GetInsertBlock();
    auto *head = llvm::BasicBlock::Create(c_, "row.head", f_);
    auto *bodyb = llvm::BasicBlock::Create(c_, "row.body", f_);
    auto *exit = llvm::BasicBlock::Create(c_, "row.exit", f_);
    b_.CreateBr(head);
    b_.SetInsertPoint(head);
    llvm::PHINode *i = b_.CreatePHI(b_.getInt64Ty(), 2, "row.i");
    i->addIncoming(lo, pre);
    b_.CreateCondBr(b_.CreateICmpSLT(i, hi), bodyb, exit);
    b_.SetInsertPoint(bodyb);
    LValue *o = b_.CreateUDiv(i, i64(inner));
    LValue *j = b_.CreateSub(i, b_.CreateMul(o, i64(inner)));
    LValue *n = smin(b_.CreateSub(hi, i), b_.CreateSub(i64(inner), j));
    std::vector<int> outer;
    for (int a = 0; a < r - 1; ++a)
      outer.push_back(a);
    std::vector<LValue *> call_args;
    for (int k : used) {
      const auto &st = s.in_strides[k];
      LValue *off = group_offset(o, outer, s.dims, st);
      if (st[r - 1] != 0)
        off = b_.CreateAdd(off, b_.CreateMul(j, i64(st[r - 1])));
      call_args.push_back(b_.CreateInBoundsGEP(
          storage_type(body_.inputs()[k].value->type.dtype), argp_[k], off));
    }
    for (int out : s.outputs)
      call_args.push_back(b_.CreateInBoundsGEP(
          storage_type(n_.results[out]->type.dtype), argp_[nin + out], i));
    call_args.push_back(n);
    for (const auto &st : s.iota_strides) {
      LValue *off = group_offset(o, outer, s.dims, st);
      if (st[r - 1] != 0)
        off = b_.CreateAdd(off, b_.CreateMul(j, i64(st[r - 1])));
      call_args.push_back(off);
    }
    b_.CreateCall(row, call_args);
    i->addIncoming(b_.CreateAdd(i, n), b_.GetInsertBlock());
    b_.CreateBr(head);
    b_.SetInsertPoint(exit);
  }

  // Everything make_row_function's code depends on: the inputs it reads
  // (dtype, type, loaded once per row or per element), the needed body
  // nodes in order with their operands numbered locally, the iotas' steps
  // and the outputs (which value, stored as which dtype).
  std::string row_key(const SegmentPlan &s, const std::vector<int> &used) {
    std::unordered_map<const kiln::Value *, int> local;
    auto id = [&](const kiln::Value *v) {
      auto it = local.find(v);
      if (it == local.end())
        fail("LLVM emitter: a segment reads a value it does not compute");
      return it->second;
    };
    int last = static_cast<int>(s.dims.size()) - 1;
    std::string k;
    for (int q : used) {
      const kiln::Value *in = body_.inputs()[q].value;
      int next = static_cast<int>(local.size());
      local.emplace(in, next);
      k += fmt::format("in {} {};", in->type.str(),
                       s.in_strides[q][last] == 0 ? "fixed" : "walk");
    }
    const auto &nodes = body_.nodes();
    std::unordered_map<int, size_t> iota_at; // body node -> iota number
    for (size_t q = 0; q < s.iotas.size(); ++q)
      iota_at[s.iotas[q]] = q;
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (!s.needed[i])
        continue;
      const Node &nd = *nodes[i];
      k += op_name(nd.op);
      k += '(';
      for (const kiln::Value *o : nd.operands)
        k += fmt::format("{},", id(o));
      k += ')';
      for (auto &[name, v] : nd.attrs.items())
        k += fmt::format(" {}={}", name, attr_str(v));
      for (const kiln::Value *r : nd.results) {
        int next = static_cast<int>(local.size());
        local.emplace(r, next);
        k += " : " + r->type.str();
      }
      if (auto it = iota_at.find(static_cast<int>(i)); it != iota_at.end())
        k += fmt::format(" iota#{} step {}", it->second,
                         s.iota_strides[it->second][last]);
      k += ';';
    }
    for (int out : s.outputs)
      k += fmt::format("out {} as {};", id(body_.outputs[out].value),
                       dtype_name(n_.results[out]->type.dtype));
    return k;
  }

  llvm::Function *make_row_function(const SegmentPlan &s,
                                    const std::vector<int> &used) {
    auto *ptr = llvm::PointerType::getUnqual(c_);
    size_t nptr = used.size() + s.outputs.size();
    std::vector<LType *> params(nptr, ptr);
    params.push_back(b_.getInt64Ty()); // the row's length
    for (size_t q = 0; q < s.iotas.size(); ++q)
      params.push_back(b_.getInt64Ty()); // each iota's offset at the row start
    auto *fty = llvm::FunctionType::get(b_.getVoidTy(), params, false);
    auto *fn = llvm::Function::Create(fty, llvm::Function::InternalLinkage,
                                      f_->getName() + ".row", m_);
    fn->addFnAttr(inline_rows_ ? llvm::Attribute::AlwaysInline
                               : llvm::Attribute::NoInline);
    fn->addFnAttr(llvm::Attribute::NoUnwind);
    for (size_t k = 0; k < nptr; ++k)
      fn->addParamAttr(static_cast<unsigned>(k), llvm::Attribute::NoAlias);

    auto saved_ip = b_.saveIP();
    llvm::Function *saved_f = f_;
    f_ = fn;
    b_.SetInsertPoint(llvm::BasicBlock::Create(c_, "entry", fn));
    int last = static_cast<int>(s.dims.size()) - 1;
    Env fixed; // stride-0 inputs, loaded once per row
    for (size_t q = 0; q < used.size(); ++q) {
      const kiln::Value *in = body_.inputs()[used[q]].value;
      if (s.in_strides[used[q]][last] == 0)
        fixed[in] = load(in->type.dtype, fn->getArg(q), i64(0));
    }
    loop(i64(0), fn->getArg(static_cast<unsigned>(nptr)), [&](LValue *t) {
      Env env = fixed;
      for (size_t q = 0; q < used.size(); ++q) {
        const kiln::Value *in = body_.inputs()[used[q]].value;
        if (!env.count(in))
          env[in] = load(in->type.dtype, fn->getArg(q), t);
      }
      for (size_t q = 0; q < s.iotas.size(); ++q) {
        LValue *off = fn->getArg(static_cast<unsigned>(nptr + 1 + q));
        int64_t step = s.iota_strides[q][last];
        if (step != 0)
          off = b_.CreateAdd(off, b_.CreateMul(t, i64(step)));
        const Node &io = *body_.nodes()[s.iotas[q]];
        env[io.result()] = iota_value(io, off);
      }
      eval_body(s.needed, env);
      for (size_t q = 0; q < s.outputs.size(); ++q) {
        int out = s.outputs[q];
        const kiln::Value *v = body_.outputs[out].value;
        store(
            n_.results[out]->type.dtype,
            fn->getArg(static_cast<unsigned>(used.size() + q)), t,
            convert_reg(env.at(v), v->type.dtype, n_.results[out]->type.dtype));
      }
    });
    b_.CreateRetVoid();
    f_ = saved_f;
    b_.restoreIP(saved_ip);
    return fn;
  }

  // ---- reductions ----
  LValue *alloca_f64(int64_t n, const char *name) {
    llvm::IRBuilderBase::InsertPointGuard g(b_);
    b_.SetInsertPoint(&f_->getEntryBlock(), f_->getEntryBlock().begin());
    return b_.CreateAlloca(b_.getDoubleTy(), i64(n), name);
  }

  struct RPoint {
    LValue *outer = nullptr, *inner = nullptr;
  };

  void emit_reduction(const ReductionPlan &r, LValue *begin, LValue *end) {
    const Node &red = *body_.nodes()[r.reduce_node];
    const kiln::Value *x = red.operands[0];
    size_t nin = body_.inputs().size();
    std::vector<bool> used(nin, false);
    auto note = [&](const kiln::Value *v) {
      if (int q = body_.input_index(v); q >= 0)
        used[q] = true;
    };
    for (size_t k = 0; k < r.prologue.size(); ++k)
      if (r.prologue[k])
        for (const kiln::Value *v : body_.nodes()[k]->operands)
          note(v);
    note(x);
    for (int e : r.extras)
      note(body_.outputs[e].value);
    LType *dbl = b_.getDoubleTy();
    DType out_dtype = n_.results[0]->type.dtype;
    LValue *outp = argp_[nin];
    bool softmax = r.op == Op::Softmax || r.op == Op::LogSoftmax;
    bool tiled = r.tile > 1;
    // A reduced point: `outer` the linear index over the reduced axes, or
    // with split_r over all but the last, whose index is `inner`.
    const bool split_r = r.r_axes.size() >= 2;
    std::vector<int> r_outer(r.r_axes.begin(), r.r_axes.end() - 1);
    auto r_offset = [&](RPoint p, const std::vector<int64_t> &st) {
      if (!p.inner)
        return group_offset(p.outer, r.r_axes, r.dims, st);
      LValue *off = group_offset(p.outer, r_outer, r.dims, st);
      int64_t s_last = st[r.r_axes.back()];
      return s_last == 0
                 ? off
                 : b_.CreateAdd(off, b_.CreateMul(p.inner, i64(s_last)));
    };

    LValue *acc = alloca_f64(r.tile, "acc");
    LValue *sum = softmax ? alloca_f64(r.tile, "sum") : nullptr;

    loop(begin, end, [&](LValue *w) {
      LValue *o = w, *t = i64(0);
      if (r.n_tiles > 1) {
        o = b_.CreateUDiv(w, i64(r.n_tiles));
        t = b_.CreateURem(w, i64(r.n_tiles));
      }
      std::vector<LValue *> base(nin, nullptr);
      for (size_t k = 0; k < nin; ++k)
        if (used[k])
          base[k] = group_offset(o, r.o_axes, r.dims, r.in_strides[k]);
      std::vector<LValue *> ibase;
      for (const auto &st : r.iota_strides)
        ibase.push_back(group_offset(o, r.o_axes, r.dims, st));
      LValue *ebase = r.extras.empty()
                          ? nullptr
                          : group_offset(o, r.o_axes, r.dims, r.extra_strides);
      LValue *obase = group_offset(o, r.o_axes, r.dims, r.out_strides);
      LValue *c0 = b_.CreateMul(t, i64(r.tile));
      LValue *cn =
          tiled ? smin(i64(r.tile), b_.CreateSub(i64(r.i_total), c0)) : i64(1);
      // The prologue's value at reduced index ri and tile column c, as
      // double; with `write_extras`, also stores the extra outputs there
      // (done by the one pass that visits every point once).
      auto value = [&](RPoint ri, LValue *c, bool write_extras) {
        Env env;
        LValue *ci = b_.CreateAdd(c0, c);
        auto at = [&](LValue *base0, const std::vector<int64_t> &st) {
          LValue *off = b_.CreateAdd(base0, r_offset(ri, st));
          if (tiled)
            off = b_.CreateAdd(off, group_offset(ci, r.i_axes, r.dims, st));
          return off;
        };
        for (size_t k = 0; k < nin; ++k) {
          if (!used[k])
            continue;
          const kiln::Value *in = body_.inputs()[k].value;
          env[in] =
              load(in->type.dtype, argp_[k], at(base[k], r.in_strides[k]));
        }
        for (size_t q = 0; q < r.iotas.size(); ++q) {
          const Node &io = *body_.nodes()[r.iotas[q]];
          env[io.result()] = iota_value(io, at(ibase[q], r.iota_strides[q]));
        }
        eval_body(r.prologue, env);
        if (write_extras && !r.extras.empty()) {
          LValue *off = at(ebase, r.extra_strides);
          for (int e : r.extras) {
            const kiln::Value *v = body_.outputs[e].value;
            DType d = n_.results[e]->type.dtype;
            store(d, argp_[nin + e], off,
                  convert_reg(env.at(v), v->type.dtype, d));
          }
        }
        return as_w(to_work(env.at(x), x->type.dtype, dbl), dbl);
      };
      auto out_index = [&](RPoint ri, LValue *c) {
        LValue *off = obase;
        if (ri.outer)
          off = b_.CreateAdd(off, r_offset(ri, r.out_strides));
        if (tiled)
          off = b_.CreateAdd(off, group_offset(b_.CreateAdd(c0, c), r.i_axes,
                                               r.dims, r.out_strides));
        return off;
      };
      auto slot = [&](LValue *arr, LValue *c) {
        return b_.CreateInBoundsGEP(dbl, arr, c);
      };
      auto fill = [&](LValue *arr, double v) {
        loop(
            i64(0), cn,
            [&](LValue *c) {
              b_.CreateStore(llvm::ConstantFP::get(dbl, v), slot(arr, c));
            },
            "c");
      };
      // for r: for c: fn(r, c), over the work item's points. With two or
      // more reduced axes the last one is a loop of its own, so that its
      // offsets are a multiply-add (no division per point) and a
      // contiguous inner axis vectorizes: batch norm's statistics reduce
      // [N, C, H*W] over N and H*W.
      auto each_point = [&](const std::function<void(RPoint, LValue *)> &fn) {
        if (!split_r) {
          loop(
              i64(0), i64(r.r_total),
              [&](LValue *ri) {
                loop(
                    i64(0), cn,
                    [&](LValue *c) {
                      fn({ri, nullptr}, c);
                    },
                    "c");
              },
              "r");
          return;
        }
        int64_t last = r.dims[r.r_axes.back()];
        loop(
            i64(0), i64(r.r_total / last),
            [&](LValue *ro) {
              loop(
                  i64(0), i64(last),
                  [&](LValue *rj) {
                    loop(
                        i64(0), cn,
                        [&](LValue *c) {
                          fn({ro, rj}, c);
                        },
                        "c");
                  },
                  "rj");
            },
            "ro");
      };
      // for r: for c: arr[c] = combine(arr[c], value(r, c))
      auto accumulate =
          [&](LValue *arr,
              const std::function<LValue *(LValue *, LValue *, LValue *)> &comb,
              bool write_extras) {
            each_point([&](RPoint ri, LValue *c) {
              LValue *p = slot(arr, c);
              LValue *v = value(ri, c, write_extras);
              b_.CreateStore(comb(b_.CreateLoad(dbl, p), v, c), p);
            });
          };
      auto add = [&](LValue *a, LValue *v) {
        auto *i = llvm::cast<llvm::Instruction>(b_.CreateFAdd(a, v));
        llvm::FastMathFlags fm;
        fm.setAllowReassoc();
        i->setFastMathFlags(fm);
        return static_cast<LValue *>(i);
      };
      auto max = [&](LValue *a, LValue *v) {
        LValue *m = b_.CreateBinaryIntrinsic(llvm::Intrinsic::maxnum, a, v);
        llvm::FastMathFlags fm;
        fm.setNoNaNs();
        llvm::cast<llvm::Instruction>(m)->setFastMathFlags(fm);
        return m;
      };
      double ninf = -std::numeric_limits<double>::infinity();
      // Combiner, identity and the divide by the count: the op table's.
      const OpInfo &ri = op_info(r.op);
      if (!softmax) {
        fill(acc, ri.reduce_identity());
        accumulate(
            acc,
            [&](LValue *a, LValue *v, LValue *) {
              // amax propagates NaN (IEEE maximum), as the interpreter.
              return ri.combiner() == Combiner::max
                         ? b_.CreateBinaryIntrinsic(llvm::Intrinsic::maximum, a,
                                                    v)
                         : add(a, v);
            },
            /*write_extras=*/true);
        // The final reduced values, through the epilogue.
        const kiln::Value *y = body_.outputs[0].value;
        loop(
            i64(0), cn,
            [&](LValue *c) {
              LValue *v = b_.CreateLoad(dbl, slot(acc, c));
              if (ri.has(kDividesByCount))
                v = b_.CreateFDiv(v, llvm::ConstantFP::get(
                                         dbl, static_cast<double>(r.count)));
              Env env;
              env[red.result()] = from_work(v, red.result()->type.dtype);
              eval_body(r.epilogue, env);
              store(out_dtype, outp, out_index({}, c),
                    convert_reg(env.at(y), y->type.dtype, out_dtype));
            },
            "c");
        return;
      }
      // Softmax: max, sum of exp(x - max), then the normalized values.
      fill(acc, ninf);
      accumulate(
          acc, [&](LValue *a, LValue *v, LValue *) { return max(a, v); },
          false);
      fill(sum, 0.0);
      accumulate(
          sum,
          [&](LValue *a, LValue *v, LValue *c) {
            LValue *m = b_.CreateLoad(dbl, slot(acc, c));
            return add(a, b_.CreateUnaryIntrinsic(llvm::Intrinsic::exp,
                                                  b_.CreateFSub(v, m)));
          },
          false);
      if (r.op == Op::LogSoftmax)
        loop(
            i64(0), cn,
            [&](LValue *c) {
              LValue *p = slot(sum, c);
              b_.CreateStore(b_.CreateUnaryIntrinsic(llvm::Intrinsic::log,
                                                     b_.CreateLoad(dbl, p)),
                             p);
            },
            "c");
      each_point([&](RPoint ri, LValue *c) {
        LValue *m = b_.CreateLoad(dbl, slot(acc, c));
        LValue *s = b_.CreateLoad(dbl, slot(sum, c));
        LValue *z = b_.CreateFSub(value(ri, c, false), m);
        LValue *y =
            r.op == Op::LogSoftmax
                ? b_.CreateFSub(z, s)
                : b_.CreateFDiv(
                      b_.CreateUnaryIntrinsic(llvm::Intrinsic::exp, z), s);
        store(out_dtype, outp, out_index(ri, c), from_work(y, out_dtype));
      });
    });
  }

  const Node &n_;
  bool inline_rows_ = true; // row functions inlined into the kernel
  std::unordered_map<std::string, llvm::Function *> rows_; // by row_key
  llvm::Function *f_ = nullptr;
  std::vector<LValue *> argp_;
};

} // namespace

void emit_kernel(llvm::Module &m, const Node &fused, const KernelPlan &plan,
                 const std::string &name) {
  Emitter(m, fused).emit(plan, name);
}

} // namespace kiln
