// The federation over gRPC with mutual TLS, on real processes: each case starts
// baypr-federation-server (a separate process, a free loopback port, certificates made by
// scripts/federation-certs) and runs the sites from this process with run_site, each on its own
// thread. Sites are support/quadratic_sites.hpp's, so every result can be compared with the
// in-process federate() on the same options: bitwise, since both reduce in site order.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <Eigen/Core>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "baypr/federated/grpc.hpp"
#include "baypr/federation/v1/federation.grpc.pb.h"
#include "baypr/io/npy.hpp"
#include "support/catch.hpp"
#include "support/federation.hpp"
#include "support/messages.hpp"
#include "support/quadratic_sites.hpp"
#include "support/scratch_dir.hpp"

namespace fed = baypr::federated;
namespace fs = std::filesystem;
namespace pb = baypr::federation::v1;
using baypr::test::certificates;
using baypr::test::contains;
using namespace std::chrono_literals;

namespace {

// baypr-federation-server, with its outputs in its scratch directory.
struct Server : baypr::test::ServerProcess {
  Server() : ServerProcess(BAYPR_FEDERATION_SERVER) {}
  void start(std::vector<std::string> args) {
    std::vector<std::string> all{"--out", (work.path / "theta.npy").string(), "--history",
                                 (work.path / "history.csv").string()};
    all.insert(all.end(), args.begin(), args.end());
    ServerProcess::start(all);
  }
  [[nodiscard]] Eigen::VectorXd theta() const {
    return baypr::read_npy_matrix<double>(work.path / "theta.npy").col(0);
  }
  // The history CSV's column `column` (clients or rejected), one string per round.
  [[nodiscard]] std::vector<std::string> history(int column) const {
    std::ifstream in(work.path / "history.csv");
    std::vector<std::string> out;
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      std::stringstream row(line);
      std::string cell;
      for (int c = 0; c <= column; ++c) std::getline(row, cell, ',');
      out.push_back(cell);
    }
    return out;
  }
};

fed::SiteOptions site_options(const Server& server, const fs::path& dir, const std::string& name,
                              std::chrono::milliseconds reconnect = 20s) {
  return baypr::test::site_options(server.address(), dir, name, reconnect);
}

// run_site for each (client, name) on its own thread; results (or exceptions) in order.
std::vector<std::future<fed::SiteResult>> start_sites(const Server& server,
                                                      const std::vector<fed::Client>& clients,
                                                      const std::vector<std::string>& names) {
  std::vector<std::future<fed::SiteResult>> out;
  for (std::size_t i = 0; i < clients.size(); ++i) {
    out.push_back(std::async(std::launch::async, [&server, client = clients[i], name = names[i]] {
      return fed::run_site(client, site_options(server, certificates().project, name));
    }));
  }
  return out;
}

fed::FederatedOptions options(int rounds) {
  fed::FederatedOptions o;
  o.rounds = rounds;
  o.local_episodes = 3;
  o.seed = 11;
  o.server.lr = 0.1;
  return o;
}

const std::vector<std::string> kAbc{"site-a", "site-b", "site-c"};

// A site that sleeps `delay` in every step of the rounds in [from, to) (counted by its calls).
fed::Client slow_site(fed::Client c, int episodes, int from, int to,
                      std::chrono::milliseconds delay) {
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto step = c.step;
  c.step = [=](const Eigen::VectorXd& theta, const baypr::meta::MetaEpisode& e) {
    const int round = (*calls)++ / episodes;
    if (round >= from && round < to) std::this_thread::sleep_for(delay);
    return step(theta, e);
  };
  return c;
}

}  // namespace

TEST_CASE("federation over gRPC: three site processes' rounds equal federate() bitwise",
          "[federation]") {
  const bool fedavg = GENERATE(false, true);
  fed::FederatedOptions o = options(4);
  std::vector<std::string> args{"--sites",          "site-a,site-b,site-c",
                                "--dimension",      "3",
                                "--rounds",         "4",
                                "--local-episodes", "3",
                                "--seed",           "11",
                                "--server-lr",      "0.1",
                                "--quiet"};
  if (fedavg) {
    o.algorithm = fed::Algorithm::fedavg;
    o.local_lr = 0.2;
    args.insert(args.end(), {"--algorithm", "fedavg", "--local-lr", "0.2"});
  }
  const auto sites = baypr::test::three_sites(0.4);
  const fed::FederatedResult local = fed::federate(Eigen::VectorXd::Zero(3), sites, o);

  Server server;
  server.start(args);
  auto running = start_sites(server, sites, kAbc);
  for (std::size_t i = 0; i < running.size(); ++i) {
    const fed::SiteResult r = running[i].get();
    CHECK(r.site == static_cast<int>(i));
    CHECK(r.rounds_submitted == 4);
    CHECK(r.rounds_late == 0);
    CHECK(r.theta == local.theta);
  }
  REQUIRE(server.finish() == 0);
  CHECK(server.theta() == local.theta);
  CHECK(server.history(1) == std::vector<std::string>(4, "0 1 2"));
  // Bytes per round, counted as the protobuf messages' sizes: theta to three sites (3 doubles,
  // packed, plus the round number), and three updates back.
  for (const auto& sent : server.history(6)) CHECK(std::stoi(sent) >= 3 * 24);
  for (const auto& received : server.history(7)) CHECK(std::stoi(received) >= 3 * 24);
}

