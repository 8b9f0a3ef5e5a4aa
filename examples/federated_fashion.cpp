// Federated meta-learning on Fashion-MNIST: three sites that each own two classes meta-train one
// BayPrAnoMeta embedding together; does that reach the held-out AUROC of training on the pooled
// classes (centralised), and does either beat the untrained embedding?
//
//   federated_fashion [--quick] [--seeds N] [--rounds R] [--local-episodes E] [--eval-episodes P]
//                     [--supcon W] [--out DIR] [--data DIR] [--seed S]
//       the in-process comparison (sites on threads): a Markdown table on stdout, and with --out
//       DIR/federated.md, DIR/federated.csv and the stationarity figure DIR/federated.png
//   federated_fashion --site GROUP --server HOST:PORT --certs DIR --name NAME [--supcon W]
//       one site (classes of GROUP in 0..2) of a federation over gRPC with mutual TLS; needs a
//       build with BAYPR_WITH_GRPC (scripts/federation-demo runs a server and three of these)
//   federated_fashion --write-theta0 FILE.npy [--seed S]     the shared start, for the server
//   federated_fashion --evaluate FILE.npy [--seed S]         held-out AUROC of a model, without
//                                                            and with the inner step
//
// Data and model: examples/meta_fashion_data.hpp (Fashion-MNIST projected to 128, the
// Mlp::paper_head(128, 32) embedding, the authors' NIW prior, the discriminative objective with
// its calibration, one inner step of 5e-4, second order: the settings meta_training chose on its
// validation classes). Sites: {T-shirt, Trouser}, {Pullover, Dress}, {Coat, Sandal} (classes 0-5),
// each drawing K = 5 tasks from its own classes only: a heterogeneous federation. Held out:
// classes 6-9, evaluated as in meta_training (K = 1 and 5, normal class c, anomalies the other
// held-out classes). Nothing here was tuned on the held-out classes; nothing was tuned at all for
// the federation (FedAvg's local step size is the server's Adam step size, untested alternatives).
//
// Rows, each trained from the same start for R rounds of the same number of episodes (3 E):
//   centralised  one site holding all six classes, FedSGD = Adam on meta-batches of 3 E episodes
//   FedSGD       three sites, E episodes each per round, the server averages their gradients
//   FedAvg       three sites, E local SGD meta-steps each, the server's Adam on the mean change
// each with the SupCon term (--supcon, 0.1) and without. The start (theta0 and the calibration
// fitted on 32 training episodes of the six classes at theta0) is shared by every row of a seed.
// Intervals: per-episode AUROC averaged over seeds, paired differences, 95% two-level bootstrap
// (classes, then episodes).
#include <baypr/baypr.hpp>
#include <baypr/federated/algorithms.hpp>
#include <baypr/meta/adapt.hpp>
#include <baypr/meta/mlp.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#ifdef BAYPR_FEDERATED_GRPC
#include <baypr/federated/grpc.hpp>
#endif
#ifdef BAYPR_REPORT_FIGURES
#include "report.hpp"
#endif
#include "cli_args.hpp"
#include "meta_fashion_data.hpp"

namespace {

namespace meta = baypr::meta;
namespace fed = baypr::federated;
namespace mf = meta_fashion;

const std::vector<std::vector<int>> kSiteClasses = {{0, 1}, {2, 3}, {4, 5}};
const std::vector<int> kAllClasses = {0, 1, 2, 3, 4, 5};

struct Args {
  int seeds = 5, rounds = 500, local_episodes = 4, eval_episodes = 50;
  double supcon = 0.1;
  std::uint64_t seed = 0;
  std::string data = mf::default_data_dir, out;
  // the gRPC site and the helpers
  int site = -1;
  std::string server, certs, name, theta0_file, evaluate_file;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "federated_fashion: " << why << "\n(see the comment at the top of "
            << "examples/federated_fashion.cpp)\n";
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  const cli::ArgReader reader(argc, argv, usage);
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    if (f == "--quick") {
      a.seeds = 2;
      a.rounds = 150;
      a.eval_episodes = 25;
    } else if (f == "--seeds") {
      a.seeds = reader.positive_int(i);
    } else if (f == "--rounds") {
      a.rounds = reader.positive_int(i);
    } else if (f == "--local-episodes") {
      a.local_episodes = reader.positive_int(i);
    } else if (f == "--eval-episodes") {
      a.eval_episodes = reader.positive_int(i);
    } else if (f == "--supcon") {
      a.supcon = reader.number(i, true);
    } else if (f == "--seed") {
      a.seed = reader.seed(i);
    } else if (f == "--data") {
      a.data = reader.value(i);
    } else if (f == "--out") {
      a.out = reader.value(i);
    } else if (f == "--site") {
      const std::string v = reader.value(i);
      if (v != "0" && v != "1" && v != "2") usage("--site needs 0, 1 or 2, got '" + v + "'");
      a.site = std::stoi(v);
    } else if (f == "--server") {
      a.server = reader.value(i);
    } else if (f == "--certs") {
      a.certs = reader.value(i);
    } else if (f == "--name") {
      a.name = reader.value(i);
    } else if (f == "--write-theta0") {
      a.theta0_file = reader.value(i);
    } else if (f == "--evaluate") {
      a.evaluate_file = reader.value(i);
    } else {
      usage("unknown option '" + f + "'");
    }
  }
  return a;
}

