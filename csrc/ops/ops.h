// Every tensor operation of tapegrad. Each op family lives in one file of csrc/ops/ with, per op,
// a comment giving shapes and math, the forward (which calls a kernel) and the backward, written
// with these same ops so that it runs on any device and can itself be differentiated.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace tg {

using Dims = std::vector<int64_t>;
enum class UnaryOp : uint8_t;   // the elementwise ops' enums (kernels/functors.h)
enum class BinaryOp : uint8_t;

// ---- creation (creation.cpp) -------------------------------------------------------------------
Tensor zeros(const Shape& shape, DType dtype = DType::Float32, Device device = {});
Tensor ones(const Shape& shape, DType dtype = DType::Float32, Device device = {});
Tensor full(const Shape& shape, double value, DType dtype = DType::Float32, Device device = {});
// A 0-d tensor holding a Python number; `wrapped` ones do not upcast the tensor they meet.
Tensor scalar_tensor(double value, DType dtype, bool wrapped = false, Device device = {});
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor arange(double start, double end, double step, DType dtype, Device device = {});
Tensor linspace(double start, double end, int64_t steps, DType dtype, Device device = {});
Tensor eye(int64_t n, int64_t m, DType dtype, Device device = {});

// ---- random numbers (random.cpp): Philox4x32-10, element i of a call uses counter offset+i ------
void manual_seed(uint64_t seed);
uint64_t initial_seed();
// The generator as (seed, next counter), and setting it: to replay a stream from any point.
std::pair<uint64_t, uint64_t> rng_state();
void set_rng_state(uint64_t seed, uint64_t offset);
Tensor rand(const Shape& shape, DType dtype = DType::Float32, Device device = {});
Tensor randn(const Shape& shape, DType dtype = DType::Float32, Device device = {});
Tensor randint(int64_t low, int64_t high, const Shape& shape, DType dtype = DType::Int64, Device device = {});
Tensor dropout(const Tensor& x, double p, bool training);
// Takes n counters from the generator: returns the first, and the seed in *seed (for kernels
// that draw their own numbers, like fused attention's dropout).
uint64_t reserve_random(int64_t n, uint64_t* seed);

// ---- elementwise (unary.cpp, binary.cpp) -------------------------------------------------------
// The functions of one tensor and of two, as lists: each name is declared here and bound to Python
// (tg.f and Tensor.f) from the same list, so a new elementwise op is a functor line (functors.h),
// its function with its backward (unary.cpp / binary.cpp), its name here and a spec row.
#define TG_UNARY_FUNCTIONS(X) \
  X(neg) X(abs) X(exp) X(log) X(sqrt) X(rsqrt) X(sin) X(cos) X(tanh) X(sigmoid) X(relu) X(silu) X(softplus) \
  X(erf) X(sign) X(logical_not) X(bitwise_not) X(log2) X(log10) X(log1p) X(expm1) X(exp2) X(tan) X(asin)      \
  X(acos) X(atan) X(sinh) X(cosh) X(asinh) X(acosh) X(atanh) X(reciprocal) X(square) X(floor) X(ceil) X(round) \
  X(trunc) X(frac) X(isnan) X(isinf) X(isfinite)
#define TG_BINARY_FUNCTIONS(X)                                                                  \
  X(add) X(sub) X(mul) X(div) X(pow) X(maximum) X(minimum) X(eq) X(ne) X(lt) X(le) X(gt) X(ge) \
  X(logical_and) X(logical_or) X(bitwise_and) X(bitwise_or) X(bitwise_xor) X(floor_divide) X(remainder) X(fmod) \
  X(atan2) X(copysign) X(bitwise_left_shift) X(bitwise_right_shift)
