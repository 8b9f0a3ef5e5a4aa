// tests/support/fixtures.hpp: reads the SciPy reference values in tests/reference/ (written by
// tests/reference/generate_niw.py) and compares numbers against them.
//
// File format (niw_student_t.txt): lines starting with '#' and blank lines are skipped; each case
// is a block of "key values..." lines, values space-separated, matrices row-major:
//
//   case <name> <d> <n> <m>
//   kappa0 <1>  nu0 <1>  mu0 <d>  psi0 <d*d>  Z <n*d>  X <m*d>
//   kappa_n <1>  nu_n <1>  mu_n <d>  psi_n <d*d>  dof <1>  scale <d*d>  (Sigma)
//   log_marginal <1>  log_pdf <m>  mahalanobis <m>  tail <m>
//   threshold_0.1 <1>  threshold_0.01 <1>
//   end
//
// one key per line, in any order, each exactly once. Numbers are parsed with std::strtod, so
// "1e-300", "inf" and "nan" are read as such.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace baypr::test {

// One reference case: the inputs (prior, support rows Z, query rows X; one row per sample) and
// SciPy's expected outputs.
struct NiwCase {
  std::string name;
  int d = 0, n = 0, m = 0;
  double kappa0 = 0, nu0 = 0;
  Eigen::VectorXd mu0;
  Eigen::MatrixXd psi0, Z, X;
  double kappa_n = 0, nu_n = 0;
  Eigen::VectorXd mu_n;
  Eigen::MatrixXd psi_n;
  double dof = 0;
  Eigen::MatrixXd scale;  // Sigma = Psi_n (kappa_n + 1) / (kappa_n dof)
  double log_marginal = 0;
  Eigen::VectorXd log_pdf, mahalanobis, tail;
  double threshold_01 = 0, threshold_001 = 0;  // d * F^{-1}(1 - alpha; d, dof), alpha 0.1, 0.01
};

namespace fixtures_detail {

[[noreturn]] inline void fail(const std::string& path, long line, const std::string& what) {
  throw std::runtime_error("read_niw_cases: " + path + ":" + std::to_string(line) + ": " + what);
}

inline std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string token;
  while (in >> token) out.push_back(token);
  return out;
}

inline double parse_double(const std::string& token, const std::string& path, long line) {
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(token.c_str(), &end);
  // ERANGE on underflow still returns the (denormal or zero) value, which is what we want;
  // only reject tokens that are not entirely a number.
  if (end == token.c_str() || *end != '\0') fail(path, line, "not a number: '" + token + "'");
  return v;
}

inline int parse_count(const std::string& token, const std::string& path, long line) {
  errno = 0;
  char* end = nullptr;
  const long v = std::strtol(token.c_str(), &end, 10);
  if (end == token.c_str() || *end != '\0' || errno == ERANGE || v < 0 ||
      v > std::numeric_limits<int>::max())
    fail(path, line, "not a non-negative integer: '" + token + "'");
  return static_cast<int>(v);
}

struct Entry {
  std::vector<double> values;
  long line = 0;
};

