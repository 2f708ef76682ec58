// DLPack: tensors handed to and taken from NumPy, PyTorch, JAX, CuPy, ... without a copy.
//
// A producer's __dlpack__ returns a PyCapsule holding a managed DLTensor: the data pointer, device,
// dtype, shape and strides (in elements), and a deleter the consumer calls when it is done. The
// consumer renames the capsule "used_..."; a capsule dropped unconsumed calls the deleter itself.
// Two layouts exist: "dltensor" (DLManagedTensor, before DLPack 1.0) and "dltensor_versioned"
// (DLManagedTensorVersioned, with a version and flags such as read-only), given to consumers that
// ask for max_version >= (1, 0) (NumPy marks arrays from the old layout read-only). The structs are
// DLPack's ABI, written out from the specification.
#include <cstring>

#include "bindings/convert.h"
#include "kernels/backend.h"
#include "ops/ops.h"

namespace py = pybind11;

namespace tg {

namespace {

struct DLDevice {
  int32_t device_type;
  int32_t device_id;
};
struct DLDataType {
  uint8_t code;
  uint8_t bits;
  uint16_t lanes;
};
struct DLTensor {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;  // in elements; null means C-contiguous
  uint64_t byte_offset;
};
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);
};
struct DLPackVersion {
  uint32_t major;
  uint32_t minor;
};
struct DLManagedTensorVersioned {
  DLPackVersion version;
  void* manager_ctx;
  void (*deleter)(DLManagedTensorVersioned* self);
  uint64_t flags;  // bit 0: read-only, bit 1: a copy
  DLTensor dl_tensor;
};
enum : int32_t { kDLCPU = 1, kDLCUDA = 2, kDLCUDAHost = 3 };
enum : uint8_t { kDLInt = 0, kDLUInt = 1, kDLFloat = 2, kDLBfloat = 4, kDLBool = 6 };

DLDataType dl_dtype(DType d) {
  const uint8_t bits = static_cast<uint8_t>(8 * itemsize(d));
  switch (d) {
    case DType::Bool: return {kDLBool, 8, 1};
    case DType::UInt8: return {kDLUInt, 8, 1};
    case DType::BFloat16: return {kDLBfloat, 16, 1};
    default: return {is_floating(d) ? kDLFloat : kDLInt, bits, 1};
  }
}

DType tapegrad_dtype(DLDataType t) {
  TG_CHECK(t.lanes == 1, TypeError, "from_dlpack: vector dtypes (lanes = ", t.lanes, ") are not supported");
  switch (t.code) {
    case kDLBool: if (t.bits == 8) return DType::Bool; break;
    case kDLUInt: if (t.bits == 8) return DType::UInt8; break;
    case kDLBfloat: if (t.bits == 16) return DType::BFloat16; break;
    case kDLFloat:
      if (t.bits == 16) return DType::Float16;
      if (t.bits == 32) return DType::Float32;
      if (t.bits == 64) return DType::Float64;
      break;
    case kDLInt:
      if (t.bits == 8) return DType::Int8;
      if (t.bits == 16) return DType::Int16;
      if (t.bits == 32) return DType::Int32;
      if (t.bits == 64) return DType::Int64;
      break;
  }
  const char* kinds[] = {"int", "uint", "float", "opaque handle", "bfloat", "complex", "bool"};
  throw TypeError(str("from_dlpack: unsupported DLPack dtype ", t.code < 7 ? kinds[t.code] : "code " + std::to_string(t.code),
                      int(t.bits), " (tapegrad has bool, uint8, int8 to int64, float16, bfloat16, float32, float64)"));
}

// What an exported capsule keeps alive: the tensor (so its storage) and the shape / strides arrays;
// one of the two managed structs is handed out.
struct Export {
  DLManagedTensor managed;
  DLManagedTensorVersioned versioned;
  Tensor tensor;
  std::vector<int64_t> shape, strides;
};

template <class Managed>
void delete_export(Managed* m) { delete static_cast<Export*>(m->manager_ctx); }

// A capsule dropped before a consumer took it (still under its own name) frees the export.
template <class Managed>
void capsule_destructor(PyObject* capsule) {
  const char* name = std::is_same_v<Managed, DLManagedTensor> ? "dltensor" : "dltensor_versioned";
  if (!PyCapsule_IsValid(capsule, name)) return;  // consumed: the consumer calls the deleter
  auto* m = static_cast<Managed*>(PyCapsule_GetPointer(capsule, name));
  if (m && m->deleter) m->deleter(m);
}

// A taken tensor's release: the producer's deleter, under the GIL (producers free Python objects).
template <class Managed>
void release_managed(void*, void* context) {
  auto* m = static_cast<Managed*>(context);
  py::gil_scoped_acquire gil;
  if (m->deleter) m->deleter(m);
}

}  // namespace

py::tuple dlpack_device(const Tensor& t) {
  return py::make_tuple(int32_t(t.device().is_cpu() ? kDLCPU : kDLCUDA), int32_t(t.device().is_cpu() ? 0 : t.device().index));
}

