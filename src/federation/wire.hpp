// src/federation/wire.hpp (internal to baypr::federation): conversions between the library's
// types and the federation protocol's messages, and the file reader both ends use.
#pragma once

#include <google/protobuf/repeated_field.h>

#include <Eigen/Core>
#include <cstddef>
#include <exception>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/federated/algorithms.hpp"
#include "baypr/federation/v1/federation.pb.h"
#include "baypr/io/detail/file.hpp"
#include "baypr/stats/sufficient_statistics.hpp"

namespace baypr::federated::wire {

namespace pb = baypr::federation::v1;

inline Eigen::VectorXd to_vector(const google::protobuf::RepeatedField<double>& values) {
  Eigen::VectorXd v(values.size());
  for (int i = 0; i < values.size(); ++i) v(i) = values.Get(i);
  return v;
}

inline void assign(google::protobuf::RepeatedField<double>* out, const Eigen::VectorXd& v) {
  out->Resize(static_cast<int>(v.size()), 0.0);
  for (Eigen::Index i = 0; i < v.size(); ++i) out->Set(static_cast<int>(i), v(i));
}

inline pb::Algorithm to_wire(Algorithm a) {
  return a == Algorithm::fedavg ? pb::ALGORITHM_FEDAVG : pb::ALGORITHM_FEDSGD;
}

// The server's FederatedOptions as a site needs them (what client_update reads).
inline pb::Configuration configuration(const FederatedOptions& o, Eigen::Index dimension) {
  pb::Configuration c;
  c.set_algorithm(to_wire(o.algorithm));
  c.set_rounds(o.rounds);
  c.set_local_episodes(o.local_episodes);
  c.set_local_lr(o.local_lr);
  c.set_seed(o.seed);
  c.set_dimension(static_cast<std::int32_t>(dimension));
  return c;
}

// A whole file (PEM, checkpoint) through io/'s reader, so every failure is an io_error in the
// project's dialect: "<fn> (<arg>): file '<path>': no such file" (or is a directory, ...).
inline std::string read_file(const char* fn, const std::string& arg,
                             const std::filesystem::path& path) {
  const std::vector<std::byte> bytes =
      baypr::detail::io::read_all(path, std::string(fn) + " (" + arg + ")");
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// Sufficient statistics as a message: the count, the mean, the scatter row by row.
inline pb::PoolStatistics statistics_message(const SufficientStatistics<double>& s) {
  pb::PoolStatistics m;
  m.set_count(static_cast<std::int64_t>(s.count));
  assign(m.mutable_mean(), s.mean);
  m.mutable_scatter()->Resize(static_cast<int>(s.scatter.size()), 0.0);
  int k = 0;
  for (Eigen::Index i = 0; i < s.scatter.rows(); ++i) {
    for (Eigen::Index j = 0; j < s.scatter.cols(); ++j)
      m.mutable_scatter()->Set(k++, s.scatter(i, j));
  }
  return m;
}

// The statistics a message describes, if it fits dimension d and the invariants of
// SufficientStatistics; otherwise an empty optional and the reason in `why` (the invariants'
// message names `fn` and `field`).
inline std::optional<SufficientStatistics<double>> statistics_of(const pb::PoolStatistics& m,
                                                                 Eigen::Index d, const char* fn,
                                                                 const std::string& field,
                                                                 std::string& why) {
  if (m.mean_size() != d || m.scatter_size() != d * d) {
    why = "field 'mean' has " + std::to_string(m.mean_size()) + " values and 'scatter' " +
          std::to_string(m.scatter_size()) + ", expected " + std::to_string(d) + " and " +
          std::to_string(d * d);
    return std::nullopt;
  }
  SufficientStatistics<double> s;
  s.count = static_cast<Eigen::Index>(m.count());
  s.mean = to_vector(m.mean());
  s.scatter.resize(d, d);
  for (Eigen::Index i = 0; i < d; ++i) {
    for (Eigen::Index j = 0; j < d; ++j) s.scatter(i, j) = m.scatter(static_cast<int>(i * d + j));
  }
  try {
    s.check(fn, field);
  } catch (const std::exception& e) {
    why = e.what();
    return std::nullopt;
  }
  return s;
}

}  // namespace baypr::federated::wire
