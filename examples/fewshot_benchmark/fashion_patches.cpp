// Fashion-MNIST as aligned images cut into a patch grid: per-position normality models against
// PaDiM and PatchCore on the same patches and the same episodes.
//
// Patches: the standardised pixels (as in fashion.cpp) as patch_grid.hpp cuts them (an 8 x 8 grid
// of 7 x 7 patches, d = 49); image score = max over the positions. Methods (all on the same patch rows):
//   per-position             PerPositionScorer: one NIW posterior per position under one prior
//                            learned across the positions (fit_prior, kappa0 held at 1e-4), llr
//   per-position, 3x3 pooled the same, each position fitted on its 3 x 3 neighbourhood's patches
//   padim                    PadimScorer: per-position Gaussian, covariance + 0.01 I (published)
//   patchcore                every support patch in the memory bank, nearest-patch distance
//   bayes, one model         BayesianScorer on all patches pooled (no positions), llr
//   per-position, earlier    the defaults before the validation choice: kappa0 learned, tail
// Protocol: the one-class episodes of fashion.cpp (K normal training images; 12 normal + 4
// anomalous test images); with --whole-support (and --full), also the whole training split of the
// class as support, on 10 query sets of 50 normal + 50 anomalous test images per class.
#include <baypr/eval/episodes.hpp>
#include <baypr/io/idx.hpp>
#include <baypr/score/per_position.hpp>
#include <baypr_bench/methods.hpp>

#include <random>
#include <sstream>
#include <stdexcept>
#include <string>

#include "common.hpp"
#include "patch_grid.hpp"

