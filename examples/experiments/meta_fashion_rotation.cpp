// Meta-training on Fashion-MNIST over all ten cyclic class splits (issue 11): does the default
// objective beat the untrained embedding, and tie Proto-MAML, on held-out classes in general, or
// only on the fixed split's four?
//
// Why: meta_training's split holds out four classes (Shirt, Sneaker, Bag, Ankle boot). Its
// two-level bootstrap resamples those four, so a lower bound is roughly three parts the worst
// class's gain and one part another's, and one class decides the verdict. Rotating the split
// holds every class out four times, and the pooled interval resamples ten classes.
//
// Split r = 0..9 (labels mod 10): meta-train {r, r+1, r+2}, validation {r+3, r+4, r+5}, held out
// {r+6, ..., r+9}. Split 0 is meta_training's, and this program reproduces its rows (a), (b) and
// Proto-MAML on it exactly (same seeds, episodes, training). Every split: meta_training's settings
// (meta_fashion::Settings), 5 training seeds (2026-2030), up to 60 epochs of 100 updates with
// patience 10, each run's best epoch kept by 12 validation episodes per validation class and K;
// evaluation on 50 episodes per held-out class and K in {1, 5}; rows: (a) untrained + Bayesian
// llr (no inner step), (b) BayPrAnoMeta (discriminative, default), (c) Proto-MAML; per-episode
// AUROC averaged over seeds, differences paired per episode.
// Pooled: every split's episodes together (each class is the normal class of 200 episodes per K,
// 50 in each of the 4 splits that hold it out); 95% two-level bootstrap over the 10 normal classes,
// then episodes within a class.
//
// Disclosure, before the first run: the settings (SupCon 0.1, Adam 1e-4) were chosen on split 0's
// validation classes {3, 4, 5}, which splits 4-8 hold out; they are also the authors' values. The
// split 0 rows have been reported many times. The criteria are stated for split 0; this is
// supplementary evidence, reported whatever it shows.
//
// Measured (the full run, 96 s on one core; mean [95% two-level bootstrap]), K = 1 / K = 5:
//   split 0 reproduces meta_training's means (+0.061 / +0.015 over untrained, +0.001 / +0.003
//   over Proto-MAML; the intervals differ in the last digit, other bootstrap draws).
//   Pooled over the 10 splits:
//     (b) - (a), default - untrained    +0.034 [+0.009, +0.061]   +0.011 [-0.007, +0.028]
//     (c) - (a), Proto-MAML - untrained +0.031 [+0.010, +0.055]   +0.009 [-0.009, +0.026]
//     (b) - (c), default - Proto-MAML   +0.003 [-0.010, +0.016]   +0.002 [-0.005, +0.011]
//   Per split, (b) - (a) ranges over +0.000..+0.079 at K = 1 and -0.015..+0.029 at K = 5; in
//   split 4 (held out 0-3) no run beats its start on validation and train() returns the start.
//   Per class (mean over its 4 splits), (b) - (a): Dress (3) loses at both K (-0.028 / -0.040),
//   Bag (8) at K = 5 (-0.023); Shirt (6) gains most (+0.112 / +0.069).
//   So: a gain at K = 1 that holds over the splits, at K = 5 a small one that no interval
//   separates from 0, and a tie with Proto-MAML within 0.01 at both K.
//
// Build and run (repository root; Fashion-MNIST from Debian's dataset-fashion-mnist):
//   g++ -std=c++20 -O3 -march=native -DNDEBUG -Wno-maybe-uninitialized -Iinclude -Ibench \
//       -isystem /usr/include/eigen3 examples/experiments/meta_fashion_rotation.cpp \
//       -lz -o /tmp/mfr
//   /tmp/mfr [--splits 0,1,...] [--seeds N] [--episodes E] [--data DIR]
#include <baypr/baypr.hpp>
#include <baypr/meta/adapt.hpp>
#include <baypr/meta/baselines.hpp>
#include <baypr/meta/mlp.hpp>
#include <baypr/meta/trainer.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "../cli_args.hpp"
#include "../meta_fashion_data.hpp"

