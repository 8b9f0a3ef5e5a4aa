// Pooling of the sites' statistics over gRPC with mutual TLS (federated/pooling.hpp), between
// baypr-pooling-server and sites on threads of this process, on loopback: plain pooling is bitwise
// the in-process pooled(), secure pooling bitwise the in-process secure_pool() and within the
// encoding's precision of the plain result, with dropped and silent sites, refused messages, and a
// session without its threshold.
#include <grpcpp/grpcpp.h>

#include <Eigen/Core>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "baypr/federated/pooling.hpp"
#include "baypr/federated/secure_aggregation.hpp"
#include "baypr/federation/v1/federation.grpc.pb.h"
#include "baypr/io/npy.hpp"
#include "support/catch.hpp"
#include "support/federation.hpp"
#include "support/messages.hpp"

namespace fed = baypr::federated;
namespace sec = baypr::federated::secure;
namespace pb = baypr::federation::v1;
using baypr::SufficientStatistics;
using baypr::test::certificates;
using baypr::test::contains;
using namespace std::chrono_literals;

namespace {

const std::vector<std::string> kSites{"site-a", "site-b", "site-c", "site-d"};

// Rows of `sites` sites in d dimensions (5 + 9 s rows each, means near 2 with site offsets).
std::vector<Eigen::MatrixXd> site_rows(int sites, Eigen::Index d) {
  std::mt19937_64 rng(99);
  std::normal_distribution<double> n01(0.0, 1.0);
  std::vector<Eigen::MatrixXd> out;
  for (int s = 0; s < sites; ++s) {
    Eigen::MatrixXd z(5 + 9 * s, d);
    for (Eigen::Index i = 0; i < z.rows(); ++i) {
      for (Eigen::Index j = 0; j < d; ++j) z(i, j) = 2.0 + 0.5 * s + n01(rng);
    }
    out.push_back(z);
  }
  return out;
}

std::vector<SufficientStatistics<double>> statistics(const std::vector<Eigen::MatrixXd>& rows) {
  std::vector<SufficientStatistics<double>> out;
  for (const auto& z : rows) out.push_back(SufficientStatistics<double>::of(z));
  return out;
}

bool same(const SufficientStatistics<double>& a, const SufficientStatistics<double>& b) {
  return a.count == b.count && a.mean == b.mean && a.scatter == b.scatter;
}

double distance(const SufficientStatistics<double>& a, const SufficientStatistics<double>& b) {
  return std::max((a.mean - b.mean).cwiseAbs().maxCoeff(),
                  (a.scatter - b.scatter).cwiseAbs().maxCoeff());
}

// The pooled statistics a program wrote with --out DIR (mean.npy, scatter.npy, pooled.csv).
SufficientStatistics<double> read_pooled(const std::filesystem::path& dir) {
  SufficientStatistics<double> s;
  s.mean = baypr::read_npy_matrix<double>(dir / "mean.npy").col(0);
  s.scatter = baypr::read_npy_matrix<double>(dir / "scatter.npy");
  std::ifstream in(dir / "pooled.csv");
  std::string label;
  std::getline(in, label, ',');
  in >> s.count;
  return s;
}

// baypr-pooling-server, with its outputs in its scratch directory.
struct PoolServer : baypr::test::ServerProcess {
  PoolServer() : ServerProcess(BAYPR_POOLING_SERVER) {}
  void start(std::vector<std::string> args) {
    args.insert(args.end(), {"--out", (work.path / "out").string()});
    ServerProcess::start(args);
  }
  [[nodiscard]] SufficientStatistics<double> pooled() const {
    return read_pooled(work.path / "out");
  }
  // Bytes the server received from each site (pooled.csv).
  [[nodiscard]] std::vector<std::size_t> bytes_received() const {
    std::ifstream in(work.path / "out" / "pooled.csv");
    std::string line;
    for (int k = 0; k < 3; ++k) std::getline(in, line);
    std::vector<std::size_t> out;
    while (std::getline(in, line)) {
      const auto a = line.find(',');
      out.push_back(std::stoul(line.substr(a + 1, line.find(',', a + 1) - a - 1)));
    }
    return out;
  }
};

fed::SiteOptions site_options(const PoolServer& server, const std::string& name) {
  return baypr::test::site_options(server.address(), certificates().project, name, 20s);
}

// pool_site for the first stats.size() names of kSites, each on its own thread.
std::vector<std::future<fed::PoolSiteResult>> start_sites(
    const PoolServer& server, const std::vector<SufficientStatistics<double>>& stats,
    std::size_t first = 0) {
  std::vector<std::future<fed::PoolSiteResult>> out;
  for (std::size_t i = first; i < stats.size(); ++i) {
    out.push_back(std::async(std::launch::async, [&server, s = stats[i], name = kSites[i]] {
      return fed::pool_site(s, site_options(server, name));
    }));
  }
  return out;
}

// A site that speaks the secure protocol by hand and stops after phase `last` (1: ShareKeys, it
// drops out before sending its input; 2: SubmitMasked, it stays silent at Unmask).
void partial_secure_site(const std::string& address, const std::string& name,
                         const SufficientStatistics<double>& s, int last) {
  const auto stub = pb::Pooling::NewStub(baypr::test::site_channel(address, name));
  const auto call = [&](auto rpc, const auto& request, auto& reply) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 30s);
    const grpc::Status status = ((*stub).*rpc)(&context, request, &reply);
    REQUIRE(status.ok());
  };
  pb::PoolJoinReply joined;
  call(&pb::Pooling::Stub::Join, pb::JoinRequest{}, joined);
  const auto& c = joined.configuration();
  const int n = static_cast<int>(c.sites());
  const Eigen::VectorXd centre =
      Eigen::Map<const Eigen::VectorXd>(c.centre().data(), c.centre_size());
  sec::SecureSite me(static_cast<int>(joined.site()), n, static_cast<int>(c.threshold()));
  const sec::PublicKeys own = me.advertise();
  pb::PoolKeys advert;
  advert.set_cipher(std::string(own.cipher.begin(), own.cipher.end()));
  advert.set_mask(std::string(own.mask.begin(), own.mask.end()));
  pb::PoolKeyList key_list;
  call(&pb::Pooling::Stub::Advertise, advert, key_list);
  std::vector<sec::PublicKeys> keys;
  for (const auto& k : key_list.keys()) {
    sec::PublicKeys p;
    p.site = static_cast<int>(k.site());
    std::copy(k.cipher().begin(), k.cipher().end(), p.cipher.begin());
    std::copy(k.mask().begin(), k.mask().end(), p.mask.begin());
    keys.push_back(p);
  }
  pb::PoolShareList outgoing, incoming;
  for (const auto& e : me.share_keys(keys)) {
    auto* m = outgoing.add_shares();
    m->set_from(static_cast<std::uint32_t>(e.from));
    m->set_to(static_cast<std::uint32_t>(e.to));
    m->set_box(std::string(e.box.begin(), e.box.end()));
  }
  call(&pb::Pooling::Stub::ShareKeys, outgoing, incoming);
  if (last == 1) return;
  std::vector<sec::EncryptedShare> received;
  for (const auto& e : incoming.shares()) {
    received.push_back({static_cast<int>(e.from()), static_cast<int>(e.to()),
                        std::vector<std::uint8_t>(e.box().begin(), e.box().end())});
  }
  const auto y = me.mask(
      sec::encode(sec::statistics_vector(s, centre), sec::FixedPoint{c.fractional_bits()}, n),
      received);
  pb::PoolMasked masked;
  masked.mutable_values()->Add(y.values.begin(), y.values.end());
  pb::PoolSurvivors survivors;
  call(&pb::Pooling::Stub::SubmitMasked, masked, survivors);
}

}  // namespace

