// Reverse-mode execution of the graph recorded by the forward pass.
//
// 1. Walk the graph from the roots (iteratively, so chains of any length fit) and count, for every
//    node, how many edges point into it: its dependencies.
// 2. Start at the roots with their seed gradients. A node runs once all its dependencies have
//    delivered their gradients into its input buffer (buffers add up: d/dx of a shared x is the
//    sum over its uses). Its outputs go into the buffers of the nodes its edges name.
// 3. Gradients a node returns are reduced to each input's shape (broadcasting's adjoint) and cast to its dtype.
// Under anomaly detection (anomaly_mode.h) every gradient a node returns is checked for NaN / inf.
// Before a node runs, the hooks registered on the tensors whose gradients it received run on them
// (Tensor.register_hook; run_gradient_hooks in node.cpp).
#include "autograd/engine.h"

#include <unordered_map>

#include "autograd/anomaly_mode.h"
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "ops/ops.h"

namespace tg {

namespace {

struct Capture {  // tg.grad(): the gradient that reaches input `input_nr` of `node` is an answer
  Node* node;
  uint32_t input_nr;
  size_t slot;
};

void execute(const TensorList& roots, const TensorList& grad_roots, bool retain_graph, bool create_graph,
             const std::vector<Capture>* captures, TensorList* captured) {
  TG_CHECK(roots.size() == grad_roots.size(), ValueError, "backward: got ", roots.size(), " tensors but ",
           grad_roots.size(), " gradients");
  std::vector<Edge> root_edges;
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    TG_CHECK(r.requires_grad(), RuntimeError, "backward: element ", i, " of the tensors (shape ", shape_str(r.shape()),
             ") does not require grad and has no grad_fn");
    const Tensor& g = grad_roots[i];
    TG_CHECK(g.shape() == r.shape(), ShapeError, "backward: gradient of shape ", shape_str(g.shape()),
             " does not match the tensor's shape ", shape_str(r.shape()));
    root_edges.push_back(gradient_edge(r));
  }

  // 1. dependency counts (and, for tg.grad, who points at whom)
  std::unordered_map<Node*, int> deps;
  std::unordered_map<Node*, std::vector<Node*>> parents;
  std::vector<Node*> stack;
  std::unordered_map<Node*, bool> seen;
  for (auto& e : root_edges)
    if (!seen[e.fn.get()]) {
      seen[e.fn.get()] = true;
      stack.push_back(e.fn.get());
    }
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (auto& e : n->next_edges) {
      if (!e.fn) continue;
      deps[e.fn.get()] += 1;
      if (captures) parents[e.fn.get()].push_back(n);
      if (!seen[e.fn.get()]) {
        seen[e.fn.get()] = true;
        stack.push_back(e.fn.get());
      }
    }
  }
  // tg.grad runs only the nodes that lead to an input: those above a captured node. The graph
  // below an input (a non-leaf tensor) is left as it is, neither run nor released.
  std::unordered_map<Node*, bool> leads_to_input;
  if (captures) {
    for (const Capture& c : *captures) stack.push_back(c.node);
    while (!stack.empty()) {
      Node* n = stack.back();
      stack.pop_back();
      for (Node* p : parents[n])
        if (!leads_to_input[p]) {
          leads_to_input[p] = true;
          stack.push_back(p);
        }
    }
  }

  // 2. run
  std::unordered_map<Node*, TensorList> buffers;
  std::vector<std::shared_ptr<Node>> ready;
  auto deliver = [&](const Edge& e, Tensor g) {
    Node* n = e.fn.get();
    TensorList& buf = buffers[n];
    if (buf.empty()) buf.resize(n->num_outputs);
    Tensor& slot = buf[e.input_nr];
    slot = slot.defined() ? add(slot, g) : std::move(g);
  };
  GradModeGuard mode(create_graph);
  for (size_t i = 0; i < root_edges.size(); ++i) deliver(root_edges[i], grad_roots[i]);
  for (auto& e : root_edges)
    if (deps[e.fn.get()] == 0) {
      deps[e.fn.get()] = -1;  // queued
      ready.push_back(e.fn);
    }

