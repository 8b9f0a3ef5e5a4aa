// Tests of include/baypr/meta/adapt.hpp and baselines.hpp: inner losses, adaptation, outer losses
// and first/second-order meta-gradients of every method (BayPrAnoMeta, ProtoMaml, Maml) through the
// one set of entry points, each checked against central finite differences of the full function
// theta -> L_out(adapt(theta)); hand-derived values; a short training run; bad input.
#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <concepts>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "baypr/meta/adapt.hpp"
#include "baypr/meta/baselines.hpp"
#include "baypr/meta/conv.hpp"
#include "baypr/meta/mlp.hpp"
#include "support/catch.hpp"
#include "support/finite_differences.hpp"
#include "support/messages.hpp"

namespace {

using baypr::NiwPrior;
using baypr::Path;
using baypr::meta::Adaptation;
using baypr::meta::AdaptOptions;
using baypr::meta::BayPrAnoMeta;
using baypr::meta::HvpScalar;
using baypr::meta::Linear;
using baypr::meta::Maml;
using baypr::meta::MetaEpisode;
using baypr::meta::MetaGradient;
using baypr::meta::MetaOptions;
using baypr::meta::OuterOptions;
using baypr::meta::ParamVector;
using baypr::meta::ProtoMaml;
using baypr::meta::RowMatrix;
using baypr::meta::VagueAnomalyModel;
using Mat = Eigen::MatrixXd;
using Vec = Eigen::VectorXd;
using Rng = std::mt19937_64;
using baypr::test::central_difference;
using baypr::test::normal_matrix;
using baypr::test::relative_error;

// A nonlinear embedding for the tests: z = tanh(W x + b), templated on the scalar like Linear.
class TanhLinear {
 public:
  TanhLinear(Eigen::Index in, Eigen::Index out) : linear_(in, out) {}
  [[nodiscard]] Eigen::Index input_dim() const { return linear_.input_dim(); }
  [[nodiscard]] Eigen::Index output_dim() const { return linear_.output_dim(); }
  [[nodiscard]] Eigen::Index parameter_count() const { return linear_.parameter_count(); }

  template <class Scalar, class DX>
  [[nodiscard]] RowMatrix<Scalar> forward(const ParamVector<Scalar>& theta,
                                          const Eigen::MatrixBase<DX>& x) const {
    using std::tanh;
    RowMatrix<Scalar> z = linear_.forward(theta, x);
    return z.unaryExpr([](const Scalar& a) { return Scalar(tanh(a)); });
  }

  template <class Scalar, class DX, class DG>
  [[nodiscard]] ParamVector<Scalar> vjp(const ParamVector<Scalar>& theta,
                                        const Eigen::MatrixBase<DX>& x,
                                        const Eigen::MatrixBase<DG>& dz) const {
    const RowMatrix<Scalar> z = forward(theta, x);
    const RowMatrix<Scalar> g = dz.derived().template cast<Scalar>();
    const RowMatrix<Scalar> pre =
        g.cwiseProduct(RowMatrix<Scalar>((Scalar(1) - z.array().square()).matrix()));
    return linear_.vjp(theta, x, pre);
  }

 private:
  Linear linear_;
};
static_assert(baypr::meta::TwiceDifferentiableEmbedding<TanhLinear>);

// An embedding that works in double only: first-order meta-gradients only.
class DoubleOnlyLinear {
 public:
  DoubleOnlyLinear(Eigen::Index in, Eigen::Index out) : linear_(in, out) {}
  [[nodiscard]] Eigen::Index input_dim() const { return linear_.input_dim(); }
  [[nodiscard]] Eigen::Index output_dim() const { return linear_.output_dim(); }
  [[nodiscard]] Eigen::Index parameter_count() const { return linear_.parameter_count(); }
  // The scalar is constrained to double explicitly: a plain `const Eigen::VectorXd&` parameter
  // would also accept dual vectors through Eigen's implicit converting constructor, so the concept
  // check would (wrongly) see a twice-differentiable embedding.
  template <class S>
  requires std::same_as<S, double>
  [[nodiscard]] Mat forward(const ParamVector<S>& theta, const Mat& x) const {
    return linear_.forward(theta, x);
  }
  template <class S>
  requires std::same_as<S, double>
  [[nodiscard]] Vec vjp(const ParamVector<S>& theta, const Mat& x, const Mat& dz) const {
    return linear_.vjp(theta, x, dz);
  }

 private:
  Linear linear_;
};
static_assert(baypr::meta::DifferentiableEmbedding<DoubleOnlyLinear>);
static_assert(!baypr::meta::TwiceDifferentiableEmbedding<DoubleOnlyLinear>);

// Normal inputs lie near the span of `basis` (input_dim x k); anomalous ones are pushed off it.
MetaEpisode make_episode(const Mat& basis, Eigen::Index support, Eigen::Index normal_queries,
                         Eigen::Index anomalous_queries, Rng& rng) {
  const Eigen::Index p = basis.rows(), k = basis.cols();
  auto normal = [&](Eigen::Index n) {
    return Mat(normal_matrix(n, k, rng) * basis.transpose() + 0.05 * normal_matrix(n, p, rng));
  };
  MetaEpisode e;
  e.support = normal(support);
  e.queries.resize(normal_queries + anomalous_queries, p);
  e.queries.topRows(normal_queries) = normal(normal_queries);
  Mat off = normal_matrix(anomalous_queries, p, rng);
  off -= off * basis *
         Mat((basis.transpose() * basis).llt().solve(basis.transpose()));  // orthogonal to the span
  off = 1.5 * off.rowwise().normalized();
  e.queries.bottomRows(anomalous_queries) = normal(anomalous_queries) + off;
  e.labels.setOnes(normal_queries + anomalous_queries);
  e.labels.head(normal_queries).setZero();
  return e;
}

// The one options struct from its parts (no partial aggregate initialisation).
MetaOptions meta_options(const AdaptOptions& adapt, const VagueAnomalyModel& anomaly = {},
                         const OuterOptions& outer = {},
                         MetaGradient order = MetaGradient::automatic) {
  MetaOptions o;
  o.adapt = adapt;
  o.anomaly = anomaly;
  o.outer = outer;
  o.order = order;
  return o;
}

// The defaults with another posterior path.
MetaOptions with_path(Path path) {
  MetaOptions o;
  o.adapt.path = path;
  return o;
}

// |a - b| <= tol max(|a|, |b|), printing both on failure.
void check_near(double a, double b, double tol) {
  INFO(a << " vs " << b << " (relative tolerance " << tol << ")");
  CHECK(std::abs(a - b) <= tol * std::max(std::abs(a), std::abs(b)));
}

void expect_below(const std::string& what, double error, double tol) {
  INFO(what << ": relative error " << error << " (tolerance " << tol << ")");
  CHECK(error < tol);
}

constexpr double fd_step = 1e-4;

OuterOptions outer_options(baypr::meta::Objective objective, double supcon_weight = 0.0,
                           double supcon_temperature = 0.07) {
  OuterOptions o;
  o.objective = objective;
  o.supcon_weight = supcon_weight;
  o.supcon_temperature = supcon_temperature;
  return o;
}

const OuterOptions generative = outer_options(baypr::meta::Objective::generative);

}  // namespace

