// baypr/meta/embedding.hpp: what a differentiable embedding is, and the simplest one.
//
//   concept DifferentiableEmbedding<E>        forward and vector-Jacobian product in double
//   concept TwiceDifferentiableEmbedding<E>   the same also in HvpScalar (forward-mode duals), so
//                                             exact second-order meta-gradients are available
//   HvpScalar                                 the dual number used for Hessian-vector products
//   ParamVector<S>, RowMatrix<S>              Eigen::Matrix<S, Dynamic, 1> / <S, Dynamic, Dynamic>
//   Linear(in, out)                           z = W x + b
//   concept TapedEmbedding<E>                 optional fast path: forward that keeps its
//                                             activations (a "tape") and a vjp that reuses them,
//                                             in double
//   concept TangentTapedEmbedding<E>          plus the tangents of both (Hessian-vector products in
//                                             plain double matrices, no dual numbers)
//   concept RowIndependentEmbedding<E>        row i of Z depends on row i of X only (opt-in trait)
//
// An embedding maps parameters theta (a flat vector) and inputs X (one sample per row, double,
// n x input_dim) to embeddings Z (n x output_dim, one row per input). It provides
//   Eigen::Index input_dim() const, output_dim() const, parameter_count() const;
//   forward(theta, X)       -> Z
//   vjp(theta, X, dZ)       -> dL/dtheta for dL/dZ = dZ (n x output_dim)
// The inputs are data and stay double; theta and dZ carry the Scalar. An embedding whose forward
// and vjp are templates on that Scalar (deduced from theta) also works with dual numbers, and the
// adaptation code then differentiates through its own reverse pass with them (Hessian-vector
// products of the inner loss, hence exact second-order meta-gradients). Embeddings are immutable
// value types: the parameters live outside, in the vector the optimiser updates.
//
// Optional, for speed (meta/adapt.hpp uses it when present and falls back to forward/vjp
// otherwise): a default-constructible E::Tape, reusable buffers owned by the caller, and
//   forward_with_tape(theta, X, tape)            -> const MatrixXd& Z (a reference into tape)
//   vjp_from_tape(theta, X, dZ, tape, g)         g = dL/dtheta at the taped (theta, X); no forward
// and for second order, with a direction v in parameter space,
//   jvp_from_tape(theta, v, X, tape)             -> const MatrixXd& dZ/deps of f_{theta + eps v}(X)
//   vjp_tangent_from_tape(theta, v, X, dZ, dZ_dot, tape, g_dot)
//        g_dot = d/deps vjp(theta + eps v, X, dZ + eps dZ_dot); after jvp_from_tape with the same v
// All in double, theta and X the ones of the last forward_with_tape on that tape. A tape is
// state, not a value: one per (theta, X) pair that must be kept alive. An embedding whose rows
// are processed independently (no batch statistics) may declare
//   static constexpr bool rows_independent = true;
// so that callers may stack several inputs into one batch.
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <random>
#include <string>
#include <type_traits>
#include <unsupported/Eigen/AutoDiff>

#include "baypr/core/errors.hpp"
#include "baypr/core/random.hpp"

