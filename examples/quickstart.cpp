// Fit a normality model from five normal embeddings, then score two new ones.
#include <baypr/baypr.hpp>

#include <iostream>
#include <random>

int main() {
  const Eigen::Index d = 64;  // embedding dimension (from your network)
  std::mt19937_64 rng(42);
  std::normal_distribution<double> noise(0.0, 0.1);
  auto embedding = [&](double shift) {
    Eigen::VectorXd z = Eigen::VectorXd::LinSpaced(d, -1.0, 1.0);
    for (auto& v : z) v += noise(rng) + shift;
    return z;
  };

  // K = 5 normal support images, one embedding per row.
  Eigen::MatrixXd support(5, d);
  for (Eigen::Index i = 0; i < support.rows(); ++i) support.row(i) = embedding(0.0).transpose();

  // NIW prior as in the method (mu0 = 0, kappa0 = 0.01, nu0 = d + 2, Psi0 = s I) with s set to
  // the data's scale: with 5 samples in 64 dimensions, most directions see only the prior.
  const auto prior = baypr::NiwPrior<double>::isotropic(d, 0.01, d + 2.0, 0.1);
  const auto posterior = prior.posterior(support);
  const auto predictive = posterior.predictive();

  Eigen::MatrixXd queries(2, d);
  queries.row(0) = embedding(0.0).transpose();  // normal
  queries.row(1) = embedding(0.5).transpose();  // shifted: anomalous
  const Eigen::VectorXd nll = -predictive.log_pdf(queries);
  const Eigen::VectorXd p = predictive.tail_probability(queries);
  const double threshold = predictive.threshold(0.01);  // 1% false alarms on normal data
  const Eigen::VectorXd delta = predictive.mahalanobis(queries);

  for (Eigen::Index j = 0; j < queries.rows(); ++j) {
    std::cout << "query " << j << ": -log p = " << nll(j) << ", tail probability = " << p(j)
              << (delta(j) > threshold ? "  -> anomalous" : "  -> normal") << "\n";
  }
  return (nll(1) > nll(0) && delta(1) > threshold && delta(0) <= threshold) ? 0 : 1;
}