TEST_CASE("vague anomaly model: hand-derived values and finite-difference gradient", "[meta]") {
  VagueAnomalyModel a;  // location 0, scale 100, dof 2
  // d = 2, v = 2: lgamma(2) - lgamma(1) - log(2 pi 100) - 2 log1p(r2 / 200).
  Mat z(2, 2);
  z << 0.0, 0.0, 3.0, -4.0;
  const Vec lp = a.log_pdf(z);
  check_near(lp(0), -std::log(200.0 * std::numbers::pi), 1e-14);
  check_near(lp(1), -std::log(200.0 * std::numbers::pi) - 2.0 * std::log1p(25.0 / 200.0), 1e-14);
  VagueAnomalyModel b{0.5, 3.0, 4.5};
  Rng rng(7);
  const Mat q = normal_matrix(1, 3, rng);
  const Vec g = b.log_pdf_gradient(q).row(0).transpose();
  const Vec fd = central_difference([&](const Vec& x) { return b.log_pdf(Mat(x.transpose()))(0); },
                                    Vec(q.row(0).transpose()), 1e-4);
  expect_below("anomaly gradient", relative_error(g, fd), 1e-8);
  // The same in HvpScalar: the value part agrees.
  RowMatrix<HvpScalar> qd = q.cast<HvpScalar>();
  check_near(b.log_pdf(qd)(0).value(), b.log_pdf(q)(0), 1e-15);
}

TEST_CASE("unrolled_meta_gradient: exact on a quadratic inner loss", "[meta]") {
  // L_in = theta^T A theta / 2 (H = A), L_out = b . theta': theta_T = (I - alpha A)^T theta, so the
  // meta-gradient is (I - alpha A)^T b in second order and b in first order.
  Mat A(3, 3);
  A << 2, 0.5, 0, 0.5, 1, -0.3, 0, -0.3, 3;
  const Vec b = Vec::LinSpaced(3, 1.0, -2.0), theta = Vec::LinSpaced(3, 0.3, 0.9);
  const double alpha = 0.1;
  auto inner = [&](const Vec& t) {
    return baypr::meta::LossAndGradient{0.5 * t.dot(A * t), A * t};
  };
  auto hvp = [&](const Vec&, const Vec& v) -> Vec { return A * v; };
  auto outer = [&](const Vec& t) { return baypr::meta::LossAndGradient{b.dot(t), b}; };
  const Mat J = Mat::Identity(3, 3) - alpha * A;
  const Mat J3 = J * J * J;
  const auto so = baypr::meta::unrolled_meta_gradient(inner, hvp, outer, theta, 3, alpha,
                                                      MetaGradient::second_order);
  const auto fo = baypr::meta::unrolled_meta_gradient(inner, hvp, outer, theta, 3, alpha,
                                                      MetaGradient::first_order);
  CHECK((so.gradient - J3.transpose() * b).norm() < 1e-14);
  CHECK(fo.gradient == b);
  CHECK((so.adapted - J3 * theta).norm() < 1e-14);
  check_near(so.inner_loss, 0.5 * theta.dot(A * theta), 1e-15);
  check_near(so.outer_loss, b.dot(J3 * theta), 1e-14);
  CHECK(baypr::test::contains(
      baypr::test::message_of([&] {
        (void)baypr::meta::unrolled_meta_gradient(inner, hvp, outer, theta, -1, alpha,
                                                  MetaGradient::first_order);
      }),
      "baypr::meta::unrolled_meta_gradient: argument 'steps' must be >= 0, got -1"));
  // The generic unrolling needs a concrete order: automatic is resolved by the entry points.
  CHECK(baypr::test::contains(
      baypr::test::message_of([&] {
        (void)baypr::meta::unrolled_meta_gradient(inner, hvp, outer, theta, 3, alpha,
                                                  MetaGradient::automatic);
      }),
      "baypr::meta::unrolled_meta_gradient: argument 'order' must be first_order or "
      "second_order"));
}

TEST_CASE("inner loss: value and gradient against finite differences", "[meta]") {
  Rng rng(11);
  const Mat basis = normal_matrix(6, 2, rng);
  const MetaEpisode ep = make_episode(basis, 4, 3, 3, rng);
  const auto prior = NiwPrior<double>::method_default(3);

  auto check = [&](const auto& emb, const std::string& name, Path path) {
    const Vec theta = Linear(6, 3).initial_parameters(3);
    const auto r =
        baypr::meta::inner_loss_and_gradient(emb, theta, ep.support, prior, with_path(path));
    // Value: -mean log t(z_i | posterior(Z)) straight from the stats layer.
    const Mat Z = emb.forward(theta, ep.support);
    const double want = -prior.posterior(Z, path).predictive().log_pdf(Z).mean();
    check_near(r.value, want, 1e-13);
    const Vec fd = central_difference(
        [&](const Vec& t) {
          return baypr::meta::inner_loss_and_gradient(emb, t, ep.support, prior, with_path(path))
              .value;
        },
        theta, fd_step);
    expect_below(name + " inner gradient", relative_error(r.gradient, fd), 1e-8);
  };
  check(Linear(6, 3), "Linear", Path::automatic);
  check(TanhLinear(6, 3), "TanhLinear", Path::automatic);
  check(DoubleOnlyLinear(6, 3), "DoubleOnlyLinear", Path::dense);
}

TEST_CASE("adapt: zero steps is the identity, one step is exactly one SGD step", "[meta]") {
  Rng rng(12);
  const Mat basis = normal_matrix(6, 2, rng);
  const MetaEpisode ep = make_episode(basis, 5, 3, 3, rng);
  const Linear emb(6, 3);
  const auto prior = NiwPrior<double>::method_default(3);
  const Vec theta = emb.initial_parameters(5);

  const Adaptation a0 = baypr::meta::adapt(emb, theta, ep.support, prior,
                                           meta_options(AdaptOptions{0, 0.1, Path::automatic}));
  CHECK(a0.params == theta);
  // The adapted support embeddings and, for BayPrAnoMeta, their posterior.
  CHECK(a0.support == emb.forward(theta, ep.support));
  REQUIRE(a0.posterior.has_value());
  const auto post = prior.posterior(emb.forward(theta, ep.support));
  CHECK(a0.posterior->mean() == post.mean());
  CHECK(a0.posterior->count() == 5);
  REQUIRE(a0.inner_losses.size() == 1);
  const double l0 = baypr::meta::inner_loss_and_gradient(emb, theta, ep.support, prior).value;
  check_near(a0.inner_losses[0], l0, 1e-13);

  const double alpha = 0.05;
  const Adaptation a1 = baypr::meta::adapt(emb, theta, ep.support, prior,
                                           meta_options(AdaptOptions{1, alpha, Path::automatic}));
  const Vec g = baypr::meta::inner_loss_and_gradient(emb, theta, ep.support, prior).gradient;
  CHECK(a1.params == Vec(theta - alpha * g));
  CHECK(a1.support == emb.forward(a1.params, ep.support));
  REQUIRE(a1.posterior.has_value());
  const auto post1 = prior.posterior(emb.forward(a1.params, ep.support));
  CHECK(a1.posterior->mean() == post1.mean());
  CHECK(a1.posterior->count() == 5);
  REQUIRE(a1.inner_losses.size() == 2);
  CHECK(a1.inner_losses[0] == l0);
  CHECK(a1.inner_losses[1] < l0);  // a small step down the gradient lowers the inner loss
  // The last inner loss is L_in at theta'.
  check_near(a1.inner_losses[1],
             baypr::meta::inner_loss_and_gradient(emb, a1.params, ep.support, prior).value, 1e-13);

  // Default options are the authors': one step of 5e-4.
  const AdaptOptions defaults;
  CHECK(defaults.inner_steps == 1);
  CHECK(defaults.inner_step_size == 5e-4);
  // The one options struct: the authors' anomaly model, the discriminative objective and the
  // best meta-gradient order the embedding allows.
  const MetaOptions meta_defaults;
  CHECK(meta_defaults.adapt.inner_steps == 1);
  CHECK(meta_defaults.adapt.inner_step_size == 5e-4);
  CHECK(meta_defaults.adapt.path == Path::automatic);
  CHECK(meta_defaults.anomaly.location == 0.0);
  CHECK(meta_defaults.anomaly.scale == 100.0);
  CHECK(meta_defaults.anomaly.dof == 2.0);
  CHECK(meta_defaults.outer.objective == baypr::meta::Objective::discriminative);
  CHECK(meta_defaults.order == MetaGradient::automatic);
  // adapt's default options are those defaults.
  const Adaptation ad = baypr::meta::adapt(emb, theta, ep.support, prior);
  const Adaptation ae = baypr::meta::adapt(emb, theta, ep.support, prior, meta_defaults);
  CHECK(ad.params == ae.params);
  // ... and its default method is BayPrAnoMeta.
  const Adaptation ab = baypr::meta::adapt<BayPrAnoMeta>(emb, theta, ep.support, prior);
  CHECK(ab.params == ad.params);
  CHECK(ab.inner_losses == ad.inner_losses);
  CHECK(ad.params ==
        Vec(theta -
            5e-4 * baypr::meta::inner_loss_and_gradient(emb, theta, ep.support, prior).gradient));
}

