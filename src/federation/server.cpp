// src/federation/server.cpp: FederationServer (include/baypr/federated/grpc.hpp), the gRPC
// service of proto/baypr/federation/v1/federation.proto on the synchronous gRPC server.
//
// One mutex guards the federation's state; NextRound is a long poll on a condition variable; a
// timer thread closes a round at its deadline. Closing a round (close_round) runs under the
// mutex: aggregate, server_step, record, checkpoint, then wake the pollers, so no site can see a
// round's theta before its checkpoint is on disk.
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "baypr/federated/grpc.hpp"
#include "baypr/federation/v1/federation.grpc.pb.h"
#include "baypr/io/detail/file.hpp"
#include "common.hpp"
#include "wire.hpp"

namespace baypr::federated {

namespace pb = baypr::federation::v1;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kServer = "baypr::federated::FederationServer";

void check_options(const Eigen::VectorXd& theta0, const ServerOptions& o) {
  detail::check_options(kServer, o.federation);
  baypr::detail::check_nonempty(kServer, "theta0", theta0.size());
  baypr::detail::check_finite(kServer, "theta0", theta0);
  common::check_sites(kServer, o.sites);
  if (o.quorum < 0 || o.quorum > static_cast<int>(o.sites.size())) {
    baypr::detail::throw_invalid(kServer, "options.quorum",
                                 "must be in [0, " + std::to_string(o.sites.size()) +
                                     "] (0: all sites), got " + std::to_string(o.quorum));
  }
  if (o.round_deadline.count() <= 0) {
    baypr::detail::throw_invalid(kServer, "options.round_deadline",
                                 "must be > 0 ms, got " + std::to_string(o.round_deadline.count()));
  }
  if (o.max_message_bytes < 0) {
    baypr::detail::throw_invalid(
        kServer, "options.max_message_bytes",
        "must be >= 0 (0: automatic), got " + std::to_string(o.max_message_bytes));
  }
  if (theta0.size() > (1 << 26)) {  // 512 MiB of doubles: past what one gRPC message carries
    baypr::detail::throw_invalid(
        kServer, "theta0",
        "has " + std::to_string(theta0.size()) + " values; at most 67108864 fit one message");
  }
}

std::string join_ids(const std::vector<int>& ids) {
  if (ids.empty()) return "none";
  std::string s;
  for (const int i : ids) {
    if (!s.empty()) s += ',';
    s += std::to_string(i);
  }
  return s;
}

}  // namespace

struct FederationServer::State final : pb::Federation::Service, common::Host {
  ServerOptions options;
  int quorum = 0;
  pb::Configuration configuration;

  int round = 0;  // the open round; == rounds once finished
  Eigen::VectorXd theta;
  meta::Adam adam;
  std::vector<std::optional<ClientUpdate>> updates;  // this round's, by site
  std::vector<bool> told_finished;
  std::vector<RoundRecord> history;
  Clock::time_point opened;
  std::size_t bytes_sent = 0, bytes_received = 0;  // this round's
  bool finished = false;
  std::string failure;  // non-empty: the federation failed

  void log(const std::string& line) const {
    if (options.log) std::cerr << "baypr-federation-server: " << line << '\n';
  }

  // The site index of the caller's certificate, or a PERMISSION_DENIED status.
  std::optional<std::size_t> identify(grpc::ServerContext* context, const char* call,
                                      grpc::Status& refusal) const {
    std::string why;
    const auto site = common::identify(context, options.sites, call, refusal, why);
    if (!site) log("refused " + why + " (peer " + context->peer() + ")");
    return site;
  }

