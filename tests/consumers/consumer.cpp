// A small downstream program: includes the umbrella header, fits a posterior and checks results;
// decodes an IDX buffer through <baypr/io/idx.hpp>, so its link proves baypr::idx brings zlib.
#include <baypr/baypr.hpp>
#include <baypr/io/idx.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <vector>

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
  // A 1-D unsigned-byte IDX file (magic 0x00000801) with three labels.
  constexpr char idx[] = {0, 0, 0x08, 0x01, 0, 0, 0, 3, 7, 0, 9};
  const auto labels =
      baypr::idx_labels(baypr::parse_idx(std::string_view(idx, sizeof idx)), "labels");
  const bool idx_ok = labels.size() == 3 && labels(0) == 7 && labels(1) == 0 && labels(2) == 9;
  std::printf("baypr %s consumer %s\n", baypr::version_string, ok && idx_ok ? "ok" : "FAILED");
  return ok && idx_ok ? 0 : 1;
}
