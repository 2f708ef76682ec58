// The Tensor class as Python sees it: attributes, operators, indexing and methods. Docstrings
// sit with each binding; the math lives in csrc/ops.
#include "autograd/engine.h"
#include "autograd/node.h"
#include "bindings/convert.h"
#include "bindings/indexing.h"
#include "ops/ops.h"

namespace py = pybind11;

namespace tg {

// The other operand of a binary operator: a tensor, a Python number or a NumPy array.
std::optional<Tensor> other_operand(const Tensor& self, const py::object& o) {
  if (py::isinstance<TensorImpl>(o)) return o.cast<Tensor>();
  py::detail::make_caster<Scalar> sc;
  if (sc.load(o, true)) return wrap(py::detail::cast_op<Scalar>(sc), self);
  if (py::isinstance<py::array>(o))  // asarray keeps a 0-d array 0-d (ascontiguousarray would not)
    return from_numpy(py::module_::import("numpy").attr("asarray")(o, py::arg("order") = "C"));
  return std::nullopt;
}

namespace {

using BinaryFn = Tensor (*)(const Tensor&, const Tensor&);

// Binds `name` and its reflected form. The (Tensor, Tensor) overload comes first: it is the
// fast path. Anything else is converted; what cannot be returns NotImplemented.
void bind_binary(py::class_<TensorImpl, std::shared_ptr<TensorImpl>>& cls, const char* name, const char* rname,
                 BinaryFn fn) {
  cls.def(name, [fn](const Tensor& a, const Tensor& b) {
    MaybeNoGIL nogil(std::max(a.numel(), b.numel()));
    return fn(a, b);
  });
  cls.def(name, [fn](const Tensor& a, const py::object& b) -> py::object {
    auto t = other_operand(a, b);
    if (!t) return py::reinterpret_borrow<py::object>(Py_NotImplemented);
    return py::cast(fn(a, *t));
  });
  if (rname)
    cls.def(rname, [fn](const Tensor& a, const py::object& b) -> py::object {
      auto t = other_operand(a, b);
      if (!t) return py::reinterpret_borrow<py::object>(Py_NotImplemented);
      return py::cast(fn(*t, a));
    });
}

using InplaceFn = void (*)(const Tensor&, const Tensor&);
void bind_inplace(py::class_<TensorImpl, std::shared_ptr<TensorImpl>>& cls, const char* dunder, const char* method,
                  InplaceFn fn) {
  auto impl = [fn](const Tensor& a, const py::object& b) {
    auto t = other_operand(a, b);
    TG_CHECK(t.has_value(), TypeError, "in-place operation: unsupported operand type ", python_type_name(b));
    MaybeNoGIL nogil(a.numel());
    fn(a, *t);
    return a;
  };
  cls.def(dunder, impl);
  cls.def(method, impl);
}

// Number slots for tensor (op) tensor. Python calls these directly for `a + b`; taking the
// tensor-tensor case here, before pybind11's overload dispatcher, roughly halves the cost of
// an op on a small tensor. Every other operand falls through to the bound __add__/__radd__.
PyTypeObject* tensor_type = nullptr;

// The bound dunder methods, for every case but tensor (op) tensor. (pybind11's own slot cannot
// be kept as the fallback: CPython's generic slot refuses to run once the slot is replaced.)
struct SlotNames {
  const char* name;
  const char* reflected;
};

template <BinaryFn fn, const SlotNames& names>
PyObject* fast_slot(PyObject* a, PyObject* b) {
  const bool a_is = PyObject_TypeCheck(a, tensor_type), b_is = PyObject_TypeCheck(b, tensor_type);
  // Python numbers next to a tensor are also common (x * 2 + 1): wrap them here too.
  const bool a_num = !a_is && (PyFloat_CheckExact(a) || PyLong_CheckExact(a));
  const bool b_num = !b_is && (PyFloat_CheckExact(b) || PyLong_CheckExact(b));
  if ((a_is || a_num) && (b_is || b_num)) {
    try {
      Tensor x, y;
      if (a_is) x = py::handle(a).cast<Tensor>();
      if (b_is) y = py::handle(b).cast<Tensor>();
      if (a_num) x = wrap(py::handle(a).cast<Scalar>(), y);
      if (b_num) y = wrap(py::handle(b).cast<Scalar>(), x);
      Tensor r;
      {
        MaybeNoGIL nogil(std::max(x.numel(), y.numel()));
        r = fn(x, y);
      }
      return py::cast(r).release().ptr();
    } catch (...) {
      set_python_error(std::current_exception());
      return nullptr;
    }
  }
  if (a_is) return PyObject_CallMethod(a, names.name, "O", b);
  return PyObject_CallMethod(b, names.reflected, "O", a);
}

constexpr SlotNames kAdd{"__add__", "__radd__"}, kSub{"__sub__", "__rsub__"}, kMul{"__mul__", "__rmul__"},
    kDiv{"__truediv__", "__rtruediv__"}, kMatmul{"__matmul__", "__rmatmul__"};

Tensor move_to(const Tensor& t, const std::string& device) {
  const Device d = Device::parse(device);
  if (d == t.device()) return t;
  py::gil_scoped_release nogil;  // a copy to the host waits for the device
  return tg::to_device(t, d);
}

}  // namespace

void bind_tensor(py::module_& m) {
  py::class_<Node, std::shared_ptr<Node>>(m, "Node", "A node of the backward graph (a tensor's grad_fn).")
      .def("name", [](const Node& n) { return std::string(n.name); })
      // For pictures of the graph (tg.viz): what the forward made, what backward keeps, the leaf.
      .def_property_readonly("_outputs", [](const Node& n) {
        py::list out;
        for (const InputMeta& m : n.output_meta) out.append(py::make_tuple(py::tuple(py::cast(m.shape)), m.dtype));
        return out;
      })
      .def_property_readonly("_saved", [](const Node& n) {
        py::list out;
        for (const SavedTensor& s : n.saved)
          if (s.data.defined()) out.append(py::make_tuple(py::tuple(py::cast(s.data.shape())), s.data.dtype()));
        return out;
      })
      .def_property_readonly("variable", [](const Node& n) -> py::object {
        auto* acc = dynamic_cast<const AccumulateGrad*>(&n);
        return acc ? py::cast(Tensor(acc->variable)) : py::none();
      })
      .def_property_readonly("next_functions", [](const Node& n) {
        py::list out;
        for (const Edge& e : n.next_edges) out.append(py::make_tuple(e.fn ? py::cast(e.fn) : py::none(), e.input_nr));
        return py::tuple(out);
      })
      .def("__repr__", [](const Node& n) { return str("<", n.name, ">"); });

  py::enum_<DType> dtype_cls(m, "dtype", "Element type of a tensor.");
  dtype_cls.value("float32", DType::Float32)
      .value("float64", DType::Float64)
      .value("bfloat16", DType::BFloat16)
      .value("float16", DType::Float16)
      .value("int64", DType::Int64)
      .value("int32", DType::Int32)
      .value("int16", DType::Int16)
      .value("int8", DType::Int8)
      .value("uint8", DType::UInt8)
      .value("bool", DType::Bool)
      .def_property_readonly("is_floating_point", [](DType d) { return is_floating(d); })
      .def_property_readonly("itemsize", [](DType d) { return itemsize(d); })
      .def_property_readonly("is_signed", [](DType d) { return d != DType::Bool && d != DType::UInt8; });
  // Replaced, not overloaded: enum_ already defines __repr__/__str__, and its own would win.
  for (const char* name : {"__repr__", "__str__"})
    dtype_cls.attr(name) = py::cpp_function([](DType d) { return str("tapegrad.", dtype_name(d)); }, py::name(name),
                                            py::is_method(dtype_cls));

  py::class_<Device>(m, "device", "A device: 'cpu' or 'cuda:N'.")
      .def(py::init([](const std::string& s) { return Device::parse(s); }))
      .def_property_readonly("type", [](const Device& d) { return d.is_cpu() ? "cpu" : "cuda"; })
      .def_property_readonly("index", [](const Device& d) -> py::object {
        return d.is_cpu() ? py::none() : py::cast(d.index);
      })
      .def("__str__", &Device::str)
      .def("__repr__", [](const Device& d) { return str("device(type='", d.is_cpu() ? "cpu" : "cuda", "'",
                                                         d.is_cpu() ? "" : str(", index=", d.index), ")"); })
      .def("__eq__", [](const Device& a, const Device& b) { return a == b; })
      .def("__eq__", [](const Device& a, const std::string& b) { return a == Device::parse(b); })
      .def("__hash__", [](const Device& d) { return static_cast<int>(d.type) * 1000 + d.index; });

  auto cls = py::class_<TensorImpl, std::shared_ptr<TensorImpl>>(m, "Tensor",
      "An n-dimensional array with reverse-mode autodiff. Create tensors with tapegrad.tensor(), zeros(), randn(), ...");

  // Tensor(other): an alias sharing other's storage, without history (used by nn.Parameter).
  cls.def(py::init([](const Tensor& other, bool requires_grad) {
            Tensor t = alias_of(other);
            t.set_requires_grad(requires_grad);
            return t.impl();
          }),
          py::arg("data"), py::arg("requires_grad") = false);

  cls.def_property_readonly("shape", [](const Tensor& t) { return py::tuple(py::cast(t.shape())); })
      .def("size", [](const Tensor& t, const py::object& dim) -> py::object {
        if (dim.is_none()) return py::tuple(py::cast(t.shape()));
        return py::cast(t.size(dim.cast<int64_t>()));
      }, py::arg("dim") = py::none())
      .def_property_readonly("ndim", [](const Tensor& t) { return t.dim(); })
      .def("dim", [](const Tensor& t) { return t.dim(); })
      .def("numel", [](const Tensor& t) { return t.numel(); })
      .def_property_readonly("dtype", [](const Tensor& t) { return t.dtype(); })
      .def_property_readonly("device", [](const Tensor& t) { return t.device(); })
      .def_property_readonly("is_cuda", [](const Tensor& t) { return !t.device().is_cpu(); })
      .def("stride", [](const Tensor& t) { return py::tuple(py::cast(t.strides())); })
      .def("storage_offset", [](const Tensor& t) { return t.offset(); })
      .def("is_contiguous", [](const Tensor& t) { return t.is_contiguous(); })
      .def("element_size", [](const Tensor& t) { return itemsize(t.dtype()); })
      .def("data_ptr", [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.raw_data()); })
      .def("_version", [](const Tensor& t) { return t.storage().version; })
      .def("is_floating_point", [](const Tensor& t) { return is_floating(t.dtype()); });

