// baypr/meta embeddings (Linear, Mlp, Conv): forward values against naive per-row / explicit
// convolution references written here, hand-computed LayerNorm and convolution cases, vjp against
// central differences through meta/gradcheck.hpp (which must also fail on wrong embeddings), the
// HvpScalar path, seeded initial parameters, and bad input rejected with named arguments.
#include <Eigen/Core>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "baypr/meta/conv.hpp"
#include "baypr/meta/embedding.hpp"
#include "baypr/meta/gradcheck.hpp"
#include "baypr/meta/mlp.hpp"
#include "support/catch.hpp"
#include "support/messages.hpp"

using baypr::meta::Conv;
using baypr::meta::ConvOptions;
using baypr::meta::HvpScalar;
using baypr::meta::Linear;
using baypr::meta::Mlp;
using baypr::meta::ParamVector;
using baypr::meta::RowMatrix;
using baypr::test::contains;
using baypr::test::message_of;

static_assert(baypr::meta::TwiceDifferentiableEmbedding<Linear>);
static_assert(baypr::meta::TwiceDifferentiableEmbedding<Mlp>);
static_assert(baypr::meta::TwiceDifferentiableEmbedding<Conv>);

namespace {

Eigen::MatrixXd random_inputs(Eigen::Index rows, Eigen::Index cols, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  Eigen::MatrixXd x(rows, cols);
  for (Eigen::Index i = 0; i < rows; ++i) {
    for (Eigen::Index j = 0; j < cols; ++j) x(i, j) = u(rng);
  }
  return x;
}

// Parameters with a generous spread, so the checks are not dominated by tiny weights.
Eigen::VectorXd random_theta(Eigen::Index size, std::uint64_t seed) {
  return random_inputs(size, 1, seed);
}

double max_abs_diff(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  return (a - b).cwiseAbs().maxCoeff();
}

// ---- naive references: one row at a time, explicit sums ----

// W (out x in) stored column-major at theta[off]: W(j, k) = theta[off + j + out * k].
std::vector<double> naive_affine(const Eigen::VectorXd& theta, Eigen::Index off, Eigen::Index in,
                                 Eigen::Index out, const std::vector<double>& a) {
  std::vector<double> h(static_cast<std::size_t>(out));
  for (Eigen::Index j = 0; j < out; ++j) {
    double s = theta(off + out * in + j);
    for (Eigen::Index k = 0; k < in; ++k)
      s += theta(off + j + out * k) * a[static_cast<std::size_t>(k)];
    h[static_cast<std::size_t>(j)] = s;
  }
  return h;
}

std::vector<double> row_of(const Eigen::MatrixXd& x, Eigen::Index i) {
  std::vector<double> r(static_cast<std::size_t>(x.cols()));
  for (Eigen::Index j = 0; j < x.cols(); ++j) r[static_cast<std::size_t>(j)] = x(i, j);
  return r;
}

Eigen::MatrixXd naive_linear(Eigen::Index in, Eigen::Index out, const Eigen::VectorXd& theta,
                             const Eigen::MatrixXd& x) {
  Eigen::MatrixXd z(x.rows(), out);
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    const auto h = naive_affine(theta, 0, in, out, row_of(x, i));
    for (Eigen::Index j = 0; j < out; ++j) z(i, j) = h[static_cast<std::size_t>(j)];
  }
  return z;
}

Eigen::MatrixXd naive_mlp(const std::vector<Eigen::Index>& widths, const Eigen::VectorXd& theta,
                          const Eigen::MatrixXd& x) {
  const Eigen::Index d = widths.back();
  Eigen::MatrixXd z(x.rows(), d);
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    std::vector<double> a = row_of(x, i);
    Eigen::Index off = 0;
    for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
      a = naive_affine(theta, off, widths[l], widths[l + 1], a);
      for (double& v : a) v = v > 0.0 ? v : 0.0;
      off += widths[l + 1] * widths[l] + widths[l + 1];
    }
    double mean = 0.0, var = 0.0;
    for (double v : a) mean += v;
    mean /= static_cast<double>(d);
    for (double v : a) var += (v - mean) * (v - mean);
    var /= static_cast<double>(d);
    for (Eigen::Index j = 0; j < d; ++j) {
      const double xhat = (a[static_cast<std::size_t>(j)] - mean) / std::sqrt(var + 1e-5);
      z(i, j) = theta(off + j) * xhat + theta(off + d + j);
    }
  }
  return z;
}

