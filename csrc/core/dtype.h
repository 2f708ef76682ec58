// Element types and PyTorch's type-promotion rules.
#pragma once
#include <cstdint>
#include <string>

#include "core/bfloat16.h"
#include "core/float16.h"
#include "core/error.h"

namespace tg {

// The storage dtypes (compute_dtype(d) != d) hold values in fewer bits and compute in a wider
// type: bfloat16 (the top 16 bits of a float32) and float16 in float32, the small integers in
// int64 (which wraps the same way once the result is stored back).
enum class DType : uint8_t {
  Bool = 0, Int64 = 1, Float32 = 2, Float64 = 3, BFloat16 = 4, Int32 = 5, Int16 = 6, Int8 = 7, UInt8 = 8, Float16 = 9
};
constexpr int kNumDTypes = 10;

inline int64_t itemsize(DType d) {
  switch (d) {
    case DType::Bool: case DType::Int8: case DType::UInt8: return 1;
    case DType::Int16: case DType::BFloat16: case DType::Float16: return 2;
    case DType::Int32: case DType::Float32: return 4;
    case DType::Int64: case DType::Float64: return 8;
  }
  return 0;
}
inline const char* dtype_name(DType d) {
  switch (d) {
    case DType::Bool: return "bool";
    case DType::Int64: return "int64";
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::BFloat16: return "bfloat16";
    case DType::Int32: return "int32";
    case DType::Int16: return "int16";
    case DType::Int8: return "int8";
    case DType::UInt8: return "uint8";
    case DType::Float16: return "float16";
  }
  return "?";
}
inline bool is_floating(DType d) {
  return d == DType::Float32 || d == DType::Float64 || d == DType::BFloat16 || d == DType::Float16;
}
inline bool is_integer(DType d) { return !is_floating(d) && d != DType::Bool; }

// Category order bool < integer < floating: promotion never goes down a category.
inline int category(DType d) { return d == DType::Bool ? 0 : is_integer(d) ? 1 : 2; }

// Promotion rank: bool < uint8 < int8 < int16 < int32 < int64 < float16 < bfloat16 < float32 < float64.
inline int promotion_rank(DType d) {
  switch (d) {
    case DType::Bool: return 0;
    case DType::UInt8: return 1;
    case DType::Int8: return 2;
    case DType::Int16: return 3;
    case DType::Int32: return 4;
    case DType::Int64: return 5;
    case DType::Float16: return 6;
    case DType::BFloat16: return 7;
    case DType::Float32: return 8;
    case DType::Float64: return 9;
  }
  return 0;
}
// promote(a, b): PyTorch's table -- the higher rank, except that uint8 with int8 needs int16 (no
// 8-bit type holds both) and float16 with bfloat16 needs float32 (neither holds the other).
inline DType promote(DType a, DType b) {
  if ((a == DType::UInt8 && b == DType::Int8) || (a == DType::Int8 && b == DType::UInt8)) return DType::Int16;
  if ((a == DType::Float16 && b == DType::BFloat16) || (a == DType::BFloat16 && b == DType::Float16)) return DType::Float32;
  return promotion_rank(a) >= promotion_rank(b) ? a : b;
}

// The dtype kernels compute in (every other dtype computes in itself).
inline DType compute_dtype(DType d) {
  switch (d) {
    case DType::BFloat16: case DType::Float16: return DType::Float32;
    case DType::Int32: case DType::Int16: case DType::Int8: case DType::UInt8: return DType::Int64;
    default: return d;
  }
}
inline bool is_storage_only(DType d) { return compute_dtype(d) != d; }

// The default type of a Python number of that category (float -> float32, as PyTorch).
inline DType default_of_category(int cat) {
  return cat == 0 ? DType::Bool : cat == 1 ? DType::Int64 : DType::Float32;
}

// The C++ type a kernel computes in for element type T (compute_dtype's twin).
template <class T> struct compute_type { using type = T; };
template <> struct compute_type<bfloat16> { using type = float; };
template <> struct compute_type<float16> { using type = float; };
template <class T> using compute_t = typename compute_type<T>::type;

template <class T> struct dtype_of;
template <> struct dtype_of<bool> { static constexpr DType value = DType::Bool; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::Int64; };
template <> struct dtype_of<float> { static constexpr DType value = DType::Float32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::Float64; };
template <> struct dtype_of<bfloat16> { static constexpr DType value = DType::BFloat16; };
template <> struct dtype_of<float16> { static constexpr DType value = DType::Float16; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::Int32; };
template <> struct dtype_of<int16_t> { static constexpr DType value = DType::Int16; };
template <> struct dtype_of<int8_t> { static constexpr DType value = DType::Int8; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::UInt8; };

}  // namespace tg