  // ---- autograd ----
  cls.def_property("requires_grad", [](const Tensor& t) { return t.requires_grad(); }, [](const Tensor& t, bool r) { t.set_requires_grad(r); })
      .def("requires_grad_", [](const Tensor& t, bool r) {
        t.set_requires_grad(r);
        return t;
      }, py::arg("requires_grad") = true)
      .def_property("grad", [](const Tensor& t) { return t.grad(); }, [](const Tensor& t, const std::optional<Tensor>& g) { t.set_grad(g ? *g : Tensor()); })
      .def_property_readonly("is_leaf", [](const Tensor& t) { return t.is_leaf(); })
      .def_property_readonly("grad_fn", [](const Tensor& t) { return t.grad_fn(); })
      .def("detach", &detach, "A tensor sharing this one's data, without autograd history.")
      .def("detach_", [](const Tensor& t) {
        t.impl()->grad_fn = nullptr;
        t.impl()->requires_grad = false;
        return t;
      })
      .def_property("data", &detach, [](const Tensor& t, const Tensor& src) {
        TG_CHECK(src.shape() == t.shape() && src.dtype() == t.dtype(), ShapeError, "data: the new data must have shape ",
                 shape_str(t.shape()), " and dtype ", dtype_name(t.dtype()));
        t.impl()->storage = src.impl()->storage;
        t.impl()->strides = src.strides();
        t.impl()->offset = src.offset();
      })
      .def("backward", [](const Tensor& t, const std::optional<Tensor>& gradient, bool retain_graph, bool create_graph) {
        py::gil_scoped_release nogil;
        backward({t}, {gradient ? *gradient : Tensor()}, retain_graph, create_graph);
      }, py::arg("gradient") = py::none(), py::arg("retain_graph") = false, py::arg("create_graph") = false,
         "Accumulates d(self)/d(leaf) into .grad of every leaf that requires grad.");

