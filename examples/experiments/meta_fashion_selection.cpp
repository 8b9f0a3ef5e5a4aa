// Choosing meta_training's BayPrAnoMeta settings on the validation classes only, with a selection
// set that did not also pick each run's epoch (issue 11).
//
// Why: meta_training chose (SupCon 0.1, Adam 1e-3) by the mean over seeds of each run's *best*
// validation value, the maximum over up to 60 epochs of a noisy estimate on 72 episodes. That
// maximum favours runs whose validation value moves most between epochs (a larger step size),
// whether or not the parameters it picks are better. Here each run keeps its best epoch by the same
// validation episodes as before (set A, meta_fashion::validation_episodes), and configurations are
// compared on set B: fresh episodes of the same validation classes {3, 4, 5}, 40 per class and
// K in {1, 5} (240), drawn from another seed, scored at the parameters train() returned. The
// held-out classes {6..9} are never loaded into an episode here.
//
// Rule, fixed before the first run: the configuration with the largest min over K of its mean
// paired gain over the untrained embedding (Bayesian llr, no inner step) on set B; within 0.002 of
// that, the larger mean over K. The intervals (two-level bootstrap over the 3 validation classes,
// then episodes) are printed to read, not to choose by.
//
// Disclosure: the held-out figures of configurations 0-5 (the earlier grid) were reported in an
// earlier stop's note (README: meta-learning). This program cannot see them, but whoever reads its
// choice should know they were known when the rule was written.
//
// Configurations (BayPrAnoMeta, discriminative objective, calibration fitted at theta0, exact
// second order, one inner step of 5e-4, meta batch 4 unless stated; 5 seeds 2026-2030; up to 60
// epochs of 100 updates, patience 10):
//   0 SupCon 0.1, lr 1e-3 (meta_training's settings)  1 SupCon 0.1, lr 3e-4  2 SupCon 0.1, 1e-4
//   3 SupCon 0,   lr 1e-3                              4 SupCon 0,   lr 3e-4  5 SupCon 0,   1e-4
//   6 as 0, parameters averaged (EMA, decay 0.99 per update; validated and returned averaged)
//   7 as 3, averaged (0.99)   8 as 0, meta batch 16   9 as 0, averaged (0.995)
// Averaging is done here, around meta::train: the step sees theta after every update and the
// validation function sees it after the epoch's last; the average starts at theta0.
//
// Measured (the full run, 1 min on one core; gain on set B at K = 1 / K = 5, mean over seeds):
//   0 +0.044 / +0.057   1 +0.050 / +0.063   2 +0.053 / +0.060 (chosen)   3 -0.006 / +0.045
//   4 +0.006 / +0.044   5 +0.008 / +0.044   6 +0.044 / +0.054            7 +0.005 / +0.048
//   8 +0.047 / +0.059   9 +0.045 / +0.053
// SupCon 0.1 is worth about +0.04 at K = 1; step size, averaging and batch size matter little.
// meta_fashion::Settings took configuration 2 (Adam 1e-4; it had configuration 0).
//
// Build and run (repository root; Fashion-MNIST from Debian's dataset-fashion-mnist):
//   g++ -std=c++20 -O3 -march=native -DNDEBUG -Wno-maybe-uninitialized -Iinclude -Ibench \
//       -isystem /usr/include/eigen3 examples/experiments/meta_fashion_selection.cpp \
//       -lz -o /tmp/mfs
//   /tmp/mfs [--only 0,1,...] [--seeds N] [--episodes E] [--data DIR]
#include <baypr/baypr.hpp>
#include <baypr/meta/adapt.hpp>
#include <baypr/meta/mlp.hpp>
#include <baypr/meta/trainer.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "../cli_args.hpp"
#include "../meta_fashion_data.hpp"