  // Writes the state after a closed round (a temporary file beside the checkpoint, then rename).
  void write_checkpoint() const {
    if (options.checkpoint.empty()) return;
    pb::Checkpoint c;
    *c.mutable_configuration() = configuration;
    for (const auto& s : options.sites) c.add_sites(s);
    c.set_next_round(round);
    wire::assign(c.mutable_theta(), theta);
    wire::assign(c.mutable_adam_m(), adam.m);
    wire::assign(c.mutable_adam_v(), adam.v);
    c.set_adam_t(adam.t);
    for (const RoundRecord& r : history) {
      pb::RoundSummary* s = c.add_history();
      s->set_round(r.round);
      for (const int i : r.clients) s->add_clients(static_cast<std::uint32_t>(i));
      for (const int i : r.rejected) s->add_rejected(static_cast<std::uint32_t>(i));
      s->set_loss(r.loss);
      s->set_gradient_norm2(r.gradient_norm2);
      s->set_seconds(r.seconds);
      s->set_bytes_sent(r.bytes_sent);
      s->set_bytes_received(r.bytes_received);
    }
    baypr::detail::io::write_atomically(options.checkpoint, c.SerializeAsString(),
                                        "baypr::federated::FederationServer (checkpoint)");
  }

  void read_checkpoint() {
    const std::string bytes = wire::read_file(kServer, "checkpoint", options.checkpoint);
    pb::Checkpoint c;
    const auto bad = [&](const std::string& why) {
      throw baypr::io_error(std::string(kServer) + ": checkpoint '" + options.checkpoint.string() +
                            "' " + why);
    };
    if (!c.ParseFromString(bytes)) bad("is not a federation checkpoint");
    if (c.configuration().SerializeAsString() != configuration.SerializeAsString()) {
      bad("was written with other options (algorithm, rounds, local work, seed or dimension)");
    }
    if (std::vector<std::string>(c.sites().begin(), c.sites().end()) != options.sites) {
      bad("was written for another list of sites");
    }
    const int p = configuration.dimension();
    const bool moments = c.adam_t() > 0;
    if (c.next_round() < 0 || c.next_round() > configuration.rounds() || c.theta_size() != p ||
        c.adam_t() < 0 || c.adam_m_size() != (moments ? p : 0) ||
        c.adam_v_size() != (moments ? p : 0) || c.history_size() != c.next_round()) {
      bad("is inconsistent (round, sizes or history)");
    }
    round = c.next_round();
    theta = wire::to_vector(c.theta());
    if (!baypr::detail::all_finite(theta)) bad("holds a non-finite theta");
    if (moments) {
      adam.m = wire::to_vector(c.adam_m());
      adam.v = wire::to_vector(c.adam_v());
    }
    adam.t = c.adam_t();
    for (const pb::RoundSummary& s : c.history()) {
      RoundRecord r;
      r.round = s.round();
      for (const auto i : s.clients()) r.clients.push_back(static_cast<int>(i));
      for (const auto i : s.rejected()) r.rejected.push_back(static_cast<int>(i));
      r.loss = s.loss();
      r.gradient_norm2 = s.gradient_norm2();
      r.seconds = s.seconds();
      r.bytes_sent = s.bytes_sent();
      r.bytes_received = s.bytes_received();
      history.push_back(std::move(r));
    }
    finished = round == configuration.rounds();
  }

  // Aggregates the round's updates in site order, steps, records, checkpoints, opens the next
  // round. Called with the mutex held.
  void close_round() {
    std::vector<ClientUpdate> received;
    std::vector<int> ids;
    for (std::size_t i = 0; i < updates.size(); ++i) {
      if (updates[i]) {
        received.push_back(*updates[i]);
        ids.push_back(static_cast<int>(i));
      }
    }
    const Aggregate a = aggregate(received, options.federation.max_update_norm);
    RoundRecord r;
    r.round = round;
    for (const int k : a.accepted) r.clients.push_back(ids[static_cast<std::size_t>(k)]);
    for (const int k : a.rejected) r.rejected.push_back(ids[static_cast<std::size_t>(k)]);
    r.loss = a.loss;
    r.gradient_norm2 = server_step(theta, adam, a, options.federation);
    r.seconds = std::chrono::duration<double>(Clock::now() - opened).count();
    r.bytes_sent = bytes_sent;
    r.bytes_received = bytes_received;
    std::ostringstream line;
    line << "round " << round << " closed: sites " << join_ids(r.clients) << ", rejected "
         << join_ids(r.rejected) << ", loss " << r.loss << ", |g|^2 " << r.gradient_norm2;
    log(line.str());
    history.push_back(std::move(r));
    ++round;
    std::fill(updates.begin(), updates.end(), std::nullopt);
    bytes_sent = bytes_received = 0;
    opened = Clock::now();
    finished = round == configuration.rounds();
    write_checkpoint();
    changed.notify_all();
  }