  while (!ready.empty()) {
    std::shared_ptr<Node> node = std::move(ready.back());
    ready.pop_back();
    TensorList inputs = std::move(buffers[node.get()]);
    buffers.erase(node.get());
    run_gradient_hooks(*node, inputs);
    if (captures) {
      for (const Capture& c : *captures)
        if (c.node == node.get() && c.input_nr < inputs.size()) (*captured)[c.slot] = inputs[c.input_nr];
      if (!leads_to_input[node.get()]) continue;  // (so tg.grad() leaves .grad alone: leaves lead nowhere)
    }
    inputs.resize(node->num_outputs);
    TensorList outputs;
    if (!AnomalyMode::is_enabled()) {
      outputs = node->apply(inputs);
    } else {
      try {
        outputs = node->apply(inputs);
      } catch (Error& e) {
        add_forward_trace(e, *node);
        throw;
      }
      if (AnomalyMode::check_nan()) check_gradients_finite(*node, outputs);
    }
    inputs.clear();
    if (!retain_graph) node->release();
    TG_CHECK(outputs.size() == node->next_edges.size() || node->next_edges.empty(), RuntimeError, "backward: ",
             node->name, " returned ", outputs.size(), " gradients for ", node->next_edges.size(), " inputs");
    for (size_t i = 0; i < node->next_edges.size(); ++i) {
      const Edge& e = node->next_edges[i];
      if (!e.fn) continue;
      if (outputs[i].defined()) {
        const InputMeta& meta = node->input_meta[i];
        Tensor g = std::move(outputs[i]);
        if (g.shape() != meta.shape) g = sum_to(g, meta.shape);
        if (g.dtype() != meta.dtype) g = to_dtype(g, meta.dtype);
        deliver(e, std::move(g));
      }
      if (--deps[e.fn.get()] == 0) ready.push_back(e.fn);
    }
  }
}

Tensor seed_gradient(const Tensor& root, const Tensor& given) {
  if (given.defined()) return given;
  TG_CHECK(root.numel() == 1, RuntimeError, "backward: grad can be implicitly created only for scalar outputs; "
           "the tensor has shape ", shape_str(root.shape()), " (pass a gradient of that shape)");
  return ones(root.shape(), root.dtype(), root.device());
}

}  // namespace

void backward(const TensorList& roots, const TensorList& grad_roots, bool retain_graph, bool create_graph) {
  TensorList seeds;
  for (size_t i = 0; i < roots.size(); ++i)
    seeds.push_back(seed_gradient(roots[i], i < grad_roots.size() ? grad_roots[i] : Tensor()));
  execute(roots, seeds, retain_graph, create_graph, nullptr, nullptr);
}

TensorList grad(const TensorList& roots, const TensorList& grad_roots, const TensorList& inputs, bool retain_graph,
                bool create_graph, bool allow_unused) {
  TensorList seeds;
  for (size_t i = 0; i < roots.size(); ++i)
    seeds.push_back(seed_gradient(roots[i], i < grad_roots.size() ? grad_roots[i] : Tensor()));
  std::vector<Capture> captures;
  std::vector<std::shared_ptr<Node>> keep;  // accumulators made here must live through the pass
  for (size_t i = 0; i < inputs.size(); ++i) {
    TG_CHECK(inputs[i].requires_grad(), RuntimeError, "grad: input ", i, " (shape ", shape_str(inputs[i].shape()),
             ") does not require grad");
    Edge e = gradient_edge(inputs[i]);
    keep.push_back(e.fn);
    captures.push_back({e.fn.get(), e.input_nr, i});
  }
  TensorList out(inputs.size());
  execute(roots, seeds, retain_graph, create_graph, &captures, &out);
  for (size_t i = 0; i < out.size(); ++i)
    TG_CHECK(out[i].defined() || allow_unused, RuntimeError, "grad: input ", i, " (shape ",
             shape_str(inputs[i].shape()), ") was not used to compute the outputs; pass allow_unused=True");
  return out;
}

TensorList grad_through_reference(const TensorList& references, const TensorList& grad_outputs,
                                  const TensorList& inputs) {
  TensorList roots, seeds;
  for (size_t i = 0; i < references.size(); ++i)
    if (grad_outputs[i].defined()) {
      roots.push_back(references[i]);
      seeds.push_back(grad_outputs[i]);
    }
  // Only inputs that require grad can be differentiated (a weight may be a constant); the others
  // get no gradient (undefined).
  TensorList tracked;
  for (const Tensor& t : inputs)
    if (t.requires_grad()) tracked.push_back(t);
  TensorList out(inputs.size());
  if (tracked.empty() || roots.empty()) return out;
  // retain_graph: the gradient's own graph reads the reference's saved tensors when it is differentiated
  const TensorList grads = grad(roots, seeds, tracked, /*retain_graph=*/true, /*create_graph=*/true, /*allow_unused=*/true);
  for (size_t i = 0, k = 0; i < inputs.size(); ++i)
    if (inputs[i].requires_grad()) out[i] = grads[k++];
  return out;
}

}  // namespace tg
