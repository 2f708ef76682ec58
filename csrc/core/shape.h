// Shapes, strides and broadcasting. Strides count elements, not bytes, as in PyTorch.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tg {

using Shape = std::vector<int64_t>;

int64_t numel_of(const Shape& shape);

// What every new shape must satisfy (allocations, views, sizes given by the user): no negative
// dim (ShapeError), and the product of the dims, a 0 counting as 1, fits in int64 (ValueError) --
// so the element count, every contiguous stride and every partial product of dims computed
// later cannot overflow. Both errors name `op` and the shape.
void check_shape(const Shape& shape, const char* op);

// a + b and a * b of sizes, or a ValueError naming `op` when the result does not fit in int64.
int64_t checked_add(int64_t a, int64_t b, const char* op);
int64_t checked_mul(int64_t a, int64_t b, const char* op);
Shape contiguous_strides(const Shape& shape);
std::string shape_str(const Shape& shape);  // "(2, 3)"

// NumPy broadcasting: align trailing dims; each pair must be equal or contain a 1.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Strides that read `shape` (of `strides`) as if it had `target` shape: 0 on broadcast dims.
Shape broadcast_strides(const Shape& shape, const Shape& strides, const Shape& target);

// Wrap a possibly negative dim into [0, ndim); IndexError names the op otherwise.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);

// Bit mask of the dims to reduce; empty `dims` means all of them.
uint64_t reduce_mask(const std::vector<int64_t>& dims, int64_t ndim, const char* op);

}  // namespace tg