// Finishes one case: every key present with the right number of values.
inline NiwCase assemble(const std::string& path, long case_line, long end_line, NiwCase c,
                        std::map<std::string, Entry>& entries) {
  const Eigen::Index d = c.d, n = c.n, m = c.m;
  auto take = [&](const std::string& key, Eigen::Index count) -> const std::vector<double>& {
    const auto it = entries.find(key);
    if (it == entries.end())
      fail(path, end_line,
           "case '" + c.name + "' (line " + std::to_string(case_line) + ") has no '" + key +
               "' line");
    if (static_cast<Eigen::Index>(it->second.values.size()) != count)
      fail(path, it->second.line,
           "'" + key + "' has " + std::to_string(it->second.values.size()) + " values, expected " +
               std::to_string(count) + " for case '" + c.name + "'");
    return it->second.values;
  };
  auto scalar = [&](const std::string& key) { return take(key, 1).front(); };
  auto vector = [&](const std::string& key, Eigen::Index size) {
    const auto& v = take(key, size);
    Eigen::VectorXd out(size);
    for (Eigen::Index i = 0; i < size; ++i) out(i) = v[static_cast<std::size_t>(i)];
    return out;
  };
  auto matrix = [&](const std::string& key, Eigen::Index rows, Eigen::Index cols) {
    const auto& v = take(key, rows * cols);
    Eigen::MatrixXd out(rows, cols);
    for (Eigen::Index i = 0; i < rows; ++i)
      for (Eigen::Index j = 0; j < cols; ++j) out(i, j) = v[static_cast<std::size_t>(i * cols + j)];
    return out;
  };
  c.kappa0 = scalar("kappa0");
  c.nu0 = scalar("nu0");
  c.mu0 = vector("mu0", d);
  c.psi0 = matrix("psi0", d, d);
  c.Z = matrix("Z", n, d);
  c.X = matrix("X", m, d);
  c.kappa_n = scalar("kappa_n");
  c.nu_n = scalar("nu_n");
  c.mu_n = vector("mu_n", d);
  c.psi_n = matrix("psi_n", d, d);
  c.dof = scalar("dof");
  c.scale = matrix("scale", d, d);
  c.log_marginal = scalar("log_marginal");
  c.log_pdf = vector("log_pdf", m);
  c.mahalanobis = vector("mahalanobis", m);
  c.tail = vector("tail", m);
  c.threshold_01 = scalar("threshold_0.1");
  c.threshold_001 = scalar("threshold_0.01");
  return c;
}

}  // namespace fixtures_detail

// Reads every case of a reference file. Throws std::runtime_error naming the file and line when
// the file cannot be opened or is malformed (unknown or repeated key, wrong value count, a key
// outside a case, a case without "end", a token that is not a number).
inline std::vector<NiwCase> read_niw_cases(const std::string& path) {
  namespace fd = fixtures_detail;
  static const char* const known_keys[] = {
      "kappa0", "nu0",           "mu0",           "psi0",    "Z",
      "X",      "kappa_n",       "nu_n",          "mu_n",    "psi_n",
      "dof",    "scale",         "log_marginal",  "log_pdf", "mahalanobis",
      "tail",   "threshold_0.1", "threshold_0.01"};
  std::ifstream in(path);
  if (!in) throw std::runtime_error("read_niw_cases: cannot open '" + path + "'");

  std::vector<NiwCase> cases;
  std::map<std::string, fd::Entry> entries;
  NiwCase current;
  bool in_case = false;
  long case_line = 0;
  long line_no = 0;
  std::string line;
  while (std::getline(in, line)) {
    ++line_no;
    const auto tokens = fd::split(line);
    if (tokens.empty() || tokens.front().front() == '#') continue;
    const std::string& key = tokens.front();
    if (key == "case") {
      if (in_case)
        fd::fail(path, line_no, "'case' before the 'end' of case '" + current.name + "'");
      if (tokens.size() != 5) fd::fail(path, line_no, "expected 'case <name> <d> <n> <m>'");
      current = NiwCase{};
      current.name = tokens[1];
      current.d = fd::parse_count(tokens[2], path, line_no);
      current.n = fd::parse_count(tokens[3], path, line_no);
      current.m = fd::parse_count(tokens[4], path, line_no);
      entries.clear();
      in_case = true;
      case_line = line_no;
    } else if (key == "end") {
      if (!in_case) fd::fail(path, line_no, "'end' outside a case");
      if (tokens.size() != 1) fd::fail(path, line_no, "unexpected values after 'end'");
      cases.push_back(fd::assemble(path, case_line, line_no, std::move(current), entries));
      current = NiwCase{};
      in_case = false;
    } else {
      if (!in_case) fd::fail(path, line_no, "'" + key + "' outside a case");
      if (std::find(std::begin(known_keys), std::end(known_keys), key) == std::end(known_keys))
        fd::fail(path, line_no, "unknown key '" + key + "'");
      if (entries.count(key) != 0)
        fd::fail(
            path, line_no,
            "repeated key '" + key + "' (first on line " + std::to_string(entries[key].line) + ")");
      fd::Entry e;
      e.line = line_no;
      e.values.reserve(tokens.size() - 1);
      for (std::size_t i = 1; i < tokens.size(); ++i)
        e.values.push_back(fd::parse_double(tokens[i], path, line_no));
      entries.emplace(key, std::move(e));
    }
  }
  if (in.bad()) throw std::runtime_error("read_niw_cases: error reading '" + path + "'");
  if (in_case)
    fd::fail(path, line_no,
             "case '" + current.name + "' (line " + std::to_string(case_line) + ") has no 'end'");
  return cases;
}

