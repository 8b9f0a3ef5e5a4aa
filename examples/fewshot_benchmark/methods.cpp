// The methods each dataset compares, in one translation unit: every scorer type is instantiated
// here once instead of in each dataset's file (the heaviest part of compiling the program).
#include <baypr/eval/episodes.hpp>
#include <baypr_bench/methods.hpp>
#include <baypr_bench/textures.hpp>

#include "common.hpp"

namespace bench {

// Fashion-MNIST: Bayesian llr and nll (the default prior, Psi0 = I, kappa0 = 1e-4), tail, llr with
// the empirical-Bayes Psi0 scale, PatchCore (memory bank = every support image), prototype,
// Gaussian (Ledoit-Wolf); and, as a prior-sensitivity ablation, the Bayesian llr with the authors'
// prior (kappa0 = 0.01).
std::vector<baypr::EpisodeMethod> fashion_methods() {
  auto methods = baypr::standard_episode_methods();
  baypr::BayesianScorerOptions tail;
  tail.score = baypr::BayesScore::tail;
  methods.insert(methods.begin() + 2,
                 baypr::make_episode_method("bayes tail", baypr::BayesianScorer(tail)));
  baypr::BayesianScorerOptions authors;  // Psi0 = I, kappa0 = 0.01, nu0 = d + 2, mu0 = 0
  authors.kappa0 = 0.01;
  methods.push_back(baypr::make_episode_method(
      "ablation: bayes llr, Psi0 = I, kappa0 = 0.01 (authors')", baypr::BayesianScorer(authors)));
  return methods;
}

std::vector<baypr::EpisodeMethod> texture_methods() {
  return baypr::texture_episode_methods();
}

std::vector<baypr::EpisodeMethod> user_methods() {
  return baypr::standard_episode_methods();
}

}  // namespace bench
