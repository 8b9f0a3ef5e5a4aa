// baypr/baypr.hpp: the umbrella header for baypr's core (needs Eigen only).
//
//   baypr::NiwPrior / NiwPosterior   Normal-Inverse-Wishart prior and conjugate posterior
//   baypr::StudentT                  posterior predictive: log density, Mahalanobis distance,
//                                    calibrated tail probability and threshold, gradients
//   baypr::log_predictive_vjp        value and gradients through support -> posterior -> t
//   baypr::BayesianScorer, PatchCoreScorer, PrototypeScorer, GaussianScorer, score_patches
//   baypr::auroc, average_precision, best_f1, bootstrap_interval, ...   evaluation metrics
// The .npy reader/writer is separate: #include <baypr/io/npy.hpp>.
#pragma once

#include "baypr/core/errors.hpp"
#include "baypr/core/special.hpp"
#include "baypr/core/traits.hpp"
#include "baypr/eval/metrics.hpp"
#include "baypr/score/baselines.hpp"
#include "baypr/score/bayesian.hpp"
#include "baypr/score/knn.hpp"
#include "baypr/score/patchcore.hpp"
#include "baypr/score/scorer.hpp"
#include "baypr/stats/niw.hpp"
#include "baypr/stats/predictive_vjp.hpp"
#include "baypr/stats/prior_fit.hpp"
#include "baypr/stats/student_t.hpp"
#include "baypr/version.hpp"
