// One kernel interface per device. An op computes shapes, dtypes and autograd; then it calls the
// backend of its tensors' device once, `backend(x.device()).unary(...)`, and never asks which
// device that is. Each backend fills every entry point (the compiler checks it: Backend is
// abstract): CpuBackend (kernels/cpu/), CudaBackend (kernels/cuda/, one per GPU). A build without
// CUDA has no CudaBackend at all; cuda_backend() then raises (kernels/cuda/no_cuda.cpp).
//
// Kernels see raw buffers, shapes and strides (in elements), never tensors or autograd. On CUDA
// every pointer is a device pointer of that backend's GPU and every call only queues work on its
// stream (kernels/cuda/runtime.h); a failed launch raises RuntimeError naming the kernel.
#pragma once
#include <cstdint>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/memory.h"
#include "core/shape.h"
#include "kernels/attention_args.h"
#include "kernels/layer_norm_args.h"
#include "kernels/functors.h"
#include "kernels/im2col.h"

namespace tg {

// ---- arguments ---------------------------------------------------------------------------------

// A strided operand of an elementwise kernel.
struct Operand {
  char* data;
  const int64_t* strides;  // one per dim of the shared shape; 0 on broadcast dims
  DType dtype;
};

enum class ReduceOp : uint8_t { Sum, Prod, Max, Min, ArgMax, ArgMin };
// Running reductions (scan): Sum and Prod accumulate float32 in float64 (each output rounded once);
// LogSumExp is log(sum_{k <= j} exp(x_k)), floats only; Max / Min give the index of the running
// extreme (the last of equal ones, a NaN once one is seen: PyTorch's cummax / cummin).
enum class ScanOp : uint8_t { Sum, Prod, LogSumExp, Max, Min };
enum class RandomKind : uint8_t { Uniform, Normal };

// How check_indices reads an index: in [0, size) is valid; a negative one counts from the end
// when `wrap_negative`; one equal to `ignored` (when `has_ignored`) becomes -1.
struct IndexRule {
  int64_t size;
  bool wrap_negative, has_ignored;
  int64_t ignored;
  int64_t fallback;  // what an out-of-range index becomes where it cannot raise (the GPU reports it)
  const char* op;    // for the report: the op (a string literal) and the dim (-1: class targets)
  int64_t dim;
};

// Row-major batched product, for b < batch:
//   C_b = A_b @ B_b          (accumulate: C_b += A_b @ B_b)
//   A_b(i, k) = A[b * a_batch + i * a_row + k * a_col]   M x K, one of a_row / a_col is 1
//   B_b(k, j) = B[b * b_batch + k * b_row + j * b_col]   K x N, one of b_row / b_col is 1
//   C_b(i, j) = C[b * c_batch + i * ldc + j]             M x N
//   bias (optional, only with accumulate false): C_b(i, j) = (A_b @ B_b)(i, j) + bias[j], added
//   as the tile is stored (the GEMM's epilogue), in C's dtype
struct GemmArgs {
  int64_t batch, M, N, K;
  const void* A;
  int64_t a_batch, a_row, a_col;
  const void* B;
  int64_t b_batch, b_row, b_col;
  void* C;
  int64_t c_batch, ldc;
  bool accumulate;
  int device;  // the GPU (set by the CUDA backend; the CPU ignores it)
  const void* bias = nullptr;
};

// One parameter of a multi-tensor optimizer step; buffers the update does not use are null.
struct OptimTensor {
  void* param;
  const void* grad;
  void* state0;  // SGD / RMSprop momentum buffer, Adam exp_avg, RMSprop square_avg
  void* state1;  // Adam exp_avg_sq, RMSprop momentum buffer
  int64_t numel;
  int64_t step;  // Adam: this tensor's step count (bias correction); SGD: 1 on the first step
};
struct SGDConfig { double lr, momentum, dampening, weight_decay; bool nesterov; };
struct AdamConfig { double lr, beta1, beta2, eps, weight_decay; bool decoupled; };
struct RMSpropConfig { double lr, alpha, eps, weight_decay, momentum; };

// ---- the interface -----------------------------------------------------------------------------

class Backend : public DeviceMemory {
 public:
  // -- elementwise over a shared shape (each operand read through its own strides)
  // out = op(in); in and out share a dtype except LogicalNot (bool out).
  virtual void unary(UnaryOp op, const Shape& shape, Operand out, Operand in) = 0;
  // out = op(a, b); a and b share a dtype; out has it too, or bool for comparisons.
  virtual void binary(BinaryOp op, const Shape& shape, Operand out, Operand a, Operand b) = 0;
  virtual void where(const Shape& shape, Operand out, Operand cond, Operand a, Operand b) = 0;  // cond ? a : b
  virtual void copy(const Shape& shape, Operand out, Operand in) = 0;  // out = in, converting the dtype
  virtual void fill(void* out, int64_t n, DType dtype, double value) = 0;

