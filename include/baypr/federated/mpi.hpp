// baypr/federated/mpi.hpp: the federation's rounds over MPI, to simulate many sites on a cluster.
//
//   federate_mpi(theta0, sites, make_client, options, comm) -> FederatedResult   (collective)
//
// Every rank of `comm` calls it with the same theta0, sites and options. Sites are spread over
// the ranks in contiguous blocks (rank r hosts sites [r S / R, (r + 1) S / R) of S sites on R
// ranks) and each rank builds only its own sites' clients, make_client(id), so a site's data
// never needs to exist on another rank. Rank 0 is also the server. A round: rank 0 broadcasts
// theta; each rank computes its sites' client_update (on options.threads threads); rank 0
// gathers the updates in site order (MPI_Gatherv), reduces them with aggregate and server_step,
// and records the round. The same code reduces in the same order as the in-process federate(),
// so the result is bitwise federate(theta0, clients, options) for any number of ranks and threads.
// Every rank returns the final theta; the history is rank 0's (other ranks get it empty).
//
// Link baypr::mpi (CMake option BAYPR_WITH_MPI; Debian libopenmpi-dev). The caller initialises
// and finalises MPI. OpenMPI 4.1 has no fault tolerance: a rank that fails aborts the run (a
// client's exception on any rank is reported and MPI_Abort is called, so no rank waits forever).
// Faults of single sites are the gRPC transport's business (federated/grpc.hpp).
#pragma once

#include <mpi.h>

#include <Eigen/Core>
#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/federated/algorithms.hpp"

namespace baypr::federated {

namespace detail {

// The first site of `rank`'s block of `sites` sites over `ranks` ranks.
[[nodiscard]] constexpr int first_site(int rank, int sites, int ranks) {
  return static_cast<int>(static_cast<long long>(rank) * sites / ranks);
}

inline void check_mpi(const char* fn, int status, const char* call) {
  if (status != MPI_SUCCESS) {
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(status, text, &length);
    baypr::detail::throw_numerical(
        fn, std::string(call) + " failed: " + std::string(text, static_cast<std::size_t>(length)));
  }
}

}  // namespace detail

[[nodiscard]] inline FederatedResult federate_mpi(const Eigen::VectorXd& theta0, int sites,
                                                  const std::function<Client(int)>& make_client,
                                                  FederatedOptions options, MPI_Comm comm) {
  constexpr const char* fn = "baypr::federated::federate_mpi";
  // Argument checks happen on every rank alike (same arguments), so all ranks throw together.
  detail::check_options(fn, options);
  if (sites < 1) {
    baypr::detail::throw_invalid(fn, "sites", "must be >= 1, got " + std::to_string(sites));
  }
  if (!make_client) baypr::detail::throw_invalid(fn, "make_client", "is empty");
  baypr::detail::check_nonempty(fn, "theta0", theta0.size());
  baypr::detail::check_finite(fn, "theta0", theta0);
  int rank = 0, ranks = 1;
  detail::check_mpi(fn, MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  detail::check_mpi(fn, MPI_Comm_size(comm, &ranks), "MPI_Comm_size");
  const int first = detail::first_site(rank, sites, ranks);
  const int count = detail::first_site(rank + 1, sites, ranks) - first;

  // A failure on one rank must not leave the others waiting in a collective.
  const auto abort_on_error = [&](auto&& work) {
    try {
      work();
    } catch (const std::exception& e) {
      std::cerr << fn << ": rank " << rank << ": " << e.what() << '\n';
      MPI_Abort(comm, 1);
    }
  };
  std::vector<Client> clients;
  abort_on_error([&] {
    for (int i = 0; i < count; ++i) {
      clients.push_back(make_client(first + i));
      detail::check_client(fn, clients.back(), static_cast<std::size_t>(first + i));
    }
  });

  // Each update travels as [episodes, loss, payload...]: p + 2 doubles; MPI counts are ints.
  const Eigen::Index p = theta0.size();
  if ((p + 2) * sites > std::numeric_limits<int>::max()) {
    baypr::detail::throw_invalid(fn, "theta0",
                                 "has " + std::to_string(p) +
                                     " values: (size + 2) x sites must fit "
                                     "an MPI count (int)");
  }
  const int width = static_cast<int>(p + 2);
  std::vector<int> counts, displacements;
  if (rank == 0) {
    for (int r = 0; r < ranks; ++r) {
      const int n = detail::first_site(r + 1, sites, ranks) - detail::first_site(r, sites, ranks);
      counts.push_back(n * width);
      displacements.push_back(detail::first_site(r, sites, ranks) * width);
    }
  }
  using Clock = std::chrono::steady_clock;
  FederatedResult result{theta0, {}};
  const std::size_t theta_bytes = static_cast<std::size_t>(p) * sizeof(double);
  std::vector<double> mine(static_cast<std::size_t>(count * width));
  std::vector<double> all(rank == 0 ? static_cast<std::size_t>(sites * width) : 0);
  for (int round = 0; round < options.rounds; ++round) {
    const auto t0 = Clock::now();
    detail::check_mpi(fn, MPI_Bcast(result.theta.data(), static_cast<int>(p), MPI_DOUBLE, 0, comm),
                      "MPI_Bcast");
    std::vector<ClientUpdate> updates(static_cast<std::size_t>(count));
    abort_on_error([&] {
      detail::for_each_index(updates.size(), options.threads, [&](std::size_t i) {
        updates[i] = client_update(clients[i], result.theta, round,
                                   static_cast<std::size_t>(first) + i, options);
      });
    });
    for (std::size_t i = 0; i < updates.size(); ++i) {
      double* row = mine.data() + i * static_cast<std::size_t>(width);
      row[0] = updates[i].episodes;
      row[1] = updates[i].loss;
      Eigen::Map<Eigen::VectorXd>(row + 2, p) = updates[i].payload;
    }
    detail::check_mpi(fn,
                      MPI_Gatherv(mine.data(), count * width, MPI_DOUBLE, all.data(), counts.data(),
                                  displacements.data(), MPI_DOUBLE, 0, comm),
                      "MPI_Gatherv");
    if (rank != 0) continue;
    std::vector<ClientUpdate> gathered(static_cast<std::size_t>(sites));
    for (std::size_t i = 0; i < gathered.size(); ++i) {
      const double* row = all.data() + i * static_cast<std::size_t>(width);
      gathered[i].episodes = static_cast<int>(row[0]);
      gathered[i].loss = row[1];
      gathered[i].payload = Eigen::Map<const Eigen::VectorXd>(row + 2, p);
    }
    RoundRecord r = detail::reduce_round(result.theta, options, gathered, round);
    r.bytes_sent = static_cast<std::size_t>(sites) * theta_bytes;
    r.bytes_received = static_cast<std::size_t>(sites) * (theta_bytes + 2 * sizeof(double));
    r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    result.history.push_back(std::move(r));
  }
  detail::check_mpi(fn, MPI_Bcast(result.theta.data(), static_cast<int>(p), MPI_DOUBLE, 0, comm),
                    "MPI_Bcast");
  return result;
}

}  // namespace baypr::federated
