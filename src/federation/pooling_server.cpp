// src/federation/pooling_server.cpp: PoolingServer (include/baypr/federated/pooling.hpp), the
// Pooling service of proto/baypr/federation/v1/federation.proto on the synchronous gRPC server.
//
// One mutex guards the session. A session is a sequence of phases (plain: one; secure: Advertise,
// ShareKeys, SubmitMasked, Unmask). Every call is a long poll: it hands in the site's message
// once, then waits on a condition variable until its phase has closed, and answers from the
// closed phase's state. A phase closes when the last expected site calls (in that call) or at its
// deadline (on the timer thread), in close_phase, under the mutex.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <iostream>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "baypr/federated/pooling.hpp"
#include "baypr/federated/secure_aggregation.hpp"
#include "baypr/federation/v1/federation.grpc.pb.h"
#include "common.hpp"
#include "pooling_wire.hpp"
#include "wire.hpp"

namespace baypr::federated {

namespace pb = baypr::federation::v1;
namespace sec = secure;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kPool = "baypr::federated::PoolingServer";

// The phases of a session, in order (a plain session has only `submit`).
enum Phase : int { submit = 0, advertise = 0, share = 1, mask = 2, unmask = 3 };

const char* phase_name(PoolingMode mode, int phase) {
  if (mode == PoolingMode::plain) return phase == 0 ? "SubmitPlain" : "done";
  static constexpr const char* names[] = {"Advertise", "ShareKeys", "SubmitMasked", "Unmask",
                                          "done"};
  return names[std::clamp(phase, 0, 4)];
}

void check_options(const PoolingOptions& o) {
  common::check_sites(kPool, o.sites);
  const int n = static_cast<int>(o.sites.size());
  if (o.dimension < 1 || o.dimension > 4096) {
    baypr::detail::throw_invalid(kPool, "options.dimension",
                                 "must be in [1, 4096], got " + std::to_string(o.dimension));
  }
  if (o.phase_deadline.count() <= 0) {
    baypr::detail::throw_invalid(kPool, "options.phase_deadline",
                                 "must be > 0 ms, got " + std::to_string(o.phase_deadline.count()));
  }
  if (o.mode == PoolingMode::plain) {
    if (o.quorum < 0 || o.quorum > n) {
      baypr::detail::throw_invalid(kPool, "options.quorum",
                                   "must be in [0, " + std::to_string(n) +
                                       "] (0: all sites), got " + std::to_string(o.quorum));
    }
    return;
  }
  if (n < 2 || n > 255) {
    baypr::detail::throw_invalid(kPool, "options.sites",
                                 "secure pooling needs 2 to 255 sites, got " + std::to_string(n));
  }
  const int t = o.threshold == 0 ? sec::default_threshold(n) : o.threshold;
  if (t <= n / 2 || t > n) {
    baypr::detail::throw_invalid(kPool, "options.threshold",
                                 "must be in (n / 2, n] = (" + std::to_string(n / 2) + ", " +
                                     std::to_string(n) + "] (0: ceil(2n / 3)), got " +
                                     std::to_string(o.threshold));
  }
  if (o.fractional_bits < 1 || o.fractional_bits > 52) {
    baypr::detail::throw_invalid(kPool, "options.fractional_bits",
                                 "must be in [1, 52], got " + std::to_string(o.fractional_bits));
  }
  if (o.centre.size() != 0) {
    baypr::detail::check_size(kPool, "options.centre", "size", o.centre.size(), o.dimension);
    baypr::detail::check_finite(kPool, "options.centre", o.centre);
  }
}

sec::Key key_of(const std::string& bytes) {
  sec::Key k{};
  std::copy(bytes.begin(), bytes.end(), k.begin());
  return k;
}

}  // namespace

struct PoolingServer::State final : pb::Pooling::Service, common::Host {
  PoolingOptions options;
  int n = 0;
  int minimum = 0;  // sites a phase needs at its deadline (plain: quorum; secure: threshold)
  int phases = 1;
  pb::PoolConfiguration configuration;
  Eigen::VectorXd centre;
  std::size_t length = 0;  // secure: the statistics vector's length

  int phase = 0;                          // the open phase; == phases once done
  std::vector<std::vector<bool>> called;  // [phase][site]: handed in its message
  std::vector<bool> expected;             // sites expected in the open phase
  Clock::time_point opened;
  std::string failure;