// Direct convolution (cross-correlation, as PyTorch's Conv2d) with zero padding 1.
Eigen::MatrixXd naive_conv(const ConvOptions& o, const Eigen::VectorXd& theta,
                           const Eigen::MatrixXd& x) {
  Eigen::MatrixXd z(x.rows(), o.output_dim);
  for (Eigen::Index b = 0; b < x.rows(); ++b) {
    // image[c][y][x]
    Eigen::Index h = o.height, w = o.width, off = 0;
    std::vector<std::vector<std::vector<double>>> img(static_cast<std::size_t>(o.channels[0]));
    for (Eigen::Index c = 0; c < o.channels[0]; ++c) {
      auto& ch = img[static_cast<std::size_t>(c)];
      ch.assign(static_cast<std::size_t>(h), std::vector<double>(static_cast<std::size_t>(w)));
      for (Eigen::Index y = 0; y < h; ++y) {
        for (Eigen::Index xx = 0; xx < w; ++xx) {
          ch[static_cast<std::size_t>(y)][static_cast<std::size_t>(xx)] =
              x(b, c * h * w + y * w + xx);
        }
      }
    }
    for (std::size_t l = 0; l + 1 < o.channels.size(); ++l) {
      const Eigen::Index cin = o.channels[l], cout = o.channels[l + 1], s = o.strides[l];
      const Eigen::Index oh = (h - 1) / s + 1, ow = (w - 1) / s + 1;
      std::vector<std::vector<std::vector<double>>> next(
          static_cast<std::size_t>(cout),
          std::vector<std::vector<double>>(static_cast<std::size_t>(oh),
                                           std::vector<double>(static_cast<std::size_t>(ow))));
      for (Eigen::Index co = 0; co < cout; ++co) {
        for (Eigen::Index y = 0; y < oh; ++y) {
          for (Eigen::Index xx = 0; xx < ow; ++xx) {
            double sum = theta(off + cout * 9 * cin + co);
            for (Eigen::Index ci = 0; ci < cin; ++ci) {
              for (Eigen::Index ky = 0; ky < 3; ++ky) {
                for (Eigen::Index kx = 0; kx < 3; ++kx) {
                  const Eigen::Index iy = y * s + ky - 1, ix = xx * s + kx - 1;
                  if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                  const double k = theta(off + co + cout * (ci * 9 + ky * 3 + kx));
                  sum += k * img[static_cast<std::size_t>(ci)][static_cast<std::size_t>(iy)]
                                [static_cast<std::size_t>(ix)];
                }
              }
            }
            next[static_cast<std::size_t>(co)][static_cast<std::size_t>(y)]
                [static_cast<std::size_t>(xx)] = sum > 0.0 ? sum : 0.0;
          }
        }
      }
      img = std::move(next);
      off += cout * 9 * cin + cout;
      h = oh;
      w = ow;
    }
    std::vector<double> pooled;
    for (const auto& ch : img) {
      double s = 0.0;
      for (const auto& r : ch) {
        for (double v : r) s += v;
      }
      pooled.push_back(s / static_cast<double>(h * w));
    }
    const auto out = naive_affine(theta, off, o.channels.back(), o.output_dim, pooled);
    for (Eigen::Index j = 0; j < o.output_dim; ++j) z(b, j) = out[static_cast<std::size_t>(j)];
  }
  return z;
}

ConvOptions small_conv() {
  ConvOptions o;
  o.height = 6;
  o.width = 5;
  o.channels = {1, 3, 4};
  o.strides = {2, 1};
  o.output_dim = 5;
  return o;
}

ConvOptions two_channel_conv() {
  ConvOptions o;
  o.height = 4;
  o.width = 4;
  o.channels = {2, 3};
  o.strides = {1};
  o.output_dim = 2;
  return o;
}

// A Linear whose vjp is wrong in one coordinate by a relative 1e-3: the checker must find it.
struct WrongCoordinate {
  Linear inner{4, 3};
  Eigen::Index bad = 7;
  [[nodiscard]] Eigen::Index input_dim() const { return inner.input_dim(); }
  [[nodiscard]] Eigen::Index output_dim() const { return inner.output_dim(); }
  [[nodiscard]] Eigen::Index parameter_count() const { return inner.parameter_count(); }
  template <class Scalar, class DX>
  [[nodiscard]] RowMatrix<Scalar> forward(const ParamVector<Scalar>& theta,
                                          const Eigen::MatrixBase<DX>& x) const {
    return inner.forward(theta, x);
  }
  template <class Scalar, class DX, class DG>
  [[nodiscard]] ParamVector<Scalar> vjp(const ParamVector<Scalar>& theta,
                                        const Eigen::MatrixBase<DX>& x,
                                        const Eigen::MatrixBase<DG>& dz) const {
    ParamVector<Scalar> g = inner.vjp(theta, x, dz);
    g(bad) *= Scalar(1.001);
    return g;
  }
};

// An Mlp whose gradients below the LayerNorm are a little too large (as when a backward pass
// treats the normalisation's scale as a constant): wrong in many coordinates, by a few percent.
struct WrongBelowNorm {
  Mlp inner = Mlp::paper_head(3, 4);
  [[nodiscard]] Eigen::Index input_dim() const { return inner.input_dim(); }
  [[nodiscard]] Eigen::Index output_dim() const { return inner.output_dim(); }
  [[nodiscard]] Eigen::Index parameter_count() const { return inner.parameter_count(); }
  [[nodiscard]] RowMatrix<double> forward(const ParamVector<double>& theta,
                                          const Eigen::MatrixXd& x) const {
    return inner.forward(theta, x);
  }
  [[nodiscard]] ParamVector<double> vjp(const ParamVector<double>& theta, const Eigen::MatrixXd& x,
                                        const RowMatrix<double>& dz) const {
    ParamVector<double> g = inner.vjp(theta, x, dz);
    g.head(inner.gamma_offset()) *= 1.03;
    return g;
  }
};

