// baypr/federated/grpc.hpp: federation between processes, over gRPC with mutual TLS.
//
//   FederationServer server(theta0, ServerOptions{...});   listens, runs the rounds
//   server.port()                                           the port it bound (address ":0": free)
//   server.wait() -> FederatedResult                        blocks until the last round closed
//   run_site(client, SiteOptions{...}) -> SiteResult        a site's whole participation
//
// This is the one compiled part of baypr: link baypr::federation (CMake option BAYPR_WITH_GRPC;
// Debian libgrpc++-dev, protobuf-compiler-grpc). This header includes no gRPC header. The
// messages are proto/baypr/federation/v1/federation.proto; the server executable is
// baypr-federation-server; scripts/federation-certs makes a project CA and site certificates.
//
// Security. Both ends present certificates signed by the project CA (mutual TLS): a site checks
// the server's certificate against the CA (and the server's name), the server refuses a client
// certificate that is not from its CA or has expired (the TLS handshake fails), and refuses every
// call from a certificate whose common name is not on its allow list, `sites` (PERMISSION_DENIED).
// A site's index is its name's position in that list; it seeds the site's episodes exactly as
// the in-process transport does (derive_seed(seed, {round, index})), and the server reduces in
// index order with the same aggregate and server_step, so a run where every site answers every
// round is bitwise the in-process federate() with the same options.
//
// Rounds, deadlines, quorum. A round closes when every site has answered, or round_deadline
// after it opened if at least `quorum` sites have (the weights renormalise over those); a site
// that answers after that is told its round closed and takes the next one (a straggler). If the
// quorum is not met by the deadline the server stops with an error (wait() throws). Every call a
// site makes carries a deadline. Updates that are not finite or whose norm exceeds
// options.max_update_norm are rejected and recorded (RoundRecord::rejected); messages larger than
// a round's update can be are refused by gRPC (RESOURCE_EXHAUSTED) without reaching the server's
// logic; malformed updates (wrong round, wrong size, episodes < 1) are refused with
// INVALID_ARGUMENT naming the field. The server keeps serving the others throughout.
//
// Checkpoints. With a checkpoint path the server writes its state (theta, the Adam moments, the
// history) after every closed round, atomically; started again with the same path and options it
// resumes at the next round, and the sites (which retry an unreachable server until
// SiteOptions::reconnect) finish the run with the same result as an uninterrupted one.
#pragma once

#include <Eigen/Core>
#include <chrono>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "baypr/federated/algorithms.hpp"

namespace baypr::federated {

// PEM files for one end of a mutual-TLS connection.
struct TlsFiles {
  std::filesystem::path ca;           // the project CA's certificate
  std::filesystem::path certificate;  // this end's certificate, signed by the CA
  std::filesystem::path key;          // its private key
};

struct ServerOptions {
  std::string address = "127.0.0.1:0";  // host:port; port 0 binds a free port (see port())
  TlsFiles tls;
  std::vector<std::string> sites;  // the allow list, in index order (certificate common names)
  FederatedOptions federation;     // algorithm, rounds, local work, server optimiser, seed
  int quorum = 0;                  // sites needed to close a round at its deadline; 0: all
  std::chrono::milliseconds round_deadline{60'000};
  std::filesystem::path checkpoint;  // empty: no checkpoint
  // Messages are refused above this size; 0: what the largest legitimate message needs.
  int max_message_bytes = 0;
  bool log = true;  // one line per round and per refused call on stderr
};

struct SiteOptions {
  std::string server;  // host:port
  TlsFiles tls;
  // The name the server's certificate must carry (its common name or a subject alternative
  // name); empty: the host part of `server`.
  std::string server_name;
  std::chrono::milliseconds call_deadline{120'000};  // each call; NextRound waits up to this
  // How long an unreachable server (down, restarting, refusing the handshake) is retried before
  // run_site gives up.
  std::chrono::milliseconds reconnect{30'000};
};

struct SiteResult {
  Eigen::VectorXd theta;  // the federation's final model
  int site = -1;          // this site's index on the server's list
  int rounds_submitted = 0;
  int rounds_late = 0;  // updates the server refused because their round had closed
};

// What goes wrong between processes: a round without quorum, a site the server refuses, a server
// that stays unreachable. The message names the call, the site or round, and the gRPC status.
class federation_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A federation server on its own threads. The constructor checks the options (invalid_argument
// naming the option), reads the TLS files and the checkpoint (io_error naming the file), binds and
// starts serving (federation_error if the address cannot be bound). wait() returns when the last
// round has closed and every site has been told (or a grace period of one call deadline has
// passed), and throws federation_error if a round missed its quorum or shutdown() came first.
class FederationServer {
 public:
  FederationServer(const Eigen::VectorXd& theta0, ServerOptions options);
  ~FederationServer();
  FederationServer(const FederationServer&) = delete;
  FederationServer& operator=(const FederationServer&) = delete;

  [[nodiscard]] int port() const;
  // Blocks until the federation is over; the final theta and one record per round.
  [[nodiscard]] FederatedResult wait();
  // Stops serving now (wait() then throws if the federation was not over).
  void shutdown();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Joins the federation at options.server as the site named by its certificate, and answers every
// round until the server says it is over. Throws std::runtime_error naming the call and the gRPC
// status (federation_error) when the server refuses this site or stays unreachable past
// options.reconnect; what client.sample / client.step throw propagates.
[[nodiscard]] SiteResult run_site(const Client& client, const SiteOptions& options);

}  // namespace baypr::federated
