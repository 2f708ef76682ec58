// C++ exceptions of the core -> Python exceptions of the same meaning.
#include "bindings/convert.h"
#include "core/error.h"

namespace py = pybind11;

namespace tg {

PyObject* cuda_out_of_memory_error() {
  // Created once, never freed: tapegrad.cuda.OutOfMemoryError, a RuntimeError (as torch's).
  static PyObject* type = PyErr_NewException("tapegrad.cuda.OutOfMemoryError", PyExc_RuntimeError, nullptr);
  return type;
}

PyObject* shape_error() {
  // Created once, never freed: tapegrad.ShapeError(ValueError, RuntimeError).
  static PyObject* type = PyErr_NewException("tapegrad.ShapeError",
                                             PyTuple_Pack(2, PyExc_ValueError, PyExc_RuntimeError), nullptr);
  return type;
}

void set_python_error(std::exception_ptr p) {
  try {
    std::rethrow_exception(p);
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (const CudaOutOfMemoryError& e) {
    PyErr_SetString(cuda_out_of_memory_error(), e.what());
  } catch (const ShapeError& e) {
    PyErr_SetString(shape_error(), e.what());
  } catch (const ValueError& e) {
    PyErr_SetString(PyExc_ValueError, e.what());
  } catch (const TypeError& e) {
    PyErr_SetString(PyExc_TypeError, e.what());
  } catch (const IndexError& e) {
    PyErr_SetString(PyExc_IndexError, e.what());
  } catch (const MemoryError& e) {
    PyErr_SetString(PyExc_MemoryError, e.what());
  } catch (const NotImplementedError& e) {
    PyErr_SetString(PyExc_NotImplementedError, e.what());
  } catch (const ZeroDivisionError& e) {
    PyErr_SetString(PyExc_ZeroDivisionError, e.what());
  } catch (const std::bad_alloc&) {
    PyErr_SetString(PyExc_MemoryError, "out of memory: the arguments ask for more memory than this machine can give");
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  } catch (...) {
    PyErr_SetString(PyExc_RuntimeError, "unknown C++ exception");
  }
}

void bind_errors(py::module_& m) {
  // Exceptions thrown under pybind11's dispatcher take the same mapping, a failed allocation
  // included (pybind11's own message for it would be "std::bad_alloc"); anything else not ours
  // (pybind11's cast errors) falls through to pybind11's default translation.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error&) {
      set_python_error(p);
    } catch (const std::bad_alloc&) {
      set_python_error(p);
    }
  });
  m.attr("ShapeError") = py::handle(shape_error());
}

}  // namespace tg
