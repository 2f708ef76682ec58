// Python's indexing syntax -> basic views + advanced (integer / bool tensor) indexing.
#include "bindings/indexing.h"

#include "ops/ops.h"

namespace py = pybind11;

namespace tg {

namespace {

// An index tensor from a tensor, NumPy array, or list / tuple of ints or bools (a sequence inside
// an index is an integer index tensor, as in NumPy and PyTorch: x[(0, 1), :] is x[[0, 1], :]).
std::optional<Tensor> as_index_tensor(const py::handle& h) {
  if (py::isinstance<TensorImpl>(h)) return h.cast<Tensor>();
  if (py::isinstance<py::array>(h) || py::isinstance<py::list>(h) || py::isinstance<py::tuple>(h)) {
    py::array a = py::module_::import("numpy").attr("asarray")(h);
    // np.asarray(order="C"), not ascontiguousarray: that one turns a 0-d array into a 1-d one.
    py::object np = py::module_::import("numpy");
    if (a.dtype().kind() == 'b') return from_numpy(py::array(np.attr("asarray")(a, py::arg("order") = "C")));
    TG_CHECK(a.dtype().kind() == 'i' || a.dtype().kind() == 'u' || a.size() == 0, IndexError,
             "index: arrays used as indices must be of integer or bool type");
    return from_numpy(py::array(np.attr("asarray")(a, "int64", py::arg("order") = "C")));
  }
  return std::nullopt;
}

}  // namespace

ParsedIndex parse_index(const Tensor& self, const py::handle& key) {
  py::tuple items = py::isinstance<py::tuple>(key) ? py::reinterpret_borrow<py::tuple>(key) : py::make_tuple(key);
  ParsedIndex out;
  // Count the dims the key consumes, to size the ellipsis.
  int64_t consumed = 0;
  std::vector<std::optional<Tensor>> tensors(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    py::handle it = items[i];
    if (it.is_none() || it.ptr() == Py_Ellipsis) continue;
    if (py::isinstance<py::bool_>(it)) throw IndexError("index: a bool used as an index is not supported; use a bool tensor");
    if (PyIndex_Check(it.ptr()) && !py::isinstance<TensorImpl>(it) && !py::isinstance<py::array>(it)) {
      ++consumed;
      continue;
    }
    if (py::isinstance<py::slice>(it)) {
      ++consumed;
      continue;
    }
    tensors[i] = as_index_tensor(it);
    TG_CHECK(tensors[i].has_value(), IndexError, "index: unsupported index type ", python_type_name(it));
    Tensor& t = *tensors[i];
    if (t.dtype() == DType::Bool) consumed += t.dim();
    else if (t.dim() == 0 && t.dtype() == DType::Int64 && !py::isinstance<TensorImpl>(it)) ++consumed;
    else ++consumed;
  }
  int64_t result_dim = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    py::handle it = items[i];
    IndexItem item;
    if (it.is_none()) {
      item.kind = IndexItem::NewAxis;
      out.items.push_back(item);
      ++result_dim;
    } else if (it.ptr() == Py_Ellipsis) {
      item.kind = IndexItem::Ellipsis;
      out.items.push_back(item);
      result_dim += std::max<int64_t>(0, self.dim() - consumed);
    } else if (py::isinstance<py::slice>(it)) {
      item.kind = IndexItem::Slice;
      py::object start = it.attr("start"), stop = it.attr("stop"), step = it.attr("step");
      if (!start.is_none()) item.start = start.cast<int64_t>();
      if (!stop.is_none()) item.stop = stop.cast<int64_t>();
      if (!step.is_none()) item.step = step.cast<int64_t>();
      out.items.push_back(item);
      ++result_dim;
    } else if (!tensors[i]) {
      item.kind = IndexItem::Int;
      item.index = py::int_(py::reinterpret_borrow<py::object>(it)).cast<int64_t>();
      out.items.push_back(item);
    } else {
      Tensor t = *tensors[i];
      // Each dim an index tensor consumes is kept as ':' here and indexed afterwards.
      const int64_t k = t.dtype() == DType::Bool ? t.dim() : 1;
      if (t.dtype() == DType::Bool && t.dim() == 0) {
        // x[True] adds a dim of size 1, x[False] one of size 0.
        item.kind = IndexItem::NewAxis;
        out.items.push_back(item);
        out.advanced.resize(result_dim + 1);
        out.advanced[result_dim] = t.item<bool>() ? zeros({1}, DType::Int64) : empty({0}, DType::Int64);
        ++result_dim;
        continue;
      }
      if (t.dtype() == DType::Bool) {
        Tensor nz = nonzero(t);  // (n, k)
        out.advanced.resize(result_dim + k);
        for (int64_t j = 0; j < k; ++j) {
          out.advanced[result_dim + j] = reshape(contiguous(narrow(nz, 1, j, 1)), {-1});
          IndexItem s;
          s.kind = IndexItem::Slice;
          out.items.push_back(s);
        }
        // Bool masks check their shape against the dims they cover.
        out.mask_checks.push_back({result_dim, t.shape()});
        result_dim += k;
      } else {
        out.advanced.resize(result_dim + 1);
        out.advanced[result_dim] = t;
        IndexItem s;
        s.kind = IndexItem::Slice;
        out.items.push_back(s);
        ++result_dim;
      }
    }
  }
  return out;
}

Tensor getitem(const Tensor& self, const py::handle& key) {
  ParsedIndex p = parse_index(self, key);
  Tensor view = basic_index(self, p.items);
  check_masks(view, p);
  bool any = false;
  for (auto& a : p.advanced) any = any || a.has_value();
  return any ? advanced_index(view, p.advanced) : view;
}

void check_masks(const Tensor& view, const ParsedIndex& p) {
  for (const auto& [start, shape] : p.mask_checks) {
    for (size_t j = 0; j < shape.size(); ++j)
      TG_CHECK(start + static_cast<int64_t>(j) < view.dim() && view.shape()[start + j] == shape[j], IndexError,
               "index: the bool mask of shape ", shape_str(shape), " does not match the indexed dims of the tensor (shape ",
               shape_str(view.shape()), ")");
  }
}

void setitem(const Tensor& self, const py::handle& key, const Tensor& value) {
  ParsedIndex p = parse_index(self, key);
  bool any = false;
  for (auto& a : p.advanced) any = any || a.has_value();
  if (!any) {
    setitem_(self, p.items, value);
    return;
  }
  // Advanced assignment: express the whole key on self, then index_put_ into it.
  Tensor view = basic_index(detach(self), p.items);
  check_masks(view, p);
  if (view.shape() == self.shape() && view.strides() == self.strides() && view.offset() == self.offset()) {
    index_put_(self, p.advanced, value);
    return;
  }
  // The basic part selected a sub-view: write through it (no autograd rebase for this form).
  TG_CHECK(!(self.requires_grad()), RuntimeError, "setitem: combining slices and index tensors in one assignment is not "
           "differentiable; assign under tg.no_grad() or split the assignment");
  index_put_(view, p.advanced, value);
  self.bump_version();
}

}  // namespace tg
