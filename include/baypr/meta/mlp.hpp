// baypr/meta/mlp.hpp: a multilayer perceptron embedding ending in LayerNorm, the paper's head.
//
//   Mlp(widths)                Linear-ReLU between consecutive widths, then LayerNorm(last width)
//   Mlp::paper_head(in, out)   Linear(in, out) -> ReLU -> LayerNorm(out), the authors' head
//
// widths {784, 256, 128} is Linear(784, 256) - ReLU - Linear(256, 128) - ReLU - LayerNorm(128).
// LayerNorm normalises each row over its features with the biased variance and eps = 1e-5, then
// applies a learnable per-feature gamma (scale) and beta (shift), as torch.nn.LayerNorm does.
// ReLU's derivative at exactly 0 is taken as 0 (PyTorch's choice too).
//
// theta layout, for layers l = 0 .. L-1 (in = widths[l], out = widths[l+1]) in order:
//   W_l  out x in, column-major (as baypr::meta::Linear), then b_l (out);
// then gamma (widths.back()), then beta (widths.back()). weight_offset / bias_offset /
// gamma_offset / beta_offset give the positions.
//
// Forward and vjp are templates on theta's Scalar (double, or HvpScalar for exact second-order
// meta-gradients); each layer is one GEMM over all rows. The tape API (meta/embedding.hpp) does
// the same in double with reusable buffers, plus the tangents for Hessian-vector products:
// forward-over-reverse written out, with LayerNorm's tangent through its projection
//   P(u) = rstd (u - mean(u) - xhat mean(xhat u))   (per row; da = P(dxhat), xhat_dot = P(a_dot)).
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/core/traits.hpp"
#include "baypr/meta/embedding.hpp"

namespace baypr::meta {

namespace detail {

// ReLU in place. The branch is on the plain value, so dual numbers pass their derivative through
// where the unit is active and drop it (derivative 0) elsewhere, including exactly at 0.
template <class Scalar>
void relu_in_place(RowMatrix<Scalar>& h) {
  h = h.unaryExpr([](const Scalar& v) { return value_of(v) > 0.0 ? v : Scalar(0.0); });
}

// d/dh of ReLU applied to an upstream gradient, given the activations a = relu(h) (a > 0 iff h >
// 0).
template <class Scalar>
void relu_backward_in_place(RowMatrix<Scalar>& grad, const RowMatrix<Scalar>& activation) {
  grad = grad.binaryExpr(activation, [](const Scalar& g, const Scalar& a) {
    return value_of(a) > 0.0 ? g : Scalar(0.0);
  });
}

// a * b as a RowMatrix<Scalar>, each operand double or Scalar. With Scalar = HvpScalar the dual
// product is split into plain double GEMMs (value: av bv; derivative: ad bv + av bd), several
// times faster than Eigen's generic kernel on AutoDiffScalar.
template <class Scalar, class DA, class DB>
RowMatrix<Scalar> layer_product(const Eigen::MatrixBase<DA>& a, const Eigen::MatrixBase<DB>& b) {
  using SA = typename DA::Scalar;
  using SB = typename DB::Scalar;
  static_assert(std::is_same_v<SA, double> || std::is_same_v<SA, Scalar>);
  static_assert(std::is_same_v<SB, double> || std::is_same_v<SB, Scalar>);
  if constexpr (std::is_same_v<Scalar, HvpScalar>) {
    const auto value = [](const HvpScalar& v) { return v.value(); };
    const auto derivative = [](const HvpScalar& v) { return v.derivatives()(0); };
    Eigen::MatrixXd av, bv;
    if constexpr (std::is_same_v<SA, double>) {
      av = a;
    } else {
      av = a.unaryExpr(value);
    }
    if constexpr (std::is_same_v<SB, double>) {
      bv = b;
    } else {
      bv = b.unaryExpr(value);
    }
    Eigen::MatrixXd d = Eigen::MatrixXd::Zero(a.rows(), b.cols());
    if constexpr (!std::is_same_v<SA, double>) d.noalias() += a.unaryExpr(derivative).eval() * bv;
    if constexpr (!std::is_same_v<SB, double>) d.noalias() += av * b.unaryExpr(derivative).eval();
    const Eigen::MatrixXd v = av * bv;
    RowMatrix<Scalar> out(v.rows(), v.cols());
    for (Eigen::Index i = 0; i < v.size(); ++i) {
      out(i).value() = v(i);
      out(i).derivatives()(0) = d(i);
    }
    return out;
  } else {
    return a.derived().template cast<Scalar>() * b.derived().template cast<Scalar>();
  }
}

}  // namespace detail

class Mlp {
 public:
  static constexpr double layer_norm_eps = 1e-5;