  // ---- conversion ----
  cls.def("numpy", &to_numpy, "A NumPy array sharing this tensor's memory. NumPy has no bfloat16: a bfloat16 "
          "tensor gives a float32 copy (exact, every bfloat16 value is a float32), which shares no memory.")
      .def("__array__", [](const Tensor& t, const py::object& dtype, const py::object& copy) -> py::object {
        py::object a = to_numpy(t);
        if (!dtype.is_none()) a = a.attr("astype")(dtype);
        else if (!copy.is_none() && copy.cast<bool>()) a = a.attr("copy")();
        return a;
      }, py::arg("dtype") = py::none(), py::arg("copy") = py::none())
      .def("item", [](const Tensor& t) -> py::object {
        switch (t.dtype()) {
          case DType::Bool: return py::bool_(t.item<bool>());
          default: return is_integer(t.dtype()) ? py::object(py::int_(t.item<int64_t>())) : py::object(py::float_(t.item<double>()));
        }
      })
      .def("tolist", [](const Tensor& t) { return to_numpy(t).attr("tolist")(); })
      .def("__len__", [](const Tensor& t) {
        TG_CHECK(t.dim() > 0, TypeError, "len() of a 0-d tensor");
        return t.shape()[0];
      })
      .def("__float__", [](const Tensor& t) { return t.item<double>(); })
      .def("__int__", [](const Tensor& t) { return t.item<int64_t>(); })
      .def("__bool__", [](const Tensor& t) {
        TG_CHECK(t.numel() == 1, RuntimeError, "bool: the truth value of a tensor with ", t.numel(),
                 " elements is ambiguous");
        return t.item<bool>();
      })
      .def("__index__", [](const Tensor& t) {
        TG_CHECK(is_integer(t.dtype()) && t.numel() == 1, TypeError, "only one-element integer tensors can be used as an index");
        return t.item<int64_t>();
      })
      .def("__hash__", [](const py::object& self) { return reinterpret_cast<intptr_t>(self.ptr()) >> 4; })
      .def("to", [](const Tensor& t, const py::object& target, const py::object& dtype) {
        Tensor out = t;
        if (py::isinstance<DType>(target)) out = to_dtype(out, target.cast<DType>());
        else if (py::isinstance<Device>(target)) out = move_to(out, target.cast<Device>().str());
        else if (!target.is_none()) out = move_to(out, target.cast<std::string>());
        if (!dtype.is_none()) out = to_dtype(out, dtype.cast<DType>());
        return out;
      }, py::arg("device") = py::none(), py::arg("dtype") = py::none())
      .def("cpu", [](const Tensor& t) { return move_to(t, "cpu"); })
      .def("cuda", [](const Tensor& t) { return move_to(t, "cuda"); })
      .def("float", [](const Tensor& t) { return to_dtype(t, DType::Float32); })
      .def("double", [](const Tensor& t) { return to_dtype(t, DType::Float64); })
      .def("bfloat16", [](const Tensor& t) { return to_dtype(t, DType::BFloat16); })
      .def("half", [](const Tensor& t) { return to_dtype(t, DType::Float16); })
      .def("long", [](const Tensor& t) { return to_dtype(t, DType::Int64); })
      .def("int", [](const Tensor& t) { return to_dtype(t, DType::Int32); })
      .def("short", [](const Tensor& t) { return to_dtype(t, DType::Int16); })
      .def("char", [](const Tensor& t) { return to_dtype(t, DType::Int8); })
      .def("byte", [](const Tensor& t) { return to_dtype(t, DType::UInt8); })
      .def("bool", [](const Tensor& t) { return to_dtype(t, DType::Bool); })
      .def("type", [](const Tensor& t, DType d) { return to_dtype(t, d); });

