// baypr/core/special.hpp: the special functions baypr's densities, gradients and calibrated tail
// probabilities need, in namespace baypr::special. Needs the standard library only (plus
// errors.hpp, which brings Eigen's Core).
//
//   lgamma(x), digamma(x), trigamma(x), polygamma(n, x)   x > 0, n = 0..16
//   log1p(x)                                               x >= -1
//   ibeta(a, b, x), ibetac(a, b, x)                        I_x(a, b) and 1 - I_x(a, b)
//   f_sf, f_logsf, f_cdf (x, d1, d2), f_isf(p, d1, d2)     the F(d1, d2) distribution
//
// Every function accepts float, double and integer arguments (integers give double; long double
// is computed in double precision). lgamma, digamma, trigamma, polygamma and log1p also accept
// forward-mode dual numbers with the Eigen::AutoDiffScalar interface (value(), derivatives(), a
// (value, derivatives) constructor), nested to any depth, and propagate derivatives by the chain
// rule: lgamma' = digamma, digamma' = trigamma, polygamma(n)' = polygamma(n + 1),
// log1p'(x) = 1 / (1 + x). The dual overloads are generic templates, so this header does not need
// <unsupported/Eigen/AutoDiff>; include that yourself when you use AutoDiffScalar.
//
// Accuracy in double, relative, measured against 60-digit reference values
// (tests/reference/generate_special.py) and random parameter sweeps:
//   lgamma, trigamma, polygamma: <= 1e-15 over [1e-8, 1e8], also next to lgamma's roots 1 and 2.
//   digamma: <= 2.2e-15, also next to its root 1.4616... (a Taylor expansion about the root).
//   ibeta, ibetac, f_sf: <= 1e-14 + 8e-16 |ln value| for a, b in [0.5, 5e5], i.e. about 1e-14 for
//     values above 1e-6 and 3e-13 at 1e-300. Both tails are computed directly (never as 1 minus
//     something close to 1); the |ln value| term is the cost of exp() of a large exponent.
//   f_logsf: <= 1.5e-15, and finite where P(F > x) underflows.
//   f_isf: x to ~1e-15 for p >= 1e-6; the error grows like eps |ln p| / (x f(x) / p), 2e-14 at
//     p = 1e-100. Returns +inf if the quantile exceeds the largest double.
// Invalid arguments throw baypr::invalid_argument naming the function, the argument and the value.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <concepts>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>

#include "baypr/core/errors.hpp"
#include "baypr/core/traits.hpp"