// |got - expected| / max(|expected|, DBL_MIN). Equal values (including equal infinities) give 0;
// a NaN on either side gives +inf, so it never passes a tolerance.
inline double relative_error(double got, double expected) {
  if (got == expected) return 0.0;
  if (std::isnan(got) || std::isnan(expected)) return std::numeric_limits<double>::infinity();
  return std::abs(got - expected) /
         std::max(std::abs(expected), std::numeric_limits<double>::min());
}

// Array-scaled (normwise) relative error: max_ij |got_ij - expected_ij| / max_ij |expected_ij|.
// Scaling by the largest expected entry keeps entries that are near zero only by cancellation
// (off-diagonals, coordinates near the origin) from dominating. Throws std::invalid_argument on
// a shape mismatch; any NaN, or an infinity where the other side differs, gives +inf; two empty
// arrays give 0.
template <class A, class B>
double max_relative_error(const Eigen::MatrixBase<A>& got, const Eigen::MatrixBase<B>& expected) {
  if (got.rows() != expected.rows() || got.cols() != expected.cols())
    throw std::invalid_argument("max_relative_error: shapes differ (" + std::to_string(got.rows()) +
                                "x" + std::to_string(got.cols()) + " vs " +
                                std::to_string(expected.rows()) + "x" +
                                std::to_string(expected.cols()) + ")");
  double max_abs_diff = 0.0, max_expected = 0.0;
  for (Eigen::Index j = 0; j < expected.cols(); ++j)
    for (Eigen::Index i = 0; i < expected.rows(); ++i) {
      const double g = static_cast<double>(got(i, j));
      const double e = static_cast<double>(expected(i, j));
      if (g == e) {
        if (std::isfinite(e)) max_expected = std::max(max_expected, std::abs(e));
        continue;
      }
      if (std::isnan(g) || std::isnan(e) || !std::isfinite(g) || !std::isfinite(e))
        return std::numeric_limits<double>::infinity();
      max_abs_diff = std::max(max_abs_diff, std::abs(g - e));
      max_expected = std::max(max_expected, std::abs(e));
    }
  if (max_abs_diff == 0.0) return 0.0;
  return max_abs_diff / std::max(max_expected, std::numeric_limits<double>::min());
}

// Elementwise relative error: max_ij relative_error(got_ij, expected_ij). Use it where every
// entry matters on its own scale (log densities, tail probabilities spanning many decades).
template <class A, class B>
double max_elementwise_relative_error(const Eigen::MatrixBase<A>& got,
                                      const Eigen::MatrixBase<B>& expected) {
  if (got.rows() != expected.rows() || got.cols() != expected.cols())
    throw std::invalid_argument("max_elementwise_relative_error: shapes differ");
  double worst = 0.0;
  for (Eigen::Index j = 0; j < expected.cols(); ++j)
    for (Eigen::Index i = 0; i < expected.rows(); ++i)
      worst = std::max(worst, relative_error(static_cast<double>(got(i, j)),
                                             static_cast<double>(expected(i, j))));
  return worst;
}

}  // namespace baypr::test