TEST_CASE(
    "outer loss (generative): gradient through support and queries against finite differences",
    "[meta]") {
  Rng rng(13);
  const Mat basis = normal_matrix(6, 2, rng);
  const MetaEpisode ep = make_episode(basis, 4, 4, 2, rng);
  const auto prior = NiwPrior<double>::method_default(3);
  const VagueAnomalyModel anomaly{0.1, 20.0, 3.0};
  const TanhLinear emb(6, 3);
  const Vec theta = Linear(6, 3).initial_parameters(8);
  const MetaOptions o = meta_options(AdaptOptions{}, anomaly, generative);
  const auto r = baypr::meta::outer_loss_and_gradient(emb, theta, ep, prior, o);
  // Value from the definition.
  const Mat Z = emb.forward(theta, ep.support), Q = emb.forward(theta, ep.queries);
  const Vec ln = prior.posterior(Z).predictive().log_pdf(Q), la = anomaly.log_pdf(Q);
  double want = 0;
  for (Eigen::Index j = 0; j < 6; ++j) want -= (ep.labels(j) == 0 ? ln : la)(j) / 6.0;
  check_near(r.value, want, 1e-13);
  const Vec fd = central_difference(
      [&](const Vec& t) {
        return baypr::meta::outer_loss_and_gradient(emb, t, ep, prior, o).value;
      },
      theta, fd_step);
  expect_below("outer gradient", relative_error(r.gradient, fd), 1e-8);
  // Scores without adaptation (zero inner steps): log p_a - log p_n, from the same quantities.
  const MetaOptions no_adaptation = meta_options(AdaptOptions{0, 5e-4, Path::automatic}, anomaly);
  const Vec s = baypr::meta::scores(emb, theta, ep.support, ep.queries, prior, no_adaptation);
  CHECK(((s - (la - ln)).cwiseAbs().maxCoeff() < 1e-12));
  // Scoring an adaptation is the same as adapting, then scoring, for zero and for two steps.
  const Adaptation a0 = baypr::meta::adapt(emb, theta, ep.support, prior, no_adaptation);
  CHECK(baypr::meta::scores(emb, a0, ep.queries, no_adaptation) == s);
  const MetaOptions two_steps = meta_options(AdaptOptions{2, 0.2, Path::automatic}, anomaly);
  const Adaptation a2 = baypr::meta::adapt(emb, theta, ep.support, prior, two_steps);
  const Vec s2 = baypr::meta::scores(emb, a2, ep.queries, two_steps);
  CHECK(s2 == baypr::meta::scores(emb, theta, ep.support, ep.queries, prior, two_steps));
  // ... and from its definition at theta': log p_a(f(q)) - log t(f(q) | f(support)).
  const Mat Q2 = emb.forward(a2.params, ep.queries);
  const Vec want2 = anomaly.log_pdf(Q2) -
                    prior.posterior(emb.forward(a2.params, ep.support)).predictive().log_pdf(Q2);
  CHECK(((s2 - want2).cwiseAbs().maxCoeff() < 1e-12));
  CHECK(((s2 - s).cwiseAbs().maxCoeff() > 1e-6));  // the adaptation moved the scores
}

TEST_CASE("meta-gradient: second order matches finite differences of theta -> L_out(adapt(theta))",
          "[meta]") {
  Rng rng(14);
  const Mat basis = normal_matrix(6, 2, rng);
  const auto prior3 = NiwPrior<double>::method_default(3);
  const VagueAnomalyModel anomaly;

  auto full = [](const auto& emb, const MetaEpisode& ep, const NiwPrior<double>& prior,
                 const AdaptOptions& o, const OuterOptions& outer) {
    return [&emb, &ep, &prior, o, outer](const Vec& t) {
      const MetaOptions mo = meta_options(o, VagueAnomalyModel{}, outer);
      const auto a = baypr::meta::adapt(emb, t, ep.support, prior, mo);
      return baypr::meta::outer_loss_and_gradient(emb, a.params, ep, prior, mo).value;
    };
  };

  auto check = [&](const auto& emb, const MetaEpisode& ep, const NiwPrior<double>& prior, int steps,
                   double alpha, const std::string& name, const OuterOptions& outer = {},
                   Path path = Path::automatic) {
    const Vec theta = Linear(emb.input_dim(), emb.output_dim()).initial_parameters(21);
    const AdaptOptions o{steps, alpha, path};
    const MetaOptions mo = meta_options(o, anomaly, outer);
    const auto so = baypr::meta::meta_step(
        emb, theta, ep, prior, meta_options(o, anomaly, outer, MetaGradient::second_order));
    const auto fo = baypr::meta::meta_step(
        emb, theta, ep, prior, meta_options(o, anomaly, outer, MetaGradient::first_order));
    const Vec fd = central_difference(full(emb, ep, prior, o, outer), theta, fd_step);
    const double e2 = relative_error(so.gradient, fd), e1 = relative_error(fo.gradient, fd);
    INFO(name << " steps " << steps << " alpha " << alpha << ": second-order error " << e2
              << ", first-order error " << e1);
    expect_below(name + " second order", e2, 1e-8);
    // First order is the gradient of L_out at theta', by definition; and it is not the exact one.
    const auto at = baypr::meta::outer_loss_and_gradient(emb, so.adapted, ep, prior, mo);
    CHECK(fo.gradient == at.gradient);
    CHECK(fo.adapted == so.adapted);
    CHECK(fo.outer_loss == so.outer_loss);
    CHECK(e1 > 1e-3);
    const auto a = baypr::meta::adapt(emb, theta, ep.support, prior, mo);
    CHECK(so.adapted == a.params);
    CHECK(so.inner_loss == a.inner_losses[0]);
    // The embedding is twice differentiable: the automatic order (the default) is second order.
    const auto au = baypr::meta::meta_step(emb, theta, ep, prior, mo);
    CHECK(mo.order == MetaGradient::automatic);
    CHECK(au.gradient == so.gradient);
    CHECK(au.adapted == so.adapted);
    CHECK(au.outer_loss == so.outer_loss);
    return e2;
  };

  const MetaEpisode ep = make_episode(basis, 4, 4, 2, rng);
  SECTION("Linear, 1 and 3 steps") {
    check(Linear(6, 3), ep, prior3, 1, 0.1, "Linear");
    check(Linear(6, 3), ep, prior3, 3, 0.1, "Linear");
  }
  SECTION("tanh embedding, 1 and 3 steps") {
    check(TanhLinear(6, 3), ep, prior3, 1, 0.2, "TanhLinear");
    check(TanhLinear(6, 3), ep, prior3, 3, 0.2, "TanhLinear");
  }
  SECTION("low-rank posterior path (d = 4, K = 2)") {
    const MetaEpisode small = make_episode(basis, 2, 3, 2, rng);
    const auto prior4 = NiwPrior<double>::method_default(4);
    REQUIRE(
        prior4.posterior(Linear(6, 4).forward(Linear(6, 4).initial_parameters(21), small.support))
            .is_low_rank());
    check(Linear(6, 4), small, prior4, 2, 0.1, "Linear low-rank");
  }
  SECTION("with the SupCon term") {
    check(TanhLinear(6, 3), ep, prior3, 2, 0.2, "TanhLinear+SupCon",
          outer_options(baypr::meta::Objective::discriminative, 0.1, 0.07));
  }
  SECTION("zero steps: both orders are the plain outer gradient") {
    const Linear emb(6, 3);
    const Vec theta = emb.initial_parameters(2);
    const AdaptOptions o{0, 0.1, Path::automatic};
    const auto so = baypr::meta::meta_step(
        emb, theta, ep, prior3, meta_options(o, anomaly, {}, MetaGradient::second_order));
    const auto fo = baypr::meta::meta_step(emb, theta, ep, prior3,
                                           meta_options(o, anomaly, {}, MetaGradient::first_order));
    const auto plain =
        baypr::meta::outer_loss_and_gradient(emb, theta, ep, prior3, meta_options(o, anomaly));
    CHECK(so.gradient == plain.gradient);
    CHECK(fo.gradient == plain.gradient);
    CHECK(so.adapted == theta);
  }
  SECTION("double-only embedding: first order works, second order throws") {
    const DoubleOnlyLinear emb(6, 3);
    const Vec theta = Linear(6, 3).initial_parameters(2);
    const AdaptOptions o{2, 0.1, Path::automatic};
    const auto fo = baypr::meta::meta_step(emb, theta, ep, prior3,
                                           meta_options(o, anomaly, {}, MetaGradient::first_order));
    const auto ref = baypr::meta::meta_step(
        Linear(6, 3), theta, ep, prior3, meta_options(o, anomaly, {}, MetaGradient::first_order));
    CHECK((fo.gradient - ref.gradient).norm() <= 1e-14 * ref.gradient.norm());
    // The default order (automatic) is the best the embedding allows: first order here, second
    // order for Linear.
    CHECK(baypr::meta::meta_step(emb, theta, ep, prior3, meta_options(o, anomaly)).gradient ==
          fo.gradient);
    const auto ref2 = baypr::meta::meta_step(
        Linear(6, 3), theta, ep, prior3, meta_options(o, anomaly, {}, MetaGradient::second_order));
    CHECK(baypr::meta::meta_step(Linear(6, 3), theta, ep, prior3, meta_options(o, anomaly))
              .gradient == ref2.gradient);
    CHECK(ref2.gradient != ref.gradient);
    const std::string msg = baypr::test::message_of([&] {
      (void)baypr::meta::meta_step(emb, theta, ep, prior3,
                                   meta_options(o, anomaly, {}, MetaGradient::second_order));
    });
    CHECK(baypr::test::contains(msg, "baypr::meta::meta_step: argument 'options.order'"));
    CHECK(baypr::test::contains(msg, "TwiceDifferentiableEmbedding"));
  }
}

