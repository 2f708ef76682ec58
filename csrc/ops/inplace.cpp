// In-place writes: `x += y`, `x[i] = v`, copy_, fill_. Each writes into x's storage and bumps
// its version, so that a backward which saved x before the write raises instead of using the
// new values. When the write must be recorded (x or the value requires grad), the result is first
// computed out of place with its own backward node, then copied in, and x's history is rebased
// onto that node -- x is from then on the output of the write. When x is a view, the tensor it
// views is rebased as well (rebase_view_history), so gradients through either see the write.
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "autograd/view_history.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace tg {

namespace {

void check_not_leaf(const Tensor& x, const char* op) {
  TG_CHECK(!(x.is_leaf() && x.requires_grad()), RuntimeError, op, ": a leaf tensor that requires grad (shape ",
           shape_str(x.shape()), ") cannot be modified in place while grad mode is on; wrap the update in "
           "tg.no_grad() or work on a clone");
  const Tensor base(x.impl()->view_base);
  TG_CHECK(!(base.defined() && base.is_leaf() && base.requires_grad()), RuntimeError, op, ": the tensor of shape ",
           shape_str(x.shape()), " is a view of a leaf tensor that requires grad; such a view cannot be modified in "
           "place while grad mode is on (wrap the update in tg.no_grad() or work on a clone)");
}

void check_castable(const Tensor& x, const Tensor& src, const char* op) {
  DType r = result_type(x, src);
  TG_CHECK(category(r) <= category(x.dtype()), TypeError, op, ": result type ", dtype_name(r),
           " cannot be cast to the tensor's dtype ", dtype_name(x.dtype()), " in place");
}

void commit(const Tensor& x, const Tensor& result, const char* op) {
  write_into(x, result, op);
  x.bump_version();
  if (result.grad_fn() && GradMode::is_enabled()) {
    if (x.impl()->view_base) {  // the write changed the viewed tensor too
      rebase_view_history(x, result, op);
      return;
    }
    x.impl()->grad_fn = result.grad_fn();
    x.impl()->output_nr = result.impl()->output_nr;
  }
}

template <class F>
void inplace(const Tensor& x, const Tensor& src, const char* op, F f) {
  check_castable(x, src, op);
  if (should_record({&x, &src})) {
    check_not_leaf(x, op);
    commit(x, f(clone(x), src), op);  // the clone keeps the old values the backward may need
  } else {
    GradModeGuard no_grad(false);
    commit(x, f(x, src), op);
  }
}

// y = x with y[items] = value; dx = dy with the written region zeroed, dvalue = dy[items]
Tensor index_write(const Tensor& x, const std::vector<IndexItem>& items, const Tensor& value) {
  Tensor y = clone(detach(x));
  write_into(basic_index(y, items), value, "setitem");
  if (should_record({&x, &value}))
    record("SetitemBackward", {x, value}, {y}, {}, [items](const BackwardContext& c, const TensorList& g) {
      Tensor region = basic_index(g[0], items);
      return TensorList{c.needs_grad(0) ? g[0] - view_scatter(region, c.input_shape(0), items) : Tensor(),
                        c.needs_grad(1) ? region : Tensor()};
    });
  return y;
}

}  // namespace

void add_(const Tensor& dst, const Tensor& src, double alpha) {
  inplace(dst, src, "add_", [alpha](const Tensor& a, const Tensor& b) { return alpha == 1.0 ? add(a, b) : add(a, b * alpha); });
}
void sub_(const Tensor& dst, const Tensor& src) { inplace(dst, src, "sub_", [](const Tensor& a, const Tensor& b) { return sub(a, b); }); }
void mul_(const Tensor& dst, const Tensor& src) { inplace(dst, src, "mul_", [](const Tensor& a, const Tensor& b) { return mul(a, b); }); }
void div_(const Tensor& dst, const Tensor& src) { inplace(dst, src, "div_", [](const Tensor& a, const Tensor& b) { return div(a, b); }); }

// copy_ is the one in-place op that crosses devices (as PyTorch's): the source is moved first.
void copy_(const Tensor& dst, const Tensor& src_in) {
  const Tensor src = src_in.device() == dst.device() ? src_in : to_device(src_in, dst.device());
  if (should_record({&dst, &src})) {
    check_not_leaf(dst, "copy_");
    std::vector<IndexItem> all;  // x[...] = src
    all.push_back(IndexItem{IndexItem::Ellipsis});
    commit(dst, index_write(dst, all, src), "copy_");
  } else {
    write_into(dst, src, "copy_");
    dst.bump_version();
  }
}

void fill_(const Tensor& dst, double value) { copy_(dst, scalar_tensor(value, dst.dtype(), false, dst.device())); }

void setitem_(const Tensor& x, const std::vector<IndexItem>& items, const Tensor& value) {
  if (should_record({&x, &value})) {
    check_not_leaf(x, "setitem");
    commit(x, index_write(x, items, value), "setitem");
    return;
  }
  Tensor region;
  {
    GradModeGuard no_grad(false);
    region = basic_index(x, items);
  }
  write_into(region, value, "setitem");
  x.bump_version();
}

void index_put_(const Tensor& x, const std::vector<std::optional<Tensor>>& indices, const Tensor& values) {
  if (should_record({&x, &values})) check_not_leaf(x, "setitem");
  commit(x, index_put(x, indices, values), "setitem");
}

}  // namespace tg
