// Conversions between Python objects and the core: tensors (bound through their shared
// TensorImpl, so one C++ tensor is one Python object), Python numbers, NumPy arrays.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "core/tensor.h"

namespace tg {

// "<class 'str'>": how an error message names the type of a Python value it cannot use.
inline std::string python_type_name(pybind11::handle h) { return pybind11::str(pybind11::type::handle_of(h)); }

// The sizes of `op(*sizes)` or `op(sizes)`: ints, or one tuple or list of them.
inline Shape shape_of(const pybind11::args& args, const char* op) {
  Shape s;
  if (args.size() == 1 && (pybind11::isinstance<pybind11::tuple>(args[0]) || pybind11::isinstance<pybind11::list>(args[0])))
    s = args[0].cast<Shape>();
  else
    for (auto a : args) {
      TG_CHECK(PyIndex_Check(a.ptr()), TypeError, op, ": sizes must be ints, got ", python_type_name(a));
      s.push_back(a.cast<int64_t>());
    }
  return s;
}

// The sizes of a new tensor: shape_of's, with no negative size and a count that fits in int64.
inline Shape new_shape_of(const pybind11::args& args, const char* op) {
  Shape s = shape_of(args, op);
  check_shape(s, op);
  return s;
}
// The same from one `size` argument: an int or a sequence of ints.
inline Shape new_shape_of(const pybind11::object& size, const char* op) {
  Shape s = pybind11::isinstance<pybind11::int_>(size) ? Shape{size.cast<int64_t>()} : size.cast<Shape>();
  check_shape(s, op);
  return s;
}

// A `dim` argument: None (every dim), an int, or a tuple or list of ints.
inline std::vector<int64_t> dims_of(const pybind11::object& dim) {
  if (dim.is_none()) return {};
  if (pybind11::isinstance<pybind11::tuple>(dim) || pybind11::isinstance<pybind11::list>(dim)) return dim.cast<std::vector<int64_t>>();
  return {dim.cast<int64_t>()};
}

// A Python number: its value and its category (0 bool, 1 int, 2 float).
struct Scalar {
  double value = 0;
  int64_t int_value = 0;
  int category = 2;
};

// The wrapped 0-d tensor for `s` next to `like`: it takes like's dtype when that already holds
// s's category, else the default dtype of s's category (so `int_tensor * 0.5` is float32).
Tensor wrap(const Scalar& s, const Tensor& like);
Tensor scalar_to_tensor(const Scalar& s, std::optional<DType> dtype);
// The other operand of a binary op next to `self`: a tensor, a Python/NumPy number (wrapped), or
// a NumPy array; nullopt for anything else.
std::optional<Tensor> other_operand(const Tensor& self, const pybind11::object& o);

DType dtype_from_numpy(const pybind11::dtype& dt);
pybind11::dtype numpy_dtype(DType d);
// A tensor sharing the array's memory (the tensor keeps a reference to the array).
Tensor from_numpy(const pybind11::array& a);
// A NumPy array sharing the tensor's memory (the array keeps the storage alive).
pybind11::array to_numpy(const Tensor& t);

// Releases the GIL while a kernel runs over more than a few thousand elements; below that the
// release costs more than it frees. Nothing in its scope may touch a Python object.
struct MaybeNoGIL {
  explicit MaybeNoGIL(int64_t work) : release(work > 16384) {
    if (release) state = PyEval_SaveThread();
  }
  ~MaybeNoGIL() {
    if (release) PyEval_RestoreThread(state);
  }
  bool release;
  PyThreadState* state = nullptr;
};

void bind_errors(pybind11::module_& m);
// Sets the Python error for a caught C++ exception (for code that runs outside pybind11's
// dispatcher, like the number slots).
void set_python_error(std::exception_ptr p);
// The Python type tapegrad.cuda.OutOfMemoryError (a subclass of RuntimeError).
PyObject* cuda_out_of_memory_error();
void bind_tensor(pybind11::module_& m);
void bind_functions(pybind11::module_& m);
void bind_autograd(pybind11::module_& m);
void bind_optim(pybind11::module_& m);
void bind_cuda(pybind11::module_& m);
void bind_lstm(pybind11::module_& m);
void bind_conv(pybind11::module_& m);
void bind_ordering(pybind11::module_& m);
void bind_dlpack(pybind11::module_& m);

// ---- publishing an op ----
using TensorClass = pybind11::class_<TensorImpl, std::shared_ptr<TensorImpl>>;

// Binds f as the module function `name` (taking the tensor as `input`) and as the Tensor method
// (taking it as self). The name joins _C._functions, which tapegrad/__init__.py re-exports:
// binding an op is all it takes to publish it.
template <class F, class... Extra>
void bind_function_and_method(pybind11::module_& m, TensorClass& cls, const char* name, F&& f, const Extra&... extra) {
  m.def(name, f, pybind11::arg("input"), extra...);
  cls.def(name, f, extra...);
  if (!pybind11::hasattr(m, "_functions")) m.attr("_functions") = pybind11::list();
  m.attr("_functions").cast<pybind11::list>().append(name);
}

// A named tuple type of tensors, as torch.return_types (values, indices), built once per op.
inline pybind11::object result_type(const char* name, std::initializer_list<const char*> fields) {
  pybind11::tuple names(fields.size());
  size_t k = 0;
  for (const char* f : fields) names[k++] = pybind11::str(f);
  return pybind11::module_::import("collections").attr("namedtuple")(name, names);
}

}  // namespace tg

namespace pybind11::detail {

template <>
struct type_caster<tg::Tensor> {
  PYBIND11_TYPE_CASTER(tg::Tensor, const_name("Tensor"));
  bool load(handle src, bool convert) {
    copyable_holder_caster<tg::TensorImpl, std::shared_ptr<tg::TensorImpl>> c;
    if (src.is_none() || !c.load(src, convert)) return false;
    value = tg::Tensor(static_cast<std::shared_ptr<tg::TensorImpl>&>(c));
    return true;
  }
  static handle cast(const tg::Tensor& t, return_value_policy, handle) {
    if (!t.defined()) return none().release();
    return copyable_holder_caster<tg::TensorImpl, std::shared_ptr<tg::TensorImpl>>::cast(
        t.impl(), return_value_policy::take_ownership, handle());
  }
};

template <>
struct type_caster<tg::Scalar> {
  PYBIND11_TYPE_CASTER(tg::Scalar, const_name("float | int | bool"));
  bool load(handle src, bool convert) {
    PyObject* o = src.ptr();
    if (PyBool_Check(o)) {
      value = {o == Py_True ? 1.0 : 0.0, o == Py_True ? 1 : 0, 0};
      return true;
    }
    if (PyLong_Check(o)) {
      int overflow = 0;
      long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
      if (overflow) return false;
      value = {static_cast<double>(v), static_cast<int64_t>(v), 1};
      return true;
    }
    if (PyFloat_Check(o)) {
      value = {PyFloat_AsDouble(o), 0, 2};
      return true;
    }
    if (!convert) return false;
    // NumPy scalars (np.float32(2), np.int64(3), np.bool_(True)) keep their category.
    static PyObject* numpy_generic = object(module_::import("numpy").attr("generic")).release().ptr();  // lives forever
    if (PyObject_IsInstance(o, numpy_generic) == 1) return load(src.attr("item")(), false);
    return false;
  }
  static handle cast(const tg::Scalar& s, return_value_policy, handle) {
    if (s.category == 0) return bool_(s.value != 0).release();
    if (s.category == 1) return int_(s.int_value).release();
    return float_(s.value).release();
  }
};

}  // namespace pybind11::detail