#define TG_DECLARE_UNARY(f) Tensor f(const Tensor& x);
#define TG_DECLARE_BINARY(f) Tensor f(const Tensor& a, const Tensor& b);
TG_UNARY_FUNCTIONS(TG_DECLARE_UNARY)
TG_BINARY_FUNCTIONS(TG_DECLARE_BINARY)
#undef TG_DECLARE_UNARY
#undef TG_DECLARE_BINARY
// The elementwise forward alone, no node recorded: the dtype rules of unary.cpp / binary.cpp
// (promotion, integers in float32 for float functions, bfloat16 computed in float32).
Tensor unary_op(UnaryOp op, const Tensor& x);
Tensor binary_op(BinaryOp op, const Tensor& a, const Tensor& b);
Tensor gelu(const Tensor& x, bool tanh_approximation = false);
Tensor gelu_backward(const Tensor& dy, const Tensor& x, bool tanh_approximation);  // dy * gelu'(x), fused
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor masked_fill(const Tensor& x, const Tensor& mask, const Tensor& value);
Tensor clamp(const Tensor& x, std::optional<double> lo, std::optional<double> hi);
// nan_to_num: NaN, +inf and -inf replaced (by default 0 and the dtype's largest finite values)
Tensor nan_to_num(const Tensor& x, double nan = 0.0, std::optional<double> posinf = std::nullopt,
                  std::optional<double> neginf = std::nullopt);
// lerp: start + weight (end - start), weight a tensor (or a number wrapped as one)
Tensor lerp(const Tensor& start, const Tensor& end, const Tensor& weight);
// isclose: |a - b| <= atol + rtol |b| (infinities equal when equal; NaN equal to NaN only with equal_nan)
Tensor isclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8, bool equal_nan = false);
// Pointwise losses (binary.cpp); reduction: 0 none, 1 mean, 2 sum. pos_weight may be undefined.
Tensor mse_loss(const Tensor& input, const Tensor& target, int reduction);
Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, int reduction);
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const Tensor& pos_weight,
                                        int reduction);
// The dtype PyTorch gives `a op b` (0-d tensors and wrapped numbers do not upcast).
DType result_type(const Tensor& a, const Tensor& b);

// ---- activations (activation.cpp); relu, gelu, silu, softplus are elementwise functions above ----
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
Tensor elu(const Tensor& x, double alpha = 1.0);
Tensor celu(const Tensor& x, double alpha = 1.0);
Tensor selu(const Tensor& x);
Tensor softsign(const Tensor& x);
Tensor mish(const Tensor& x);
Tensor logsigmoid(const Tensor& x);
Tensor hardsigmoid(const Tensor& x);
Tensor hardswish(const Tensor& x);
Tensor hardtanh(const Tensor& x, double min_val = -1.0, double max_val = 1.0);
Tensor relu6(const Tensor& x);

// ---- moving elements around (rearrange.cpp) ----------------------------------------------------------
Tensor flip(const Tensor& x, const Dims& dims);
Tensor roll(const Tensor& x, const Dims& shifts, const Dims& dims);  // no dims: over the flattened tensor
Tensor repeat(const Tensor& x, const Dims& reps);
Tensor tile(const Tensor& x, const Dims& reps);
// each element along dim repeated repeats[k] times (one count: every element); no dim: flattened
Tensor repeat_interleave(const Tensor& x, const Tensor& repeats, std::optional<int64_t> dim);
TensorList meshgrid(const TensorList& xs, bool xy);  // indexing "ij" (false) or "xy" (true)
Tensor tril(const Tensor& x, int64_t diagonal = 0);
Tensor triu(const Tensor& x, int64_t diagonal = 0);
// pad: (left, right) pairs from the last dim backwards; mode constant / reflect / replicate / circular
Tensor pad(const Tensor& x, const Dims& widths, const std::string& mode = "constant", double value = 0.0);

