// Federation benchmarks: what a round costs beyond the sites' own compute.
//
//   BM_LocalCompute            one site's update: E = 4 BayPrAnoMeta meta-steps of the Fashion
//                              example's embedding (Mlp::paper_head(128, 32), 4192 parameters)
//   BM_Aggregate/C/P           the server's work for C updates of P parameters (aggregate,
//                              server_step)
//   BM_InProcessRound/C/P      one federate() round, C sites on threads, a step of O(P) work
//   BM_GrpcRound/C/P           the same round between a FederationServer and C run_site threads
//                              over gRPC with mutual TLS on loopback (real time per round; bytes
//                              per round as counters); with BAYPR_FEDERATED_GRPC only
//   BM_PlainPool/S, BM_SecurePool/S   pooling S sites' d = 32 statistics, plainly and through
//                              the secure aggregation protocol; with BAYPR_SECURE_AGGREGATION only
//   BM_GrpcPlainPool/S, BM_GrpcSecurePool/S   the same as one session between a PoolingServer
//                              and S pool_site threads over gRPC with mutual TLS on loopback (real
//                              time; bytes a site uploads as a counter); with BAYPR_FEDERATED_POOLING
// The summary prints each cost as a ratio to a reference measured in the same run.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <Eigen/Core>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "baypr/core/random.hpp"
#include "baypr/federated/algorithms.hpp"
#include "baypr/meta/adapt.hpp"
#include "baypr/meta/mlp.hpp"
#include "baypr/stats/niw.hpp"
#include "summary_reporter.hpp"
#ifdef BAYPR_FEDERATED_GRPC
#include "baypr/federated/grpc.hpp"
#endif
#ifdef BAYPR_SECURE_AGGREGATION
#include "baypr/federated/secure_aggregation.hpp"
#endif
#ifdef BAYPR_FEDERATED_POOLING
#include "baypr/federated/pooling.hpp"
#endif

namespace {

namespace fed = baypr::federated;
namespace meta = baypr::meta;

// A site whose step is the gradient of 0.5 |theta - z|^2 (O(P) work), z drawn per episode.
fed::Client light_site(Eigen::Index p, double target) {
  fed::Client c;
  c.sample = [p, target](std::mt19937_64& rng) {
    meta::MetaEpisode e;
    e.support = Eigen::RowVectorXd::Constant(p, target);
    e.support(0, 0) += baypr::standard_normal(rng);
    return e;
  };
  c.step = [](const Eigen::VectorXd& theta, const meta::MetaEpisode& e) {
    meta::MetaStep s;
    s.gradient = theta - e.support.row(0).transpose();
    s.outer_loss = 0.5 * s.gradient.squaredNorm();
    return s;
  };
  return c;
}

std::vector<fed::Client> light_sites(int c, Eigen::Index p) {
  std::vector<fed::Client> out;
  for (int i = 0; i < c; ++i) out.push_back(light_site(p, static_cast<double>(i)));
  return out;
}

fed::FederatedOptions options(int rounds) {
  fed::FederatedOptions o;
  o.rounds = rounds;
  o.local_episodes = 4;
  o.seed = 3;
  return o;
}

void local_compute(benchmark::State& state) {
  const meta::Mlp embedding = meta::Mlp::paper_head(128, 32);
  const auto prior = baypr::NiwPrior<double>::isotropic(32, 0.01, 34.0, 1.0);
  auto stepper = std::make_shared<meta::MetaStepper<meta::Mlp>>(embedding);
  fed::Client c;
  c.sample = [](std::mt19937_64& rng) {
    meta::MetaEpisode e;
    e.support.resize(5, 128);
    e.queries.resize(16, 128);
    for (Eigen::Index i = 0; i < e.support.size(); ++i) e.support(i) = baypr::standard_normal(rng);
    for (Eigen::Index i = 0; i < e.queries.size(); ++i) e.queries(i) = baypr::standard_normal(rng);
    e.labels.setZero(16);
    e.labels.tail(4).setOnes();
    return e;
  };
  c.step = [stepper, &prior](const Eigen::VectorXd& theta, const meta::MetaEpisode& e) {
    return stepper->step(theta, e, prior);
  };
  const Eigen::VectorXd theta = embedding.initial_parameters(1);
  int round = 0;
  for (auto _ : state) {
    const fed::ClientUpdate u = fed::client_update(c, theta, round++, 0, options(1));
    benchmark::DoNotOptimize(u.payload.data());
  }
  state.counters["params"] = static_cast<double>(theta.size());
}

void aggregate_bench(benchmark::State& state, int c, Eigen::Index p) {
  std::vector<fed::ClientUpdate> updates;
  for (int i = 0; i < c; ++i) updates.push_back({Eigen::VectorXd::Random(p), 4, 1.0});
  Eigen::VectorXd theta = Eigen::VectorXd::Zero(p);
  fed::FederatedOptions o = options(1);
  for (auto _ : state) {
    const fed::Aggregate a = fed::aggregate(updates);
    benchmark::DoNotOptimize(fed::server_step(theta, o.server, a, o));
  }
}

void in_process_round(benchmark::State& state, int c, Eigen::Index p) {
  const auto sites = light_sites(c, p);
  const Eigen::VectorXd theta0 = Eigen::VectorXd::Zero(p);
  constexpr int rounds = 20;
  double seconds = 0.0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = fed::federate(theta0, sites, options(rounds));
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    benchmark::DoNotOptimize(r.theta.data());
  }
  state.counters["seconds_per_round"] =
      seconds / (static_cast<double>(state.iterations()) * rounds);
}