// A Linear whose HvpScalar forward drops the derivative part: values right, duals wrong.
struct DropsDuals {
  Linear inner{3, 2};
  [[nodiscard]] Eigen::Index input_dim() const { return inner.input_dim(); }
  [[nodiscard]] Eigen::Index output_dim() const { return inner.output_dim(); }
  [[nodiscard]] Eigen::Index parameter_count() const { return inner.parameter_count(); }
  template <class Scalar, class DX>
  [[nodiscard]] RowMatrix<Scalar> forward(const ParamVector<Scalar>& theta,
                                          const Eigen::MatrixBase<DX>& x) const {
    RowMatrix<Scalar> z = inner.forward(theta, x);
    if constexpr (!std::is_same_v<Scalar, double>) {
      for (Eigen::Index i = 0; i < z.size(); ++i) z(i).derivatives().setZero();
    }
    return z;
  }
  template <class Scalar, class DX, class DG>
  [[nodiscard]] ParamVector<Scalar> vjp(const ParamVector<Scalar>& theta,
                                        const Eigen::MatrixBase<DX>& x,
                                        const Eigen::MatrixBase<DG>& dz) const {
    return inner.vjp(theta, x, dz);
  }
};
static_assert(baypr::meta::TwiceDifferentiableEmbedding<DropsDuals>);
static_assert(baypr::meta::DifferentiableEmbedding<WrongBelowNorm>);

}  // namespace

TEST_CASE("forward matches naive per-row references", "[meta][embedding][forward]") {
  SECTION("Linear") {
    const Linear e(5, 3);
    const Eigen::VectorXd theta = random_theta(e.parameter_count(), 1);
    const Eigen::MatrixXd x = random_inputs(7, 5, 2);
    CHECK(max_abs_diff(e.forward(theta, x), naive_linear(5, 3, theta, x)) < 1e-13);
  }
  SECTION("Mlp, paper head and a deeper one") {
    for (const std::vector<Eigen::Index>& widths :
         {std::vector<Eigen::Index>{6, 4}, std::vector<Eigen::Index>{7, 5, 4, 3}}) {
      const Mlp e(widths);
      const Eigen::VectorXd theta = random_theta(e.parameter_count(), 3);
      const Eigen::MatrixXd x = random_inputs(9, widths.front(), 4);
      CHECK(max_abs_diff(e.forward(theta, x), naive_mlp(widths, theta, x)) < 1e-12);
    }
  }
  SECTION("Conv, strides 2 and 1, one and two input channels") {
    for (const ConvOptions& o : {small_conv(), two_channel_conv()}) {
      const Conv e(o);
      const Eigen::VectorXd theta = random_theta(e.parameter_count(), 5);
      const Eigen::MatrixXd x = random_inputs(4, e.input_dim(), 6);
      CHECK(max_abs_diff(e.forward(theta, x), naive_conv(o, theta, x)) < 1e-12);
    }
  }
  SECTION("Conv on 28x28 with the default channels and strides") {
    ConvOptions o;
    o.height = 28;
    o.width = 28;
    o.output_dim = 8;
    const Conv e(o);
    CHECK(e.output_height(0) == 14);
    CHECK(e.output_height(1) == 7);
    const Eigen::VectorXd theta = e.initial_parameters(7);
    const Eigen::MatrixXd x = random_inputs(3, 784, 8);
    CHECK(max_abs_diff(e.forward(theta, x), naive_conv(o, theta, x)) < 1e-12);
  }
  SECTION("row-major maps of user memory give the same result") {
    const Mlp e({4, 3});
    const Eigen::VectorXd theta = random_theta(e.parameter_count(), 9);
    const Eigen::MatrixXd x = random_inputs(5, 4, 10);
    using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const RowMajor xr = x;
    const Eigen::Map<const RowMajor> xm(xr.data(), 5, 4);
    CHECK(max_abs_diff(e.forward(theta, xm), e.forward(theta, x)) == 0.0);
    const Conv c(small_conv());
    const Eigen::VectorXd tc = random_theta(c.parameter_count(), 11);
    const RowMajor xc = random_inputs(2, c.input_dim(), 12);
    CHECK(max_abs_diff(c.forward(tc, Eigen::Map<const RowMajor>(xc.data(), 2, c.input_dim())),
                       c.forward(tc, Eigen::MatrixXd(xc))) == 0.0);
  }
}