  std::vector<std::optional<SufficientStatistics<double>>> plain;  // plain: by site
  std::optional<sec::SecureAggregator> aggregator;                 // secure
  std::vector<sec::Reveal> reveals;
  std::vector<int> survivors;

  PoolingResult result;
  pb::PoolResult result_message;
  std::vector<bool> told;

  [[nodiscard]] bool done() const { return phase == phases; }
  [[nodiscard]] const char* name(int p) const { return phase_name(options.mode, p); }

  void log(const std::string& line) const {
    if (options.log) std::cerr << "baypr-pooling-server: " << line << '\n';
  }

  void fail(const std::string& why) {
    failure = why;
    log("failed: " + why);
    changed.notify_all();
  }

  // Closes the open phase (mutex held): checks it has its minimum, moves the session on, and wakes
  // the waiting calls. `at_deadline`: the timer closes it with the sites that called.
  void close_phase(bool at_deadline) {
    std::vector<int> got;
    int want = 0;
    for (int i = 0; i < n; ++i) {
      want += expected[static_cast<std::size_t>(i)] ? 1 : 0;
      if (called[static_cast<std::size_t>(phase)][static_cast<std::size_t>(i)]) got.push_back(i);
    }
    const bool secure = options.mode == PoolingMode::secure;
    const int needed = secure && phase == share ? want : minimum;
    if (static_cast<int>(got.size()) < needed) {
      fail(std::string(name(phase)) + ": " + std::to_string(got.size()) + " of " +
           std::to_string(want) + " sites called within the " +
           std::to_string(options.phase_deadline.count()) + " ms deadline, " +
           std::to_string(needed) + " needed" +
           (secure && phase == share
                ? " (every site that advertised must share keys: start a new session without it)"
                : ""));
      return;
    }
    try {
      if (!secure) {
        std::vector<SufficientStatistics<double>> sent;
        for (const int i : got) sent.push_back(*plain[static_cast<std::size_t>(i)]);
        result.pooled = pooled(std::span<const SufficientStatistics<double>>(sent));
        result.sites = got;
      } else if (phase == mask) {
        survivors = aggregator->survivors();
      } else if (phase == unmask) {
        const std::vector<double> sum =
            sec::decode(aggregator->unmask(reveals), sec::FixedPoint{options.fractional_bits});
        result.pooled = sec::statistics_from(sum, options.dimension, centre);
        result.sites = survivors;
      }
    } catch (const std::exception& e) {
      fail(std::string(name(phase)) + ": " + e.what());
      return;
    }
    for (int i = 0; i < n; ++i) {
      const auto k = static_cast<std::size_t>(i);
      expected[k] = expected[k] && called[static_cast<std::size_t>(phase)][k];
    }
    log(std::string(name(phase)) + " closed" + (at_deadline ? " at its deadline" : "") + ": " +
        std::to_string(got.size()) + " of " + std::to_string(want) + " sites");
    ++phase;
    opened = Clock::now();
    if (done()) {
      *result_message.mutable_pooled() = wire::statistics_message(result.pooled);
      for (const int i : result.sites) result_message.add_sites(static_cast<std::uint32_t>(i));
      log("pooled " + std::to_string(result.pooled.count) + " rows from " +
          std::to_string(result.sites.size()) + " sites");
    }
    changed.notify_all();
  }

  void run_timer() {
    std::unique_lock lock(mutex);
    while (!stopping && !done() && failure.empty()) {
      const auto deadline = opened + options.phase_deadline;
      if (Clock::now() < deadline) {
        changed.wait_until(lock, deadline);
        continue;
      }
      close_phase(true);
    }
  }

  std::optional<std::size_t> identify(grpc::ServerContext* context, const char* call,
                                      grpc::Status& refusal) const {
    std::string why;
    const auto site = common::identify(context, options.sites, call, refusal, why);
    if (!site) log("refused " + why + " (peer " + context->peer() + ")");
    return site;
  }

