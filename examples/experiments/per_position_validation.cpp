// A one-off (compiled, not run, by the sanitize preset's BAYPR_CHECK_PROGRAMS): how the
// per-position scorer's defaults were chosen (issue 14: "per-position defaults chosen on
// validation classes"). PerPositionScorer variants against PaDiM on the Fashion-MNIST patch grid
// of the benchmark's fashion-patches section (examples/fewshot_benchmark/patch_grid.hpp), on
// validation classes only (default {3, 4, 5}; the README's table uses classes 0 and 1, and
// {6, ..., 9} are kept for one check of the choice).
//
// Variants: the prior's scatter family (isotropic / diagonal Psi0), the scatter floor (0.01 / 0.1
// of the support's mean per-coordinate variance), nu0 learned or kept at the moment start's
// (d + 2), each position on its own patches or on its 3 x 3 neighbourhood's, and the score (tail /
// llr / nll): 48 variants (0-47); then kappa0 held fixed at 1e-4 or 1e-2 (48-55); then the
// library's defaults (56); each fitted on the same episodes as PaDiM (Gaussian + 0.01 I).
//
// Build and run (from the repository root; Fashion-MNIST from Debian's fashion-mnist data in
// /usr/share/datasets/fashion-mnist):
//   g++ -std=c++20 -O3 -march=native -DNDEBUG -DBAYPR_WITH_XSIMD=1 -Iinclude -Ibench
//       -I/usr/include/eigen3 examples/experiments/per_position_validation.cpp -lz -pthread
//       -o /tmp/ppv && /tmp/ppv [--classes 3,4,5] [--episodes 20] [--seed 2026] [--only N,...]
//       [--threads T]
// The sweep behind the defaults: --episodes 40 (all variants: 27 min on one thread here), then
// --only 49,56 (the choice and the library's defaults); the one check: --classes 6,7,8,9
// --episodes 40 --only 0,48,49.
// Output: per variant, the class-averaged image AUROC at K = 1, 2, 4, 8, its mean over K, and the
// paired difference to PaDiM (mean over K of per-episode differences, 95% two-level bootstrap:
// classes, then episodes), sorted by the mean over K.
#include <baypr/eval/episodes.hpp>
#include <baypr/eval/metrics.hpp>
#include <baypr/io/idx.hpp>
#include <baypr/score/per_position.hpp>
#include <baypr_bench/methods.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "../cli_args.hpp"
#include "../fewshot_benchmark/patch_grid.hpp"

namespace pg = bench::patch_grid;

namespace {

struct Variant {
  std::string name;
  baypr::PerPositionScorerOptions options;
};

// The library's defaults on the benchmark's grid.
baypr::PerPositionScorerOptions on_grid() {
  baypr::PerPositionScorerOptions o;
  o.grid_rows = pg::kGrid;
  o.grid_cols = pg::kGrid;
  return o;
}

const char* score_name(baypr::BayesScore score) {
  return score == baypr::BayesScore::tail  ? "tail"
         : score == baypr::BayesScore::llr ? "llr"
                                           : "nll";
}

std::vector<Variant> variants() {
  std::vector<Variant> out;
  for (const bool diagonal : {false, true}) {
    for (const double floor : {0.01, 0.1}) {
      for (const bool learn_dof : {true, false}) {
        for (const bool pool : {false, true}) {
          for (const auto score :
               {baypr::BayesScore::tail, baypr::BayesScore::llr, baypr::BayesScore::nll}) {
            baypr::PerPositionScorerOptions o = on_grid();
            o.kappa0.reset();  // learned, as before the choice
            o.prior_fit.scatter =
                diagonal ? baypr::ScatterFamily::diagonal : baypr::ScatterFamily::isotropic;
            o.scatter_floor = floor;
            o.prior_fit.learn_dof = learn_dof;
            o.pool_neighbourhood = pool;
            o.score = score;
            std::ostringstream name;
            name << (diagonal ? "diag" : "iso") << " floor " << floor
                 << (learn_dof ? " nu0 learned" : " nu0 = d+2") << (pool ? " 3x3" : " own") << " "
                 << score_name(score);
            out.push_back({name.str(), o});
          }
        }
      }
    }
  }
  // Then kappa0 held fixed (not learned) at a small value, the rest as the default: with one row
  // per position a learned kappa0 and psi scale together, and the rank-one term
  // kappa0 n / (kappa0 + n) (x - mu0)(x - mu0)^T of Psi_n then discounts deviations along the
  // support patch (BayesianScorer's K = 1 finding, see its kappa0 option).
  for (const double kappa0 : {1e-4, 1e-2}) {
    for (const bool diagonal : {false, true}) {
      for (const auto score : {baypr::BayesScore::tail, baypr::BayesScore::llr}) {
        baypr::PerPositionScorerOptions o = on_grid();
        o.kappa0.reset();  // held by prior_fit.start below, as it was swept
        o.prior_fit.scatter =
            diagonal ? baypr::ScatterFamily::diagonal : baypr::ScatterFamily::isotropic;
        o.prior_fit.learn_kappa = false;
        o.prior_fit.start =
            baypr::NiwPrior<double>::isotropic(pg::kDim, kappa0, pg::kDim + 2.0, 1.0);
        o.score = score;
        std::ostringstream name;
        name << (diagonal ? "diag" : "iso") << " floor 0.01 kappa0 = " << kappa0 << " own "
             << score_name(score);
        out.push_back({name.str(), o});
      }
    }
  }
  // Last, the library's defaults as they now are (PerPositionScorerOptions{} on this grid).
  out.push_back({"library default", on_grid()});
  return out;
}

}  // namespace