TEST_CASE("LayerNorm on hand-computed cases", "[meta][mlp][layernorm]") {
  const Mlp e({1, 3});  // h = W x + b, relu, LayerNorm(3)
  REQUIRE(e.parameter_count() == 3 + 3 + 3 + 3);
  REQUIRE(e.gamma_offset() == 6);
  REQUIRE(e.beta_offset() == 9);
  const Eigen::MatrixXd x = Eigen::MatrixXd::Constant(1, 1, 1.0);
  SECTION("all units active: h = (1, 2, 3), mean 2, biased variance 2/3") {
    Eigen::VectorXd theta(12);
    theta << 1, 2, 3, 0, 0, 0, 2, 1, 0.5, 1, 0, -1;
    const double r = 1.0 / std::sqrt(2.0 / 3.0 + 1e-5);  // 1.2247356...
    const Eigen::MatrixXd z = e.forward(theta, x);
    CHECK(std::abs(z(0, 0) - (1.0 - 2.0 * r)) < 1e-15);
    CHECK(z(0, 1) == 0.0);
    CHECK(std::abs(z(0, 2) - (-1.0 + 0.5 * r)) < 1e-15);
    CHECK(std::abs(r - 1.22473569) < 1e-8);  // eps = 1e-5 is in: without it r = 1.22474487
  }
  SECTION("one unit cut by ReLU: h = (-1, 2, 3) -> (0, 2, 3), mean 5/3, variance 14/9") {
    Eigen::VectorXd theta(12);
    theta << -1, 2, 4, 0, 0, -1, 1, 1, 1, 0, 0, 0;
    const double r = 1.0 / std::sqrt(14.0 / 9.0 + 1e-5);
    const Eigen::MatrixXd z = e.forward(theta, x);
    CHECK(std::abs(z(0, 0) - (-5.0 / 3.0) * r) < 1e-14);
    CHECK(std::abs(z(0, 1) - (1.0 / 3.0) * r) < 1e-14);
    CHECK(std::abs(z(0, 2) - (4.0 / 3.0) * r) < 1e-14);
    // The cut unit gets no weight gradient (ReLU'(-1) = 0); gamma's gradient is xhat.
    Eigen::MatrixXd dz(1, 3);
    dz << 1, 1, 1;
    const Eigen::VectorXd g = e.vjp(theta, x, dz);
    CHECK(g(0) == 0.0);
    CHECK(g(3) == 0.0);
    CHECK(std::abs(g(6) - (-5.0 / 3.0) * r) < 1e-14);
    CHECK(g.segment(9, 3) == Eigen::Vector3d::Ones());
    // A uniform dz is invariant under normalisation: no gradient reaches the live layer weights.
    CHECK(std::abs(g(1)) < 1e-15);
    CHECK(std::abs(g(2)) < 1e-15);
  }
  SECTION("ReLU at exactly 0 has derivative 0") {
    Eigen::VectorXd theta(12);
    theta << 0, 2, 4, 0, 0, 0, 1, 1, 1, 0, 0, 0;  // h(0) = 0 exactly
    Eigen::MatrixXd dz(1, 3);
    dz << 1, -2, 0.5;
    const Eigen::VectorXd g = e.vjp(theta, x, dz);
    CHECK(g(0) == 0.0);
    CHECK(g(3) == 0.0);
  }
}

TEST_CASE("Conv on a hand-computed case: one tap, stride 1 and 2", "[meta][conv]") {
  // 3x3 image 1..9, a single 3x3 kernel with only tap (ky, kx) = (0, 0) set to 1: output pixel
  // (y, x) = input (y - 1, x - 1), zero-padded, as PyTorch's Conv2d(padding=1) computes it.
  ConvOptions o;
  o.height = 3;
  o.width = 3;
  o.channels = {1, 1};
  o.strides = {1};
  o.output_dim = 1;
  const Conv e(o);
  REQUIRE(e.parameter_count() == 9 + 1 + 1 + 1);
  Eigen::VectorXd theta = Eigen::VectorXd::Zero(12);
  theta(0) = 1.0;                       // tap (0, 0)
  theta(e.head_weight_offset()) = 1.0;  // head W = 1, b = 0
  Eigen::MatrixXd x(1, 9);
  x << 1, 2, 3, 4, 5, 6, 7, 8, 9;
  // Shifted image [[0,0,0],[0,1,2],[0,4,5]]: mean 12 / 9.
  CHECK(std::abs(e.forward(theta, x)(0, 0) - 12.0 / 9.0) < 1e-15);
  // Tap (2, 1): output (y, x) = input (y + 1, x): [[4,5,6],[7,8,9],[0,0,0]] -> 39 / 9.
  theta(0) = 0.0;
  theta(7) = 1.0;
  CHECK(std::abs(e.forward(theta, x)(0, 0) - 39.0 / 9.0) < 1e-15);
  // Stride 2 on 3x3 gives 2x2 outputs at input rows/columns {0, 2}: tap (2, 1) reads (1, 0), (1,
  // 2), (3, 0) -> 0, (3, 2) -> 0: (4 + 6) / 4.
  o.strides = {2};
  const Conv e2(o);
  CHECK(e2.output_height(0) == 2);
  CHECK(e2.output_width(0) == 2);
  CHECK(std::abs(e2.forward(theta, x)(0, 0) - 10.0 / 4.0) < 1e-15);
}