  int answered() const {
    return static_cast<int>(
        std::count_if(updates.begin(), updates.end(), [](const auto& u) { return u.has_value(); }));
  }

  // Closes rounds at their deadline (with quorum) or fails the federation (without).
  void run_timer() {
    std::unique_lock lock(mutex);
    while (!stopping && !finished && failure.empty()) {
      const auto deadline = opened + options.round_deadline;
      if (Clock::now() < deadline) {
        changed.wait_until(lock, deadline);
        continue;
      }
      if (answered() >= quorum) {
        try {
          close_round();
        } catch (const std::exception& e) {
          failure = e.what();
        }
      } else {
        failure = "round " + std::to_string(round) + ": " + std::to_string(answered()) + " of " +
                  std::to_string(options.sites.size()) + " sites answered within the " +
                  std::to_string(options.round_deadline.count()) + " ms deadline, quorum " +
                  std::to_string(quorum);
        log("failed: " + failure);
      }
      changed.notify_all();
    }
  }

  grpc::Status Join(grpc::ServerContext* context, const pb::JoinRequest*,
                    pb::JoinReply* reply) override {
    grpc::Status refusal;
    const auto site = identify(context, "Join", refusal);
    if (!site) return refusal;
    reply->set_site(static_cast<std::uint32_t>(*site));
    reply->set_sites(static_cast<std::uint32_t>(options.sites.size()));
    *reply->mutable_configuration() = configuration;
    log("site " + std::to_string(*site) + " '" + options.sites[*site] + "' joined from " +
        context->peer());
    return grpc::Status::OK;
  }

  grpc::Status NextRound(grpc::ServerContext* context, const pb::NextRoundRequest*,
                         pb::RoundTask* task) override {
    grpc::Status refusal;
    const auto site = identify(context, "NextRound", refusal);
    if (!site) return refusal;
    std::unique_lock lock(mutex);
    // Wait (in slices, to notice a cancelled call) until this site has work or the run ended.
    while (!(stopping || finished || !failure.empty() || !updates[*site])) {
      if (context->IsCancelled()) {
        return {grpc::StatusCode::CANCELLED, "NextRound: cancelled by the site"};
      }
      if (std::chrono::system_clock::now() >= context->deadline()) {
        return {grpc::StatusCode::DEADLINE_EXCEEDED, "NextRound: no round opened in time"};
      }
      changed.wait_for(lock, std::chrono::milliseconds(100));
    }
    if (!failure.empty()) return {grpc::StatusCode::ABORTED, "NextRound: " + failure};
    if (finished) {
      task->set_finished(true);
      told_finished[*site] = true;
      changed.notify_all();
    } else if (stopping) {
      return {grpc::StatusCode::UNAVAILABLE, "NextRound: the server is shutting down"};
    }
    task->set_round(round);
    wire::assign(task->mutable_theta(), theta);
    bytes_sent += task->ByteSizeLong();
    return grpc::Status::OK;
  }