TEST_CASE("federation over gRPC: a site that never comes is left out at the round deadline",
          "[federation]") {
  // Quorum 2 of 3: every round closes at its deadline with sites 0 and 1, weights renormalised,
  // which is exactly federate() over those two sites (their indices, hence seeds, are the same).
  const auto sites = baypr::test::three_sites(0.4);
  const fed::FederatedResult local =
      fed::federate(Eigen::VectorXd::Zero(3), {sites[0], sites[1]}, options(2));
  Server server;
  server.start({"--sites", "site-a,site-b,site-c", "--dimension", "3", "--rounds", "2",
                "--local-episodes", "3", "--seed", "11", "--server-lr", "0.1", "--quorum", "2",
                "--round-deadline-ms", "800"});
  auto running = start_sites(server, {sites[0], sites[1]}, {"site-a", "site-b"});
  for (auto& r : running) CHECK(r.get().theta == local.theta);
  REQUIRE(server.finish() == 0);
  CHECK(server.theta() == local.theta);
  CHECK(server.history(1) == std::vector<std::string>(2, "0 1"));
}

TEST_CASE("federation over gRPC: a round without quorum stops the federation with a clear error",
          "[federation]") {
  const auto sites = baypr::test::three_sites(0.0);
  Server server;
  server.start({"--sites", "site-a,site-b,site-c", "--dimension", "3", "--rounds", "3",
                "--round-deadline-ms", "800"});
  auto running = start_sites(server, {sites[0], sites[1]}, {"site-a", "site-b"});
  for (auto& r : running) {
    const std::string m = baypr::test::message_of([&] { (void)r.get(); });
    CHECK(contains(m, "ABORTED"));
    CHECK(contains(m, "round 0: 2 of 3 sites answered within the 800 ms deadline, quorum 3"));
  }
  CHECK(server.finish() == 1);
  CHECK(contains(server.log(), "quorum 3"));
}

TEST_CASE("federation over gRPC: non-finite and implausibly large updates are rejected and logged",
          "[federation]") {
  auto sites = baypr::test::three_sites(0.2);
  sites[0].step = [](const Eigen::VectorXd& theta, const baypr::meta::MetaEpisode&) {
    baypr::meta::MetaStep s;
    s.gradient = Eigen::VectorXd::Constant(theta.size(), std::numeric_limits<double>::quiet_NaN());
    s.outer_loss = 1.0;
    return s;
  };
  sites[1].step = [](const Eigen::VectorXd& theta, const baypr::meta::MetaEpisode&) {
    baypr::meta::MetaStep s;
    s.gradient = Eigen::VectorXd::Constant(theta.size(), 1e6);
    s.outer_loss = 1.0;
    return s;
  };
  fed::FederatedOptions o = options(2);
  o.max_update_norm = 100.0;
  const fed::FederatedResult local = fed::federate(Eigen::VectorXd::Zero(3), sites, o);
  REQUIRE(local.history[0].rejected == std::vector<int>{0, 1});
  Server server;
  server.start({"--sites", "site-a,site-b,site-c", "--dimension", "3", "--rounds", "2",
                "--local-episodes", "3", "--seed", "11", "--server-lr", "0.1", "--max-update-norm",
                "100"});
  auto running = start_sites(server, sites, kAbc);
  for (auto& r : running) CHECK(r.get().theta == local.theta);
  REQUIRE(server.finish() == 0);
  CHECK(server.theta() == local.theta);
  CHECK(server.history(1) == std::vector<std::string>(2, "2"));
  CHECK(server.history(2) == std::vector<std::string>(2, "0 1"));
  CHECK(contains(server.log(), "rejected 0,1"));
}

