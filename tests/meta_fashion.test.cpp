// BayPrAnoMeta meta-training end to end on real data (Fashion-MNIST), the setup of
// examples/meta_training.cpp (shared through examples/meta_fashion_data.hpp) for one seed: the
// default discriminative objective with its calibration learned, validation on classes never
// trained on, train() keeping the best-validation parameters (up to 60 epochs, patience 10).
// Asserted: the parameters move, the outer loss falls, the best validation AUROC beats the start,
// and on the held-out classes the trained embedding beats the untrained one at K = 1 (paired 95%
// interval above zero) and is not significantly worse at K = 5. Skipped, with a warning, when the
// dataset is not installed (scripts/deps data: Debian's dataset-fashion-mnist).
#include <Eigen/Core>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "meta_fashion_data.hpp"
#include "support/catch.hpp"

namespace meta = baypr::meta;
namespace mf = meta_fashion;

TEST_CASE(
    "BayPrAnoMeta meta-training on Fashion-MNIST: the default objective helps on held-out classes",
    "[meta][slow]") {
  if (!mf::data_available(mf::default_data_dir)) {
    WARN("Fashion-MNIST not found in " + mf::default_data_dir +
         ": install it with scripts/deps data (Debian dataset-fashion-mnist); test skipped");
    return;
  }
  const mf::Data data = mf::load(mf::default_data_dir);
  const mf::Settings settings;
  constexpr std::uint64_t seed = 2026;
  const meta::Mlp embedding = mf::embedding();
  const Eigen::VectorXd theta0 = embedding.initial_parameters(seed);
  const auto prior = mf::prior();
  // The settings' inner steps, order and SupCon weight; the authors' anomaly model; the default
  // objective: discriminative.
  const meta::MetaOptions meta_options = mf::meta_options(settings, settings.inner_steps);
  REQUIRE(meta_options.outer.objective == meta::OuterOptions{}.objective);
  REQUIRE(meta_options.outer.objective == meta::Objective::discriminative);
  REQUIRE(meta_options.outer.supcon_weight == settings.supcon);
  const meta::VagueAnomalyModel authors;
  REQUIRE(meta_options.anomaly.location == authors.location);
  REQUIRE(meta_options.anomaly.scale == authors.scale);
  REQUIRE(meta_options.anomaly.dof == authors.dof);
  const auto sampler = mf::training_sampler(data);

  // Adapt with inner_steps steps (0: none), then score the queries.
  const auto score = [&](const Eigen::VectorXd& theta, const meta::MetaEpisode& e,
                         int inner_steps) {
    return meta::scores(embedding, theta, e.support, e.queries, prior,
                        mf::meta_options(settings, inner_steps));
  };
  // The calibration's start: fitted to 32 training episodes' scores at theta_0 (as the example).
  const meta::Calibration start =
      mf::initial_calibration(embedding, theta0, sampler, prior, meta_options, seed);
  CAPTURE(start.rho, start.beta);

  const auto validation = mf::validation_episodes(data, seed);
  const auto validate = [&](const Eigen::VectorXd& joint) {
    double sum = 0.0;
    for (const auto& e : validation) {
      sum += mf::episode_auroc(score(meta::split_calibration(joint).first, e, settings.inner_steps),
                               e);
    }
    return sum / static_cast<double>(validation.size());
  };

  meta::TrainerOptions options;
  options.epochs = 60;
  options.patience = 10;
  options.steps_per_epoch = 100;
  options.meta_batch = settings.meta_batch;
  options.seed = seed;
  options.adam.lr = settings.lr;
  const auto result = meta::train(
      meta::with_calibration(theta0, start),
      [&, stepper = meta::MetaStepper(embedding)](const Eigen::VectorXd& joint,
                                                  const meta::MetaEpisode& e) mutable {
        return meta::calibrated_meta_step(stepper, joint, e, prior, meta_options);
      },
      sampler, validate, options);
  REQUIRE(!result.history.empty());
  const Eigen::VectorXd theta = meta::split_calibration(result.theta).first;

  // (a) The last parameters moved, by more than rounding: relative change of the whole vector.
  const double relative_change =
      (meta::split_calibration(result.last_theta).first - theta0).norm() / theta0.norm();
  CAPTURE(relative_change, result.best_epoch, result.history.size());
  CHECK(relative_change > 0.05);

  // (b) The outer loss fell: mean over the last epoch's updates below the first epoch's.
  const double first_loss = result.history.front().outer_loss,
               last_loss = result.history.back().outer_loss;
  CAPTURE(first_loss, last_loss);
  CHECK(last_loss < first_loss);

  // The best validation (classes never trained on) beats the start, and it is what was returned.
  CAPTURE(result.initial_validation, result.best_validation);
  CHECK(result.best_validation > result.initial_validation + 0.02);
  CHECK(validate(result.theta) == result.best_validation);

  // (c) Held-out classes 6-9: the example's 200 episodes per K, the trained parameters after one
  // inner step against the untrained ones with none, paired per episode.
  const auto episodes = mf::evaluation_episodes(data, {1, 5}, 50, seed);
  REQUIRE(episodes.size() == 400);
  for (const Eigen::Index k : {Eigen::Index{1}, Eigen::Index{5}}) {
    Eigen::VectorXd untrained(200), trained(200);
    Eigen::Index j = 0;
    for (const auto& ep : episodes) {
      if (ep.shots != k) continue;
      untrained(j) = mf::episode_auroc(score(theta0, ep.episode, 0), ep.episode);
      trained(j) = mf::episode_auroc(score(theta, ep.episode, settings.inner_steps), ep.episode);
      ++j;
    }
    REQUIRE(j == 200);
    const baypr::MeanInterval difference =
        baypr::mean_interval(Eigen::VectorXd(trained - untrained));
    const double untrained_mean = untrained.mean(), trained_mean = trained.mean();
    CAPTURE(k, untrained_mean, trained_mean, difference.mean, difference.lower, difference.upper);
    // Measured (seed 2026, Adam 1e-4, best epoch 11, validation 0.846 -> 0.906): K = 1 0.737 ->
    // 0.802, +0.065 [+0.041, +0.090]; K = 5 0.867 -> 0.876, +0.009 [-0.006, +0.023] (with Adam 1e-3,
    // epoch 3: +0.072 [+0.045, +0.098] / -0.011 [-0.030, +0.007]). Training is chaotic across
    // builds (last-bit differences change the trajectory), so K = 5 is held to "no significant
    // loss" with room, the 5-seed table in the README being the claim.
    if (k == 1) {
      CHECK(difference.lower > 0.0);
    } else {
      CHECK(difference.lower > -0.05);
    }
  }
}
