// Error messages name the function, the argument and the offending value.
#include <Eigen/Core>
#include <string>
#include <vector>

#include "baypr/core/errors.hpp"
#include "support/catch.hpp"
#include "support/messages.hpp"

using baypr::test::contains;
using baypr::test::message_of;

TEST_CASE("check_finite names the first non-finite row and column", "[core][errors]") {
  Eigen::MatrixXd m = Eigen::MatrixXd::Zero(3, 2);
  m(2, 1) = std::numeric_limits<double>::quiet_NaN();
  REQUIRE_THROWS_AS(baypr::detail::check_finite("f", "samples", m), baypr::invalid_argument);
  const auto msg = message_of([&] { baypr::detail::check_finite("f", "samples", m); });
  CHECK(contains(msg, "f: argument 'samples'"));
  CHECK(contains(msg, "row 2, column 1"));
  CHECK(contains(msg, "nan"));
  m(2, 1) = 1.0;
  CHECK_NOTHROW(baypr::detail::check_finite("f", "samples", m));
}

TEST_CASE("check_positive rejects zero, negatives, NaN and infinity", "[core][errors]") {
  CHECK_THROWS_AS(baypr::detail::check_positive("g", "kappa0", 0.0), std::invalid_argument);
  CHECK_THROWS_AS(baypr::detail::check_positive("g", "kappa0", -1.5), std::invalid_argument);
  CHECK_THROWS_AS(baypr::detail::check_positive("g", "kappa0", std::nan("")),
                  std::invalid_argument);
  CHECK_THROWS_AS(baypr::detail::check_positive("g", "kappa0", HUGE_VAL), std::invalid_argument);
  CHECK_NOTHROW(baypr::detail::check_positive("g", "kappa0", 1e-300));
  const auto msg = message_of([] { baypr::detail::check_positive("g", "kappa0", -1.5); });
  CHECK(msg == "g: argument 'kappa0' must be finite and > 0, got -1.5");
}

TEST_CASE("check_size reports got and expected", "[core][errors]") {
  const auto msg = message_of([] { baypr::detail::check_size("h", "x", "columns", 3, 4); });
  CHECK(msg == "h: argument 'x' has columns 3, expected 4");
  CHECK_NOTHROW(baypr::detail::check_size("h", "x", "columns", 4, 4));
}

TEST_CASE("numerical_error is a runtime_error", "[core][errors]") {
  CHECK_THROWS_AS(baypr::detail::throw_numerical("k", "downdate failed"), std::runtime_error);
  const auto msg = message_of([] { baypr::detail::throw_numerical("k", "downdate failed"); });
  CHECK(msg == "k: downdate failed");
}

TEST_CASE("check_binary_labels: one check for std::vector and Eigen labels", "[core][errors]") {
  const std::vector<int> v{0, 1, 1, 0};
  Eigen::VectorXi e(5);
  e << 1, 0, 0, 1, 1;
  CHECK(baypr::detail::check_binary_labels("f", "labels", v, 4) == 2);
  CHECK(baypr::detail::check_binary_labels("f", "labels", e, 5) == 3);
  CHECK(contains(message_of([&] { (void)baypr::detail::check_binary_labels("f", "labels", v, 5); }),
                 "f: argument 'labels' has size 4, expected 5"));
  e(2) = -1;
  CHECK(contains(message_of([&] { (void)baypr::detail::check_binary_labels("g", "y", e, 5); }),
                 "g: argument 'y' must be 0 (normal) or 1 (anomalous), got -1 at index 2"));
}
