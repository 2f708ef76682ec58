// The backward graph. Every differentiable op that ran with grad mode on leaves one Node behind:
// it knows where each input's gradient goes (next_edges), what it saved from the forward, and
// how to turn the gradients of its outputs into gradients of its inputs (backward).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tg {

struct Node;

// Where a gradient flows: input `input_nr` of node `fn` (fn null: that input needs no gradient).
struct Edge {
  std::shared_ptr<Node> fn;
  uint32_t input_nr = 0;
};

// A tensor kept for backward. Outputs of the node itself are kept without their grad_fn (a strong
// reference would be a cycle node -> output -> node); unpack() reattaches it, so create_graph
// still differentiates through them. The version recorded at save time detects in-place writes.
struct SavedTensor {
  Tensor data;
  std::weak_ptr<Node> grad_fn;
  uint32_t output_nr = 0;
  uint64_t version = 0;
  bool is_output = false;
  Tensor unpack(const char* node_name) const;
};

struct InputMeta {
  Shape shape;
  DType dtype;
};

class BackwardContext;
using BackwardFn = std::function<TensorList(const BackwardContext&, const TensorList& grad_outputs)>;

// A hook on output `output_nr`'s gradient of a node: a non-leaf tensor's register_hook.
struct OutputHook {
  HookId id;
  uint32_t output_nr;
  GradHook fn;
};

struct Node {
  const char* name = "Node";
  std::vector<OutputHook> output_hooks;  // run on the incoming gradients before backward
  std::vector<Edge> next_edges;       // one per input of the forward
  std::vector<InputMeta> input_meta;  // gradients are reduced/cast to these
  std::vector<InputMeta> output_meta;  // the forward's outputs (for pictures of the graph: tg.viz)
  std::vector<SavedTensor> saved;
  BackwardFn backward;
  uint32_t num_outputs = 1;
  bool released = false;
  std::string forward_trace;  // where the forward ran, kept only under anomaly detection

  virtual ~Node();
  // Gradients of the inputs from the gradients of the outputs (undefined = zero / not needed).
  virtual TensorList apply(const TensorList& grad_outputs);
  // Frees what the forward saved; a second backward through this node then raises.
  virtual void release();
};

// What a backward function may look at.
class BackwardContext {
 public:
  explicit BackwardContext(const Node& node) : node_(node) {}
  Tensor saved(size_t i) const { return node_.saved[i].unpack(node_.name); }
  bool needs_grad(size_t input) const { return node_.next_edges[input].fn != nullptr; }
  const Shape& input_shape(size_t input) const { return node_.input_meta[input].shape; }
  DType input_dtype(size_t input) const { return node_.input_meta[input].dtype; }

 private:
  const Node& node_;
};

// Runs the tensor hooks on the gradients arriving at `node`: those of its outputs (non-leaf
// tensors) and, for a leaf's AccumulateGrad, the leaf's own.
void run_gradient_hooks(Node& node, TensorList& grads);

// Leaves end in an AccumulateGrad node, which adds the incoming gradient into `.grad` (then runs
// the leaf's post-accumulate hooks). One per leaf, shared by every graph that uses it: backward
// passes in two threads into one leaf take turns at `.grad` (the mutex).
struct AccumulateGrad : Node {
  std::shared_ptr<TensorImpl> variable;
  std::mutex mutex;
  TensorList apply(const TensorList& grad_outputs) override;
  void release() override {}

 private:
  void accumulate(const Tensor& g);  // .grad = g, or .grad += g
};

// ---- recording --------------------------------------------------------------------------------
// True when grad mode is on and any of the tensors requires grad.
bool should_record(std::initializer_list<const Tensor*> inputs);
bool should_record(const TensorList& inputs);

// Attach one backward node to `outputs`. `saved` may include outputs; they are kept weakly.
void record(const char* name, const TensorList& inputs, const TensorList& outputs, const TensorList& saved,
            BackwardFn backward);

// The edge a gradient for `t` should flow into: its grad_fn, or its leaf accumulator. A view
// whose memory was written in place since its history was made (through another view of the
// same tensor) first gets a fresh history from the viewed tensor's (view_history.h).
Edge gradient_edge(const Tensor& t);

}  // namespace tg