TEST_CASE("pooling over gRPC: plain pooling is bitwise pooled()", "[federation][pooling]") {
  constexpr Eigen::Index d = 5;
  const auto rows = site_rows(3, d);
  const auto stats = statistics(rows);
  const auto local = baypr::pooled(std::span<const SufficientStatistics<double>>(stats));
  PoolServer server;
  server.start({"--sites", "site-a,site-b,site-c", "--dimension", "5", "--plain"});
  auto running = start_sites(server, stats);
  for (std::size_t i = 0; i < running.size(); ++i) {
    const fed::PoolSiteResult r = running[i].get();
    CHECK(r.site == static_cast<int>(i));
    CHECK(r.sites == std::vector<int>{0, 1, 2});
    CHECK(same(r.pooled, local));
  }
  REQUIRE(server.finish() == 0);
  CHECK(same(server.pooled(), local));
  // That pooled() gives the union's posterior is stats_pooling.test.cpp's to check.
}

TEST_CASE(
    "pooling over gRPC: secure pooling is bitwise secure_pool(), within the encoding's "
    "precision of the plain result, and sends less than twice the plain statistics",
    "[federation][pooling]") {
  constexpr Eigen::Index d = 16;
  const auto stats = statistics(site_rows(3, d));
  const Eigen::VectorXd centre = Eigen::VectorXd::Constant(d, 2.5);
  ScratchDir dir("baypr-pooling-centre");
  baypr::write_npy(dir.path / "centre.npy", centre);
  sec::SecurePoolOptions in_process;
  in_process.centre = centre;
  const auto expected = sec::secure_pool(stats, in_process);

  PoolServer secure, plain;
  secure.start({"--sites", "site-a,site-b,site-c", "--dimension", "16", "--centre",
                (dir.path / "centre.npy").string()});
  auto running = start_sites(secure, stats);
  for (auto& r : running) {
    const fed::PoolSiteResult got = r.get();
    CHECK(got.sites == std::vector<int>{0, 1, 2});
    CHECK(same(got.pooled, expected.pooled));
  }
  REQUIRE(secure.finish() == 0);
  CHECK(same(secure.pooled(), expected.pooled));
  // The stated precision: 3 sites, f = 32.
  const auto exact = baypr::pooled(std::span<const SufficientStatistics<double>>(stats));
  CHECK(secure.pooled().count == exact.count);
  CHECK(distance(secure.pooled(), exact) < 4 * 3 * std::ldexp(1.0, -33));

  plain.start({"--sites", "site-a,site-b,site-c", "--dimension", "16", "--plain"});
  auto plain_sites = start_sites(plain, stats);
  for (auto& r : plain_sites) CHECK(same(r.get().pooled, exact));
  REQUIRE(plain.finish() == 0);
  const auto secure_bytes = secure.bytes_received();
  const auto plain_bytes = plain.bytes_received();
  REQUIRE(secure_bytes.size() == 3);
  REQUIRE(plain_bytes.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    INFO("site " << i << ": secure " << secure_bytes[i] << " bytes, plain " << plain_bytes[i]);
    CHECK(plain_bytes[i] > 8 * d * d);
    CHECK(secure_bytes[i] <= 2 * plain_bytes[i]);
  }
}