TEST_CASE("vjp agrees with central differences", "[meta][embedding][gradient]") {
  SECTION("Linear") {
    const Linear e(4, 3);
    const auto c = baypr::meta::check_embedding_gradient(e, random_theta(e.parameter_count(), 21),
                                                         random_inputs(5, 4, 22), 23);
    CHECK(c.coordinates_checked == e.parameter_count());
    CHECK(c.passed(1e-7));
  }
  SECTION("Mlp") {
    for (const std::vector<Eigen::Index>& widths :
         {std::vector<Eigen::Index>{5, 4}, std::vector<Eigen::Index>{6, 5, 4, 3}}) {
      const Mlp e(widths);
      const auto c = baypr::meta::check_embedding_gradient(
          e, random_theta(e.parameter_count(), 24), random_inputs(6, widths.front(), 25), 26);
      INFO("worst coordinate " << c.worst_coordinate << ": " << c.worst_analytic << " vs "
                               << c.worst_numeric);
      CHECK(c.coordinates_checked == e.parameter_count());
      CHECK(c.passed(1e-7));
    }
  }
  SECTION("Conv") {
    for (const ConvOptions& o : {small_conv(), two_channel_conv()}) {
      const Conv e(o);
      const auto c = baypr::meta::check_embedding_gradient(e, random_theta(e.parameter_count(), 27),
                                                           random_inputs(3, e.input_dim(), 28), 29,
                                                           1e-6, 1000);
      INFO("worst coordinate " << c.worst_coordinate << ": " << c.worst_analytic << " vs "
                               << c.worst_numeric);
      CHECK(c.coordinates_checked == e.parameter_count());
      CHECK(c.passed(1e-7));
    }
  }
  SECTION("a seeded random subset when there are more parameters than max_parameters") {
    ConvOptions o;
    o.height = 28;
    o.width = 28;
    o.output_dim = 8;
    const Conv e(o);
    const Eigen::VectorXd theta = e.initial_parameters(30);
    const Eigen::MatrixXd x = random_inputs(2, 784, 31);
    const auto c = baypr::meta::check_embedding_gradient(e, theta, x, 32, 1e-6, 40);
    CHECK(c.coordinates_checked == 40);
    CHECK(c.passed(1e-7));
    const auto again = baypr::meta::check_embedding_gradient(e, theta, x, 32, 1e-6, 40);
    CHECK(again.max_abs_error == c.max_abs_error);
  }
}

TEST_CASE("the gradient checker fails on wrong embeddings", "[meta][gradcheck]") {
  SECTION("one coordinate off by 0.1%") {
    const WrongCoordinate e;
    const auto c = baypr::meta::check_embedding_gradient(e, random_theta(e.parameter_count(), 41),
                                                         random_inputs(5, 4, 42), 43);
    CHECK_FALSE(c.passed(1e-6));
    CHECK(c.worst_coordinate == 7);
    CHECK(c.max_rel_error > 1e-5);
  }
  SECTION("every weight gradient below the LayerNorm 3% too large") {
    const WrongBelowNorm e;
    const auto c = baypr::meta::check_embedding_gradient(e, random_theta(e.parameter_count(), 44),
                                                         random_inputs(5, 3, 45), 46);
    CHECK_FALSE(c.passed(1e-3));
  }
  SECTION("dual path dropping derivatives") {
    const DropsDuals e;
    const Eigen::VectorXd theta = random_theta(e.parameter_count(), 47);
    const Eigen::MatrixXd x = random_inputs(4, 3, 48);
    CHECK(baypr::meta::check_embedding_gradient(e, theta, x, 49)
              .passed(1e-7));  // the double path is fine
    const auto d = baypr::meta::check_embedding_duals(e, theta, x, 50);
    CHECK(d.forward_value_error == 0.0);
    CHECK(d.forward_derivative_error > 1e-3);
    CHECK_FALSE(d.passed(1e-6));
  }
}

TEST_CASE("HvpScalar path: values equal double, dual parts are directional derivatives",
          "[meta][embedding][dual]") {
  const auto check = [](const auto& e, std::uint64_t seed) {
    const Eigen::VectorXd theta = random_theta(e.parameter_count(), seed);
    const Eigen::MatrixXd x = random_inputs(4, e.input_dim(), seed + 1);
    const auto d = baypr::meta::check_embedding_duals(e, theta, x, seed + 2);
    INFO("value " << d.forward_value_error << " / " << d.vjp_value_error << ", derivative "
                  << d.forward_derivative_error << " / " << d.vjp_derivative_error);
    CHECK(d.forward_value_error < 1e-13);
    CHECK(d.vjp_value_error < 1e-13);
    CHECK(d.passed(1e-7));
  };
  check(Linear(4, 3), 60);
  check(Mlp::paper_head(5, 4), 61);
  check(Mlp({6, 5, 3}), 62);
  check(Conv(small_conv()), 63);
  check(Conv(two_channel_conv()), 64);
}

