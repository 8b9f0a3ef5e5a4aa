// baypr::special against reference values (tests/reference/special.txt: 60-digit arithmetic,
// cross-checked with SciPy; see generate_special.py), closed forms, AutoDiff derivatives against
// finite differences, and the argument checks.
//
// Tolerances (relative), with the largest error measured against this file when they were set:
//   lgamma, digamma, trigamma, polygamma   5e-15                      (measured 2.2e-15, digamma)
//   ibeta, ibetac, f_sf                    2e-14 + 8e-16 |ln value|   (measured 1.4e-13 at 1e-300;
//                                          random sweeps reach 3e-13 there: about 3 eps per unit
//                                          of |ln value|, the cost of exp() of a large exponent)
//   f_logsf                                5e-15                      (measured 4.4e-16)
//   f_isf                                  2e-14 + 4e-16 |ln p|       (measured 1.7e-14)
#include <Eigen/Core>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <unsupported/Eigen/AutoDiff>  // after Eigen/Core, which it assumes
#include <vector>

#include "baypr/core/special.hpp"
#include "support/catch.hpp"
#include "support/messages.hpp"

using baypr::test::contains;
using baypr::test::message_of;

namespace {

namespace sp = baypr::special;

struct Case {
  std::string function;
  std::vector<double> numbers;  // arguments, then the reference value
  std::string line;
};

std::vector<Case> load_reference() {
  const std::string path = BAYPR_TEST_DATA_DIR "/special.txt";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<Case> cases;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream is(line);
    Case c;
    c.line = line;
    is >> c.function;
    std::string token;
    // strtod, not operator>>: libstdc++ streams reject subnormal values.
    while (is >> token) c.numbers.push_back(std::strtod(token.c_str(), nullptr));
    cases.push_back(std::move(c));
  }
  return cases;
}

const std::vector<Case>& reference() {
  static const std::vector<Case> cases = load_reference();
  return cases;
}

std::vector<Case> cases_of(const std::string& function) {
  std::vector<Case> out;
  for (const auto& c : reference()) {
    if (c.function == function) out.push_back(c);
  }
  return out;
}

double relative_error(double got, double expected) {
  if (got == expected) return 0.0;
  return std::abs(got - expected) / std::abs(expected);
}

double tail_tolerance(double value) {
  return 2e-14 + 8e-16 * std::abs(std::log(value));
}

using AD = Eigen::AutoDiffScalar<Eigen::VectorXd>;
using Inner = AD;
using InnerVector = Eigen::Matrix<Inner, Eigen::Dynamic, 1>;
using Outer = Eigen::AutoDiffScalar<InnerVector>;

AD variable(double v) {
  return AD(v, Eigen::VectorXd::Unit(1, 0));
}

// x as a nested dual: value Inner(v, [1]), derivative [Inner(1, [0])], so that
// f(x).derivatives()(0).derivatives()(0) is f''(v).
Outer nested_variable(double v) {
  InnerVector d(1);
  d(0) = Inner(1.0, Eigen::VectorXd::Zero(1));
  return Outer(Inner(v, Eigen::VectorXd::Unit(1, 0)), d);
}

constexpr double pi = 3.14159265358979323846;
constexpr double not_a_number = std::numeric_limits<double>::quiet_NaN();
constexpr double inf = std::numeric_limits<double>::infinity();

}  // namespace

TEST_CASE("the reference file is present and complete", "[special]") {
  for (const char* f : {"lgamma", "digamma", "trigamma", "polygamma", "ibeta", "ibetac", "f_sf",
                        "f_logsf", "f_isf"}) {
    INFO(f);
    CHECK(cases_of(f).size() >= 10);
  }
}

TEST_CASE("lgamma, digamma, trigamma and polygamma match the reference", "[special][gamma]") {
  for (const auto& c : reference()) {
    double got = 0.0;
    if (c.function == "lgamma") {
      got = sp::lgamma(c.numbers[0]);
    } else if (c.function == "digamma") {
      got = sp::digamma(c.numbers[0]);
    } else if (c.function == "trigamma") {
      got = sp::trigamma(c.numbers[0]);
    } else if (c.function == "polygamma") {
      got = sp::polygamma(static_cast<int>(c.numbers[0]), c.numbers[1]);
    } else {
      continue;
    }
    INFO(c.line);
    CAPTURE(got);
    CHECK(relative_error(got, c.numbers.back()) <= 5e-15);
  }
}