  // One call of phase `p`: identifies the caller, hands in its message once (`accept(site)`,
  // under the mutex: a non-OK status refuses it and the session goes on), closes the phase when
  // every expected site has called, waits until it has closed, and answers (`answer(site)`).
  template <class Reply, class Accept, class Answer>
  grpc::Status phase_call(grpc::ServerContext* context, const char* call, PoolingMode mode, int p,
                          std::size_t request_bytes, Reply* reply, Accept accept, Answer answer) {
    grpc::Status refusal;
    const auto site = identify(context, call, refusal);
    if (!site) return refusal;
    const std::size_t i = *site;
    const std::string prefix = std::string(call) + ": ";
    if (mode != options.mode) {
      return {grpc::StatusCode::FAILED_PRECONDITION,
              prefix + "this session pools " +
                  (options.mode == PoolingMode::plain ? "plain" : "secure") + " statistics"};
    }
    std::unique_lock lock(mutex);
    if (!failure.empty()) return {grpc::StatusCode::ABORTED, prefix + failure};
    const auto k = static_cast<std::size_t>(p);
    if (p > phase) {
      return {grpc::StatusCode::FAILED_PRECONDITION,
              prefix + "out of order: the open phase is " + name(phase)};
    }
    if (p < phase && !called[k][i]) {
      return {grpc::StatusCode::FAILED_PRECONDITION,
              prefix + "the phase closed before site " + std::to_string(i) +
                  " called: it has dropped out of this session"};
    }
    if (p == phase && !called[k][i]) {
      if (!expected[i]) {
        return {grpc::StatusCode::FAILED_PRECONDITION,
                prefix + "site " + std::to_string(i) + " dropped out in an earlier phase"};
      }
      const grpc::Status accepted = accept(i);
      if (!accepted.ok()) {
        log("refused " + prefix + "site " + std::to_string(i) + ": " + accepted.error_message());
        return accepted;
      }
      called[k][i] = true;
      result.bytes_received[i] += request_bytes;
      bool all = true;
      for (std::size_t j = 0; j < expected.size(); ++j) all = all && (!expected[j] || called[k][j]);
      if (all) close_phase(false);
    }
    while (phase == p && failure.empty() && !stopping) {
      if (context->IsCancelled()) return {grpc::StatusCode::CANCELLED, prefix + "cancelled"};
      if (std::chrono::system_clock::now() >= context->deadline()) {
        return {grpc::StatusCode::DEADLINE_EXCEEDED, prefix + "the phase has not closed yet"};
      }
      changed.wait_for(lock, std::chrono::milliseconds(100));
    }
    if (!failure.empty()) return {grpc::StatusCode::ABORTED, prefix + failure};
    if (phase == p) return {grpc::StatusCode::UNAVAILABLE, prefix + "the server is shutting down"};
    answer(i);
    result.bytes_sent[i] += reply->ByteSizeLong();
    return grpc::Status::OK;
  }

  static grpc::Status invalid(const std::string& why) {
    return {grpc::StatusCode::INVALID_ARGUMENT, why};
  }

  void give_result(std::size_t i, pb::PoolResult* reply) {
    *reply = result_message;
    told[i] = true;
    changed.notify_all();
  }

  grpc::Status Join(grpc::ServerContext* context, const pb::JoinRequest*,
                    pb::PoolJoinReply* reply) override {
    grpc::Status refusal;
    const auto site = identify(context, "Join", refusal);
    if (!site) return refusal;
    reply->set_site(static_cast<std::uint32_t>(*site));
    *reply->mutable_configuration() = configuration;
    log("site " + std::to_string(*site) + " '" + options.sites[*site] + "' joined from " +
        context->peer());
    return grpc::Status::OK;
  }

  grpc::Status SubmitPlain(grpc::ServerContext* context, const pb::PoolStatistics* request,
                           pb::PoolResult* reply) override {
    return phase_call(
        context, "SubmitPlain", PoolingMode::plain, submit, request->ByteSizeLong(), reply,
        [&](std::size_t i) {
          std::string why;
          auto s =
              wire::statistics_of(*request, options.dimension, "SubmitPlain", "statistics", why);
          if (!s) return invalid(why);
          plain[i] = std::move(*s);
          return grpc::Status::OK;
        },
        [&](std::size_t i) { give_result(i, reply); });
  }