namespace {

// Dual vectors a + eps b.
ParamVector<HvpScalar> dual_vector(const Eigen::VectorXd& a, const Eigen::VectorXd& b) {
  ParamVector<HvpScalar> out(a.size());
  for (Eigen::Index i = 0; i < a.size(); ++i)
    out(i) = HvpScalar(a(i), Eigen::Matrix<double, 1, 1>(b(i)));
  return out;
}
RowMatrix<HvpScalar> dual_matrix(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  RowMatrix<HvpScalar> out(a.rows(), a.cols());
  for (Eigen::Index i = 0; i < a.size(); ++i)
    out(i) = HvpScalar(a(i), Eigen::Matrix<double, 1, 1>(b(i)));
  return out;
}
template <class M>
Eigen::MatrixXd dual_part(const M& m) {
  Eigen::MatrixXd out(m.rows(), m.cols());
  for (Eigen::Index i = 0; i < m.size(); ++i) out(i) = m(i).derivatives()(0);
  return out;
}
double rel_max(const Eigen::MatrixXd& got, const Eigen::MatrixXd& want) {
  return max_abs_diff(got, want) / want.cwiseAbs().maxCoeff();
}

// The tape API of an embedding against its forward/vjp (values), its HvpScalar path (tangents)
// and central differences of forward and vjp along (v, dz_dot).
template <class E>
void check_tape(const E& e, std::uint64_t seed) {
  const Eigen::Index n = 4, d = e.output_dim(), p = e.parameter_count();
  const Eigen::VectorXd theta = random_theta(p, seed), v = random_theta(p, seed + 1);
  const Eigen::MatrixXd x = random_inputs(n, e.input_dim(), seed + 2);
  const Eigen::MatrixXd dz = random_inputs(n, d, seed + 3), dz_dot = random_inputs(n, d, seed + 4);
  typename E::Tape tape;
  const Eigen::MatrixXd z = e.forward_with_tape(theta, x, tape);
  CHECK(rel_max(z, e.forward(theta, x)) < 1e-14);
  Eigen::VectorXd g;
  e.vjp_from_tape(theta, x, dz, tape, g);
  CHECK(rel_max(g, e.vjp(theta, x, dz)) < 1e-13);

  const Eigen::MatrixXd z_dot = e.jvp_from_tape(theta, v, x, tape);
  Eigen::VectorXd g_dot;
  e.vjp_tangent_from_tape(theta, v, x, dz, dz_dot, tape, g_dot);
  const ParamVector<HvpScalar> td = dual_vector(theta, v);
  const Eigen::MatrixXd z_dual = dual_part(e.forward(td, x));
  const Eigen::MatrixXd g_dual = dual_part(e.vjp(td, x, dual_matrix(dz, dz_dot)));
  INFO("jvp vs duals " << rel_max(z_dot, z_dual) << ", vjp tangent vs duals "
                       << rel_max(g_dot, g_dual));
  CHECK(rel_max(z_dot, z_dual) < 1e-12);
  CHECK(rel_max(g_dot, g_dual) < 1e-12);

  const double h = 1e-6;
  const Eigen::VectorXd t_plus = theta + h * v, t_minus = theta - h * v;
  const Eigen::MatrixXd z_fd = (e.forward(t_plus, x) - e.forward(t_minus, x)) / (2 * h);
  const Eigen::MatrixXd g_fd = (e.vjp(t_plus, x, Eigen::MatrixXd(dz + h * dz_dot)) -
                                e.vjp(t_minus, x, Eigen::MatrixXd(dz - h * dz_dot))) /
                               (2 * h);
  INFO("jvp vs differences " << rel_max(z_dot, z_fd) << ", vjp tangent vs differences "
                             << rel_max(g_dot, g_fd));
  CHECK(rel_max(z_dot, z_fd) < 1e-7);
  CHECK(rel_max(g_dot, g_fd) < 1e-7);

  // The tape is reusable: a second forward on other rows replaces the first.
  const Eigen::MatrixXd x2 = random_inputs(n + 2, e.input_dim(), seed + 5);
  CHECK(rel_max(e.forward_with_tape(theta, x2, tape), e.forward(theta, x2)) < 1e-14);
  const Eigen::MatrixXd dz2 = random_inputs(n + 2, d, seed + 6);
  e.vjp_from_tape(theta, x2, dz2, tape, g);
  CHECK(rel_max(g, e.vjp(theta, x2, dz2)) < 1e-13);
}

}  // namespace

TEST_CASE("tape API: values equal forward/vjp, tangents equal duals and central differences",
          "[meta][embedding][tape]") {
  static_assert(baypr::meta::TangentTapedEmbedding<Linear> &&
                baypr::meta::RowIndependentEmbedding<Linear>);
  static_assert(baypr::meta::TangentTapedEmbedding<Mlp> &&
                baypr::meta::RowIndependentEmbedding<Mlp>);
  static_assert(baypr::meta::TangentTapedEmbedding<Conv> &&
                baypr::meta::RowIndependentEmbedding<Conv>);
  SECTION("Linear") {
    check_tape(Linear(4, 3), 70);
  }
  SECTION("Mlp, one and three layers") {
    check_tape(Mlp::paper_head(5, 4), 71);
    check_tape(Mlp({6, 5, 4, 3}), 72);
  }
  SECTION("Conv, two layers (strides 2, 1) and one two-channel layer") {
    check_tape(Conv(small_conv()), 73);
    check_tape(Conv(two_channel_conv()), 74);
  }
  SECTION("misuse of a tape throws") {
    const Mlp e({4, 3});
    const Eigen::VectorXd theta = e.initial_parameters(1);
    const Eigen::MatrixXd x = random_inputs(2, 4, 2), dz = Eigen::MatrixXd::Zero(2, 3);
    Mlp::Tape tape;
    Eigen::VectorXd g;
    CHECK(contains(message_of([&] { e.vjp_from_tape(theta, x, dz, tape, g); }),
                   "baypr::meta::Mlp::vjp_from_tape: argument 'tape' is empty"));
    (void)e.forward_with_tape(theta, x, tape);
    CHECK(contains(message_of([&] { e.vjp_from_tape(theta, random_inputs(3, 4, 3), dz, tape, g); }),
                   "argument 'inputs' has rows (as taped) 3, expected 2"));
    CHECK(contains(message_of([&] { e.vjp_tangent_from_tape(theta, theta, x, dz, dz, tape, g); }),
                   "argument 'tape' has no tangent"));
    CHECK(contains(
        message_of([&] { (void)e.jvp_from_tape(theta, Eigen::VectorXd(theta.head(3)), x, tape); }),
        "argument 'direction' has size 3"));
    Conv::Tape ct;
    const Conv c(small_conv());
    CHECK(contains(message_of([&] {
                     (void)c.forward_with_tape(c.initial_parameters(1), random_inputs(2, 7, 4), ct);
                   }),
                   "baypr::meta::Conv::forward_with_tape: argument 'inputs' has columns 7"));
  }
}