// ---- small ops written as other ops (composite.cpp) ----------------------------------------------
TensorList var_mean(const Tensor& x, const Dims& dims, double correction, bool keepdim);  // {var, mean}
Tensor count_nonzero(const Tensor& x, const Dims& dims = {});
Tensor dot(const Tensor& a, const Tensor& b);
Tensor inner(const Tensor& a, const Tensor& b);
Tensor outer(const Tensor& a, const Tensor& b);
Tensor movedim(const Tensor& x, const Dims& source, const Dims& destination);
Tensor diagonal(const Tensor& x, int64_t offset = 0, int64_t dim1 = 0, int64_t dim2 = 1);
Tensor diag(const Tensor& x, int64_t offset = 0);
Tensor take_along_dim(const Tensor& x, const Tensor& indices, std::optional<int64_t> dim);

// ---- batch and group normalisation (normalization.cpp), over (N, C, *) inputs -----------------------
// Training updates running_mean / running_var in place (when given) by momentum.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps);
Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias, double eps);

// ---- convolution and pooling (conv.cpp) -----------------------------------------------------------
// A window over 2-d images: kernel (kh, kw), stride, dilation, and padding before (ph, pw) and
// after (ph_end, pw_end) each dim (after > before: PyTorch's 'same' with an even kernel, ceil_mode).
struct Window2d {
  int64_t kh, kw, sh = 1, sw = 1, ph = 0, pw = 0, ph_end = 0, pw_end = 0, dh = 1, dw = 1;
};
Tensor unfold(const Tensor& x, const Window2d& window, double pad_value = 0.0);  // (N, C kh kw, L)
Tensor fold(const Tensor& cols, int64_t H, int64_t W, const Window2d& window);  // (N, C, H, W)
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Window2d& window, int64_t groups = 1);
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Window2d& window, int64_t groups,
                        int64_t out_h, int64_t out_w);
Tensor max_pool2d(const Tensor& x, const Window2d& window);
// {values, indices}: each maximum and its flat position in its (H, W) plane (the first of equal ones)
TensorList max_pool2d_with_indices(const Tensor& x, const Window2d& window);
Tensor avg_pool2d(const Tensor& x, const Window2d& window, bool count_include_pad = true);
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w);
// (N, C, *spatial) resized to `size` by mode "nearest" or "(bi|tri)linear" (resample.cpp); scales:
// the caller's scale factors (0: none), which set the coordinate mapping as in PyTorch
Tensor interpolate(const Tensor& x, const Shape& size, const std::vector<double>& scales, const std::string& mode,
                   bool align_corners);