  grpc::Status Advertise(grpc::ServerContext* context, const pb::PoolKeys* request,
                         pb::PoolKeyList* reply) override {
    return phase_call(
        context, "Advertise", PoolingMode::secure, advertise, request->ByteSizeLong(), reply,
        [&](std::size_t i) {
          if (request->cipher().size() != 32 || request->mask().size() != 32) {
            return invalid("fields 'cipher' and 'mask' must hold 32 bytes each, got " +
                           std::to_string(request->cipher().size()) + " and " +
                           std::to_string(request->mask().size()));
          }
          aggregator->add_keys(
              {static_cast<int>(i), key_of(request->cipher()), key_of(request->mask())});
          return grpc::Status::OK;
        },
        [&](std::size_t) {
          for (const sec::PublicKeys& k : aggregator->keys()) {
            wire::put_keys(k, reply->add_keys());
          }
        });
  }

  grpc::Status ShareKeys(grpc::ServerContext* context, const pb::PoolShareList* request,
                         pb::PoolShareList* reply) override {
    return phase_call(
        context, "ShareKeys", PoolingMode::secure, share, request->ByteSizeLong(), reply,
        [&](std::size_t i) {
          std::set<std::uint32_t> to;
          std::vector<sec::EncryptedShare> shares;
          for (int k = 0; k < request->shares_size(); ++k) {
            const pb::PoolShare& s = request->shares(k);
            const std::string field = "field 'shares[" + std::to_string(k) + "]'";
            if (s.from() != i) return invalid(field + " is not from this site");
            if (s.to() >= static_cast<std::uint32_t>(n) || s.to() == i || !expected[s.to()] ||
                !to.insert(s.to()).second) {
              return invalid(field + " is addressed to " + std::to_string(s.to()) +
                             ", not to another site that advertised (or twice)");
            }
            if (s.box().size() != sec::share_box_bytes) {
              return invalid(field + " has a box of " + std::to_string(s.box().size()) +
                             " bytes, expected " + std::to_string(sec::share_box_bytes));
            }
            shares.push_back({static_cast<int>(i), static_cast<int>(s.to()),
                              std::vector<std::uint8_t>(s.box().begin(), s.box().end())});
          }
          const auto others =
              static_cast<std::size_t>(std::count(expected.begin(), expected.end(), true) - 1);
          if (to.size() != others) {
            return invalid("field 'shares' has " + std::to_string(to.size()) +
                           " shares, expected one for each of the " + std::to_string(others) +
                           " other sites that advertised");
          }
          aggregator->add_shares(shares);
          return grpc::Status::OK;
        },
        [&](std::size_t i) {
          for (const sec::EncryptedShare& s : aggregator->shares_for(static_cast<int>(i))) {
            wire::put_share(s, reply->add_shares());
          }
        });
  }

  grpc::Status SubmitMasked(grpc::ServerContext* context, const pb::PoolMasked* request,
                            pb::PoolSurvivors* reply) override {
    return phase_call(
        context, "SubmitMasked", PoolingMode::secure, mask, request->ByteSizeLong(), reply,
        [&](std::size_t i) {
          if (static_cast<std::size_t>(request->values_size()) != length) {
            return invalid("field 'values' has " + std::to_string(request->values_size()) +
                           " values, expected " + std::to_string(length));
          }
          aggregator->add_masked(
              {static_cast<int>(i),
               std::vector<std::uint64_t>(request->values().begin(), request->values().end())});
          return grpc::Status::OK;
        },
        [&](std::size_t) {
          for (const int s : survivors) reply->add_sites(static_cast<std::uint32_t>(s));
        });
  }

  grpc::Status Unmask(grpc::ServerContext* context, const pb::PoolReveal* request,
                      pb::PoolResult* reply) override {
    return phase_call(
        context, "Unmask", PoolingMode::secure, unmask, request->ByteSizeLong(), reply,
        [&](std::size_t i) {
          sec::Reveal r;
          r.site = static_cast<int>(i);
          // Shares of survivors' self-mask seeds and of dropped sites' mask keys, never both.
          const auto take = [&](const auto& list, const char* field, bool of_survivors,
                                std::map<int, sec::Share>& into) -> std::string {
            for (int k = 0; k < list.size(); ++k) {
              const pb::PoolRevealedShare& s = list.Get(k);
              const std::string where =
                  "field '" + std::string(field) + "[" + std::to_string(k) + "]'";
              const bool survivor = std::binary_search(survivors.begin(), survivors.end(),
                                                       static_cast<int>(s.site()));
              if (s.site() >= static_cast<std::uint32_t>(n) || survivor != of_survivors ||
                  into.count(static_cast<int>(s.site()))) {
                return where + " names site " + std::to_string(s.site()) + ", which is not a " +
                       (of_survivors ? "survivor" : "site that dropped") + " (or twice)";
              }
              if (s.x() < 1 || s.x() > 255 || s.y().size() != 32) {
                return where + " is not a share (x in 1..255, 32 bytes)";
              }
              into[static_cast<int>(s.site())] = {static_cast<std::uint8_t>(s.x()), key_of(s.y())};
            }
            return "";
          };
          std::string why = take(request->self_mask(), "self_mask", true, r.self_mask);
          if (why.empty()) why = take(request->mask_key(), "mask_key", false, r.mask_key);
          if (!why.empty()) return invalid(why);
          reveals.push_back(std::move(r));
          return grpc::Status::OK;
        },
        [&](std::size_t i) { give_result(i, reply); });
  }
};