TEST_CASE("initial parameters: PyTorch's bounds, deterministic per seed", "[meta][init]") {
  SECTION("Mlp {784, 256, 128}") {
    const Mlp e({784, 256, 128});
    const Eigen::VectorXd a = e.initial_parameters(5), b = e.initial_parameters(5),
                          c = e.initial_parameters(6);
    CHECK(a == b);
    CHECK(a != c);
    const auto within = [&](Eigen::Index from, Eigen::Index count, double bound) {
      const double m = a.segment(from, count).cwiseAbs().maxCoeff();
      CHECK(m <= bound);
      CHECK(m > 0.95 * bound);  // uses the whole range, not a smaller one
    };
    within(e.weight_offset(0), 256 * 784 + 256, 1.0 / 28.0);
    within(e.weight_offset(1), 128 * 256 + 128, 1.0 / 16.0);
    CHECK(e.bias_offset(1) == e.weight_offset(1) + 128 * 256);
    CHECK(a.segment(e.gamma_offset(), 128) == Eigen::VectorXd::Ones(128));
    CHECK(a.segment(e.beta_offset(), 128) == Eigen::VectorXd::Zero(128));
    CHECK(e.beta_offset() + 128 == e.parameter_count());
    CHECK(std::abs(a.segment(0, 256 * 784).mean()) < 1e-3);  // symmetric
  }
  SECTION("paper head") {
    const Mlp e = Mlp::paper_head(512, 128);
    CHECK(e.widths() == std::vector<Eigen::Index>{512, 128});
    CHECK(e.parameter_count() == 512 * 128 + 128 + 2 * 128);
  }
  SECTION("Conv {1, 16, 32}") {
    ConvOptions o;
    o.height = 28;
    o.width = 28;
    const Conv e(o);
    CHECK(e.parameter_count() == (16 * 9 + 16) + (32 * 9 * 16 + 32) + (64 * 32 + 64));
    const Eigen::VectorXd a = e.initial_parameters(9);
    CHECK(a == e.initial_parameters(9));
    CHECK(a != e.initial_parameters(10));
    const auto within = [&](Eigen::Index from, Eigen::Index count, double bound) {
      const double m = a.segment(from, count).cwiseAbs().maxCoeff();
      CHECK(m <= bound);
      CHECK(m > 0.9 * bound);
    };
    within(e.weight_offset(0), 16 * 9 + 16, 1.0 / 3.0);
    within(e.weight_offset(1), 32 * 9 * 16 + 32, 1.0 / 12.0);
    within(e.head_weight_offset(), 64 * 32 + 64, 1.0 / std::sqrt(32.0));
    CHECK(e.head_bias_offset() + 64 == e.parameter_count());
  }
}

