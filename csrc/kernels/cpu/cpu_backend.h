// The CPU backend: kernels/backend.h's entry points, defined in the kernels/cpu/ file of their
// family (elementwise.cpp, reduce.cpp, gemm.cpp, ...). Threads come from OpenMP (loops.h).
#pragma once
#include "kernels/backend.h"

namespace tg::cpu {

class CpuBackend final : public Backend {
 public:
  // memory.cpp: 64-byte aligned host blocks, large ones cached for reuse
  void* allocate(size_t nbytes) override;
  void release(void* ptr) noexcept override;
  void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) override;
  // elementwise.cpp
  void unary(UnaryOp op, const Shape& shape, Operand out, Operand in) override;
  void binary(BinaryOp op, const Shape& shape, Operand out, Operand a, Operand b) override;
  void where(const Shape& shape, Operand out, Operand cond, Operand a, Operand b) override;
  void copy(const Shape& shape, Operand out, Operand in) override;
  void fill(void* out, int64_t n, DType dtype, double value) override;
  // reduce.cpp
  void reduce(ReduceOp op, DType dtype, int64_t outer, int64_t r, int64_t inner, const void* in, void* out) override;
  void scan(ScanOp op, DType dtype, int64_t outer, int64_t n, int64_t inner, const void* in, void* out,
            int64_t* index) override;
  void argsort_rows(DType dtype, int64_t rows, int64_t n, const void* in, int64_t* index, bool descending) override;
  // gemm.cpp
  void gemm(DType dtype, const GemmArgs& args) override;
  bool has_bfloat16_gemm() const override { return false; }
  // index.cpp
  int64_t check_indices(const int64_t* in, int64_t* out, int64_t n, const IndexRule& rule) override;
  void index_select(DType dtype, int64_t outer, int64_t n_in, int64_t inner, const void* in, const int64_t* index,
                    int64_t n_index, void* out) override;
  void index_add(DType dtype, int64_t outer, int64_t n_out, int64_t inner, void* out, const int64_t* index,
                 int64_t n_index, const void* src) override;
  void im2col(DType dtype, const Im2ColArgs& a, const void* x, void* cols) override;
  void col2im(DType dtype, const Im2ColArgs& a, const void* cols, void* x) override;
  void gather(DType dtype, int64_t outer, int64_t n_in, int64_t n_index, int64_t inner, const void* in,
              const int64_t* index, void* out) override;
  void scatter_add(DType dtype, int64_t outer, int64_t n_out, int64_t n_index, int64_t inner, void* out,
                   const int64_t* index, const void* src) override;
  void put(DType dtype, void* out, const int64_t* positions, const void* values, int64_t n) override;
  // random.cpp
  void random(RandomKind kind, DType dtype, void* out, int64_t n, uint64_t seed, uint64_t offset) override;
  void random_int(int64_t* out, int64_t n, int64_t low, int64_t high, uint64_t seed, uint64_t offset) override;
  void dropout(DType dtype, int64_t n, const void* x, void* out, void* scale, double p, uint64_t seed,
               uint64_t offset) override;
  // nn.cpp
  void softmax_rows(DType dtype, int64_t rows, int64_t cols, const void* in, void* out, bool log) override;
  void layer_norm_rows(const LayerNormArgs& a, void* y) override;
  void layer_norm_backward_rows(const LayerNormArgs& a, const void* dy, void* dx, void* dweight, void* dbias) override;
  void cross_entropy_rows(DType dtype, int64_t rows, int64_t C, const void* logits, const int64_t* targets, void* loss,
                          void* lse) override;
  void cross_entropy_backward_rows(DType dtype, int64_t rows, int64_t C, const void* logits, const int64_t* targets,
                                   const void* lse, const void* row_scale, void* dlogits) override;
  // lstm.cpp
  void lstm_cell(DType dtype, int64_t batch, int64_t hidden, const void* gates, const void* c, void* h_out,
                 void* c_out, void* act_out, void* tanh_c_out) override;
  // attention.cpp (lse in the data's dtype)
  bool has_attention_kernel(DType dtype) const override { return dtype == DType::Float32 || dtype == DType::Float64; }
  DType attention_lse_dtype(DType dtype) const override { return dtype; }
  void attention_forward(DType dtype, const AttentionArgs& a, const void* q, const void* k, const void* v, void* out,
                         void* lse) override;
  void attention_backward(DType dtype, const AttentionArgs& a, const void* q, const void* k, const void* v,
                          const void* out, const void* lse, const void* grad_out, void* dq, void* dk,
                          void* dv) override;
  // optim.cpp
  void sgd_update(DType dtype, const std::vector<OptimTensor>& tensors, const SGDConfig& cfg) override;
  void adam_update(DType dtype, const std::vector<OptimTensor>& tensors, const AdamConfig& cfg) override;
  void rmsprop_update(DType dtype, const std::vector<OptimTensor>& tensors, const RMSpropConfig& cfg) override;
};

// One product C[M,N] (row-major, leading dim ldc) (+)= A[M,K] @ B[K,N] (+ bias[N] on every row,
// with accumulate false), A and B read through element strides (gemm.cpp); the batched entry
// point, linear and the attention kernel call it.
void gemm_matrix(DType dtype, int64_t M, int64_t N, int64_t K, const void* A, int64_t a_row, int64_t a_col,
                 const void* B, int64_t b_row, int64_t b_col, void* C, int64_t ldc, bool accumulate, const void* bias = nullptr);
const char* gemm_isa();  // the micro-kernel chosen for this CPU: "avx512", "avx2" or "portable"
// The large host blocks kept for reuse (memory.cpp): their bytes, and giving them all back.
size_t cached_host_bytes();
void empty_host_cache();
// Float32 FLOP/s of fused multiply-adds on every thread at the GEMM's vector width, from a
// loop that runs about `seconds` (peak.cpp): the benchmarks' arithmetic limit.
double peak_fma_flops(double seconds);

}  // namespace tg::cpu
