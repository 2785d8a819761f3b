// Graph, Node and Value: SSA values in a flat, topologically ordered node
// list. A fused node owns a body graph whose inputs are the node's operands
// and whose outputs are its results.
#pragma once

#include "ir/attrs.h"
#include "ir/op.h"
#include "ir/types.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace kiln {

class Graph;

// How a graph input is fed: per-step data, a trained parameter, or other
// state carried across steps (momentum buffers, step counters).
enum class InputKind { data, param, state };

struct Value {
  Type type;
  std::string name;    // "" or all digits: numbered when printed
  Node *def = nullptr; // defining node; nullptr for a graph input
  int index = 0;       // result index in def, or position among the inputs
  int id = 0;          // creation order within the graph, for stable maps
};

// Where a node came from, for messages: its position in .kir text when it
// was parsed, the module path ("fc2 (Linear)") when it was traced; empty for
// a node a pass made (passes copy the location of the node they replace
// where there is one).
struct SourceLoc {
  std::string file; // parsed: FILE:LINE:COL
  int line = 0, col = 0;
  std::string scope; // traced: the module path
  bool empty() const { return file.empty() && scope.empty(); }
};

struct Node {
  Op op;
  std::vector<Value *> operands;
  std::vector<Value *> results;
  Attrs attrs;
  std::unique_ptr<Graph> body; // fused nodes only
  SourceLoc loc;

  const OpInfo &info() const { return op_info(op); }
  Value *result() const { return results.at(0); }
};

// An integer data input may carry a range [lo, hi) that every element must
// lie in; backends check it before a step runs (printed `%y: i32[64] in
// [0, 10)`). fuse-elementwise hoists one_hot's label check to it.
struct InputRange {
  InputRange() = default;
  InputRange(int64_t lo_, int64_t hi_, std::string reader_ = {})
      : lo(lo_), hi(hi_), reader(std::move(reader_)) {}
  int64_t lo = 0, hi = 0;
  // What reads the input with that range, for the error ("one_hot
  // {num_classes = 10} in nll_loss"); not part of the text form.
  std::string reader;
  bool operator==(const InputRange &o) const {
    return lo == o.lo && hi == o.hi;
  }
};
// How a range's reader is named: "op {attr = v, ...}", then " in SCOPE"
// when the node was traced inside a module or a loss.
std::string range_reader(const Node &n);

struct GraphInput {
  Value *value;
  InputKind kind;
  std::optional<InputRange> range;
};

struct GraphOutput {
  Value *value;
  int alias = -1; // index of the input this output updates in place, or -1
};

class Graph {
public:
  explicit Graph(std::string name = "main") : name(std::move(name)) {}
  Graph(const Graph &) = delete;
  Graph &operator=(const Graph &) = delete;

  std::string name;
  std::vector<GraphOutput> outputs;

  Value *add_input(std::string name, Type type,
                   InputKind kind = InputKind::data);
  // Appends a node; results get the given types. No inference here: use the
  // Builder, which infers and checks types.
  Node *append(Op op, std::vector<Value *> operands,
               std::vector<Type> result_types, Attrs attrs = {},
               std::unique_ptr<Graph> body = nullptr);
  // Inserts a node just before `pos` (nullptr: at the end).
  Node *insert_before(const Node *pos, Op op, std::vector<Value *> operands,
                      std::vector<Type> result_types, Attrs attrs = {},
                      std::unique_ptr<Graph> body = nullptr);
  // Appends a copy of node n (of another graph, or of this one) reading
  // `operands`: its op, attributes, a deep copy of its body, its location,
  // and results of the same types and names. The one way passes and
  // emitters copy a node, so none of them drops its location or body.
  Node *copy_node(const Node &n, std::vector<Value *> operands);
  // The same with n's operands looked up in `map` (a value of n's graph ->
  // one of this graph; each must be there); map then also takes n's results
  // to the copy's.
  Node *copy_node(const Node &n,
                  std::unordered_map<const Value *, Value *> &map);
  void add_output(Value *v, int alias = -1) { outputs.push_back({v, alias}); }

  const std::vector<GraphInput> &inputs() const { return inputs_; }
  // Sets the range of input i (an integer data input; see InputRange).
  void set_input_range(int i, InputRange r);
  const std::vector<std::unique_ptr<Node>> &nodes() const { return nodes_; }
  Value *find_input(std::string_view name) const;
  int input_index(const Value *v) const; // -1 when not an input

  // Every use of `from` (node operands, graph outputs) becomes `to`.
  void replace_all_uses(Value *from, Value *to);
  // Removes the nodes for which pred is true; their results must be unused.
  void erase_nodes_if(const std::function<bool(const Node &)> &pred);
  // Reorders the node list (a permutation of nodes()).
  void reorder(const std::vector<Node *> &order);

  // Users of each value, in node order (graph outputs are not nodes).
  std::unordered_map<const Value *, std::vector<Node *>> users() const;

  // A deep copy; `map` (optional) receives old value -> new value.
  std::unique_ptr<Graph>
  clone(std::unordered_map<const Value *, Value *> *map = nullptr) const;

private:
  Value *new_value(Type type, std::string name, Node *def, int index);
  std::unique_ptr<Node> make_node(Op op, std::vector<Value *> operands,
                                  std::vector<Type> result_types, Attrs attrs,
                                  std::unique_ptr<Graph> body);

  std::vector<GraphInput> inputs_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<std::unique_ptr<Value>> values_;
  int next_id_ = 0;
};

std::string_view input_kind_name(InputKind k);

// A message about node n with its location: "FILE:LINE:COL: error: MSG" for
// a parsed node (the form the `kiln` command prints as it is), "fc2 (Linear):
// MSG" for a traced one, MSG alone when the node has none.
std::string located(const Node &n, std::string_view msg);
// Throws kiln::Error with located(n, msg).
[[noreturn]] void fail_at_node(const Node &n, std::string_view msg);

// A body graph holding one copy of node n (named after its op; inputs a0,
// a1, ... of its operands' types; outputs its results), so that the code
// generators treat a standalone op as a one-node fused body.
std::unique_ptr<Graph> one_node_body(const Node &n);

// Throws kiln::Error when element `index` (value `v`) of input i of g lies
// outside the input's range; a no-op for inputs without one.
void check_input_element(const Graph &g, size_t i, int64_t index, int64_t v);

} // namespace kiln
