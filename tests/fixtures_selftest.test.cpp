// The SciPy reference file is internally consistent: its posteriors, predictive scales, densities,
// Mahalanobis distances, tails and log marginals are recomputed here with plain Eigen (not the
// library) from the stored inputs. Also checks that the reader rejects malformed files by line.
#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <random>
#include <set>
#include <string>

#include "support/catch.hpp"
#include "support/fixtures.hpp"

namespace {

using baypr::test::max_elementwise_relative_error;
using baypr::test::max_relative_error;
using baypr::test::NiwCase;
using baypr::test::relative_error;

const std::string reference_file = BAYPR_TEST_DATA_DIR "/niw_student_t.txt";

struct Posterior {
  double kappa, nu;
  Eigen::VectorXd mu;
  Eigen::MatrixXd psi;
};

// Conjugate update from the first `rows` support rows, centred scatter (docs/design.md, stats/).
Posterior posterior(const NiwCase& c, Eigen::Index rows) {
  Posterior p{c.kappa0, c.nu0, c.mu0, c.psi0};
  if (rows == 0) return p;
  const auto z = c.Z.topRows(rows);
  const double n = static_cast<double>(rows);
  const Eigen::RowVectorXd zbar = z.colwise().mean();
  const Eigen::MatrixXd centred = z.rowwise() - zbar;
  const Eigen::VectorXd diff = zbar.transpose() - c.mu0;
  p.kappa = c.kappa0 + n;
  p.nu = c.nu0 + n;
  p.mu = (c.kappa0 * c.mu0 + n * zbar.transpose()) / p.kappa;
  p.psi =
      c.psi0 + centred.transpose() * centred + (c.kappa0 * n / p.kappa) * diff * diff.transpose();
  return p;
}

struct Predictive {
  double dof;
  Eigen::VectorXd mu;
  Eigen::MatrixXd sigma;
};

Predictive predictive(const Posterior& p) {
  const double d = static_cast<double>(p.mu.size());
  const double v = p.nu - d + 1.0;
  return {v, p.mu, p.psi * (p.kappa + 1.0) / (p.kappa * v)};
}

// Mahalanobis distances and log densities of the rows of x, via Eigen's LLT.
void student_t(const Predictive& t, const Eigen::MatrixXd& x, Eigen::VectorXd& delta,
               Eigen::VectorXd& log_pdf) {
  const Eigen::LLT<Eigen::MatrixXd> llt(t.sigma);
  REQUIRE(llt.info() == Eigen::Success);
  const Eigen::MatrixXd w =
      llt.matrixL().solve((x.rowwise() - t.mu.transpose()).transpose());  // d x m
  delta = w.colwise().squaredNorm().transpose();
  const double d = static_cast<double>(t.mu.size());
  const double v = t.dof;
  const double log_det = 2.0 * llt.matrixLLT().diagonal().array().log().sum();
  const double log_norm = std::lgamma((v + d) / 2) - std::lgamma(v / 2) -
                          d / 2 * std::log(v * std::numbers::pi) - log_det / 2;
  log_pdf = log_norm - (v + d) / 2 * (delta.array() / v).log1p();
}

const std::vector<NiwCase>& load() {
  static const std::vector<NiwCase> cases = baypr::test::read_niw_cases(reference_file);
  return cases;
}

}  // namespace

TEST_CASE("reference file: cases cover the dimensions and sample sizes asked for", "[fixtures]") {
  const auto& cases = load();
  REQUIRE(cases.size() >= 20);
  std::set<int> ds, ns;
  std::set<std::string> names;
  bool n_below_d = false, minimal_nu = false, tiny = false, huge = false;
  for (const auto& c : cases) {
    CHECK(names.insert(c.name).second);
    ds.insert(c.d);
    ns.insert(c.n);
    n_below_d = n_below_d || c.n < c.d;
    minimal_nu = minimal_nu || c.nu0 == c.d - 0.5;
    tiny = tiny || c.psi0.cwiseAbs().maxCoeff() < 1e-150;
    huge = huge || c.psi0.cwiseAbs().maxCoeff() > 1e150;
    CHECK(c.kappa0 > 0);
    CHECK(c.nu0 > c.d - 1);
  }
  CHECK(ds == std::set<int>{1, 2, 3, 5, 16, 64});
  for (int n : {1, 2, 5, 10, 40}) CHECK(ns.count(n) == 1);
  CHECK(n_below_d);
  CHECK(minimal_nu);
  CHECK(tiny);
  CHECK(huge);
}

TEST_CASE("reference file: posterior and predictive parameters follow from the inputs",
          "[fixtures]") {
  for (const auto& c : load()) {
    INFO("case " << c.name);
    const Posterior p = posterior(c, c.Z.rows());
    CHECK(relative_error(c.kappa_n, c.kappa0 + c.n) <= 1e-15);
    CHECK(relative_error(c.nu_n, c.nu0 + c.n) <= 1e-15);
    CHECK(relative_error(c.dof, c.nu_n - c.d + 1) <= 1e-15);
    CHECK(max_relative_error(p.mu, c.mu_n) <= 1e-10);
    CHECK(max_relative_error(p.psi, c.psi_n) <= 1e-10);
    const Eigen::MatrixXd sigma = c.psi_n * (c.kappa_n + 1) / (c.kappa_n * c.dof);
    CHECK(max_relative_error(sigma, c.scale) <= 1e-14);
    CHECK(max_relative_error(c.scale, c.scale.transpose()) <= 1e-15);
  }
}