  // -- reductions over the middle axis of a contiguous (outer, r, inner) buffer into (outer, inner)
  virtual void reduce(ReduceOp op, DType dtype, int64_t outer, int64_t r, int64_t inner, const void* in, void* out) = 0;
  // -- a running reduction along the middle axis of a contiguous (outer, n, inner) buffer, same shape
  //    out: out[o, j, i] = op_{k <= j} in[o, k, i] (Sum, Prod, LogSumExp: `out` in the input's dtype),
  //    or index[o, j, i] = the k of the running extreme (Max, Min: `out` unused)
  virtual void scan(ScanOp op, DType dtype, int64_t outer, int64_t n, int64_t inner, const void* in, void* out,
                    int64_t* index) = 0;
  // -- the order of each contiguous row of n elements: index[r, :] = the stable sorting permutation
  //    of in[r, :] (ascending or descending; NaN counts as the largest value, as in PyTorch)
  virtual void argsort_rows(DType dtype, int64_t rows, int64_t n, const void* in, int64_t* index, bool descending) = 0;

  // -- matrix products
  virtual void gemm(DType dtype, const GemmArgs& args) = 0;
  // Whether gemm reads bfloat16 itself (tensor cores). Where not, the op multiplies float32
  // copies and rounds the product once.
  virtual bool has_bfloat16_gemm() const = 0;

  // -- gathers and scatters on (outer, n, inner) buffers; indices already checked
  // out[i] = in[i] read by `rule`. Returns how many indices were kept (not ignored) where the
  // backend knows it without waiting, else -1. The CPU raises IndexError for a bad index at once;
  // the GPU checks device-resident indices itself (no wait), writes `rule.fallback` in place of a
  // bad one and raises IndexError at the next synchronisation (kernels/cuda/runtime.h).
  virtual int64_t check_indices(const int64_t* in, int64_t* out, int64_t n, const IndexRule& rule) = 0;
  virtual void index_select(DType dtype, int64_t outer, int64_t n_in, int64_t inner, const void* in,
                            const int64_t* index, int64_t n_index, void* out) = 0;
  virtual void index_add(DType dtype, int64_t outer, int64_t n_out, int64_t inner, void* out, const int64_t* index,
                         int64_t n_index, const void* src) = 0;
  // gather: out[o, j, i] = in[o, index[o, j, i], i]; scatter_add is its adjoint.
  virtual void gather(DType dtype, int64_t outer, int64_t n_in, int64_t n_index, int64_t inner, const void* in,
                      const int64_t* index, void* out) = 0;
  virtual void scatter_add(DType dtype, int64_t outer, int64_t n_out, int64_t n_index, int64_t inner, void* out,
                           const int64_t* index, const void* src) = 0;
  // Patches of a 2-d convolution (kernels/im2col.h): unfold writes cols from x; fold writes x
  // (overwriting it) as the sum of cols over the pixels they were read from. fold: float dtypes.
  virtual void im2col(DType dtype, const Im2ColArgs& a, const void* x, void* cols) = 0;
  virtual void col2im(DType dtype, const Im2ColArgs& a, const void* cols, void* x) = 0;
  // out[positions[i]] = values[i] (flat positions into a contiguous buffer); with repeated
  // positions one of the writes wins (the CPU: the last).
  virtual void put(DType dtype, void* out, const int64_t* positions, const void* values, int64_t n) = 0;

  // -- random numbers: Philox4x32-10 streams, element i uses counter (offset + i) under key `seed`,
  // so both devices draw the same numbers.
  virtual void random(RandomKind kind, DType dtype, void* out, int64_t n, uint64_t seed, uint64_t offset) = 0;
  virtual void random_int(int64_t* out, int64_t n, int64_t low, int64_t high, uint64_t seed, uint64_t offset) = 0;
  // Dropout in one pass over contiguous x: scale[i] = (u_i >= p) / (1 - p), out[i] = x[i] scale[i],
  // u_i the same uniform that random(Uniform, dtype, ...) gives element i.
  virtual void dropout(DType dtype, int64_t n, const void* x, void* out, void* scale, double p, uint64_t seed,
                       uint64_t offset) = 0;