struct Setup {
  mf::Data data;
  meta::Mlp embedding = mf::embedding();
  baypr::NiwPrior<double> prior = mf::prior();
};

meta::MetaOptions training_options(double supcon) {
  mf::Settings s;
  s.supcon = supcon;
  return mf::meta_options(s, s.inner_steps);
}

// A site: episodes of its classes only, and the calibrated BayPrAnoMeta meta-step.
fed::Client make_site(const Setup& setup, const std::vector<int>& classes,
                      const meta::MetaOptions& options) {
  const auto sampler = std::make_shared<meta::ClassTaskSampler>(
      setup.data.train.x, setup.data.train.labels, classes, mf::task_shape());
  const auto stepper = std::make_shared<meta::MetaStepper<meta::Mlp>>(setup.embedding);
  fed::Client c;
  c.sample = [sampler](std::mt19937_64& rng) { return sampler->sample(rng); };
  c.step = [stepper, &setup, options](const Eigen::VectorXd& joint, const meta::MetaEpisode& e) {
    return meta::calibrated_meta_step(*stepper, joint, e, setup.prior, options);
  };
  return c;
}

// theta0 of the seed, with the calibration fitted on training episodes of the six classes.
Eigen::VectorXd shared_start(const Setup& setup, std::uint64_t seed) {
  const Eigen::VectorXd theta0 = setup.embedding.initial_parameters(seed);
  const meta::ClassTaskSampler all(setup.data.train.x, setup.data.train.labels, kAllClasses,
                                   mf::task_shape());
  return meta::with_calibration(theta0,
                                mf::initial_calibration(setup.embedding, theta0, all, setup.prior,
                                                        training_options(0.0), seed));
}

// Per-episode held-out AUROC of a joint vector (inner_steps 0: the untrained row's scoring).
Eigen::VectorXd held_out_auroc(const Setup& setup, const Eigen::VectorXd& joint,
                               const std::vector<mf::EvalEpisode>& episodes, int inner_steps) {
  meta::MetaOptions o = training_options(0.0);
  o.adapt.inner_steps = inner_steps;
  const Eigen::VectorXd theta = meta::split_calibration(joint).first;
  Eigen::VectorXd out(static_cast<Eigen::Index>(episodes.size()));
  for (std::size_t i = 0; i < episodes.size(); ++i) {
    const auto& e = episodes[i].episode;
    out(static_cast<Eigen::Index>(i)) = mf::episode_auroc(
        meta::scores(setup.embedding, theta, e.support, e.queries, setup.prior, o), e);
  }
  return out;
}

struct Row {
  std::string name;
  fed::Algorithm algorithm = fed::Algorithm::fedsgd;
  bool centralised = false;
  double supcon = 0.0;
  Eigen::VectorXd auroc;             // per held-out episode, mean over seeds
  std::vector<double> stationarity;  // per round, mean over seeds
  double seconds = 0.0;
};

