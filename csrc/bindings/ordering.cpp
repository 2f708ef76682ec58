// Products, running reductions and ordering, with PyTorch's signatures: ops that give values and
// indices return named tuples (torch.return_types), so both `r.values` and `v, i = r` work.
#include "bindings/convert.h"
#include "ops/ops.h"

namespace py = pybind11;

namespace tg {

namespace {
// The `dtype=` of prod / cumsum / cumprod: the input is converted first, as PyTorch does.
Tensor as_dtype(const Tensor& x, const std::optional<DType>& dtype) { return dtype ? to_dtype(x, *dtype) : x; }
}  // namespace

void bind_ordering(py::module_& m) {
  TensorClass cls = py::reinterpret_borrow<TensorClass>(m.attr("Tensor"));
  auto both = [&](const char* name, auto&& f, auto... extra) { bind_function_and_method(m, cls, name, f, extra...); };

  both("prod", [](const Tensor& x, std::optional<int64_t> dim, bool keepdim, std::optional<DType> dtype) {
    return prod(as_dtype(x, dtype), dim, keepdim);
  }, py::arg("dim") = py::none(), py::arg("keepdim") = false, py::kw_only(), py::arg("dtype") = py::none());
  both("cumsum", [](const Tensor& x, int64_t dim, std::optional<DType> dtype) { return cumsum(as_dtype(x, dtype), dim); },
       py::arg("dim"), py::kw_only(), py::arg("dtype") = py::none());
  both("cumprod", [](const Tensor& x, int64_t dim, std::optional<DType> dtype) { return cumprod(as_dtype(x, dtype), dim); },
       py::arg("dim"), py::kw_only(), py::arg("dtype") = py::none());
  both("logcumsumexp", &logcumsumexp, py::arg("dim"));
  for (bool is_max : {true, false}) {
    const char* name = is_max ? "cummax" : "cummin";
    both(name, [is_max, type = result_type(name, {"values", "indices"})](const Tensor& x, int64_t dim) {
      const TensorList r = cumulative_extreme(x, dim, is_max);
      return type(r[0], r[1]);
    }, py::arg("dim"));
  }

  // `stable` is accepted and always holds: the sort is stable.
  both("sort", [type = result_type("sort", {"values", "indices"})](const Tensor& x, int64_t dim, bool descending, bool) {
    const TensorList r = sort(x, dim, descending);
    return type(r[0], r[1]);
  }, py::arg("dim") = -1, py::arg("descending") = false, py::kw_only(), py::arg("stable") = false);
  both("argsort", [](const Tensor& x, int64_t dim, bool descending, bool) { return argsort(x, dim, descending); },
       py::arg("dim") = -1, py::arg("descending") = false, py::kw_only(), py::arg("stable") = false);
  both("msort", [](const Tensor& x) { return sort(x, 0)[0]; });
  // `sorted` is accepted and always holds: the k come out in order.
  both("topk", [type = result_type("topk", {"values", "indices"})](const Tensor& x, int64_t k, int64_t dim, bool largest,
                                                                  bool) {
    const TensorList r = topk(x, k, dim, largest);
    return type(r[0], r[1]);
  }, py::arg("k"), py::arg("dim") = -1, py::arg("largest") = true, py::arg("sorted") = true);
  both("kthvalue", [type = result_type("kthvalue", {"values", "indices"})](const Tensor& x, int64_t k, int64_t dim,
                                                                          bool keepdim) {
    const TensorList r = kthvalue(x, k, dim, keepdim);
    return type(r[0], r[1]);
  }, py::arg("k"), py::arg("dim") = -1, py::arg("keepdim") = false);
  // median: of everything, a tensor; over a dim, (values, indices)
  both("median", [type = result_type("median", {"values", "indices"})](const Tensor& x, const py::object& dim,
                                                                      bool keepdim) -> py::object {
    if (dim.is_none()) return py::cast(median(reshape(x, {-1}), 0, false)[0]);
    const TensorList r = median(x, dim.cast<int64_t>(), keepdim);
    return type(r[0], r[1]);
  }, py::arg("dim") = py::none(), py::arg("keepdim") = false);
  both("mode", [type = result_type("mode", {"values", "indices"})](const Tensor& x, int64_t dim, bool keepdim) {
    const TensorList r = mode(x, dim, keepdim);
    return type(r[0], r[1]);
  }, py::arg("dim") = -1, py::arg("keepdim") = false);
  // unique: the sorted distinct values of the flattened tensor, with the inverse and the counts
  // on request (a tuple then, as PyTorch); with a dim, the distinct slices along it. `sorted=False`
  // gives them sorted too (PyTorch's CPU does the same).
  both("unique", [](const Tensor& x, bool, bool return_inverse, bool return_counts, const py::object& dim) -> py::object {
    const TensorList r = dim.is_none() ? unique(x) : unique_dim(x, dim.cast<int64_t>());
    if (!return_inverse && !return_counts) return py::cast(r[0]);
    py::list out;
    out.append(r[0]);
    if (return_inverse) out.append(r[1]);
    if (return_counts) out.append(r[2]);
    return py::tuple(out);
  }, py::arg("sorted") = true, py::arg("return_inverse") = false, py::arg("return_counts") = false, py::arg("dim") = py::none());
}

}  // namespace tg