// __dlpack__: a capsule viewing t's memory, versioned when the consumer takes DLPack 1.0. A GPU
// tensor's queued writes finish first (the consumer may read it on any stream).
py::capsule to_dlpack(const Tensor& t, bool versioned, bool copied) {
  if (!t.device().is_cpu() && gpu_runtime()) gpu_runtime()->synchronize();
  auto* e = new Export{};
  e->tensor = t;
  e->shape.assign(t.shape().begin(), t.shape().end());
  e->strides.assign(t.strides().begin(), t.strides().end());
  const DLDevice device{t.device().is_cpu() ? kDLCPU : kDLCUDA, t.device().is_cpu() ? 0 : t.device().index};
  const DLTensor view{t.raw_data(), device, static_cast<int32_t>(t.dim()), dl_dtype(t.dtype()), e->shape.data(),
                      e->strides.data(), 0};
  PyObject* capsule;
  if (versioned) {
    e->versioned = {{1, 0}, e, &delete_export<DLManagedTensorVersioned>, copied ? uint64_t(2) : uint64_t(0), view};
    capsule = PyCapsule_New(&e->versioned, "dltensor_versioned", &capsule_destructor<DLManagedTensorVersioned>);
  } else {
    e->managed = {view, e, &delete_export<DLManagedTensor>};
    capsule = PyCapsule_New(&e->managed, "dltensor", &capsule_destructor<DLManagedTensor>);
  }
  if (!capsule) {
    delete e;
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::capsule>(capsule);
}

// from_dlpack: a tensor over the producer's memory; the producer's deleter runs when the last
// tensor viewing it is gone.
Tensor from_dlpack(const py::object& obj) {
  py::object capsule = obj;
  if (py::hasattr(obj, "__dlpack__")) {
    try {  // a DLPack 1.0 producer hands over the versioned layout; an older one does not know the keyword
      capsule = obj.attr("__dlpack__")(py::arg("max_version") = py::make_tuple(1, 0));
    } catch (const py::error_already_set& e) {
      if (!e.matches(PyExc_TypeError)) throw;
      capsule = obj.attr("__dlpack__")();
    }
  }
  const bool versioned = PyCapsule_IsValid(capsule.ptr(), "dltensor_versioned");
  TG_CHECK(versioned || PyCapsule_IsValid(capsule.ptr(), "dltensor"), TypeError,
           "from_dlpack: expected an object with __dlpack__ or an unused DLPack capsule, got ", python_type_name(obj));
  void* managed = PyCapsule_GetPointer(capsule.ptr(), versioned ? "dltensor_versioned" : "dltensor");
  const DLTensor& dl = versioned ? static_cast<DLManagedTensorVersioned*>(managed)->dl_tensor
                                 : static_cast<DLManagedTensor*>(managed)->dl_tensor;
  if (versioned)
    TG_CHECK(static_cast<DLManagedTensorVersioned*>(managed)->version.major == 1, TypeError,
             "from_dlpack: DLPack version ", static_cast<DLManagedTensorVersioned*>(managed)->version.major,
             " is not supported (1 is)");
  const DType dtype = tapegrad_dtype(dl.dtype);
  Device device;
  if (dl.device.device_type == kDLCUDA) {
    TG_CHECK(gpu_runtime(), TypeError, "from_dlpack: a CUDA tensor, but this tapegrad was built without CUDA");
    device = Device{DeviceType::CUDA, dl.device.device_id};
  } else {
    TG_CHECK(dl.device.device_type == kDLCPU || dl.device.device_type == kDLCUDAHost, TypeError,
             "from_dlpack: unsupported DLPack device type ", dl.device.device_type, " (tapegrad takes CPU and CUDA)");
  }
  Shape shape(dl.shape, dl.shape + dl.ndim), strides(static_cast<size_t>(dl.ndim));
  for (int64_t d = dl.ndim - 1, step = 1; d >= 0; --d) {
    strides[static_cast<size_t>(d)] = dl.strides ? dl.strides[d] : step;
    step *= shape[static_cast<size_t>(d)];
  }
  for (size_t d = 0; d < shape.size(); ++d)
    TG_CHECK(strides[d] >= 0, ValueError, "from_dlpack: negative strides are not supported (shape ", shape_str(shape), ")");
  Tensor t = from_blob(static_cast<char*>(dl.data) + dl.byte_offset, std::move(shape), std::move(strides), dtype, device,
                       versioned ? &release_managed<DLManagedTensorVersioned> : &release_managed<DLManagedTensor>,
                       managed);
  PyCapsule_SetName(capsule.ptr(), versioned ? "used_dltensor_versioned" : "used_dltensor");
  return t;
}

void bind_dlpack(py::module_& m) {
  TensorClass cls = py::reinterpret_borrow<TensorClass>(m.attr("Tensor"));
  // The keywords of the DLPack protocol: max_version >= (1, 0) gets the versioned capsule; a GPU
  // tensor is synchronised first whatever the stream; copy=True hands over a copy.
  cls.def("__dlpack__", [](const Tensor& t, const py::object&, const py::object& max_version, const py::object&,
                           const py::object& copy) {
    const bool versioned = !max_version.is_none() && max_version.cast<std::pair<int, int>>().first >= 1;
    const bool copied = !copy.is_none() && copy.cast<bool>();
    return to_dlpack(copied ? clone(detach(t)) : t, versioned, copied);
  }, py::kw_only(), py::arg("stream") = py::none(), py::arg("max_version") = py::none(), py::arg("dl_device") = py::none(),
     py::arg("copy") = py::none());
  cls.def("__dlpack_device__", &dlpack_device);
  m.def("from_dlpack", &from_dlpack, py::arg("ext_tensor"),
        "A tensor sharing the memory of any DLPack producer (NumPy, PyTorch, JAX, ...), or of a capsule.");
}

}  // namespace tg
