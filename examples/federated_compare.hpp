// examples/federated_compare.hpp: the comparison examples/federated_fashion.cpp and
// examples/federated_textures.cpp run on their own data: from the same start, centralised
// training against FedSGD and FedAvg over the sites, with the SupCon term and without, after the
// same number of episodes; held-out AUROC per evaluation episode averaged over seeds, paired
// differences with 95% two-level bootstrap intervals (the evaluation's groups, then episodes), and
// the stationarity curve.
//
//   federated_compare::Experiment    what the data set provides (start, sites, evaluation)
//   federated_compare::compare(experiment, config)   the table on stdout; with config.out also
//                                    <name>.md, <name>.csv and <name>.png (stationarity) there
#pragma once

#include <baypr/baypr.hpp>
#include <baypr/federated/algorithms.hpp>
#include <baypr/io/detail/file.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#ifdef BAYPR_REPORT_FIGURES
#include "report.hpp"
#endif

namespace federated_compare {

namespace fed = baypr::federated;

struct Experiment {
  std::string name;     // the output files' stem, e.g. "federated"
  std::string program;  // for messages
  std::string title;    // the table's first words, e.g. "Held-out AUROC (classes 6-9)"
  std::string group;    // the bootstrap's outer unit, plural, e.g. "classes"
  std::string each;     // e.g. "class": "episodes per class and K"
  int sites = 3;
  std::vector<Eigen::Index> shots;        // the K values, in the order of the episodes' index
  std::vector<std::size_t> episode_shot;  // per evaluation episode: its index into shots
  std::vector<int> episode_group;         // per evaluation episode: its bootstrap group
  double lr = 1e-3;                       // the server's Adam step and FedAvg's local step
  // The seed's shared start (theta0 and the calibration fitted at it).
  std::function<Eigen::VectorXd(std::uint64_t seed)> start;
  // A site's client (site in [0, sites), or -1: one site with everything, the centralised row).
  std::function<fed::Client(int site, double supcon)> make_site;
  // Held-out AUROC per evaluation episode of a joint vector (inner_steps 0: the untrained row).
  std::function<Eigen::VectorXd(const Eigen::VectorXd& joint, int inner_steps)> evaluate;
};

struct Config {
  int seeds = 5, rounds = 500, local_episodes = 4, eval_episodes = 50;
  double supcon = 0.1;
  std::uint64_t seed = 0;
  std::string out;
};

struct Row {
  std::string name;
  fed::Algorithm algorithm = fed::Algorithm::fedsgd;
  bool centralised = false;
  double supcon = 0.0;
  Eigen::VectorXd auroc;             // per held-out episode, mean over seeds
  std::vector<double> stationarity;  // per round, mean over seeds
  double seconds = 0.0;
};

inline int compare(const Experiment& x, const Config& a) {
  const std::string sites = std::to_string(x.sites) + " sites";
  std::vector<Row> rows;
  for (const double supcon : {a.supcon, 0.0}) {
    const std::string tag = supcon > 0 ? " + SupCon" : "";
    rows.push_back({"centralised" + tag, fed::Algorithm::fedsgd, true, supcon, {}, {}, 0.0});
    rows.push_back({"FedSGD, " + sites + tag, fed::Algorithm::fedsgd, false, supcon, {}, {}, 0.0});
    rows.push_back({"FedAvg, " + sites + tag, fed::Algorithm::fedavg, false, supcon, {}, {}, 0.0});
  }
  const auto n = static_cast<Eigen::Index>(x.episode_shot.size());
  Eigen::VectorXd untrained = Eigen::VectorXd::Zero(n);
  for (auto& r : rows) {
    r.auroc = Eigen::VectorXd::Zero(n);
    r.stationarity.assign(static_cast<std::size_t>(a.rounds), 0.0);
  }
  const double inv = 1.0 / a.seeds;
  for (int s = 0; s < a.seeds; ++s) {
    const std::uint64_t seed = a.seed + static_cast<std::uint64_t>(s);
    const Eigen::VectorXd start = x.start(seed);
    untrained += inv * x.evaluate(start, 0);
    for (auto& r : rows) {
      std::vector<fed::Client> clients;
      if (r.centralised) {
        clients.push_back(x.make_site(-1, r.supcon));
      } else {
        for (int i = 0; i < x.sites; ++i) clients.push_back(x.make_site(i, r.supcon));
      }
      fed::FederatedOptions f;
      f.algorithm = r.algorithm;
      f.rounds = a.rounds;
      f.local_episodes = a.local_episodes * (r.centralised ? x.sites : 1);
      f.server.lr = x.lr;
      f.local_lr = x.lr;
      f.seed = baypr::derive_seed(seed, {0x666564ULL});
      const auto t0 = std::chrono::steady_clock::now();
      const fed::FederatedResult result = fed::federate(start, clients, f);
      r.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      r.auroc += inv * x.evaluate(result.theta, 1);
      for (std::size_t k = 0; k < result.history.size(); ++k) {
        r.stationarity[k] += inv * result.history[k].gradient_norm2;
      }
      std::cerr << "seed " << s << ": " << r.name << " done\n";
    }
  }

  std::vector<std::vector<int>> groups(x.shots.size());
  std::vector<std::vector<Eigen::Index>> index(x.shots.size());
  for (std::size_t i = 0; i < x.episode_shot.size(); ++i) {
    groups[x.episode_shot[i]].push_back(x.episode_group[i]);
    index[x.episode_shot[i]].push_back(static_cast<Eigen::Index>(i));
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
  md << x.title << ", " << a.seeds << " seeds, " << a.rounds << " rounds of "
     << x.sites * a.local_episodes << " episodes, " << a.eval_episodes << " episodes per " << x.each
     << " and K; [95% two-level bootstrap: " << x.group << ", then episodes].\n\n| row";
  for (const Eigen::Index k : x.shots) md << " | K = " << k;
  for (const char* ref : {"untrained", "centralised"}) {
    for (const Eigen::Index k : x.shots) md << " | - " << ref << ", K = " << k;
  }
  md << " | training s / seed |\n|---";
  for (std::size_t c = 0; c < 3 * x.shots.size() + 1; ++c) md << "|---";
  md << "|\n";
  csv << "row,K,statistic,mean,lower,upper\n";
  const auto csv_line = [&](const std::string& row, Eigen::Index k, const std::string& stat,
                            const baypr::MeanInterval& m) {
    csv << '"' << row << "\"," << k << ',' << stat << ',' << m.mean << ',' << m.lower << ','
        << m.upper << '\n';
  };
  md << "| untrained";
  for (std::size_t k = 0; k < x.shots.size(); ++k)
    md << " | " << cell(interval(untrained, k), false);
  for (std::size_t c = 0; c < 2 * x.shots.size() + 2; ++c) md << " |";
  md << "\n";
  for (std::size_t k = 0; k < x.shots.size(); ++k)
    csv_line("untrained", x.shots[k], "auroc", interval(untrained, k));
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    const Row& central = rows[i - i % 3];
    md << "| " << r.name;
    for (std::size_t k = 0; k < x.shots.size(); ++k)
      md << " | " << cell(interval(r.auroc, k), false);
    for (std::size_t k = 0; k < x.shots.size(); ++k)
      md << " | " << cell(interval(r.auroc - untrained, k), true);
    for (std::size_t k = 0; k < x.shots.size(); ++k) {
      md << " | " << (r.centralised ? "" : cell(interval(r.auroc - central.auroc, k), true));
    }
    std::ostringstream seconds;
    seconds.setf(std::ios::fixed);
    seconds.precision(1);
    seconds << r.seconds / a.seeds;
    md << " | " << seconds.str() << " |\n";
    for (std::size_t k = 0; k < x.shots.size(); ++k) {
      csv_line(r.name, x.shots[k], "auroc", interval(r.auroc, k));
      csv_line(r.name, x.shots[k], "minus_untrained", interval(r.auroc - untrained, k));
      if (!r.centralised) {
        csv_line(r.name, x.shots[k], "minus_centralised", interval(r.auroc - central.auroc, k));
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
    const std::filesystem::path dir(a.out);
    std::filesystem::create_directories(dir);
    baypr::detail::io::write_atomically(dir / (x.name + ".md"), md.str(), x.program);
    baypr::detail::io::write_atomically(dir / (x.name + ".csv"), csv.str(), x.program);
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
    baypr::report::plot_series(dir / (x.name + ".png"),
                               "Stationarity: squared norm of the round's gradient (mean over " +
                                   std::to_string(window) + " rounds and " +
                                   std::to_string(a.seeds) + " seeds)",
                               "round", "|g|^2 (log scale)", curves, true);
#endif
  }
  return 0;
}

}  // namespace federated_compare