namespace baypr::meta {

template <class Scalar>
using ParamVector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
template <class Scalar>
using RowMatrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

// One forward-mode derivative direction: value + epsilon * (directional derivative).
using HvpScalar = Eigen::AutoDiffScalar<Eigen::Matrix<double, 1, 1>>;

namespace detail {
// The scalar is checked as well as the convertibility: Eigen's converting constructors would
// otherwise let a double-only embedding pass as a dual one and fail deep inside Eigen later.
template <class T, class Scalar>
concept has_scalar = std::same_as<typename std::remove_cvref_t<T>::Scalar, Scalar>;

template <class E, class Scalar>
concept embedding_in = requires(const E& e, const ParamVector<Scalar>& theta,
                                const Eigen::MatrixXd& x, const RowMatrix<Scalar>& dz) {
  { e.forward(theta, x) } -> std::convertible_to<RowMatrix<Scalar>>;
  { e.vjp(theta, x, dz) } -> std::convertible_to<ParamVector<Scalar>>;
  { e.forward(theta, x) } -> has_scalar<Scalar>;
  { e.vjp(theta, x, dz) } -> has_scalar<Scalar>;
};
}  // namespace detail

template <class E>
concept DifferentiableEmbedding = requires(const E& e) {
  { e.input_dim() } -> std::convertible_to<Eigen::Index>;
  { e.output_dim() } -> std::convertible_to<Eigen::Index>;
  { e.parameter_count() } -> std::convertible_to<Eigen::Index>;
}
&&detail::embedding_in<E, double>;

template <class E>
concept TwiceDifferentiableEmbedding =
    DifferentiableEmbedding<E> && detail::embedding_in<E, HvpScalar>;

template <class E>
concept TapedEmbedding = DifferentiableEmbedding<E> &&
    std::default_initializable<typename E::Tape> &&
    requires(const E& e, typename E::Tape& tape, const Eigen::VectorXd& theta,
             const Eigen::MatrixXd& x, const Eigen::MatrixXd& dz, Eigen::VectorXd& g) {
  { e.forward_with_tape(theta, x, tape) } -> std::same_as<const Eigen::MatrixXd&>;
  e.vjp_from_tape(theta, x, dz, tape, g);
};

template <class E>
concept TangentTapedEmbedding = TapedEmbedding<E> &&
    requires(const E& e, typename E::Tape& tape, const Eigen::VectorXd& theta,
             const Eigen::VectorXd& v, const Eigen::MatrixXd& x, const Eigen::MatrixXd& dz,
             const Eigen::MatrixXd& dz_dot, Eigen::VectorXd& g) {
  { e.jvp_from_tape(theta, v, x, tape) } -> std::same_as<const Eigen::MatrixXd&>;
  e.vjp_tangent_from_tape(theta, v, x, dz, dz_dot, tape, g);
};

template <class E>
concept RowIndependentEmbedding = DifferentiableEmbedding<E> && requires {
  requires static_cast<bool>(E::rows_independent);
};

namespace detail {

// Checks of the tape calls after forward_with_tape: theta (and v) sizes, X's shape matching the
// taped rows, dZ's shape. X's values were checked by forward_with_tape.
inline void check_tape_call(const char* fn, Eigen::Index parameter_count, Eigen::Index input_dim,
                            Eigen::Index taped_rows, const Eigen::VectorXd& theta,
                            const Eigen::MatrixXd& x) {
  baypr::detail::check_size(fn, "theta", "size", theta.size(), parameter_count);
  baypr::detail::check_size(fn, "inputs", "columns", x.cols(), input_dim);
  if (taped_rows < 0)
    baypr::detail::throw_invalid(fn, "tape", "is empty: call forward_with_tape first");
  baypr::detail::check_size(fn, "inputs", "rows (as taped)", x.rows(), taped_rows);
}

inline void check_tape_dz(const char* fn, const char* arg, Eigen::Index rows,
                          Eigen::Index output_dim, const Eigen::MatrixXd& dz) {
  baypr::detail::check_size(fn, arg, "rows", dz.rows(), rows);
  baypr::detail::check_size(fn, arg, "columns", dz.cols(), output_dim);
}

// Shared argument checks for embeddings: theta's length, X's columns, X finite, dZ's shape.
template <class Scalar, class DX>
void check_embedding_call(const char* fn, Eigen::Index parameter_count, Eigen::Index input_dim,
                          const ParamVector<Scalar>& theta, const Eigen::MatrixBase<DX>& x) {
  baypr::detail::check_size(fn, "theta", "size", theta.size(), parameter_count);
  baypr::detail::check_size(fn, "inputs", "columns", x.cols(), input_dim);
  baypr::detail::check_finite(fn, "inputs", x);
}

template <class Scalar, class DG>
void check_output_gradient(const char* fn, Eigen::Index rows, Eigen::Index output_dim,
                           const Eigen::MatrixBase<DG>& dz) {
  baypr::detail::check_size(fn, "d_embeddings", "rows", dz.rows(), rows);
  baypr::detail::check_size(fn, "d_embeddings", "columns", dz.cols(), output_dim);
}

}  // namespace detail

// z = W x + b, W output_dim x input_dim. theta = [W (column-major), b].
class Linear {
 public:
  Linear(Eigen::Index input_dim, Eigen::Index output_dim) : in_(input_dim), out_(output_dim) {
    constexpr const char* fn = "baypr::meta::Linear";
    if (input_dim < 1)
      baypr::detail::throw_invalid(fn, "input_dim",
                                   "must be >= 1, got " + std::to_string(input_dim));
    if (output_dim < 1)
      baypr::detail::throw_invalid(fn, "output_dim",
                                   "must be >= 1, got " + std::to_string(output_dim));
  }

  [[nodiscard]] Eigen::Index input_dim() const { return in_; }
  [[nodiscard]] Eigen::Index output_dim() const { return out_; }
  [[nodiscard]] Eigen::Index parameter_count() const { return out_ * in_ + out_; }

