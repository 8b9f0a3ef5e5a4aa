// baypr/meta/trainer.hpp: episodic meta-training, a seeded and resumable loop with validation,
// a JSON log, checkpoints and an observer.
//
//   TrainerOptions { epochs, steps_per_epoch, meta_batch, seed, adam, log_path, checkpoint_dir,
//                    resume, observer, keep_best, patience }
//   TrainResult train(theta0, step, sampler, validate, options)
//     step(theta, episode) -> MetaStep (e.g. a lambda around meta_step or a MetaStepper)
//     sampler.sample(std::mt19937_64&) -> MetaEpisode (e.g. ClassTaskSampler,
//                                                       meta/task_sampler.hpp)
//     validate(theta) -> double (e.g. mean AUROC on validation classes held out from the
//                                 meta-train classes; higher is better)
//   The result's theta is the best-validation parameters (the initial ones included), so a run
//   never hands back parameters that validate worse than those it was given (keep_best).
//
// Parts: the task sampler (meta/task_sampler.hpp), Adam (meta/adam.hpp), checkpoints
// (meta/checkpoint.hpp), a terminal progress bar for the observer (meta/progress.hpp). This header
// includes the first three; it needs neither an embedding nor the posterior (meta/episode.hpp
// holds the types it exchanges), and nothing beyond standard C++20 and Eigen.
//
// Reproducibility: the episodes of update u in epoch e come from an engine seeded with
// derive_seed(seed, {e, u}), never from a long-lived engine, so a run resumed from the checkpoint
// of epoch e draws exactly the episodes the uninterrupted run would have drawn, and ends with the
// same parameters bit for bit. A checkpoint is written at the end of every epoch (see
// meta/checkpoint.hpp); a crash at any point leaves state.txt naming a complete set of files.
//
// Log: one JSON object per line per epoch: epoch, mean outer and inner loss over the epoch's
// updates, the validation value, the gradient norm and the seconds taken. Observer: called after
// every meta-update and at the end of every epoch (TrainProgress says which); the library itself
// writes nothing to the terminal.
#pragma once

#include <Eigen/Core>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/core/random.hpp"
#include "baypr/io/detail/file.hpp"
#include "baypr/meta/adam.hpp"
#include "baypr/meta/checkpoint.hpp"
#include "baypr/meta/episode.hpp"
#include "baypr/meta/task_sampler.hpp"

