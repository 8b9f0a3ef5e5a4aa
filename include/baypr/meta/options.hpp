// baypr/meta/options.hpp: the value types every meta/ entry point shares.
//
//   MetaOptions { adapt; anomaly; outer; order }   the one options struct of meta/ (adapt,
//                                                   meta_step, scores, MetaStepper, ...)
//   AdaptOptions        the inner loop: SGD steps, step size, posterior path
//   VagueAnomalyModel   p_a, the anomaly density of BayPrAnoMeta's score
//   OuterOptions        the outer objective (discriminative by default), its calibration, SupCon
//   MetaGradient        automatic, first or exact second order
//   Adaptation          what every method's adapt returns
//   LossAndGradient, OuterLossAndGradient
//
// The methods themselves (BayPrAnoMeta in meta/adapt.hpp, ProtoMaml and Maml in
// meta/baselines.hpp) are policies of one set of entry points; see meta/adapt.hpp.
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <optional>
#include <vector>

#include "baypr/core/traits.hpp"
#include "baypr/meta/embedding.hpp"
#include "baypr/stats/niw.hpp"
#include "baypr/stats/student_t.hpp"

namespace baypr::meta {

// Inner-loop SGD (authors: one step of 5e-4). `path` is the posterior path of the inner and outer
// losses (see stats/niw.hpp).
struct AdaptOptions {
  int inner_steps = 1;
  double inner_step_size = 5e-4;
  Path path = Path::automatic;
};

// Isotropic Student-t p_a(z) = t(z | location * 1, scale * I, dof): the anomaly model (its density:
// baypr::IsotropicStudentT, shared with BayesianScorer).
struct VagueAnomalyModel {
  double location = 0.0;
  double scale = 100.0;
  double dof = 2.0;

  // log p_a of each row of Z (m x d) -> m values; any Scalar (double or duals).
  template <class Derived>
  [[nodiscard]] Eigen::Matrix<typename Derived::Scalar, Eigen::Dynamic, 1> log_pdf(
      const Eigen::MatrixBase<Derived>& Z) const {
    using Scalar = typename Derived::Scalar;
    const IsotropicStudentT t(static_cast<double>(Z.cols()), dof, scale);
    Eigen::Matrix<Scalar, Eigen::Dynamic, 1> out(Z.rows());
    for (Eigen::Index j = 0; j < Z.rows(); ++j) {
      out(j) = t.log_pdf(Scalar((Z.row(j).array() - Scalar(location)).square().sum()));
    }
    return out;
  }

  // d log p_a / dz for each row of Z (m x d): -((v + d) / (s v + |z - a|^2)) (z - a).
  template <class Derived>
  [[nodiscard]] RowMatrix<typename Derived::Scalar> log_pdf_gradient(
      const Eigen::MatrixBase<Derived>& Z) const {
    using Scalar = typename Derived::Scalar;
    const double d = static_cast<double>(Z.cols());
    RowMatrix<Scalar> g = Z.derived();
    g.array() -= Scalar(location);
    for (Eigen::Index j = 0; j < Z.rows(); ++j) {
      const Scalar r2 = g.row(j).squaredNorm();
      g.row(j) *= Scalar(-(dof + d)) / (Scalar(scale * dof) + r2);
    }
    return g;
  }
};

// The outer (meta-training) objective on the queries, all three on the same score
// s_j = log p_a(q_j) - log t(q_j | Z) (higher = more anomalous), and its calibration
// a_j = alpha s_j + beta, alpha = exp(rho), m_0 / m_1 the numbers of normal / anomalous queries:
//   discriminative  sum_j w_j [softplus(a_j) - y_j a_j] + l2 (rho^2 + beta^2),
//                   w_j = 1 / (2 m_{y_j})
//                   (class-balanced logistic loss; with alpha = 1 and beta the log prior odds it is
//                   -log p(y | q) under the mixture {posterior predictive, p_a}: Proto-MAML's class
//                   softmax made Bayesian. All scores equal is its worst value, so shrinking the
//                   embedding is no optimum. The default.)
//   ranking         (1 / (m_0 m_1)) sum_{y_i = 0, y_k = 1} softplus(alpha (s_i - s_k)) + l2 rho^2
//                   (a smooth AUROC surrogate; beta does not enter)
//   generative      -(1/m) sum_j [(1 - y_j) log t(q_j | Z) + y_j log p_a(q_j)]
//                   (the paper's loss, kept for reproduction: it has no Jacobian term, so shrinking
//                   every embedding raises every density and the embedding collapses;
//                   docs/design.md)
enum class Objective { discriminative, ranking, generative };

// The score's calibration (rho, beta): meta-parameters shared by all tasks, not adapted in the
// inner loop; sigma(exp(rho) s + beta) is the probability that a query is anomalous.
struct Calibration {
  double rho = 0.0;
  double beta = 0.0;

  [[nodiscard]] double alpha() const { return std::exp(rho); }
};

// The outer loss: the objective, its calibration and L2 weight, and an optional supervised
// contrastive term (SupCon on L2-normalised query embeddings; 0 = off; the method's federated
// setting uses weight 0.1, tau 0.07).
struct OuterOptions {
  Objective objective = Objective::discriminative;
  Calibration calibration;
  double calibration_l2 = 1e-3;
  double supcon_weight = 0.0;
  double supcon_temperature = 0.07;
};

// The order of a meta-gradient. automatic: exact second order where the embedding is a
// TwiceDifferentiableEmbedding, first order otherwise (an embedding that works in double only).
enum class MetaGradient { automatic, first_order, second_order };

struct LossAndGradient {
  double value = 0.0;
  Eigen::VectorXd gradient;
};

// The outer loss at theta': its gradient with respect to theta' and to the calibration (rho, beta).
struct OuterLossAndGradient : LossAndGradient {
  Eigen::Vector2d calibration_gradient = Eigen::Vector2d::Zero();
  Eigen::VectorXd anomaly_weights;  // d L_out / d log p_a(q_j)
};

// What adapt() returns for every method: the adapted parameters, the support embedded with them,
// the inner loss along the way, and (BayPrAnoMeta only) the posterior of those embeddings.
struct Adaptation {
  Eigen::VectorXd params;                         // theta' (Maml: [theta'; w'; b'])
  Eigen::MatrixXd support;                        // f_theta'(support inputs), n x d
  std::vector<double> inner_losses;               // L_in(theta_0), ..., L_in(theta_T): T + 1 values
  std::optional<NiwPosterior<double>> posterior;  // BayPrAnoMeta: posterior of `support`
};

// Everything a meta/ entry point needs besides (embedding, theta, episode or support, prior): one
// struct, the same for every method. The defaults are the configuration that wins on held-out
// classes (docs/design.md): one inner step of 5e-4, the authors' vague anomaly model, the
// discriminative objective, exact second order where the embedding allows it. Methods that have
// no anomaly model or calibrated outer loss (ProtoMaml, Maml) use `adapt` and `order` only.
struct MetaOptions {
  AdaptOptions adapt;
  VagueAnomalyModel anomaly;
  OuterOptions outer;
  MetaGradient order = MetaGradient::automatic;
};

}  // namespace baypr::meta
