// src/federation/site.cpp: run_site (include/baypr/federated/grpc.hpp), a site's side of the
// federation protocol: Join, then NextRound / client_update / Submit until the server says the
// federation is over. Every call has a deadline; an unreachable server (down, restarting, or
// refusing the TLS handshake) is retried until SiteOptions::reconnect has passed without an
// answer.
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>

#include "baypr/federated/grpc.hpp"
#include "baypr/federation/v1/federation.grpc.pb.h"
#include "wire.hpp"

namespace baypr::federated {

namespace pb = baypr::federation::v1;

namespace {

constexpr const char* kSite = "baypr::federated::run_site";

std::string status_text(const grpc::Status& s) {
  static constexpr const char* names[] = {"OK",
                                          "CANCELLED",
                                          "UNKNOWN",
                                          "INVALID_ARGUMENT",
                                          "DEADLINE_EXCEEDED",
                                          "NOT_FOUND",
                                          "ALREADY_EXISTS",
                                          "PERMISSION_DENIED",
                                          "RESOURCE_EXHAUSTED",
                                          "FAILED_PRECONDITION",
                                          "ABORTED",
                                          "OUT_OF_RANGE",
                                          "UNIMPLEMENTED",
                                          "INTERNAL",
                                          "UNAVAILABLE",
                                          "DATA_LOSS",
                                          "UNAUTHENTICATED"};
  const auto code = static_cast<int>(s.error_code());
  std::string name = code >= 0 && code <= 16 ? names[code] : std::to_string(code);
  return name + (s.error_message().empty() ? "" : " (" + s.error_message() + ")");
}

class Connection {
 public:
  explicit Connection(const SiteOptions& o) : options_(o) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = wire::read_file(kSite, "options.tls.ca", o.tls.ca);
    ssl.pem_private_key = wire::read_file(kSite, "options.tls.key", o.tls.key);
    ssl.pem_cert_chain = wire::read_file(kSite, "options.tls.certificate", o.tls.certificate);
    grpc::ChannelArguments args;
    if (!o.server_name.empty()) args.SetSslTargetNameOverride(o.server_name);
    args.SetMaxReceiveMessageSize(-1);  // theta is as large as the model
    // Reconnect quickly to a restarted server (gRPC's default backoff grows to two minutes).
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    stub_ = pb::Federation::NewStub(
        grpc::CreateCustomChannel(o.server, grpc::SslCredentials(ssl), args));
  }

  // Calls `rpc` with a fresh deadline; retries UNAVAILABLE (and a NextRound long poll that timed
  // out) until options.reconnect passes with no other answer; throws on any other failure.
  template <class Request, class Reply, class Rpc>
  Reply call(const char* name, const Request& request, Rpc rpc) {
    using Clock = std::chrono::steady_clock;
    auto give_up = Clock::now() + options_.reconnect;
    while (true) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + options_.call_deadline);
      Reply reply;
      const grpc::Status status = ((*stub_).*rpc)(&context, request, &reply);
      if (status.ok()) return reply;
      if constexpr (std::is_same_v<Reply, pb::SubmitReply>) {
        // A retried Submit whose first attempt reached the server before the connection failed.
        if (status.error_code() == grpc::StatusCode::ALREADY_EXISTS) {
          reply.set_accepted(true);
          return reply;
        }
      }
      const bool long_poll_ended = status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED &&
                                   std::string(name) == "NextRound";
      if (long_poll_ended) {
        give_up = Clock::now() + options_.reconnect;
        continue;
      }
      if (status.error_code() != grpc::StatusCode::UNAVAILABLE || Clock::now() >= give_up) {
        throw federation_error(std::string(kSite) + ": " + name + " to '" + options_.server +
                               "' failed: " + status_text(status));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  pb::Federation::Stub& stub() { return *stub_; }

 private:
  SiteOptions options_;
  std::unique_ptr<pb::Federation::Stub> stub_;
};

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
  if (options.server.empty()) baypr::detail::throw_invalid(kSite, "options.server", "is empty");
  if (options.call_deadline.count() <= 0 || options.reconnect.count() < 0) {
    baypr::detail::throw_invalid(kSite, "options.call_deadline",
                                 "must be > 0 ms (and options.reconnect >= 0 ms)");
  }
  Connection connection(options);
  using Stub = pb::Federation::Stub;
  const auto joined =
      connection.call<pb::JoinRequest, pb::JoinReply>("Join", pb::JoinRequest{}, &Stub::Join);
  const pb::Configuration& c = joined.configuration();
  if (c.algorithm() != pb::ALGORITHM_FEDSGD && c.algorithm() != pb::ALGORITHM_FEDAVG) {
    throw federation_error(std::string(kSite) + ": the server's algorithm " +
                           std::to_string(c.algorithm()) + " is not one this site knows");
  }
  const FederatedOptions fed = federated_options(c);
  SiteResult result;
  result.site = static_cast<int>(joined.site());
  while (true) {
    const auto task = connection.call<pb::NextRoundRequest, pb::RoundTask>(
        "NextRound", pb::NextRoundRequest{}, &Stub::NextRound);
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
    const auto reply =
        connection.call<pb::Update, pb::SubmitReply>("Submit", update, &Stub::Submit);
    if (reply.accepted()) {
      ++result.rounds_submitted;
    } else {
      ++result.rounds_late;
    }
  }
}

}  // namespace baypr::federated