  // ---- operators ----
  bind_binary(cls, "__add__", "__radd__", &add);
  bind_binary(cls, "__sub__", "__rsub__", &sub);
  bind_binary(cls, "__mul__", "__rmul__", &mul);
  bind_binary(cls, "__truediv__", "__rtruediv__", &div);
  bind_binary(cls, "__pow__", "__rpow__", &pow);
  bind_binary(cls, "__floordiv__", "__rfloordiv__", &floor_divide);
  bind_binary(cls, "__mod__", "__rmod__", &remainder);
  bind_binary(cls, "__lshift__", "__rlshift__", &bitwise_left_shift);
  bind_binary(cls, "__rshift__", "__rrshift__", &bitwise_right_shift);
  bind_binary(cls, "__matmul__", "__rmatmul__", &matmul);
  bind_binary(cls, "__eq__", nullptr, &eq);
  bind_binary(cls, "__ne__", nullptr, &ne);
  bind_binary(cls, "__lt__", nullptr, &lt);
  bind_binary(cls, "__le__", nullptr, &le);
  bind_binary(cls, "__gt__", nullptr, &gt);
  bind_binary(cls, "__ge__", nullptr, &ge);
  bind_binary(cls, "__and__", "__rand__", &bitwise_and);
  bind_binary(cls, "__or__", "__ror__", &bitwise_or);
  bind_binary(cls, "__xor__", "__rxor__", &bitwise_xor);
  bind_inplace(cls, "__iadd__", "add_", [](const Tensor& a, const Tensor& b) { add_(a, b); });
  bind_inplace(cls, "__isub__", "sub_", &sub_);
  bind_inplace(cls, "__imul__", "mul_", &mul_);
  bind_inplace(cls, "__itruediv__", "div_", &div_);
  tensor_type = reinterpret_cast<PyTypeObject*>(cls.ptr());
  PyNumberMethods* num = tensor_type->tp_as_number;
  num->nb_add = &fast_slot<&add, kAdd>;
  num->nb_subtract = &fast_slot<&sub, kSub>;
  num->nb_multiply = &fast_slot<&mul, kMul>;
  num->nb_true_divide = &fast_slot<&div, kDiv>;
  num->nb_matrix_multiply = &fast_slot<&matmul, kMatmul>;
  PyType_Modified(tensor_type);
  cls.def("__neg__", &neg)
      .def("__abs__", &abs)
      .def("__invert__", &bitwise_not)
      .def("__pos__", [](const Tensor& t) { return t; });

