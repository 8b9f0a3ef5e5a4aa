// baypr/federated/algorithms.hpp: federated meta-learning across sites, independent of the
// transport, with the in-process transport (every site a thread of one process).
//
//   Client { sample, step }                   a site: draws its own episodes, takes a meta-step
//   client_update(client, theta, round, id, options) -> ClientUpdate   what a site sends
//   aggregate(updates, max_norm) -> Aggregate the server's episode-weighted average
//   server_step(theta, adam, aggregate, options)                      the server's update
//   federate(theta0, clients, options) -> FederatedResult              rounds, in process
//
// Algorithms (FederatedOptions::algorithm):
//   fedsgd  (the method paper's) each site averages the meta-gradients of E = local_episodes
//           episodes at the server's theta and sends that average; the server averages the sites'
//           gradients weighted by their episode counts and takes one Adam step.
//   fedavg  each site takes local_episodes SGD meta-steps of one episode each from theta (step
//           size local_lr) and sends its change theta_E - theta; the server averages the changes
//           weighted by episode counts and applies their negative as a pseudo-gradient to Adam
//           (FedAdam, Reddi et al. ICLR 2021; server.lr = 1 with beta1 = beta2 = 0 is close to
//           plain averaging but not equal: use server_adam = false for plain FedAvg).
// The step is whatever meta/ provides (`step(theta, episode) -> MetaStep`: meta_step, a
// MetaStepper, calibrated_meta_step, a SupCon-weighted options struct, ...): this layer does not
// know the objective.
//
// Determinism: site `id` draws round r's episodes from an engine seeded derive_seed(seed, {r, id}),
// and the server reduces in site order, so a run is bitwise the same for any number of threads.
// Each Client's step is called from one thread at a time (give each site its own MetaStepper).
//
// Faults: an update that is not finite, or whose norm exceeds options.max_update_norm, is rejected
// (recorded in RoundRecord::rejected, weights renormalised over the others); a round where every
// update was rejected leaves theta unchanged. The networked transport (federated/grpc.hpp: gRPC
// with mutual TLS) builds on client_update, aggregate and server_step.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/core/random.hpp"
#include "baypr/meta/adam.hpp"
#include "baypr/meta/episode.hpp"