TEST_CASE("reference file: log pdf and Mahalanobis distance agree with an Eigen LLT",
          "[fixtures]") {
  for (const auto& c : load()) {
    INFO("case " << c.name);
    Eigen::VectorXd delta, log_pdf;
    student_t({c.dof, c.mu_n, c.scale}, c.X, delta, log_pdf);
    CHECK(max_elementwise_relative_error(log_pdf, c.log_pdf) <= 1e-10);
    CHECK(max_elementwise_relative_error(delta, c.mahalanobis) <= 1e-10);
    CHECK(c.mahalanobis.maxCoeff() >= 1e5);  // the tails are exercised
  }
}

TEST_CASE("reference file: tail probabilities and thresholds are consistent", "[fixtures]") {
  for (const auto& c : load()) {
    INFO("case " << c.name);
    CHECK(c.tail.minCoeff() >= 0.0);
    CHECK(c.tail.maxCoeff() <= 1.0);
    // The tail probability falls as the Mahalanobis distance grows.
    for (Eigen::Index i = 0; i < c.m; ++i)
      for (Eigen::Index j = 0; j < c.m; ++j)
        if (c.mahalanobis(i) < c.mahalanobis(j)) CHECK(c.tail(i) >= c.tail(j));
    CHECK(0.0 < c.threshold_01);
    CHECK(c.threshold_01 < c.threshold_001);
    if (c.d == 2) {
      // F(2, v) has a closed form: P(delta > t) = (1 + t / v)^(-v/2).
      const double v = c.dof;
      const Eigen::VectorXd tail = (1.0 + c.mahalanobis.array() / v).pow(-v / 2);
      CHECK(max_elementwise_relative_error(tail, c.tail) <= 1e-10);
      CHECK(relative_error(v * (std::pow(0.1, -2.0 / v) - 1.0), c.threshold_01) <= 1e-10);
      CHECK(relative_error(v * (std::pow(0.01, -2.0 / v) - 1.0), c.threshold_001) <= 1e-10);
    }
  }
}

TEST_CASE("reference file: log marginal equals the chain rule of predictive densities",
          "[fixtures]") {
  for (const auto& c : load()) {
    INFO("case " << c.name);
    double total = 0.0;
    for (Eigen::Index i = 0; i < c.Z.rows(); ++i) {
      Eigen::VectorXd delta, log_pdf;
      student_t(predictive(posterior(c, i)), c.Z.row(i), delta, log_pdf);
      total += log_pdf(0);
    }
    CHECK(relative_error(total, c.log_marginal) <= 1e-9);
  }
}

TEST_CASE("relative error helpers", "[fixtures]") {
  CHECK(relative_error(1.0, 1.0) == 0.0);
  CHECK(relative_error(HUGE_VAL, HUGE_VAL) == 0.0);
  CHECK(std::isinf(relative_error(std::nan(""), 1.0)));
  CHECK(relative_error(1.1, 1.0) == Approx(0.1));
  CHECK(relative_error(1e-300, 0.0) > 1.0);  // an expected zero is not an excuse
  Eigen::Vector2d e(100.0, 1e-3), g(100.0, 2e-3);
  CHECK(max_relative_error(g, e) == Approx(1e-5));             // scaled by max |expected|
  CHECK(max_elementwise_relative_error(g, e) == Approx(1.0));  // each on its own scale
  CHECK_THROWS_AS(max_relative_error(Eigen::Vector3d::Zero(), e), std::invalid_argument);
}

TEST_CASE("read_niw_cases names the file and line of malformed input", "[fixtures]") {
  const auto path = (std::filesystem::temp_directory_path() /
                     ("baypr_fixtures_selftest_" + std::to_string(std::random_device{}()) + ".txt"))
                        .string();
  const auto message_for = [&](const std::string& text) -> std::string {
    {
      std::ofstream out(path);
      out << text;
    }
    try {
      baypr::test::read_niw_cases(path);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "";
  };
  const std::string good_head =
      "# comment\ncase t 1 1 1\nkappa0 1\nnu0 2\nmu0 0\npsi0 1\nZ 1e-300\nX inf\nkappa_n 2\n"
      "nu_n 3\nmu_n 0\npsi_n 1\ndof 3\nscale 1\nlog_marginal -1\nlog_pdf -1\nmahalanobis 0\n"
      "tail 1\nthreshold_0.1 1\n";
  const auto ok = [&] {
    std::ofstream(path) << good_head << "threshold_0.01 2\nend\n";
    return baypr::test::read_niw_cases(path);
  }();
  REQUIRE(ok.size() == 1);
  CHECK(ok[0].Z(0, 0) == 1e-300);
  CHECK(std::isinf(ok[0].X(0, 0)));

  std::string msg = message_for(good_head + "threshold_0.01 2 3\nend\n");
  CAPTURE(msg);
  CHECK(msg.find(path + ":20:") != std::string::npos);
  CHECK(msg.find("threshold_0.01") != std::string::npos);
  msg = message_for(good_head + "threshold_0.01 x2\nend\n");
  CHECK(msg.find(path + ":20: not a number: 'x2'") != std::string::npos);
  msg = message_for(good_head + "end\n");
  CHECK(msg.find(path + ":20:") != std::string::npos);
  CHECK(msg.find("no 'threshold_0.01'") != std::string::npos);
  msg = message_for(good_head + "threshold_0.01 2\n");
  CHECK(msg.find("has no 'end'") != std::string::npos);
  msg = message_for(good_head + "kappa0 1\n");
  CHECK(msg.find(path + ":20: repeated key 'kappa0' (first on line 3)") != std::string::npos);
  msg = message_for("kappa0 1\n");
  CHECK(msg.find(path + ":1: 'kappa0' outside a case") != std::string::npos);
  std::remove(path.c_str());
  CHECK_THROWS_AS(baypr::test::read_niw_cases(path), std::runtime_error);
}
