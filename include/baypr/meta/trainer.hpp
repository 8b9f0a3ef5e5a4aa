// baypr/meta/trainer.hpp: episodic meta-training — task sampling, the Adam meta-optimiser, a
// seeded and resumable training loop with validation, logging and checkpoints.
//
//   ClassTaskSampler(inputs, labels, classes, TaskShape)   one-class episodes over some classes
//     .sample(std::mt19937_64&) -> MetaEpisode            K normal support, normal + anomalous queries
//   Adam { lr, beta1, beta2, eps }  .step(theta, gradient)  (Kingma & Ba, bias-corrected)
//   TrainerOptions { epochs, steps_per_epoch, meta_batch, seed, log_path, checkpoint_dir, resume,
//                    progress, keep_best, patience }
//   TrainResult train(theta0, step, sampler, validate, options)
//     step(theta, episode) -> MetaStep (e.g. a lambda around meta_step / proto_maml_step)
//     validate(theta) -> double (e.g. mean AUROC on validation classes held out from the
//                                 meta-train classes; higher is better)
//   The result's theta is the best-validation parameters (the initial ones included), so a run
//   never hands back parameters that validate worse than those it was given (keep_best).
//
// Reproducibility: the episodes of update u in epoch e come from an engine seeded with
// splitmix64(seed, e, u), never from a long-lived engine, so a run resumed from the checkpoint of
// epoch e draws exactly the episodes the uninterrupted run would have drawn, and ends with the
// same parameters bit for bit. A checkpoint (written at the end of every epoch) is
// theta-E.npy, adam_m-E.npy, adam_v-E.npy, best-E.npy for E epochs done, then state.txt naming E,
// the Adam step count and the best epoch and its validation, replaced atomically (rename) last;
// the previous epoch's files are removed after it.
// A crash at any point leaves state.txt naming a complete set of files.
//
// Log: one JSON object per line per epoch: epoch, mean outer and inner loss over the epoch's
// updates, the validation value, the gradient norm and the seconds taken. Progress: a one-line
// bar with an ETA on stderr when it is a terminal (or when forced), nothing otherwise.
#pragma once

#include <unistd.h>

#include <Eigen/Core>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/core/random.hpp"
#include "baypr/io/npy.hpp"
#include "baypr/meta/adapt.hpp"

namespace baypr::meta {

// The shape of a one-class episode (the authors': K = 5, 12 normal + 4 anomalous queries).
struct TaskShape {
  Eigen::Index shots = 5;
  Eigen::Index normal_queries = 12;
  Eigen::Index anomalous_queries = 4;
};

// One-class episodes over a labelled set: pick a normal class uniformly among `classes`, K support
// rows and the normal queries from it (distinct rows), anomalous queries from the other classes of
// `classes` (so held-out classes never leak into meta-training).
class ClassTaskSampler {
 public:
  ClassTaskSampler(Eigen::MatrixXd inputs, const std::vector<int>& labels, std::vector<int> classes, TaskShape shape)
      : inputs_(std::move(inputs)), classes_(std::move(classes)), shape_(shape) {
    constexpr std::string_view fn = "baypr::meta::ClassTaskSampler";
    baypr::detail::check_size(fn, "labels", "size", static_cast<Eigen::Index>(labels.size()), inputs_.rows());
    baypr::detail::check_finite(fn, "inputs", inputs_);
    if (classes_.size() < 2) baypr::detail::throw_invalid(fn, "classes", "needs at least 2 classes, got " + std::to_string(classes_.size()));
    for (std::size_t c = 0; c < classes_.size(); ++c) {
      for (std::size_t o = c + 1; o < classes_.size(); ++o) {
        if (classes_[c] == classes_[o]) {
          baypr::detail::throw_invalid(fn, "classes", "lists class " + std::to_string(classes_[c]) + " twice");
        }
      }
    }
    if (shape_.shots < 1 || shape_.normal_queries < 1 || shape_.anomalous_queries < 1) {
      baypr::detail::throw_invalid(fn, "shape", "shots and both query counts must be >= 1");
    }
    rows_.resize(classes_.size());
    for (std::size_t i = 0; i < labels.size(); ++i) {
      for (std::size_t c = 0; c < classes_.size(); ++c) {
        if (labels[i] == classes_[c]) rows_[c].push_back(static_cast<Eigen::Index>(i));
      }
    }
    std::size_t total = 0;
    for (const auto& r : rows_) total += r.size();
    for (std::size_t c = 0; c < classes_.size(); ++c) {
      if (static_cast<Eigen::Index>(rows_[c].size()) < shape_.shots + shape_.normal_queries) {
        baypr::detail::throw_invalid(fn, "classes", "class " + std::to_string(classes_[c]) + " has " +
                                                 std::to_string(rows_[c].size()) + " rows, fewer than K + normal queries");
      }
      if (static_cast<Eigen::Index>(total - rows_[c].size()) < shape_.anomalous_queries) {
        baypr::detail::throw_invalid(fn, "classes", "the classes other than " + std::to_string(classes_[c]) + " have " +
                                                 std::to_string(total - rows_[c].size()) +
                                                 " rows, fewer than the anomalous queries");
      }
    }
  }