TEST_CASE(
    "pooling over gRPC: a site that drops out after sharing keys is left out of the sum, one "
    "silent at unmasking is kept",
    "[federation][pooling]") {
  constexpr Eigen::Index d = 4;
  const auto stats = statistics(site_rows(4, d));
  const std::vector<std::string> args{"--sites", "site-a,site-b,site-c,site-d", "--dimension",
                                      "4",       "--phase-deadline-ms",         "2000"};
  sec::SecurePoolOptions in_process;  // threshold ceil(8 / 3) = 3, centre 0, f = 32
  for (const int last : {1, 2}) {
    INFO((last == 1 ? "site 3 drops after ShareKeys" : "site 3 is silent at Unmask"));
    in_process.drop_after_keys = last == 1 ? std::vector<int>{3} : std::vector<int>{};
    in_process.silent_at_unmasking = last == 2 ? std::vector<int>{3} : std::vector<int>{};
    const auto expected = sec::secure_pool(stats, in_process);
    PoolServer server;
    server.start(args);
    const std::vector<SufficientStatistics<double>> honest(stats.begin(), stats.begin() + 3);
    auto running = start_sites(server, honest);
    partial_secure_site(server.address(), "site-d", stats[3], last);
    const std::vector<int> contributed =
        last == 1 ? std::vector<int>{0, 1, 2} : std::vector<int>{0, 1, 2, 3};
    for (auto& r : running) {
      const fed::PoolSiteResult got = r.get();
      CHECK(got.sites == contributed);
      CHECK(same(got.pooled, expected.pooled));
    }
    REQUIRE(server.finish() == 0);
    std::vector<SufficientStatistics<double>> kept;
    for (const int i : contributed) kept.push_back(stats[static_cast<std::size_t>(i)]);
    CHECK(distance(server.pooled(), baypr::pooled(std::span<const SufficientStatistics<double>>(
                                        kept))) < 4 * 4 * std::ldexp(1.0, -33));
    CHECK(contains(server.log(), last == 1 ? "SubmitMasked closed at its deadline: 3 of 4 sites"
                                           : "Unmask closed at its deadline: 3 of 4 sites"));
  }
}