int compare(const Args& a, const Setup& setup) {
  const std::vector<Eigen::Index> shots = {1, 5};
  const auto episodes = mf::evaluation_episodes(setup.data, shots, a.eval_episodes, a.seed);
  std::vector<Row> rows;
  for (const double supcon : {a.supcon, 0.0}) {
    const std::string tag = supcon > 0 ? " + SupCon" : "";
    rows.push_back({"centralised" + tag, fed::Algorithm::fedsgd, true, supcon, {}, {}, 0.0});
    rows.push_back({"FedSGD, 3 sites" + tag, fed::Algorithm::fedsgd, false, supcon, {}, {}, 0.0});
    rows.push_back({"FedAvg, 3 sites" + tag, fed::Algorithm::fedavg, false, supcon, {}, {}, 0.0});
  }
  const auto n = static_cast<Eigen::Index>(episodes.size());
  Eigen::VectorXd untrained = Eigen::VectorXd::Zero(n);
  for (auto& r : rows) {
    r.auroc = Eigen::VectorXd::Zero(n);
    r.stationarity.assign(static_cast<std::size_t>(a.rounds), 0.0);
  }
  const double inv = 1.0 / a.seeds;
  for (int s = 0; s < a.seeds; ++s) {
    const std::uint64_t seed = a.seed + static_cast<std::uint64_t>(s);
    const Eigen::VectorXd start = shared_start(setup, seed);
    untrained += inv * held_out_auroc(setup, start, episodes, 0);
    for (auto& r : rows) {
      const meta::MetaOptions o = training_options(r.supcon);
      std::vector<fed::Client> clients;
      if (r.centralised) {
        clients.push_back(make_site(setup, kAllClasses, o));
      } else {
        for (const auto& classes : kSiteClasses) clients.push_back(make_site(setup, classes, o));
      }
      fed::FederatedOptions f;
      f.algorithm = r.algorithm;
      f.rounds = a.rounds;
      f.local_episodes = a.local_episodes * (r.centralised ? 3 : 1);
      f.server.lr = mf::Settings{}.lr;
      f.local_lr = mf::Settings{}.lr;
      f.seed = baypr::derive_seed(seed, {0x666564ULL});
      const auto t0 = std::chrono::steady_clock::now();
      const fed::FederatedResult result = fed::federate(start, clients, f);
      r.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      r.auroc += inv * held_out_auroc(setup, result.theta, episodes, 1);
      for (std::size_t k = 0; k < result.history.size(); ++k) {
        r.stationarity[k] += inv * result.history[k].gradient_norm2;
      }
      std::cerr << "seed " << s << ": " << r.name << " done\n";
    }
  }

  std::vector<int> groups[2];
  std::vector<Eigen::Index> index[2];
  for (std::size_t i = 0; i < episodes.size(); ++i) {
    const std::size_t k = episodes[i].shots == 1 ? 0 : 1;
    groups[k].push_back(episodes[i].normal_class);
    index[k].push_back(static_cast<Eigen::Index>(i));
  }
  std::mt19937_64 rng(baypr::derive_seed(a.seed, {0x626f6fULL}));
  const auto interval = [&](const Eigen::VectorXd& v, std::size_t k) {
    return baypr::grouped_bootstrap_interval(v(index[k]), groups[k], 4000, 0.95, rng);
  };
  const auto cell = [](const baypr::MeanInterval& m, bool sign) {
    std::ostringstream s;
    s.setf(std::ios::fixed);
    s.precision(3);
    if (sign) s.setf(std::ios::showpos);
    s << m.mean << " [" << m.lower << ", " << m.upper << "]";
    return s.str();
  };
  std::ostringstream md, csv;
  md << "Held-out AUROC (classes 6-9), " << a.seeds << " seeds, " << a.rounds << " rounds of "
     << 3 * a.local_episodes << " episodes, " << a.eval_episodes
     << " episodes per class and K; [95% two-level bootstrap: classes, then episodes].\n\n"
     << "| row | K = 1 | K = 5 | - untrained, K = 1 | - untrained, K = 5 | - centralised, K = 1 "
        "| - centralised, K = 5 | training s / seed |\n|---|---|---|---|---|---|---|---|\n";
  csv << "row,K,statistic,mean,lower,upper\n";
  const auto csv_line = [&](const std::string& row, Eigen::Index k, const std::string& stat,
                            const baypr::MeanInterval& m) {
    csv << '"' << row << "\"," << k << ',' << stat << ',' << m.mean << ',' << m.lower << ','
        << m.upper << '\n';
  };
  md << "| untrained | " << cell(interval(untrained, 0), false) << " | "
     << cell(interval(untrained, 1), false) << " | | | | | |\n";
  for (std::size_t k = 0; k < 2; ++k)
    csv_line("untrained", shots[k], "auroc", interval(untrained, k));
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    const Row& central = rows[i - i % 3];
    md << "| " << r.name << " | " << cell(interval(r.auroc, 0), false) << " | "
       << cell(interval(r.auroc, 1), false) << " | " << cell(interval(r.auroc - untrained, 0), true)
       << " | " << cell(interval(r.auroc - untrained, 1), true) << " | ";
    if (r.centralised) {
      md << " | | ";
    } else {
      md << cell(interval(r.auroc - central.auroc, 0), true) << " | "
         << cell(interval(r.auroc - central.auroc, 1), true) << " | ";
    }
    std::ostringstream seconds;
    seconds.setf(std::ios::fixed);
    seconds.precision(1);
    seconds << r.seconds / a.seeds;
    md << seconds.str() << " |\n";
    for (std::size_t k = 0; k < 2; ++k) {
      csv_line(r.name, shots[k], "auroc", interval(r.auroc, k));
      csv_line(r.name, shots[k], "minus_untrained", interval(r.auroc - untrained, k));
      if (!r.centralised) {
        csv_line(r.name, shots[k], "minus_centralised", interval(r.auroc - central.auroc, k));
      }
    }
  }
  md << "\nStationarity (mean over seeds of the round's squared gradient norm, FedAvg: of the "
        "mean change / (E lr)), first and last 10% of rounds:\n\n| row | first | last |\n"
        "|---|---|---|\n";
  const std::size_t tenth = std::max<std::size_t>(1, static_cast<std::size_t>(a.rounds) / 10);
  for (const Row& r : rows) {
    double first = 0.0, last = 0.0;
    for (std::size_t k = 0; k < tenth; ++k) {
      first += r.stationarity[k] / static_cast<double>(tenth);
      last += r.stationarity[r.stationarity.size() - 1 - k] / static_cast<double>(tenth);
    }
    md << "| " << r.name << " | " << first << " | " << last << " |\n";
  }
  std::cout << md.str();
  if (!a.out.empty()) {
    std::filesystem::create_directories(a.out);
    baypr::detail::io::write_atomically(std::filesystem::path(a.out) / "federated.md", md.str(),
                                        "federated_fashion");
    baypr::detail::io::write_atomically(std::filesystem::path(a.out) / "federated.csv", csv.str(),
                                        "federated_fashion");
#ifdef BAYPR_REPORT_FIGURES
    // Each round's value is noisy (a few episodes): plot the mean over a window of rounds.
    const std::size_t window = std::max<std::size_t>(1, static_cast<std::size_t>(a.rounds) / 40);
    std::vector<baypr::report::Curve> curves;
    for (const Row& r : rows) {
      baypr::report::Curve c;
      c.label = r.name;
      for (std::size_t k = 0; k + window <= r.stationarity.size(); k += window) {
        double mean = 0.0;
        for (std::size_t j = k; j < k + window; ++j)
          mean += r.stationarity[j] / static_cast<double>(window);
        c.x.push_back(static_cast<double>(k) + 0.5 * static_cast<double>(window - 1));
        c.y.push_back(mean);
      }
      curves.push_back(std::move(c));
    }
    baypr::report::plot_series(std::filesystem::path(a.out) / "federated.png",
                               "Stationarity: squared norm of the round's gradient (mean over " +
                                   std::to_string(window) + " rounds and " +
                                   std::to_string(a.seeds) + " seeds)",
                               "round", "|g|^2 (log scale)", curves, true);
#endif
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  if (!mf::data_available(a.data)) {
    std::cerr << "federated_fashion: Fashion-MNIST not found in " << a.data
              << " (Debian: dataset-fashion-mnist)\n";
    return 1;
  }
  try {
    Setup setup;
    setup.data = mf::load(a.data);
    if (!a.theta0_file.empty()) {
      baypr::write_npy(a.theta0_file, shared_start(setup, a.seed));
      return 0;
    }
    if (!a.evaluate_file.empty()) {
      const auto joint = baypr::read_npy_matrix<double>(a.evaluate_file);
      const auto episodes = mf::evaluation_episodes(setup.data, {1, 5}, a.eval_episodes, a.seed);
      // Episodes are K = 1 first, then K = 5, the same number of each.
      for (const int steps : {0, 1}) {
        const Eigen::VectorXd v = held_out_auroc(setup, joint.col(0), episodes, steps);
        const Eigen::Index half = v.size() / 2;
        std::cout << "  held-out AUROC, " << steps << " inner step(s): K = 1 "
                  << v.head(half).mean() << ", K = 5 " << v.tail(v.size() - half).mean() << "\n";
      }
      return 0;
    }
    if (a.site >= 0) {
#ifdef BAYPR_FEDERATED_GRPC
      if (a.server.empty() || a.certs.empty() || a.name.empty()) {
        usage("--site needs --server, --certs and --name");
      }
      fed::SiteOptions o;
      o.server = a.server;
      o.server_name = "localhost";
      o.tls = {std::filesystem::path(a.certs) / "ca.crt",
               std::filesystem::path(a.certs) / (a.name + ".crt"),
               std::filesystem::path(a.certs) / (a.name + ".key")};
      const fed::Client site = make_site(setup, kSiteClasses[static_cast<std::size_t>(a.site)],
                                         training_options(a.supcon));
      const fed::SiteResult r = fed::run_site(site, o);
      std::cerr << "site " << r.site << " (" << a.name << "): " << r.rounds_submitted
                << " rounds answered, " << r.rounds_late << " late\n";
      if (!a.out.empty()) baypr::write_npy(a.out, r.theta);
      return 0;
#else
      usage("--site needs a build with BAYPR_WITH_GRPC");
#endif
    }
    return compare(a, setup);
  } catch (const std::exception& e) {
    std::cerr << "federated_fashion: " << e.what() << '\n';
    return 1;
  }
}
