// baypr-federation-server: the federation's server as a program (FederationServer of
// include/baypr/federated/grpc.hpp). Sites connect with run_site from their own programs.
//
//   baypr-federation-server --certs DIR --sites a,b,c --dimension P [options]
//
// Exit status: 0 after the last round, 1 when the federation failed (a round without quorum, a
// checkpoint that cannot be written), 2 on a usage error.
#include <Eigen/Core>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "baypr/federated/grpc.hpp"
#include "baypr/io/detail/file.hpp"
#include "baypr/io/npy.hpp"
#include "cli.hpp"

namespace fed = baypr::federated;

namespace {

const char* const kUsage = R"(usage: baypr-federation-server --certs DIR --sites NAME[,NAME...]
                               (--dimension P | --theta0 FILE.npy) [options]

Serves one federation over gRPC with mutual TLS and exits after its last round.

TLS (from scripts/federation-certs):
  --certs DIR             DIR/ca.crt, DIR/server.crt and DIR/server.key
  --ca FILE --cert FILE --key FILE      the same, one file at a time
Sites:
  --sites A,B,...         the allow list: certificate common names; a site's index is its position
  --quorum Q              sites needed to close a round at its deadline (default: all)
  --round-deadline-ms MS  how long a round waits for its sites (default 60000)
Model and rounds:
  --dimension P           theta0 = 0 of size P
  --theta0 FILE.npy       theta0 from a (P,) or (P, 1) float64 array
  --rounds N              (default 100)
  --algorithm A           fedsgd (default) or fedavg
  --local-episodes E      episodes per site and round (default 4)
  --local-lr LR           fedavg: the sites' step size (default 1e-3)
  --server-lr LR          the server's Adam step size (default 1e-3)
  --plain-average         fedavg: add the mean change instead of an Adam step
  --seed S                the sites' episode seed (default 0)
  --max-update-norm X     reject updates with a larger norm (default: no limit)
  --max-message-bytes B   refuse larger messages (default: what an update needs)
Network and output:
  --listen HOST:PORT      (default 127.0.0.1:0, a free port)
  --port-file FILE        write the bound port there once listening
  --checkpoint FILE       save after every round; resume from it if it exists
  --out FILE.npy          the final theta, shape (P, 1)
  --history FILE.csv      one row per round
  --quiet                 no per-round lines on stderr
)";

std::string history_csv(const fed::FederatedResult& r) {
  std::ostringstream out;
  out.precision(17);
  out << "round,clients,rejected,loss,gradient_norm2,seconds,bytes_sent,bytes_received\n";
  const auto ids = [](const std::vector<int>& v) {
    std::string s;
    for (const int i : v) {
      if (!s.empty()) s += ' ';
      s += std::to_string(i);
    }
    return s;
  };
  for (const auto& h : r.history) {
    out << h.round << ',' << ids(h.clients) << ',' << ids(h.rejected) << ',' << h.loss << ','
        << h.gradient_norm2 << ',' << h.seconds << ',' << h.bytes_sent << ',' << h.bytes_received
        << '\n';
  }
  return out.str();
}

}  // namespace

int main(int argc, char** argv) {
  const fed::cli::Arguments args("baypr-federation-server", kUsage, argc, argv);
  fed::ServerOptions o;
  long long dimension = 0;
  std::filesystem::path theta0_file, port_file, out_file, history_file;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (args.server_option(i, o.tls, o.address, port_file, o.log)) continue;
    if (a == "--sites") {
      o.sites = args.list(i);
    } else if (a == "--quorum") {
      o.quorum = static_cast<int>(args.integer(i, 1, 1 << 20));
    } else if (a == "--round-deadline-ms") {
      o.round_deadline = std::chrono::milliseconds(args.integer(i, 1, 1LL << 40));
    } else if (a == "--dimension") {
      dimension = args.integer(i, 1, 1 << 26);
    } else if (a == "--theta0") {
      theta0_file = args.value(i);
    } else if (a == "--rounds") {
      o.federation.rounds = static_cast<int>(args.integer(i, 0, 1 << 30));
    } else if (a == "--algorithm") {
      const std::string v = args.value(i);
      if (v == "fedsgd") {
        o.federation.algorithm = fed::Algorithm::fedsgd;
      } else if (v == "fedavg") {
        o.federation.algorithm = fed::Algorithm::fedavg;
      } else {
        args.usage("--algorithm must be fedsgd or fedavg, got '" + v + "'");
      }
    } else if (a == "--local-episodes") {
      o.federation.local_episodes = static_cast<int>(args.integer(i, 1, 1 << 20));
    } else if (a == "--local-lr") {
      o.federation.local_lr = args.positive(i);
    } else if (a == "--server-lr") {
      o.federation.server.lr = args.positive(i);
    } else if (a == "--plain-average") {
      o.federation.server_adam = false;
    } else if (a == "--seed") {
      o.federation.seed = static_cast<std::uint64_t>(args.integer(i, 0, (1LL << 62)));
    } else if (a == "--max-update-norm") {
      o.federation.max_update_norm = args.positive(i);
    } else if (a == "--max-message-bytes") {
      o.max_message_bytes = static_cast<int>(args.integer(i, 1, 1 << 30));
    } else if (a == "--checkpoint") {
      o.checkpoint = args.value(i);
    } else if (a == "--out") {
      out_file = args.value(i);
    } else if (a == "--history") {
      history_file = args.value(i);
    } else if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      return 0;
    } else {
      args.usage("unknown option '" + a + "'");
    }
  }
  args.require_tls(o.tls);
  if (o.sites.empty()) args.usage("needs --sites");
  if ((dimension > 0) == !theta0_file.empty()) args.usage("needs one of --dimension and --theta0");
  try {
    Eigen::VectorXd theta0 = Eigen::VectorXd::Zero(dimension);
    if (!theta0_file.empty()) {
      const auto m = baypr::read_npy_matrix<double>(theta0_file);
      if (m.cols() != 1) args.usage("--theta0 must hold a (P,) or (P, 1) array");
      theta0 = m.col(0);
    }
    fed::FederationServer server(theta0, o);
    if (!port_file.empty()) {
      baypr::detail::io::write_atomically(port_file, std::to_string(server.port()) + "\n",
                                          "baypr-federation-server (--port-file)");
    }
    const fed::FederatedResult result = server.wait();
    if (!out_file.empty()) baypr::write_npy(out_file, result.theta);
    if (!history_file.empty()) {
      baypr::detail::io::write_atomically(history_file, history_csv(result),
                                          "baypr-federation-server (--history)");
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "baypr-federation-server: " << e.what() << '\n';
    return 1;
  }
}
