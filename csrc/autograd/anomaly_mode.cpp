#include "autograd/anomaly_mode.h"

#include <cctype>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "ops/ops.h"

namespace tg {

namespace {
thread_local bool anomaly_enabled = false;
thread_local bool anomaly_check_nan = true;
AnomalyMode::TraceFn trace_provider = nullptr;

std::string where_forward_ran(const Node& node) {
  if (node.forward_trace.empty())
    return "(its forward ran before anomaly detection was turned on, so where is not known)";
  return "Its forward op, " + forward_op_name(node.name) + ", ran at (most recent call last):\n" + node.forward_trace;
}
}  // namespace

bool AnomalyMode::is_enabled() { return anomaly_enabled; }
bool AnomalyMode::check_nan() { return anomaly_check_nan; }
void AnomalyMode::set_enabled(bool enabled, bool check_nan) {
  anomaly_enabled = enabled;
  anomaly_check_nan = check_nan;
}
void AnomalyMode::set_trace_provider(TraceFn fn) { trace_provider = fn; }
std::string AnomalyMode::current_trace() { return trace_provider ? trace_provider() : std::string(); }

std::string forward_op_name(const char* backward_name) {
  std::string name(backward_name);
  const std::string suffix = "Backward";
  if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
    name.resize(name.size() - suffix.size());
  std::string snake;
  for (size_t i = 0; i < name.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(name[i]);
    if (std::isupper(c) && i > 0 && !std::isupper(static_cast<unsigned char>(name[i - 1]))) snake += '_';
    snake += static_cast<char>(std::tolower(c));
  }
  return snake;
}

void check_gradients_finite(const Node& node, const TensorList& grads) {
  GradModeGuard no_record(false);
  for (size_t i = 0; i < grads.size(); ++i) {
    const Tensor& g = grads[i];
    if (!g.defined() || !is_floating(g.dtype()) || g.numel() == 0) continue;
    if (all(isfinite(g)).item<bool>()) continue;
    const bool has_nan = any(isnan(g)).item<bool>();
    throw RuntimeError(str("backward: ", node.name, " returned ", has_nan ? "nan" : "inf", " values in the gradient ",
                           "of its input ", i, " (shape ", shape_str(g.shape()), "). ", where_forward_ran(node)));
  }
}

void add_forward_trace(Error& e, const Node& node) {
  e.append(str("\n\nDuring the backward of ", node.name, ". ", where_forward_ran(node)));
}

}  // namespace tg
