// bench/baypr_bench/methods.hpp: the repository's few-shot benchmark setup, not the library's
// API (this directory is not installed): the list of methods it compares and the pixel
// standardisation of its image data.
//
//   std::vector<EpisodeMethod> standard_episode_methods(bayes_path = Path::automatic)
//   PixelStandardiser::fit(train_pixels, min_sd), .apply(pixels)
#pragma once

#include <Eigen/Core>
#include <string>
#include <string_view>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/eval/episodes.hpp"
#include "baypr/score/baselines.hpp"
#include "baypr/score/bayesian.hpp"
#include "baypr/score/patchcore.hpp"

namespace baypr {

// The benchmark's methods: Bayesian llr and nll with the empirical-Bayes Psi0 scale, PatchCore
// with every support row in the memory bank (coreset 100%), prototype, Gaussian (Ledoit-Wolf).
// bayes_path: the Bayesian scorers' posterior path (automatic: low-rank when K + 1 < d).
[[nodiscard]] inline std::vector<EpisodeMethod> standard_episode_methods(
    Path bayes_path = Path::automatic) {
  BayesianScorerOptions llr;  // the defaults: Psi0 = I, kappa0 = 1e-4
  llr.path = bayes_path;
  BayesianScorerOptions nll = llr;
  nll.score = BayesScore::nll;
  BayesianScorerOptions eb = llr;
  eb.empirical_psi_scale = true;
  PatchCoreOptions all_rows;
  all_rows.coreset.ratio = 1.0;
  return {make_episode_method("bayes llr", BayesianScorer(llr)),
          make_episode_method("bayes nll", BayesianScorer(nll)),
          make_episode_method("bayes llr (EB Psi0)", BayesianScorer(eb)),
          make_episode_method("patchcore (coreset 100%)", PatchCoreScorer<double>(all_rows)),
          make_episode_method("prototype", PrototypeScorer()),
          make_episode_method("gaussian (Ledoit-Wolf)", GaussianScorer())};
}

// Per-pixel standardisation with statistics of the training split: (x - mean) / max(sd, min_sd).
// The floor keeps the near-constant border pixels (sd ~ 0) from dominating distances.
struct PixelStandardiser {
  Eigen::RowVectorXd mean, scale;

  [[nodiscard]] static PixelStandardiser fit(const Eigen::MatrixXd& train, double min_sd = 0.1) {
    constexpr std::string_view fn = "baypr::PixelStandardiser::fit";
    if (train.rows() < 2)
      detail::throw_invalid(fn, "train",
                            "must have at least 2 rows, got " + std::to_string(train.rows()));
    detail::check_positive(fn, "min_sd", min_sd);
    PixelStandardiser s;
    s.mean = train.colwise().mean();
    const Eigen::RowVectorXd var =
        (train.rowwise() - s.mean).colwise().squaredNorm() / static_cast<double>(train.rows() - 1);
    s.scale = var.cwiseSqrt().cwiseMax(min_sd);
    return s;
  }

  [[nodiscard]] Eigen::MatrixXd apply(const Eigen::MatrixXd& x) const {
    detail::check_size("baypr::PixelStandardiser::apply", "x", "columns", x.cols(), mean.size());
    return (x.rowwise() - mean).array().rowwise() / scale.array();
  }
};

}  // namespace baypr
