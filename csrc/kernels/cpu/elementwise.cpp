// Elementwise kernels: one strided loop per arity, instantiated per (op, dtype).
#include <cstring>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"

namespace tg::cpu {

namespace {

// The contiguous inner loops (the common case), one per arity, SIMD-cloned.
template <UnaryOp op, class T, class Out>
TG_SIMD_CLONES void unary_contiguous(Out* o, const T* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) o[i] = static_cast<Out>(apply_unary<op>(x[i]));
}

// broadcast: 0 both operands advance, 1 b is one repeated value, 2 a is one repeated value
template <BinaryOp op, class T, class Out>
TG_SIMD_CLONES void binary_contiguous(Out* o, const T* x, const T* y, int64_t n, int broadcast) {
  if (broadcast == 0) {
    for (int64_t i = 0; i < n; ++i) o[i] = apply_binary<op>(x[i], y[i]);
  } else if (broadcast == 1) {
    const T c = y[0];
    for (int64_t i = 0; i < n; ++i) o[i] = apply_binary<op>(x[i], c);
  } else {
    const T c = x[0];
    for (int64_t i = 0; i < n; ++i) o[i] = apply_binary<op>(c, y[i]);
  }
}

template <UnaryOp op, class T, class Out>
void unary_loop(const Shape& shape, Operand out, Operand in) {
  StridedLoop<2> loop(shape, {out.strides, in.strides}, {sizeof(Out), sizeof(T)});
  loop.run({out.data, in.data}, [](std::array<char*, 2> p, std::array<int64_t, 2> s, int64_t n) {
    if (s[0] == sizeof(Out) && s[1] == sizeof(T)) {
      unary_contiguous<op, T, Out>(reinterpret_cast<Out*>(p[0]), reinterpret_cast<const T*>(p[1]), n);
    } else {
      for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<Out*>(p[0] + i * s[0]) = static_cast<Out>(apply_unary<op>(*reinterpret_cast<const T*>(p[1] + i * s[1])));
    }
  });
}

// The dtypes an op takes are its line of the op table (functors.h).
template <UnaryOp op>
void unary_typed(const Shape& shape, Operand out, Operand in) {
  constexpr OpDtypes dtypes = dtypes_of(op);
  auto same_type_out = [&](auto tag) { unary_loop<op, decltype(tag), decltype(tag)>(shape, out, in); };
  if constexpr (dtypes == OpDtypes::ToBool)
    TG_DISPATCH_ALL(in.dtype, op_name(op), [&](auto tag) { unary_loop<op, decltype(tag), bool>(shape, out, in); });
  else if constexpr (dtypes == OpDtypes::Integer) TG_DISPATCH_INTEGER(in.dtype, op_name(op), same_type_out);
  else if constexpr (dtypes == OpDtypes::Numeric) TG_DISPATCH_NUMERIC(in.dtype, op_name(op), same_type_out);
  else TG_DISPATCH_FLOAT(in.dtype, op_name(op), same_type_out);
}

template <BinaryOp op, class T>
void binary_loop(const Shape& shape, Operand out, Operand a, Operand b) {
  using Out = decltype(apply_binary<op>(T(), T()));
  StridedLoop<3> loop(shape, {out.strides, a.strides, b.strides}, {sizeof(Out), sizeof(T), sizeof(T)});
  loop.run({out.data, a.data, b.data}, [](std::array<char*, 3> p, std::array<int64_t, 3> s, int64_t n) {
    Out* o = reinterpret_cast<Out*>(p[0]);
    const T* x = reinterpret_cast<const T*>(p[1]);
    const T* y = reinterpret_cast<const T*>(p[2]);
    const bool out_flat = s[0] == sizeof(Out);
    if (out_flat && s[1] == sizeof(T) && s[2] == sizeof(T)) {
      binary_contiguous<op, T, Out>(o, x, y, n, 0);
    } else if (out_flat && s[1] == sizeof(T) && s[2] == 0) {
      binary_contiguous<op, T, Out>(o, x, y, n, 1);
    } else if (out_flat && s[1] == 0 && s[2] == sizeof(T)) {
      binary_contiguous<op, T, Out>(o, x, y, n, 2);
    } else {
      for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<Out*>(p[0] + i * s[0]) =
            apply_binary<op>(*reinterpret_cast<const T*>(p[1] + i * s[1]), *reinterpret_cast<const T*>(p[2] + i * s[2]));
    }
  });
}

template <BinaryOp op>
void binary_typed(const Shape& shape, Operand out, Operand a, Operand b) {
  constexpr OpDtypes dtypes = dtypes_of(op);
  auto run = [&](auto tag) { binary_loop<op, decltype(tag)>(shape, out, a, b); };
  if constexpr (dtypes == OpDtypes::ToBool) TG_DISPATCH_ALL(a.dtype, op_name(op), run);
  else if constexpr (dtypes == OpDtypes::Integer) TG_DISPATCH_INTEGER(a.dtype, op_name(op), run);
  else TG_DISPATCH_NUMERIC(a.dtype, op_name(op), run);
}

template <class Out, class In>
void copy_loop(const Shape& shape, Operand out, Operand in) {
  StridedLoop<2> loop(shape, {out.strides, in.strides}, {sizeof(Out), sizeof(In)});
  loop.run({out.data, in.data}, [](std::array<char*, 2> p, std::array<int64_t, 2> s, int64_t n) {
    if (s[0] == sizeof(Out) && s[1] == sizeof(In)) {
      Out* o = reinterpret_cast<Out*>(p[0]);
      const In* x = reinterpret_cast<const In*>(p[1]);
      if constexpr (std::is_same_v<Out, In>) std::memcpy(o, x, n * sizeof(In));
      else for (int64_t i = 0; i < n; ++i) o[i] = static_cast<Out>(x[i]);
    } else {
      for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<Out*>(p[0] + i * s[0]) = static_cast<Out>(*reinterpret_cast<const In*>(p[1] + i * s[1]));
    }
  });
}

}  // namespace

