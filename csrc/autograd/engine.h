// The backward pass, entirely in C++.
#pragma once
#include "core/tensor.h"

namespace tg {

// Accumulates d(roots)/d(leaf) * grad_roots into the .grad of every leaf that requires grad.
void backward(const TensorList& roots, const TensorList& grad_roots, bool retain_graph, bool create_graph);

// Returns d(roots)/d(inputs) * grad_roots without touching any .grad.
TensorList grad(const TensorList& roots, const TensorList& grad_roots, const TensorList& inputs, bool retain_graph,
                bool create_graph, bool allow_unused);

// A fused op's create_graph backward: the vector-Jacobian product of `references` (the op's
// composite reference, computed in ordinary ops from `inputs`) with `grad_outputs` (undefined:
// that output gets no gradient), itself recorded, so it differentiates again. Inputs the reference
// does not use get an undefined gradient.
TensorList grad_through_reference(const TensorList& references, const TensorList& grad_outputs,
                                  const TensorList& inputs);

}  // namespace tg
