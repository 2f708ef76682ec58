// Anomaly detection (tg.autograd.detect_anomaly). While it is on, every node recorded keeps the
// place in the user's Python code where its forward op ran, and the engine checks the gradients
// each node returns: a NaN or inf raises RuntimeError naming the backward node, the forward op and
// that place; an error raised inside a backward formula gets the place appended. It costs a stack
// capture per recorded op and one pass over every gradient, so it is off by default. Per thread,
// as grad mode is.
#pragma once
#include <string>

#include "core/error.h"
#include "core/tensor.h"

namespace tg {

struct Node;

struct AnomalyMode {
  static bool is_enabled();
  static bool check_nan();
  static void set_enabled(bool enabled, bool check_nan = true);

  // The bindings supply the function that describes where the forward is (the Python stack);
  // the core knows no Python.
  using TraceFn = std::string (*)();
  static void set_trace_provider(TraceFn fn);
  static std::string current_trace();
};

// "MulBackward" -> "mul": the forward op a backward node belongs to.
std::string forward_op_name(const char* backward_name);

// After `node` returned `grads`: raises RuntimeError if one holds a NaN or inf.
void check_gradients_finite(const Node& node, const TensorList& grads);

// Appends to `e`'s message where `node`'s forward ran (the caller rethrows it, type unchanged).
void add_forward_trace(Error& e, const Node& node);

}  // namespace tg