  // ---- indexing ----
  cls.def("__getitem__", [](const Tensor& t, const py::object& key) { return getitem(t, key); })
      .def("__setitem__", [](const Tensor& t, const py::object& key, const py::object& value) {
        auto v = other_operand(t, value);
        TG_CHECK(v.has_value(), TypeError, "setitem: cannot assign a value of type ", python_type_name(value));
        setitem(t, key, *v);
      });

  // ---- in-place ----
  cls.def("zero_", [](const Tensor& t) { fill_(t, 0); return t; })
      .def("fill_", [](const Tensor& t, double v) { fill_(t, v); return t; })
      .def("copy_", [](const Tensor& t, const Tensor& src) { copy_(t, src); return t; })
      .def("clamp_", [](const Tensor& t, std::optional<double> lo, std::optional<double> hi) {
        copy_(t, clamp(t, lo, hi));
        return t;
      }, py::arg("min") = py::none(), py::arg("max") = py::none());

  // ---- shape ----
  cls.def("reshape", [](const Tensor& t, const py::args& s) { return reshape(t, shape_of(s, "reshape")); })
      .def("view", [](const Tensor& t, const py::args& s) { return view(t, shape_of(s, "view")); })
      .def("expand", [](const Tensor& t, const py::args& s) { return expand(t, shape_of(s, "expand")); })
      .def("broadcast_to", [](const Tensor& t, const Shape& s) { return expand(t, s); })
      .def("permute", [](const Tensor& t, const py::args& s) { return permute(t, shape_of(s, "permute")); })
      .def("transpose", &transpose)
      .def_property_readonly("T", [](const Tensor& t) {
        Dims order;
        for (int64_t d = t.dim() - 1; d >= 0; --d) order.push_back(d);
        return permute(t, order);
      })
      .def_property_readonly("mT", [](const Tensor& t) { return transpose(t, -2, -1); })
      .def("unsqueeze", &unsqueeze)
      .def("squeeze", [](const Tensor& t, const py::object& dim) { return squeeze(t, dims_of(dim)); }, py::arg("dim") = py::none())
      .def("flatten", &flatten, py::arg("start_dim") = 0, py::arg("end_dim") = -1)
      .def("repeat", [](const Tensor& t, const py::args& reps) { return repeat(t, shape_of(reps, "repeat")); })
      .def("contiguous", &contiguous)
      .def("clone", &clone)
      .def("split", [](const Tensor& t, const py::object& size, int64_t dim) {
        if (py::isinstance<py::int_>(size)) return split(t, size.cast<int64_t>(), dim);
        return split(t, size.cast<std::vector<int64_t>>(), dim);
      }, py::arg("split_size_or_sections"), py::arg("dim") = 0)
      .def("chunk", &chunk, py::arg("chunks"), py::arg("dim") = 0)
      .def("narrow", &narrow)
      .def("unbind", [](const Tensor& t, int64_t dim) {
        TensorList out;
        for (const Tensor& part : split(t, 1, dim)) out.push_back(squeeze(part, {dim}));
        return out;
      }, py::arg("dim") = 0);
}

}  // namespace tg