namespace baypr::special {

// Plain (non-dual) arguments: integers compute in double, floating types keep their own type.
template <class T>
concept arithmetic = std::is_arithmetic_v<T>;

template <class T>
using real_t = std::conditional_t<std::is_integral_v<T>, double, T>;

namespace detail {

// The double result in the caller's type; a float result beyond FLT_MAX becomes +-inf explicitly
// (a plain cast of an out-of-range value is undefined behaviour).
template <class T>
T to_result(double v) {
  if constexpr (sizeof(T) < sizeof(double)) {
    constexpr double top = static_cast<double>(std::numeric_limits<T>::max());
    if (v > top) return std::numeric_limits<T>::infinity();
    if (v < -top) return -std::numeric_limits<T>::infinity();
  }
  return static_cast<T>(v);
}

// ---------------------------------------------------------------------------------------------
// Constants (double). Series coefficients were computed in 70-digit arithmetic.

inline constexpr double euler_gamma = 0.5772156649015329;
inline constexpr double half_log_two_pi = 0.9189385332046728;  // ln sqrt(2 pi)

// Bernoulli numbers B_2, B_4, ..., B_40.
inline constexpr std::array<double, 20> bernoulli_2k = {
    0.16666666666666666, -0.03333333333333333, 0.023809523809523808, -0.03333333333333333,
    0.07575757575757576, -0.2531135531135531,  1.1666666666666667,   -7.092156862745098,
    54.971177944862156,  -529.1242424242424,   6192.123188405797,    -86580.25311355312,
    1425517.1666666667,  -27298231.067816094,  601580873.9006424,    -15116315767.092157,
    429614643061.1667,   -13711655205088.332,  488332318973593.2,    -1.9296579341940068e+16};

// zeta(k) - 1 for k = 2..40: the series of ln Gamma(1 + z) with the pole at -1 removed, which
// converges for |z| < 2 and so fast on |z| <= 1/2.
inline constexpr std::array<double, 39> zeta_minus_one = {
    0.6449340668482264,     0.2020569031595943,     0.08232323371113819,    0.03692775514336993,
    0.01734306198444914,    0.008349277381922827,   0.00407735619794434,    0.0020083928260822143,
    0.0009945751278180853,  0.0004941886041194645,  0.0002460865533080483,  0.00012271334757848915,
    6.124813505870483e-05,  3.058823630702049e-05,  1.528225940865187e-05,  7.637197637899763e-06,
    3.81729326499984e-06,   1.908212716553939e-06,  9.539620338727962e-07,  4.769329867878064e-07,
    2.38450502727733e-07,   1.1921992596531106e-07, 5.960818905125948e-08,  2.980350351465228e-08,
    1.4901554828365043e-08, 7.45071178983543e-09,   3.725334024788457e-09,  1.862659723513049e-09,
    9.313274324196682e-10,  4.656629065033784e-10,  2.3283118336765053e-10, 1.164155017270052e-10,
    5.820772087902701e-11,  2.9103850444971e-11,    1.4551921891041985e-11, 7.275959835057482e-12,
    3.637979547378651e-12,  1.818989650307066e-12,  9.094947840263888e-13};

// The positive root of digamma, split so that x - root is exact to double precision, and the
// Taylor coefficients psi^(k)(root) / k! = (-1)^(k+1) zeta(k + 1, root), k = 1..26. Near its root
// digamma is a small difference of large terms; expanding about the root keeps it relatively
// accurate there.
inline constexpr double digamma_root_hi = 1.4616321449683622;
inline constexpr double digamma_root_lo = 9.549995429965697e-17;
inline constexpr std::array<double, 26> digamma_root_taylor = {
    0.9676722454476212,     -0.4427631689835921,     0.258499760955651,     -0.16394270544240652,
    0.10782405069126237,    -0.07219956125645471,    0.04880428816414311,   -0.03316112647484736,
    0.022597648232218104,   -0.01542476590494896,    0.010538791616612175,  -0.007204534386356869,
    0.004926781395729853,   -0.003369801655439328,   0.002305126326734928,  -0.0015769367714301972,
    0.0010788252019162967,  -0.0007380709389960052,  0.000504953265834602,  -0.0003454680251063077,
    0.00023635601564027053, -0.00016170622091974803, 0.0001106337276874741, -7.569179582195066e-05,
    5.178575795222081e-05,  -3.5430070947659604e-05};

inline constexpr int max_polygamma_order = 16;

// ---------------------------------------------------------------------------------------------
// Gamma family on doubles. Arguments are checked by the public functions; these assume x > 0.

// Stirling's correction lgamma(x) - [(x - 1/2) ln x - x + ln sqrt(2 pi)] for x >= 10, where ten
// terms of the asymptotic series reach full double precision.
inline double stirling_correction(double x) {
  constexpr std::array<double, 10> c = {1.0 / 12.0,          -1.0 / 360.0,       1.0 / 1260.0,
                                        -1.0 / 1680.0,       1.0 / 1188.0,       -691.0 / 360360.0,
                                        1.0 / 156.0,         -3617.0 / 122400.0, 43867.0 / 244188.0,
                                        -174611.0 / 125400.0};
  const double z = 1.0 / (x * x);
  double p = c[9];
  for (int j = 8; j >= 0; --j) p = p * z + c[static_cast<std::size_t>(j)];
  return p / x;
}

// ln Gamma(1 + z) for |z| <= 1/2, relatively accurate at z = 0 (lgamma's root at 1).
inline double lgamma1p_small(double z) {
  double p = 0.0;
  for (std::size_t i = zeta_minus_one.size(); i-- > 0;) {
    const double k = static_cast<double>(i + 2);
    const double c = (i % 2 == 0 ? 1.0 : -1.0) * zeta_minus_one[i] / k;  // (-1)^k (zeta(k)-1)/k
    p = p * z + c;
  }
  return -std::log1p(z) + z * (1.0 - euler_gamma) + p * z * z;
}

inline double lgamma_impl(double x) {
  if (std::isinf(x)) return x;
  if (x < 0.5) return lgamma1p_small(x) - std::log(x);
  if (x < 1.5) return lgamma1p_small(x - 1.0);
  if (x < 2.5) {
    const double z = x - 2.0;  // ln Gamma(2 + z) = ln Gamma(1 + z) + ln(1 + z); root at 2
    return lgamma1p_small(z) + std::log1p(z);
  }
  if (x < 10.0) {
    // Shift down into [1.5, 2.5): every term is positive or small, so nothing cancels (shifting up
    // would subtract two numbers near 15). x - k is exact here.
    double prod = 1.0;
    double y = x;
    while (y >= 2.5) {
      y -= 1.0;
      prod *= y;
    }
    const double z = y - 2.0;
    return lgamma1p_small(z) + std::log1p(z) + std::log(prod);
  }
  return (x - 0.5) * std::log(x) - x + half_log_two_pi + stirling_correction(x);
}

inline double digamma_impl(double x) {
  if (std::isinf(x)) return x;
  const double dx = (x - digamma_root_hi) - digamma_root_lo;
  if (std::abs(dx) < 0.25) {
    double p = 0.0;
    for (std::size_t i = digamma_root_taylor.size(); i-- > 0;) p = p * dx + digamma_root_taylor[i];
    return p * dx;
  }
  // psi(x) = psi(x + 1) - 1/x until x >= 12, then the asymptotic series
  // psi(x) = ln x - 1/(2x) - sum_k B_2k / (2k x^2k).
  double shift = 0.0;
  while (x < 12.0) {
    shift += 1.0 / x;
    x += 1.0;
  }
  const double z = 1.0 / (x * x);
  double p = 0.0;
  for (std::size_t k = 10; k-- > 0;) {
    p = p * z + bernoulli_2k[k] / static_cast<double>(2 * (k + 1));
  }
  return std::log(x) - 0.5 / x - p * z - shift;
}

// x^-m for m >= 1 by repeated multiplication (a few ulp, no pow call).
inline double inverse_power(double x, int m) {
  const double r = 1.0 / x;
  double out = r;
  for (int i = 1; i < m; ++i) out *= r;
  return out;
}

// psi^(n)(x) for 1 <= n <= max_polygamma_order: recurrence
// psi^(n)(x) = psi^(n)(x + 1) + (-1)^(n+1) n! / x^(n+1) up to x >= 12 + n, then
// psi^(n)(x) = (-1)^(n+1) [ (n-1)!/x^n + n!/(2 x^(n+1)) + sum_k B_2k (2k+n-1)!/((2k)! x^(2k+n)) ].
// All terms share one sign, so nothing cancels.
inline double polygamma_positive_impl(int n, double x) {
  const double sign = (n % 2 == 1) ? 1.0 : -1.0;
  if (std::isinf(x)) return 0.0;
  double n_factorial = 1.0;
  for (int i = 2; i <= n; ++i) n_factorial *= static_cast<double>(i);
  const double nm1_factorial = n_factorial / static_cast<double>(n);

  double head = 0.0;
  const double threshold = 12.0 + static_cast<double>(n);
  while (x < threshold) {
    head += inverse_power(x, n + 1);
    x += 1.0;
  }
  const double z = 1.0 / (x * x);
  double series = 0.0;
  double zk = 1.0;
  for (int k = 1; k <= static_cast<int>(bernoulli_2k.size()); ++k) {
    zk *= z;
    double rising = 1.0;  // (2k + n - 1)! / (2k)!
    for (int j = 1; j < n; ++j) rising *= static_cast<double>(2 * k + j);
    const double term = bernoulli_2k[static_cast<std::size_t>(k - 1)] * rising * zk;
    series += term;
    if (std::abs(term) <= 1e-18 * nm1_factorial) break;
  }
  const double tail = inverse_power(x, n) * (nm1_factorial + 0.5 * n_factorial / x + series);
  return sign * (n_factorial * head + tail);
}

inline double polygamma_impl(int n, double x) {
  return n == 0 ? digamma_impl(x) : polygamma_positive_impl(n, x);
}

inline void check_gamma_argument(const char* function, double x) {
  if (!(x > 0.0)) {
    baypr::detail::throw_invalid(function, "x",
                                 "must be > 0, got " + baypr::detail::format_value(x));
  }
}

inline void check_polygamma_order(const char* function, int n) {
  if (n < 0 || n > max_polygamma_order) {
    baypr::detail::throw_invalid(
        function, "n",
        "must be in [0, " + std::to_string(max_polygamma_order) + "], got " + std::to_string(n));
  }
}

inline void check_log1p_argument(const char* function, double x) {
  if (!(x >= -1.0)) {
    baypr::detail::throw_invalid(function, "x",
                                 "must be >= -1, got " + baypr::detail::format_value(x));
  }
}

// ---------------------------------------------------------------------------------------------
// Regularised incomplete beta. Internally both x and y = 1 - x are passed, each to full relative
// precision, because callers such as the F distribution can compute both accurately and because
// y^b with b ~ 1e6 would amplify the rounding of 1 - x a millionfold.

// e - ln(1 + e) >= 0 for e > -1, with t = 1 + e supplied separately because near e = -1 only t
// is known to full relative precision. The direct formula loses a factor of 3 to 5 for moderate e
// (e = 0.7: 0.70 - 0.53), so for -3/4 <= e <= 3 use r = e / (2 + e), |r| <= 0.6:
// ln(1 + e) = 2 atanh(r) and e - 2r = e r give 2r^2/(1-r) - 2 (r^3/3 + r^5/5 + ...), terms that
// do not cancel.
inline double rlog1(double e, double t) {
  if (e < -0.75) return (t - 1.0) - std::log(t);
  if (e > 3.0) return e - std::log1p(e);
  const double r = e / (2.0 + e);
  const double r2 = r * r;
  double power = r * r2;
  double sum = 0.0;
  for (int k = 1; k < 80; ++k) {
    const double term = power / static_cast<double>(2 * k + 1);
    sum += term;
    if (std::abs(term) <= 1e-17 * std::abs(sum)) break;
    power *= r2;
  }
  return 2.0 * r2 / (1.0 - r) - 2.0 * sum;
}

// lambda = a - (a + b) x = (a + b) y - b from the smaller of x and y, with one rounding (fma):
// it is often a small difference of large numbers, and its error is multiplied by up to |ln I|.
inline double beta_lambda(double a, double b, double x, double y) {
  return x <= y ? std::fma(-(a + b), x, a) : std::fma(a + b, y, -b);
}

// Shapes at or above this use Stirling's series with its correction term.
inline constexpr double large_shape = 10.0;

// ln( x^a y^b / B(a, b) ), the factor in front of the continued fraction (and x f(x) for the
// matching F density). Computed so that its absolute error stays near eps * |result| even for
// a, b ~ 1e6, where ln B(a, b) alone would be ~1e7 and the naive sum would lose 1e-9.
inline double log_beta_prefix(double a, double b, double x, double y) {
  const double lnx = x <= 0.5 ? std::log(x) : std::log1p(-y);
  const double lny = y <= 0.5 ? std::log(y) : std::log1p(-x);
  const double s = std::min(a, b);
  const double l = std::max(a, b);
  if (s >= large_shape) {
    // Expand about the mode x0 = a/(a+b): with 1 + e1 = x/x0, 1 + e2 = y/y0 and a e1 + b e2 = 0,
    // x^a y^b / B = sqrt(ab / (2 pi (a+b))) exp(-a rlog1(e1) - b rlog1(e2) - bcorr(a, b)).
    const double lambda = beta_lambda(a, b, x, y);  // = -a e1 = b e2
    const double e1 = -lambda / a;
    const double e2 = lambda / b;
    const double u = rlog1(e1, x * ((a + b) / a));
    const double v = rlog1(e2, y * ((a + b) / b));
    const double bcorr =
        stirling_correction(a) + stirling_correction(b) - stirling_correction(a + b);
    return 0.5 * (std::log(s) - std::log1p(s / l)) - half_log_two_pi - (a * u + b * v) - bcorr;
  }
  if (l >= large_shape) {
    // One small shape s: Gamma(l + s) / Gamma(l) = l^s exp(d) with d small and well conditioned.
    const double t = s / l;
    const double d = -l * rlog1(t, 1.0 + t) + (s - 0.5) * std::log1p(t) +
                     stirling_correction(l + s) - stirling_correction(l);
    if (a <= b) {
      const double ln_xl = x <= 0.5 ? std::log(x * l) : lnx + std::log(l);
      return a * ln_xl + b * lny + d - lgamma_impl(a);
    }
    const double ln_yl = y <= 0.5 ? std::log(y * l) : lny + std::log(l);
    return b * ln_yl + a * lnx + d - lgamma_impl(b);
  }
  return a * lnx + b * lny + lgamma_impl(a + b) - lgamma_impl(a) - lgamma_impl(b);
}

// The continued fraction h with I_x(a, b) = prefix * h / a (DLMF 8.17.22), in its even
// contraction 1 / (1 + d1 - d1 d2 / (1 + d2 + d3 - d3 d4 / (1 + d4 + d5 - ...))), evaluated by the
// modified Lentz method. The partial denominators 1 + d(2m) + d(2m+1) are written in terms of
// lambda = a - (a + b) x, computed from the smaller of x and y: in the plain form they are
// differences like 1 - (a + b) x / (a + 1) that cancel when x is near 1 (a >> b), losing up to
// 1e-12. It converges quickly for x < (a + 1) / (a + b + 2); callers swap (a, x) and (b, y)
// otherwise. The iteration count grows like sqrt(max(a, b)) (about 400 for a = b = 5e5).
inline double beta_continued_fraction(double a, double b, double x, double y) {
  constexpr double tiny = 1e-300;
  constexpr double eps = std::numeric_limits<double>::epsilon();
  const double max_iterations = 1000.0 + 20.0 * std::sqrt(std::max(a, b));
  auto guard = [](double v) { return std::abs(v) < tiny ? tiny : v; };
  const double lambda = beta_lambda(a, b, x, y);
  double f = guard((1.0 + lambda) / (a + 1.0));
  double c = f;
  double d = 0.0;
  for (double m = 1.0; m <= max_iterations; m += 1.0) {
    const double s = a + 2.0 * m;
    // -d(2m-1) d(2m) and 1 + d(2m) + d(2m+1), the latter without cancellation.
    const double alpha = (a + m - 1.0) * (a + b + m - 1.0) * m * (b - m) * x * x /
                         ((s - 2.0) * (s - 1.0) * (s - 1.0) * s);
    const double beta = ((s - 1.0) * (3.0 * a * m + 4.0 * m * m + a + 2.0 * m + (a + m) * lambda) +
                         m * x * ((b - m) * (s + 1.0) - (a + m) * (s - 1.0))) /
                        ((s - 1.0) * s * (s + 1.0));
    d = 1.0 / guard(beta + alpha * d);
    c = guard(beta + alpha / c);
    const double delta = c * d;
    f *= delta;
    if (std::abs(delta - 1.0) <= eps) return 1.0 / f;
  }
  baypr::detail::throw_numerical(
      "baypr::special::ibeta",
      "continued fraction did not converge for a = " + baypr::detail::format_value(a) +
          ", b = " + baypr::detail::format_value(b) + ", x = " + baypr::detail::format_value(x));
}

// Both tails of the beta distribution and their logarithms.
struct BetaTails {
  double lower;       // I_x(a, b)
  double upper;       // 1 - I_x(a, b)
  double log_lower;   // ln I_x(a, b), finite where lower underflows
  double log_upper;   // ln(1 - I_x(a, b))
  double log_prefix;  // ln(x^a y^b / B(a, b))
};

// Requires a, b > 0 finite, x, y in [0, 1] with x + y = 1.
inline BetaTails beta_tails(double a, double b, double x, double y) {
  constexpr double inf = std::numeric_limits<double>::infinity();
  if (x <= 0.0) return {0.0, 1.0, -inf, 0.0, -inf};
  if (y <= 0.0) return {1.0, 0.0, 0.0, -inf, -inf};
  const double log_prefix = log_beta_prefix(a, b, x, y);
  // Compute the tail the continued fraction handles well directly; it is at most ~0.92, so the
  // other tail as 1 - it loses at most a few bits, and the small tail never suffers cancellation.
  const bool swapped = x > (a + 1.0) / (a + b + 2.0);
  const double log_direct = swapped
                                ? log_prefix + std::log(beta_continued_fraction(b, a, y, x) / b)
                                : log_prefix + std::log(beta_continued_fraction(a, b, x, y) / a);
  const double direct = std::exp(log_direct);
  const double other = 1.0 - direct;
  const double log_other = std::log1p(-direct);
  if (swapped) return {other, direct, log_other, log_direct, log_prefix};
  return {direct, other, log_direct, log_other, log_prefix};
}

inline void check_beta_arguments(const char* function, double a, double b, double x) {
  baypr::detail::check_positive(function, "a", a);
  baypr::detail::check_positive(function, "b", b);
  if (!(x >= 0.0 && x <= 1.0)) {
    baypr::detail::throw_invalid(function, "x",
                                 "must be in [0, 1], got " + baypr::detail::format_value(x));
  }
}

// ---------------------------------------------------------------------------------------------
// F distribution. With w = d2 / (d2 + d1 x) and u = d1 x / (d2 + d1 x), both computed directly,
// P(F > x) = I_w(d2/2, d1/2) and P(F <= x) = I_u(d1/2, d2/2); the beta prefix equals x f(x).

struct FTails {
  BetaTails beta;  // lower = sf, upper = cdf
  double u;        // d1 x / (d2 + d1 x)
};

inline FTails f_tails(double x, double d1, double d2) {
  double w = 1.0;
  double u = 0.0;
  const double t = d1 * x;
  if (std::isfinite(t) && t > 0.0) {
    const double s = d2 + t;
    w = d2 / s;
    u = t / s;
  } else if (x > 0.0) {
    const double r = (d2 / d1) / x;  // d1 x overflowed or underflowed
    w = r / (1.0 + r);
    u = 1.0 / (1.0 + r);
  }
  return {beta_tails(0.5 * d2, 0.5 * d1, w, u), u};
}

inline void check_f_shapes(const char* function, double d1, double d2) {
  baypr::detail::check_positive(function, "d1", d1);
  baypr::detail::check_positive(function, "d2", d2);
}

inline void check_f_quantile(const char* function, double x) {
  if (!(x >= 0.0)) {
    baypr::detail::throw_invalid(function, "x",
                                 "must be >= 0, got " + baypr::detail::format_value(x));
  }
}

// Solves P(F > x) = p by safeguarded Halley iteration on g(ln x) = ln S(x) - ln target, where S is
// the tail whose probability is at most 1/2 (sf for p <= 1/2, cdf for p > 1/2), so the target is
// known to full relative precision. In ln x, g is nearly linear in both tails (S ~ x^(-d2/2) and
// x^(d1/2)), so the iteration converges in a handful of steps from x = 1; a bracket [lo, hi] on x
// falls back to geometric bisection when a step would leave it.
inline double f_isf_impl(double p, double d1, double d2) {
  constexpr double inf = std::numeric_limits<double>::infinity();
  constexpr double big = std::numeric_limits<double>::max();
  constexpr double small = std::numeric_limits<double>::denorm_min();
  const bool upper = p <= 0.5;
  const double log_target = upper ? std::log(p) : std::log(1.0 - p);  // 1 - p exact for p >= 1/2
  const double a1 = 0.5 * d1;
  const double b1 = 0.5 * d2;
  double lo = 0.0;  // g(lo) > 0
  double hi = inf;  // g(hi) < 0
  double x = 1.0;
  for (int iteration = 0; iteration < 200; ++iteration) {
    const FTails tails = f_tails(x, d1, d2);
    const double log_s = upper ? tails.beta.log_lower : tails.beta.log_upper;
    const double g = upper ? log_s - log_target : log_target - log_s;  // decreasing in x
    if (g == 0.0) return x;
    if (g > 0.0) {
      lo = x;
    } else {
      hi = x;
    }
    // dg/d(ln x) = -q with q = x f(x) / S; d2g/d(ln x)^2 = -q k.
    const double q = std::exp(tails.beta.log_prefix - log_s);
    const double k = a1 - (a1 + b1) * tails.u + (upper ? q : -q);
    double step = g / q;
    const double halley = 1.0 + 0.5 * step * k;
    if (halley > 0.5 && halley < 2.0) step /= halley;
    if (!std::isfinite(step)) step = g > 0.0 ? 50.0 : -50.0;
    // Converged: the remaining Halley error is of order step^3. (A small step cannot come from a
    // flat stretch far from the root: |g'| only shrinks where S is near 1, which makes steps big.)
    if (std::abs(step) <= 1e-14) return x * std::exp(step);
    step = std::clamp(step, -50.0, 50.0);
    double next = x * std::exp(step);
    if (!(next > lo && next < hi)) {
      next = (lo > 0.0 && hi < inf) ? std::exp(0.5 * (std::log(lo) + std::log(hi)))
                                    : x * std::exp(step > 0.0 ? 50.0 : -50.0);
    }
    if (next >= big || std::isinf(next)) {
      if (x >= big) return inf;  // the quantile is beyond the largest double
      next = big;
    } else if (next <= small) {
      if (x <= small) return 0.0;
      next = small;
    }
    if (hi < inf && lo > 0.0 && hi - lo <= 4.0 * std::numeric_limits<double>::epsilon() * lo) {
      return 0.5 * (lo + hi);
    }
    x = next;
  }
  return x;
}

// ---------------------------------------------------------------------------------------------
// Dual numbers: any template Dual<Der> with value(), derivatives() and a (value, derivatives)
// constructor, such as Eigen::AutoDiffScalar. Results use the plain derivative type, so
// expression-typed duals (from arithmetic on AutoDiffScalar) are accepted too.

template <class T>
struct dual_plain {};
template <template <class> class Dual, class Der>
requires requires {
  typename std::remove_cvref_t<Der>::PlainObject;
}
struct dual_plain<Dual<Der>> {
  using type = Dual<typename std::remove_cvref_t<Der>::PlainObject>;
};

}  // namespace detail

template <class T>
concept dual_number = !std::is_arithmetic_v<T> && requires(const T& t) {
  t.value();
  t.derivatives();
  typename detail::dual_plain<T>::type;
};

template <dual_number T>
using dual_plain_t = typename detail::dual_plain<T>::type;

// ---------------------------------------------------------------------------------------------
// Plain scalars.

// ln Gamma(x) for x > 0 (own implementation: std::lgamma writes the global signgam).
template <arithmetic T>
[[nodiscard]] real_t<T> lgamma(T x) {
  const auto v = static_cast<double>(x);
  detail::check_gamma_argument("baypr::special::lgamma", v);
  return detail::to_result<real_t<T>>(detail::lgamma_impl(v));
}

// psi(x) = d/dx ln Gamma(x) for x > 0.
template <arithmetic T>
[[nodiscard]] real_t<T> digamma(T x) {
  const auto v = static_cast<double>(x);
  detail::check_gamma_argument("baypr::special::digamma", v);
  return detail::to_result<real_t<T>>(detail::digamma_impl(v));
}

// psi'(x) for x > 0.
template <arithmetic T>
[[nodiscard]] real_t<T> trigamma(T x) {
  const auto v = static_cast<double>(x);
  detail::check_gamma_argument("baypr::special::trigamma", v);
  return detail::to_result<real_t<T>>(detail::polygamma_positive_impl(1, v));
}

// psi^(n)(x), the n-th derivative of digamma, for 0 <= n <= 16 and x > 0.
template <arithmetic T>
[[nodiscard]] real_t<T> polygamma(int n, T x) {
  const auto v = static_cast<double>(x);
  detail::check_polygamma_order("baypr::special::polygamma", n);
  detail::check_gamma_argument("baypr::special::polygamma", v);
  return detail::to_result<real_t<T>>(detail::polygamma_impl(n, v));
}

// ln(1 + x) for x >= -1.
template <arithmetic T>
[[nodiscard]] real_t<T> log1p(T x) {
  const auto v = static_cast<real_t<T>>(x);
  detail::check_log1p_argument("baypr::special::log1p", static_cast<double>(v));
  return std::log1p(v);
}

// ---------------------------------------------------------------------------------------------
// Dual numbers (declared first so that nested duals find every overload).

template <dual_number T>
[[nodiscard]] dual_plain_t<T> lgamma(const T& x);
template <dual_number T>
[[nodiscard]] dual_plain_t<T> digamma(const T& x);
template <dual_number T>
[[nodiscard]] dual_plain_t<T> trigamma(const T& x);
template <dual_number T>
[[nodiscard]] dual_plain_t<T> polygamma(int n, const T& x);
template <dual_number T>
[[nodiscard]] dual_plain_t<T> log1p(const T& x);

namespace detail {
// f(x) with derivatives x' * f'(x); f and df receive x.value() (a plain or dual scalar).
template <class T, class F, class DF>
dual_plain_t<T> chain_rule(const T& x, F&& f, DF&& df) {
  using Result = dual_plain_t<T>;
  using Value = std::remove_cvref_t<decltype(x.value())>;
  const Value& v = x.value();
  const Value slope = df(v);
  return Result(f(v), (x.derivatives() * slope).eval());
}
}  // namespace detail

template <dual_number T>
dual_plain_t<T> lgamma(const T& x) {
  return detail::chain_rule(
      x, [](const auto& v) { return special::lgamma(v); },
      [](const auto& v) { return special::digamma(v); });
}

template <dual_number T>
dual_plain_t<T> digamma(const T& x) {
  return detail::chain_rule(
      x, [](const auto& v) { return special::digamma(v); },
      [](const auto& v) { return special::trigamma(v); });
}

template <dual_number T>
dual_plain_t<T> trigamma(const T& x) {
  return detail::chain_rule(
      x, [](const auto& v) { return special::trigamma(v); },
      [](const auto& v) { return special::polygamma(2, v); });
}

template <dual_number T>
dual_plain_t<T> polygamma(int n, const T& x) {
  // Check here too: the derivative needs order n + 1.
  detail::check_polygamma_order("baypr::special::polygamma", n + 1);
  return detail::chain_rule(
      x, [n](const auto& v) { return special::polygamma(n, v); },
      [n](const auto& v) { return special::polygamma(n + 1, v); });
}

template <dual_number T>
dual_plain_t<T> log1p(const T& x) {
  using Value = std::remove_cvref_t<decltype(x.value())>;
  return detail::chain_rule(
      x, [](const auto& v) { return special::log1p(v); },
      [](const auto& v) { return Value(Value(1.0) / (Value(1.0) + v)); });
}

// ---------------------------------------------------------------------------------------------
// Incomplete beta and the F distribution (float, double or integer arguments; computed in double).

template <class A, class B, class X>
using beta_result_t = real_t<std::common_type_t<A, B, X>>;

// I_x(a, b) = B(x; a, b) / B(a, b) for a, b > 0, x in [0, 1].
template <arithmetic A, arithmetic B, arithmetic X>
[[nodiscard]] beta_result_t<A, B, X> ibeta(A a, B b, X x) {
  const auto da = static_cast<double>(a);
  const auto db = static_cast<double>(b);
  const auto dx = static_cast<double>(x);
  detail::check_beta_arguments("baypr::special::ibeta", da, db, dx);
  return detail::to_result<beta_result_t<A, B, X>>(detail::beta_tails(da, db, dx, 1.0 - dx).lower);
}

// 1 - I_x(a, b), computed directly (no cancellation when I_x(a, b) is near 1).
template <arithmetic A, arithmetic B, arithmetic X>
[[nodiscard]] beta_result_t<A, B, X> ibetac(A a, B b, X x) {
  const auto da = static_cast<double>(a);
  const auto db = static_cast<double>(b);
  const auto dx = static_cast<double>(x);
  detail::check_beta_arguments("baypr::special::ibetac", da, db, dx);
  return detail::to_result<beta_result_t<A, B, X>>(detail::beta_tails(da, db, dx, 1.0 - dx).upper);
}

// P(F > x) for F ~ F(d1, d2), x >= 0 (x = +inf gives 0), d1, d2 > 0.
template <arithmetic X, arithmetic D1, arithmetic D2>
[[nodiscard]] beta_result_t<X, D1, D2> f_sf(X x, D1 d1, D2 d2) {
  const auto dx = static_cast<double>(x);
  const auto n1 = static_cast<double>(d1);
  const auto n2 = static_cast<double>(d2);
  detail::check_f_quantile("baypr::special::f_sf", dx);
  detail::check_f_shapes("baypr::special::f_sf", n1, n2);
  return detail::to_result<beta_result_t<X, D1, D2>>(detail::f_tails(dx, n1, n2).beta.lower);
}

// ln P(F > x): finite (and accurate) where P(F > x) underflows.
template <arithmetic X, arithmetic D1, arithmetic D2>
[[nodiscard]] beta_result_t<X, D1, D2> f_logsf(X x, D1 d1, D2 d2) {
  const auto dx = static_cast<double>(x);
  const auto n1 = static_cast<double>(d1);
  const auto n2 = static_cast<double>(d2);
  detail::check_f_quantile("baypr::special::f_logsf", dx);
  detail::check_f_shapes("baypr::special::f_logsf", n1, n2);
  return detail::to_result<beta_result_t<X, D1, D2>>(detail::f_tails(dx, n1, n2).beta.log_lower);
}

// P(F <= x), computed directly (accurate when small).
template <arithmetic X, arithmetic D1, arithmetic D2>
[[nodiscard]] beta_result_t<X, D1, D2> f_cdf(X x, D1 d1, D2 d2) {
  const auto dx = static_cast<double>(x);
  const auto n1 = static_cast<double>(d1);
  const auto n2 = static_cast<double>(d2);
  detail::check_f_quantile("baypr::special::f_cdf", dx);
  detail::check_f_shapes("baypr::special::f_cdf", n1, n2);
  return detail::to_result<beta_result_t<X, D1, D2>>(detail::f_tails(dx, n1, n2).beta.upper);
}

// The x with P(F > x) = p, for p in (0, 1). Returns +inf if that x exceeds the largest double.
template <arithmetic P, arithmetic D1, arithmetic D2>
[[nodiscard]] beta_result_t<P, D1, D2> f_isf(P p, D1 d1, D2 d2) {
  const auto dp = static_cast<double>(p);
  const auto n1 = static_cast<double>(d1);
  const auto n2 = static_cast<double>(d2);
  if (!(dp > 0.0 && dp < 1.0)) {
    baypr::detail::throw_invalid("baypr::special::f_isf", "p",
                                 "must be in (0, 1), got " + baypr::detail::format_value(dp));
  }
  detail::check_f_shapes("baypr::special::f_isf", n1, n2);
  return detail::to_result<beta_result_t<P, D1, D2>>(detail::f_isf_impl(dp, n1, n2));
}

}  // namespace baypr::special
