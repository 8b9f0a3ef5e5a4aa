// src/federation/wire.hpp (internal to baypr::federation): conversions between the library's
// types and the federation protocol's messages, and the file reader both ends use.
#pragma once

#include <google/protobuf/repeated_field.h>

#include <Eigen/Core>
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/federated/algorithms.hpp"
#include "baypr/federation/v1/federation.pb.h"
#include "baypr/io/detail/file.hpp"

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

}  // namespace baypr::federated::wire
