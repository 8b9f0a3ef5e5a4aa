// federated/algorithms.hpp: FedSGD and FedAvg rounds in process, on a step whose optimum is known
// (support/quadratic_sites.hpp), so the algorithms' arithmetic can be checked exactly; the real
// meta-step is meta/'s business.
#include <Eigen/Core>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "baypr/core/random.hpp"
#include "baypr/federated/algorithms.hpp"
#include "support/catch.hpp"
#include "support/messages.hpp"
#include "support/quadratic_sites.hpp"

namespace fed = baypr::federated;
namespace meta = baypr::meta;
using baypr::test::contains;
using baypr::test::message_of;

using baypr::test::quadratic_site;
using baypr::test::three_sites;

TEST_CASE("federated: one FedSGD round is the server's Adam step on the sites' mean gradient",
          "[federated]") {
  const auto sites = three_sites(0.3);
  fed::FederatedOptions o;
  o.rounds = 1;
  o.local_episodes = 5;
  o.seed = 11;
  o.server.lr = 0.1;
  const Eigen::VectorXd theta0 = Eigen::Vector3d(0.5, -0.5, 0.25);

  // Each site by hand: E episodes from the engine derive_seed(seed, {round, id}).
  Eigen::VectorXd mean_gradient = Eigen::VectorXd::Zero(3);
  double mean_loss = 0.0;
  for (std::size_t id = 0; id < sites.size(); ++id) {
    std::mt19937_64 rng(baypr::derive_seed(11, {0, id}));
    Eigen::VectorXd g = Eigen::VectorXd::Zero(3);
    double loss = 0.0;
    for (int e = 0; e < 5; ++e) {
      const auto s = sites[id].step(theta0, sites[id].sample(rng));
      g += s.gradient / 5.0;
      loss += s.outer_loss / 5.0;
    }
    const fed::ClientUpdate u = fed::client_update(sites[id], theta0, 0, id, o);
    CHECK(u.episodes == 5);
    CHECK((u.payload - g).norm() < 1e-15);
    CHECK(std::abs(u.loss - loss) < 1e-15);
    mean_gradient += g / 3.0;
    mean_loss += loss / 3.0;
  }
  Eigen::VectorXd expected = theta0;
  meta::Adam adam = o.server;
  adam.step(expected, mean_gradient);

  const fed::FederatedResult r = fed::federate(theta0, sites, o);
  REQUIRE(r.history.size() == 1);
  CHECK((r.theta - expected).norm() < 1e-14);
  const fed::RoundRecord& rec = r.history[0];
  CHECK(rec.round == 0);
  CHECK(rec.clients == std::vector<int>{0, 1, 2});
  CHECK(rec.rejected.empty());
  CHECK(std::abs(rec.loss - mean_loss) < 1e-14);
  CHECK(std::abs(rec.gradient_norm2 - mean_gradient.squaredNorm()) < 1e-13);
  CHECK(rec.bytes_sent == 3 * 3 * sizeof(double));
  CHECK(rec.bytes_received == 3 * (3 * sizeof(double) + sizeof(int) + sizeof(double)));
  CHECK(rec.seconds >= 0.0);
}

TEST_CASE("federated: FedSGD and FedAvg reach the sites' common optimum; threads change nothing",
          "[federated]") {
  // Noise-free sites: the minimiser of the summed losses is the mean of the targets.
  const Eigen::VectorXd optimum = Eigen::Vector3d(1.0, 1.0, 1.0);
  for (const auto algorithm : {fed::Algorithm::fedsgd, fed::Algorithm::fedavg}) {
    fed::FederatedOptions o;
    o.algorithm = algorithm;
    o.rounds = 400;
    o.local_episodes = 2;
    o.local_lr = 0.1;
    o.server.lr = 0.05;
    o.seed = 3;
    const auto r = fed::federate(Eigen::VectorXd::Zero(3), three_sites(0.0), o);
    INFO("algorithm " << static_cast<int>(algorithm));
    CHECK((r.theta - optimum).norm() < 1e-3);
    CHECK(r.history.back().gradient_norm2 < 1e-4);
    CHECK(r.history.front().gradient_norm2 > 1.0);
  }
  // With noisy episodes the run is a function of the seed only: serial and threaded runs agree
  // bitwise, and another seed differs.
  for (const auto algorithm : {fed::Algorithm::fedsgd, fed::Algorithm::fedavg}) {
    fed::FederatedOptions o;
    o.algorithm = algorithm;
    o.rounds = 20;
    o.seed = 5;
    o.threads = 1;
    const auto serial = fed::federate(Eigen::VectorXd::Zero(3), three_sites(0.5), o);
    o.threads = 3;
    const auto threaded = fed::federate(Eigen::VectorXd::Zero(3), three_sites(0.5), o);
    CHECK(serial.theta == threaded.theta);
    for (std::size_t i = 0; i < serial.history.size(); ++i) {
      CHECK(serial.history[i].loss == threaded.history[i].loss);
    }
    o.seed = 6;
    CHECK(fed::federate(Eigen::VectorXd::Zero(3), three_sites(0.5), o).theta != serial.theta);
  }
}

