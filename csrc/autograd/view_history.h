// How in-place writes reach the history of views (view_history.cpp).
#pragma once
#include "core/tensor.h"

namespace tg {

// After a recorded in-place write of `result` into `view` (a view of another tensor), makes the
// viewed tensor's history and the view's reflect the write.
void rebase_view_history(const Tensor& view, const Tensor& result, const char* op);
// Re-derives the history of a view made before a write through another view of its tensor.
void refresh_view_history(const Tensor& view);

}  // namespace tg
