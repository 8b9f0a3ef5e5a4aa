// src/federation/common.hpp (internal to baypr::federation): what the federation's and the
// pooling's servers and sites share: the server's mutual-TLS credentials and allow-list check, the
// site's connection with deadlines and retries, and gRPC status codes as text.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/federated/grpc.hpp"
#include "wire.hpp"

namespace baypr::federated::common {

inline std::string status_text(const grpc::Status& s) {
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

// The allow list: at least one name, none empty, none repeated.
inline void check_sites(const char* fn, const std::vector<std::string>& sites) {
  if (sites.empty()) {
    baypr::detail::throw_invalid(fn, "options.sites", "needs at least one site name");
  }
  for (std::size_t i = 0; i < sites.size(); ++i) {
    if (sites[i].empty()) {
      baypr::detail::throw_invalid(fn, "options.sites[" + std::to_string(i) + "]", "is empty");
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (sites[j] == sites[i]) {
        baypr::detail::throw_invalid(fn, "options.sites[" + std::to_string(i) + "]",
                                     "repeats '" + sites[i] + "'");
      }
    }
  }
}

// Server credentials that require a client certificate signed by the CA (the TLS handshake
// refuses any other, and expired ones).
inline std::shared_ptr<grpc::ServerCredentials> server_credentials(const char* fn,
                                                                   const TlsFiles& tls) {
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = wire::read_file(fn, "options.tls.ca", tls.ca);
  ssl.pem_key_cert_pairs.push_back(
      {wire::read_file(fn, "options.tls.key", tls.key),
       wire::read_file(fn, "options.tls.certificate", tls.certificate)});
  return grpc::SslServerCredentials(ssl);
}

// The caller's index on the allow list (its certificate's common name), or nullopt with a
// PERMISSION_DENIED status in `refusal` and the reason in `why`.
inline std::optional<std::size_t> identify(grpc::ServerContext* context,
                                           const std::vector<std::string>& sites, const char* call,
                                           grpc::Status& refusal, std::string& why) {
  const auto auth = context->auth_context();
  const auto names =
      auth ? auth->FindPropertyValues("x509_common_name") : std::vector<grpc::string_ref>{};
  const std::string name = names.empty() ? "" : std::string(names[0].data(), names[0].size());
  for (std::size_t i = 0; i < sites.size(); ++i) {
    if (names.size() == 1 && sites[i] == name) return i;
  }
  why = std::string(call) + ": certificate common name '" + name +
        "' is not on the server's list of sites";
  refusal = grpc::Status(grpc::StatusCode::PERMISSION_DENIED, why);
  return std::nullopt;
}

// What both servers' state shares: the gRPC server on its port, the timer thread, and the mutex,
// condition variable and stopping flag their service logic waits on.
struct Host {
  std::mutex mutex;
  std::condition_variable changed;
  bool stopping = false;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::thread timer;

  // Binds `address` (port 0: a free one) with mutual TLS and serves `service`; federation_error
  // naming `fn` if it cannot.
  void listen(const char* fn, grpc::Service& service, const std::string& address,
              const TlsFiles& tls, int max_message_bytes) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort(address, server_credentials(fn, tls), &port);
    builder.SetMaxReceiveMessageSize(max_message_bytes);
    builder.RegisterService(&service);
    server = builder.BuildAndStart();
    if (!server || port == 0) {
      throw federation_error(std::string(fn) + ": cannot listen on '" + address +
                             "' (address in use, or the TLS files do not form a key pair)");
    }
  }

  // Stops serving (once): wakes every waiting call, then shuts the server down within 2 s.
  void stop() {
    {
      std::lock_guard lock(mutex);
      if (stopping) return;
      stopping = true;
      changed.notify_all();
    }
    if (server) server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }

  // stop(), then the timer thread's end: for the owner's destructor, while its state still lives.
  void close() {
    stop();
    if (timer.joinable()) timer.join();
  }
};

// A site's channel to the server (mutual TLS) and the calls on it. `fn` names the site-side
// function in errors.
template <class Service>
class Connection {
 public:
  Connection(const char* fn, const SiteOptions& o) : fn_(fn), options_(o) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = wire::read_file(fn, "options.tls.ca", o.tls.ca);
    ssl.pem_private_key = wire::read_file(fn, "options.tls.key", o.tls.key);
    ssl.pem_cert_chain = wire::read_file(fn, "options.tls.certificate", o.tls.certificate);
    grpc::ChannelArguments args;
    if (!o.server_name.empty()) args.SetSslTargetNameOverride(o.server_name);
    args.SetMaxReceiveMessageSize(-1);  // theta is as large as the model
    // Reconnect quickly to a restarted server (gRPC's default backoff grows to two minutes).
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    stub_ = Service::NewStub(grpc::CreateCustomChannel(o.server, grpc::SslCredentials(ssl), args));
  }

  // Calls `rpc` with a fresh deadline; retries UNAVAILABLE (and, for a long poll, a call that
  // timed out) until options.reconnect passes with no other answer; throws federation_error on
  // any other failure, unless `recover` (given the failed status) fills the reply and says so.
  template <class Request, class Reply, class Rpc>
  Reply call(const char* name, const Request& request, Rpc rpc, bool long_poll,
             const std::function<bool(const grpc::Status&, Reply&)>& recover = {}) {
    using Clock = std::chrono::steady_clock;
    auto give_up = Clock::now() + options_.reconnect;
    while (true) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + options_.call_deadline);
      Reply reply;
      const grpc::Status status = ((*stub_).*rpc)(&context, request, &reply);
      if (status.ok() || (recover && recover(status, reply))) return reply;
      if (long_poll && status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
        give_up = Clock::now() + options_.reconnect;
        continue;
      }
      if (status.error_code() != grpc::StatusCode::UNAVAILABLE || Clock::now() >= give_up) {
        throw federation_error(std::string(fn_) + ": " + name + " to '" + options_.server +
                               "' failed: " + status_text(status));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

 private:
  const char* fn_;
  SiteOptions options_;
  std::unique_ptr<typename Service::Stub> stub_;
};

// The site-side checks of SiteOptions.
inline void check_site_options(const char* fn, const SiteOptions& options) {
  if (options.server.empty()) baypr::detail::throw_invalid(fn, "options.server", "is empty");
  if (options.call_deadline.count() <= 0 || options.reconnect.count() < 0) {
    baypr::detail::throw_invalid(fn, "options.call_deadline",
                                 "must be > 0 ms (and options.reconnect >= 0 ms)");
  }
}

}  // namespace baypr::federated::common