// TG_DISPATCH_*(dtype, "op", [&](auto tag) { using T = decltype(tag); ... }): calls the lambda
// with a value of the C++ type of `dtype`, or raises TypeError naming the op for a dtype outside
// the set. The sets are X-macro lists, each built on the smaller one.
#define TG_FLOAT_TYPES(X, ...) X(Float32, float, __VA_ARGS__) X(Float64, double, __VA_ARGS__)
#define TG_INTEGER_TYPES(X, ...) X(Int64, int64_t, __VA_ARGS__)
#define TG_NUMERIC_TYPES(X, ...) TG_INTEGER_TYPES(X, __VA_ARGS__) TG_FLOAT_TYPES(X, __VA_ARGS__)
// Floating types with bfloat16 and float16 as their storage structs: for kernels that load each
// element, compute in compute_t<T> and store back rounded (the optimizer steps).
#define TG_FLOAT_STORAGE_TYPES(X, ...) \
  TG_FLOAT_TYPES(X, __VA_ARGS__) X(BFloat16, ::tg::bfloat16, __VA_ARGS__) X(Float16, ::tg::float16, __VA_ARGS__)
#define TG_ALL_TYPES(X, ...) X(Bool, bool, __VA_ARGS__) TG_NUMERIC_TYPES(X, __VA_ARGS__)
// Every dtype, the 16-bit floats as their storage structs: for kernels that only move, select or
// convert values (copy, fill, where, gather, item), which need no arithmetic in the storage dtypes.
#define TG_STORAGE_TYPES(X, ...)                                                                              \
  TG_ALL_TYPES(X, __VA_ARGS__) X(BFloat16, ::tg::bfloat16, __VA_ARGS__) X(Float16, ::tg::float16, __VA_ARGS__) \
  X(Int32, int32_t, __VA_ARGS__) X(Int16, int16_t, __VA_ARGS__) X(Int8, int8_t, __VA_ARGS__) X(UInt8, uint8_t, __VA_ARGS__)

#define TG_DISPATCH_CASE(ENUM, TYPE, ...) \
  case ::tg::DType::ENUM: return (__VA_ARGS__)(TYPE{});
#define TG_DISPATCH_OVER(TYPES, dt, name, expected, ...)                                        \
  [&] {                                                                                         \
    switch (dt) {                                                                               \
      TYPES(TG_DISPATCH_CASE, __VA_ARGS__)                                                      \
      default: break;                                                                           \
    }                                                                                           \
    throw ::tg::TypeError(::tg::str(name, expected, ::tg::dtype_name(dt)));                    \
  }()
#define TG_DISPATCH_ALL(dt, name, ...) TG_DISPATCH_OVER(TG_ALL_TYPES, dt, name, ": not supported for dtype ", __VA_ARGS__)
#define TG_DISPATCH_STORAGE(dt, name, ...) \
  TG_DISPATCH_OVER(TG_STORAGE_TYPES, dt, name, ": not supported for dtype ", __VA_ARGS__)
#define TG_DISPATCH_NUMERIC(dt, name, ...) \
  TG_DISPATCH_OVER(TG_NUMERIC_TYPES, dt, name, ": not supported for dtype ", __VA_ARGS__)
#define TG_DISPATCH_INTEGER(dt, name, ...) \
  TG_DISPATCH_OVER(TG_INTEGER_TYPES, dt, name, ": expected an integer tensor, got ", __VA_ARGS__)
#define TG_DISPATCH_FLOAT_STORAGE(dt, name, ...)                                                         \
  TG_DISPATCH_OVER(TG_FLOAT_STORAGE_TYPES, dt, name, ": expected a floating-point tensor, got ", __VA_ARGS__)
#define TG_DISPATCH_FLOAT(dt, name, ...) \
  TG_DISPATCH_OVER(TG_FLOAT_TYPES, dt, name, ": expected a floating-point tensor, got ", __VA_ARGS__)
