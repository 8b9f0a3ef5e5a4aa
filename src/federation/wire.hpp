// src/federation/wire.hpp (internal to baypr::federation): conversions between the library's
// types and the federation protocol's messages, and the PEM file reader both ends use.
#pragma once

#include <google/protobuf/repeated_field.h>

#include <Eigen/Core>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "baypr/core/errors.hpp"
#include "baypr/federated/algorithms.hpp"
#include "baypr/federation/v1/federation.pb.h"

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

inline std::string read_file(const char* fn, const std::string& arg,
                             const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw baypr::io_error(std::string(fn) + ": cannot read " + arg + " '" + path.string() + "'");
  }
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace baypr::federated::wire
