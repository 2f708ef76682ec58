// Ordering: sort, argsort, topk, kthvalue, median, mode and unique, all from one kernel, the
// backend's stable argsort of contiguous rows. Values are gathered at the sorted positions, so
// each op's gradient is gather's (scatter_add to the chosen elements), on every device.
#include "autograd/grad_mode.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace tg {

namespace {

// The stable sorting permutation along dim (int64, x's shape): dim moved last, rows made
// contiguous, sorted, moved back. bfloat16 sorts as float32 (the same order), bool as itself.
Tensor sort_positions(const Tensor& x, int64_t dim, bool descending) {
  GradModeGuard no_grad(false);
  const Tensor rows = contiguous(movedim(cast_untracked(x, compute_dtype(x.dtype())), {dim}, {-1}));
  Tensor positions = empty(rows.shape(), DType::Int64, x.device());
  const int64_t n = rows.dim() == 0 ? 1 : rows.size(-1);
  if (rows.numel() > 0)
    backend(x.device()).argsort_rows(rows.dtype(), rows.numel() / n, n, rows.raw_data(),
                                     static_cast<int64_t*>(positions.raw_data()), descending);
  return movedim(positions, {-1}, {dim});
}

// Runs `op` on x seen as >= 1-d (a 0-d tensor as one element) and gives 0-d results back.
template <class F>
TensorList on_lines(const Tensor& x, int64_t& dim, const char* name, F op) {
  check_same_device(name, {&x});
  if (x.dim() == 0) {
    wrap_dim(dim, 0, name);
    int64_t zero = 0;
    TensorList r = on_lines(reshape(x, {1}), zero, name, op);
    for (Tensor& t : r) t = t.dim() == 0 ? t : reshape(t, {});
    return r;
  }
  dim = wrap_dim(dim, x.dim(), name);
  return op(x, dim);
}

// The position `at` (keepdim shape: size 1 on dim) of each sorted line: {values, indices}.
TensorList pick(const Tensor& x, int64_t dim, const Tensor& sorted, const Tensor& at, bool keepdim) {
  const Tensor index = gather(sorted, dim, at);
  Tensor values = gather(x, dim, index);
  if (keepdim) return {values, index};
  return {squeeze(values, {dim}), squeeze(index, {dim})};
}

Tensor constant_index(const Tensor& like, int64_t dim, int64_t value) {
  Shape s = like.shape();
  s[static_cast<size_t>(dim)] = 1;
  return full(s, double(value), DType::Int64, like.device());
}

}  // namespace

TensorList sort(const Tensor& x, int64_t dim, bool descending) {
  return on_lines(x, dim, "sort", [&](const Tensor& x, int64_t dim) {
    const Tensor index = sort_positions(x, dim, descending);
    return TensorList{gather(x, dim, index), index};
  });
}

Tensor argsort(const Tensor& x, int64_t dim, bool descending) {
  return on_lines(x, dim, "argsort", [&](const Tensor& x, int64_t dim) {
    return TensorList{sort_positions(x, dim, descending)};
  })[0];
}

// topk: the k largest (smallest) along dim, in order (a full sort, then the first k)
TensorList topk(const Tensor& x, int64_t k, int64_t dim, bool largest) {
  return on_lines(x, dim, "topk", [&](const Tensor& x, int64_t dim) {
    TG_CHECK(k >= 0 && k <= x.size(dim), IndexError, "topk: k = ", k, " is out of range for dim ", dim, " of shape ",
             shape_str(x.shape()));
    const Tensor index = narrow(sort_positions(x, dim, largest), dim, 0, k);
    return TensorList{gather(x, dim, index), index};
  });
}

// kthvalue: the k-th smallest along dim (k from 1)
TensorList kthvalue(const Tensor& x, int64_t k, int64_t dim, bool keepdim) {
  return on_lines(x, dim, "kthvalue", [&](const Tensor& x, int64_t dim) {
    TG_CHECK(k >= 1 && k <= x.size(dim), IndexError, "kthvalue: k = ", k, " is out of range for dim ", dim, " of shape ",
             shape_str(x.shape()));
    return pick(x, dim, sort_positions(x, dim, false), constant_index(x, dim, k - 1), keepdim);
  });
}

// median: the lower median, element (n - 1) / 2 of the sorted line; a line with a NaN gives NaN
// (NaN sorts last: the first NaN sits at position count(not NaN))
TensorList median(const Tensor& x, int64_t dim, bool keepdim) {
  return on_lines(x, dim, "median", [&](const Tensor& x, int64_t dim) {
    const int64_t n = x.size(dim);
    TG_CHECK(n > 0, IndexError, "median: cannot take the median of an empty dim (dim ", dim, " of shape ",
             shape_str(x.shape()), ")");
    Tensor at = constant_index(x, dim, (n - 1) / 2);
    if (is_floating(x.dtype())) {
      GradModeGuard no_grad(false);
      const Tensor numbers = sum(eq(x, x), {dim}, true);  // int64, how many are not NaN
      at = where(lt(numbers, wrap_scalar(double(n), numbers)), numbers, at);
    }
    return pick(x, dim, sort_positions(x, dim, false), at, keepdim);
  });
}