TEST_CASE("federated: plain FedAvg of one local step is SGD on the sites' mean gradient",
          "[federated]") {
  const auto sites = three_sites(0.0);
  fed::FederatedOptions o;
  o.algorithm = fed::Algorithm::fedavg;
  o.rounds = 1;
  o.local_episodes = 1;
  o.local_lr = 0.2;
  o.server_adam = false;
  const Eigen::VectorXd theta0 = Eigen::Vector3d(0.0, 1.0, 2.0);
  // Mean of (theta - t_c) over the three targets is theta - (1, 1, 1).
  const Eigen::VectorXd expected = theta0 - 0.2 * (theta0 - Eigen::Vector3d(1.0, 1.0, 1.0));
  const auto r = fed::federate(theta0, sites, o);
  CHECK((r.theta - expected).norm() < 1e-15);
  // The stationarity measure is the mean change over (E lr): the mean gradient's squared norm.
  CHECK(std::abs(r.history[0].gradient_norm2 -
                 (theta0 - Eigen::Vector3d(1.0, 1.0, 1.0)).squaredNorm()) < 1e-13);
}

TEST_CASE("federated: aggregate weights by episodes and rejects non-finite or too large updates",
          "[federated]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<fed::ClientUpdate> u = {{Eigen::Vector2d(1.0, 0.0), 1, 2.0},
                                      {Eigen::Vector2d(nan, 0.0), 5, 1.0},
                                      {Eigen::Vector2d(0.0, 4.0), 3, 6.0}};
  const fed::Aggregate a = fed::aggregate(u);
  CHECK(a.accepted == std::vector<int>{0, 2});
  CHECK(a.rejected == std::vector<int>{1});
  CHECK(a.episodes == 4);
  CHECK((a.payload - Eigen::Vector2d(0.25, 3.0)).norm() < 1e-15);
  CHECK(std::abs(a.loss - 5.0) < 1e-15);
  // An implausibly large update (norm 4 > 3.5) is rejected like a non-finite one; the limit is
  // inclusive (norm 1 <= 1 passes).
  const fed::Aggregate limited = fed::aggregate(u, 3.5);
  CHECK(limited.accepted == std::vector<int>{0});
  CHECK(limited.rejected == std::vector<int>{1, 2});
  CHECK(limited.payload == Eigen::Vector2d(1.0, 0.0));
  CHECK(fed::aggregate(u, 1.0).accepted == std::vector<int>{0});
  CHECK(contains(message_of([&] { (void)fed::aggregate(u, 0.0); }),
                 "argument 'max_update_norm' must be > 0"));
  CHECK(contains(message_of([&] { (void)fed::aggregate(u, nan); }),
                 "argument 'max_update_norm' must be > 0"));
  u[0].loss = std::numeric_limits<double>::infinity();
  CHECK(fed::aggregate(u).accepted == std::vector<int>{2});

  // In a run: a site whose step diverges is left out of every round, and the others' average is
  // what a run without it computes (noise-free sites: the seeds do not matter).
  auto sites = three_sites(0.0);
  fed::Client broken = quadratic_site(Eigen::Vector3d::Zero(), 0.0);
  broken.step = [nan](const Eigen::VectorXd& theta, const meta::MetaEpisode&) {
    meta::MetaStep s;
    s.gradient = Eigen::VectorXd::Constant(theta.size(), nan);
    return s;
  };
  fed::FederatedOptions o;
  o.rounds = 3;
  o.threads = 2;
  const auto without = fed::federate(Eigen::VectorXd::Zero(3), sites, o);
  sites.insert(sites.begin() + 1, broken);
  const auto with = fed::federate(Eigen::VectorXd::Zero(3), sites, o);
  CHECK(with.theta == without.theta);
  CHECK(with.history[2].clients == std::vector<int>{0, 2, 3});
  CHECK(with.history[2].rejected == std::vector<int>{1});
  // Every update rejected: theta stays.
  const auto none = fed::federate(Eigen::Vector3d(1.0, 2.0, 3.0), {broken}, o);
  CHECK(none.theta == Eigen::Vector3d(1.0, 2.0, 3.0));
  CHECK(none.history[0].clients.empty());
}