namespace {

// E with its tape API hidden: meta_step takes the forward/vjp (and dual) path for it.
template <class E>
class Untaped {
 public:
  explicit Untaped(E e) : e_(std::move(e)) {}
  [[nodiscard]] Eigen::Index input_dim() const { return e_.input_dim(); }
  [[nodiscard]] Eigen::Index output_dim() const { return e_.output_dim(); }
  [[nodiscard]] Eigen::Index parameter_count() const { return e_.parameter_count(); }
  template <class Scalar, class DX>
  [[nodiscard]] RowMatrix<Scalar> forward(const ParamVector<Scalar>& theta,
                                          const Eigen::MatrixBase<DX>& x) const {
    return e_.forward(theta, x);
  }
  template <class Scalar, class DX, class DG>
  [[nodiscard]] ParamVector<Scalar> vjp(const ParamVector<Scalar>& theta,
                                        const Eigen::MatrixBase<DX>& x,
                                        const Eigen::MatrixBase<DG>& dz) const {
    return e_.vjp(theta, x, dz);
  }

 private:
  E e_;
};

// The taped path with its tape but without the tangents or the row-independence trait: outer
// loss through two tapes, Hessian-vector products through duals.
template <class E>
class TapedOnly {
 public:
  using Tape = typename E::Tape;
  explicit TapedOnly(E e) : e_(std::move(e)) {}
  [[nodiscard]] Eigen::Index input_dim() const { return e_.input_dim(); }
  [[nodiscard]] Eigen::Index output_dim() const { return e_.output_dim(); }
  [[nodiscard]] Eigen::Index parameter_count() const { return e_.parameter_count(); }
  template <class Scalar, class DX>
  [[nodiscard]] RowMatrix<Scalar> forward(const ParamVector<Scalar>& theta,
                                          const Eigen::MatrixBase<DX>& x) const {
    return e_.forward(theta, x);
  }
  template <class Scalar, class DX, class DG>
  [[nodiscard]] ParamVector<Scalar> vjp(const ParamVector<Scalar>& theta,
                                        const Eigen::MatrixBase<DX>& x,
                                        const Eigen::MatrixBase<DG>& dz) const {
    return e_.vjp(theta, x, dz);
  }
  const Mat& forward_with_tape(const Vec& theta, const Mat& x, Tape& tape) const {
    return e_.forward_with_tape(theta, x, tape);
  }
  void vjp_from_tape(const Vec& theta, const Mat& x, const Mat& dz, Tape& tape, Vec& g) const {
    e_.vjp_from_tape(theta, x, dz, tape, g);
  }

 private:
  E e_;
};

}  // namespace