TEST_CASE("gamma family: exact values, roots and limits", "[special][gamma]") {
  CHECK(sp::lgamma(1.0) == 0.0);
  CHECK(sp::lgamma(2.0) == 0.0);
  CHECK(relative_error(sp::lgamma(0.5), 0.5 * std::log(pi)) <= 4e-16);
  CHECK(relative_error(sp::lgamma(5), std::log(24.0)) <= 4e-16);  // integer argument -> double
  CHECK(relative_error(sp::digamma(1.0), -0.57721566490153286) <= 2e-15);
  CHECK(relative_error(sp::trigamma(1.0), pi * pi / 6.0) <= 4e-16);
  CHECK(relative_error(sp::polygamma(2, 1.0), -2.0 * 1.2020569031595943) <= 4e-16);
  CHECK(sp::polygamma(0, 3.5) == sp::digamma(3.5));
  CHECK(sp::polygamma(1, 3.5) == sp::trigamma(3.5));
  // digamma keeps its relative accuracy through its root.
  const double root = 1.4616321449683622;
  CHECK(std::abs(sp::digamma(root)) < 1e-15);
  CHECK(sp::digamma(std::nextafter(root, 0.0)) < 0.0);
  CHECK(sp::digamma(std::nextafter(root, 2.0)) > 0.0);
  CHECK(sp::lgamma(inf) == inf);
  CHECK(sp::digamma(inf) == inf);
  CHECK(sp::trigamma(inf) == 0.0);
  // Orders beyond the reference file agree with their recurrence
  // psi^(n)(x) = psi^(n)(x + 1) + (-1)^(n+1) n! / x^(n+1) (same-sign terms: no cancellation).
  for (int n = 4; n <= 16; n += 4) {
    for (double x : {0.3, 2.0, 9.5, 40.0}) {
      INFO("n = " << n << ", x = " << x);
      const double nf = std::tgamma(n + 1.0);
      const double step = ((n % 2 == 1) ? 1.0 : -1.0) * nf / std::pow(x, n + 1);
      CHECK(relative_error(sp::polygamma(n, x), sp::polygamma(n, x + 1.0) + step) <= 1e-14);
    }
  }
}

TEST_CASE("float and integer arguments", "[special][float]") {
  STATIC_REQUIRE(std::is_same_v<decltype(sp::lgamma(2.5f)), float>);
  STATIC_REQUIRE(std::is_same_v<decltype(sp::lgamma(3)), double>);
  STATIC_REQUIRE(std::is_same_v<decltype(sp::ibeta(2.0f, 3.0f, 0.25f)), float>);
  STATIC_REQUIRE(std::is_same_v<decltype(sp::f_sf(2.0, 3, 10)), double>);
  for (float x : {1e-6f, 0.3f, 1.4616f, 2.5f, 7.3f, 123.5f, 1e6f}) {
    INFO("x = " << x);
    const auto xd = static_cast<double>(x);
    CHECK(relative_error(sp::lgamma(x), sp::lgamma(xd)) <= 1e-5);
    CHECK(relative_error(sp::digamma(x), sp::digamma(xd)) <= 1e-5);
    CHECK(relative_error(sp::trigamma(x), sp::trigamma(xd)) <= 1e-5);
    CHECK(relative_error(sp::polygamma(3, x), sp::polygamma(3, xd)) <= 1e-5);
    CHECK(relative_error(sp::log1p(x), std::log1p(xd)) <= 1e-6);
  }
  CHECK(relative_error(sp::ibeta(2.5f, 3.0f, 0.25f), sp::ibeta(2.5, 3.0, 0.25)) <= 1e-5);
  CHECK(relative_error(sp::ibetac(2.5f, 3.0f, 0.25f), sp::ibetac(2.5, 3.0, 0.25)) <= 1e-5);
  CHECK(relative_error(sp::f_sf(2.0f, 3, 10), sp::f_sf(2.0, 3, 10)) <= 1e-5);
  CHECK(relative_error(sp::f_isf(0.01f, 16, 100), sp::f_isf(0.01, 16, 100)) <= 1e-5);
}