namespace {

namespace meta = baypr::meta;
namespace mf = meta_fashion;

struct Config {
  double supcon = 0.1, lr = 1e-3;
  int meta_batch = 4;
  double average = 0.0;  // EMA decay per update; 0: none
};

const std::vector<Config> configs = {
    {0.1, 1e-3, 4, 0.0},  {0.1, 3e-4, 4, 0.0},  {0.1, 1e-4, 4, 0.0},  {0.0, 1e-3, 4, 0.0},
    {0.0, 3e-4, 4, 0.0},  {0.0, 1e-4, 4, 0.0},  {0.1, 1e-3, 4, 0.99}, {0.0, 1e-3, 4, 0.99},
    {0.1, 1e-3, 16, 0.0}, {0.1, 1e-3, 4, 0.995}};

}  // namespace

int main(int argc, char** argv) try {
  const cli::ExperimentArgs args =
      cli::experiment_args(argc, argv, "--only", {{}, 5, 40, mf::default_data_dir});
  std::vector<long long> only = args.list;
  const int seeds = args.seeds, per_class = args.per_class;
  const std::string& dir = args.data;
  if (only.empty()) {
    for (std::size_t c = 0; c < configs.size(); ++c) only.push_back(static_cast<long long>(c));
  }
  const std::uint64_t base_seed = 2026;
  const mf::Data data = mf::load(dir);
  const meta::ClassTaskSampler sampler = mf::training_sampler(data);
  const auto set_a = mf::validation_episodes(data, base_seed);
  std::mt19937_64 brng(baypr::splitmix64(base_seed ^ 0x76616c32ULL));
  const auto set_b = mf::one_class_episodes(data.train, data.test, mf::validation_classes,
                                            mf::validation_classes, {1, 5}, per_class, brng);
  const meta::Mlp embedding = mf::embedding();
  const auto prior = mf::prior();
  // The untrained embedding's AUROC on set B for each seed (Bayesian llr, no inner step: it
  // depends on no configuration).
  std::vector<Eigen::VectorXd> untrained(static_cast<std::size_t>(seeds));
  const meta::MetaOptions untrained_options = mf::meta_options(mf::Settings{}, 0);
  for (int si = 0; si < seeds; ++si) {
    const Eigen::VectorXd theta0 =
        embedding.initial_parameters(base_seed + static_cast<std::uint64_t>(si));
    Eigen::VectorXd& u = untrained[static_cast<std::size_t>(si)];
    u.resize(static_cast<Eigen::Index>(set_b.size()));
    for (std::size_t i = 0; i < set_b.size(); ++i) {
      const auto& e = set_b[i].episode;
      u(static_cast<Eigen::Index>(i)) = baypr::auroc(
          meta::scores(embedding, theta0, e.support, e.queries, prior, untrained_options),
          e.labels);
    }
  }

  for (const long long ci : only) {
    const Config& c = configs.at(static_cast<std::size_t>(ci));
    mf::Settings s;
    s.supcon = c.supcon;
    s.lr = c.lr;
    s.meta_batch = c.meta_batch;
    const meta::MetaOptions options = mf::meta_options(s, s.inner_steps);
    const auto score = [&](const Eigen::VectorXd& joint, const meta::MetaEpisode& e) {
      return meta::scores(embedding, meta::split_calibration(joint).first, e.support, e.queries,
                          prior, options);
    };
    const auto t0 = std::chrono::steady_clock::now();
    Eigen::VectorXd gain = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(set_b.size()));
    Eigen::VectorXd trained = gain;
    double a_start = 0, a_best = 0, best_epoch = 0;
    for (int si = 0; si < seeds; ++si) {
      const std::uint64_t seed = base_seed + static_cast<std::uint64_t>(si);
      const Eigen::VectorXd theta0 = embedding.initial_parameters(seed);
      const Eigen::VectorXd start = meta::with_calibration(
          theta0, mf::initial_calibration(embedding, theta0, sampler, prior, options, seed));
      meta::MetaStepper<meta::Mlp> stepper(embedding);
      // The running average, the update it has seen last, and its value at each epoch's end.
      Eigen::VectorXd average = start;
      long long calls = 0, seen = 0;
      std::map<int, Eigen::VectorXd> at_epoch;
      int epoch = 0;
      const auto see = [&](const Eigen::VectorXd& theta, long long update) {
        if (c.average > 0 && update > seen) {
          average = c.average * average + (1.0 - c.average) * theta;
          seen = update;
        }
      };
      meta::TrainerOptions o;
      o.epochs = 60;
      o.steps_per_epoch = 100;
      o.meta_batch = c.meta_batch;
      o.seed = seed;
      o.adam.lr = c.lr;
      o.patience = 10;
      const auto result = meta::train(
          start,
          [&](const Eigen::VectorXd& joint, const meta::MetaEpisode& e) {
            if (calls % c.meta_batch == 0) see(joint, calls / c.meta_batch);
            ++calls;
            return meta::calibrated_meta_step(stepper, joint, e, prior, options);
          },
          sampler,
          [&](const Eigen::VectorXd& joint) {
            const long long updates = calls / c.meta_batch;
            if (updates > 0) see(joint, updates);
            const Eigen::VectorXd& v = c.average > 0 ? average : joint;
            at_epoch[epoch++] = v;
            double sum = 0;
            for (const auto& e : set_a) sum += baypr::auroc(score(v, e), e.labels);
            return sum / static_cast<double>(set_a.size());
          },
          o);
      const Eigen::VectorXd chosen = at_epoch.at(result.best_epoch);
      a_start += result.initial_validation / seeds;
      a_best += result.best_validation / seeds;
      best_epoch += static_cast<double>(result.best_epoch) / seeds;
      for (std::size_t i = 0; i < set_b.size(); ++i) {
        const auto& e = set_b[i].episode;
        const double u = untrained[static_cast<std::size_t>(si)](static_cast<Eigen::Index>(i));
        const double t = baypr::auroc(score(chosen, e), e.labels);
        trained(static_cast<Eigen::Index>(i)) += t / seeds;
        gain(static_cast<Eigen::Index>(i)) += (t - u) / seeds;
      }
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf(
        "config %lld (SupCon %.1f, lr %.0e, batch %d, average %.3f): A %.3f -> %.3f (epoch "
        "%.1f), %.0f s\n",
        ci, c.supcon, c.lr, c.meta_batch, c.average, a_start, a_best, best_epoch, secs);
    double min_gain = 1e9, mean_gain = 0;
    for (const Eigen::Index k : {1, 5}) {
      std::vector<double> g, t;
      std::vector<int> groups;
      for (std::size_t i = 0; i < set_b.size(); ++i) {
        if (set_b[i].shots != k) continue;
        g.push_back(gain(static_cast<Eigen::Index>(i)));
        t.push_back(trained(static_cast<Eigen::Index>(i)));
        groups.push_back(set_b[i].normal_class);
      }
      std::mt19937_64 rng(7);
      const auto gi = baypr::grouped_bootstrap_interval(
          Eigen::Map<const Eigen::VectorXd>(g.data(), static_cast<Eigen::Index>(g.size())), groups,
          4000, 0.95, rng);
      const auto ti = baypr::grouped_bootstrap_interval(
          Eigen::Map<const Eigen::VectorXd>(t.data(), static_cast<Eigen::Index>(t.size())), groups,
          4000, 0.95, rng);
      std::printf("  K = %lld: B AUROC %.3f, gain %+.3f [%+.3f, %+.3f]\n",
                  static_cast<long long>(k), ti.mean, gi.mean, gi.lower, gi.upper);
      min_gain = std::min(min_gain, gi.mean);
      mean_gain += gi.mean / 2;
    }
    std::printf("  rule: min over K %+.4f, mean over K %+.4f\n", min_gain, mean_gain);
    std::fflush(stdout);
  }
  return 0;
} catch (const std::exception& e) {
  std::cerr << "meta_fashion_selection: " << e.what() << "\n";
  return 1;
}
