#include "autograd/node.h"

#include <atomic>

#include "autograd/anomaly_mode.h"
#include "autograd/grad_mode.h"
#include "autograd/view_history.h"
#include "ops/ops.h"

namespace tg {

namespace {
thread_local bool grad_enabled = true;
}
bool GradMode::is_enabled() { return grad_enabled; }
void GradMode::set_enabled(bool enabled) { grad_enabled = enabled; }

// Graph teardown without recursion: a 100,000-op chain would otherwise free node after node on
// the C++ stack. A dying node hands its edges and saved tensors to a work list; a node found
// there whose last owner is the list gives up its own edges before it is freed, so no
// destructor ever runs another node's destructor with edges left in it.
Node::~Node() {
  std::vector<std::shared_ptr<Node>> pending;
  auto take = [&pending](Node& n) {
    for (auto& e : n.next_edges)
      if (e.fn) pending.push_back(std::move(e.fn));
    n.next_edges.clear();
    for (auto& s : n.saved) {
      if (!s.data.defined()) continue;
      // The saved tensor's own history may be the last owner of a node further down.
      if (s.data.impl().use_count() == 1 && s.data.impl()->grad_fn) pending.push_back(std::move(s.data.impl()->grad_fn));
    }
    n.saved.clear();
    n.backward = nullptr;
  };
  take(*this);
  while (!pending.empty()) {
    std::shared_ptr<Node> n = std::move(pending.back());
    pending.pop_back();
    if (n.use_count() == 1) take(*n);
    // n is released here; its edges are already in `pending`, so its destructor does not recurse.
  }
}

TensorList Node::apply(const TensorList& grad_outputs) {
  TG_CHECK(!released, RuntimeError, "backward: trying to backward through the graph a second time (through ", name,
           "); the saved tensors were freed after the first backward. Pass retain_graph=True the first time.");
  return backward(BackwardContext(*this), grad_outputs);
}

void Node::release() {
  saved.clear();
  backward = nullptr;
  released = true;
}

// Leaves: .grad = incoming gradient (first time) or .grad += incoming gradient.
HookId next_hook_id() {
  static std::atomic<HookId> next{1};
  return next++;
}

void run_gradient_hooks(Node& node, TensorList& grads) {
  for (const OutputHook& h : node.output_hooks)
    if (h.output_nr < grads.size() && grads[h.output_nr].defined()) {
      Tensor replaced = h.fn(grads[h.output_nr]);
      if (replaced.defined()) grads[h.output_nr] = std::move(replaced);
    }
  if (auto* acc = dynamic_cast<AccumulateGrad*>(&node); acc && !grads.empty() && grads[0].defined())
    for (const auto& [id, fn] : acc->variable->grad_hooks) {
      Tensor replaced = fn(grads[0]);
      if (replaced.defined()) grads[0] = std::move(replaced);
    }
}

TensorList AccumulateGrad::apply(const TensorList& grad_outputs) {
  const Tensor& g = grad_outputs[0];
  if (!g.defined()) return {};
  accumulate(g);
  const Tensor leaf(variable);
  for (const auto& [id, fn] : variable->post_accumulate_hooks) fn(leaf);
  return {};
}

void AccumulateGrad::accumulate(const Tensor& g) {
  std::lock_guard<std::mutex> lock(mutex);
  Tensor& current = variable->grad;
  if (GradMode::is_enabled()) {  // create_graph: keep the gradient's own history
    current = current.defined() ? add(current, g) : g;
  } else if (!current.defined()) {
    // Steal a freshly made contiguous gradient; copy one that someone else may still hold.
    bool owned = g.impl().use_count() == 1 && g.impl()->storage.use_count() == 1 && g.is_contiguous() &&
                 !g.grad_fn() && g.offset() == 0;
    current = owned ? g : clone(g);
    if (owned) current.impl()->requires_grad = false;
  } else if (current.grad_fn()) {
    current = add(current, g);
  } else {
    add_(current, g);
  }
}

Tensor SavedTensor::unpack(const char* node_name) const {
  TG_CHECK(data.defined(), RuntimeError, "backward: trying to backward through the graph a second time (through ",
           node_name, "); the saved tensors were freed. Pass retain_graph=True the first time.");
  TG_CHECK(data.storage().version == version, RuntimeError,
           "backward: one of the tensors needed for gradient computation has been modified by an in-place operation: "
           "a tensor of shape ", shape_str(data.shape()), " saved by ", node_name, " is at version ",
           data.storage().version, "; expected version ", version);
  if (!is_output) return data;
  Tensor t = alias_of(data);
  t.impl()->grad_fn = grad_fn.lock();
  t.impl()->output_nr = output_nr;
  return t;
}

bool should_record(std::initializer_list<const Tensor*> inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}
bool should_record(const TensorList& inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

Edge gradient_edge(const Tensor& t) {
  TensorImpl* impl = t.get();
  if (impl->grad_fn && impl->view_base && impl->view_version != impl->storage->version)
    refresh_view_history(t);
  if (impl->grad_fn) return {impl->grad_fn, impl->output_nr};
  if (!impl->requires_grad) return {};
  // Two threads recording ops on one leaf at once must find the same accumulator.
  static std::mutex accumulator_mutex;
  std::lock_guard<std::mutex> lock(accumulator_mutex);
  std::shared_ptr<Node> acc = impl->grad_accumulator.lock();
  if (!acc) {
    auto node = std::make_shared<AccumulateGrad>();
    node->name = "AccumulateGrad";
    node->variable = t.impl();
    node->input_meta.push_back({impl->shape, impl->dtype});
    impl->grad_accumulator = node;
    acc = node;
  }
  return {acc, 0};
}

void record(const char* name, const TensorList& inputs, const TensorList& outputs, const TensorList& saved,
            BackwardFn backward) {
  auto node = std::make_shared<Node>();
  node->name = name;
  node->num_outputs = static_cast<uint32_t>(outputs.size());
  for (const Tensor& out : outputs) node->output_meta.push_back({out.defined() ? out.shape() : Shape{}, out.defined() ? out.dtype() : DType::Float32});
  node->next_edges.reserve(inputs.size());
  node->input_meta.reserve(inputs.size());
  for (const Tensor& in : inputs) {
    if (in.defined() && in.requires_grad()) {
      node->next_edges.push_back(gradient_edge(in));
      node->input_meta.push_back({in.shape(), in.dtype()});
    } else {
      node->next_edges.push_back({});
      node->input_meta.push_back({in.defined() ? in.shape() : Shape{}, in.defined() ? in.dtype() : DType::Float32});
    }
  }
  node->saved.reserve(saved.size());
  for (const Tensor& s : saved) {
    SavedTensor st;
    if (!s.defined()) {
      node->saved.push_back(st);
      continue;
    }
    st.version = s.storage().version;
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (outputs[i].same(s)) {
        st.is_output = true;
        st.output_nr = static_cast<uint32_t>(i);
        st.grad_fn = node;
      }
    }
    st.data = st.is_output ? alias_of(s) : s;
    node->saved.push_back(std::move(st));
  }
  node->backward = std::move(backward);
  if (AnomalyMode::is_enabled()) node->forward_trace = AnomalyMode::current_trace();
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (!outputs[i].defined() || !is_floating(outputs[i].dtype())) continue;
    outputs[i].impl()->grad_fn = node;
    outputs[i].impl()->output_nr = static_cast<uint32_t>(i);
  }
}

}  // namespace tg