  [[nodiscard]] MetaEpisode sample(std::mt19937_64& rng) const {
    const std::size_t c = static_cast<std::size_t>(baypr::uniform_below(rng, classes_.size()));
    constexpr std::string_view fn = "baypr::meta::ClassTaskSampler::sample";
    auto normal = baypr::sample_without_replacement(rows_[c], shape_.shots + shape_.normal_queries, rng, fn,
                                                            "shape.shots + shape.normal_queries");
    std::vector<Eigen::Index> others;
    for (std::size_t o = 0; o < classes_.size(); ++o) {
      if (o != c) others.insert(others.end(), rows_[o].begin(), rows_[o].end());
    }
    const auto anomalous =
        baypr::sample_without_replacement(std::move(others), shape_.anomalous_queries, rng, fn,
                                                  "shape.anomalous_queries");
    MetaEpisode e;
    e.support = inputs_(std::vector<Eigen::Index>(normal.begin(), normal.begin() + shape_.shots), Eigen::all);
    std::vector<Eigen::Index> queries(normal.begin() + shape_.shots, normal.end());
    queries.insert(queries.end(), anomalous.begin(), anomalous.end());
    e.queries = inputs_(queries, Eigen::all);
    e.labels.assign(static_cast<std::size_t>(shape_.normal_queries), 0);
    e.labels.resize(queries.size(), 1);
    return e;
  }

  [[nodiscard]] const std::vector<int>& classes() const { return classes_; }

 private:
  Eigen::MatrixXd inputs_;
  std::vector<int> classes_;
  std::vector<std::vector<Eigen::Index>> rows_;
  TaskShape shape_;
};

// Adam with bias correction. The moment vectors are sized on the first step.
struct Adam {
  double lr = 1e-4;  // the authors' meta learning rate
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  Eigen::VectorXd m, v;
  long long t = 0;