TEST_CASE("bad input throws baypr::invalid_argument naming the function and argument",
          "[meta][embedding][errors]") {
  const auto throws_with = [](auto&& f, const std::string& fn, const std::string& arg,
                              const std::string& part) {
    CHECK_THROWS_AS(f(), baypr::invalid_argument);
    const std::string m = message_of(f);
    INFO(m);
    CHECK(contains(m, fn));
    CHECK(contains(m, "'" + arg + "'"));
    CHECK(contains(m, part));
  };
  const Mlp mlp({4, 3});
  const Conv conv(small_conv());
  const Eigen::VectorXd tm = mlp.initial_parameters(1), tc = conv.initial_parameters(1);
  const Eigen::MatrixXd xm = random_inputs(2, 4, 2), xc = random_inputs(2, conv.input_dim(), 3);

  SECTION("wrong theta length") {
    throws_with([&] { (void)mlp.forward(Eigen::VectorXd(tm.head(5)), xm); },
                "baypr::meta::Mlp::forward", "theta", "size 5");
    throws_with(
        [&] { (void)conv.vjp(Eigen::VectorXd(tc.head(3)), xc, Eigen::MatrixXd::Zero(2, 5)); },
        "baypr::meta::Conv::vjp", "theta", "size 3");
  }
  SECTION("wrong input columns") {
    throws_with([&] { (void)mlp.forward(tm, random_inputs(2, 5, 4)); }, "baypr::meta::Mlp::forward",
                "inputs", "columns 5");
    throws_with([&] { (void)conv.forward(tc, random_inputs(2, 31, 4)); },
                "baypr::meta::Conv::forward", "inputs", "columns 31");
  }
  SECTION("NaN inputs") {
    Eigen::MatrixXd bad = xm;
    bad(1, 2) = std::numeric_limits<double>::quiet_NaN();
    throws_with([&] { (void)mlp.vjp(tm, bad, Eigen::MatrixXd::Zero(2, 3)); },
                "baypr::meta::Mlp::vjp", "inputs", "row 1, column 2");
    Eigen::MatrixXd badc = xc;
    badc(0, 7) = std::numeric_limits<double>::infinity();
    throws_with([&] { (void)conv.forward(tc, badc); }, "baypr::meta::Conv::forward", "inputs",
                "row 0, column 7");
  }
  SECTION("wrong dZ shape") {
    throws_with([&] { (void)mlp.vjp(tm, xm, Eigen::MatrixXd::Zero(3, 3)); },
                "baypr::meta::Mlp::vjp", "d_embeddings", "rows 3");
    throws_with([&] { (void)conv.vjp(tc, xc, Eigen::MatrixXd::Zero(2, 4)); },
                "baypr::meta::Conv::vjp", "d_embeddings", "columns 4");
  }
  SECTION("invalid constructor arguments") {
    throws_with([] { (void)Mlp({5}); }, "baypr::meta::Mlp", "widths", "at least 2");
    throws_with([] { (void)Mlp({5, 0, 3}); }, "baypr::meta::Mlp", "widths", "got 0 at index 1");
    throws_with([] { (void)Mlp({5, 1}); }, "baypr::meta::Mlp", "widths", "LayerNorm");
    ConvOptions o = small_conv();
    o.height = 0;
    throws_with([&] { (void)Conv(o); }, "baypr::meta::Conv", "options.height", "got 0");
    o = small_conv();
    o.strides = {2};
    throws_with([&] { (void)Conv(o); }, "baypr::meta::Conv", "options.strides", "got 1");
    o.strides = {2, 3};
    throws_with([&] { (void)Conv(o); }, "baypr::meta::Conv", "options.strides", "got 3 at index 1");
    o = small_conv();
    o.channels = {1, 0, 4};
    throws_with([&] { (void)Conv(o); }, "baypr::meta::Conv", "options.channels",
                "got 0 at index 1");
    o = small_conv();
    o.output_dim = 0;
    throws_with([&] { (void)Conv(o); }, "baypr::meta::Conv", "options.output_dim", "got 0");
    throws_with([] { (void)Mlp({4, 3}).bias_offset(1); }, "baypr::meta::Mlp", "layer", "got 1");
  }
  SECTION("the checkers' own arguments") {
    throws_with(
        [&] {
          (void)baypr::meta::check_embedding_gradient(mlp, Eigen::VectorXd(tm.head(2)), xm, 1);
        },
        "baypr::meta::check_embedding_gradient", "theta", "size 2");
    throws_with([&] { (void)baypr::meta::check_embedding_gradient(mlp, tm, xm, 1, 0.0); },
                "baypr::meta::check_embedding_gradient", "step", "got 0");
    throws_with([&] { (void)baypr::meta::check_embedding_gradient(mlp, tm, xm, 1, 1e-6, 0); },
                "baypr::meta::check_embedding_gradient", "max_parameters", "got 0");
    throws_with([&] { (void)baypr::meta::check_embedding_duals(mlp, tm, xm, 1, -1.0); },
                "baypr::meta::check_embedding_duals", "step", "got -1");
    throws_with(
        [&] { (void)baypr::meta::check_embedding_gradient(mlp, tm, random_inputs(2, 3, 5), 1); },
        "baypr::meta::Mlp", "inputs", "columns 3");
  }
}

// Timing, not run by default: ./meta_embedding.test "[.timing]"
TEST_CASE("Conv forward + vjp time on a 32-image 28x28 batch", "[.timing]") {
  ConvOptions o;
  o.height = 28;
  o.width = 28;
  const Conv e(o);
  const Eigen::VectorXd theta = e.initial_parameters(1);
  const Eigen::MatrixXd x = (random_inputs(32, 784, 2).array() + 1.0) * 0.5;
  const Eigen::MatrixXd dz = random_inputs(32, 64, 3);
  const auto time_ms = [](auto&& f, int reps) {
    f();
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) f();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
               .count() /
           reps;
  };
  double sink = 0.0;
  const double fwd = time_ms([&] { sink += e.forward(theta, x)(0, 0); }, 50);
  const double both =
      time_ms([&] { sink += e.forward(theta, x)(0, 0) + e.vjp(theta, x, dz)(0); }, 50);
  ParamVector<HvpScalar> dual = theta.cast<HvpScalar>();
  for (Eigen::Index i = 0; i < dual.size(); ++i) dual(i).derivatives()(0) = 1.0;
  const RowMatrix<HvpScalar> dz_dual = dz.cast<HvpScalar>();
  const double both_dual = time_ms(
      [&] { sink += e.forward(dual, x)(0, 0).value() + e.vjp(dual, x, dz_dual)(0).value(); }, 10);
  std::cout << "Conv {1,16,32} strides {2,2} -> 64, 32 x 28x28: forward " << fwd
            << " ms, forward+vjp " << both << " ms (double), forward+vjp " << both_dual
            << " ms (HvpScalar)  [" << sink << "]\n";
  CHECK(std::isfinite(sink));
}
