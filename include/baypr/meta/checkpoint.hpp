// baypr/meta/checkpoint.hpp: meta::train's checkpoints (the parameters, Adam's state and the best
// parameters so far), written so that a crash at any point leaves a complete set.
//
// A checkpoint after E epochs is theta-E.npy, adam_m-E.npy, adam_v-E.npy and best-E.npy, then
// state.txt naming E, Adam's step count, the best epoch, its validation value and the epochs since
// it, written last by an atomic rename (a uniquely named temporary file in the same directory);
// the files of earlier epochs are removed after it. Every failure is a baypr::io_error naming
// meta::train (or the .npy function that failed) and the file, in the dialect of
// baypr/io/detail/file.hpp; std::filesystem's own errors never leak.
#pragma once

#include <Eigen/Core>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "baypr/core/errors.hpp"
#include "baypr/io/detail/file.hpp"
#include "baypr/io/npy.hpp"
#include "baypr/meta/adam.hpp"

namespace baypr::meta::detail {

inline constexpr std::string_view checkpoint_function = "baypr::meta::train";

// The best parameters so far and their validation (kept across a resume).
struct BestSoFar {
  Eigen::VectorXd theta;
  int epoch = 0;
  double validation = 0.0;
  int epochs_without_gain = 0;
};

inline std::filesystem::path checkpoint_file(const std::filesystem::path& dir,
                                             std::string_view stem, long long epoch) {
  return dir / (std::string(stem) + "-" + std::to_string(epoch) + ".npy");
}

[[noreturn]] inline void checkpoint_failure(const std::filesystem::path& path,
                                            std::string_view what) {
  baypr::detail::io::fail(checkpoint_function, baypr::detail::io::file_source(path), what);
}

inline void save_checkpoint(const std::filesystem::path& dir, const Eigen::VectorXd& theta,
                            const Adam& adam, int epochs_done, const BestSoFar& best) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    baypr::detail::io::fail(checkpoint_function, baypr::detail::io::directory_source(dir),
                            "cannot be created: " + ec.message());
  }
  constexpr std::string_view stems[] = {"theta", "adam_m", "adam_v", "best"};
  write_npy(checkpoint_file(dir, "theta", epochs_done), theta);
  write_npy(checkpoint_file(dir, "adam_m", epochs_done), adam.m);
  write_npy(checkpoint_file(dir, "adam_v", epochs_done), adam.v);
  write_npy(checkpoint_file(dir, "best", epochs_done), best.theta);
  char validation[40];
  std::snprintf(validation, sizeof validation, "%.17g", best.validation);
  // state.txt last, by rename: it only ever names an epoch whose files are all written.
  const std::string state = "epochs " + std::to_string(epochs_done) + "\nadam_t " +
                            std::to_string(adam.t) + "\nbest_epoch " + std::to_string(best.epoch) +
                            "\nbest_validation " + validation + "\nepochs_without_gain " +
                            std::to_string(best.epochs_without_gain) + "\n";
  baypr::detail::io::write_atomically(dir / "state.txt", state, checkpoint_function);
  // Earlier epochs' files: removal is best effort (a file left behind is never read again).
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    for (const std::string_view stem : stems) {
      const std::string prefix = std::string(stem) + "-";
      if (name.rfind(prefix, 0) == 0 &&
          name != checkpoint_file(dir, stem, epochs_done).filename().string()) {
        std::error_code ignored;
        fs::remove(it->path(), ignored);
      }
    }
  }
}

// Loads the checkpoint in `dir` into theta, adam, epochs_done and best, all or nothing; false (and
// nothing changed) when `dir` holds no state.txt. best.theta stays empty for a checkpoint written
// before the best parameters were kept.
inline bool load_checkpoint(const std::filesystem::path& dir, Eigen::VectorXd& theta, Adam& adam,
                            int& epochs_done, BestSoFar& best) {
  const auto state_path = dir / "state.txt";
  std::error_code ec;
  if (!std::filesystem::exists(state_path, ec)) return false;
  const auto bytes =
      baypr::detail::io::read_all(state_path, checkpoint_function, 4096, "any state file");
  std::istringstream state(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  std::string key_epochs, key_t;
  long long epochs = -1, t = -1;
  state >> key_epochs >> epochs >> key_t >> t;
  if (!state || key_epochs != "epochs" || key_t != "adam_t" || epochs < 0 || t < 0) {
    checkpoint_failure(state_path, "is malformed");
  }
  const Eigen::VectorXd loaded =
      read_npy_matrix<double>(checkpoint_file(dir, "theta", epochs)).reshaped();
  if (loaded.size() != theta.size()) {
    checkpoint_failure(checkpoint_file(dir, "theta", epochs),
                       "has " + std::to_string(loaded.size()) + " parameters, the model " +
                           std::to_string(theta.size()));
  }
  Adam a = adam;
  a.t = t;
  if (t > 0) {
    a.m = read_npy_matrix<double>(checkpoint_file(dir, "adam_m", epochs)).reshaped();
    a.v = read_npy_matrix<double>(checkpoint_file(dir, "adam_v", epochs)).reshaped();
    if (a.m.size() != theta.size() || a.v.size() != theta.size()) {
      checkpoint_failure(
          checkpoint_file(dir, a.m.size() != theta.size() ? "adam_m" : "adam_v", epochs),
          "does not match theta's size " + std::to_string(theta.size()));
    }
  }
  BestSoFar b;
  std::string key_best, key_validation, key_without;
  long long best_epoch = -1, without = 0;
  double best_validation = 0.0;
  if (state >> key_best >> best_epoch >> key_validation >> best_validation >> key_without >>
      without) {
    if (key_best != "best_epoch" || key_validation != "best_validation" ||
        key_without != "epochs_without_gain" || best_epoch < 0 || best_epoch > epochs ||
        without < 0) {
      checkpoint_failure(state_path, "is malformed");
    }
    b.theta = read_npy_matrix<double>(checkpoint_file(dir, "best", epochs)).reshaped();
    if (b.theta.size() != theta.size()) {
      checkpoint_failure(checkpoint_file(dir, "best", epochs),
                         "does not match theta's size " + std::to_string(theta.size()));
    }
    b.epoch = static_cast<int>(best_epoch);
    b.validation = best_validation;
    b.epochs_without_gain = static_cast<int>(without);
  }
  theta = loaded;
  adam = std::move(a);
  epochs_done = static_cast<int>(epochs);
  best = std::move(b);
  return true;
}

}  // namespace baypr::meta::detail