  void step(Eigen::VectorXd& theta, const Eigen::VectorXd& gradient) {
    constexpr std::string_view fn = "baypr::meta::Adam::step";
    if (!(std::isfinite(lr) && lr > 0)) baypr::detail::throw_invalid(fn, "lr", "must be finite and > 0, got " + baypr::detail::format_value(lr));
    if (!(beta1 >= 0 && beta1 < 1)) baypr::detail::throw_invalid(fn, "beta1", "must be in [0, 1), got " + baypr::detail::format_value(beta1));
    if (!(beta2 >= 0 && beta2 < 1)) baypr::detail::throw_invalid(fn, "beta2", "must be in [0, 1), got " + baypr::detail::format_value(beta2));
    if (!(std::isfinite(eps) && eps >= 0)) baypr::detail::throw_invalid(fn, "eps", "must be finite and >= 0, got " + baypr::detail::format_value(eps));
    baypr::detail::check_size(fn, "gradient", "size", gradient.size(), theta.size());
    baypr::detail::check_finite(fn, "gradient", gradient);
    if (m.size() == 0) {
      m = Eigen::VectorXd::Zero(theta.size());
      v = Eigen::VectorXd::Zero(theta.size());
    }
    baypr::detail::check_size(fn, "theta", "size", theta.size(), m.size());
    ++t;
    m = beta1 * m + (1.0 - beta1) * gradient;
    v = beta2 * v + (1.0 - beta2) * gradient.cwiseAbs2();
    const double c1 = 1.0 - std::pow(beta1, static_cast<double>(t));
    const double c2 = 1.0 - std::pow(beta2, static_cast<double>(t));
    theta.array() -= lr * (m.array() / c1) / ((v.array() / c2).sqrt() + eps);
  }
};

struct TrainerOptions {
  int epochs = 10;
  int steps_per_epoch = 50;  // meta-updates per epoch
  int meta_batch = 4;        // episodes averaged per update
  std::uint64_t seed = 2026;
  Adam adam;
  std::filesystem::path log_path;        // JSON lines; empty: no log
  std::filesystem::path checkpoint_dir;  // empty: no checkpoints
  bool resume = false;                   // continue from checkpoint_dir when it holds one
  enum class Progress { automatic, always, never } progress = Progress::automatic;
  // Safe by default: the result's theta is the one with the best validation value seen (the
  // initial one included, so training never returns parameters worse on validation than it was
  // given); false returns the last epoch's. patience > 0 stops after that many epochs without a
  // new best (0: run every epoch).
  bool keep_best = true;
  int patience = 0;
};

struct EpochRecord {
  int epoch = 0;
  double outer_loss = 0, inner_loss = 0, validation = 0, gradient_norm = 0, seconds = 0;
};

struct TrainResult {
  Eigen::VectorXd theta;             // the best-validation parameters (keep_best) or the last epoch's
  Eigen::VectorXd last_theta;        // the parameters after the last epoch run
  std::vector<EpochRecord> history;  // this call's epochs (a resumed run starts after the checkpoint)
  double initial_validation = 0;     // validate(theta) before this call's first epoch
  int start_epoch = 0;               // epochs already done when this call started
  int best_epoch = 0;                // the epoch whose parameters scored best (0: the initial ones)
  double best_validation = 0;        // their validation value
  bool stopped_early = false;        // patience ran out before options.epochs
};

namespace detail {

inline void write_text_atomically(const std::filesystem::path& path, const std::string& text) {
  const auto tmp = std::filesystem::path(path.string() + ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw io_error("baypr::meta::train: cannot write '" + tmp.string() + "'");
  }
  std::filesystem::rename(tmp, path);
}

inline std::filesystem::path checkpoint_file(const std::filesystem::path& dir, const char* stem, long long epoch) {
  return dir / (std::string(stem) + "-" + std::to_string(epoch) + ".npy");
}

// The best parameters so far and their validation (kept across a resume).
struct BestSoFar {
  Eigen::VectorXd theta;
  int epoch = 0;
  double validation = 0.0;
  int epochs_without_gain = 0;
};

inline void save_checkpoint(const std::filesystem::path& dir, const Eigen::VectorXd& theta, const Adam& adam,
                            int epochs_done, const BestSoFar& best) {
  std::filesystem::create_directories(dir);
  const char* const stems[] = {"theta", "adam_m", "adam_v", "best"};
  write_npy(checkpoint_file(dir, "theta", epochs_done), theta);
  write_npy(checkpoint_file(dir, "adam_m", epochs_done), adam.m);
  write_npy(checkpoint_file(dir, "adam_v", epochs_done), adam.v);
  write_npy(checkpoint_file(dir, "best", epochs_done), best.theta);
  char validation[40];
  std::snprintf(validation, sizeof validation, "%.17g", best.validation);
  // state.txt last, by rename: it only ever names an epoch whose files are all written.
  write_text_atomically(dir / "state.txt", "epochs " + std::to_string(epochs_done) + "\nadam_t " +
                                               std::to_string(adam.t) + "\nbest_epoch " +
                                               std::to_string(best.epoch) + "\nbest_validation " + validation +
                                               "\nepochs_without_gain " +
                                               std::to_string(best.epochs_without_gain) + "\n");
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    for (const char* stem : stems) {
      const std::string prefix = std::string(stem) + "-";
      if (name.rfind(prefix, 0) == 0 && name != checkpoint_file(dir, stem, epochs_done).filename().string()) {
        std::error_code ignored;
        std::filesystem::remove(entry.path(), ignored);
      }
    }
  }
}

// Loads a checkpoint; best.theta stays empty when it has none (written before best was kept).
inline bool load_checkpoint(const std::filesystem::path& dir, Eigen::VectorXd& theta, Adam& adam, int& epochs_done,
                            BestSoFar& best) {
  constexpr const char* fn = "baypr::meta::train";
  std::ifstream state(dir / "state.txt");
  if (!state) return false;
  std::string key_epochs, key_t;
  long long epochs = -1, t = -1;
  state >> key_epochs >> epochs >> key_t >> t;
  if (!state || key_epochs != "epochs" || key_t != "adam_t" || epochs < 0 || t < 0) {
    throw io_error(std::string(fn) + ": checkpoint '" + (dir / "state.txt").string() + "' is malformed");
  }
  const Eigen::VectorXd loaded = read_npy_matrix<double>(checkpoint_file(dir, "theta", epochs)).reshaped();
  if (loaded.size() != theta.size()) {
    throw io_error(std::string(fn) + ": checkpoint theta has " + std::to_string(loaded.size()) +
                   " parameters, the model " + std::to_string(theta.size()));
  }
  Adam a = adam;
  a.t = t;
  if (t > 0) {
    a.m = read_npy_matrix<double>(checkpoint_file(dir, "adam_m", epochs)).reshaped();
    a.v = read_npy_matrix<double>(checkpoint_file(dir, "adam_v", epochs)).reshaped();
    if (a.m.size() != theta.size() || a.v.size() != theta.size()) {
      throw io_error(std::string(fn) + ": checkpoint Adam moments do not match theta's size");
    }
  }
  BestSoFar b;
  std::string key_best, key_validation, key_without;
  long long best_epoch = -1, without = 0;
  double best_validation = 0.0;
  if (state >> key_best >> best_epoch >> key_validation >> best_validation >> key_without >> without) {
    if (key_best != "best_epoch" || key_validation != "best_validation" || key_without != "epochs_without_gain" ||
        best_epoch < 0 || best_epoch > epochs || without < 0) {
      throw io_error(std::string(fn) + ": checkpoint '" + (dir / "state.txt").string() + "' is malformed");
    }
    b.theta = read_npy_matrix<double>(checkpoint_file(dir, "best", epochs)).reshaped();
    if (b.theta.size() != theta.size()) {
      throw io_error(std::string(fn) + ": checkpoint best parameters do not match theta's size");
    }
    b.epoch = static_cast<int>(best_epoch);
    b.validation = best_validation;
    b.epochs_without_gain = static_cast<int>(without);
  }
  theta = loaded;
  adam = a;
  epochs_done = static_cast<int>(epochs);
  best = std::move(b);
  return true;
}

inline std::string format_duration(double seconds) {
  const long long s = static_cast<long long>(seconds + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, (s / 60) % 60, s % 60);
  return buf;
}

}  // namespace detail