  grpc::Status Submit(grpc::ServerContext* context, const pb::Update* update,
                      pb::SubmitReply* reply) override {
    grpc::Status refusal;
    const auto site = identify(context, "Submit", refusal);
    if (!site) return refusal;
    const auto invalid = [&](const std::string& why) {
      log("refused Submit from site " + std::to_string(*site) + ": " + why);
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "Submit: " + why);
    };
    if (update->payload_size() != configuration.dimension()) {
      return invalid("field 'payload' has " + std::to_string(update->payload_size()) +
                     " values, expected " + std::to_string(configuration.dimension()));
    }
    if (update->episodes() < 1) {
      return invalid("field 'episodes' must be >= 1, got " + std::to_string(update->episodes()));
    }
    std::unique_lock lock(mutex);
    if (!failure.empty()) return {grpc::StatusCode::ABORTED, "Submit: " + failure};
    if (update->round() > round || update->round() < 0) {
      return invalid("field 'round' is " + std::to_string(update->round()) +
                     ", but the open round is " + std::to_string(round));
    }
    if (finished || update->round() < round) {
      reply->set_accepted(false);
      reply->set_reason("round " + std::to_string(update->round()) + " has closed");
      log("site " + std::to_string(*site) + " answered round " + std::to_string(update->round()) +
          " after it closed");
      return grpc::Status::OK;
    }
    if (updates[*site]) {
      return {grpc::StatusCode::ALREADY_EXISTS, "Submit: site " + std::to_string(*site) +
                                                    " already answered round " +
                                                    std::to_string(round)};
    }
    ClientUpdate u;
    u.payload = wire::to_vector(update->payload());
    u.episodes = update->episodes();
    u.loss = update->loss();
    updates[*site] = std::move(u);
    bytes_received += update->ByteSizeLong();
    reply->set_accepted(true);
    if (answered() == static_cast<int>(options.sites.size())) {
      try {
        close_round();
      } catch (const std::exception& e) {
        failure = e.what();
        changed.notify_all();
        return {grpc::StatusCode::INTERNAL, std::string("Submit: ") + e.what()};
      }
    }
    return grpc::Status::OK;
  }
};

FederationServer::FederationServer(const Eigen::VectorXd& theta0, ServerOptions options)
    : state_(std::make_unique<State>()) {
  check_options(theta0, options);
  State& s = *state_;
  s.options = std::move(options);
  s.quorum = s.options.quorum == 0 ? static_cast<int>(s.options.sites.size()) : s.options.quorum;
  s.configuration = wire::configuration(s.options.federation, theta0.size());
  s.theta = theta0;
  s.adam = s.options.federation.server;
  s.adam.m.resize(0);
  s.adam.v.resize(0);
  s.adam.t = 0;
  s.updates.assign(s.options.sites.size(), std::nullopt);
  s.told_finished.assign(s.options.sites.size(), false);
  if (!s.options.checkpoint.empty() && std::filesystem::exists(s.options.checkpoint)) {
    s.read_checkpoint();
    s.log("resumed from '" + s.options.checkpoint.string() + "' at round " +
          std::to_string(s.round));
  } else {
    s.finished = s.configuration.rounds() == 0;
  }

  // The largest legitimate message is an Update: the payload's doubles plus a few fields.
  const int limit = s.options.max_message_bytes > 0 ? s.options.max_message_bytes
                                                    : static_cast<int>(8 * theta0.size() + 1024);
  s.listen(kServer, s, s.options.address, s.options.tls, limit);
  s.opened = Clock::now();
  s.log("listening on port " + std::to_string(s.port) + " for " +
        std::to_string(s.options.sites.size()) + " sites, " +
        std::to_string(s.configuration.rounds()) + " rounds");
  s.timer = std::thread([&s] { s.run_timer(); });
}

FederationServer::~FederationServer() {
  state_->close();
}

int FederationServer::port() const {
  return state_->port;
}

void FederationServer::shutdown() {
  state_->stop();
}

FederatedResult FederationServer::wait() {
  State& s = *state_;
  std::unique_lock lock(s.mutex);
  s.changed.wait(lock, [&] { return s.finished || s.stopping || !s.failure.empty(); });
  if (!s.failure.empty()) throw federation_error(std::string(kServer) + ": " + s.failure);
  if (!s.finished) throw federation_error(std::string(kServer) + ": shut down before the end");
  // Give every site the chance to fetch the final theta (those that dropped out never will).
  s.changed.wait_for(lock, s.options.round_deadline, [&] {
    return s.stopping ||
           std::all_of(s.told_finished.begin(), s.told_finished.end(), [](bool b) { return b; });
  });
  return FederatedResult{s.theta, s.history};
}

}  // namespace baypr::federated
