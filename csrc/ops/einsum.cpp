// einsum: any subscripts ("ij,jk->ik", "bij,bjk", "ii->i", "...ij,...jk->...ik"), as a sequence
// of ops with kernels and gradients:
//   1. in each operand, a label repeated within it takes the diagonal (diagonal), and a label
//      found nowhere else (not in another operand, not in the output) is summed out (sum);
//   2. the operands are contracted left to right, each pair as one batched GEMM: labels of both
//      that are still needed are the batch, labels of both that are not are K, the rest are M
//      and N: (batch, M, K) @ (batch, K, N) through matmul;
//   3. what is left is summed over its unneeded labels and permuted into the output's order.
// Labels are letters; "..." stands for the same broadcast dims in every operand (right-aligned,
// as broadcasting aligns them). Without "->" the output is "..." and then the labels that appear
// once, in alphabetical order (uppercase first), as NumPy and PyTorch.
#include <algorithm>
#include <string>

#include "ops/dispatch.h"
#include "ops/ops.h"

namespace tg {

namespace {

using Labels = std::vector<int>;   // one per dim
constexpr int kLetters = 52;        // 'A'..'Z' -> 0..25, 'a'..'z' -> 26..51 (ASCII order)
// The k-th dim of "..." counted from its right end is label kLetters + k.

int letter_label(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return 26 + (c - 'a');
  throw ValueError(str("einsum: subscripts must be letters, got '", c, "'"));
}

// The labels of one term for a tensor of `ndim` dims (ndim < 0: the output, whose "..." spans
// `ellipsis_dims`).
Labels parse_term(const std::string& term, int64_t ndim, int64_t ellipsis_dims, const std::string& equation) {
  Labels before, after;
  bool seen_ellipsis = false;
  for (size_t i = 0; i < term.size(); ++i) {
    if (term.compare(i, 3, "...") == 0) {
      TG_CHECK(!seen_ellipsis, ValueError, "einsum: more than one '...' in a term of '", equation, "'");
      seen_ellipsis = true;
      i += 2;
      continue;
    }
    (seen_ellipsis ? after : before).push_back(letter_label(term[i]));
  }
  const int64_t letters = static_cast<int64_t>(before.size() + after.size());
  int64_t span = 0;
  if (ndim >= 0) {
    TG_CHECK(seen_ellipsis ? letters <= ndim : letters == ndim, ShapeError, "einsum: the term '", term, "' of '", equation,
             "' has ", letters, " subscripts for an operand of ", ndim, " dims");
    span = seen_ellipsis ? ndim - letters : 0;
  } else {
    span = seen_ellipsis ? ellipsis_dims : 0;
  }
  Labels labels = before;
  for (int64_t k = span - 1; k >= 0; --k) labels.push_back(kLetters + static_cast<int>(k));
  labels.insert(labels.end(), after.begin(), after.end());
  return labels;
}

int64_t position(const Labels& labels, int label) {
  auto it = std::find(labels.begin(), labels.end(), label);
  return it == labels.end() ? -1 : static_cast<int64_t>(it - labels.begin());
}

// A tensor with one label per dim.
struct Term {
  Tensor t;
  Labels labels;
};

// Sums out the labels for which `keep` is false.
template <class Keep>
Term sum_out(Term a, Keep keep) {
  Dims dims;
  Labels kept;
  for (size_t d = 0; d < a.labels.size(); ++d) {
    if (keep(a.labels[d])) kept.push_back(a.labels[d]);
    else dims.push_back(static_cast<int64_t>(d));
  }
  if (dims.empty()) return a;
  return {sum(a.t, dims), kept};
}

// The diagonal of every label repeated within the term (a label once per dim afterwards).
Term take_diagonals(Term a) {
  for (size_t d = 0; d < a.labels.size(); ++d) {
    for (size_t e = d + 1; e < a.labels.size(); ++e) {
      if (a.labels[e] != a.labels[d]) continue;
      TG_CHECK(a.t.size(static_cast<int64_t>(d)) == a.t.size(static_cast<int64_t>(e)), ShapeError,
               "einsum: a repeated subscript spans dims of sizes ", a.t.size(static_cast<int64_t>(d)), " and ",
               a.t.size(static_cast<int64_t>(e)), " (shape ", shape_str(a.t.shape()), ")");
      a.t = diagonal(a.t, 0, static_cast<int64_t>(d), static_cast<int64_t>(e));  // the diagonal becomes the last dim
      const int label = a.labels[d];
      a.labels.erase(a.labels.begin() + static_cast<int64_t>(e));
      a.labels.erase(a.labels.begin() + static_cast<int64_t>(d));
      a.labels.push_back(label);
      return take_diagonals(a);
    }
  }
  return a;
}

// a (x) b summed over the shared labels that `needed` rejects, as one batched matmul.
template <class Needed>
Term contract(Term a, Term b, Needed needed) {
  Labels batch, m_labels, k_labels, n_labels;
  for (int l : a.labels) (position(b.labels, l) >= 0 ? (needed(l) ? batch : k_labels) : m_labels).push_back(l);
  for (int l : b.labels)
    if (position(a.labels, l) < 0) n_labels.push_back(l);
  // Sizes of shared labels broadcast (a "..." dim may be 1 in one operand).
  auto size_of = [&](int l) {
    const int64_t pa = position(a.labels, l), pb = position(b.labels, l);
    if (pa < 0 || pb < 0) return pa < 0 ? b.t.size(pb) : a.t.size(pa);
    const int64_t sa = a.t.size(pa), sb = b.t.size(pb);
    TG_CHECK(sa == sb || sa == 1 || sb == 1, ShapeError, "einsum: a subscript spans sizes ", sa, " and ", sb,
             " in operands of shapes ", shape_str(a.t.shape()), " and ", shape_str(b.t.shape()));
    return sa == 1 ? sb : sa;
  };
  auto arrange = [&](const Term& x, const std::vector<const Labels*>& groups) {
    Dims order;
    Shape full_shape, grouped;
    for (const Labels* g : groups) {
      int64_t n = 1;
      for (int l : *g) {
        const int64_t p = position(x.labels, l);
        order.push_back(p);
        full_shape.push_back(size_of(l));
        n *= size_of(l);
      }
      grouped.push_back(n);
    }
    return reshape(expand(permute(x.t, order), full_shape), grouped);
  };
  const Tensor left = arrange(a, {&batch, &m_labels, &k_labels});   // (B, M, K)
  const Tensor right = arrange(b, {&batch, &k_labels, &n_labels});  // (B, K, N)
  Shape out_shape;
  Labels out_labels;
  for (const Labels* g : {&batch, &m_labels, &n_labels})
    for (int l : *g) out_shape.push_back(size_of(l)), out_labels.push_back(l);
  return {reshape(matmul(left, right), out_shape), out_labels};
}

}  // namespace

Tensor einsum(const std::string& equation_in, const TensorList& operands) {
  std::string equation;
  for (char c : equation_in)
    if (c != ' ') equation.push_back(c);
  TG_CHECK(!operands.empty(), ValueError, "einsum: expected at least one operand");
  const size_t arrow = equation.find("->");
  const std::string inputs = equation.substr(0, arrow);
  std::vector<std::string> terms(1);
  for (char c : inputs) {
    if (c == ',') terms.emplace_back();
    else terms.back().push_back(c);
  }
  TG_CHECK(terms.size() == operands.size(), ValueError, "einsum: '", equation_in, "' has ", terms.size(), " terms for ",
           operands.size(), " operands");
  std::vector<const Tensor*> devices;
  for (const Tensor& t : operands) devices.push_back(&t);
  for (const Tensor* t : devices) check_same_device("einsum", {devices[0], t});

  std::vector<Term> parsed;
  int64_t ellipsis_dims = 0;
  std::vector<int> count(kLetters + 64, 0);
  for (size_t i = 0; i < terms.size(); ++i) {
    Labels labels = parse_term(terms[i], operands[i].dim(), 0, equation_in);
    for (int l : labels) {
      TG_CHECK(l < kLetters + 64, ValueError, "einsum: too many dims under '...'");
      ellipsis_dims = std::max<int64_t>(ellipsis_dims, l >= kLetters ? l - kLetters + 1 : 0);
    }
    Labels distinct = labels;
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    for (int l : distinct) ++count[static_cast<size_t>(l)];
    parsed.push_back({operands[i], labels});
  }
  Labels output;
  if (arrow != std::string::npos) {
    output = parse_term(equation.substr(arrow + 2), -1, ellipsis_dims, equation_in);
    for (size_t i = 0; i < output.size(); ++i) {
      TG_CHECK(count[static_cast<size_t>(output[i])] > 0, ValueError, "einsum: the output subscript of '", equation_in,
               "' names a dim no operand has");
      TG_CHECK(position(output, output[i]) == static_cast<int64_t>(i), ValueError, "einsum: a subscript repeats in the output of '",
               equation_in, "'");
    }
  } else {
    for (int64_t k = ellipsis_dims - 1; k >= 0; --k) output.push_back(kLetters + static_cast<int>(k));
    for (int l = 0; l < kLetters; ++l)
      if (count[static_cast<size_t>(l)] == 1) {
        int64_t uses = 0;  // once in one operand (a label repeated within one term is summed)
        for (const Term& t : parsed) uses += std::count(t.labels.begin(), t.labels.end(), l);
        if (uses == 1) output.push_back(l);
      }
  }
  auto in_output = [&](int l) { return position(output, l) >= 0; };

  // 1. diagonals, and labels that nothing else needs summed out
  for (Term& t : parsed) {
    t = take_diagonals(t);
    t = sum_out(t, [&](int l) { return in_output(l) || count[static_cast<size_t>(l)] > 1; });
  }
  // 2. pairwise contractions, left to right
  Term acc = parsed[0];
  for (size_t i = 1; i < parsed.size(); ++i) {
    auto needed_later = [&](int l) {
      if (in_output(l)) return true;
      for (size_t j = i + 1; j < parsed.size(); ++j)
        if (position(parsed[j].labels, l) >= 0) return true;
      return false;
    };
    // a label of one side only that nothing later needs is summed before the product
    acc = sum_out(acc, [&](int l) { return needed_later(l) || position(parsed[i].labels, l) >= 0; });
    const Term b = sum_out(parsed[i], [&](int l) { return needed_later(l) || position(acc.labels, l) >= 0; });
    acc = contract(acc, b, needed_later);
  }
  // 3. the output's labels in its order
  acc = sum_out(acc, in_output);
  Dims order;
  for (int l : output) order.push_back(position(acc.labels, l));
  Tensor result = permute(acc.t, order);
  return result.same(operands[0]) && operands.size() == 1 ? clone(result) : result;
}

}  // namespace tg