template <class Step, class Sampler, class Validate>
TrainResult train(const Eigen::VectorXd& theta0, Step&& step, const Sampler& sampler, Validate&& validate,
                  const TrainerOptions& options) {
  constexpr std::string_view fn = "baypr::meta::train";
  if (options.epochs < 0) baypr::detail::throw_invalid(fn, "options.epochs", "must be >= 0, got " + std::to_string(options.epochs));
  if (options.steps_per_epoch < 1 || options.meta_batch < 1) {
    baypr::detail::throw_invalid(fn, "options.steps_per_epoch / meta_batch", "must both be >= 1");
  }
  if (options.patience < 0) {
    baypr::detail::throw_invalid(fn, "options.patience", "must be >= 0, got " + std::to_string(options.patience));
  }
  baypr::detail::check_finite(fn, "theta0", theta0);
  TrainResult out;
  out.theta = theta0;
  Adam adam = options.adam;
  detail::BestSoFar best;
  if (options.resume && !options.checkpoint_dir.empty()) {
    detail::load_checkpoint(options.checkpoint_dir, out.theta, adam, out.start_epoch, best);
  }
  const bool show = options.progress == TrainerOptions::Progress::always ||
                    (options.progress == TrainerOptions::Progress::automatic && isatty(fileno(stderr)) != 0);
  std::ofstream log;
  if (!options.log_path.empty()) {
    log.open(options.log_path, options.resume ? std::ios::app : std::ios::trunc);
    if (!log) throw io_error(std::string(fn) + ": cannot open log '" + options.log_path.string() + "'");
  }
  out.initial_validation = validate(out.theta);
  if (best.theta.size() == 0) best = {out.theta, out.start_epoch, out.initial_validation, 0};
  // A non-finite validation value never counts as a gain.
  const auto better = [](double v, double than) { return std::isfinite(v) && (!std::isfinite(than) || v > than); };
  const auto t_start = std::chrono::steady_clock::now();
  const int total_updates = (options.epochs - out.start_epoch) * options.steps_per_epoch;
  int updates_done = 0;
  for (int epoch = out.start_epoch; epoch < options.epochs; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    EpochRecord rec;
    rec.epoch = epoch + 1;
    for (int u = 0; u < options.steps_per_epoch; ++u) {
      std::mt19937_64 rng(
          baypr::derive_seed(options.seed, {static_cast<std::uint64_t>(epoch), static_cast<std::uint64_t>(u)}));
      Eigen::VectorXd gradient = Eigen::VectorXd::Zero(out.theta.size());
      for (int b = 0; b < options.meta_batch; ++b) {
        const MetaEpisode episode = sampler.sample(rng);
        const MetaStep r = step(out.theta, episode);
        const std::string which = "step(theta, episode).gradient (epoch " + std::to_string(epoch + 1) + ", update " +
                                  std::to_string(u + 1) + ", episode " + std::to_string(b + 1) + ")";
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
      if (show) {
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
        const double eta = elapsed / updates_done * (total_updates - updates_done);
        const int width = 30, filled = width * updates_done / std::max(total_updates, 1);
        std::fprintf(stderr, "\r[%.*s%*s] epoch %d/%d  update %d/%d  ETA %s ", filled,
                     "==============================", width - filled, "", epoch + 1, options.epochs, u + 1,
                     options.steps_per_epoch, detail::format_duration(eta).c_str());
        std::fflush(stderr);
      }
    }
    const double n = static_cast<double>(options.steps_per_epoch);
    rec.outer_loss /= n * options.meta_batch;
    rec.inner_loss /= n * options.meta_batch;
    rec.gradient_norm /= n;
    rec.validation = validate(out.theta);
    rec.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out.history.push_back(rec);
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
                    rec.epoch, json(rec.outer_loss).c_str(), json(rec.inner_loss).c_str(), json(rec.validation).c_str(),
                    json(rec.gradient_norm).c_str(), rec.seconds);
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
    if (options.patience > 0 && best.epochs_without_gain >= options.patience && epoch + 1 < options.epochs) {
      out.stopped_early = true;
      break;
    }
  }
  if (show) std::fprintf(stderr, "\n");
  out.last_theta = out.theta;
  out.best_epoch = best.epoch;
  out.best_validation = best.validation;
  if (options.keep_best) out.theta = std::move(best.theta);
  return out;
}

}  // namespace baypr::meta