PoolingServer::PoolingServer(PoolingOptions options) : state_(std::make_unique<State>()) {
  check_options(options);
  State& s = *state_;
  s.options = std::move(options);
  s.n = static_cast<int>(s.options.sites.size());
  const bool secure = s.options.mode == PoolingMode::secure;
  const Eigen::Index d = s.options.dimension;
  s.phases = secure ? 4 : 1;
  const int threshold =
      s.options.threshold == 0 ? sec::default_threshold(s.n) : s.options.threshold;
  s.minimum = secure ? threshold : (s.options.quorum == 0 ? s.n : s.options.quorum);
  s.centre = s.options.centre.size() == 0 ? Eigen::VectorXd::Zero(d) : s.options.centre;
  s.length = static_cast<std::size_t>(1 + d + d * (d + 1) / 2);
  s.configuration.set_mode(secure ? pb::POOLING_MODE_SECURE : pb::POOLING_MODE_PLAIN);
  s.configuration.set_dimension(static_cast<std::int32_t>(d));
  s.configuration.set_sites(static_cast<std::uint32_t>(s.n));
  if (secure) {
    s.configuration.set_threshold(static_cast<std::uint32_t>(threshold));
    s.configuration.set_fractional_bits(s.options.fractional_bits);
    wire::assign(s.configuration.mutable_centre(), s.centre);
    s.aggregator.emplace(s.n, threshold, s.length);
  }
  const auto sites = static_cast<std::size_t>(s.n);
  s.called.assign(static_cast<std::size_t>(s.phases), std::vector<bool>(sites, false));
  s.expected.assign(sites, true);
  s.plain.assign(sites, std::nullopt);
  s.told.assign(sites, false);
  s.result.bytes_received.assign(sites, 0);
  s.result.bytes_sent.assign(sites, 0);

  // The largest legitimate message: plain statistics (d + d^2 doubles), a masked input, or a
  // site's shares (one box per other site).
  const std::size_t largest = std::max(
      {8 * static_cast<std::size_t>(d + d * d), 8 * s.length, sites * (sec::share_box_bytes + 16)});
  s.listen(kPool, s, s.options.address, s.options.tls, static_cast<int>(largest + 4096));
  s.opened = Clock::now();
  s.log("listening on port " + std::to_string(s.port) + " for " + std::to_string(s.n) + " sites, " +
        (secure ? "secure" : "plain") + " pooling of dimension " + std::to_string(d));
  s.timer = std::thread([&s] { s.run_timer(); });
}

PoolingServer::~PoolingServer() {
  state_->close();
}

int PoolingServer::port() const {
  return state_->port;
}

void PoolingServer::shutdown() {
  state_->stop();
}

PoolingResult PoolingServer::wait() {
  State& s = *state_;
  std::unique_lock lock(s.mutex);
  s.changed.wait(lock, [&] { return s.done() || s.stopping || !s.failure.empty(); });
  if (!s.failure.empty()) throw federation_error(std::string(kPool) + ": " + s.failure);
  if (!s.done()) throw federation_error(std::string(kPool) + ": shut down before the end");
  // Give every contributing site the chance to fetch the result.
  s.changed.wait_for(lock, s.options.phase_deadline, [&] {
    return s.stopping || std::all_of(s.result.sites.begin(), s.result.sites.end(),
                                     [&](int i) { return s.told[static_cast<std::size_t>(i)]; });
  });
  return s.result;
}

}  // namespace baypr::federated