TEST_CASE("taped fast path: agrees with the forward/vjp path and with finite differences",
          "[meta][tape]") {
  using baypr::meta::Conv;
  using baypr::meta::Mlp;
  static_assert(baypr::meta::TangentTapedEmbedding<Mlp>);
  static_assert(!baypr::meta::TapedEmbedding<Untaped<Mlp>>);
  static_assert(baypr::meta::TapedEmbedding<TapedOnly<Mlp>> &&
                !baypr::meta::TangentTapedEmbedding<TapedOnly<Mlp>> &&
                !baypr::meta::RowIndependentEmbedding<TapedOnly<Mlp>>);
  Rng rng(31);
  const VagueAnomalyModel anomaly;
  const auto prior4 = NiwPrior<double>::method_default(4);
  // Conv: 3 x 4 grey images (12 inputs), two layers, 4 outputs.
  const Conv conv(baypr::meta::ConvOptions{3, 4, {1, 2, 3}, {1, 2}, 4});
  const Mlp mlp({12, 5, 4});
  const MetaEpisode ep = make_episode(normal_matrix(12, 2, rng), 4, 4, 2, rng);
  const MetaEpisode small =
      make_episode(normal_matrix(12, 2, rng), 2, 3, 2, rng);  // K = 2, d = 4: low-rank

  // Seeded parameters, moved off PyTorch's initialisation (beta = 0 could give zero embeddings,
  // which the SupCon term rejects).
  auto params = [&](const auto& emb) {
    return Vec(emb.initial_parameters(5) + 0.1 * normal_matrix(emb.parameter_count(), 1, rng));
  };
  auto agree = [&](const auto& emb, const auto& reference, const Vec& theta, const MetaEpisode& e,
                   const std::string& name) {
    if (&e == &small) REQUIRE(prior4.posterior(Mat(e.support.leftCols(4))).is_low_rank());
    for (const Path path : {Path::automatic, Path::dense}) {
      for (const int steps : {0, 1, 2}) {
        for (const MetaGradient order : {MetaGradient::first_order, MetaGradient::second_order}) {
          const AdaptOptions o{steps, 0.3, path};
          const auto outer = outer_options(steps == 1 ? baypr::meta::Objective::generative
                                                      : baypr::meta::Objective::discriminative,
                                           steps == 2 ? 0.1 : 0.0);
          const MetaOptions mo = meta_options(o, anomaly, outer, order);
          const auto fast = baypr::meta::meta_step(emb, theta, e, prior4, mo);
          const auto slow = baypr::meta::meta_step(reference, theta, e, prior4, mo);
          INFO(name << " path " << static_cast<int>(path) << " steps " << steps << " order "
                    << static_cast<int>(order));
          expect_below("gradient", relative_error(fast.gradient, slow.gradient), 1e-12);
          expect_below("adapted", relative_error(fast.adapted, slow.adapted), 1e-13);
          check_near(fast.outer_loss, slow.outer_loss, 1e-13);
          check_near(fast.inner_loss, slow.inner_loss, 1e-13);
          // The outer loss alone, through the public function, agrees too.
          const auto a = baypr::meta::outer_loss_and_gradient(emb, fast.adapted, e, prior4, mo);
          const auto b =
              baypr::meta::outer_loss_and_gradient(reference, fast.adapted, e, prior4, mo);
          expect_below("outer gradient", relative_error(a.gradient, b.gradient), 1e-12);
        }
      }
    }
  };
  SECTION("Mlp (two layers)") {
    agree(mlp, Untaped<Mlp>(mlp), params(mlp), ep, "Mlp");
    agree(mlp, Untaped<Mlp>(mlp), params(mlp), small, "Mlp low-rank");
    agree(TapedOnly<Mlp>(mlp), Untaped<Mlp>(mlp), params(mlp), ep, "Mlp taped only");
  }
  SECTION("Conv (two layers)") {
    agree(conv, Untaped<Conv>(conv), params(conv), ep, "Conv");
    agree(conv, Untaped<Conv>(conv), params(conv), small, "Conv low-rank");
    agree(TapedOnly<Conv>(conv), Untaped<Conv>(conv), params(conv), ep, "Conv taped only");
  }
  SECTION("Linear") {
    const Linear lin(12, 4);
    agree(lin, Untaped<Linear>(lin), params(lin), ep, "Linear");
  }
  SECTION(
      "second order of the fast path against finite differences of theta -> L_out(adapt(theta))") {
    for (int which = 0; which < 2; ++which) {
      const AdaptOptions o{2, 0.3, Path::automatic};
      auto run = [&](const auto& emb) {
        const Vec theta = emb.initial_parameters(9);
        const MetaOptions mo = meta_options(o, anomaly);
        const auto full = [&](const Vec& t) {
          const auto a = baypr::meta::adapt(emb, t, ep.support, prior4, mo);
          return baypr::meta::outer_loss_and_gradient(emb, a.params, ep, prior4, mo).value;
        };
        const auto so = baypr::meta::meta_step(
            emb, theta, ep, prior4, meta_options(o, anomaly, {}, MetaGradient::second_order));
        const double e2 = relative_error(so.gradient, central_difference(full, theta, fd_step));
        const auto fo = baypr::meta::meta_step(
            emb, theta, ep, prior4, meta_options(o, anomaly, {}, MetaGradient::first_order));
        const double e1 = relative_error(fo.gradient, central_difference(full, theta, fd_step));
        INFO((which == 0 ? "Mlp" : "Conv")
             << ": second-order error " << e2 << ", first-order error " << e1);
        CHECK(e2 < 1e-7);
        CHECK(e1 > 1e-3);  // the second-order term is visible
      };
      if (which == 0) {
        run(mlp);
      } else {
        run(conv);
      }
    }
  }
  SECTION("MetaStepper: the same results as meta_step, call after call, across episode shapes") {
    baypr::meta::MetaStepper<Mlp> stepper(mlp);
    const Vec theta = mlp.initial_parameters(3);
    baypr::meta::MetaStep out;
    for (int round = 0; round < 2; ++round) {
      for (const MetaEpisode* e : {&ep, &small, &ep}) {
        for (const MetaGradient order : {MetaGradient::second_order, MetaGradient::first_order}) {
          const MetaOptions mo =
              meta_options(AdaptOptions{2, 0.3, Path::automatic}, anomaly, {}, order);
          const auto want = baypr::meta::meta_step(mlp, theta, *e, prior4, mo);
          stepper.step(theta, *e, prior4, mo, out);
          CHECK(out.gradient == want.gradient);
          CHECK(out.adapted == want.adapted);
          CHECK(out.outer_loss == want.outer_loss);
          CHECK(out.inner_loss == want.inner_loss);
          CHECK(stepper.step(theta, *e, prior4, mo).gradient == want.gradient);
        }
      }
    }
    // The prior lifted to duals is cached: another prior must not reuse it.
    const NiwPrior<double> other(Vec::Constant(4, 0.3), 0.5, 7.0, 2.0 * Mat::Identity(4, 4));
    for (const NiwPrior<double>* pr : {&other, &prior4, &other}) {
      const MetaOptions mo =
          meta_options(AdaptOptions{1, 0.3, Path::dense}, anomaly, {}, MetaGradient::second_order);
      const auto want = baypr::meta::meta_step(mlp, theta, ep, *pr, mo);
      stepper.step(theta, ep, *pr, mo, out);
      CHECK(out.gradient == want.gradient);
    }
    // A failing step leaves out unchanged and names the stepper.
    const baypr::meta::MetaStep before = out;
    const std::string msg = baypr::test::message_of([&] {
      stepper.step(Vec(theta.head(3)), ep, prior4,
                   meta_options(AdaptOptions{}, anomaly, {}, MetaGradient::first_order), out);
    });
    CHECK(
        baypr::test::contains(msg, "baypr::meta::MetaStepper::step: argument 'theta' has size 3"));
    CHECK(out.gradient == before.gradient);
    CHECK(out.adapted == before.adapted);
  }
}

TEST_CASE("SupCon term: hand-derived value", "[meta]") {
  // Identity embedding on 2-d inputs: queries (1,0), (2,0), (0,3) with labels 0, 0, 1 normalise to
  // u = e1, e1, e2. Anchors 1 and 2 each have one positive: loss = log(1 + exp(-1/tau)).
  Linear emb(2, 2);
  Vec theta(6);
  theta << 1, 0, 0, 1, 0, 0;
  MetaEpisode ep;
  ep.support = Mat::Identity(2, 2);
  ep.queries.resize(3, 2);
  ep.queries << 1, 0, 2, 0, 0, 3;
  ep.labels = Eigen::VectorXi{{0, 0, 1}};
  const auto prior = NiwPrior<double>::method_default(2);
  const double tau = 0.5, w = 0.3;
  const auto with = baypr::meta::outer_loss_and_gradient(
      emb, theta, ep, prior,
      meta_options(AdaptOptions{}, VagueAnomalyModel{},
                   outer_options(baypr::meta::Objective::discriminative, w, tau)));
  const auto without = baypr::meta::outer_loss_and_gradient(emb, theta, ep, prior, MetaOptions{});
  check_near(with.value - without.value, w * std::log1p(std::exp(-1.0 / tau)), 1e-12);
}

namespace {

// adapt<Method> for a baseline: T + 1 inner losses, the first T those of inner_loss_and_gradient
// along the SGD trajectory (recomputed here), the last L_in(theta_T); params = theta_T; support
// the support embedded with theta_T's embedding parameters; no posterior (BayPrAnoMeta only).
template <class Method, class E>
void check_baseline_adaptation(const E& emb, const Vec& theta, const Mat& support,
                               const NiwPrior<double>& prior, const AdaptOptions& o,
                               const std::string& name) {
  INFO(name << " adaptation, steps " << o.inner_steps);
  const MetaOptions mo = meta_options(o);
  const Adaptation a = baypr::meta::adapt<Method>(emb, theta, support, prior, mo);
  REQUIRE(a.inner_losses.size() == static_cast<std::size_t>(o.inner_steps) + 1);
  Vec t = theta;
  for (int k = 0; k < o.inner_steps; ++k) {
    const auto g = baypr::meta::inner_loss_and_gradient<Method>(emb, t, support, prior, mo);
    CHECK(a.inner_losses[static_cast<std::size_t>(k)] == g.value);
    t -= o.inner_step_size * g.gradient;
  }
  CHECK(a.params == t);
  check_near(a.inner_losses.back(),
             baypr::meta::inner_loss_and_gradient<Method>(emb, t, support, prior, mo).value, 1e-13);
  CHECK(a.support == emb.forward(Vec(t.head(emb.parameter_count())), support));
  CHECK_FALSE(a.posterior.has_value());
}

}  // namespace

