// src/federation/site.cpp: run_site (include/baypr/federated/grpc.hpp), a site's side of the
// federation protocol: Join, then NextRound / client_update / Submit until the server says the
// federation is over. Every call has a deadline; an unreachable server (down, restarting, or
// refusing the TLS handshake) is retried until SiteOptions::reconnect has passed without an
// answer.
#include <string>

#include "baypr/federated/grpc.hpp"
#include "baypr/federation/v1/federation.grpc.pb.h"
#include "common.hpp"
#include "wire.hpp"

namespace baypr::federated {

namespace pb = baypr::federation::v1;

namespace {

constexpr const char* kSite = "baypr::federated::run_site";

FederatedOptions federated_options(const pb::Configuration& c) {
  FederatedOptions o;
  o.algorithm = c.algorithm() == pb::ALGORITHM_FEDAVG ? Algorithm::fedavg : Algorithm::fedsgd;
  o.rounds = c.rounds();
  o.local_episodes = c.local_episodes();
  o.local_lr = c.local_lr();
  o.seed = c.seed();
  return o;
}

}  // namespace

SiteResult run_site(const Client& client, const SiteOptions& options) {
  detail::check_client(kSite, client, 0);
  common::check_site_options(kSite, options);
  common::Connection<pb::Federation> connection(kSite, options);
  using Stub = pb::Federation::Stub;
  const auto joined = connection.call<pb::JoinRequest, pb::JoinReply>("Join", pb::JoinRequest{},
                                                                      &Stub::Join, false);
  const pb::Configuration& c = joined.configuration();
  if (c.algorithm() != pb::ALGORITHM_FEDSGD && c.algorithm() != pb::ALGORITHM_FEDAVG) {
    throw federation_error(std::string(kSite) + ": the server's algorithm " +
                           std::to_string(c.algorithm()) + " is not one this site knows");
  }
  const FederatedOptions fed = federated_options(c);
  SiteResult result;
  result.site = static_cast<int>(joined.site());
  while (true) {
    // A long poll: the call waits on the server until a round opens.
    const auto task = connection.call<pb::NextRoundRequest, pb::RoundTask>(
        "NextRound", pb::NextRoundRequest{}, &Stub::NextRound, true);
    if (task.theta_size() != c.dimension()) {
      throw federation_error(std::string(kSite) + ": the server sent theta of size " +
                             std::to_string(task.theta_size()) + ", expected " +
                             std::to_string(c.dimension()));
    }
    if (task.finished()) {
      result.theta = wire::to_vector(task.theta());
      return result;
    }
    const ClientUpdate u = client_update(client, wire::to_vector(task.theta()), task.round(),
                                         static_cast<std::size_t>(result.site), fed);
    pb::Update update;
    update.set_round(task.round());
    update.set_episodes(u.episodes);
    update.set_loss(u.loss);
    wire::assign(update.mutable_payload(), u.payload);
    // ALREADY_EXISTS: a retried Submit whose first attempt reached the server before the
    // connection failed.
    const auto reply = connection.call<pb::Update, pb::SubmitReply>(
        "Submit", update, &Stub::Submit, false, [](const grpc::Status& s, pb::SubmitReply& r) {
          r.set_accepted(s.error_code() == grpc::StatusCode::ALREADY_EXISTS);
          return r.accepted();
        });
    if (reply.accepted()) {
      ++result.rounds_submitted;
    } else {
      ++result.rounds_late;
    }
  }
}

}  // namespace baypr::federated
