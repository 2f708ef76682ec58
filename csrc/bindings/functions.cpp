// Module functions (tapegrad.exp(x), tapegrad.zeros(2, 3), ...). The math functions are bound
// both as module functions and as Tensor methods from one definition.
#include "bindings/convert.h"
#include "ops/ops.h"

namespace py = pybind11;

namespace tg {

namespace {

using Cls = TensorClass;

template <class F, class... Extra>
void both(py::module_& m, Cls& cls, const char* name, F&& f, const Extra&... extra) {
  bind_function_and_method(m, cls, name, std::forward<F>(f), extra...);
}

struct Options {
  std::optional<DType> dtype;
  Device device;
  bool requires_grad = false;
};

Options options_of(const py::kwargs& kw, const char* op) {
  Options o;
  for (auto item : kw) {
    std::string key = item.first.cast<std::string>();
    if (key == "dtype") {
      if (!item.second.is_none()) o.dtype = item.second.cast<DType>();
    } else if (key == "device") {
      if (!item.second.is_none()) o.device = py::isinstance<Device>(item.second) ? item.second.cast<Device>()
                                                                                   : Device::parse(item.second.cast<std::string>());
    } else if (key == "requires_grad") {
      o.requires_grad = item.second.cast<bool>();
    } else {
      throw TypeError(str(op, ": unexpected keyword argument '", key, "'"));
    }
  }
  return o;
}

Tensor finish(Tensor t, const Options& o) {
  if (o.requires_grad) t.set_requires_grad(true);
  return t;
}

// Both operands of a module-level binary function, either of which may be a number.
std::pair<Tensor, Tensor> operands(const py::object& a, const py::object& b, const char* op) {
  if (py::isinstance<TensorImpl>(a)) {
    auto tb = other_operand(a.cast<Tensor>(), b);
    TG_CHECK(tb.has_value(), TypeError, op, ": unsupported operand type ", python_type_name(b));
    return {a.cast<Tensor>(), *tb};
  }
  TG_CHECK(py::isinstance<TensorImpl>(b), TypeError, op, ": expected at least one tensor argument");
  auto ta = other_operand(b.cast<Tensor>(), a);
  TG_CHECK(ta.has_value(), TypeError, op, ": unsupported operand type ", python_type_name(a));
  return {*ta, b.cast<Tensor>()};
}

// Tensors given as f(a, b, ...) or f([a, b, ...]) (einsum's operands, meshgrid's vectors).
TensorList tensors_of(const py::args& args) {
  if (args.size() == 1 && (py::isinstance<py::list>(args[0]) || py::isinstance<py::tuple>(args[0])))
    return args[0].cast<TensorList>();
  TensorList out;
  for (auto a : args) out.push_back(a.cast<Tensor>());
  return out;
}

// repeat_interleave's repeats: a tensor, or an int as a 0-d int64 tensor beside x
Tensor counts_of(const Tensor& x, const py::object& repeats) {
  if (py::isinstance<TensorImpl>(repeats)) return repeats.cast<Tensor>();
  return full({}, double(repeats.cast<int64_t>()), DType::Int64, x.device());
}

int reduction_code(const std::string& r, const char* op) {
  if (r == "none") return 0;
  if (r == "mean") return 1;
  if (r == "sum") return 2;
  throw ValueError(str(op, ": reduction must be 'none', 'mean' or 'sum', got '", r, "'"));
}

}  // namespace

void bind_functions(py::module_& m) {
  Cls cls = py::reinterpret_borrow<Cls>(m.attr("Tensor"));

  // ---- creation ----
  m.def("zeros", [](const py::args& a, const py::kwargs& kw) {
    Options o = options_of(kw, "zeros");
    return finish(zeros(new_shape_of(a, "zeros"), o.dtype.value_or(DType::Float32), o.device), o);
  });
  m.def("ones", [](const py::args& a, const py::kwargs& kw) {
    Options o = options_of(kw, "ones");
    return finish(ones(new_shape_of(a, "ones"), o.dtype.value_or(DType::Float32), o.device), o);
  });
  m.def("empty", [](const py::args& a, const py::kwargs& kw) {
    Options o = options_of(kw, "empty");
    return finish(zeros(new_shape_of(a, "empty"), o.dtype.value_or(DType::Float32), o.device), o);
  });
  m.def("rand", [](const py::args& a, const py::kwargs& kw) {
    Options o = options_of(kw, "rand");
    return finish(rand(new_shape_of(a, "rand"), o.dtype.value_or(DType::Float32), o.device), o);
  });
  m.def("randn", [](const py::args& a, const py::kwargs& kw) {
    Options o = options_of(kw, "randn");
    return finish(randn(new_shape_of(a, "randn"), o.dtype.value_or(DType::Float32), o.device), o);
  });
  m.def("full", [](const py::object& shape, const Scalar& value, const py::kwargs& kw) {
    Options o = options_of(kw, "full");
    const Shape s = new_shape_of(shape, "full");
    DType d = o.dtype.value_or(default_of_category(value.category));
    Tensor t = full(s, value.value, d, o.device);
    if (d == DType::Int64 && value.category == 1) fill_(t, static_cast<double>(value.int_value));
    return finish(t, o);
  }, py::arg("size"), py::arg("fill_value"));
  m.def("randint", [](int64_t low, const py::object& high, const py::object& size, const py::kwargs& kw) {
    Options o = options_of(kw, "randint");
    int64_t lo = low, hi;
    py::object shape = size;
    if (high.is_none() || (!py::isinstance<py::int_>(high) && size.is_none())) {  // randint(high, size)
      lo = 0;
      hi = low;
      shape = high;
    } else {
      hi = high.cast<int64_t>();
    }
    TG_CHECK(!shape.is_none(), TypeError, "randint: a size (tuple of ints) is required");
    const Shape s = new_shape_of(shape, "randint");
    return finish(randint(lo, hi, s, o.dtype.value_or(DType::Int64), o.device), o);
  }, py::arg("low"), py::arg("high") = py::none(), py::arg("size") = py::none());
  m.def("arange", [](const Scalar& start, const std::optional<Scalar>& end, const Scalar& step, const py::kwargs& kw) {
    Options o = options_of(kw, "arange");
    Scalar s0 = end ? start : Scalar{0, 0, 1}, s1 = end ? *end : start;
    bool any_float = s0.category == 2 || s1.category == 2 || step.category == 2;
    DType d = o.dtype.value_or(any_float ? DType::Float32 : DType::Int64);
    return finish(arange(s0.value, s1.value, step.value, d, o.device), o);
  }, py::arg("start"), py::arg("end") = py::none(), py::arg("step") = Scalar{1, 1, 1});
  m.def("linspace", [](double start, double end, int64_t steps, const py::kwargs& kw) {
    Options o = options_of(kw, "linspace");
    return finish(linspace(start, end, steps, o.dtype.value_or(DType::Float32), o.device), o);
  }, py::arg("start"), py::arg("end"), py::arg("steps"));
  m.def("eye", [](int64_t n, std::optional<int64_t> mcols, const py::kwargs& kw) {
    Options o = options_of(kw, "eye");
    return finish(eye(n, mcols.value_or(n), o.dtype.value_or(DType::Float32), o.device), o);
  }, py::arg("n"), py::arg("m") = py::none());
  m.def("manual_seed", [](uint64_t s) { manual_seed(s); }, py::arg("seed"));
  m.def("initial_seed", &initial_seed);
  m.def("_rng_state", &rng_state, "The generator as (seed, next Philox counter).");
  m.def("_set_rng_state", &set_rng_state, py::arg("seed"), py::arg("offset"));
  m.def("from_numpy", &from_numpy, py::arg("array"), "A tensor sharing the NumPy array's memory.");
  m.def("_scalar_tensor", [](const Scalar& s, std::optional<DType> d) { return scalar_to_tensor(s, d); });

  // ---- elementwise ----
#define TG_BIND_UNARY(f) both(m, cls, #f, &f);
  TG_UNARY_FUNCTIONS(TG_BIND_UNARY)
#undef TG_BIND_UNARY
  both(m, cls, "gelu", [](const Tensor& x, const std::string& approximate) {
    TG_CHECK(approximate == "none" || approximate == "tanh", ValueError, "gelu: approximate must be 'none' or 'tanh', got '",
             approximate, "'");
    return gelu(x, approximate == "tanh");
  }, py::arg("approximate") = "none");
#define TG_BIND_BINARY(NAME, FN)                                                    \
  both(m, cls, NAME, [](const py::object& a, const py::object& b) {                 \
    auto [x, y] = operands(a, b, NAME);                                             \
    MaybeNoGIL nogil(std::max(x.numel(), y.numel()));                               \
    return FN(x, y);                                                                \
  }, py::arg("other"));
#define TG_BIND_BINARY_FUNCTION(f) TG_BIND_BINARY(#f, f)
  TG_BINARY_FUNCTIONS(TG_BIND_BINARY_FUNCTION)
#undef TG_BIND_BINARY_FUNCTION
  TG_BIND_BINARY("matmul", matmul)
  TG_BIND_BINARY("mm", matmul)
#undef TG_BIND_BINARY
  m.def("where", [](const Tensor& cond, const py::object& a, const py::object& b) {
    auto [x, y] = operands(a, b, "where");
    return where(cond, x, y);
  }, py::arg("condition"), py::arg("input"), py::arg("other"));
  both(m, cls, "masked_fill", [](const Tensor& x, const Tensor& mask, const py::object& value) {
    auto v = other_operand(x, value);
    TG_CHECK(v.has_value(), TypeError, "masked_fill: value must be a number or a 0-d tensor");
    return masked_fill(x, mask, *v);
  }, py::arg("mask"), py::arg("value"));
  auto clamp_fn = [](const Tensor& x, std::optional<double> lo, std::optional<double> hi) { return clamp(x, lo, hi); };
  both(m, cls, "clamp", clamp_fn, py::arg("min") = py::none(), py::arg("max") = py::none());
  both(m, cls, "clip", clamp_fn, py::arg("min") = py::none(), py::arg("max") = py::none());

  both(m, cls, "nan_to_num", &nan_to_num, py::arg("nan") = 0.0, py::arg("posinf") = py::none(),
       py::arg("neginf") = py::none());
  both(m, cls, "lerp", [](const Tensor& start, const Tensor& end, const py::object& weight) {
    auto w = other_operand(start, weight);
    TG_CHECK(w.has_value(), TypeError, "lerp: weight must be a number or a tensor");
    return lerp(start, end, *w);
  }, py::arg("end"), py::arg("weight"));
  both(m, cls, "isclose", [](const py::object& a, const py::object& b, double rtol, double atol, bool equal_nan) {
    auto [x, y] = operands(a, b, "isclose");
    return isclose(x, y, rtol, atol, equal_nan);
  }, py::arg("other"), py::arg("rtol") = 1e-5, py::arg("atol") = 1e-8, py::arg("equal_nan") = false);
  both(m, cls, "allclose", [](const py::object& a, const py::object& b, double rtol, double atol, bool equal_nan) {
    auto [x, y] = operands(a, b, "allclose");
    return all(isclose(x, y, rtol, atol, equal_nan)).item<bool>();
  }, py::arg("other"), py::arg("rtol") = 1e-5, py::arg("atol") = 1e-8, py::arg("equal_nan") = false);

  // ---- activations (tapegrad.nn.functional), PyTorch's argument names ----
  m.def("leaky_relu", &leaky_relu, py::arg("input"), py::arg("negative_slope") = 0.01);
  m.def("elu", &elu, py::arg("input"), py::arg("alpha") = 1.0);
  m.def("celu", &celu, py::arg("input"), py::arg("alpha") = 1.0);
  m.def("hardtanh", &hardtanh, py::arg("input"), py::arg("min_val") = -1.0, py::arg("max_val") = 1.0);
  for (auto [name, fn] : {std::pair{"selu", &selu}, {"softsign", &softsign}, {"mish", &mish}, {"logsigmoid", &logsigmoid},
                          {"hardsigmoid", &hardsigmoid}, {"hardswish", &hardswish}, {"relu6", &relu6}})
    m.def(name, fn, py::arg("input"));

  // ---- reductions ----
  auto reduce_binding = [](Tensor (*fn)(const Tensor&, const Dims&, bool)) {
    return [fn](const Tensor& x, const py::object& dim, bool keepdim) {
      const Dims dims = dims_of(dim);  // Python objects are read before the GIL is released
      MaybeNoGIL nogil(x.numel());
      return fn(x, dims, keepdim);
    };
  };
  both(m, cls, "sum", reduce_binding(&sum), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  both(m, cls, "mean", reduce_binding(&mean), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  both(m, cls, "any", reduce_binding(&any), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  both(m, cls, "all", reduce_binding(&all), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  both(m, cls, "amax", reduce_binding(&amax), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  both(m, cls, "amin", reduce_binding(&amin), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  both(m, cls, "logsumexp", reduce_binding(&logsumexp), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  // max / min, as PyTorch's: of everything; over one dim, a (values, indices) named tuple; against
  // another tensor, elementwise (torch.max(a, b)). A tuple of dims gives the values alone (amax).
  for (bool is_max : {true, false}) {
    const char* name = is_max ? "max" : "min";
    py::object values_indices = result_type(name, {"values", "indices"});
    both(m, cls, name, [is_max, values_indices](const Tensor& x, const py::object& dim, bool keepdim) -> py::object {
      if (py::isinstance<TensorImpl>(dim)) return py::cast(is_max ? maximum(x, dim.cast<Tensor>()) : minimum(x, dim.cast<Tensor>()));
      if (py::isinstance<py::int_>(dim)) {
        TensorList r = max_with_index(x, dim.cast<int64_t>(), keepdim, is_max);
        return values_indices(r[0], r[1]);
      }
      const Dims dims = dims_of(dim);
      return py::cast(is_max ? amax(x, dims, keepdim) : amin(x, dims, keepdim));
    }, py::arg("dim") = py::none(), py::arg("keepdim") = false);
  }
  both(m, cls, "var", [](const Tensor& x, const py::object& dim, std::optional<bool> unbiased, bool keepdim,
                         std::optional<double> correction) {
    double c = correction ? *correction : (unbiased.value_or(true) ? 1.0 : 0.0);
    return var(x, dims_of(dim), c, keepdim);
  }, py::arg("dim") = py::none(), py::arg("unbiased") = py::none(), py::arg("keepdim") = false,
     py::arg("correction") = py::none());
  both(m, cls, "std", [](const Tensor& x, const py::object& dim, std::optional<bool> unbiased, bool keepdim,
                         std::optional<double> correction) {
    double c = correction ? *correction : (unbiased.value_or(true) ? 1.0 : 0.0);
    return std(x, dims_of(dim), c, keepdim);
  }, py::arg("dim") = py::none(), py::arg("unbiased") = py::none(), py::arg("keepdim") = false,
     py::arg("correction") = py::none());
  both(m, cls, "argmax", &argmax, py::arg("dim") = py::none(), py::arg("keepdim") = false);
  both(m, cls, "argmin", &argmin, py::arg("dim") = py::none(), py::arg("keepdim") = false);

  // ---- shape (the Tensor methods with *sizes live in tensor.cpp) ----
  m.def("reshape", [](const Tensor& x, const Shape& s) { return reshape(x, s); }, py::arg("input"), py::arg("shape"));
  m.def("permute", [](const Tensor& x, const Dims& d) { return permute(x, d); }, py::arg("input"), py::arg("dims"));
  m.def("transpose", &transpose, py::arg("input"), py::arg("dim0"), py::arg("dim1"));
  m.def("unsqueeze", &unsqueeze, py::arg("input"), py::arg("dim"));
  m.def("squeeze", [](const Tensor& x, const py::object& dim) { return squeeze(x, dims_of(dim)); }, py::arg("input"),
        py::arg("dim") = py::none());
  m.def("flatten", &flatten, py::arg("input"), py::arg("start_dim") = 0, py::arg("end_dim") = -1);
  m.def("narrow", &narrow, py::arg("input"), py::arg("dim"), py::arg("start"), py::arg("length"));
  m.attr("_functions").cast<py::list>().append("narrow");
  // flip / roll / tile / tril / triu as PyTorch's (dims as an int or a sequence); repeat is a method
  auto ints = [](const py::object& v) { return py::isinstance<py::int_>(v) ? Dims{v.cast<int64_t>()} : v.cast<Dims>(); };
  both(m, cls, "flip", [ints](const Tensor& x, const py::object& dims) { return flip(x, ints(dims)); }, py::arg("dims"));
  both(m, cls, "roll", [ints](const Tensor& x, const py::object& shifts, const py::object& dims) {
    return roll(x, ints(shifts), dims.is_none() ? Dims{} : ints(dims));
  }, py::arg("shifts"), py::arg("dims") = py::none());
  both(m, cls, "tile", [ints](const Tensor& x, const py::object& reps) { return tile(x, ints(reps)); }, py::arg("dims"));
  both(m, cls, "tril", &tril, py::arg("diagonal") = 0);
  both(m, cls, "triu", &triu, py::arg("diagonal") = 0);
  m.def("_pad", &pad, py::arg("input"), py::arg("pad"), py::arg("mode"), py::arg("value"));
  both(m, cls, "movedim", [ints](const Tensor& x, const py::object& src, const py::object& dst) {
    return movedim(x, ints(src), ints(dst));
  }, py::arg("source"), py::arg("destination"));
  both(m, cls, "moveaxis", [ints](const Tensor& x, const py::object& src, const py::object& dst) {
    return movedim(x, ints(src), ints(dst));
  }, py::arg("source"), py::arg("destination"));
  both(m, cls, "swapaxes", &transpose, py::arg("axis0"), py::arg("axis1"));
  both(m, cls, "swapdims", &transpose, py::arg("dim0"), py::arg("dim1"));
  both(m, cls, "unflatten", [](const Tensor& x, int64_t dim, const Shape& sizes) {
    TG_CHECK(x.dim() > 0, ShapeError, "unflatten: expected a tensor with at least 1 dim, got a 0-d tensor");
    const int64_t d = wrap_dim(dim, x.dim(), "unflatten");
    Shape s(x.shape().begin(), x.shape().begin() + d);
    s.insert(s.end(), sizes.begin(), sizes.end());
    s.insert(s.end(), x.shape().begin() + d + 1, x.shape().end());
    return reshape(x, s);
  }, py::arg("dim"), py::arg("sizes"));
  both(m, cls, "diagonal", &diagonal, py::arg("offset") = 0, py::arg("dim1") = 0, py::arg("dim2") = 1);
  both(m, cls, "diag", &diag, py::arg("diagonal") = 0);
  both(m, cls, "take_along_dim", &take_along_dim, py::arg("indices"), py::arg("dim") = py::none());
  both(m, cls, "dot", &dot, py::arg("other"));
  both(m, cls, "inner", &inner, py::arg("other"));
  both(m, cls, "outer", &outer, py::arg("vec2"));
  // einsum(equation, *operands) or einsum(equation, [operands]), as PyTorch
  m.def("einsum", [](const std::string& equation, const py::args& args) {
    return einsum(equation, tensors_of(args));
  }, py::arg("equation"));
  m.attr("_functions").cast<py::list>().append("einsum");
  // vector norms: tg.norm / Tensor.norm with p a number, inf or 'fro' (the 2-norm of the elements);
  // tapegrad.linalg builds on _C.vector_norm
  m.def("vector_norm", [](const Tensor& x, double ord, const py::object& dim, bool keepdim) {
    return vector_norm(x, ord, dims_of(dim), keepdim);
  }, py::arg("input"), py::arg("ord") = 2.0, py::arg("dim") = py::none(), py::arg("keepdim") = false);
  both(m, cls, "norm", [](const Tensor& x, const py::object& p, const py::object& dim, bool keepdim) {
    double ord = 2.0;
    if (py::isinstance<py::str>(p)) {
      const std::string name = p.cast<std::string>();
      TG_CHECK(name == "fro", ValueError, "norm: p='", name, "' is not supported (numbers, inf and 'fro' are), shape ",
               shape_str(x.shape()));
    } else if (!p.is_none()) {
      ord = p.cast<double>();
    }
    return vector_norm(x, ord, dims_of(dim), keepdim);
  }, py::arg("p") = "fro", py::arg("dim") = py::none(), py::arg("keepdim") = false);
  both(m, cls, "count_nonzero", [](const Tensor& x, const py::object& dim) { return count_nonzero(x, dims_of(dim)); },
       py::arg("dim") = py::none());
  for (bool with_std : {false, true})
    m.def(with_std ? "std_mean" : "var_mean", [with_std](const Tensor& x, const py::object& dim, std::optional<double> correction,
                                                         bool keepdim, std::optional<bool> unbiased) {
      const double c = correction ? *correction : (unbiased.value_or(true) ? 1.0 : 0.0);
      const Dims dims = dims_of(dim);
      const TensorList r = with_std ? TensorList{std(x, dims, c, keepdim), mean(x, dims, keepdim)} : var_mean(x, dims, c, keepdim);
      return py::make_tuple(r[0], r[1]);
    }, py::arg("input"), py::arg("dim") = py::none(), py::arg("correction") = py::none(), py::arg("keepdim") = false,
       py::arg("unbiased") = py::none());
  for (const char* name : {"var_mean", "std_mean"}) m.attr("_functions").cast<py::list>().append(name);  // tg.var_mean
  m.def("broadcast_to", [](const Tensor& x, const Shape& s) { return expand(x, s); }, py::arg("input"), py::arg("shape"));
  m.def("cat", &cat, py::arg("tensors"), py::arg("dim") = 0);
  m.def("concat", &cat, py::arg("tensors"), py::arg("dim") = 0);
  m.def("stack", &stack, py::arg("tensors"), py::arg("dim") = 0);
  m.def("split", [](const Tensor& t, const py::object& size, int64_t dim) {
    if (py::isinstance<py::int_>(size)) return split(t, size.cast<int64_t>(), dim);
    return split(t, size.cast<std::vector<int64_t>>(), dim);
  }, py::arg("tensor"), py::arg("split_size_or_sections"), py::arg("dim") = 0);
  m.def("chunk", &chunk, py::arg("input"), py::arg("chunks"), py::arg("dim") = 0);
  m.def("clone", &clone, py::arg("input"));
  m.def("detach", &detach, py::arg("input"));
  m.def("nonzero", &nonzero, py::arg("input"));

  // ---- gather / scatter ----
  both(m, cls, "gather", &gather, py::arg("dim"), py::arg("index"));
  both(m, cls, "index_select", &index_select, py::arg("dim"), py::arg("index"));
  both(m, cls, "index_add", &index_add, py::arg("dim"), py::arg("index"), py::arg("source"));
  both(m, cls, "scatter_add", &scatter_add, py::arg("dim"), py::arg("index"), py::arg("src"));
  both(m, cls, "masked_select", &masked_select, py::arg("mask"));
  both(m, cls, "masked_scatter", &masked_scatter, py::arg("mask"), py::arg("source"));
  // scatter(dim, index, src) or scatter(dim, index, value=...), reduce 'add' / 'multiply' as PyTorch's
  both(m, cls, "scatter", [](const Tensor& x, int64_t dim, const Tensor& index, const py::object& src,
                             const py::object& value, const py::object& reduce) {
    const py::object given = src.is_none() ? value : src;
    TG_CHECK(!given.is_none(), TypeError, "scatter: expected src or value");
    auto s = other_operand(x, given);
    TG_CHECK(s.has_value(), TypeError, "scatter: src must be a tensor or a number, got ", python_type_name(given));
    if (reduce.is_none()) return scatter(x, dim, index, *s);
    const std::string r = reduce.cast<std::string>();
    TG_CHECK(r == "add", ValueError, "scatter: reduce must be 'add' (or use scatter_reduce), got '", r, "'");
    return scatter_reduce(x, dim, index, s->dim() == 0 ? expand(*s, index.shape()) : *s, "sum", true);
  }, py::arg("dim"), py::arg("index"), py::arg("src") = py::none(), py::kw_only(), py::arg("value") = py::none(),
     py::arg("reduce") = py::none());
  both(m, cls, "scatter_reduce", &scatter_reduce, py::arg("dim"), py::arg("index"), py::arg("src"), py::arg("reduce"),
       py::kw_only(), py::arg("include_self") = true);
  // repeat_interleave(input, repeats, dim=None) with repeats an int or a tensor;
  // repeat_interleave(repeats) alone repeats arange(len(repeats))
  m.def("repeat_interleave", [](const Tensor& x, const py::object& repeats, std::optional<int64_t> dim) {
    if (repeats.is_none()) return repeat_interleave(arange(0, double(x.numel()), 1, DType::Int64, x.device()), x, 0);
    return repeat_interleave(x, counts_of(x, repeats), dim);
  }, py::arg("input"), py::arg("repeats") = py::none(), py::arg("dim") = py::none());
  cls.def("repeat_interleave", [](const Tensor& x, const py::object& repeats, std::optional<int64_t> dim) {
    return repeat_interleave(x, counts_of(x, repeats), dim);
  }, py::arg("repeats"), py::arg("dim") = py::none());
  m.attr("_functions").cast<py::list>().append("repeat_interleave");
  m.def("meshgrid", [](const py::args& args, const std::string& indexing) {
    const TensorList xs = tensors_of(args);
    TG_CHECK(indexing == "ij" || indexing == "xy", ValueError, "meshgrid: indexing must be 'ij' or 'xy', got '", indexing, "'");
    return py::tuple(py::cast(meshgrid(xs, indexing == "xy")));
  }, py::kw_only(), py::arg("indexing") = "ij");
  m.attr("_functions").cast<py::list>().append("meshgrid");

  // ---- neural-network functions (wrapped by tapegrad.nn.functional) ----
  both(m, cls, "softmax", [](const Tensor& x, int64_t dim) {
    MaybeNoGIL nogil(x.numel());
    return softmax(x, dim);
  }, py::arg("dim"));
  both(m, cls, "log_softmax", [](const Tensor& x, int64_t dim) {
    MaybeNoGIL nogil(x.numel());
    return log_softmax(x, dim);
  }, py::arg("dim"));
  m.def("_cross_entropy", [](const Tensor& logits, const Tensor& target, int64_t ignore_index, const std::string& reduction) {
    int r = reduction_code(reduction, "cross_entropy");
    MaybeNoGIL nogil(logits.numel());
    return cross_entropy(logits, target, ignore_index, r);
  });
  m.def("_mse_loss", [](const Tensor& input, const Tensor& target, const std::string& reduction) {
    int r = reduction_code(reduction, "mse_loss");
    MaybeNoGIL nogil(input.numel());
    return mse_loss(input, target, r);
  });
  m.def("_binary_cross_entropy", [](const Tensor& input, const Tensor& target, const std::string& reduction) {
    int r = reduction_code(reduction, "binary_cross_entropy");
    MaybeNoGIL nogil(input.numel());
    return binary_cross_entropy(input, target, r);
  });
  m.def("_binary_cross_entropy_with_logits", [](const Tensor& input, const Tensor& target,
                                                const std::optional<Tensor>& pos_weight, const std::string& reduction) {
    int r = reduction_code(reduction, "binary_cross_entropy_with_logits");
    MaybeNoGIL nogil(input.numel());
    return binary_cross_entropy_with_logits(input, target, pos_weight ? *pos_weight : Tensor(), r);
  });
  m.def("_linear", [](const Tensor& x, const Tensor& w, const std::optional<Tensor>& b) {
    return linear(x, w, b ? *b : Tensor());
  }, py::arg("input"), py::arg("weight"), py::arg("bias") = py::none(), "x w^T + b: one GEMM, the bias in its epilogue.");
  m.def("_layer_norm", [](const Tensor& x, const Shape& shape, const std::optional<Tensor>& w,
                          const std::optional<Tensor>& b, double eps) {
    MaybeNoGIL nogil(x.numel());
    return layer_norm(x, shape, w ? *w : Tensor(), b ? *b : Tensor(), eps);
  });
  m.def("_embedding", [](const Tensor& weight, const Tensor& idx, std::optional<int64_t> padding_idx) {
    MaybeNoGIL nogil(std::max(idx.numel(), weight.numel()));  // (shapes are checked by the op)
    return embedding(weight, idx, padding_idx);
  });
  m.def("_scaled_dot_product_attention", [](const Tensor& q, const Tensor& k, const Tensor& v,
                                            const std::optional<Tensor>& mask, double dropout_p, bool is_causal,
                                            std::optional<double> scale) {
    MaybeNoGIL nogil(std::max(q.numel(), k.numel()));
    return scaled_dot_product_attention(q, k, v, mask ? *mask : Tensor(), dropout_p, is_causal, scale);
  });
  m.def("_attention_weights", [](const Tensor& q, const Tensor& k, const std::optional<Tensor>& mask, bool is_causal,
                                 std::optional<double> scale) {
    MaybeNoGIL nogil(std::max(q.numel(), k.numel()));
    return attention_weights(q, k, mask ? *mask : Tensor(), is_causal, scale);
  });
  m.def("_dropout", [](const Tensor& x, double p, bool training) {
    MaybeNoGIL nogil(x.numel());
    return dropout(x, p, training);
  });

  // ---- the fused ops' composite references (ops.h): the tests' oracle, and a reading aid ----
  py::module_ ref = m.def_submodule("reference", "The fused ops written in ordinary differentiable ops");
  ref.def("softmax", &softmax_reference, py::arg("x"), py::arg("dim"));
  ref.def("log_softmax", &log_softmax_reference, py::arg("x"), py::arg("dim"));
  ref.def("gelu", [](const Tensor& x, const std::string& approximate) { return gelu_reference(x, approximate == "tanh"); },
          py::arg("x"), py::arg("approximate") = "none");
  ref.def("cross_entropy", [](const Tensor& logits, const Tensor& target, int64_t ignore_index,
                              const std::string& reduction) {
    return cross_entropy_reference(logits, target, ignore_index, reduction_code(reduction, "cross_entropy"));
  }, py::arg("logits"), py::arg("target"), py::arg("ignore_index") = -100, py::arg("reduction") = "mean");
  ref.def("layer_norm", [](const Tensor& x, const Shape& shape, const std::optional<Tensor>& w,
                           const std::optional<Tensor>& b, double eps) {
    return layer_norm_reference(x, shape, w ? *w : Tensor(), b ? *b : Tensor(), eps);
  }, py::arg("x"), py::arg("normalized_shape"), py::arg("weight") = py::none(), py::arg("bias") = py::none(),
          py::arg("eps") = 1e-5);
  ref.def("lstm_cell", &lstm_cell_reference, py::arg("gates"), py::arg("c"));
  ref.def("scaled_dot_product_attention", [](const Tensor& q, const Tensor& k, const Tensor& v,
                                             const std::optional<Tensor>& mask, bool is_causal,
                                             std::optional<double> scale) {
    return matmul(attention_weights(q, k, mask ? *mask : Tensor(), is_causal, scale), v);
  }, py::arg("q"), py::arg("k"), py::arg("v"), py::arg("attn_mask") = py::none(), py::arg("is_causal") = false,
          py::arg("scale") = py::none());
}

}  // namespace tg
