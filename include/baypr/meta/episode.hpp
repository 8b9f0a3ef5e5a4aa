// baypr/meta/episode.hpp: the two value types every part of meta/ exchanges.
//
//   MetaEpisode { support, queries, labels }   one few-shot task's inputs, one per row
//   MetaStep { outer_loss, inner_loss, gradient, adapted, calibration_gradient, anomaly_weights }
//                                               what one meta-step returns (meta/adapt.hpp,
//                                               meta/baselines.hpp) and the trainer consumes
//
// They live apart from the adaptation maths so that the task sampler and the trainer
// (meta/task_sampler.hpp, meta/trainer.hpp) need neither the posterior nor an embedding.
#pragma once

#include <Eigen/Core>

namespace baypr::meta {

// One support/query episode: inputs one per row; labels 0 (normal) or 1 (anomalous), one per query.
struct MetaEpisode {
  Eigen::MatrixXd support, queries;
  Eigen::VectorXi labels;
};

struct MetaStep {
  double outer_loss = 0.0;   // L_out(theta') (SupCon term included when on)
  double inner_loss = 0.0;   // L_in(theta), before adaptation
  Eigen::VectorXd gradient;  // d L_out(theta'(theta)) / d theta, theta the initial parameters
  Eigen::VectorXd adapted;   // theta'
  // d L_out / d (rho, beta) of the calibration (zero for the generative objective).
  Eigen::Vector2d calibration_gradient = Eigen::Vector2d::Zero();
  // d L_out / d log p_a(q_j), one per query: how the loss depends on the anomaly model (its
  // parameters' gradient, meta/learned_anomaly.hpp, is this times d log p_a(q_j) / d parameters).
  Eigen::VectorXd anomaly_weights;
};

}  // namespace baypr::meta