TEST_CASE(
    "pooling over gRPC: three baypr-pool-site processes pool their .npy embeddings with the "
    "server process, bitwise secure_pool()",
    "[federation][pooling]") {
  const auto rows = site_rows(3, 6);
  const auto stats = statistics(rows);
  const auto expected = sec::secure_pool(stats);
  PoolServer server;
  server.start({"--sites", "site-a,site-b,site-c", "--dimension", "6"});
  std::vector<std::unique_ptr<baypr::test::ChildProcess>> sites;
  for (std::size_t i = 0; i < 3; ++i) {
    const auto dir = server.work.path / kSites[i];
    std::filesystem::create_directories(dir);
    baypr::write_npy(dir / "x.npy", Eigen::MatrixXd(rows[i]));
    sites.push_back(std::make_unique<baypr::test::ChildProcess>(
        BAYPR_POOL_SITE,
        std::vector<std::string>{"--server", server.address(), "--server-name", "localhost",
                                 "--certs", certificates().project.string(), "--name", kSites[i],
                                 "--embeddings", (dir / "x.npy").string(), "--out",
                                 (dir / "out").string()},
        dir / "log"));
  }
  for (std::size_t i = 0; i < 3; ++i) {
    INFO(sites[i]->log());
    REQUIRE(sites[i]->wait(std::chrono::minutes(1)) == std::optional<int>(0));
    CHECK(same(read_pooled(server.work.path / kSites[i] / "out"), expected.pooled));
    CHECK(contains(sites[i]->log(),
                   "pooled " + std::to_string(expected.pooled.count) + " rows of 3 sites"));
  }
  REQUIRE(server.finish() == 0);
  CHECK(same(server.pooled(), expected.pooled));
}

TEST_CASE("pooling over gRPC: a session short of its threshold stops with a clear error",
          "[federation][pooling]") {
  const auto stats = statistics(site_rows(1, 3));
  PoolServer server;
  server.start(
      {"--sites", "site-a,site-b,site-c", "--dimension", "3", "--phase-deadline-ms", "800"});
  auto running = start_sites(server, stats);
  const std::string message = baypr::test::message_of([&] { (void)running[0].get(); });
  CHECK(contains(message, "Advertise to '" + server.address() + "' failed: ABORTED"));
  CHECK(contains(message, "Advertise: 1 of 3 sites called within the 800 ms deadline, 2 needed"));
  CHECK(server.finish() == 1);
}