TEST_CASE("baselines: Proto-MAML and MAML meta-gradients against finite differences", "[meta]") {
  Rng rng(15);
  const Mat basis = normal_matrix(6, 2, rng);
  const MetaEpisode ep = make_episode(basis, 4, 4, 2, rng);
  // The baselines take a prior for the one signature and do not use it: any dimension will do.
  const auto prior = NiwPrior<double>::method_default(3);
  const auto prior7 = NiwPrior<double>::method_default(7);

  SECTION("Proto-MAML") {
    using baypr::meta::adapt;
    using baypr::meta::inner_loss_and_gradient;
    using baypr::meta::meta_step;
    using baypr::meta::outer_loss_and_gradient;
    const TanhLinear emb(6, 3);
    const Vec theta = Linear(6, 3).initial_parameters(4);
    const auto in = inner_loss_and_gradient<ProtoMaml>(emb, theta, ep.support, prior);
    const Mat Z = emb.forward(theta, ep.support);
    check_near(in.value, (Z.rowwise() - Z.colwise().mean()).squaredNorm() / 4.0, 1e-13);
    expect_below(
        "proto inner",
        relative_error(
            in.gradient,
            central_difference(
                [&](const Vec& t) {
                  return inner_loss_and_gradient<ProtoMaml>(emb, t, ep.support, prior).value;
                },
                theta, fd_step)),
        1e-8);
    CHECK(inner_loss_and_gradient<ProtoMaml>(emb, theta, ep.support, prior7).gradient ==
          in.gradient);
    for (int steps : {1, 3}) {
      const AdaptOptions o{steps, 0.3, Path::automatic};
      const MetaOptions second = meta_options(o, {}, {}, MetaGradient::second_order);
      const auto so = meta_step<ProtoMaml>(emb, theta, ep, prior, second);
      const auto fo = meta_step<ProtoMaml>(emb, theta, ep, prior,
                                           meta_options(o, {}, {}, MetaGradient::first_order));
      const Vec fd = central_difference(
          [&](const Vec& t) {
            return outer_loss_and_gradient<ProtoMaml>(
                       emb, adapt<ProtoMaml>(emb, t, ep.support, prior, meta_options(o)).params, ep,
                       prior)
                .value;
          },
          theta, fd_step);
      INFO("steps " << steps);
      expect_below("proto second order", relative_error(so.gradient, fd), 1e-8);
      CHECK(relative_error(fo.gradient, fd) > 1e-3);
      CHECK(fo.gradient == outer_loss_and_gradient<ProtoMaml>(emb, so.adapted, ep, prior).gradient);
      CHECK(so.adapted == adapt<ProtoMaml>(emb, theta, ep.support, prior, meta_options(o)).params);
      // TanhLinear is twice differentiable: automatic is second order. The prior does not enter.
      CHECK(meta_step<ProtoMaml>(emb, theta, ep, prior, meta_options(o)).gradient == so.gradient);
      CHECK(meta_step<ProtoMaml>(emb, theta, ep, prior7, second).gradient == so.gradient);
      // MetaStepper<E, ProtoMaml>: meta_step's results.
      baypr::meta::MetaStepper<TanhLinear, ProtoMaml> stepper(emb);
      const auto st = stepper.step(theta, ep, prior, second);
      CHECK(st.gradient == so.gradient);
      CHECK(st.adapted == so.adapted);
      CHECK(st.outer_loss == so.outer_loss);
      CHECK(st.inner_loss == so.inner_loss);
      check_baseline_adaptation<ProtoMaml>(emb, theta, ep.support, prior, o, "Proto-MAML");
    }
    // Scores are squared distances to the prototype (no adaptation: zero inner steps).
    const Vec s =
        baypr::meta::scores<ProtoMaml>(emb, theta, ep.support, ep.queries, prior,
                                       meta_options(AdaptOptions{0, 0.3, Path::automatic}));
    const Mat Q = emb.forward(theta, ep.queries);
    check_near(s(0), (Q.row(0) - Z.colwise().mean()).squaredNorm(), 1e-13);
    // Scoring an adaptation is adapting, then scoring: distances to the adapted prototype.
    const MetaOptions o2 = meta_options(AdaptOptions{2, 0.3, Path::automatic});
    const Adaptation a2 = adapt<ProtoMaml>(emb, theta, ep.support, prior, o2);
    const Vec s2 = baypr::meta::scores<ProtoMaml>(emb, a2, ep.queries);
    CHECK(s2 == baypr::meta::scores<ProtoMaml>(emb, theta, ep.support, ep.queries, prior, o2));
    const Mat Q2 = emb.forward(a2.params, ep.queries);
    const Mat Z2 = emb.forward(a2.params, ep.support);
    check_near(s2(0), (Q2.row(0) - Z2.colwise().mean()).squaredNorm(), 1e-13);
  }

  SECTION("MAML with a linear head") {
    using baypr::meta::adapt;
    using baypr::meta::inner_loss_and_gradient;
    using baypr::meta::meta_step;
    using baypr::meta::outer_loss_and_gradient;
    const TanhLinear emb(6, 3);
    CHECK(baypr::meta::parameter_count<Maml>(emb) == 21 + 3 + 1);
    CHECK(baypr::meta::parameter_count<ProtoMaml>(emb) == 21);
    CHECK(baypr::meta::parameter_count(emb) == 21);
    const Vec theta0 = Linear(6, 3).initial_parameters(4);
    Vec params = baypr::meta::initial_parameters<Maml>(emb, theta0);
    REQUIRE(params.size() == 21 + 3 + 1);
    CHECK(params.head(21) == theta0);
    CHECK(params.tail(4).isZero());
    CHECK(baypr::meta::initial_parameters<ProtoMaml>(emb, theta0) == theta0);
    params.tail(4) << 0.4, -0.3, 0.2, 0.1;  // a non-zero head so that every path is exercised
    const auto in = inner_loss_and_gradient<Maml>(emb, params, ep.support, prior);
    expect_below(
        "maml inner",
        relative_error(in.gradient,
                       central_difference(
                           [&](const Vec& t) {
                             return inner_loss_and_gradient<Maml>(emb, t, ep.support, prior).value;
                           },
                           params, fd_step)),
        1e-8);
    CHECK(inner_loss_and_gradient<Maml>(emb, params, ep.support, prior7).gradient == in.gradient);
    for (int steps : {1, 3}) {
      const AdaptOptions o{steps, 0.5, Path::automatic};
      const MetaOptions second = meta_options(o, {}, {}, MetaGradient::second_order);
      const auto so = meta_step<Maml>(emb, params, ep, prior, second);
      const auto fo = meta_step<Maml>(emb, params, ep, prior,
                                      meta_options(o, {}, {}, MetaGradient::first_order));
      const Vec fd = central_difference(
          [&](const Vec& t) {
            return outer_loss_and_gradient<Maml>(
                       emb, adapt<Maml>(emb, t, ep.support, prior, meta_options(o)).params, ep,
                       prior)
                .value;
          },
          params, fd_step);
      INFO("steps " << steps);
      expect_below("maml second order", relative_error(so.gradient, fd), 1e-8);
      CHECK(relative_error(fo.gradient, fd) > 1e-3);
      CHECK(fo.gradient == outer_loss_and_gradient<Maml>(emb, so.adapted, ep, prior).gradient);
      CHECK(so.adapted == adapt<Maml>(emb, params, ep.support, prior, meta_options(o)).params);
      // automatic is second order; the prior does not enter.
      CHECK(meta_step<Maml>(emb, params, ep, prior, meta_options(o)).gradient == so.gradient);
      CHECK(meta_step<Maml>(emb, params, ep, prior7, second).gradient == so.gradient);
      baypr::meta::MetaStepper<TanhLinear, Maml> stepper(emb);
      const auto st = stepper.step(params, ep, prior, second);
      CHECK(st.gradient == so.gradient);
      CHECK(st.adapted == so.adapted);
      CHECK(st.outer_loss == so.outer_loss);
      CHECK(st.inner_loss == so.inner_loss);
      check_baseline_adaptation<Maml>(emb, params, ep.support, prior, o, "MAML");
    }
    // Score = logit (no adaptation: zero inner steps); logistic loss value from its definition.
    const MetaOptions no_adaptation = meta_options(AdaptOptions{0, 0.5, Path::automatic});
    const Adaptation a0 = adapt<Maml>(emb, params, ep.support, prior, no_adaptation);
    CHECK(a0.params == params);
    const Vec s = baypr::meta::scores<Maml>(emb, a0, ep.queries);
    CHECK(s ==
          baypr::meta::scores<Maml>(emb, params, ep.support, ep.queries, prior, no_adaptation));
    const Mat Q = emb.forward(theta0, ep.queries);
    check_near(s(0), Q.row(0).dot(Vec(params.segment(21, 3))) + params(24), 1e-13);
    double want = 0;
    for (Eigen::Index j = 0; j < 6; ++j) {
      want += (std::log1p(std::exp(s(j))) - ep.labels(j) * s(j)) / 6.0;
    }
    check_near(outer_loss_and_gradient<Maml>(emb, params, ep, prior).value, want, 1e-13);
  }
}