namespace {

namespace meta = baypr::meta;
namespace mf = meta_fashion;

std::vector<int> classes_from(int first, int count) {
  std::vector<int> out;
  for (int i = 0; i < count; ++i) out.push_back((first + i) % 10);
  return out;
}

constexpr std::array<Eigen::Index, 2> shots = {1, 5};

struct Pooled {
  // [row][K index]: per-episode AUROC averaged over seeds, every split's episodes in turn
  std::array<std::array<std::vector<double>, 2>, 3> auroc;
  std::array<std::vector<int>, 2> normal_class;
};

baypr::MeanInterval interval(const std::vector<double>& v, const std::vector<int>& groups,
                             std::mt19937_64& rng) {
  return baypr::grouped_bootstrap_interval(
      Eigen::Map<const Eigen::VectorXd>(v.data(), static_cast<Eigen::Index>(v.size())), groups,
      4000, 0.95, rng);
}

std::vector<double> minus(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> d(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  return d;
}

}  // namespace

int main(int argc, char** argv) try {
  const cli::ExperimentArgs args =
      cli::experiment_args(argc, argv, "--splits", {{}, 5, 50, mf::default_data_dir});
  std::vector<long long> splits = args.list;
  const int seeds = args.seeds, per_class = args.per_class;
  const std::string& dir = args.data;
  if (splits.empty()) {
    for (int r = 0; r < 10; ++r) splits.push_back(r);
  }
  for (const long long r : splits) {
    if (r < 0 || r > 9) throw std::invalid_argument("--splits: " + std::to_string(r));
  }
  const std::uint64_t base_seed = 2026;
  const auto t_start = std::chrono::steady_clock::now();
  const mf::Data data = mf::load(dir);
  const meta::Mlp embedding = mf::embedding();
  const auto prior = mf::prior();
  const mf::Settings settings;
  const meta::MetaOptions options = mf::meta_options(settings, settings.inner_steps);
  const meta::MetaOptions untrained = mf::meta_options(settings, 0);

  Pooled pooled;
  std::mt19937_64 brng(baypr::derive_seed(base_seed, {0x626f6fULL}));
  std::printf(
      "| split | held out | (a) K = 1 | (a) K = 5 | (b) - (a), K = 1 | (b) - (a), K = 5 | (b) - "
      "(c), K = 1 | (b) - (c), K = 5 | best epoch (b) / (c) "
      "|\n|---|---|---|---|---|---|---|---|---|"
      "\n");
  for (const long long rl : splits) {
    const int r = static_cast<int>(rl);
    const auto train_classes = classes_from(r, 3), validation_classes = classes_from(r + 3, 3),
               held_out = classes_from(r + 6, 4);
    // Split r's episodes draw from stream r: split 0's are meta_training's.
    const auto stream = static_cast<std::uint64_t>(r);
    const meta::ClassTaskSampler sampler = mf::training_sampler(data, train_classes);
    const auto validation = mf::validation_episodes(data, base_seed, validation_classes, stream);
    const auto evaluation =
        mf::evaluation_episodes(data, {shots[0], shots[1]}, per_class, base_seed, held_out, stream);
    const auto n = static_cast<Eigen::Index>(evaluation.size());
    std::array<Eigen::VectorXd, 3> auroc;  // rows (a), (b), (c), averaged over seeds
    for (auto& v : auroc) v = Eigen::VectorXd::Zero(n);
    double epoch_b = 0, epoch_c = 0;

    const auto bayes = [&](const Eigen::VectorXd& joint, const meta::MetaEpisode& e) {
      return meta::scores(embedding, meta::split_calibration(joint).first, e.support, e.queries,
                          prior, options);
    };
    const auto proto = [&](const Eigen::VectorXd& theta, const meta::MetaEpisode& e) {
      return meta::scores<meta::ProtoMaml>(embedding, theta, e.support, e.queries, prior, options);
    };
    for (int si = 0; si < seeds; ++si) {
      const std::uint64_t seed = base_seed + static_cast<std::uint64_t>(si);
      const Eigen::VectorXd theta0 = embedding.initial_parameters(seed);
      meta::TrainerOptions o;
      o.epochs = 60;
      o.steps_per_epoch = 100;
      o.meta_batch = settings.meta_batch;
      o.seed = seed;
      o.adam.lr = settings.lr;
      o.patience = 10;
      const auto validate = [&validation](const auto& score) {
        return [&validation, score](const Eigen::VectorXd& params) {
          double sum = 0;
          for (const auto& e : validation) sum += baypr::auroc(score(params, e), e.labels);
          return sum / static_cast<double>(validation.size());
        };
      };
      meta::MetaStepper<meta::Mlp> stepper(embedding);
      const auto b = meta::train(
          meta::with_calibration(
              theta0, mf::initial_calibration(embedding, theta0, sampler, prior, options, seed)),
          [&](const Eigen::VectorXd& joint, const meta::MetaEpisode& e) {
            return meta::calibrated_meta_step(stepper, joint, e, prior, options);
          },
          sampler, validate(bayes), o);
      meta::MetaStepper<meta::Mlp, meta::ProtoMaml> proto_stepper(embedding);
      const auto c = meta::train(
          meta::initial_parameters<meta::ProtoMaml>(embedding, theta0),
          [&](const Eigen::VectorXd& theta, const meta::MetaEpisode& e) {
            return proto_stepper.step(theta, e, prior, options);
          },
          sampler, validate(proto), o);
      epoch_b += static_cast<double>(b.best_epoch) / seeds;
      epoch_c += static_cast<double>(c.best_epoch) / seeds;
      for (Eigen::Index i = 0; i < n; ++i) {
        const auto& e = evaluation[static_cast<std::size_t>(i)].episode;
        auroc[0](i) +=
            baypr::auroc(meta::scores(embedding, theta0, e.support, e.queries, prior, untrained),
                         e.labels) /
            seeds;
        auroc[1](i) += baypr::auroc(bayes(b.theta, e), e.labels) / seeds;
        auroc[2](i) += baypr::auroc(proto(c.theta, e), e.labels) / seeds;
      }
    }

    std::string names;
    for (const int h : held_out) names += (names.empty() ? "" : ",") + std::to_string(h);
    std::printf("| %d | %s |", r, names.c_str());
    std::array<std::array<std::vector<double>, 2>, 3> split_values;
    std::array<std::vector<int>, 2> split_groups;
    for (Eigen::Index i = 0; i < n; ++i) {
      const auto& e = evaluation[static_cast<std::size_t>(i)];
      const std::size_t ki = e.shots == shots[0] ? 0 : 1;
      for (std::size_t row = 0; row < 3; ++row) {
        split_values[row][ki].push_back(auroc[row](i));
        pooled.auroc[row][ki].push_back(auroc[row](i));
      }
      split_groups[ki].push_back(e.normal_class);
      pooled.normal_class[ki].push_back(e.normal_class);
    }
    for (std::size_t ki = 0; ki < 2; ++ki)
      std::printf(" %.3f |", interval(split_values[0][ki], split_groups[ki], brng).mean);
    for (const std::size_t ref : {std::size_t{0}, std::size_t{2}}) {
      for (std::size_t ki = 0; ki < 2; ++ki) {
        const auto m =
            interval(minus(split_values[1][ki], split_values[ref][ki]), split_groups[ki], brng);
        std::printf(" %+.3f [%+.3f, %+.3f] |", m.mean, m.lower, m.upper);
      }
    }
    std::printf(" %.1f / %.1f |\n", epoch_b, epoch_c);
    std::fflush(stdout);
  }

  std::printf(
      "\nPooled over the splits above (two-level bootstrap: normal classes, then episodes):"
      "\n\n| row | K = 1 | K = 5 |\n|---|---|---|\n");
  const char* names[] = {"(a) untrained + Bayesian llr", "(b) BayPrAnoMeta (default)",
                         "(c) Proto-MAML"};
  for (std::size_t row = 0; row < 3; ++row) {
    std::printf("| %s |", names[row]);
    for (std::size_t ki = 0; ki < 2; ++ki) {
      const auto m = interval(pooled.auroc[row][ki], pooled.normal_class[ki], brng);
      std::printf(" %.3f [%.3f, %.3f] |", m.mean, m.lower, m.upper);
    }
    std::printf("\n");
  }
  for (const auto& [row, ref, label] :
       std::vector<std::tuple<std::size_t, std::size_t, const char*>>{
           {1, 0, "(b) - (a)"}, {2, 0, "(c) - (a)"}, {1, 2, "(b) - (c)"}}) {
    std::printf("| %s |", label);
    for (std::size_t ki = 0; ki < 2; ++ki) {
      const auto m = interval(minus(pooled.auroc[row][ki], pooled.auroc[ref][ki]),
                              pooled.normal_class[ki], brng);
      std::printf(" %+.3f [%+.3f, %+.3f] |", m.mean, m.lower, m.upper);
    }
    std::printf("\n");
  }
  std::printf(
      "\nPer normal class, mean over its splits' episodes: (b) - (a) and (b) - (c), "
      "K = 1 / K = 5\n\n| class | (b) - (a) | (b) - (c) |\n|---|---|---|\n");
  for (int c = 0; c < 10; ++c) {
    std::array<std::array<double, 2>, 2> sum{};
    std::array<int, 2> count{};
    for (std::size_t ki = 0; ki < 2; ++ki) {
      for (std::size_t i = 0; i < pooled.normal_class[ki].size(); ++i) {
        if (pooled.normal_class[ki][i] != c) continue;
        sum[0][ki] += pooled.auroc[1][ki][i] - pooled.auroc[0][ki][i];
        sum[1][ki] += pooled.auroc[1][ki][i] - pooled.auroc[2][ki][i];
        ++count[ki];
      }
    }
    if (count[0] == 0) continue;
    std::printf("| %d | %+.3f / %+.3f | %+.3f / %+.3f |\n", c, sum[0][0] / count[0],
                sum[0][1] / count[1], sum[1][0] / count[0], sum[1][1] / count[1]);
  }
  std::printf("\n%.0f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count());
  return 0;
} catch (const std::exception& e) {
  std::cerr << "meta_fashion_rotation: " << e.what() << "\n";
  return 1;
}