namespace baypr::meta {

struct EpochRecord {
  int epoch = 0;
  double outer_loss = 0, inner_loss = 0, validation = 0, gradient_norm = 0, seconds = 0;
};

// What train() tells its observer: after every meta-update (epoch_end null) and once more at the
// end of every epoch, after validation (epoch_end points at that epoch's record).
struct TrainProgress {
  int epoch = 0;  // 1-based, of options.epochs
  int epochs = 0;
  int update = 0;  // 1-based within the epoch, of steps_per_epoch
  int steps_per_epoch = 0;
  int updates_done = 0;   // this call's updates so far
  int total_updates = 0;  // this call's updates if it runs every epoch (a resume starts later)
  double seconds = 0.0;   // since this call started
  const EpochRecord* epoch_end = nullptr;
};

using TrainObserver = std::function<void(const TrainProgress&)>;

struct TrainerOptions {
  int epochs = 10;
  int steps_per_epoch = 50;  // meta-updates per epoch
  int meta_batch = 4;        // episodes averaged per update
  std::uint64_t seed = 2026;
  Adam adam;
  std::filesystem::path log_path;        // JSON lines; empty: no log
  std::filesystem::path checkpoint_dir;  // empty: no checkpoints
  bool resume = false;                   // continue from checkpoint_dir when it holds one
  TrainObserver observer;                // empty: none (meta::progress_bar() draws a bar)
  // Safe by default: the result's theta is the one with the best validation value seen (the
  // initial one included, so training never returns parameters worse on validation than it was
  // given); false returns the last epoch's. patience > 0 stops after that many epochs without a
  // new best (0: run every epoch).
  bool keep_best = true;
  int patience = 0;
};

struct TrainResult {
  Eigen::VectorXd theta;       // the best-validation parameters (keep_best) or the last epoch's
  Eigen::VectorXd last_theta;  // the parameters after the last epoch run
  std::vector<EpochRecord>
      history;                    // this call's epochs (a resumed run starts after the checkpoint)
  double initial_validation = 0;  // validate(theta) before this call's first epoch
  int start_epoch = 0;            // epochs already done when this call started
  int best_epoch = 0;             // the epoch whose parameters scored best (0: the initial ones)
  double best_validation = 0;     // their validation value
  bool stopped_early = false;     // patience ran out before options.epochs
};

template <class Step, class Sampler, class Validate>
TrainResult train(const Eigen::VectorXd& theta0, Step&& step, const Sampler& sampler,
                  Validate&& validate, const TrainerOptions& options) {
  constexpr std::string_view fn = "baypr::meta::train";
  if (options.epochs < 0)
    baypr::detail::throw_invalid(fn, "options.epochs",
                                 "must be >= 0, got " + std::to_string(options.epochs));
  if (options.steps_per_epoch < 1 || options.meta_batch < 1) {
    baypr::detail::throw_invalid(fn, "options.steps_per_epoch / meta_batch", "must both be >= 1");
  }
  if (options.patience < 0) {
    baypr::detail::throw_invalid(fn, "options.patience",
                                 "must be >= 0, got " + std::to_string(options.patience));
  }
  baypr::detail::check_finite(fn, "theta0", theta0);
  TrainResult out;
  out.theta = theta0;
  Adam adam = options.adam;
  detail::BestSoFar best;
  if (options.resume && !options.checkpoint_dir.empty()) {
    detail::load_checkpoint(options.checkpoint_dir, out.theta, adam, out.start_epoch, best);
  }
  std::ofstream log;
  if (!options.log_path.empty()) {
    log.open(options.log_path, options.resume ? std::ios::app : std::ios::trunc);
    if (!log) {
      baypr::detail::io::fail(fn, baypr::detail::io::file_source(options.log_path),
                              "cannot open the log for writing");
    }
  }
  out.initial_validation = validate(out.theta);
  if (best.theta.size() == 0) best = {out.theta, out.start_epoch, out.initial_validation, 0};
  // A non-finite validation value never counts as a gain.
  const auto better = [](double v, double than) {
    return std::isfinite(v) && (!std::isfinite(than) || v > than);
  };
  const auto t_start = std::chrono::steady_clock::now();
  const int total_updates = (options.epochs - out.start_epoch) * options.steps_per_epoch;
  int updates_done = 0;
  const auto progress = [&](int epoch, int update, const EpochRecord* record) {
    TrainProgress p;
    p.epoch = epoch + 1;
    p.epochs = options.epochs;
    p.update = update;
    p.steps_per_epoch = options.steps_per_epoch;
    p.updates_done = updates_done;
    p.total_updates = total_updates;
    p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    p.epoch_end = record;
    return p;
  };
  for (int epoch = out.start_epoch; epoch < options.epochs; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    EpochRecord rec;
    rec.epoch = epoch + 1;
    for (int u = 0; u < options.steps_per_epoch; ++u) {
      std::mt19937_64 rng(baypr::derive_seed(
          options.seed, {static_cast<std::uint64_t>(epoch), static_cast<std::uint64_t>(u)}));
      Eigen::VectorXd gradient = Eigen::VectorXd::Zero(out.theta.size());
      for (int b = 0; b < options.meta_batch; ++b) {
        const MetaEpisode episode = sampler.sample(rng);
        const MetaStep r = step(out.theta, episode);
        const std::string which = "step(theta, episode).gradient (epoch " +
                                  std::to_string(epoch + 1) + ", update " + std::to_string(u + 1) +
                                  ", episode " + std::to_string(b + 1) + ")";
        baypr::detail::check_size(fn, which, "size", r.gradient.size(), out.theta.size());
        baypr::detail::check_finite(fn, which, r.gradient);
        gradient += r.gradient;
        rec.outer_loss += r.outer_loss;
        rec.inner_loss += r.inner_loss;
      }
      gradient /= static_cast<double>(options.meta_batch);
      rec.gradient_norm += gradient.norm();
      adam.step(out.theta, gradient);
      ++updates_done;
      if (options.observer) options.observer(progress(epoch, u + 1, nullptr));
    }
    const double n = static_cast<double>(options.steps_per_epoch);
    rec.outer_loss /= n * options.meta_batch;
    rec.inner_loss /= n * options.meta_batch;
    rec.gradient_norm /= n;
    rec.validation = validate(out.theta);
    rec.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out.history.push_back(rec);
    if (options.observer)
      options.observer(progress(epoch, options.steps_per_epoch, &out.history.back()));
    if (log) {
      // JSON has no NaN / Infinity: a non-finite value (e.g. from a user's validate) is null.
      auto json = [](double v) {
        if (!std::isfinite(v)) return std::string("null");
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.10g", v);
        return std::string(buf);
      };
      char line[320];
      std::snprintf(line, sizeof line,
                    "{\"epoch\": %d, \"outer_loss\": %s, \"inner_loss\": %s, \"validation\": %s, "
                    "\"gradient_norm\": %s, \"seconds\": %.3f}\n",
                    rec.epoch, json(rec.outer_loss).c_str(), json(rec.inner_loss).c_str(),
                    json(rec.validation).c_str(), json(rec.gradient_norm).c_str(), rec.seconds);
      log << line << std::flush;
    }
    if (better(rec.validation, best.validation)) {
      best = {out.theta, epoch + 1, rec.validation, 0};
    } else {
      ++best.epochs_without_gain;
    }
    if (!options.checkpoint_dir.empty()) {
      detail::save_checkpoint(options.checkpoint_dir, out.theta, adam, epoch + 1, best);
    }
    if (options.patience > 0 && best.epochs_without_gain >= options.patience &&
        epoch + 1 < options.epochs) {
      out.stopped_early = true;
      break;
    }
  }
  out.last_theta = out.theta;
  out.best_epoch = best.epoch;
  out.best_validation = best.validation;
  if (options.keep_best) out.theta = std::move(best.theta);
  return out;
}

}  // namespace baypr::meta