int main(int argc, char** argv) try {
  std::vector<int> classes = {3, 4, 5};
  int episodes = 20;
  std::uint64_t seed = 2026;
  int threads = 1;
  std::vector<long long> only;
  std::string dir = "/usr/share/datasets/fashion-mnist";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--classes") {
      classes.clear();
      for (const long long c : cli::integer_list(value)) classes.push_back(static_cast<int>(c));
    } else if (flag == "--episodes") {
      episodes = std::stoi(value);
    } else if (flag == "--seed") {
      seed = std::stoull(value);
    } else if (flag == "--threads") {
      threads = std::stoi(value);
    } else if (flag == "--only") {
      only = cli::integer_list(value);
    } else if (flag == "--data") {
      dir = value;
    } else {
      throw std::invalid_argument("unknown option " + flag);
    }
  }
  const auto train = baypr::read_idx_dataset(dir + "/train-images-idx3-ubyte.gz",
                                             dir + "/train-labels-idx1-ubyte.gz");
  const auto test = baypr::read_idx_dataset(dir + "/t10k-images-idx3-ubyte.gz",
                                            dir + "/t10k-labels-idx1-ubyte.gz");
  baypr::FewShotData data;
  {
    const Eigen::MatrixXd all_train = baypr::to_unit_interval(train.images);
    const auto standardiser = baypr::PixelStandardiser::fit(all_train);
    std::vector<Eigen::Index> keep;
    for (Eigen::Index i = 0; i < train.labels.size(); ++i) {
      if (std::find(classes.begin(), classes.end(), train.labels(i)) != classes.end()) {
        keep.push_back(i);
      }
    }
    data.train_labels = train.labels(keep);
    data.test_labels = test.labels;
    data.embeddings.push_back(
        {"patches-7x7", pg::patch_rows_of(standardiser.apply(all_train(keep, Eigen::all))),
         pg::patch_rows_of(standardiser.apply(baypr::to_unit_interval(test.images)))});
  }

  const auto all = variants();
  std::vector<Variant> chosen;
  for (std::size_t v = 0; v < all.size(); ++v) {
    if (only.empty() ||
        std::find(only.begin(), only.end(), static_cast<long long>(v)) != only.end()) {
      chosen.push_back(all[v]);
    }
  }
  std::vector<baypr::EpisodeMethod> methods = {
      pg::patch_method("padim (Gaussian + 0.01 I)", baypr::PadimScorer(pg::kGrid, pg::kGrid))};
  for (const auto& v : chosen) {
    methods.push_back(pg::patch_method(v.name, baypr::PerPositionScorer(v.options)));
  }
  baypr::OneClassOptions options;
  options.classes = classes;
  options.episodes = episodes;
  options.seed = seed;
  options.threads = threads;
  options.progress = [](std::string_view what) { std::cerr << what << "\n"; };
  const auto r = baypr::run_one_class_episodes(data, options, methods);

  // Per method: class-averaged AUROC per K; mean over K; paired difference to PaDiM, per episode
  // averaged over K, with the two-level bootstrap.
  struct Row {
    std::string name;
    std::vector<double> per_k;
    double mean = 0.0;
    baypr::MeanInterval diff;
  };
  std::vector<Row> rows;
  const std::size_t nk = r.shots.size();
  for (std::size_t m = 0; m < methods.size(); ++m) {
    Row row{methods[m].name, {}, 0.0, {}};
    for (std::size_t k = 0; k < nk; ++k) {
      row.per_k.push_back(baypr::mean_interval(r.class_averaged(m, k)).mean);
      row.mean += row.per_k.back() / static_cast<double>(nk);
    }
    std::vector<double> diff;
    std::vector<int> groups;
    for (std::size_t c = 0; c < r.classes.size(); ++c) {
      for (std::size_t e = 0; e < static_cast<std::size_t>(episodes); ++e) {
        double d = 0.0;
        for (std::size_t k = 0; k < nk; ++k) d += r.auroc[m][c][k][e] - r.auroc[0][c][k][e];
        diff.push_back(d / static_cast<double>(nk));
        groups.push_back(static_cast<int>(c));
      }
    }
    std::mt19937_64 rng(seed + m);
    row.diff = baypr::grouped_bootstrap_interval(
        Eigen::Map<const Eigen::VectorXd>(diff.data(), static_cast<Eigen::Index>(diff.size())),
        groups, 2000, 0.95, rng);
    rows.push_back(std::move(row));
  }
  std::stable_sort(rows.begin(), rows.end(),
                   [](const Row& a, const Row& b) { return a.mean > b.mean; });
  std::printf("| variant | K=1 | K=2 | K=4 | K=8 | mean | - padim, mean over K [95%%] |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (const auto& row : rows) {
    std::printf("| %s |", row.name.c_str());
    for (const double x : row.per_k) std::printf(" %.3f |", x);
    std::printf(" %.3f | %+.3f [%+.3f, %+.3f] |\n", row.mean, row.diff.mean, row.diff.lower,
                row.diff.upper);
  }
  return 0;
} catch (const std::exception& e) {
  std::cerr << "per_position_validation: " << e.what() << "\n";
  return 1;
}