namespace baypr::federated {

enum class Algorithm { fedsgd, fedavg };

// A site: its episodes (drawn from its own data, with the engine it is given) and its meta-step.
struct Client {
  std::function<meta::MetaEpisode(std::mt19937_64&)> sample;
  std::function<meta::MetaStep(const Eigen::VectorXd& theta, const meta::MetaEpisode&)> step;
};

namespace detail {
inline meta::Adam adam(double lr) {
  meta::Adam a;
  a.lr = lr;
  return a;
}
}  // namespace detail

struct FederatedOptions {
  Algorithm algorithm = Algorithm::fedsgd;
  int rounds = 100;
  int local_episodes = 4;                  // E: episodes per site and round
  double local_lr = 1e-3;                  // fedavg: the sites' SGD step size
  meta::Adam server = detail::adam(1e-3);  // the server optimiser
  bool server_adam = true;                 // fedavg: false applies the averaged change as it is
  std::uint64_t seed = 0;
  int threads = 0;  // 0: one per site, at most std::thread::hardware_concurrency(); 1: serial
  // The server rejects an update whose payload norm exceeds this (an implausible update: a
  // diverged or hostile site), as it rejects a non-finite one. Infinity: no limit.
  double max_update_norm = std::numeric_limits<double>::infinity();
};

// What a site sends for one round: the average meta-gradient (fedsgd) or its change of theta
// (fedavg), how many episodes it used, and the mean outer loss over them.
struct ClientUpdate {
  Eigen::VectorXd payload;
  int episodes = 0;
  double loss = 0.0;
};

struct Aggregate {
  Eigen::VectorXd payload;    // episode-weighted mean of the accepted payloads
  std::vector<int> accepted;  // indices into the updates
  std::vector<int> rejected;  // not finite, or norm above the limit
  double loss = 0.0;          // episode-weighted mean loss of the accepted updates
  int episodes = 0;
};

struct RoundRecord {
  int round = 0;
  std::vector<int> clients;   // the sites whose updates were aggregated
  std::vector<int> rejected;  // the sites whose updates were refused (not finite, or too large)
  double loss = 0.0;          // episode-weighted mean outer loss at the round's theta
  // |aggregated gradient|^2 (fedsgd) or |averaged change / (E local_lr)|^2 (fedavg): the
  // stationarity measure of the method's convergence result.
  double gradient_norm2 = 0.0;
  double seconds = 0.0;
  std::size_t bytes_sent = 0;      // server to sites: theta to each participating site
  std::size_t bytes_received = 0;  // sites to server: payload, episode count and loss
};

struct FederatedResult {
  Eigen::VectorXd theta;
  std::vector<RoundRecord> history;
};

namespace detail {

inline void check_options(const char* fn, const FederatedOptions& o) {
  if (o.algorithm != Algorithm::fedsgd && o.algorithm != Algorithm::fedavg) {
    baypr::detail::throw_invalid(
        fn, "options.algorithm",
        "is not a valid Algorithm, got " + std::to_string(static_cast<int>(o.algorithm)));
  }
  if (o.rounds < 0) {
    baypr::detail::throw_invalid(fn, "options.rounds",
                                 "must be >= 0, got " + std::to_string(o.rounds));
  }
  if (o.local_episodes < 1) {
    baypr::detail::throw_invalid(fn, "options.local_episodes",
                                 "must be >= 1, got " + std::to_string(o.local_episodes));
  }
  if (!(std::isfinite(o.local_lr) && o.local_lr > 0.0)) {
    baypr::detail::throw_invalid(
        fn, "options.local_lr",
        "must be finite and > 0, got " + baypr::detail::format_value(o.local_lr));
  }
  if (!(o.max_update_norm > 0.0)) {
    baypr::detail::throw_invalid(
        fn, "options.max_update_norm",
        "must be > 0 (infinity: no limit), got " + baypr::detail::format_value(o.max_update_norm));
  }
  if (o.threads < 0) {
    baypr::detail::throw_invalid(fn, "options.threads",
                                 "must be >= 0, got " + std::to_string(o.threads));
  }
}

inline void check_client(const char* fn, const Client& c, std::size_t id) {
  if (!c.sample || !c.step) {
    baypr::detail::throw_invalid(fn, "clients[" + std::to_string(id) + "]",
                                 "needs both sample and step");
  }
}

// Calls work(i) for i in [0, n) on up to `threads` threads (0: one per item, capped by the
// hardware); the first exception by index is rethrown after every thread has joined.
template <class Work>
void for_each_index(std::size_t n, int threads, const Work& work) {
  std::size_t workers = threads == 0 ? n : static_cast<std::size_t>(threads);
  const unsigned hardware = std::thread::hardware_concurrency();
  if (threads == 0 && hardware > 0) workers = std::min<std::size_t>(workers, hardware);
  workers = std::max<std::size_t>(1, std::min(workers, n));
  std::vector<std::exception_ptr> errors(n);
  std::atomic<std::size_t> next{0};
  const auto run = [&] {
    for (std::size_t i = next++; i < n; i = next++) {
      try {
        work(i);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
  };
  if (workers == 1) {
    run();
  } else {
    std::vector<std::thread> pool;
    pool.reserve(workers);
    for (std::size_t w = 0; w < workers; ++w) pool.emplace_back(run);
    for (auto& t : pool) t.join();
  }
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace detail

// Site `id`'s update for `round` at the server's theta (see the header comment). A non-finite
// loss or payload is returned as it is: the server decides (aggregate rejects it).
[[nodiscard]] inline ClientUpdate client_update(const Client& client, const Eigen::VectorXd& theta,
                                                int round, std::size_t id,
                                                const FederatedOptions& options) {
  constexpr const char* fn = "baypr::federated::client_update";
  detail::check_options(fn, options);
  detail::check_client(fn, client, id);
  baypr::detail::check_finite(fn, "theta", theta);
  std::mt19937_64 rng(baypr::derive_seed(
      options.seed, {static_cast<std::uint64_t>(round), static_cast<std::uint64_t>(id)}));
  ClientUpdate out;
  out.episodes = options.local_episodes;
  const double inv = 1.0 / static_cast<double>(options.local_episodes);
  if (options.algorithm == Algorithm::fedsgd) {
    out.payload = Eigen::VectorXd::Zero(theta.size());
    for (int e = 0; e < options.local_episodes; ++e) {
      const meta::MetaStep s = client.step(theta, client.sample(rng));
      baypr::detail::check_size(fn, "step(theta, episode).gradient", "size", s.gradient.size(),
                                theta.size());
      out.payload += inv * s.gradient;
      out.loss += inv * s.outer_loss;
    }
  } else {
    Eigen::VectorXd local = theta;
    for (int e = 0; e < options.local_episodes; ++e) {
      const meta::MetaStep s = client.step(local, client.sample(rng));
      baypr::detail::check_size(fn, "step(theta, episode).gradient", "size", s.gradient.size(),
                                theta.size());
      out.loss += inv * s.outer_loss;
      local -= options.local_lr * s.gradient;
    }
    out.payload = local - theta;
  }
  return out;
}

// The episode-weighted mean of the updates that are finite and whose payload norm is at most
// max_update_norm (all of one size, at least one update).
[[nodiscard]] inline Aggregate aggregate(
    const std::vector<ClientUpdate>& updates,
    double max_update_norm = std::numeric_limits<double>::infinity()) {
  constexpr const char* fn = "baypr::federated::aggregate";
  if (updates.empty()) baypr::detail::throw_invalid(fn, "updates", "needs at least one update");
  if (!(max_update_norm > 0.0)) {
    baypr::detail::throw_invalid(
        fn, "max_update_norm",
        "must be > 0 (infinity: no limit), got " + baypr::detail::format_value(max_update_norm));
  }
  const Eigen::Index p = updates[0].payload.size();
  Aggregate out;
  out.payload = Eigen::VectorXd::Zero(p);
  for (std::size_t i = 0; i < updates.size(); ++i) {
    const ClientUpdate& u = updates[i];
    const std::string arg = "updates[" + std::to_string(i) + "]";
    baypr::detail::check_size(fn, arg + ".payload", "size", u.payload.size(), p);
    if (u.episodes < 1) {
      baypr::detail::throw_invalid(fn, arg + ".episodes",
                                   "must be >= 1, got " + std::to_string(u.episodes));
    }
    const int index = static_cast<int>(i);
    if (!std::isfinite(u.loss) || !baypr::detail::all_finite(u.payload) ||
        u.payload.norm() > max_update_norm) {
      out.rejected.push_back(index);
      continue;
    }
    out.accepted.push_back(index);
    out.episodes += u.episodes;
  }
  for (const int i : out.accepted) {
    const ClientUpdate& u = updates[static_cast<std::size_t>(i)];
    const double w = static_cast<double>(u.episodes) / static_cast<double>(out.episodes);
    out.payload += w * u.payload;
    out.loss += w * u.loss;
  }
  return out;
}

// The server's step on a round's aggregate: an Adam step on the mean gradient (fedsgd), or on
// the negated mean change (fedavg with server_adam; without, the mean change is added). Returns
// the round's stationarity measure (RoundRecord::gradient_norm2). An aggregate with no accepted
// update leaves theta and the optimiser unchanged and returns 0. Every transport calls this, so
// that they agree bitwise.
inline double server_step(Eigen::VectorXd& theta, meta::Adam& server, const Aggregate& a,
                          const FederatedOptions& options) {
  if (a.accepted.empty()) return 0.0;
  if (options.algorithm == Algorithm::fedsgd) {
    server.step(theta, a.payload);
    return a.payload.squaredNorm();
  }
  const double scale = 1.0 / (options.local_lr * options.local_episodes);
  if (options.server_adam) {
    server.step(theta, Eigen::VectorXd(-a.payload));
  } else {
    theta += a.payload;
  }
  return (scale * a.payload).squaredNorm();
}

namespace detail {

// The server's half of a round where every site answered (updates in site order): aggregate,
// step theta and options.server, and the round's record (without its seconds and bytes). The
// in-process and the MPI transports both call it, so that they agree bitwise.
inline RoundRecord reduce_round(Eigen::VectorXd& theta, FederatedOptions& options,
                                const std::vector<ClientUpdate>& updates, int round) {
  const Aggregate a = aggregate(updates, options.max_update_norm);
  RoundRecord r;
  r.round = round;
  r.clients = a.accepted;
  r.rejected = a.rejected;
  r.loss = a.loss;
  r.gradient_norm2 = server_step(theta, options.server, a, options);
  return r;
}

}  // namespace detail

// `rounds` rounds with every client participating, the clients of a round on threads of this
// process. Returns the final theta and one record per round.
[[nodiscard]] inline FederatedResult federate(const Eigen::VectorXd& theta0,
                                              const std::vector<Client>& clients,
                                              FederatedOptions options) {
  constexpr const char* fn = "baypr::federated::federate";
  detail::check_options(fn, options);
  if (clients.empty()) baypr::detail::throw_invalid(fn, "clients", "needs at least one client");
  for (std::size_t i = 0; i < clients.size(); ++i) detail::check_client(fn, clients[i], i);
  baypr::detail::check_nonempty(fn, "theta0", theta0.size());
  baypr::detail::check_finite(fn, "theta0", theta0);
  using Clock = std::chrono::steady_clock;
  FederatedResult result{theta0, {}};
  result.history.reserve(static_cast<std::size_t>(options.rounds));
  const std::size_t theta_bytes = static_cast<std::size_t>(theta0.size()) * sizeof(double);
  for (int round = 0; round < options.rounds; ++round) {
    const auto t0 = Clock::now();
    std::vector<ClientUpdate> updates(clients.size());
    detail::for_each_index(clients.size(), options.threads, [&](std::size_t i) {
      updates[i] = client_update(clients[i], result.theta, round, i, options);
    });
    RoundRecord r = detail::reduce_round(result.theta, options, updates, round);
    r.bytes_sent = clients.size() * theta_bytes;
    r.bytes_received = clients.size() * (theta_bytes + sizeof(int) + sizeof(double));
    r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    result.history.push_back(std::move(r));
  }
  return result;
}

}  // namespace baypr::federated