#ifdef BAYPR_FEDERATED_GRPC
std::filesystem::path certificates() {
  static const std::filesystem::path dir = [] {
    const std::filesystem::path d = std::filesystem::temp_directory_path() /
                                    ("baypr-bench-certs-" + std::to_string(::getpid()));
    std::filesystem::remove_all(d);
    std::string cmd = std::string(BAYPR_FEDERATION_CERTS) + " " + d.string();
    for (int i = 0; i < 8; ++i) cmd += " site-" + std::to_string(i);
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("cannot make certificates");
    return d;
  }();
  return dir;
}

// Site i's options against a server on loopback (certificates of certificates()).
fed::SiteOptions site_options(int i, int port) {
  const auto dir = certificates();
  fed::SiteOptions o;
  o.server = "127.0.0.1:" + std::to_string(port);
  o.server_name = "localhost";
  const std::string name = "site-" + std::to_string(i);
  o.tls = {dir / "ca.crt", dir / (name + ".crt"), dir / (name + ".key")};
  return o;
}

void grpc_round(benchmark::State& state, int c, Eigen::Index p) {
  const auto sites = light_sites(c, p);
  const auto dir = certificates();
  constexpr int rounds = 20;
  double seconds = 0.0, sent = 0.0, received = 0.0;
  for (auto _ : state) {
    fed::ServerOptions so;
    so.tls = {dir / "ca.crt", dir / "server.crt", dir / "server.key"};
    for (int i = 0; i < c; ++i) so.sites.push_back("site-" + std::to_string(i));
    so.federation = options(rounds);
    so.log = false;
    fed::FederationServer server(Eigen::VectorXd::Zero(p), so);
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::future<fed::SiteResult>> running;
    for (int i = 0; i < c; ++i) {
      running.push_back(std::async(std::launch::async, [&, i] {
        return fed::run_site(sites[static_cast<std::size_t>(i)], site_options(i, server.port()));
      }));
    }
    const fed::FederatedResult r = server.wait();
    for (auto& f : running) f.get();
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (const auto& h : r.history) {
      sent += static_cast<double>(h.bytes_sent);
      received += static_cast<double>(h.bytes_received);
    }
  }
  const double n = static_cast<double>(state.iterations()) * rounds;
  state.counters["seconds_per_round"] = seconds / n;
  state.counters["bytes_sent_per_round"] = sent / n;
  state.counters["bytes_received_per_round"] = received / n;
}
#endif

#ifdef BAYPR_SECURE_AGGREGATION
std::vector<baypr::SufficientStatistics<double>> statistics(int sites) {
  std::mt19937_64 rng(5);
  std::vector<baypr::SufficientStatistics<double>> out;
  for (int s = 0; s < sites; ++s) {
    Eigen::MatrixXd z(50, 32);
    for (Eigen::Index i = 0; i < z.size(); ++i) z(i) = baypr::standard_normal(rng);
    out.push_back(baypr::SufficientStatistics<double>::of(z));
  }
  return out;
}

void plain_pool(benchmark::State& state, int sites) {
  const auto s = statistics(sites);
  for (auto _ : state) benchmark::DoNotOptimize(baypr::pooled(s).scatter.data());
}

void secure_pool(benchmark::State& state, int sites) {
  const auto s = statistics(sites);
  for (auto _ : state) {
    benchmark::DoNotOptimize(baypr::federated::secure::secure_pool(s).pooled.scatter.data());
  }
}
#endif

