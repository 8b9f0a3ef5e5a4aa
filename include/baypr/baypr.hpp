// baypr/baypr.hpp: the umbrella header for baypr's core (needs Eigen only).
//
//   baypr::NiwPrior / NiwPosterior   Normal-Inverse-Wishart prior and conjugate posterior
//   baypr::StudentT                  posterior predictive: log density, Mahalanobis distance,
//                                    calibrated tail probability and threshold, gradients
//   baypr::log_predictive_vjp        value and gradients through support -> posterior -> t
//   baypr::BayesianScorer, PrototypeScorer, GaussianScorer, score_patches, aggregate
#pragma once

#include "baypr/core/errors.hpp"
#include "baypr/core/special.hpp"
#include "baypr/core/traits.hpp"
#include "baypr/score/baselines.hpp"
#include "baypr/score/bayesian.hpp"
#include "baypr/score/scorer.hpp"
#include "baypr/stats/niw.hpp"
#include "baypr/stats/predictive_vjp.hpp"
#include "baypr/stats/student_t.hpp"
#include "baypr/version.hpp"