  // PyTorch's default initialisation: W and b uniform in +-1/sqrt(input_dim), seeded.
  [[nodiscard]] Eigen::VectorXd initial_parameters(std::uint64_t seed) const {
    std::mt19937_64 rng(seed);
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_));
    Eigen::VectorXd theta(parameter_count());
    for (Eigen::Index i = 0; i < theta.size(); ++i) theta(i) = baypr::uniform_symmetric(rng, bound);
    return theta;
  }

  template <class Scalar, class DX>
  [[nodiscard]] RowMatrix<Scalar> forward(const ParamVector<Scalar>& theta,
                                          const Eigen::MatrixBase<DX>& x) const {
    detail::check_embedding_call("baypr::meta::Linear::forward", parameter_count(), in_, theta, x);
    const auto W = weights(theta);
    RowMatrix<Scalar> z = x.derived().template cast<Scalar>() * W.transpose();
    z.rowwise() += bias(theta).transpose();
    return z;
  }

  template <class Scalar, class DX, class DG>
  [[nodiscard]] ParamVector<Scalar> vjp(const ParamVector<Scalar>& theta,
                                        const Eigen::MatrixBase<DX>& x,
                                        const Eigen::MatrixBase<DG>& dz) const {
    constexpr const char* fn = "baypr::meta::Linear::vjp";
    detail::check_embedding_call(fn, parameter_count(), in_, theta, x);
    detail::check_output_gradient<Scalar>(fn, x.rows(), out_, dz);
    ParamVector<Scalar> g(parameter_count());
    Eigen::Map<RowMatrix<Scalar>> dW(g.data(), out_, in_);
    dW.noalias() =
        dz.derived().template cast<Scalar>().transpose() * x.derived().template cast<Scalar>();
    g.tail(out_) = dz.derived().template cast<Scalar>().colwise().sum().transpose();
    return g;
  }

  // The tape API (see the header comment). Linear in theta, so the vjp's tangent is the vjp of
  // dZ_dot.
  static constexpr bool rows_independent = true;
  struct Tape {
    Eigen::MatrixXd z, z_dot;
    Eigen::Index rows = -1;
  };

  const Eigen::MatrixXd& forward_with_tape(const Eigen::VectorXd& theta, const Eigen::MatrixXd& x,
                                           Tape& tape) const {
    detail::check_embedding_call("baypr::meta::Linear::forward_with_tape", parameter_count(), in_,
                                 theta, x);
    tape.z.resize(x.rows(), out_);
    tape.z.noalias() = x * weights(theta).transpose();
    tape.z.rowwise() += bias(theta).transpose();
    tape.rows = x.rows();
    return tape.z;
  }

  void vjp_from_tape(const Eigen::VectorXd& theta, const Eigen::MatrixXd& x,
                     const Eigen::MatrixXd& dz, Tape& tape, Eigen::VectorXd& g) const {
    constexpr const char* fn = "baypr::meta::Linear::vjp_from_tape";
    detail::check_tape_call(fn, parameter_count(), in_, tape.rows, theta, x);
    detail::check_tape_dz(fn, "d_embeddings", x.rows(), out_, dz);
    g.resize(parameter_count());
    Eigen::Map<Eigen::MatrixXd> dW(g.data(), out_, in_);
    dW.noalias() = dz.transpose() * x;
    g.tail(out_) = dz.colwise().sum().transpose();
  }

  const Eigen::MatrixXd& jvp_from_tape(const Eigen::VectorXd& theta, const Eigen::VectorXd& v,
                                       const Eigen::MatrixXd& x, Tape& tape) const {
    constexpr const char* fn = "baypr::meta::Linear::jvp_from_tape";
    detail::check_tape_call(fn, parameter_count(), in_, tape.rows, theta, x);
    baypr::detail::check_size(fn, "direction", "size", v.size(), parameter_count());
    tape.z_dot.resize(x.rows(), out_);
    tape.z_dot.noalias() = x * weights(v).transpose();
    tape.z_dot.rowwise() += bias(v).transpose();
    return tape.z_dot;
  }

  void vjp_tangent_from_tape(const Eigen::VectorXd& theta, const Eigen::VectorXd& v,
                             const Eigen::MatrixXd& x, const Eigen::MatrixXd& dz,
                             const Eigen::MatrixXd& dz_dot, Tape& tape,
                             Eigen::VectorXd& g_dot) const {
    constexpr const char* fn = "baypr::meta::Linear::vjp_tangent_from_tape";
    baypr::detail::check_size(fn, "direction", "size", v.size(), parameter_count());
    detail::check_tape_dz(fn, "d_embeddings", x.rows(), out_, dz);
    vjp_from_tape(theta, x, dz_dot, tape, g_dot);
  }

 private:
  template <class Scalar>
  Eigen::Map<const RowMatrix<Scalar>> weights(const ParamVector<Scalar>& theta) const {
    return Eigen::Map<const RowMatrix<Scalar>>(theta.data(), out_, in_);
  }
  template <class Scalar>
  Eigen::VectorBlock<const ParamVector<Scalar>> bias(const ParamVector<Scalar>& theta) const {
    return theta.tail(out_);
  }

  Eigen::Index in_, out_;
};

static_assert(TwiceDifferentiableEmbedding<Linear>);
static_assert(TangentTapedEmbedding<Linear> && RowIndependentEmbedding<Linear>);

}  // namespace baypr::meta