namespace bench {

namespace {

using patch_grid::kGrid;
using patch_grid::kPositions;
using patch_grid::patch_method;
using patch_grid::patch_rows_of;

std::vector<baypr::EpisodeMethod> patch_methods() {
  baypr::PerPositionScorerOptions own;
  own.grid_rows = kGrid;
  own.grid_cols = kGrid;
  baypr::PerPositionScorerOptions pooled = own;
  pooled.pool_neighbourhood = true;
  // The defaults before they were chosen on validation classes: kappa0 learned, calibrated tail.
  baypr::PerPositionScorerOptions before = own;
  before.kappa0.reset();
  before.score = baypr::BayesScore::tail;
  baypr::PatchCoreOptions bank;
  bank.coreset.ratio = 1.0;
  return {patch_method("per-position", baypr::PerPositionScorer(own)),
          patch_method("per-position, 3x3 pooled", baypr::PerPositionScorer(pooled)),
          patch_method("padim (Gaussian + 0.01 I)", baypr::PadimScorer(kGrid, kGrid)),
          patch_method("patchcore (every support patch)", baypr::PatchCoreScorer<double>(bank)),
          patch_method("bayes, one model for all patches", baypr::BayesianScorer()),
          patch_method("per-position, kappa0 learned, tail (the earlier defaults)",
                       baypr::PerPositionScorer(before))};
}

// Paired differences method a - method b per episode (class-averaged), with the two-level
// bootstrap interval (classes, then episodes).
baypr::MeanInterval paired(const baypr::OneClassResults& r, std::size_t a, std::size_t b,
                           std::size_t k, std::uint64_t seed) {
  std::vector<double> diff;
  std::vector<int> groups;
  for (std::size_t c = 0; c < r.classes.size(); ++c) {
    const auto& va = r.auroc[a][c][k];
    const auto& vb = r.auroc[b][c][k];
    for (std::size_t e = 0; e < va.size(); ++e) {
      diff.push_back(va[e] - vb[e]);
      groups.push_back(static_cast<int>(c));
    }
  }
  std::mt19937_64 rng(seed);
  return baypr::grouped_bootstrap_interval(
      Eigen::Map<const Eigen::VectorXd>(diff.data(), static_cast<Eigen::Index>(diff.size())),
      groups, 2000, 0.95, rng);
}

}  // namespace

void run_fashion_patches(const Args& args, Report& report) {
  const auto t0 = Clock::now();
  log_line(t0, "Fashion-MNIST patches: reading " + args.data_dir);
  const FashionPixels pixels = load_fashion_pixels(args);
  baypr::FewShotData data;
  data.train_labels = pixels.train_labels;
  data.test_labels = pixels.test_labels;
  const Eigen::MatrixXd train_patches = patch_rows_of(pixels.train);
  const Eigen::MatrixXd test_patches = patch_rows_of(pixels.test);
  data.embeddings.push_back({"patches-7x7", train_patches, test_patches});

  const baypr::OneClassOptions options = fashion_episode_options(args, t0, "Fashion-MNIST patches");
  const auto methods = patch_methods();
  const auto r = baypr::run_one_class_episodes(data, options, methods);
  log_line(t0, "Fashion-MNIST patches: episodes done");

  std::vector<std::string> names;
  std::vector<std::vector<baypr::MeanInterval>> cells(r.methods.size());
  for (std::size_t m = 0; m < r.methods.size(); ++m) {
    names.push_back(methods[m].name);
    for (std::size_t k = 0; k < r.shots.size(); ++k) {
      const auto values = r.class_averaged(m, k);
      cells[m].push_back(baypr::mean_interval(values));
      report.csv.push_back(csv_row("fashion-mnist", "episode_12+4", "patches-7x7", methods[m].name,
                                   "class mean", "image_auroc", r.shots[k], values));
    }
  }
  // Paired: each per-position row against PaDiM and PatchCore.
  std::vector<std::string> diff_names;
  std::vector<std::vector<baypr::MeanInterval>> diff_cells;
  for (const std::size_t a : {std::size_t{0}, std::size_t{1}}) {
    for (const std::size_t b : {std::size_t{2}, std::size_t{3}}) {
      diff_names.push_back(methods[a].name + " - " + methods[b].name);
      diff_cells.emplace_back();
      for (std::size_t k = 0; k < r.shots.size(); ++k) {
        diff_cells.back().push_back(paired(r, a, b, k, args.seed + 17 * k + a * 5 + b));
      }
    }
  }
  std::ostringstream md;
  md << "## Fashion-MNIST patch grids: per-position models, PaDiM, PatchCore\n\n"
     << "Aligned images: the standardised pixels cut into 7 x 7 patches every 3 pixels (an 8 x 8 "
        "grid, d = 49 per patch); image score = max over positions. The one-class episodes of the "
        "Fashion-MNIST section ("
     << args.episodes << " per class per K, classes";
  for (const int c : args.classes) md << " " << c;
  md << ").\n\n"
     << table(names, r.shots, cells)
     << "\nPaired per-episode differences of image AUROC, mean [95% two-level bootstrap: classes, "
        "then episodes]:\n\n"
     << table(diff_names, r.shots, diff_cells);

  if (args.whole_support) {
    // The whole training split of the class as support; 10 disjoint query sets of 50 normal +
    // 50 anomalous test images per class (all scored at once, AUROC per set).
    constexpr int kSets = 10, kPer = 50;
    const std::size_t nc = args.classes.size();
    std::vector<std::vector<std::vector<double>>> auc(
        methods.size(), std::vector<std::vector<double>>(nc, std::vector<double>(kSets)));
    for (std::size_t ci = 0; ci < nc; ++ci) {
      const int c = args.classes[ci];
      std::vector<Eigen::Index> rows;
      for (Eigen::Index i = 0; i < data.train_labels.size(); ++i) {
        if (data.train_labels(i) == c) rows.push_back(i);
      }
      const Eigen::MatrixXd support = train_patches(rows, Eigen::all);
      std::vector<Eigen::Index> normal, anomalous;
      for (Eigen::Index i = 0; i < data.test_labels.size(); ++i) {
        (data.test_labels(i) == c ? normal : anomalous).push_back(i);
      }
      std::mt19937_64 rng(args.seed + static_cast<std::uint64_t>(c));
      std::shuffle(normal.begin(), normal.end(), rng);
      std::shuffle(anomalous.begin(), anomalous.end(), rng);
      constexpr auto kNeeded = static_cast<std::size_t>(kSets * kPer);
      if (normal.size() < kNeeded || anomalous.size() < kNeeded)
        throw std::runtime_error("fashion-patches: too few test images of class " +
                                 std::to_string(c));
      normal.resize(kSets * kPer);
      anomalous.resize(kSets * kPer);
      std::vector<Eigen::Index> q = normal;
      q.insert(q.end(), anomalous.begin(), anomalous.end());
      const Eigen::MatrixXd queries = test_patches(q, Eigen::all);
      Eigen::VectorXi labels = Eigen::VectorXi::Zero(2 * kPer);
      labels.tail(kPer).setOnes();
      for (std::size_t m = 0; m < methods.size(); ++m) {
        if (m == 3) continue;  // PatchCore: see the note below the table
        const Eigen::VectorXd all = methods[m].fit_score(support, queries);
        for (int set = 0; set < kSets; ++set) {
          Eigen::VectorXd sc(2 * kPer);
          sc.head(kPer) = all.segment(set * kPer, kPer);
          sc.tail(kPer) = all.segment(kSets * kPer + set * kPer, kPer);
          auc[m][ci][static_cast<std::size_t>(set)] = baypr::auroc(sc, labels);
        }
        log_line(t0, "Fashion-MNIST patches: whole training split, class " + std::to_string(c) +
                         ", " + methods[m].name);
      }
    }
    md << "\n### The whole training split of the class as support\n\n"
       << "About 6000 support images per class; 10 disjoint query sets of 50 normal + 50 "
          "anomalous test images per class. Mean image AUROC (each set first averaged over the "
          "classes) [95% Student-t interval over sets]; paired differences with the two-level "
          "bootstrap (classes, then sets).\n\n| method | image AUROC |\n|---|---|\n";
    for (std::size_t m = 0; m < methods.size(); ++m) {
      if (m == 3) continue;
      const auto values = baypr::group_averaged(
          nc, kSets, [&](std::size_t c, std::size_t e) { return auc[m][c][e]; });
      md << "| " << methods[m].name << " | " << cell(baypr::mean_interval(values)) << " |\n";
      report.csv.push_back(csv_row("fashion-mnist", "whole_train_split_50+50", "patches-7x7",
                                   methods[m].name, "class mean", "image_auroc", 0, values));
    }
    for (const std::size_t a : {std::size_t{0}, std::size_t{1}}) {
      std::vector<double> diff;
      std::vector<int> groups;
      for (std::size_t c = 0; c < nc; ++c) {
        for (std::size_t e = 0; e < kSets; ++e) {
          diff.push_back(auc[a][c][e] - auc[2][c][e]);
          groups.push_back(static_cast<int>(c));
        }
      }
      std::mt19937_64 rng(args.seed + 99 + a);
      const auto ci = baypr::grouped_bootstrap_interval(
          Eigen::Map<const Eigen::VectorXd>(diff.data(), static_cast<Eigen::Index>(diff.size())),
          groups, 2000, 0.95, rng);
      md << "| " << methods[a].name << " - " << methods[2].name << " (paired) | " << cell(ci)
         << " |\n";
    }
    md << "\nPatchCore is left out of this table: an exact nearest-patch search over all ~384k "
          "support patches per query patch is what its coreset exists for, and a coreset run is "
          "another comparison.\n";
  }
  report.markdown += md.str() + "\n";
}

}  // namespace bench
