// CPU-only builds link these stubs in place of the CUDA backend: queries answer "no GPU", memory
// statistics are zero, and everything that would need a GPU raises RuntimeError.
#include "core/error.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/cuda.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/runtime.h"

namespace tg::cuda {

namespace {
[[noreturn]] void no_cuda(const char* what) {
  throw RuntimeError(str(what, ": tapegrad was built without CUDA (rebuild with -DTAPEGRAD_CUDA=ON)"));
}
}  // namespace

bool built() { return false; }
bool is_available() { return false; }
int device_count() { return 0; }
void synchronize() { no_cuda("cuda.synchronize"); }
void* stream(int) { no_cuda("cuda.stream"); }
void check(int err, const char* what) {
  if (err != 0) throw RuntimeError(str(what, ": CUDA error ", err));
}

void* allocate(size_t, int) { no_cuda("cuda.allocate"); }
void release(void*, void*) {}
size_t memory_allocated(int) { return 0; }
size_t max_memory_allocated(int) { return 0; }
void reset_peak_memory_stats(int) {}
size_t memory_reserved(int) { return 0; }
void empty_cache() {}
void copy_bytes(void*, int, const void*, int, size_t) { no_cuda("cuda.copy"); }

void unary(int, UnaryOp, const Shape&, Operand, Operand) { no_cuda("unary"); }
void binary(int, BinaryOp, const Shape&, Operand, Operand, Operand) { no_cuda("binary"); }
void where(int, const Shape&, Operand, Operand, Operand, Operand) { no_cuda("where"); }
void copy(int, const Shape&, Operand, Operand) { no_cuda("copy"); }
void fill(int, void*, int64_t, DType, double) { no_cuda("fill"); }
void reduce(int, ReduceOp, DType, int64_t, int64_t, int64_t, const void*, void*) { no_cuda("reduce"); }
void check_indices(int, const int64_t*, int64_t*, int64_t, const IndexRule&) { no_cuda("check_indices"); }
void index_select(int, DType, int64_t, int64_t, int64_t, const void*, const int64_t*, int64_t, void*) {
  no_cuda("index_select");
}
void index_add(int, DType, int64_t, int64_t, int64_t, void*, const int64_t*, int64_t, const void*) { no_cuda("index_add"); }
void gather(int, DType, int64_t, int64_t, int64_t, int64_t, const void*, const int64_t*, void*) { no_cuda("gather"); }
void scatter_add(int, DType, int64_t, int64_t, int64_t, int64_t, void*, const int64_t*, const void*) {
  no_cuda("scatter_add");
}
void put(int, DType, void*, const int64_t*, const void*, int64_t) { no_cuda("index_put"); }
void random(int, RandomKind, DType, void*, int64_t, uint64_t, uint64_t) { no_cuda("random"); }
void random_int(int, int64_t*, int64_t, int64_t, int64_t, uint64_t, uint64_t) { no_cuda("randint"); }
void dropout(int, DType, int64_t, const void*, void*, void*, double, uint64_t, uint64_t) { no_cuda("dropout"); }
void softmax_rows(int, DType, int64_t, int64_t, const void*, void*, bool) { no_cuda("softmax"); }
void layer_norm_rows(int, DType, int64_t, int64_t, const void*, void*, void*, void*, double) { no_cuda("layer_norm"); }
void layer_norm_backward_rows(int, DType, int64_t, int64_t, const void*, const void*, const void*, void*) {
  no_cuda("layer_norm backward");
}
void cross_entropy_rows(int, DType, int64_t, int64_t, const void*, const int64_t*, void*, void*) {
  no_cuda("cross_entropy");
}
void cross_entropy_backward_rows(int, DType, int64_t, int64_t, const void*, const int64_t*, const void*, const void*,
                                 void*) {
  no_cuda("cross_entropy backward");
}
void lstm_cell(int, DType, int64_t, int64_t, const void*, const void*, void*, void*, void*, void*) { no_cuda("lstm_cell"); }
void sgd_update(int, DType, const std::vector<OptimTensor>&, const cpu::SGDConfig&) { no_cuda("SGD"); }
void adam_update(int, DType, const std::vector<OptimTensor>&, const cpu::AdamConfig&) { no_cuda("Adam"); }
void rmsprop_update(int, DType, const std::vector<OptimTensor>&, const cpu::RMSpropConfig&) { no_cuda("RMSprop"); }

// kernels/cuda/gemm.h and attention.h
void gemm(DType, const GemmArgs&) { no_cuda("matmul"); }
bool cublas_built() { return false; }
GemmBackend gemm_backend() { return GemmBackend::Own; }
void set_gemm_backend(GemmBackend backend) {
  if (backend == GemmBackend::Cublas) no_cuda("set_gemm_backend");
}
bool allow_tf32() { return false; }
void set_allow_tf32(bool) {}
std::vector<std::string> gemm_config_names(OwnKernel) { return {}; }
int gemm_config_for(DType, OwnKernel, const GemmArgs&) { return 0; }
void gemm_with_config(DType, OwnKernel, int, const GemmArgs&) { no_cuda("gemm_with_config"); }
void attention_forward(DType, const AttentionArgs&, const void*, const void*, const void*, void*, void*, int) {
  no_cuda("scaled_dot_product_attention");
}
void attention_backward(DType, const AttentionArgs&, const void*, const void*, const void*, const void*, const void*,
                        const void*, void*, void*, void*, int) {
  no_cuda("scaled_dot_product_attention backward");
}

}  // namespace tg::cuda