TEST_CASE(
    "pooling over gRPC: malformed messages, wrong modes and unknown sites are refused and the "
    "session goes on",
    "[federation][pooling]") {
  const auto stats = statistics(site_rows(2, 3));
  PoolServer server;
  server.start({"--sites", "site-a,site-b", "--dimension", "3", "--plain"});
  const auto stub = pb::Pooling::NewStub(baypr::test::site_channel(server.address(), "site-a"));
  const auto submit = [&](const pb::PoolStatistics& m) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 10s);
    pb::PoolResult reply;
    return stub->SubmitPlain(&context, m, &reply);
  };
  pb::PoolStatistics wrong;
  wrong.set_count(4);
  wrong.mutable_mean()->Resize(2, 0.0);
  wrong.mutable_scatter()->Resize(9, 0.0);
  const grpc::Status size = submit(wrong);
  CHECK(size.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(contains(size.error_message(),
                 "field 'mean' has 2 values and 'scatter' 9, expected 3 and 9"));
  wrong.mutable_mean()->Resize(3, 0.0);
  wrong.set_count(-1);
  const grpc::Status count = submit(wrong);
  CHECK(count.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(contains(count.error_message(), "statistics.count' must be >= 0, got -1"));
  wrong.set_count(4);
  wrong.mutable_scatter()->Set(1, 1.0);  // asymmetric
  CHECK(contains(submit(wrong).error_message(), "statistics.scatter' must be symmetric"));
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 10s);
    pb::PoolKeyList reply;
    const grpc::Status mode = stub->Advertise(&context, pb::PoolKeys{}, &reply);
    CHECK(mode.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
    CHECK(contains(mode.error_message(), "this session pools plain statistics"));
  }
  // A certificate from the project CA whose name is not on the list; a site whose statistics
  // have another dimension than the session's.
  CHECK(contains(baypr::test::message_of(
                     [&] { (void)fed::pool_site(stats[0], site_options(server, "site-z")); }),
                 "PERMISSION_DENIED (Join: certificate common name 'site-z'"));
  CHECK(contains(baypr::test::message_of([&] {
                   (void)fed::pool_site(SufficientStatistics<double>::empty(4),
                                        site_options(server, "site-b"));
                 }),
                 "argument 'statistics' has dimension 4, the session pools dimension 3"));
  // Nothing of that was pooled.
  auto running = start_sites(server, stats);
  const auto local = baypr::pooled(std::span<const SufficientStatistics<double>>(stats));
  for (auto& r : running) CHECK(same(r.get().pooled, local));
  REQUIRE(server.finish() == 0);
  CHECK(contains(server.log(), "refused SubmitPlain: site 0: field 'mean' has 2 values"));
}

TEST_CASE("pooling over gRPC: bad server options are named", "[federation][pooling]") {
  fed::PoolingOptions o;
  o.tls = {certificates().project / "ca.crt", certificates().project / "server.crt",
           certificates().project / "server.key"};
  o.sites = {"site-a", "site-b", "site-c"};
  const auto message = [&] { return baypr::test::message_of([&] { fed::PoolingServer s(o); }); };
  CHECK(contains(message(), "argument 'options.dimension' must be in [1, 4096], got 0"));
  o.dimension = 3;
  o.threshold = 1;
  CHECK(contains(
      message(),
      "argument 'options.threshold' must be in (n / 2, n] = (1, 3] (0: ceil(2n / 3)), got 1"));
  o.threshold = 0;
  o.centre = Eigen::Vector2d(1.0, 2.0);
  CHECK(contains(message(), "options.centre"));
  o.centre = Eigen::Vector3d(1.0, std::nan(""), 2.0);
  CHECK(contains(message(), "options.centre"));
  o.centre.resize(0);
  o.sites = {"site-a"};
  CHECK(contains(message(), "secure pooling needs 2 to 255 sites, got 1"));
}