TEST_CASE("ibeta and ibetac match the reference down to 1e-300", "[special][beta]") {
  for (const auto& c : reference()) {
    if (c.function != "ibeta" && c.function != "ibetac") continue;
    const double a = c.numbers[0];
    const double b = c.numbers[1];
    const double x = c.numbers[2];
    const double expected = c.numbers[3];
    const double got = c.function == "ibeta" ? sp::ibeta(a, b, x) : sp::ibetac(a, b, x);
    INFO(c.line);
    CAPTURE(got, tail_tolerance(expected));
    CHECK(relative_error(got, expected) <= tail_tolerance(expected));
  }
}

TEST_CASE("ibeta: closed forms, symmetry and end points", "[special][beta]") {
  for (double x : {1e-300, 1e-20, 0.01, 0.3, 0.5, 0.9, 0.999999}) {
    INFO("x = " << x);
    // I_x(1/2, 1/2) = (2/pi) asin(sqrt(x)); I_x(a, 1) = x^a; 1 - I_x(1, b) = (1 - x)^b.
    if (x <= 0.5) {
      CHECK(relative_error(sp::ibeta(0.5, 0.5, x), 2.0 / pi * std::asin(std::sqrt(x))) <= 1e-14);
    } else {  // 1 - x is exact here
      CHECK(relative_error(sp::ibetac(0.5, 0.5, x), 2.0 / pi * std::asin(std::sqrt(1.0 - x))) <=
            1e-14);
    }
    for (double a : {0.5, 3.0, 77.5, 2048.0}) {
      const double expected = std::exp(a * std::log(x));
      if (expected < 1e-300) continue;
      INFO("a = " << a);
      CHECK(relative_error(sp::ibeta(a, 1.0, x), expected) <= tail_tolerance(expected));
    }
    for (double b : {0.5, 3.0, 2048.0, 5e5}) {
      const double expected = std::exp(b * std::log1p(-x));
      if (expected < 1e-300) continue;
      INFO("b = " << b);
      CHECK(relative_error(sp::ibetac(1.0, b, x), expected) <= tail_tolerance(expected));
    }
  }
  for (double x : {0.25, 0.5, 0.75}) {  // 1 - x exact
    for (auto [a, b] : {std::pair{0.5, 2.5}, {12.0, 30.5}, {2048.0, 5e5}, {3.0, 5e5}}) {
      INFO("a = " << a << ", b = " << b << ", x = " << x);
      CHECK(relative_error(sp::ibeta(a, b, x), sp::ibetac(b, a, 1.0 - x)) <= 1e-15);
      CHECK(std::abs(sp::ibeta(a, b, x) + sp::ibetac(a, b, x) - 1.0) <= 4e-16);
    }
  }
  CHECK(sp::ibeta(2.0, 3.0, 0.0) == 0.0);
  CHECK(sp::ibeta(2.0, 3.0, 1.0) == 1.0);
  CHECK(sp::ibetac(2.0, 3.0, 0.0) == 1.0);
  CHECK(sp::ibetac(2.0, 3.0, 1.0) == 0.0);
}

TEST_CASE("F distribution matches the reference", "[special][f]") {
  for (const auto& c : reference()) {
    if (c.function != "f_sf" && c.function != "f_logsf" && c.function != "f_isf") continue;
    const double arg = c.numbers[0];
    const double d1 = c.numbers[1];
    const double d2 = c.numbers[2];
    const double expected = c.numbers[3];
    INFO(c.line);
    if (c.function == "f_sf") {
      const double got = sp::f_sf(arg, d1, d2);
      CAPTURE(got);
      CHECK(relative_error(got, expected) <= tail_tolerance(expected));
    } else if (c.function == "f_logsf") {
      const double got = sp::f_logsf(arg, d1, d2);
      CAPTURE(got);
      CHECK(relative_error(got, expected) <= 5e-15);
    } else {
      const double got = sp::f_isf(arg, d1, d2);
      CAPTURE(got);
      CHECK(relative_error(got, expected) <= 2e-14 + 4e-16 * std::abs(std::log(arg)));
    }
  }
}

