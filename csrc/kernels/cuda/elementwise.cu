// Unary, binary and where kernels: the functors of kernels/functors.h run by the elementwise
// engine (elementwise.cuh), with the dtype rules of the CPU twin (kernels/cpu/elementwise.cpp).
#include "kernels/cuda/elementwise.cuh"

namespace tg::cuda {

namespace {

template <UnaryOp op, class T, class Out>
struct UnaryFn {
  __device__ __forceinline__ Out operator()(T x) const { return static_cast<Out>(apply_unary<op>(x)); }
};

template <BinaryOp op, class T>
struct BinaryFn {
  __device__ __forceinline__ auto operator()(T a, T b) const { return apply_binary<op>(a, b); }
};

template <class T>
struct SelectFn {
  __device__ __forceinline__ T operator()(bool c, T a, T b) const { return c ? a : b; }
};

// The dtypes an op takes are its line of the op table (functors.h).
template <UnaryOp op>
void unary_typed(int device, const Shape& shape, Operand out, Operand in) {
  constexpr OpDtypes dtypes = dtypes_of(op);
  auto same_type_out = [&](auto tag) {
    using T = decltype(tag);
    elementwise<T, T>(op_name(op), device, shape, UnaryFn<op, T, T>{}, out, {in});
  };
  if constexpr (dtypes == OpDtypes::ToBool) {
    TG_DISPATCH_ALL(in.dtype, op_name(op), [&](auto tag) {
      using T = decltype(tag);
      elementwise<bool, T>(op_name(op), device, shape, UnaryFn<op, T, bool>{}, out, {in});
    });
  } else if constexpr (dtypes == OpDtypes::Integer) {
    TG_DISPATCH_INTEGER(in.dtype, op_name(op), same_type_out);
  } else if constexpr (dtypes == OpDtypes::Numeric) {
    TG_DISPATCH_NUMERIC(in.dtype, op_name(op), same_type_out);
  } else {
    TG_DISPATCH_FLOAT(in.dtype, op_name(op), same_type_out);
  }
}

template <BinaryOp op>
void binary_typed(int device, const Shape& shape, Operand out, Operand a, Operand b) {
  constexpr OpDtypes dtypes = dtypes_of(op);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    using Out = decltype(apply_binary<op>(T(), T()));
    elementwise<Out, T, T>(op_name(op), device, shape, BinaryFn<op, T>{}, out, {a, b});
  };
  if constexpr (dtypes == OpDtypes::ToBool) TG_DISPATCH_ALL(a.dtype, op_name(op), run);
  else if constexpr (dtypes == OpDtypes::Integer) TG_DISPATCH_INTEGER(a.dtype, op_name(op), run);
  else TG_DISPATCH_NUMERIC(a.dtype, op_name(op), run);
}

}  // namespace

void CudaBackend::unary(UnaryOp op, const Shape& shape, Operand out, Operand in) {
  switch (op) {
#define TG_UNARY_CASE(NAME, STR, DTYPES, EXPR) case UnaryOp::NAME: return unary_typed<UnaryOp::NAME>(device, shape, out, in);
    TG_UNARY_OPS(TG_UNARY_CASE)
#undef TG_UNARY_CASE
  }
}

void CudaBackend::binary(BinaryOp op, const Shape& shape, Operand out, Operand a, Operand b) {
  switch (op) {
#define TG_BINARY_CASE(NAME, STR, DTYPES, EXPR) case BinaryOp::NAME: return binary_typed<BinaryOp::NAME>(device, shape, out, a, b);
    TG_BINARY_OPS(TG_BINARY_CASE)
#undef TG_BINARY_CASE
  }
}

void CudaBackend::where(const Shape& shape, Operand out, Operand cond, Operand a, Operand b) {
  TG_DISPATCH_STORAGE(a.dtype, "where", [&](auto tag) {
    using T = decltype(tag);
    elementwise<T, bool, T, T>("where", device, shape, SelectFn<T>{}, out, {cond, a, b});
  });
}

}  // namespace tg::cuda