// ---- reductions (reduce.cpp); empty dims = all dims ---------------------------------------------
Tensor sum(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
Tensor prod(const Tensor& x, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
// ---- running reductions along dim (scan.cpp) ----
Tensor cumsum(const Tensor& x, int64_t dim);
Tensor cumprod(const Tensor& x, int64_t dim);
Tensor exclusive_cumprod(const Tensor& x, int64_t dim);  // prod_{i < k} x_i along dim (1 first)
Tensor logcumsumexp(const Tensor& x, int64_t dim);
TensorList cumulative_extreme(const Tensor& x, int64_t dim, bool is_max);  // cummax / cummin: {values, indices}
// (sum |x|^ord)^(1/ord) over dims (all when empty); ord = +-inf: max / min |x|, 0: nonzero count
Tensor vector_norm(const Tensor& x, double ord = 2, const Dims& dims = {}, bool keepdim = false);
// einsum (einsum.cpp): any subscripts, contractions as batched matmuls
Tensor einsum(const std::string& equation, const TensorList& operands);
// ---- ordering (sort.cpp): sort along a dim, stable, NaN the largest ----
TensorList sort(const Tensor& x, int64_t dim = -1, bool descending = false);  // {values, indices}
Tensor argsort(const Tensor& x, int64_t dim = -1, bool descending = false);
TensorList topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true);
TensorList kthvalue(const Tensor& x, int64_t k, int64_t dim = -1, bool keepdim = false);
TensorList median(const Tensor& x, int64_t dim, bool keepdim = false);  // the lower median; NaN if the line has one
TensorList mode(const Tensor& x, int64_t dim = -1, bool keepdim = false);  // the most frequent (smallest of ties)
// unique values of the flattened tensor, sorted: {values, inverse (x's shape), counts}
TensorList unique(const Tensor& x);
TensorList unique_dim(const Tensor& x, int64_t dim);  // distinct slices along dim: {values, inverse (n), counts}
// max / min over one dim with the index of the first extreme: {values, indices}
TensorList max_with_index(const Tensor& x, int64_t dim, bool keepdim, bool is_max);
Tensor any(const Tensor& x, const Dims& dims = {}, bool keepdim = false);  // bool out; False over nothing
Tensor all(const Tensor& x, const Dims& dims = {}, bool keepdim = false);  // bool out; True over nothing
Tensor amax(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
Tensor amin(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
Tensor var(const Tensor& x, const Dims& dims = {}, double correction = 1, bool keepdim = false);
Tensor std(const Tensor& x, const Dims& dims = {}, double correction = 1, bool keepdim = false);
Tensor logsumexp(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
Tensor argmax(const Tensor& x, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
Tensor argmin(const Tensor& x, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
// Sum over the broadcast dims so that the result has `shape` (the adjoint of expand).
Tensor sum_to(const Tensor& x, const Shape& shape);

// ---- matmul (matmul.cpp) ------------------------------------------------------------------------
Tensor matmul(const Tensor& a, const Tensor& b);
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = Tensor());  // x w^T + b

// ---- shape and views (movement.cpp) -------------------------------------------------------------
Tensor reshape(const Tensor& x, Shape shape);  // one -1 allowed; a view when the strides allow
Tensor view(const Tensor& x, Shape shape);     // always a view, raises otherwise
Tensor permute(const Tensor& x, const Dims& dims);
Tensor transpose(const Tensor& x, int64_t d0, int64_t d1);
Tensor expand(const Tensor& x, const Shape& shape);  // -1 keeps a dim
Tensor squeeze(const Tensor& x, const Dims& dims = {});
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor flatten(const Tensor& x, int64_t start = 0, int64_t end = -1);
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
// copies (copy.cpp)
Tensor contiguous(const Tensor& x);
Tensor clone(const Tensor& x);
Tensor detach(const Tensor& x);
Tensor to_dtype(const Tensor& x, DType dtype);
// A copy on `device` (contiguous); dx = dy moved back to x's device. Returns x when it is there.
Tensor to_device(const Tensor& x, Device device);
// joining and splitting (join.cpp)
Tensor cat(const TensorList& xs, int64_t dim);
Tensor stack(const TensorList& xs, int64_t dim);
TensorList split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim);
TensorList split(const Tensor& x, int64_t size, int64_t dim);
TensorList chunk(const Tensor& x, int64_t chunks, int64_t dim);

// Basic indexing (ints, slices with steps, None, Ellipsis) as one strided view.
struct IndexItem {
  enum Kind { Int, Slice, NewAxis, Ellipsis } kind = Int;
  int64_t index = 0;                   // Int
  std::optional<int64_t> start, stop;  // Slice, as Python gives them (negative counts from the end)
  int64_t step = 1;                    // Slice, > 0
};
Tensor basic_index(const Tensor& x, const std::vector<IndexItem>& items);
// Writes `src` into `dst` (same shape after broadcasting) in place, recorded when it needs to be.
// The adjoint of basic_index: a zero tensor of `base_shape` with `g` written where the view lies.
Tensor view_scatter(const Tensor& g, const Shape& base_shape, const std::vector<IndexItem>& items);

// ---- gather and scatter (index.cpp) -------------------------------------------------------------
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
Tensor index_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src);
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
Tensor scatter_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src);
Tensor nonzero(const Tensor& mask);  // (n, ndim) int64
// writing by masks and along a dim (scatter.cpp)
Tensor masked_select(const Tensor& x, const Tensor& mask);                          // 1-d
Tensor masked_scatter(const Tensor& x, const Tensor& mask, const Tensor& source);  // source's elements in order
Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);  // src may be 0-d (a value)
// reduce: "sum", "prod", "mean", "amax", "amin"
Tensor scatter_reduce(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src, const std::string& reduce,
                      bool include_self = true);
// Advanced indexing: x[idx_0, ..., idx_k] with integer tensors after basic indexing.
Tensor advanced_index(const Tensor& x, const std::vector<std::optional<Tensor>>& indices);
// y = x with y[indices] = values (advanced indexing), out of place and differentiable.
Tensor index_put(const Tensor& x, const std::vector<std::optional<Tensor>>& indices, const Tensor& values);
// x[indices] = values, in place (inplace.cpp).
void index_put_(const Tensor& x, const std::vector<std::optional<Tensor>>& indices, const Tensor& values);

// ---- neural-network functions (nn.cpp, lstm.cpp, attention.cpp) --------------------------------
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
// reduction: 0 none, 1 mean, 2 sum
Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index, int reduction);
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias, double eps);
Tensor embedding(const Tensor& weight, const Tensor& indices, std::optional<int64_t> padding_idx);
// One LSTM step after its matmuls: gates (B, 4H) and c (B, H) -> {h, c} (lstm.cpp).
TensorList lstm_cell(const Tensor& gates, const Tensor& c);
// softmax(q k^T * scale + mask) v, fused (attention.cpp). mask: undefined, bool (true = may
// attend) or additive float, broadcastable to (..., L, S).
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                                    double dropout_p, bool is_causal, std::optional<double> scale);