TEST_CASE("F(2, v) closed form, including tails that underflow", "[special][f]") {
  // P(F > x) = (1 + 2x/v)^(-v/2) for F ~ F(2, v).
  for (double v : {0.5, 3.0, 10.0, 1e4, 1e6}) {
    for (double x : {1e-3, 0.5, 2.0, 30.0, 1e10, 1e80, 1e200}) {
      INFO("v = " << v << ", x = " << x);
      const double log_sf = -0.5 * v * std::log1p(2.0 * x / v);
      CHECK(relative_error(sp::f_logsf(x, 2, v), log_sf) <= 5e-15);
      if (log_sf > -690.0) {
        CHECK(relative_error(sp::f_sf(x, 2, v), std::exp(log_sf)) <=
              tail_tolerance(std::exp(log_sf)));
      }
    }
    for (double p : {0.999, 0.5, 1e-6, 1e-100}) {
      const double x = 0.5 * v * std::expm1(-2.0 / v * std::log(p));
      if (!(x < 1e300)) continue;
      INFO("v = " << v << ", p = " << p);
      CHECK(relative_error(sp::f_isf(p, 2, v), x) <= 2e-14 + 4e-16 * std::abs(std::log(p)));
    }
  }
  CHECK(sp::f_sf(0.0, 3, 4) == 1.0);
  CHECK(sp::f_cdf(0.0, 3, 4) == 0.0);
  CHECK(sp::f_sf(inf, 3, 4) == 0.0);
  CHECK(sp::f_logsf(inf, 3, 4) == -inf);
  CHECK(sp::f_isf(1e-300, 3, 0.5) == inf);  // beyond the largest double
}

TEST_CASE("f_isf inverts f_sf and f_cdf", "[special][f]") {
  for (double d1 : {1.0, 3.0, 16.0, 1024.0, 4096.0}) {
    for (double d2 : {0.5, 2.5, 30.0, 1e4, 1e6}) {
      for (double x : {0.05, 0.9, 1.5, 7.0, 1e3, 1e9}) {
        const double p = sp::f_sf(x, d1, d2);
        if (!(p > 1e-300 && p < 0.99)) continue;
        INFO("d1 = " << d1 << ", d2 = " << d2 << ", x = " << x << ", p = " << p);
        CHECK(relative_error(sp::f_isf(p, d1, d2), x) <= 1e-12);
      }
      // p > 1/2 is solved on the lower tail, known to full precision.
      for (double p : {0.9, 0.999, 1.0 - 1e-10}) {
        const double x = sp::f_isf(p, d1, d2);
        INFO("d1 = " << d1 << ", d2 = " << d2 << ", p = " << p);
        CHECK(relative_error(sp::f_cdf(x, d1, d2), 1.0 - p) <= 1e-13);  // 1 - p is exact
      }
    }
  }
}

TEST_CASE("AutoDiff derivatives match central finite differences", "[special][autodiff]") {
  struct Function {
    const char* name;
    double (*plain)(double);
    AD (*dual)(const AD&);
    double (*derivative)(double);
  };
  const Function functions[] = {
      {"lgamma", [](double x) { return sp::lgamma(x); }, [](const AD& x) { return sp::lgamma(x); },
       [](double x) { return sp::digamma(x); }},
      {"digamma", [](double x) { return sp::digamma(x); },
       [](const AD& x) { return sp::digamma(x); }, [](double x) { return sp::trigamma(x); }},
      {"trigamma", [](double x) { return sp::trigamma(x); },
       [](const AD& x) { return sp::trigamma(x); }, [](double x) { return sp::polygamma(2, x); }},
      {"polygamma(2)", [](double x) { return sp::polygamma(2, x); },
       [](const AD& x) { return sp::polygamma(2, x); },
       [](double x) { return sp::polygamma(3, x); }},
      {"polygamma(3)", [](double x) { return sp::polygamma(3, x); },
       [](const AD& x) { return sp::polygamma(3, x); },
       [](double x) { return sp::polygamma(4, x); }},
      {"log1p", [](double x) { return sp::log1p(x); }, [](const AD& x) { return sp::log1p(x); },
       [](double x) { return 1.0 / (1.0 + x); }},
  };
  for (const auto& f : functions) {
    for (double x : {1e-3, 0.3, 1.4616, 2.5, 7.0, 42.0, 1e4}) {
      INFO(f.name << " at x = " << x);
      const AD y = f.dual(variable(x));
      CHECK(y.value() == f.plain(x));
      REQUIRE(y.derivatives().size() == 1);
      CHECK(relative_error(y.derivatives()(0), f.derivative(x)) <= 1e-15);
      // Central difference: truncation ~1e-10 relative, rounding ~eps |f| / h; the absolute
      // term covers derivatives that vanish (lgamma near 1.4616).
      const double h = 1e-5 * x;
      const double fd = (f.plain(x + h) - f.plain(x - h)) / (2.0 * h);
      CAPTURE(y.derivatives()(0), fd);
      CHECK(std::abs(y.derivatives()(0) - fd) <=
            1e-7 * std::abs(fd) + 1e-9 * (1.0 + std::abs(f.plain(x))) / x);
    }
  }
  const AD y = sp::log1p(variable(-0.5));
  CHECK(relative_error(y.derivatives()(0), 2.0) <= 1e-15);
}

