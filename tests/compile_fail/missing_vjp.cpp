// Must NOT compile: an embedding without vjp passed where a DifferentiableEmbedding is required.
// tests/compile_fail/ExpectCompileError.cmake compiles it twice: with BAYPR_COMPILE_FAIL_CONTROL
// (vjp present) it must compile, so the failure below comes from the concept, not the setup.
#include <Eigen/Core>

#include "baypr/meta/embedding.hpp"
#include "baypr/meta/gradcheck.hpp"

struct NoVjp {
  [[nodiscard]] Eigen::Index input_dim() const { return 2; }
  [[nodiscard]] Eigen::Index output_dim() const { return 2; }
  [[nodiscard]] Eigen::Index parameter_count() const { return 6; }
  [[nodiscard]] baypr::meta::RowMatrix<double> forward(
      const baypr::meta::ParamVector<double>& theta, const Eigen::MatrixXd& x) const {
    return x * Eigen::Map<const Eigen::Matrix2d>(theta.data());
  }
#if defined(BAYPR_COMPILE_FAIL_CONTROL)
  [[nodiscard]] baypr::meta::ParamVector<double> vjp(
      const baypr::meta::ParamVector<double>& theta, const Eigen::MatrixXd& x,
      const baypr::meta::RowMatrix<double>& dz) const {
    return theta + 0.0 * (x.sum() + dz.sum()) * theta;
  }
#endif
};

int main() {
  const NoVjp e;
  const auto check = baypr::meta::check_embedding_gradient(e, Eigen::VectorXd::Zero(6),
                                                           Eigen::MatrixXd::Zero(1, 2), 1);
  return check.passed(1e-6) ? 0 : 1;
}
