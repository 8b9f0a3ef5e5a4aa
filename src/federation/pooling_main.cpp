// baypr-pooling-server: one pooling session of the sites' sufficient statistics as a program
// (PoolingServer of include/baypr/federated/pooling.hpp). Sites connect with pool_site from their
// own programs.
//
//   baypr-pooling-server --certs DIR --sites a,b,c --dimension D [--plain] [options]
//
// Exit status: 0 once the pooled statistics are out, 1 when the session failed (a phase short of
// its minimum, bad shares), 2 on a usage error.
#include <Eigen/Core>
#include <chrono>
#include <exception>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>

#include "baypr/federated/pooling.hpp"
#include "baypr/io/detail/file.hpp"
#include "baypr/io/npy.hpp"
#include "cli.hpp"

namespace fed = baypr::federated;

namespace {

const char* const kUsage =
    R"(usage: baypr-pooling-server --certs DIR --sites NAME[,NAME...] --dimension D
                            [options]

Serves one session that pools the sites' sufficient statistics (count, mean, scatter of their
normal embeddings) over gRPC with mutual TLS, and exits once every site has the result.

TLS (from scripts/federation-certs):
  --certs DIR             DIR/ca.crt, DIR/server.crt and DIR/server.key
  --ca FILE --cert FILE --key FILE      the same, one file at a time
Session:
  --sites A,B,...         the allow list: certificate common names; a site's index is its position
  --dimension D           the embeddings' dimension
  --plain                 the server sees each site's statistics (default: secure aggregation,
                          where it learns only their sum)
  --quorum Q              plain: sites needed at the deadline (default: all)
  --threshold T           secure: sites needed at each phase's deadline, > n / 2 (default ceil(2n/3))
  --fractional-bits F     secure: the fixed-point precision 2^-F (default 32)
  --centre FILE.npy       secure: the public centre of the second moments, (D,) float64
  --phase-deadline-ms MS  how long a phase waits for its sites (default 60000)
Network and output:
  --listen HOST:PORT      (default 127.0.0.1:0, a free port)
  --port-file FILE        write the bound port there once listening
  --out DIR               DIR/mean.npy (D, 1), DIR/scatter.npy (D, D) and DIR/pooled.csv (the
                          count, the contributing sites, the bytes from and to each site)
  --quiet                 no per-phase lines on stderr
)";

std::string summary_csv(const fed::PoolingResult& r) {
  std::ostringstream out;
  out << "count," << r.pooled.count << "\nsites,";
  for (std::size_t k = 0; k < r.sites.size(); ++k) out << (k ? " " : "") << r.sites[k];
  out << "\nsite,bytes_received,bytes_sent\n";
  for (std::size_t i = 0; i < r.bytes_received.size(); ++i) {
    out << i << ',' << r.bytes_received[i] << ',' << r.bytes_sent[i] << '\n';
  }
  return out.str();
}

}  // namespace

int main(int argc, char** argv) {
  const fed::cli::Arguments args("baypr-pooling-server", kUsage, argc, argv);
  fed::PoolingOptions o;
  std::filesystem::path centre_file, port_file, out_dir;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (args.server_option(i, o.tls, o.address, port_file, o.log)) continue;
    if (a == "--sites") {
      o.sites = args.list(i);
    } else if (a == "--dimension") {
      o.dimension = args.integer(i, 1, 4096);
    } else if (a == "--plain") {
      o.mode = fed::PoolingMode::plain;
    } else if (a == "--quorum") {
      o.quorum = static_cast<int>(args.integer(i, 1, 1 << 20));
    } else if (a == "--threshold") {
      o.threshold = static_cast<int>(args.integer(i, 1, 255));
    } else if (a == "--fractional-bits") {
      o.fractional_bits = static_cast<int>(args.integer(i, 1, 52));
    } else if (a == "--centre") {
      centre_file = args.value(i);
    } else if (a == "--phase-deadline-ms") {
      o.phase_deadline = std::chrono::milliseconds(args.integer(i, 1, 1LL << 40));
    } else if (a == "--out") {
      out_dir = args.value(i);
    } else if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      return 0;
    } else {
      args.usage("unknown option '" + a + "'");
    }
  }
  args.require_tls(o.tls);
  if (o.sites.empty()) args.usage("needs --sites");
  if (o.dimension == 0) args.usage("needs --dimension");
  try {
    if (!centre_file.empty()) {
      const auto m = baypr::read_npy_matrix<double>(centre_file);
      if (m.cols() != 1) args.usage("--centre must hold a (D,) or (D, 1) array");
      o.centre = m.col(0);
    }
    fed::PoolingServer server(o);
    if (!port_file.empty()) {
      baypr::detail::io::write_atomically(port_file, std::to_string(server.port()) + "\n",
                                          "baypr-pooling-server (--port-file)");
    }
    const fed::PoolingResult result = server.wait();
    if (!out_dir.empty()) {
      std::filesystem::create_directories(out_dir);
      baypr::write_npy(out_dir / "mean.npy", result.pooled.mean);
      baypr::write_npy(out_dir / "scatter.npy", result.pooled.scatter);
      baypr::detail::io::write_atomically(out_dir / "pooled.csv", summary_csv(result),
                                          "baypr-pooling-server (--out)");
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "baypr-pooling-server: " << e.what() << '\n';
    return 1;
  }
}