TEST_CASE("federated: bad input is named; a site's exception reaches the caller", "[federated]") {
  const auto sites = three_sites(0.0);
  const Eigen::VectorXd theta0 = Eigen::VectorXd::Zero(3);
  const auto message = [&](const fed::FederatedOptions& o) {
    return message_of([&] { (void)fed::federate(theta0, sites, o); });
  };
  fed::FederatedOptions o;
  o.rounds = -1;
  CHECK(contains(message(o), "baypr::federated::federate: argument 'options.rounds' must be >= 0"));
  o = {};
  o.local_episodes = 0;
  CHECK(contains(message(o), "argument 'options.local_episodes' must be >= 1, got 0"));
  o = {};
  o.local_lr = 0.0;
  CHECK(contains(message(o), "argument 'options.local_lr' must be finite and > 0"));
  o = {};
  o.threads = -2;
  CHECK(contains(message(o), "argument 'options.threads'"));
  o = {};
  o.max_update_norm = -1.0;
  CHECK(
      contains(message(o), "argument 'options.max_update_norm' must be > 0 (infinity: no limit)"));
  o = {};
  o.algorithm = static_cast<fed::Algorithm>(7);
  CHECK(contains(message(o), "argument 'options.algorithm' is not a valid Algorithm, got 7"));
  CHECK(contains(message_of([&] { (void)fed::federate(theta0, {}, {}); }),
                 "argument 'clients' needs at least one client"));
  CHECK(contains(message_of([&] {
                   (void)fed::federate(theta0, {sites[0], fed::Client{sites[1].sample, {}}}, {});
                 }),
                 "argument 'clients[1]' needs both sample and step"));
  CHECK(contains(message_of([&] {
                   (void)fed::federate(
                       Eigen::Vector3d(0.0, std::numeric_limits<double>::infinity(), 0.0), sites,
                       {});
                 }),
                 "argument 'theta0'"));
  CHECK(contains(message_of([&] { (void)fed::aggregate({}); }),
                 "baypr::federated::aggregate: argument 'updates' needs at least one update"));
  CHECK(contains(message_of([&] {
                   (void)fed::aggregate(
                       {{Eigen::Vector2d::Zero(), 1, 0.0}, {Eigen::Vector3d::Zero(), 1, 0.0}});
                 }),
                 "argument 'updates[1].payload' has size 3, expected 2"));
  CHECK(contains(message_of([&] {
                   (void)fed::aggregate({{Eigen::Vector2d::Zero(), 0, 0.0}});
                 }),
                 "argument 'updates[0].episodes' must be >= 1, got 0"));
  // A step of the wrong size, and a step that throws: the error reaches the caller after every
  // thread has joined.
  fed::Client short_step = sites[0];
  short_step.step = [](const Eigen::VectorXd&, const meta::MetaEpisode&) {
    meta::MetaStep s;
    s.gradient = Eigen::VectorXd::Zero(2);
    return s;
  };
  CHECK(contains(
      message_of([&] {
        (void)fed::federate(theta0, {sites[0], short_step}, {});
      }),
      "baypr::federated::client_update: argument 'step(theta, episode).gradient' has size 2, "
      "expected 3"));
  fed::Client throwing = sites[0];
  throwing.step = [](const Eigen::VectorXd&, const meta::MetaEpisode&) -> meta::MetaStep {
    throw std::runtime_error("site failed");
  };
  fed::FederatedOptions threaded;
  threaded.threads = 3;
  CHECK(message_of([&] {
          (void)fed::federate(theta0, {sites[0], throwing, sites[1]}, threaded);
        }) == "site failed");
}