TEST_CASE("federation over gRPC: a straggler's late update is refused and it rejoins next round",
          "[federation]") {
  auto sites = baypr::test::three_sites(0.2);
  // Round 1 takes site c 3 s: its round closes at the 2 s deadline without it, and c answers
  // round 2 about 1 s after that round opened, well within its deadline.
  sites[2] = slow_site(sites[2], 3, 1, 2, 1000ms);
  Server server;
  server.start({"--sites", "site-a,site-b,site-c", "--dimension", "3", "--rounds", "3",
                "--local-episodes", "3", "--quorum", "2", "--round-deadline-ms", "2000"});
  auto running = start_sites(server, sites, kAbc);
  std::vector<fed::SiteResult> results;
  for (auto& r : running) results.push_back(r.get());
  REQUIRE(server.finish() == 0);
  CHECK(server.history(1) == std::vector<std::string>{"0 1 2", "0 1", "0 1 2"});
  CHECK(results[2].rounds_late == 1);
  CHECK(results[2].rounds_submitted == 2);
  CHECK(results[0].rounds_late == 0);
  CHECK(results[2].theta == server.theta());
  CHECK(contains(server.log(), "site 2 answered round 1 after it closed"));
}

TEST_CASE("federation over gRPC: a killed server restarts from its checkpoint to the same result",
          "[federation]") {
  fed::FederatedOptions o = options(6);
  auto sites = baypr::test::three_sites(0.3);
  const fed::FederatedResult local = fed::federate(Eigen::VectorXd::Zero(3), sites, o);
  for (auto& s : sites) s = slow_site(s, 3, 0, 6, 60ms);  // ~0.2 s a round

  Server server;
  const std::string checkpoint = (server.work.path / "checkpoint.pb").string();
  const std::vector<std::string> args{"--sites",          "site-a,site-b,site-c",
                                      "--dimension",      "3",
                                      "--rounds",         "6",
                                      "--local-episodes", "3",
                                      "--seed",           "11",
                                      "--server-lr",      "0.1",
                                      "--checkpoint",     checkpoint};
  server.start(args);
  const int port = server.port;
  auto running = start_sites(server, sites, kAbc);
  // Kill it (SIGKILL: no chance to clean up) once round 2 has closed, mid-federation.
  const auto until = std::chrono::steady_clock::now() + 60s;
  while (!contains(server.log(), "round 2 closed") && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(10ms);
  }
  server.process->kill();
  CHECK(server.finish() == 128 + SIGKILL);
  CHECK(!contains(server.log(), "round 5 closed"));
  std::vector<std::string> again = args;
  again.insert(again.end(), {"--listen", "127.0.0.1:" + std::to_string(port)});
  server.start(again);
  REQUIRE(server.port == port);
  for (auto& r : running) CHECK(r.get().theta == local.theta);
  REQUIRE(server.finish() == 0);
  CHECK(contains(server.log(), "resumed from"));
  CHECK(server.theta() == local.theta);
  CHECK(server.history(1) == std::vector<std::string>(6, "0 1 2"));
}

TEST_CASE(
    "federation over gRPC: certificates from another CA, expired, or not on the list are "
    "refused and nothing of theirs is aggregated",
    "[federation]") {
  const auto sites = baypr::test::three_sites(0.0);
  Server server;
  server.start({"--sites", "site-a,site-b", "--dimension", "3", "--rounds", "2", "--quorum", "1",
                "--round-deadline-ms", "1500"});
  const auto& c = certificates();
  const auto refused = [&](const fs::path& dir, const std::string& name) {
    return std::async(std::launch::async, [&server, &sites, dir, name] {
      return baypr::test::message_of(
          [&] { (void)fed::run_site(sites[0], site_options(server, dir, name, 1500ms)); });
    });
  };
  auto other_ca = refused(c.other, "site-a");
  auto expired = refused(c.expired, "site-a");
  auto unlisted = refused(c.project, "site-z");
  auto honest = start_sites(server, {sites[1]}, {"site-b"});
  // The TLS handshake fails: the site never reaches the service and gives up as unreachable.
  CHECK(contains(other_ca.get(), "Join to '" + server.address() + "' failed: UNAVAILABLE"));
  CHECK(contains(expired.get(), "Join to '" + server.address() + "' failed: UNAVAILABLE"));
  // A valid certificate with a name the server does not know: refused by the service.
  CHECK(contains(unlisted.get(),
                 "PERMISSION_DENIED (Join: certificate common name 'site-z' is not on the "
                 "server's list of sites)"));
  CHECK(honest[0].get().site == 1);
  REQUIRE(server.finish() == 0);
  CHECK(server.history(1) == std::vector<std::string>(2, "1"));
  CHECK(contains(server.log(), "refused Join: certificate common name 'site-z'"));
}