#ifdef BAYPR_FEDERATED_POOLING
void grpc_pool(benchmark::State& state, int sites, fed::PoolingMode mode) {
  const auto s = statistics(sites);
  const auto dir = certificates();
  double uploaded = 0.0, seconds = 0.0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    fed::PoolingOptions po;
    po.tls = {dir / "ca.crt", dir / "server.crt", dir / "server.key"};
    for (int i = 0; i < sites; ++i) po.sites.push_back("site-" + std::to_string(i));
    po.mode = mode;
    po.dimension = 32;
    po.log = false;
    fed::PoolingServer server(po);
    std::vector<std::future<fed::PoolSiteResult>> running;
    for (int i = 0; i < sites; ++i) {
      running.push_back(std::async(std::launch::async, [&, i] {
        return fed::pool_site(s[static_cast<std::size_t>(i)], site_options(i, server.port()));
      }));
    }
    for (auto& f : running) benchmark::DoNotOptimize(f.get().pooled.count);
    const fed::PoolingResult r = server.wait();
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (const std::size_t b : r.bytes_received) uploaded += static_cast<double>(b);
  }
  state.counters["seconds_per_session"] = seconds / static_cast<double>(state.iterations());
  state.counters["bytes_per_site"] =
      uploaded / (static_cast<double>(state.iterations()) * static_cast<double>(sites));
}
#endif

}  // namespace

int main(int argc, char** argv) {
  const std::string format = baypr_bench::output_format(argc, argv);
  std::vector<baypr_bench::Ratio> ratios;
  benchmark::RegisterBenchmark("BM_LocalCompute", local_compute)->Unit(benchmark::kMillisecond);
  for (const int c : {2, 4, 8}) {
    for (const Eigen::Index p : {Eigen::Index{4128}, Eigen::Index{100000}}) {
      const std::string tag = "/" + std::to_string(c) + "/" + std::to_string(p);
      benchmark::RegisterBenchmark(("BM_Aggregate" + tag).c_str(), aggregate_bench, c, p)
          ->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark(("BM_InProcessRound" + tag).c_str(), in_process_round, c, p)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
      if (p == 4128) {
        ratios.push_back({"server work (4128 parameters) / one site's E = 4 meta-steps",
                          std::to_string(c) + " sites", "BM_Aggregate" + tag, "BM_LocalCompute", "",
                          0.05, false});
      }
#ifdef BAYPR_FEDERATED_GRPC
      benchmark::RegisterBenchmark(("BM_GrpcRound" + tag).c_str(), grpc_round, c, p)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->Iterations(3);
      ratios.push_back({"seconds per round: gRPC + mTLS / in process", tag.substr(1),
                        "BM_GrpcRound" + tag, "BM_InProcessRound" + tag, "seconds_per_round"});
      ratios.push_back({"bytes per round sent by the server (gRPC)", tag.substr(1),
                        "BM_GrpcRound" + tag, "", "bytes_sent_per_round"});
#endif
    }
  }
#ifdef BAYPR_SECURE_AGGREGATION
  for (const int s : {4, 8, 16}) {
    const std::string tag = "/" + std::to_string(s);
    benchmark::RegisterBenchmark(("BM_PlainPool" + tag).c_str(), plain_pool, s)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("BM_SecurePool" + tag).c_str(), secure_pool, s)
        ->Unit(benchmark::kMicrosecond);
    ratios.push_back({"secure / plain pooling, d = 32 (time)", std::to_string(s) + " sites",
                      "BM_SecurePool" + tag, "BM_PlainPool" + tag, ""});
#ifdef BAYPR_FEDERATED_POOLING
    if (s > 8) continue;  // the certificates are made for 8 sites
    for (const auto& [name, mode] : {std::pair{"BM_GrpcPlainPool", fed::PoolingMode::plain},
                                     std::pair{"BM_GrpcSecurePool", fed::PoolingMode::secure}}) {
      benchmark::RegisterBenchmark((name + tag).c_str(), grpc_pool, s, mode)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->Iterations(5);
    }
    ratios.push_back({"pooling session over gRPC + mTLS: secure / plain (time)",
                      std::to_string(s) + " sites", "BM_GrpcSecurePool" + tag,
                      "BM_GrpcPlainPool" + tag, "seconds_per_session"});
    ratios.push_back({"pooling over gRPC: bytes a site uploads, secure / plain",
                      std::to_string(s) + " sites", "BM_GrpcSecurePool" + tag,
                      "BM_GrpcPlainPool" + tag, "bytes_per_site"});
#endif
  }
#endif
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  baypr_bench::run_with_summary("federation.bench", format, {std::move(ratios), {}, {44, 12}});
  benchmark::Shutdown();
  return 0;
}
