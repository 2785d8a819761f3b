// The attribute schema of the op table (ir/ops.def, ir/op.h): the Builder
// and the verifier reject unknown, misspelled, missing and mistyped
// attributes with a message naming the op and the attribute; the attr_*
// accessors take defaults from the table; the table itself is consistent.
#include "ir/builder.h"
#include "ir/error.h"
#include "ir/verifier.h"

#include <gtest/gtest.h>

#include <limits>
#include <set>

namespace kiln {
namespace {

Type f32(Shape s) { return {DType::f32, std::move(s)}; }

std::string verify_error(const Graph &g) {
  try {
    verify(g);
  } catch (const Error &e) {
    return e.what();
  }
  return "<no error>";
}

// The message of building op on x with attrs, "<no error>" when it builds.
std::string build_error(Op op, Attrs attrs, std::string scope = "") {
  Graph g;
  Builder b(g);
  b.set_scope(std::move(scope));
  Value *x = g.add_input("x", f32({2, 3}));
  try {
    b.op(op, {x}, std::move(attrs));
  } catch (const Error &e) {
    return e.what();
  }
  return "<no error>";
}

TEST(AttrSchema, BuilderRejectsUnknownAndMisspelledAttributes) {
  EXPECT_EQ(build_error(Op::Softmax, {{"axiss", int64_t{0}}}),
            "softmax has no attribute 'axiss' (did you mean 'axis'?)");
  EXPECT_EQ(build_error(Op::Relu, {{"bogus", std::string("x")}}),
            "relu has no attribute 'bogus' (relu takes no attributes)");
  EXPECT_EQ(build_error(Op::Sum, {{"keepdim", true}}),
            "sum has no attribute 'keepdim' (did you mean 'keepdims'?)");
  EXPECT_EQ(build_error(Op::Sum, {{"along", int64_t{1}}}),
            "sum has no attribute 'along' (expected one of 'axes', "
            "'keepdims')");
  EXPECT_EQ(build_error(Op::Transpose, {{"x", int64_t{1}}}),
            "transpose has no attribute 'x' (expected 'perm')");
}

TEST(AttrSchema, BuilderRejectsMissingAndMistypedAttributes) {
  EXPECT_EQ(build_error(Op::Transpose, {}),
            "transpose needs attribute 'perm' (a list of integers)");
  EXPECT_EQ(build_error(Op::Softmax, {{"axis", std::string("x")}}),
            "softmax attribute 'axis' must be an integer, got \"x\"");
  EXPECT_EQ(build_error(Op::Transpose, {{"perm", 1.5}}),
            "transpose attribute 'perm' must be a list of integers, got 1.5");
  EXPECT_EQ(build_error(Op::Sum, {{"keepdims", int64_t{1}}}),
            "sum attribute 'keepdims' must be true or false, got 1");
  EXPECT_EQ(build_error(Op::Cast, {{"dtype", std::string("f16")}}),
            "cast attribute 'dtype' must be a dtype name (\"f32\", \"f64\", "
            "\"i32\", \"i64\" or \"bool\"), got \"f16\"");
}

// A traced graph's error names the module the node came from.
TEST(AttrSchema, BuilderErrorsCarryTheTraceScope) {
  EXPECT_EQ(build_error(Op::Softmax, {{"axiss", int64_t{0}}}, "head (Linear)"),
            "head (Linear): softmax has no attribute 'axiss' (did you mean "
            "'axis'?)");
}

// Nodes made without the Builder (Graph::append, as passes do) or whose
// attributes changed afterwards are caught by the verifier.
TEST(AttrSchema, VerifierChecksGraphsBuiltWithoutTheBuilder) {
  Graph g;
  Value *x = g.add_input("x", f32({2, 3}));
  g.append(Op::Softmax, {x}, {f32({2, 3})}, {{"axiss", int64_t{0}}});
  EXPECT_EQ(verify_error(g), "verifier: node 0 (softmax): softmax has no "
                             "attribute 'axiss' (did you mean 'axis'?)");

  Graph h;
  Value *y = h.add_input("y", f32({2, 3}));
  h.append(Op::Transpose, {y}, {f32({3, 2})});
  EXPECT_EQ(verify_error(h), "verifier: node 0 (transpose): transpose needs "
                             "attribute 'perm' (a list of integers)");

  Graph k;
  Builder b(k);
  Value *z = k.add_input("z", f32({2, 3}));
  Value *s = b.softmax(z, 1);
  s->def->attrs.set("axis", std::string("x"));
  EXPECT_EQ(verify_error(k), "verifier: node 0 (softmax): softmax attribute "
                             "'axis' must be an integer, got \"x\"");

  Graph o;
  Value *l = o.add_input("l", Type{DType::i32, {4}});
  o.append(Op::OneHot, {l}, {f32({4, 3})}, {{"dtype", std::string("f32")}});
  EXPECT_EQ(verify_error(o), "verifier: node 0 (one_hot): one_hot needs "
                             "attribute 'num_classes' (an integer)");
}

// A located node (parsed, or traced) gets its location in the message.
TEST(AttrSchema, VerifierErrorsAreLocated) {
  Graph g;
  Value *x = g.add_input("x", f32({2, 3}));
  Node *n = g.append(Op::Relu, {x}, {f32({2, 3})}, {{"bogus", int64_t{1}}});
  n->loc.file = "m.kir";
  n->loc.line = 3;
  n->loc.col = 8;
  EXPECT_EQ(verify_error(g),
            "m.kir:3:8: error: verifier: node 0 (relu): relu has no attribute "
            "'bogus' (relu takes no attributes)");
}

TEST(AttrSchema, AccessorsTakeDefaultsFromTheTable) {
  EXPECT_EQ(attr_int(Op::Softmax, {}, "axis"), -1);
  EXPECT_EQ(attr_int(Op::LogSoftmax, {}, "axis"), -1);
  EXPECT_EQ(attr_int(Op::Softmax, {{"axis", int64_t{0}}}, "axis"), 0);
  EXPECT_EQ(attr_int(Op::Iota, {}, "axis"), 0);
  EXPECT_FALSE(attr_bool(Op::Sum, {}, "keepdims"));
  EXPECT_TRUE(attr_bool(Op::Mean, {{"keepdims", true}}, "keepdims"));
  EXPECT_EQ(attr_dtype(Op::OneHot, {}, "dtype"), DType::f32);
  EXPECT_EQ(attr_dtype(Op::Cast, {{"dtype", std::string("i64")}}, "dtype"),
            DType::i64);
}

TEST(AttrSchema, AccessorsRejectUndeclaredAndMissingAttributes) {
  auto error = [](auto f) -> std::string {
    try {
      f();
    } catch (const Error &e) {
      return e.what();
    }
    return "<no error>";
  };
  EXPECT_EQ(error([] { attr_int(Op::Softmax, {}, "axes"); }),
            "softmax declares no attribute 'axes' in ir/ops.def");
  EXPECT_EQ(error([] { attr_bool(Op::Softmax, {}, "axis"); }),
            "softmax declares attribute 'axis' as an integer, not true or "
            "false");
  EXPECT_EQ(error([] { attr_int(Op::OneHot, {}, "num_classes"); }),
            "one_hot needs attribute 'num_classes' (an integer)");
  EXPECT_EQ(error([] { attr_dtype(Op::Cast, {}, "dtype"); }),
            "cast needs attribute 'dtype' (a dtype name (\"f32\", \"f64\", "
            "\"i32\", \"i64\" or \"bool\"))");
}

// Names are unique per op, defaults are valid, and what the schema admits
// for the ops with no required attribute is the empty set.
TEST(AttrSchema, TableIsConsistent) {
  for (int i = 0; i < kNumOps; ++i) {
    const OpInfo &info = op_info(static_cast<Op>(i));
    std::set<std::string_view> names;
    bool required = false;
    for (const AttrSpec &a : info.attrs) {
      EXPECT_FALSE(a.name.empty()) << info.name;
      EXPECT_TRUE(names.insert(a.name).second) << info.name << " " << a.name;
      if (a.presence == AttrSpec::Defaulted && a.type == AttrType::DType) {
        EXPECT_TRUE(parse_dtype(a.str_default)) << info.name << " " << a.name;
      }
      if (a.presence == AttrSpec::Defaulted) {
        EXPECT_TRUE(a.type == AttrType::Int || a.type == AttrType::Bool ||
                    a.type == AttrType::DType || a.type == AttrType::Str)
            << info.name << " " << a.name << ": no default of that type";
      }
      required = required || a.presence == AttrSpec::Required;
    }
    EXPECT_EQ(find_attr_problem(info, {}).has_value(), required) << info.name;
  }
}

// "Cheap to recompute" is a trait of the table (fuse-elementwise reads it),
// given only to elementwise ops.
TEST(AttrSchema, CheapToRecomputeIsAnElementwiseTrait) {
  for (Op op : {Op::Add, Op::Sub, Op::Mul, Op::Neg, Op::Relu, Op::Cast,
                Op::Where, Op::Max, Op::Eq})
    EXPECT_TRUE(op_info(op).has(kCheapToRecompute)) << op_name(op);
  for (Op op : {Op::Exp, Op::Log, Op::Sqrt, Op::Rsqrt, Op::Tanh, Op::Sigmoid,
                Op::Pow, Op::Div, Op::Matmul, Op::Sum})
    EXPECT_FALSE(op_info(op).has(kCheapToRecompute)) << op_name(op);
  for (int i = 0; i < kNumOps; ++i) {
    const OpInfo &info = op_info(static_cast<Op>(i));
    if (info.has(kCheapToRecompute)) {
      EXPECT_TRUE(info.has(kElementwise)) << info.name;
    }
  }
}

TEST(AttrSchema, ReductionCombinersAndIdentities) {
  EXPECT_EQ(op_info(Op::Sum).combiner(), Combiner::add);
  EXPECT_EQ(op_info(Op::Mean).combiner(), Combiner::add);
  EXPECT_EQ(op_info(Op::Amax).combiner(), Combiner::max);
  EXPECT_EQ(op_info(Op::Softmax).combiner(), Combiner::none);
  EXPECT_EQ(op_info(Op::Sum).reduce_identity(), 0.0);
  EXPECT_EQ(op_info(Op::Amax).reduce_identity(),
            -std::numeric_limits<double>::infinity());
  EXPECT_TRUE(op_info(Op::Mean).has(kDividesByCount));
  EXPECT_FALSE(op_info(Op::Sum).has(kDividesByCount));
}

} // namespace
} // namespace kiln