void CpuBackend::unary(UnaryOp op, const Shape& shape, Operand out, Operand in) {
  switch (op) {
#define TG_UNARY_CASE(NAME, STR, DTYPES, EXPR) case UnaryOp::NAME: return unary_typed<UnaryOp::NAME>(shape, out, in);
    TG_UNARY_OPS(TG_UNARY_CASE)
#undef TG_UNARY_CASE
  }
}

void CpuBackend::binary(BinaryOp op, const Shape& shape, Operand out, Operand a, Operand b) {
  switch (op) {
#define TG_BINARY_CASE(NAME, STR, DTYPES, EXPR) case BinaryOp::NAME: return binary_typed<BinaryOp::NAME>(shape, out, a, b);
    TG_BINARY_OPS(TG_BINARY_CASE)
#undef TG_BINARY_CASE
  }
}

void CpuBackend::where(const Shape& shape, Operand out, Operand cond, Operand a, Operand b) {
  TG_DISPATCH_STORAGE(a.dtype, "where", [&](auto tag) {
    using T = decltype(tag);
    StridedLoop<4> loop(shape, {out.strides, cond.strides, a.strides, b.strides}, {sizeof(T), 1, sizeof(T), sizeof(T)});
    loop.run({out.data, cond.data, a.data, b.data}, [](std::array<char*, 4> p, std::array<int64_t, 4> s, int64_t n) {
      for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<T*>(p[0] + i * s[0]) = *reinterpret_cast<const bool*>(p[1] + i * s[1])
                                                     ? *reinterpret_cast<const T*>(p[2] + i * s[2])
                                                     : *reinterpret_cast<const T*>(p[3] + i * s[3]);
    });
  });
}

void CpuBackend::copy(const Shape& shape, Operand out, Operand in) {
  TG_DISPATCH_STORAGE(out.dtype, "copy", [&](auto out_tag) {
    TG_DISPATCH_STORAGE(in.dtype, "copy", [&](auto in_tag) {
      copy_loop<decltype(out_tag), decltype(in_tag)>(shape, out, in);
    });
  });
}

void CpuBackend::fill(void* out, int64_t n, DType dtype, double value) {
  TG_DISPATCH_STORAGE(dtype, "fill", [&](auto tag) {
    using T = decltype(tag);
    T v = static_cast<T>(value);
    T* o = static_cast<T*>(out);
    parallel_for(n, kParallelGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) o[i] = v;
    });
  });
}

}  // namespace tg::cpu