  // widths[0] = input_dim, widths.back() = output_dim; at least two widths, all >= 1, and the last
  // >= 2 (LayerNorm over a single feature is constant: it would output beta whatever the input).
  explicit Mlp(std::vector<Eigen::Index> widths) : widths_(std::move(widths)) {
    constexpr const char* fn = "baypr::meta::Mlp";
    if (widths_.size() < 2) {
      baypr::detail::throw_invalid(
          fn, "widths", "must have at least 2 entries, got " + std::to_string(widths_.size()));
    }
    for (std::size_t i = 0; i < widths_.size(); ++i) {
      if (widths_[i] < 1) {
        baypr::detail::throw_invalid(
            fn, "widths",
            "must be >= 1, got " + std::to_string(widths_[i]) + " at index " + std::to_string(i));
      }
    }
    if (widths_.back() < 2) {
      baypr::detail::throw_invalid(
          fn, "widths",
          "last entry (the LayerNorm width) must be >= 2, got " + std::to_string(widths_.back()));
    }
    offsets_.reserve(widths_.size());
    Eigen::Index off = 0;
    for (std::size_t l = 0; l + 1 < widths_.size(); ++l) {
      offsets_.push_back(off);
      off += widths_[l + 1] * widths_[l] + widths_[l + 1];
    }
    offsets_.push_back(off);  // gamma
    parameter_count_ = off + 2 * widths_.back();
  }

  // The authors' head: Linear(input_dim, output_dim) -> ReLU -> LayerNorm(output_dim).
  [[nodiscard]] static Mlp paper_head(Eigen::Index input_dim, Eigen::Index output_dim) {
    return Mlp({input_dim, output_dim});
  }

  [[nodiscard]] Eigen::Index input_dim() const { return widths_.front(); }
  [[nodiscard]] Eigen::Index output_dim() const { return widths_.back(); }
  [[nodiscard]] Eigen::Index parameter_count() const { return parameter_count_; }
  [[nodiscard]] Eigen::Index layer_count() const {
    return static_cast<Eigen::Index>(widths_.size()) - 1;
  }
  [[nodiscard]] const std::vector<Eigen::Index>& widths() const { return widths_; }

  [[nodiscard]] Eigen::Index weight_offset(Eigen::Index layer) const {
    return offsets_[checked_layer(layer)];
  }
  [[nodiscard]] Eigen::Index bias_offset(Eigen::Index layer) const {
    const std::size_t l = checked_layer(layer);
    return offsets_[l] + widths_[l + 1] * widths_[l];
  }
  [[nodiscard]] Eigen::Index gamma_offset() const { return offsets_.back(); }
  [[nodiscard]] Eigen::Index beta_offset() const { return offsets_.back() + widths_.back(); }

