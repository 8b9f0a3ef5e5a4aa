// The rows of several matrices (all with the same number of columns), one block after another:
// the union of the sites' rows in the pooling tests.
#pragma once

#include <Eigen/Core>
#include <vector>

namespace baypr::test {

inline Eigen::MatrixXd stack_rows(const std::vector<Eigen::MatrixXd>& blocks) {
  Eigen::Index rows = 0;
  for (const auto& b : blocks) rows += b.rows();
  Eigen::MatrixXd all(rows, blocks.empty() ? 0 : blocks.front().cols());
  Eigen::Index at = 0;
  for (const auto& b : blocks) {
    all.middleRows(at, b.rows()) = b;
    at += b.rows();
  }
  return all;
}

}  // namespace baypr::test