TEST_CASE("AutoDiff: expressions, several directions, fixed size, float", "[special][autodiff]") {
  // lgamma(x y): the argument is an AutoDiffScalar of an expression type.
  const AD x(2.0, 2, 0);
  const AD y(3.0, 2, 1);
  const AD z = sp::lgamma(x * y);
  CHECK(relative_error(z.value(), std::log(120.0)) <= 1e-15);
  CHECK(relative_error(z.derivatives()(0), 3.0 * sp::digamma(6.0)) <= 1e-15);
  CHECK(relative_error(z.derivatives()(1), 2.0 * sp::digamma(6.0)) <= 1e-15);

  using Fixed = Eigen::AutoDiffScalar<Eigen::Vector2d>;
  const Fixed u(1.5, Eigen::Vector2d(1.0, -2.0));
  const Fixed w = sp::digamma(u);
  CHECK(w.derivatives()(0) == sp::trigamma(1.5));
  CHECK(w.derivatives()(1) == -2.0 * sp::trigamma(1.5));

  using FloatAD = Eigen::AutoDiffScalar<Eigen::VectorXf>;
  const FloatAD s(2.5f, Eigen::VectorXf::Ones(1));
  const FloatAD t = sp::lgamma(s);
  STATIC_REQUIRE(std::is_same_v<std::remove_cvref_t<decltype(t.value())>, float>);
  CHECK(relative_error(static_cast<double>(t.derivatives()(0)), sp::digamma(2.5)) <= 1e-6);
}

TEST_CASE("nested AutoDiff gives second derivatives", "[special][autodiff]") {
  for (double v : {0.2, 1.0, 3.7, 50.0}) {
    INFO("x = " << v);
    const Outer x = nested_variable(v);
    const Outer l = sp::lgamma(x);
    CHECK(l.value().value() == sp::lgamma(v));
    CHECK(l.value().derivatives()(0) == sp::digamma(v));
    CHECK(l.derivatives()(0).value() == sp::digamma(v));
    CHECK(relative_error(l.derivatives()(0).derivatives()(0), sp::trigamma(v)) <= 1e-15);

    const Outer d = sp::digamma(x);
    CHECK(relative_error(d.derivatives()(0).derivatives()(0), sp::polygamma(2, v)) <= 1e-15);
    const Outer t = sp::trigamma(x);
    CHECK(relative_error(t.derivatives()(0).derivatives()(0), sp::polygamma(3, v)) <= 1e-15);
    const Outer p = sp::polygamma(3, x);
    CHECK(relative_error(p.derivatives()(0).derivatives()(0), sp::polygamma(5, v)) <= 1e-15);
    const Outer q = sp::log1p(x);
    CHECK(relative_error(q.derivatives()(0).derivatives()(0), -1.0 / ((1.0 + v) * (1.0 + v))) <=
          1e-15);
  }
}

TEST_CASE("unqualified calls find baypr::special for plain and dual scalars", "[special]") {
  using baypr::special::digamma;
  using baypr::special::lgamma;
  using baypr::special::log1p;
  const double a = lgamma(4.0);
  const float b = lgamma(4.0f);
  const AD c = lgamma(variable(4.0));
  const Outer d = lgamma(nested_variable(4.0));
  CHECK(relative_error(a, std::log(6.0)) <= 4e-16);
  CHECK(relative_error(static_cast<double>(b), std::log(6.0)) <= 1e-6);
  CHECK(c.value() == a);
  CHECK(d.value().value() == a);
  CHECK(digamma(variable(4.0)).derivatives()(0) == baypr::special::trigamma(4.0));
  CHECK(log1p(variable(1.0)).derivatives()(0) == 0.5);
}

