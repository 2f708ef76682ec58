"""Derives the polynomial coefficients of fn::erf_float, fn::normal_cdf_float and fn::tanh_float
(kernels/functors.h).

Least-squares fits in float64 on a Chebyshev basis, converted to monomials for Horner's rule:
  erfc(a) exp(a^2) / t = Q(t),  t = 1 / (1 + a/2),  a in [0.5, 4]  (degree 6; erf_float)
  the same on a in [0, 9.5]                                       (degree 8; normal_cdf_float)
  tanh(x) / x = P(x^2),         x in [0, 0.625]                   (degree 5)
plus the Taylor coefficients of erf used below |x| = 0.5. Prints each set and its max error.

    python csrc/kernels/fit_float_math.py
"""
import math

import numpy as np

Poly = np.polynomial.Polynomial
Cheb = np.polynomial.chebyshev.Chebyshev


def fit(x, y, degree):
    coef = Cheb.fit(x, y, degree).convert(kind=Poly).coef
    return coef, np.max(np.abs(Poly(coef)(x) - y) / np.abs(y))


a = np.linspace(0.5, 4.0, 20001)
t = 1 / (1 + 0.5 * a)
q, err = fit(t, np.array([math.erfc(v) for v in a]) * np.exp(a * a) / t, 6)
print(f"erfc Q(t), low to high order (max relative error {err:.1e}):", ", ".join(f"{c:.10e}" for c in q))

a = np.linspace(0.0, 9.5, 40001)
t = 1 / (1 + 0.5 * a)
q, err = fit(t, np.array([math.erfc(v) for v in a]) * np.exp(a * a) / t, 8)
print(f"normal cdf's erfc Q(t), low to high order (max relative error {err:.1e}):",
      ", ".join(f"{c:.10e}" for c in q))

x = np.linspace(1e-6, 0.625, 20001)
p, err = fit(x * x, np.tanh(x) / x, 5)
print(f"tanh P(x^2), low to high order (max relative error {err:.1e}):", ", ".join(f"{c:.10e}" for c in p))

taylor = [2 / math.sqrt(math.pi) * (-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(8)]
print("erf Taylor, x^1 to x^15:", ", ".join(f"{c:.10e}" for c in taylor))