TEST_CASE("meta-training sanity: a few dozen Adam steps lower the outer loss", "[meta]") {
  const auto start = std::chrono::steady_clock::now();
  Rng rng(16);
  const Mat basis = normal_matrix(6, 2, rng);
  const Linear emb(6, 3);
  const auto prior = NiwPrior<double>::method_default(3);
  const VagueAnomalyModel anomaly;
  const AdaptOptions o;  // authors' defaults: 1 step of 5e-4
  std::vector<MetaEpisode> held_out;
  for (int i = 0; i < 8; ++i) held_out.push_back(make_episode(basis, 5, 4, 2, rng));
  auto mean_loss = [&](const Vec& theta) {
    double s = 0;
    for (const auto& ep : held_out) {
      s += baypr::meta::meta_step(emb, theta, ep, prior,
                                  meta_options(o, anomaly, {}, MetaGradient::first_order))
               .outer_loss;
    }
    return s / static_cast<double>(held_out.size());
  };
  const Vec theta0 = emb.initial_parameters(1);
  Vec theta = theta0, m = Vec::Zero(theta.size()), v = Vec::Zero(theta.size());
  const double lr = 0.02, b1 = 0.9, b2 = 0.999;
  for (int it = 1; it <= 60; ++it) {
    const MetaEpisode ep = make_episode(basis, 5, 4, 2, rng);
    const auto step = baypr::meta::meta_step(
        emb, theta, ep, prior, meta_options(o, anomaly, {}, MetaGradient::second_order));
    m = b1 * m + (1 - b1) * step.gradient;
    v = b2 * v + (1 - b2) * step.gradient.cwiseAbs2();
    const Vec mh = m / (1 - std::pow(b1, it)), vh = v / (1 - std::pow(b2, it));
    theta -= lr * (mh.array() / (vh.array().sqrt() + 1e-8)).matrix();
  }
  const double before = mean_loss(theta0), after = mean_loss(theta);
  INFO("held-out outer loss " << before << " -> " << after);
  CHECK(after < before - 0.1);
  CHECK((theta - theta0).norm() > 0.1);
  // The trained scores separate the held-out anomalies (mean score anomalous > normal).
  double gap = 0;
  for (const auto& ep : held_out) {
    const auto a = baypr::meta::adapt(emb, theta, ep.support, prior, meta_options(o, anomaly));
    const Vec s = baypr::meta::scores(emb, a, ep.queries, meta_options(o, anomaly));
    gap += s.tail(2).mean() - s.head(4).mean();
  }
  CHECK(gap > 0);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(seconds < 5.0);
}