// ---- composite references of the fused ops ------------------------------------------------------
// Each fused op above (and gelu) has one definition in ordinary differentiable ops beside it: its
// create_graph (double-backward) path, and the oracle the tests hold the fused kernels to.
Tensor softmax_reference(const Tensor& x, int64_t dim);
Tensor log_softmax_reference(const Tensor& x, int64_t dim);
Tensor cross_entropy_reference(const Tensor& logits, const Tensor& target, int64_t ignore_index, int reduction);
Tensor layer_norm_reference(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                            double eps);
Tensor gelu_reference(const Tensor& x, bool tanh_approximation);
TensorList lstm_cell_reference(const Tensor& gates, const Tensor& c);
// attention's: the weights softmax(q k^T * scale + mask) (..., L, S) (also what need_weights returns);
// the reference of the output is attention_weights(q, k, ...) @ v.
Tensor attention_weights(const Tensor& q, const Tensor& k, const Tensor& mask, bool is_causal, std::optional<double> scale);

// ---- in-place arithmetic used by optimizers and `+=` (inplace.cpp) --------------------------------
// dst = op(dst, src); rebases history when dst requires grad.
void add_(const Tensor& dst, const Tensor& src, double alpha = 1.0);
void sub_(const Tensor& dst, const Tensor& src);
void mul_(const Tensor& dst, const Tensor& src);
void div_(const Tensor& dst, const Tensor& src);
// Writes `src` into `dst` (src broadcast to dst's shape, cast to its dtype).
void copy_(const Tensor& dst, const Tensor& src);
void fill_(const Tensor& dst, double value);
// x[items] = value (basic indexing), in place.
void setitem_(const Tensor& x, const std::vector<IndexItem>& items, const Tensor& value);
// Copies src into dst's memory without autograd (the kernel side of every in-place write; copy.cpp).
void write_into(const Tensor& dst, const Tensor& src, const char* op);

// ---- C++ operator sugar for backward formulas --------------------------------------------------
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);
// The wrapped number for `value` next to a tensor of dtype `like`.
Tensor wrap_scalar(double value, const Tensor& like);

}  // namespace tg