// mode: the most frequent value of each line, the smallest among equally frequent ones, and the
// position of its last occurrence (PyTorch's). On the sorted line, runs of equal values are
// counted by scatter_add; the best run ends at (running count up to it) - 1.
TensorList mode(const Tensor& x, int64_t dim, bool keepdim) {
  return on_lines(x, dim, "mode", [&](const Tensor& x, int64_t dim) {
    const int64_t n = x.size(dim);
    TG_CHECK(n > 0, IndexError, "mode: cannot take the mode of an empty dim (dim ", dim, " of shape ", shape_str(x.shape()), ")");
    Tensor sorted_at, end;
    {
      GradModeGuard no_grad(false);
      sorted_at = sort_positions(x, dim, false);
      const Tensor s = gather(detach(x), dim, sorted_at);
      const Tensor starts_run = cat({full(constant_index(x, dim, 0).shape(), 1.0, DType::Bool, x.device()),
                                     ne(narrow(s, dim, 1, n - 1), narrow(s, dim, 0, n - 1))}, dim);
      const Tensor run = cumsum(starts_run, dim) - 1.0;  // the run of each sorted element
      const Tensor counts = scatter_add(zeros(x.shape(), DType::Int64, x.device()), dim, run, ones_like(run));
      const Tensor best = argmax(counts, dim, true);  // the first of the most frequent runs
      end = gather(cumsum(counts, dim), dim, best) - 1.0;
    }
    return pick(x, dim, sorted_at, end, keepdim);
  });
}

// unique: the distinct values of the flattened tensor in ascending order, each element's place
// among them (inverse, x's shape) and how often each occurs; no gradient
TensorList unique(const Tensor& x) {
  check_same_device("unique", {&x});
  GradModeGuard no_grad(false);
  const Tensor flat = reshape(detach(x), {-1});
  const int64_t n = flat.numel();
  if (n == 0) return {flat, zeros(x.shape(), DType::Int64, x.device()), zeros({0}, DType::Int64, x.device())};
  const Tensor order = sort_positions(flat, 0, false);
  const Tensor s = gather(flat, 0, order);
  const Tensor starts_run =
      cat({ones({1}, DType::Bool, x.device()), ne(narrow(s, 0, 1, n - 1), narrow(s, 0, 0, n - 1))}, 0);
  const Tensor run = cumsum(starts_run, 0) - 1.0;
  const Tensor starts = reshape(nonzero(starts_run), {-1});
  const Tensor values = index_select(s, 0, starts);
  const Tensor inverse = reshape(index_add(zeros({n}, DType::Int64, x.device()), 0, order, run), x.shape());
  const Tensor counts = index_add(zeros({values.numel()}, DType::Int64, x.device()), 0, run, ones_like(run));
  return {values, inverse, counts};
}

// unique over a dim: the distinct slices along dim in lexicographic order (their elements read in
// row-major order), each slice's place among them and how often each occurs. The slices, flattened
// to rows, are ordered by stable sorts on each column from the last to the first (a radix sort
// whose digits are columns), so equal rows end up side by side.
TensorList unique_dim(const Tensor& x, int64_t dim) {
  check_same_device("unique", {&x});
  TG_CHECK(x.dim() > 0, ShapeError, "unique: a 0-d tensor has no dim ", dim);
  dim = wrap_dim(dim, x.dim(), "unique");
  GradModeGuard no_grad(false);
  const Tensor moved = movedim(detach(x), {dim}, {0});
  const int64_t n = moved.size(0), m = n == 0 ? 0 : moved.numel() / n;
  const Tensor rows = reshape(contiguous(moved), {n, m});
  Tensor order = arange(0, double(n), 1, DType::Int64, x.device());
  for (int64_t c = m - 1; c >= 0; --c) {
    const Tensor column = index_select(narrow(rows, 1, c, 1), 0, order);
    order = index_select(order, 0, reshape(sort_positions(column, 0, false), {-1}));
  }
  const Tensor sorted_rows = index_select(rows, 0, order);
  Tensor starts_run = ones({std::min<int64_t>(n, 1)}, DType::Bool, x.device());
  if (n > 1)
    starts_run = cat({starts_run, any(ne(narrow(sorted_rows, 0, 1, n - 1), narrow(sorted_rows, 0, 0, n - 1)), {1})}, 0);
  const Tensor run = cumsum(starts_run, 0) - 1.0;
  const Tensor starts = reshape(nonzero(starts_run), {-1});
  Shape out_shape = moved.shape();
  out_shape[0] = starts.numel();
  const Tensor values = movedim(reshape(index_select(sorted_rows, 0, starts), out_shape), {0}, {dim});
  const Tensor inverse = index_add(zeros({n}, DType::Int64, x.device()), 0, order, run);
  const Tensor counts = index_add(zeros({starts.numel()}, DType::Int64, x.device()), 0, run, ones_like(run));
  return {values, inverse, counts};
}

}  // namespace tg