  // PyTorch's defaults: each W_l and b_l uniform in +-1/sqrt(fan_in), gamma = 1, beta = 0. Seeded,
  // identical on every platform.
  [[nodiscard]] Eigen::VectorXd initial_parameters(std::uint64_t seed) const {
    std::mt19937_64 rng(seed);
    Eigen::VectorXd theta(parameter_count_);
    for (std::size_t l = 0; l + 1 < widths_.size(); ++l) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(widths_[l]));
      const Eigen::Index count = widths_[l + 1] * widths_[l] + widths_[l + 1];
      for (Eigen::Index i = 0; i < count; ++i)
        theta(offsets_[l] + i) = baypr::uniform_symmetric(rng, bound);
    }
    theta.segment(gamma_offset(), output_dim()).setOnes();
    theta.segment(beta_offset(), output_dim()).setZero();
    return theta;
  }

  template <class Scalar, class DX>
  [[nodiscard]] RowMatrix<Scalar> forward(const ParamVector<Scalar>& theta,
                                          const Eigen::MatrixBase<DX>& x) const {
    detail::check_embedding_call("baypr::meta::Mlp::forward", parameter_count_, input_dim(), theta,
                                 x);
    return run(theta, x).z;
  }

  template <class Scalar, class DX, class DG>
  [[nodiscard]] ParamVector<Scalar> vjp(const ParamVector<Scalar>& theta,
                                        const Eigen::MatrixBase<DX>& x,
                                        const Eigen::MatrixBase<DG>& dz) const {
    constexpr const char* fn = "baypr::meta::Mlp::vjp";
    detail::check_embedding_call(fn, parameter_count_, input_dim(), theta, x);
    detail::check_output_gradient<Scalar>(fn, x.rows(), output_dim(), dz);
    const Trace<Scalar> t = run(theta, x);
    const Eigen::Index d = output_dim();
    const Scalar inv_d(1.0 / static_cast<double>(d));
    const RowMatrix<Scalar> g_out = dz.derived().template cast<Scalar>();

    ParamVector<Scalar> g(parameter_count_);
    g.segment(beta_offset(), d) = g_out.colwise().sum().transpose();
    g.segment(gamma_offset(), d) = (g_out.array() * t.xhat.array()).colwise().sum().transpose();

    // LayerNorm backward: da = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), per row.
    const RowMatrix<Scalar> dxhat = g_out * theta.segment(gamma_offset(), d).asDiagonal();
    const ParamVector<Scalar> m1 = dxhat.rowwise().sum() * inv_d;
    const ParamVector<Scalar> m2 =
        (dxhat.array() * t.xhat.array()).rowwise().sum().matrix() * inv_d;
    RowMatrix<Scalar> grad = (dxhat.colwise() - m1).array() - t.xhat.array().colwise() * m2.array();
    grad = grad.array().colwise() * t.rstd.array();

    for (Eigen::Index layer = layer_count() - 1; layer >= 0; --layer) {
      const auto l = static_cast<std::size_t>(layer);
      const Eigen::Index in = widths_[l], out = widths_[l + 1];
      detail::relu_backward_in_place(grad, t.activations[l]);
      Eigen::Map<RowMatrix<Scalar>> dW(g.data() + offsets_[l], out, in);
      if (l == 0) {
        dW = detail::layer_product<Scalar>(grad.transpose(), x.derived());
      } else {
        dW = detail::layer_product<Scalar>(grad.transpose(), t.activations[l - 1]);
      }
      g.segment(offsets_[l] + out * in, out) = grad.colwise().sum().transpose();
      if (l > 0) {
        grad = detail::layer_product<Scalar>(grad, weights(theta, l));
      }
    }
    return g;
  }

  // The tape API (meta/embedding.hpp): LayerNorm is per row, so rows are independent.
  static constexpr bool rows_independent = true;
  struct Tape {
    std::vector<Eigen::MatrixXd> a, a_dot;  // relu(h_l) and its tangent, n x widths[l + 1]
    Eigen::MatrixXd xhat, xhat_dot, z, z_dot;
    Eigen::VectorXd rstd, s1, s2, s3, s4;             // per row: 1 / sqrt(var + eps), scratch
    Eigen::MatrixXd g, g_prev, g_dot, g_dot_prev, u;  // backward scratch
    Eigen::Index rows = -1;                           // rows of the taped inputs (-1: none)
    bool has_tangent = false;  // jvp_from_tape ran since the last forward_with_tape
  };

  const Eigen::MatrixXd& forward_with_tape(const Eigen::VectorXd& theta, const Eigen::MatrixXd& x,
                                           Tape& tape) const {
    detail::check_embedding_call("baypr::meta::Mlp::forward_with_tape", parameter_count_,
                                 input_dim(), theta, x);
    tape.rows = -1;
    tape.has_tangent = false;
    const Eigen::Index n = x.rows(), d = output_dim();
    const auto layers = static_cast<std::size_t>(layer_count());
    tape.a.resize(layers);
    for (std::size_t l = 0; l < layers; ++l) {
      Eigen::MatrixXd& h = tape.a[l];
      h.resize(n, widths_[l + 1]);
      h.noalias() = (l == 0 ? x : tape.a[l - 1]) * weights(theta, l).transpose();
      h.rowwise() += bias(theta, l).transpose();
      h = h.cwiseMax(0.0);
    }
    const Eigen::MatrixXd& a = tape.a.back();
    const double inv_d = 1.0 / static_cast<double>(d);
    tape.s1 = a.rowwise().sum() * inv_d;
    tape.xhat = a.colwise() - tape.s1;
    tape.rstd = tape.xhat.array().square().rowwise().sum().matrix() * inv_d;
    tape.rstd = (tape.rstd.array() + layer_norm_eps).sqrt().inverse().matrix();
    tape.xhat = tape.xhat.array().colwise() * tape.rstd.array();
    tape.z = tape.xhat * theta.segment(gamma_offset(), d).asDiagonal();
    tape.z.rowwise() += theta.segment(beta_offset(), d).transpose();
    tape.rows = n;
    return tape.z;
  }

  void vjp_from_tape(const Eigen::VectorXd& theta, const Eigen::MatrixXd& x,
                     const Eigen::MatrixXd& dz, Tape& tape, Eigen::VectorXd& g) const {
    constexpr const char* fn = "baypr::meta::Mlp::vjp_from_tape";
    detail::check_tape_call(fn, parameter_count_, input_dim(), tape.rows, theta, x);
    detail::check_tape_dz(fn, "d_embeddings", x.rows(), output_dim(), dz);
    const Eigen::Index d = output_dim();
    g.resize(parameter_count_);
    g.segment(beta_offset(), d) = dz.colwise().sum().transpose();
    g.segment(gamma_offset(), d) = (dz.array() * tape.xhat.array()).colwise().sum().transpose();
    tape.g = dz * theta.segment(gamma_offset(), d).asDiagonal();
    layer_norm_backward(tape, tape.g);
    for (Eigen::Index layer = layer_count() - 1; layer >= 0; --layer) {
      const auto l = static_cast<std::size_t>(layer);
      mask_in_place(tape.g, tape.a[l]);
      weight_block(g, l).noalias() = tape.g.transpose() * (l == 0 ? x : tape.a[l - 1]);
      g.segment(bias_offset(layer), widths_[l + 1]) = tape.g.colwise().sum().transpose();
      if (l > 0) {
        tape.g_prev.noalias() = tape.g * weights(theta, l);
        tape.g.swap(tape.g_prev);
      }
    }
  }

  const Eigen::MatrixXd& jvp_from_tape(const Eigen::VectorXd& theta, const Eigen::VectorXd& v,
                                       const Eigen::MatrixXd& x, Tape& tape) const {
    constexpr const char* fn = "baypr::meta::Mlp::jvp_from_tape";
    detail::check_tape_call(fn, parameter_count_, input_dim(), tape.rows, theta, x);
    baypr::detail::check_size(fn, "direction", "size", v.size(), parameter_count_);
    const Eigen::Index n = x.rows(), d = output_dim();
    const auto layers = static_cast<std::size_t>(layer_count());
    tape.a_dot.resize(layers);
    for (std::size_t l = 0; l < layers; ++l) {
      Eigen::MatrixXd& h = tape.a_dot[l];
      h.resize(n, widths_[l + 1]);
      h.noalias() = (l == 0 ? x : tape.a[l - 1]) * weights(v, l).transpose();
      if (l > 0) h.noalias() += tape.a_dot[l - 1] * weights(theta, l).transpose();
      h.rowwise() += bias(v, l).transpose();
      mask_in_place(h, tape.a[l]);
    }
    tape.xhat_dot = tape.a_dot.back();
    layer_norm_backward(tape, tape.xhat_dot);  // P is also the forward tangent map
    tape.z_dot = tape.xhat_dot * theta.segment(gamma_offset(), d).asDiagonal();
    tape.z_dot.noalias() += tape.xhat * v.segment(gamma_offset(), d).asDiagonal();
    tape.z_dot.rowwise() += v.segment(beta_offset(), d).transpose();
    tape.has_tangent = true;
    return tape.z_dot;
  }

  void vjp_tangent_from_tape(const Eigen::VectorXd& theta, const Eigen::VectorXd& v,
                             const Eigen::MatrixXd& x, const Eigen::MatrixXd& dz,
                             const Eigen::MatrixXd& dz_dot, Tape& tape,
                             Eigen::VectorXd& g_dot) const {
    constexpr const char* fn = "baypr::meta::Mlp::vjp_tangent_from_tape";
    detail::check_tape_call(fn, parameter_count_, input_dim(), tape.rows, theta, x);
    baypr::detail::check_size(fn, "direction", "size", v.size(), parameter_count_);
    detail::check_tape_dz(fn, "d_embeddings", x.rows(), output_dim(), dz);
    detail::check_tape_dz(fn, "d_embeddings_dot", x.rows(), output_dim(), dz_dot);
    if (!tape.has_tangent) {
      baypr::detail::throw_invalid(fn, "tape",
                                   "has no tangent for these inputs: call jvp_from_tape first");
    }
    const Eigen::Index d = output_dim();
    const double inv_d = 1.0 / static_cast<double>(d);
    const auto gamma = theta.segment(gamma_offset(), d);
    const auto gamma_dot = v.segment(gamma_offset(), d);
    g_dot.resize(parameter_count_);
    g_dot.segment(beta_offset(), d) = dz_dot.colwise().sum().transpose();
    g_dot.segment(gamma_offset(), d) =
        (dz_dot.array() * tape.xhat.array() + dz.array() * tape.xhat_dot.array())
            .colwise()
            .sum()
            .transpose();

    // u = dxhat = dz gamma, u_dot = dz_dot gamma + dz gamma_dot; grad = P(u) and its tangent
    //   P_dot(u) = rstd_dot / rstd P(u) + rstd (u_dot - mean(u_dot) - xhat_dot mean(xhat u)
    //              - xhat mean(xhat_dot u + xhat u_dot)),
    //   rstd_dot / rstd = -rstd mean(xhat a_dot).
    tape.u = dz * gamma.asDiagonal();
    tape.g_dot = dz_dot * gamma.asDiagonal();
    tape.g_dot.noalias() += dz * gamma_dot.asDiagonal();
    tape.s1 =
        (tape.xhat.array() * tape.u.array()).rowwise().sum().matrix() * inv_d;  // mean(xhat u)
    tape.s2 = ((tape.xhat_dot.array() * tape.u.array()).rowwise().sum() +
               (tape.xhat.array() * tape.g_dot.array()).rowwise().sum())
                  .matrix() *
              inv_d;
    tape.s3 = (tape.xhat.array() * tape.a_dot.back().array()).rowwise().sum().matrix() * inv_d;
    tape.s4 = tape.g_dot.rowwise().sum() * inv_d;
    tape.g_dot.colwise() -= tape.s4;
    tape.g_dot.array() -= tape.xhat_dot.array().colwise() * tape.s1.array() +
                          tape.xhat.array().colwise() * tape.s2.array();
    tape.g = tape.u;
    layer_norm_backward(tape, tape.g);
    tape.g_dot = tape.g_dot.array().colwise() * tape.rstd.array() -
                 tape.g.array().colwise() * (tape.rstd.array() * tape.s3.array());

    for (Eigen::Index layer = layer_count() - 1; layer >= 0; --layer) {
      const auto l = static_cast<std::size_t>(layer);
      mask_in_place(tape.g, tape.a[l]);
      mask_in_place(tape.g_dot, tape.a[l]);
      auto dW_dot = weight_block(g_dot, l);
      dW_dot.noalias() = tape.g_dot.transpose() * (l == 0 ? x : tape.a[l - 1]);
      if (l > 0) dW_dot.noalias() += tape.g.transpose() * tape.a_dot[l - 1];
      g_dot.segment(bias_offset(layer), widths_[l + 1]) = tape.g_dot.colwise().sum().transpose();
      if (l > 0) {
        tape.g_dot_prev.noalias() = tape.g_dot * weights(theta, l);
        tape.g_dot_prev.noalias() += tape.g * weights(v, l);
        tape.g_dot.swap(tape.g_dot_prev);
        tape.g_prev.noalias() = tape.g * weights(theta, l);
        tape.g.swap(tape.g_prev);
      }
    }
  }

 private:
  // ReLU's derivative applied to grad, given the activations a (a > 0 iff the unit is active).
  static void mask_in_place(Eigen::MatrixXd& grad, const Eigen::MatrixXd& a) {
    grad = (a.array() > 0.0).select(grad, 0.0);
  }

  // u <- P(u) = rstd (u - mean(u) - xhat mean(xhat u)), per row: LayerNorm's backward map.
  void layer_norm_backward(Tape& tape, Eigen::MatrixXd& u) const {
    const double inv_d = 1.0 / static_cast<double>(output_dim());
    tape.s1 = u.rowwise().sum() * inv_d;
    tape.s2 = (u.array() * tape.xhat.array()).rowwise().sum().matrix() * inv_d;
    u = ((u.colwise() - tape.s1).array() - tape.xhat.array().colwise() * tape.s2.array())
            .colwise() *
        tape.rstd.array();
  }

  Eigen::Map<Eigen::MatrixXd> weight_block(Eigen::VectorXd& g, std::size_t l) const {
    return Eigen::Map<Eigen::MatrixXd>(g.data() + offsets_[l], widths_[l + 1], widths_[l]);
  }
  Eigen::VectorBlock<const Eigen::VectorXd> bias(const Eigen::VectorXd& theta,
                                                 std::size_t l) const {
    return theta.segment(offsets_[l] + widths_[l + 1] * widths_[l], widths_[l + 1]);
  }

  template <class Scalar>
  struct Trace {
    std::vector<RowMatrix<Scalar>> activations;  // relu(h_l), l = 0 .. L-1
    RowMatrix<Scalar> xhat;                      // normalised last activations
    ParamVector<Scalar> rstd;                    // 1 / sqrt(var + eps), per row
    RowMatrix<Scalar> z;
  };

  std::size_t checked_layer(Eigen::Index layer) const {
    if (layer < 0 || layer >= layer_count()) {
      baypr::detail::throw_invalid(
          "baypr::meta::Mlp", "layer",
          "must be in [0, " + std::to_string(layer_count()) + "), got " + std::to_string(layer));
    }
    return static_cast<std::size_t>(layer);
  }

  template <class Scalar>
  Eigen::Map<const RowMatrix<Scalar>> weights(const ParamVector<Scalar>& theta,
                                              std::size_t l) const {
    return Eigen::Map<const RowMatrix<Scalar>>(theta.data() + offsets_[l], widths_[l + 1],
                                               widths_[l]);
  }

  template <class Scalar, class DX>
  Trace<Scalar> run(const ParamVector<Scalar>& theta, const Eigen::MatrixBase<DX>& x) const {
    Trace<Scalar> t;
    const auto layers = static_cast<std::size_t>(layer_count());
    t.activations.reserve(layers);
    for (std::size_t l = 0; l < layers; ++l) {
      const Eigen::Index out = widths_[l + 1], in = widths_[l];
      RowMatrix<Scalar> h;
      if (l == 0) {
        h = detail::layer_product<Scalar>(x.derived(), weights(theta, l).transpose());
      } else {
        h = detail::layer_product<Scalar>(t.activations[l - 1], weights(theta, l).transpose());
      }
      h.rowwise() += theta.segment(offsets_[l] + out * in, out).transpose();
      detail::relu_in_place(h);
      t.activations.push_back(std::move(h));
    }
    const RowMatrix<Scalar>& a = t.activations.back();
    const Eigen::Index d = output_dim();
    const Scalar inv_d(1.0 / static_cast<double>(d));
    const ParamVector<Scalar> mean = a.rowwise().sum() * inv_d;
    t.xhat = a.colwise() - mean;
    const ParamVector<Scalar> var = t.xhat.array().square().rowwise().sum().matrix() * inv_d;
    t.rstd = (var.array() + Scalar(layer_norm_eps)).sqrt().inverse().matrix();
    t.xhat = t.xhat.array().colwise() * t.rstd.array();
    t.z = t.xhat * theta.segment(gamma_offset(), d).asDiagonal();
    t.z.rowwise() += theta.segment(beta_offset(), d).transpose();
    return t;
  }

  std::vector<Eigen::Index> widths_;
  std::vector<Eigen::Index> offsets_;  // weight offset of each layer, then gamma's
  Eigen::Index parameter_count_ = 0;
};

static_assert(TwiceDifferentiableEmbedding<Mlp>);
static_assert(TangentTapedEmbedding<Mlp> && RowIndependentEmbedding<Mlp>);

}  // namespace baypr::meta
