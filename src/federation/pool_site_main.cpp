// baypr-pool-site: one site of a pooling session (pool_site of include/baypr/federated/pooling.hpp)
// as a program, for sites whose normal embeddings are an .npy file rather than C++ code.
//
//   baypr-pool-site --server HOST:PORT --certs DIR --name NAME --embeddings X.npy [--out DIR]
//
// Sends only the sufficient statistics of X's rows (count, mean, scatter; plainly or masked, as the
// server's session says) and receives those of every contributing site's rows. Exit status: 0 with
// the pooled statistics, 1 when the session failed or the server refused this site, 2 on a usage
// error.
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

const char* const kUsage = R"(usage: baypr-pool-site --server HOST:PORT --certs DIR --name NAME
                       --embeddings X.npy [options]

Joins a pooling session (baypr-pooling-server) with the statistics of X's rows (n x d, float32 or
float64), and writes the pooled statistics of every contributing site's rows.

  --server HOST:PORT      the pooling server
  --certs DIR             DIR/ca.crt, DIR/NAME.crt and DIR/NAME.key (scripts/federation-certs)
  --name NAME             this site's certificate name (on the server's --sites list)
  --server-name NAME      the name the server's certificate must carry (default: the host)
  --embeddings X.npy      this site's normal embeddings, one per row
  --call-deadline-ms MS   each call's deadline; a phase may take this long (default 120000)
  --reconnect-ms MS       how long an unreachable server is retried (default 30000)
  --out DIR               DIR/mean.npy (d, 1), DIR/scatter.npy (d, d), DIR/pooled.csv (the count
                          and the contributing sites)
)";

}  // namespace

int main(int argc, char** argv) {
  const fed::cli::Arguments args("baypr-pool-site", kUsage, argc, argv);
  fed::SiteOptions o;
  std::filesystem::path certs, embeddings, out;
  std::string name;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--server") {
      o.server = args.value(i);
    } else if (a == "--certs") {
      certs = args.value(i);
    } else if (a == "--name") {
      name = args.value(i);
    } else if (a == "--server-name") {
      o.server_name = args.value(i);
    } else if (a == "--embeddings") {
      embeddings = args.value(i);
    } else if (a == "--call-deadline-ms") {
      o.call_deadline = std::chrono::milliseconds(args.integer(i, 1, 1LL << 40));
    } else if (a == "--reconnect-ms") {
      o.reconnect = std::chrono::milliseconds(args.integer(i, 0, 1LL << 40));
    } else if (a == "--out") {
      out = args.value(i);
    } else if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      return 0;
    } else {
      args.usage("unknown option '" + a + "'");
    }
  }
  if (o.server.empty() || certs.empty() || name.empty() || embeddings.empty()) {
    args.usage("needs --server, --certs, --name and --embeddings");
  }
  o.tls = {certs / "ca.crt", certs / (name + ".crt"), certs / (name + ".key")};
  try {
    const auto rows = baypr::read_npy_matrix<double>(embeddings);
    const fed::PoolSiteResult r = fed::pool_site(baypr::SufficientStatistics<double>::of(rows), o);
    std::ostringstream summary;
    summary << "count," << r.pooled.count << "\nsites,";
    for (std::size_t k = 0; k < r.sites.size(); ++k) summary << (k ? " " : "") << r.sites[k];
    summary << '\n';
    std::cerr << "baypr-pool-site: site " << r.site << " (" << name << "): pooled "
              << r.pooled.count << " rows of " << r.sites.size() << " sites\n";
    if (!out.empty()) {
      std::filesystem::create_directories(out);
      baypr::write_npy(out / "mean.npy", r.pooled.mean);
      baypr::write_npy(out / "scatter.npy", r.pooled.scatter);
      baypr::detail::io::write_atomically(out / "pooled.csv", summary.str(),
                                          "baypr-pool-site (--out)");
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "baypr-pool-site: " << e.what() << '\n';
    return 1;
  }
}
