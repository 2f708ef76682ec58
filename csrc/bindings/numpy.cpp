// Tensors <-> NumPy arrays, sharing memory both ways on the CPU.
#include <cmath>

#include "bindings/convert.h"
#include "ops/ops.h"

namespace py = pybind11;

namespace tg {

DType dtype_from_numpy(const py::dtype& dt) {
  const char kind = dt.kind();
  const ssize_t size = dt.itemsize();
  if (kind == 'b') return DType::Bool;
  if (kind == 'f' && size == 2) return DType::Float16;
  if (kind == 'f' && size == 4) return DType::Float32;
  if (kind == 'f' && size == 8) return DType::Float64;
  if (kind == 'i' && size == 8) return DType::Int64;
  if (kind == 'i' && size == 4) return DType::Int32;
  if (kind == 'i' && size == 2) return DType::Int16;
  if (kind == 'i' && size == 1) return DType::Int8;
  if (kind == 'u' && size == 1) return DType::UInt8;
  throw TypeError(str("from_numpy: unsupported NumPy dtype ", std::string(py::str(dt)),
                      "; tapegrad has float16, float32, float64, int8, int16, int32, int64, uint8 and bool"));
}

py::dtype numpy_dtype(DType d) {
  switch (d) {
    case DType::Bool: return py::dtype::of<bool>();
    case DType::Int64: return py::dtype::of<int64_t>();
    case DType::Float32: return py::dtype::of<float>();
    case DType::Float64: return py::dtype::of<double>();
    case DType::Int32: return py::dtype::of<int32_t>();
    case DType::Int16: return py::dtype::of<int16_t>();
    case DType::Int8: return py::dtype::of<int8_t>();
    case DType::UInt8: return py::dtype::of<uint8_t>();
    case DType::Float16: return py::dtype("float16");
    case DType::BFloat16: break;  // NumPy has no bfloat16: to_numpy converts to float32 first
  }
  return py::dtype::of<float>();
}

Tensor from_numpy(const py::array& a) {
  DType dtype = dtype_from_numpy(a.dtype());
  const int64_t isz = itemsize(dtype);
  Shape shape, strides;
  for (ssize_t d = 0; d < a.ndim(); ++d) {
    shape.push_back(a.shape(d));
    TG_CHECK(a.strides(d) >= 0 && a.strides(d) % isz == 0, ValueError,
             "from_numpy: arrays with negative or unaligned strides cannot be shared; pass a copy (np.ascontiguousarray)");
    strides.push_back(a.strides(d) / isz);
  }
  py::object keep = a;  // the storage holds a reference to the array; released under the GIL
  return from_blob(const_cast<void*>(a.data()), std::move(shape), std::move(strides), dtype, Device{},
                   [](void*, void* o) {
                     py::gil_scoped_acquire gil;
                     Py_DECREF(static_cast<PyObject*>(o));
                   },
                   keep.release().ptr());
}

py::array to_numpy(const Tensor& t) {
  if (t.dtype() == DType::BFloat16) {  // NumPy has no bfloat16: an exact float32 copy
    Tensor widened;
    {
      py::gil_scoped_release nogil;
      widened = to_dtype(detach(t), DType::Float32);
    }
    return to_numpy(widened);
  }
  if (!t.device().is_cpu()) {  // a host copy (waits for the device); it shares no memory with t
    Tensor host;
    {
      py::gil_scoped_release nogil;
      host = to_device(detach(t), Device{});
    }
    return to_numpy(host);
  }
  const int64_t isz = itemsize(t.dtype());
  std::vector<ssize_t> shape(t.shape().begin(), t.shape().end()), strides;
  for (int64_t s : t.strides()) strides.push_back(static_cast<ssize_t>(s * isz));
  auto* keep = new std::shared_ptr<Storage>(t.impl()->storage);
  py::capsule owner(keep, [](void* p) { delete static_cast<std::shared_ptr<Storage>*>(p); });
  return py::array(numpy_dtype(t.dtype()), shape, strides, t.raw_data(), owner);
}

Tensor wrap(const Scalar& s, const Tensor& like) {
  // Next to bfloat16 a float stays float32 (the compute dtype), so it is not rounded before the op;
  // as a wrapped number it still does not promote the result past bfloat16.
  DType d = s.category <= category(like.dtype()) ? compute_dtype(like.dtype()) : default_of_category(s.category);
  // On a device the value is written by a fill kernel (no host-to-device copy that could wait for
  // the stream); an int64 beyond 2^53, which a double cannot hold, is built on the host and copied.
  const bool exact = s.category != 1 || std::fabs(s.value) < 9007199254740992.0;
  Tensor t = like.device().is_cpu() || !exact ? scalar_to_tensor(s, d) : full({}, s.value, d, like.device());
  if (t.device() != like.device()) t = to_device(t, like.device());
  t.impl()->is_wrapped_number = true;
  return t;
}

Tensor scalar_to_tensor(const Scalar& s, std::optional<DType> dtype) {
  DType d = dtype ? *dtype : default_of_category(s.category);
  Tensor t = full({}, s.value, d);
  if (s.category == 1 && d == DType::Int64) *t.data<int64_t>() = s.int_value;
  return t;
}

}  // namespace tg