TEST_CASE("invalid arguments throw invalid_argument naming function, argument and value",
          "[special][errors]") {
  CHECK_THROWS_AS(sp::lgamma(0.0), baypr::invalid_argument);
  CHECK_THROWS_AS(sp::lgamma(-1.0), baypr::invalid_argument);
  CHECK_THROWS_AS(sp::lgamma(not_a_number), baypr::invalid_argument);
  CHECK_THROWS_AS(sp::digamma(-0.5), baypr::invalid_argument);
  CHECK_THROWS_AS(sp::trigamma(0.0), baypr::invalid_argument);
  CHECK_THROWS_AS(sp::polygamma(2, 0.0), baypr::invalid_argument);
  CHECK_THROWS_AS(sp::polygamma(-1, 1.0), baypr::invalid_argument);
  CHECK_THROWS_AS(sp::polygamma(17, 1.0), baypr::invalid_argument);
  CHECK_THROWS_AS(sp::log1p(-1.5), baypr::invalid_argument);
  CHECK_THROWS_AS(sp::log1p(not_a_number), baypr::invalid_argument);
  CHECK_THROWS_AS(sp::lgamma(variable(-2.0)), baypr::invalid_argument);
  CHECK_THROWS_AS(sp::lgamma(nested_variable(0.0)), baypr::invalid_argument);
  CHECK(message_of([] { (void)sp::lgamma(-1.5); }) ==
        "baypr::special::lgamma: argument 'x' must be > 0, got -1.5");
  CHECK(contains(message_of([] { (void)sp::polygamma(17, 1.0); }), "argument 'n'"));

  CHECK_THROWS_AS(sp::ibeta(0.0, 1.0, 0.5), baypr::invalid_argument);
  CHECK_THROWS_AS(sp::ibeta(1.0, -1.0, 0.5), baypr::invalid_argument);
  CHECK_THROWS_AS(sp::ibeta(inf, 1.0, 0.5), baypr::invalid_argument);
  CHECK_THROWS_AS(sp::ibeta(1.0, 1.0, 1.5), baypr::invalid_argument);
  CHECK_THROWS_AS(sp::ibetac(1.0, 1.0, not_a_number), baypr::invalid_argument);
  CHECK(contains(message_of([] { (void)sp::ibeta(1.0, -2.0, 0.5); }),
                 "baypr::special::ibeta: argument 'b'"));
  CHECK(message_of([] { (void)sp::ibetac(1.0, 1.0, -0.25); }) ==
        "baypr::special::ibetac: argument 'x' must be in [0, 1], got -0.25");

  CHECK_THROWS_AS(sp::f_sf(-1.0, 2, 3), baypr::invalid_argument);
  CHECK_THROWS_AS(sp::f_sf(not_a_number, 2, 3), baypr::invalid_argument);
  CHECK_THROWS_AS(sp::f_sf(1.0, 0, 3), baypr::invalid_argument);
  CHECK_THROWS_AS(sp::f_logsf(1.0, 2, -3), baypr::invalid_argument);
  CHECK_THROWS_AS(sp::f_cdf(1.0, not_a_number, 3), baypr::invalid_argument);
  CHECK(message_of([] { (void)sp::f_sf(-2.0, 2, 3); }) ==
        "baypr::special::f_sf: argument 'x' must be >= 0, got -2");
  CHECK(contains(message_of([] { (void)sp::f_logsf(1.0, 2, -3); }),
                 "baypr::special::f_logsf: argument 'd2' must be finite and > 0, got -3"));

  for (double p : {0.0, 1.0, -0.1, 1.5, not_a_number}) {
    INFO("p = " << p);
    CHECK_THROWS_AS(sp::f_isf(p, 2, 3), baypr::invalid_argument);
  }
  CHECK(message_of([] { (void)sp::f_isf(1.5, 2, 3); }) ==
        "baypr::special::f_isf: argument 'p' must be in (0, 1), got 1.5");
  CHECK(contains(message_of([] { (void)sp::f_isf(0.5, 0, 3); }), "argument 'd1'"));
  CHECK(contains(message_of([] { (void)sp::f_isf(0.5, 2, inf); }), "argument 'd2'"));
}