TEST_CASE("bad inputs throw with messages naming function and argument", "[meta]") {
  using baypr::test::contains;
  using baypr::test::message_of;
  Rng rng(17);
  const Mat basis = normal_matrix(6, 2, rng);
  const MetaEpisode ep = make_episode(basis, 4, 3, 1, rng);
  const Linear emb(6, 3);
  const auto prior = NiwPrior<double>::method_default(3);
  const Vec theta = emb.initial_parameters(1);
  const VagueAnomalyModel anomaly;
  const AdaptOptions o;
  auto step = [&](const MetaEpisode& e, const Vec& t = Vec(),
                  const AdaptOptions& opt = AdaptOptions{}, const NiwPrior<double>* p = nullptr,
                  const VagueAnomalyModel& an = VagueAnomalyModel{},
                  const OuterOptions& outer = OuterOptions{},
                  MetaGradient order = MetaGradient::second_order) {
    return message_of([&] {
      (void)baypr::meta::meta_step(emb, t.size() ? t : theta, e, p ? *p : prior,
                                   meta_options(opt, an, outer, order));
    });
  };
  MetaEpisode bad = ep;
  bad.labels(1) = 2;
  CHECK(contains(step(bad),
                 "baypr::meta::meta_step: argument 'episode.labels' must be 0 (normal) or 1 "
                 "(anomalous), got 2 at index 1"));
  bad = ep;
  bad.labels.conservativeResize(ep.labels.size() - 1);
  CHECK(contains(step(bad), "argument 'episode.labels' has size 3, expected 4"));
  bad = ep;
  bad.queries(2, 3) = std::nan("");
  CHECK(
      contains(step(bad), "argument 'episode.queries' must be finite, got nan at row 2, column 3"));
  bad = ep;
  bad.support = Mat(4, 5);
  CHECK(contains(step(bad), "argument 'episode.support' has columns 5, expected 6"));
  bad = ep;
  bad.support.resize(0, 6);
  CHECK(contains(step(bad), "argument 'episode.support' must have at least one row"));
  CHECK(contains(step(ep, Vec::Zero(5)), "argument 'theta' has size 5, expected 21"));
  CHECK(contains(step(ep, theta, AdaptOptions{-1, 0.1, Path::automatic}),
                 "baypr::meta::meta_step: argument 'options.adapt.inner_steps' must be >= 0, "
                 "got -1"));
  CHECK(contains(step(ep, theta, AdaptOptions{1, std::nan(""), Path::automatic}),
                 "baypr::meta::meta_step: argument 'options.adapt.inner_step_size' must be finite "
                 "and >= 0"));
  CHECK(contains(step(ep, theta, AdaptOptions{1, -0.5, Path::automatic}),
                 "argument 'options.adapt.inner_step_size' must be finite and >= 0, got -0.5"));
  const auto prior4 = NiwPrior<double>::method_default(4);
  CHECK(contains(step(ep, theta, o, &prior4), "argument 'prior' has dimension 4, expected 3"));
  CHECK(contains(step(ep, theta, o, nullptr, VagueAnomalyModel{0, 0, 2}),
                 "baypr::meta::meta_step: argument 'options.anomaly.scale' must be finite and > 0, "
                 "got 0"));
  CHECK(contains(step(ep, theta, o, nullptr, VagueAnomalyModel{0, 100, -1}),
                 "baypr::meta::meta_step: argument 'options.anomaly.dof' must be finite and > 0"));
  CHECK(contains(step(ep, theta, o, nullptr, VagueAnomalyModel{std::nan(""), 100, 2}),
                 "baypr::meta::meta_step: argument 'options.anomaly.location'"));
  // The outer options and the order, named by their path in MetaOptions.
  OuterOptions bad_outer;
  bad_outer.objective = static_cast<baypr::meta::Objective>(7);
  CHECK(contains(step(ep, theta, o, nullptr, anomaly, bad_outer),
                 "baypr::meta::meta_step: argument 'options.outer.objective' is not a valid "
                 "Objective, got 7"));
  bad_outer = OuterOptions{};
  bad_outer.calibration.rho = 60.0;
  CHECK(contains(step(ep, theta, o, nullptr, anomaly, bad_outer),
                 "baypr::meta::meta_step: argument 'options.outer.calibration.rho' must lie in "
                 "[-50, 50]"));
  bad_outer = OuterOptions{};
  bad_outer.calibration_l2 = -1.0;
  CHECK(contains(step(ep, theta, o, nullptr, anomaly, bad_outer),
                 "baypr::meta::meta_step: argument 'options.outer.calibration_l2' must be finite "
                 "and >= 0, got -1"));
  bad_outer = OuterOptions{};
  bad_outer.supcon_temperature = 0.0;
  CHECK(contains(step(ep, theta, o, nullptr, anomaly, bad_outer),
                 "baypr::meta::meta_step: argument 'options.outer.supcon_temperature' must be "
                 "finite and > 0"));
  CHECK(contains(step(ep, theta, o, nullptr, anomaly, OuterOptions{}, static_cast<MetaGradient>(7)),
                 "baypr::meta::meta_step: argument 'options.order' is not a valid MetaGradient, "
                 "got 7"));
  CHECK(contains(
      message_of([&] { (void)baypr::meta::adapt(emb, theta, Mat(3, 4), prior, meta_options(o)); }),
      "baypr::meta::adapt: argument 'support_inputs' has columns 4, expected 6"));
  CHECK(contains(message_of([&] {
                   (void)baypr::meta::outer_loss_and_gradient(
                       emb, theta, ep, prior,
                       meta_options(o, anomaly,
                                    outer_options(baypr::meta::Objective::discriminative, -1.0)));
                 }),
                 "baypr::meta::outer_loss_and_gradient: argument 'options.outer.supcon_weight' "
                 "must be finite and >= 0, got -1"));
  CHECK(contains(
      message_of([&] {
        (void)baypr::meta::inner_loss_and_gradient(emb, Vec(theta.head(20)), ep.support, prior);
      }),
      "baypr::meta::inner_loss_and_gradient: argument 'theta' has size 20, expected 21"));
  CHECK(contains(message_of([&] {
                   (void)baypr::meta::outer_loss_and_gradient(emb, Vec(theta.head(20)), ep, prior);
                 }),
                 "baypr::meta::outer_loss_and_gradient: argument 'adapted' has size 20, expected "
                 "21"));
  // Every method's entry points name themselves, not the method.
  CHECK(contains(message_of([&] {
                   (void)baypr::meta::meta_step<ProtoMaml>(emb, theta, bad, prior, meta_options(o));
                 }),
                 "baypr::meta::meta_step: argument 'episode.support' must have at least one row"));
  CHECK(contains(message_of([&] {
                   (void)baypr::meta::meta_step<Maml>(emb, theta, ep, prior, meta_options(o));
                 }),
                 "baypr::meta::meta_step: argument 'theta' has size 21, expected 25"));
  CHECK(
      contains(message_of([&] {
                 (void)baypr::meta::inner_loss_and_gradient<Maml>(emb, theta, ep.support, prior);
               }),
               "baypr::meta::inner_loss_and_gradient: argument 'theta' has size 21, expected 25"));
  CHECK(contains(
      message_of([&] { (void)baypr::meta::outer_loss_and_gradient<Maml>(emb, theta, ep, prior); }),
      "baypr::meta::outer_loss_and_gradient: argument 'adapted' has size 21, expected "
      "25"));
  CHECK(contains(message_of([&] {
                   (void)baypr::meta::adapt<ProtoMaml>(
                       emb, theta, ep.support, prior,
                       meta_options(AdaptOptions{-2, 0.1, Path::automatic}));
                 }),
                 "baypr::meta::adapt: argument 'options.adapt.inner_steps' must be >= 0, got -2"));
  CHECK(contains(message_of([&] {
                   baypr::meta::MetaStepper<Linear, Maml> stepper(emb);
                   (void)stepper.step(theta, ep, prior, meta_options(o));
                 }),
                 "baypr::meta::MetaStepper::step: argument 'theta' has size 21, expected 25"));
  // Scoring an adaptation checks it: its parameters, its support and, for BayPrAnoMeta, that it
  // has a posterior (one made by adapt<ProtoMaml> has none).
  const Adaptation good = baypr::meta::adapt(emb, theta, ep.support, prior, meta_options(o));
  Adaptation broken = good;
  broken.params = Vec(theta.head(20));
  CHECK(contains(message_of([&] { (void)baypr::meta::scores(emb, broken, ep.queries); }),
                 "baypr::meta::scores: argument 'adaptation.params' has size 20, expected 21"));
  broken = good;
  broken.support.resize(0, 3);
  CHECK(contains(message_of([&] { (void)baypr::meta::scores(emb, broken, ep.queries); }),
                 "baypr::meta::scores: argument 'adaptation.support' must have at least one row"));
  broken = good;
  broken.support = Mat::Zero(4, 2);
  CHECK(contains(message_of([&] { (void)baypr::meta::scores(emb, broken, ep.queries); }),
                 "baypr::meta::scores: argument 'adaptation.support' has columns 2, expected 3"));
  const Adaptation proto =
      baypr::meta::adapt<ProtoMaml>(emb, theta, ep.support, prior, meta_options(o));
  CHECK(contains(message_of([&] { (void)baypr::meta::scores(emb, proto, ep.queries); }),
                 "baypr::meta::scores: argument 'adaptation' has no posterior"));
  CHECK(contains(message_of([&] { (void)baypr::meta::scores(emb, good, Mat(2, 5)); }),
                 "baypr::meta::scores: argument 'query_inputs' has columns 5, expected 6"));
  CHECK(contains(message_of([&] {
                   (void)baypr::meta::scores(emb, good, ep.queries,
                                             meta_options(o, VagueAnomalyModel{0, -1, 2}));
                 }),
                 "baypr::meta::scores: argument 'options.anomaly.scale' must be finite and > 0"));
  CHECK(contains(message_of([&] { (void)baypr::meta::scores<Maml>(emb, good, ep.queries); }),
                 "baypr::meta::scores: argument 'adaptation.params' has size 21, expected 25"));
  CHECK(contains(
      message_of([&] { (void)baypr::meta::scores(emb, theta, ep.support, Mat(2, 5), prior); }),
      "baypr::meta::scores: argument 'query_inputs' has columns 5, expected 6"));
  // Adapt-then-score checks what adapt checks (the argument is pinned here, not which entry point
  // the message names).
  CHECK(contains(message_of([&] {
                   (void)baypr::meta::scores(emb, Vec(theta.head(20)), ep.support, ep.queries,
                                             prior);
                 }),
                 "argument 'theta' has size 20, expected 21"));
  // A divergent inner loop is a numerical error, not a NaN result.
  Vec big = theta;
  big *= 1e3;
  const std::string divergent = message_of([&] {
    (void)baypr::meta::adapt<ProtoMaml>(emb, big, ep.support, prior,
                                        meta_options(AdaptOptions{200, 1e3, Path::automatic}));
  });
  CHECK(contains(divergent, "not finite"));
  CHECK(contains(divergent, "baypr::meta::adapt"));
}
