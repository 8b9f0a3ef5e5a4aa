// A small downstream program: includes the umbrella header, fits a posterior and checks results.
#include <baypr/baypr.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>

int main() {
  if (std::strcmp(baypr::version_string, "0.1.0") != 0) {
    std::fprintf(stderr, "unexpected baypr version %s\n", baypr::version_string);
    return 1;
  }
  Eigen::MatrixXd support(3, 2);
  support << 1.0, 2.0, 1.5, 1.0, 0.5, 1.5;
  const auto prior = baypr::NiwPrior<double>::isotropic(2, 1.0, 4.0, 1.0);
  const auto t = prior.posterior(support).predictive();
  // dof = nu0 + n - d + 1 = 4 + 3 - 2 + 1; location = (kappa0 mu0 + n zbar) / (kappa0 + n).
  const bool ok = t.dof() == 6.0 && std::abs(t.location()(0) - 0.75) < 1e-15 &&
                  std::abs(t.location()(1) - 1.125) < 1e-15 &&
                  std::isfinite(t.log_pdf(Eigen::Vector2d(1.0, 1.0)));
  std::printf("baypr %s consumer %s\n", baypr::version_string, ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
