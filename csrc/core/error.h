// Exceptions of the core. Each maps to one Python exception type (bindings/errors.cpp), so the
// C++ core never includes pybind11 and a bad input never aborts the interpreter.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace tg {

// Every exception of the core derives from Error, so the bindings catch them in one place. A
// handler on the way may add to the message and rethrow with `throw;`, which keeps the type
// (anomaly detection adds where the failing backward's forward ran).
struct Error : std::exception {
  explicit Error(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }
  void append(const std::string& note) { message_ += note; }

 private:
  std::string message_;
};
struct ValueError : Error { using Error::Error; };
// Shapes that do not fit the op (broadcasting, matmul, reshape, cat, permute, ...). Python sees
// tapegrad.ShapeError, a subclass of both ValueError and RuntimeError: `except ValueError` reads
// naturally, and code written for PyTorch (which raises RuntimeError) keeps working.
struct ShapeError : ValueError { using ValueError::ValueError; };
struct TypeError : Error { using Error::Error; };
struct IndexError : Error { using Error::Error; };
struct RuntimeError : Error { using Error::Error; };
struct MemoryError : Error { using Error::Error; };
struct NotImplementedError : Error { using Error::Error; };
struct ZeroDivisionError : Error { using Error::Error; };  // integer division by zero
// The device allocator could not find memory even after returning its cache to the driver.
struct CudaOutOfMemoryError : RuntimeError { using RuntimeError::RuntimeError; };

namespace detail {
inline void concat(std::ostringstream&) {}
template <class T, class... R>
void concat(std::ostringstream& os, const T& first, const R&... rest) {
  os << first;
  concat(os, rest...);
}
}  // namespace detail

template <class... Args>
std::string str(const Args&... args) {
  std::ostringstream os;
  detail::concat(os, args...);
  return os.str();
}

}  // namespace tg

// TG_CHECK(cond, ShapeError, "add: shapes ", a, " and ", b, " do not broadcast")
#define TG_CHECK(cond, Err, ...)                   \
  do {                                             \
    if (!(cond)) throw ::tg::Err(::tg::str(__VA_ARGS__)); \
  } while (0)
