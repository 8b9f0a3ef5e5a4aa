// federated/mpi.hpp: federate_mpi, run by ctest as 3 MPI ranks (mpiexec), is bitwise the
// in-process federate() with the same sites and options, for FedSGD and FedAvg, any spread of the
// sites over the ranks, with a site's rejected updates, and on every rank.
#include <mpi.h>

#include <Eigen/Core>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <vector>

#include "baypr/federated/algorithms.hpp"
#include "baypr/federated/mpi.hpp"
#include "support/catch.hpp"
#include "support/messages.hpp"
#include "support/quadratic_sites.hpp"

namespace fed = baypr::federated;

namespace {

// MPI for the whole test program, initialised on first use (sites may compute on threads; only
// this thread calls MPI) and finalised at exit.
MPI_Comm world() {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) {
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    std::atexit([] { MPI_Finalize(); });
  }
  return MPI_COMM_WORLD;
}

int rank() {
  int r = 0;
  MPI_Comm_rank(world(), &r);
  return r;
}

// Site `id` of five: quadratic sites with their own targets; site 3 sends a non-finite gradient
// in round 1 when `faulty`.
fed::Client site(int id, bool faulty) {
  const Eigen::Vector3d target(1.0 * id, 2.0 - id, 0.5 * id * id - 1.0);
  fed::Client c = baypr::test::quadratic_site(target, 0.3);
  if (faulty && id == 3) {
    auto calls = std::make_shared<int>(0);
    auto step = c.step;
    c.step = [=](const Eigen::VectorXd& theta, const baypr::meta::MetaEpisode& e) {
      baypr::meta::MetaStep s = step(theta, e);
      if ((*calls)++ / 2 == 1) s.gradient(0) = std::numeric_limits<double>::quiet_NaN();
      return s;
    };
  }
  return c;
}

fed::FederatedOptions options(fed::Algorithm algorithm) {
  fed::FederatedOptions o;
  o.algorithm = algorithm;
  o.rounds = 6;
  o.local_episodes = 2;
  o.local_lr = 0.05;
  o.seed = 21;
  o.server.lr = 0.1;
  o.threads = 1;
  return o;
}

}  // namespace

TEST_CASE("federate_mpi: bitwise federate() on every rank, FedSGD and FedAvg, with a rejected site",
          "[federation][mpi]") {
  int ranks = 0;
  MPI_Comm_size(world(), &ranks);
  INFO("rank " << rank() << " of " << ranks);
  const Eigen::VectorXd theta0 = Eigen::Vector3d(0.5, -0.5, 0.25);
  for (const auto algorithm : {fed::Algorithm::fedsgd, fed::Algorithm::fedavg}) {
    for (const bool faulty : {false, true}) {
      for (const int threads : {1, 2}) {
        auto o = options(algorithm);
        o.threads = threads;
        const fed::FederatedResult mpi = fed::federate_mpi(
            theta0, 5, [faulty](int id) { return site(id, faulty); }, o, world());
        std::vector<fed::Client> clients;
        for (int id = 0; id < 5; ++id) clients.push_back(site(id, faulty));
        const fed::FederatedResult local = fed::federate(theta0, clients, o);
        CHECK(mpi.theta == local.theta);  // on every rank
        CHECK(mpi.theta != theta0);
        if (rank() != 0) {
          CHECK(mpi.history.empty());
          continue;
        }
        REQUIRE(mpi.history.size() == local.history.size());
        for (std::size_t r = 0; r < local.history.size(); ++r) {
          CHECK(mpi.history[r].clients == local.history[r].clients);
          CHECK(mpi.history[r].rejected == local.history[r].rejected);
          CHECK(mpi.history[r].loss == local.history[r].loss);
          CHECK(mpi.history[r].gradient_norm2 == local.history[r].gradient_norm2);
        }
        CHECK(local.history[1].rejected == (faulty ? std::vector<int>{3} : std::vector<int>{}));
      }
    }
  }
}

TEST_CASE("federate_mpi: more ranks than sites, and bad arguments named on every rank",
          "[federation][mpi]") {
  // One site over three ranks: two ranks host none.
  const auto o = options(fed::Algorithm::fedsgd);
  const Eigen::VectorXd theta0 = Eigen::Vector3d::Zero();
  const auto one = fed::federate_mpi(
      theta0, 1, [](int id) { return site(id, false); }, o, world());
  CHECK(one.theta == fed::federate(theta0, {site(0, false)}, o).theta);
  CHECK(baypr::test::contains(
      baypr::test::message_of([&] {
        (void)fed::federate_mpi(
            theta0, 0, [](int id) { return site(id, false); }, o, world());
      }),
      "baypr::federated::federate_mpi: argument 'sites' must be >= 1, got 0"));
  auto bad = o;
  bad.local_episodes = 0;
  CHECK(baypr::test::contains(baypr::test::message_of([&] {
                                (void)fed::federate_mpi(
                                    theta0, 2, [](int id) { return site(id, false); }, bad,
                                    world());
                              }),
                              "argument 'options.local_episodes' must be >= 1, got 0"));
}