  // -- row kernels of the nn functions, over contiguous (rows, cols) buffers
  // Softmax (or log-softmax) of each row, max-subtracted.
  virtual void softmax_rows(DType dtype, int64_t rows, int64_t cols, const void* in, void* out, bool log) = 0;
  // Layer norm (LayerNormArgs): y = xhat * weight + bias, xhat = (x - mean) * rstd; mean and rstd
  // per row saved.
  virtual void layer_norm_rows(const LayerNormArgs& a, void* y) = 0;
  // Its backward from dy: dxhat = dy * weight, dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)),
  // and over the rows dweight = sum dy xhat, dbias = sum dy (each null when not wanted). xhat is
  // rebuilt from x and the statistics (so the op keeps one activation, x, not two).
  virtual void layer_norm_backward_rows(const LayerNormArgs& a, const void* dy, void* dx, void* dweight,
                                        void* dbias) = 0;
  // Cross-entropy at class targets (-1 = ignored row):
  // lse_i = log sum_j exp(x_ij), loss_i = lse_i - x_i,t_i (0 for ignored rows).
  virtual void cross_entropy_rows(DType dtype, int64_t rows, int64_t C, const void* logits, const int64_t* targets,
                                  void* loss, void* lse) = 0;
  // Its backward: d_ij = scale_i (exp(x_ij - lse_i) - [j == t_i]); ignored rows get 0.
  virtual void cross_entropy_backward_rows(DType dtype, int64_t rows, int64_t C, const void* logits,
                                           const int64_t* targets, const void* lse, const void* row_scale,
                                           void* dlogits) = 0;

  // -- one LSTM step's pointwise part: gates (B, 4H: i, f, g, o) and c (B, H) -> h, c, and the
  // activations (B, 4H) and tanh(c) that the backward reuses.
  virtual void lstm_cell(DType dtype, int64_t batch, int64_t hidden, const void* gates, const void* c, void* h_out,
                         void* c_out, void* act_out, void* tanh_c_out) = 0;

  // -- fused attention; see kernels/attention_args.h for the layout of every argument.
  // Which dtypes the kernels take (elsewhere the op widens bfloat16 to float32, or runs the
  // composite reference); lse is written in attention_lse_dtype(dtype).
  virtual bool has_attention_kernel(DType dtype) const = 0;
  virtual DType attention_lse_dtype(DType dtype) const = 0;
  virtual void attention_forward(DType dtype, const AttentionArgs& a, const void* q, const void* k, const void* v,
                                 void* out, void* lse) = 0;
  virtual void attention_backward(DType dtype, const AttentionArgs& a, const void* q, const void* k, const void* v,
                                  const void* out, const void* lse, const void* grad_out, void* dq, void* dk,
                                  void* dv) = 0;

  // -- optimizer updates, in place; all tensors of one call share `dtype` (float32 or float64)
  virtual void sgd_update(DType dtype, const std::vector<OptimTensor>& tensors, const SGDConfig& cfg) = 0;
  virtual void adam_update(DType dtype, const std::vector<OptimTensor>& tensors, const AdamConfig& cfg) = 0;
  virtual void rmsprop_update(DType dtype, const std::vector<OptimTensor>& tensors, const RMSpropConfig& cfg) = 0;
};

Backend& cpu_backend();  // kernels/cpu/backend.cpp
// The backend of GPU `index` (kernels/cuda/backend.cu); raises RuntimeError when the build has
// no CUDA or there is no such GPU.
Backend& cuda_backend(int index);
inline Backend& backend(Device device) { return device.is_cpu() ? cpu_backend() : cuda_backend(device.index); }

// ---- what tg.cuda controls besides the kernels ---------------------------------------------------
// Device queries, the caching allocator's statistics, the GEMM implementation. gpu_runtime() is
// null in a build without CUDA; bindings/cuda.cpp answers for it there.
class GpuRuntime {
 public:
  virtual ~GpuRuntime() = default;
  virtual int device_count() = 0;
  virtual void synchronize() = 0;  // waits for all queued work on every device
  virtual size_t memory_allocated(int device) = 0;      // bytes of blocks handed out, not yet released
  virtual size_t max_memory_allocated(int device) = 0;  // peak of memory_allocated since the last reset
  virtual void reset_peak_memory_stats(int device) = 0;
  virtual size_t memory_reserved(int device) = 0;  // handed out + cached
  virtual void empty_cache() = 0;                   // every cached (free) block goes back to the driver
  virtual bool cublas_built() = 0;
  virtual bool uses_cublas() = 0;  // which GEMM runs: cuBLAS, or tapegrad's own kernels
  virtual void set_uses_cublas(bool use) = 0;
  virtual bool allow_tf32() = 0;  // float32 products on TF32 tensor cores
  virtual void set_allow_tf32(bool allow) = 0;
};
GpuRuntime* gpu_runtime();

}  // namespace tg
