// baypr/federated/pooling.hpp: exact and secure pooling of the sites' normality models between
// processes, over gRPC with mutual TLS, in one session.
//
//   PoolingServer server(PoolingOptions{...});        listens, runs one pooling session
//   server.wait() -> PoolingResult                    the pooled statistics, who contributed
//   pool_site(statistics, SiteOptions{...}) -> PoolSiteResult     a site's whole participation
//
// Link baypr::pooling (CMake options BAYPR_WITH_GRPC and BAYPR_WITH_SECURE_AGGREGATION: gRPC and
// libsodium); the server program is baypr-pooling-server. This header includes no gRPC or
// libsodium header. TLS, the allow list and the site indices work as for the federation
// (federated/grpc.hpp): a site is the common name of its certificate from the project CA.
//
// Each site sends the sufficient statistics of its normal embeddings (count, mean, centred
// scatter; stats/sufficient_statistics.hpp), never the embeddings, and every site gets back the
// statistics of the union of the contributing sites' rows, from which NiwPrior::posterior gives
// the pooled posterior.
//   plain   the server pools the statistics in site order with baypr::pooled: the result is
//           bitwise the in-process pooled() of the same sites, and its posterior is the union's
//           posterior to rounding (1e-12). The server sees each site's statistics.
//   secure  the protocol of federated/secure_aggregation.hpp (Bonawitz et al., CCS 2017) in four
//           phases the server relays (Advertise, ShareKeys, SubmitMasked, Unmask): the server
//           learns the sum of the sites' fixed-point encoded statistics and nothing else. The
//           decoded sum is exact in the ring, so the result is bitwise secure::secure_pool() of
//           the same sites, centre and encoding, and within the encoding's precision of the plain
//           result: each statistics_vector entry is within m 2^-(f+1) of the exact sum over m
//           sites (f = fractional_bits; 1.2e-10 per site at f = 32).
//
// Phases, deadlines, dropouts. A phase closes when every site expected in it has called, or
// phase_deadline after it opened if enough have: plain, `quorum` sites (0: all); secure, the
// threshold t (0: ceil(2n / 3)) at Advertise, SubmitMasked and Unmask. A secure site that shares
// keys and then drops (its masked input never comes) is left out of the sum; a site that sends its
// input and is silent at Unmask is still in it. Every site that advertised must share keys: one
// that drops between Advertise and ShareKeys fails the session (start a new one without it), as
// does any phase short of its minimum. A failed session ends wait() with federation_error and the
// waiting sites' calls with ABORTED naming the phase. A site that calls after its phase closed is
// told FAILED_PRECONDITION (it dropped out). Every call waits on the server until its phase closes
// (a long poll with the site's call deadline); a repeated call returns the same answer, so sites
// may retry. Messages that do not fit the session (wrong sizes, keys of the wrong length, a share
// sent for another site, a count that is not a count) are refused with INVALID_ARGUMENT naming
// the field, and the server keeps serving the others.
#pragma once

#include <Eigen/Core>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "baypr/federated/grpc.hpp"
#include "baypr/stats/sufficient_statistics.hpp"

namespace baypr::federated {

enum class PoolingMode { plain, secure };

struct PoolingOptions {
  std::string address = "127.0.0.1:0";  // host:port; port 0 binds a free port (see port())
  TlsFiles tls;
  std::vector<std::string> sites;  // the allow list, in index order (certificate common names)
  PoolingMode mode = PoolingMode::secure;
  Eigen::Index dimension = 0;  // d, the embeddings' dimension (required)
  int quorum = 0;              // plain: sites needed at the deadline; 0: all
  int threshold = 0;           // secure: t in (n / 2, n]; 0: ceil(2n / 3)
  int fractional_bits = 32;    // secure: the fixed-point encoding's f, in [1, 52]
  // secure: the public point the second moments are centred at (keep it near the data: the
  // encoding needs |n (mean - c)| and the moments below 2^(63 - f) / n); empty: the origin.
  Eigen::VectorXd centre;
  std::chrono::milliseconds phase_deadline{60'000};
  bool log = true;  // one line per phase and per refused call on stderr
};

struct PoolingResult {
  SufficientStatistics<double> pooled;      // the contributing sites' statistics, pooled
  std::vector<int> sites;                   // who contributed (plain: who sent; secure: survivors)
  std::vector<std::size_t> bytes_received;  // from each site, all phases (message sizes)
  std::vector<std::size_t> bytes_sent;      // to each site, all phases
};

struct PoolSiteResult {
  SufficientStatistics<double> pooled;
  std::vector<int> sites;
  int site = -1;  // this site's index on the server's list
};

// One pooling session on its own threads. The constructor checks the options
// (invalid_argument naming the option), reads the TLS files (io_error naming the file), binds and
// starts serving (federation_error if it cannot). wait() returns when every contributing site
// has been told the result (or a grace period of one phase deadline has passed) and throws
// federation_error if the session failed or shutdown() came first.
class PoolingServer {
 public:
  explicit PoolingServer(PoolingOptions options);
  ~PoolingServer();
  PoolingServer(const PoolingServer&) = delete;
  PoolingServer& operator=(const PoolingServer&) = delete;

  [[nodiscard]] int port() const;
  [[nodiscard]] PoolingResult wait();
  void shutdown();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Joins the pooling session at options.server with this site's statistics (checked: dimension,
// invariants) and returns the pooled statistics. Throws federation_error naming the call and the
// gRPC status when the server refuses this site, the session fails, or the server stays
// unreachable past options.reconnect; invalid_argument for statistics that do not fit the
// session (naming `statistics`).
[[nodiscard]] PoolSiteResult pool_site(const SufficientStatistics<double>& statistics,
                                       const SiteOptions& options);

}  // namespace baypr::federated