TEST_CASE(
    "federation over gRPC: oversized and malformed messages are refused and the server "
    "keeps serving",
    "[federation]") {
  const auto sites = baypr::test::three_sites(0.2);
  const fed::FederatedResult local =
      fed::federate(Eigen::VectorXd::Zero(3), {sites[0], sites[1]}, options(2));
  Server server;
  server.start({"--sites", "site-a,site-b", "--dimension", "3", "--rounds", "2", "--local-episodes",
                "3", "--seed", "11", "--server-lr", "0.1"});
  // A hand-made client with site-a's certificate, speaking the protocol directly.
  const auto channel = baypr::test::site_channel(server.address(), "site-a");
  const auto stub = pb::Federation::NewStub(channel);
  const auto submit = [&](const pb::Update& u) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 10s);
    pb::SubmitReply reply;
    return stub->Submit(&context, u, &reply);
  };
  pb::Update huge;
  huge.mutable_payload()->Resize(100000, 0.5);  // 800 kB, where an update needs 24 bytes
  huge.set_episodes(1);
  const grpc::Status too_big = submit(huge);
  CHECK(too_big.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  pb::Update wrong;
  wrong.mutable_payload()->Resize(4, 0.5);
  wrong.set_episodes(1);
  const grpc::Status wrong_size = submit(wrong);
  CHECK(wrong_size.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(contains(wrong_size.error_message(), "field 'payload' has 4 values, expected 3"));
  wrong.mutable_payload()->Resize(3, 0.5);
  wrong.set_round(7);
  const grpc::Status future_round = submit(wrong);
  CHECK(future_round.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(contains(future_round.error_message(), "field 'round' is 7, but the open round is 0"));
  // Bytes that are no protobuf message at all, sent to the Submit method.
  grpc::GenericStub generic(channel);
  const std::string garbage = "\xff\xff\xff\xff\x0f not a message";
  grpc::Slice slice(garbage.data(), garbage.size());
  grpc::ByteBuffer request(&slice, 1), response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 10s);
  std::promise<grpc::Status> done;
  generic.UnaryCall(&context, "/baypr.federation.v1.Federation/Submit", grpc::StubOptions(),
                    &request, &response, [&done](grpc::Status s) { done.set_value(s); });
  const grpc::Status malformed = done.get_future().get();
  CHECK_FALSE(malformed.ok());
  CHECK(malformed.error_code() != grpc::StatusCode::UNAVAILABLE);
  // Nothing of that was aggregated: the honest run is federate()'s, bitwise.
  auto running = start_sites(server, {sites[0], sites[1]}, {"site-a", "site-b"});
  for (auto& r : running) CHECK(r.get().theta == local.theta);
  REQUIRE(server.finish() == 0);
  CHECK(server.theta() == local.theta);
}

TEST_CASE("federation over gRPC: bad server options and files are named", "[federation]") {
  fed::ServerOptions o;
  o.tls = {certificates().project / "ca.crt", certificates().project / "server.crt",
           certificates().project / "server.key"};
  o.sites = {"site-a", "site-a"};
  CHECK(contains(
      baypr::test::message_of([&] { fed::FederationServer s(Eigen::Vector3d::Zero(), o); }),
      "argument 'options.sites[1]' repeats 'site-a'"));
  o.sites = {"site-a"};
  o.quorum = 2;
  CHECK(contains(
      baypr::test::message_of([&] { fed::FederationServer s(Eigen::Vector3d::Zero(), o); }),
      "argument 'options.quorum' must be in [0, 1]"));
  o.quorum = 0;
  o.tls.key = certificates().project / "missing.key";
  CHECK(contains(
      baypr::test::message_of([&] { fed::FederationServer s(Eigen::Vector3d::Zero(), o); }),
      "(options.tls.key): file '" + (certificates().project / "missing.key").string() +
          "': no such file"));
  o.tls.key = certificates().project / "server.key";
  CHECK(contains(baypr::test::message_of(
                     [&] { fed::FederationServer s(Eigen::Vector3d(0.0, std::nan(""), 0.0), o); }),
                 "theta0"));
  // A checkpoint that is not one, or was written for other options, is refused, not resumed.
  ScratchDir dir("baypr-federation-checkpoint");
  o.checkpoint = dir.path / "c.pb";
  { std::ofstream(o.checkpoint) << "not a checkpoint"; }
  CHECK(contains(
      baypr::test::message_of([&] { fed::FederationServer s(Eigen::Vector3d::Zero(), o); }),
      "is not a federation checkpoint"));
  pb::Checkpoint other;
  other.mutable_configuration()->set_algorithm(pb::ALGORITHM_FEDSGD);
  other.mutable_configuration()->set_seed(12345);
  other.add_sites("site-a");
  { std::ofstream(o.checkpoint, std::ios::binary) << other.SerializeAsString(); }
  CHECK(contains(
      baypr::test::message_of([&] { fed::FederationServer s(Eigen::Vector3d::Zero(), o); }),
      "was written with other options"));
}
