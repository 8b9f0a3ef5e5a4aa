// examples/meta_fashion_data.hpp: the Fashion-MNIST meta-learning setup shared by
// examples/meta_training.cpp and tests/meta_fashion.test.cpp — data loading, the class splits, the
// embedding, prior and training settings chosen on validation, and the seeded validation and
// held-out evaluation episodes. See meta_training.cpp's header comment for why each choice.
//
//   meta_fashion::data_available(dir), load(dir) -> Data {train, test}   projected, standardised
//   meta_fashion::Settings                        validated defaults (Adam lr, inner step, ...)
//   meta_fashion::embedding(), prior()            Mlp::paper_head(128, 32), NIW(0, 0.01, d + 2, I)
//   meta_fashion::training_sampler(data [, classes])
//                                                 K = 5 tasks over the meta-train classes'
//                                                 training images
//   meta_fashion::refit_sampler(data)             the same over meta-train + validation classes
//   meta_fashion::initial_calibration(...)        the discriminative objective's (rho, beta) start
//   meta_fashion::type2_prior(...)                fit_prior over meta-train support sets
//   meta_fashion::validation_episodes(data, seed) fixed episodes of the meta-train classes' test
//                                                 images
//   meta_fashion::evaluation_episodes(data, shots, per_class, seed)
//                                                 held-out episodes, drawn once
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <baypr/baypr.hpp>
#include <baypr/eval/episodes.hpp>
#include <baypr/io/idx.hpp>
#include <baypr/meta/adapt.hpp>
#include <baypr/meta/mlp.hpp>
#include <baypr/meta/trainer.hpp>
#include <baypr_bench/methods.hpp>

namespace meta_fashion {

namespace meta = baypr::meta;

inline constexpr Eigen::Index projected_dim = 128, embedding_dim = 32;
inline constexpr Eigen::Index normal_queries = 12, anomalous_queries = 4;
inline constexpr int validation_per_class = 24;
// Meta-train: T-shirt, Trouser, Pullover. Validation (never meta-trained on, as normal or as
// anomaly): Dress, Coat, Sandal. Held out: Shirt, Sneaker, Bag, Ankle boot. The six non-held-out
// classes are split in label order, half and half, so that validation episodes can mirror the
// held-out protocol (normal and anomalous classes both unseen in training).
inline const std::vector<int> meta_train_classes = {0, 1, 2};
inline const std::vector<int> validation_classes = {3, 4, 5};
inline const std::vector<int> held_out_classes = {6, 7, 8, 9};
inline const std::string default_data_dir = "/usr/share/datasets/fashion-mnist";

// Chosen on the validation classes only (never on the held-out classes): the learning rate and
// SupCon weight by examples/experiments/meta_fashion_selection.cpp (each run's epoch kept by the
// validation episodes, the configurations compared on fresh episodes of the same classes).
struct Settings {
  double lr = 1e-4;        // Adam (the authors' value; 1e-3 until the selection above)
  double inner_lr = 5e-4;  // inner SGD step (authors' value)
  int inner_steps = 1;
  int meta_batch = 4;
  double supcon = 0.1;  // BayPrAnoMeta's SupCon outer term (authors: 0.1, tau 0.07)
  meta::MetaGradient order = meta::MetaGradient::second_order;
  meta::Objective objective = meta::Objective::discriminative;
};

struct Split {
  Eigen::MatrixXd x;  // projected, standardised inputs, one image per row
  Eigen::VectorXi labels;
};

struct Data {
  Split train, test;
};

inline std::string file_of(const std::string& dir, const char* name) {
  return dir + "/" + name;
}

inline bool data_available(const std::string& dir) {
  for (const char* f : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}) {
    if (!std::filesystem::exists(file_of(dir, f))) return false;
  }
  return true;
}

// Pixels in [0, 1] standardised with training-split statistics, then 784 -> 128 by the fixed
// Gaussian projection of seed 1 (the few-shot benchmark's proj-128).
inline Data load(const std::string& dir) {
  const Eigen::MatrixXd projection = baypr::gaussian_projection(784, projected_dim, 1);
  const auto train = baypr::read_idx_dataset(file_of(dir, "train-images-idx3-ubyte.gz"),
                                             file_of(dir, "train-labels-idx1-ubyte.gz"));
  const auto test = baypr::read_idx_dataset(file_of(dir, "t10k-images-idx3-ubyte.gz"),
                                            file_of(dir, "t10k-labels-idx1-ubyte.gz"));
  const Eigen::MatrixXd train_pixels = baypr::to_unit_interval(train.images);
  const auto standardiser = baypr::PixelStandardiser::fit(train_pixels);
  Data d;
  d.train.x = standardiser.apply(train_pixels) * projection;
  d.train.labels = train.labels;
  d.test.x = standardiser.apply(baypr::to_unit_interval(test.images)) * projection;
  d.test.labels = test.labels;
  return d;
}

inline meta::Mlp embedding() {
  return meta::Mlp::paper_head(projected_dim, embedding_dim);
}

// The authors' prior: NIW(mu0 = 0, kappa0 = 0.01, nu0 = d + 2, Psi0 = I).
inline baypr::NiwPrior<double> prior() {
  return baypr::NiwPrior<double>::isotropic(embedding_dim, 0.01,
                                            static_cast<double>(embedding_dim + 2), 1.0);
}

// The meta/ options of the settings with `inner_steps` inner steps (0 for the untrained rows):
// step size, order, objective and SupCon weight; the authors' anomaly model.
inline meta::MetaOptions meta_options(const Settings& s, int inner_steps) {
  meta::MetaOptions o;
  o.adapt.inner_steps = inner_steps;
  o.adapt.inner_step_size = s.inner_lr;
  o.order = s.order;
  o.outer.objective = s.objective;
  o.outer.supcon_weight = s.supcon;
  return o;
}

inline meta::TaskShape task_shape() {
  return {5, normal_queries, anomalous_queries};
}

inline meta::ClassTaskSampler training_sampler(
    const Data& d, const std::vector<int>& classes = meta_train_classes) {
  return meta::ClassTaskSampler(d.train.x, d.train.labels, classes, task_shape());
}

// The refit protocol's tasks (meta_training --refit): the meta-train and validation classes
// together, training split only. The held-out classes stay out.
inline meta::ClassTaskSampler refit_sampler(const Data& d) {
  std::vector<int> classes = meta_train_classes;
  classes.insert(classes.end(), validation_classes.begin(), validation_classes.end());
  return meta::ClassTaskSampler(d.train.x, d.train.labels, classes, task_shape());
}

inline std::vector<Eigen::Index> rows_of(const Split& s, int c) {
  std::vector<Eigen::Index> rows;
  for (Eigen::Index i = 0; i < s.labels.size(); ++i) {
    if (s.labels(i) == c) rows.push_back(i);
  }
  return rows;
}

// Hierarchical empirical Bayes on the meta-train classes: baypr::fit_prior's type-II maximum
// likelihood prior (mu0, kappa0, nu0, diagonal Psi0) over `sets_per_class` support sets of 5
// training images of each meta-train class (the training task's K), embedded at theta, drawn from
// an engine derived from seed.
inline baypr::PriorFit type2_prior(const meta::Mlp& embedding, const Eigen::VectorXd& theta,
                                   const Data& d, std::uint64_t seed, int sets_per_class = 200) {
  std::mt19937_64 rng(baypr::derive_seed(seed, {0x74326d6cULL}));
  std::vector<Eigen::MatrixXd> groups;
  for (const int c : meta_train_classes) {
    const auto rows = rows_of(d.train, c);
    for (int g = 0; g < sets_per_class; ++g) {
      const auto pick = baypr::sample_without_replacement(rows, task_shape().shots, rng);
      groups.push_back(embedding.forward(theta, d.train.x(pick, Eigen::all)));
    }
  }
  return baypr::fit_prior(groups);
}

// The calibration's start for the discriminative objective: meta::fit_calibration of the Bayesian
// llr scores (after options' inner steps, with its anomaly model) of 32 training episodes at
// theta0, drawn from an engine derived from seed.
inline meta::Calibration initial_calibration(const meta::Mlp& embedding,
                                             const Eigen::VectorXd& theta0,
                                             const meta::ClassTaskSampler& sampler,
                                             const baypr::NiwPrior<double>& prior,
                                             const meta::MetaOptions& options, std::uint64_t seed) {
  std::mt19937_64 rng(baypr::derive_seed(seed, {0x63616cULL}));
  constexpr Eigen::Index episodes = 32, m = normal_queries + anomalous_queries;
  Eigen::VectorXd scores(episodes * m);
  Eigen::VectorXi labels(episodes * m);
  for (Eigen::Index i = 0; i < episodes; ++i) {
    const meta::MetaEpisode e = sampler.sample(rng);
    scores.segment(i * m, m) =
        meta::scores(embedding, theta0, e.support, e.queries, prior, options);
    labels.segment(i * m, m) = e.labels;
  }
  return meta::fit_calibration(scores, labels);
}

struct EvalEpisode {
  Eigen::Index shots = 0;
  int normal_class = 0;
  meta::MetaEpisode episode;
};

// One-class episodes drawn once from one seeded engine, K by K then class by class: normal class
// c in normal_classes, K support images of c from `support_split`, 12 normal (c) + 4 anomalous
// (anomaly_classes other than c) queries from `query_split`. A prefix of `shots` gives a prefix
// of the episodes.
inline std::vector<EvalEpisode> one_class_episodes(const Split& support_split,
                                                   const Split& query_split,
                                                   const std::vector<int>& normal_classes,
                                                   const std::vector<int>& anomaly_classes,
                                                   const std::vector<Eigen::Index>& shots,
                                                   int per_class, std::mt19937_64& rng) {
  std::vector<EvalEpisode> out;
  for (const Eigen::Index k : shots) {
    for (const int c : normal_classes) {
      const auto support_pool = rows_of(support_split, c);
      const auto normal_pool = rows_of(query_split, c);
      std::vector<Eigen::Index> anomalous_pool;
      for (const int o : anomaly_classes) {
        if (o == c) continue;
        const auto r = rows_of(query_split, o);
        anomalous_pool.insert(anomalous_pool.end(), r.begin(), r.end());
      }
      for (int e = 0; e < per_class; ++e) {
        EvalEpisode ep;
        ep.shots = k;
        ep.normal_class = c;
        std::vector<Eigen::Index> support, queries;
        if (&support_split == &query_split) {  // support and normal queries from one pool: disjoint
          const auto both = baypr::sample_without_replacement(normal_pool, k + normal_queries, rng);
          support.assign(both.begin(), both.begin() + k);
          queries.assign(both.begin() + k, both.end());
        } else {
          support = baypr::sample_without_replacement(support_pool, k, rng);
          queries = baypr::sample_without_replacement(normal_pool, normal_queries, rng);
        }
        const auto anomalous =
            baypr::sample_without_replacement(anomalous_pool, anomalous_queries, rng);
        queries.insert(queries.end(), anomalous.begin(), anomalous.end());
        ep.episode.support = support_split.x(support, Eigen::all);
        ep.episode.queries = query_split.x(queries, Eigen::all);
        ep.episode.labels.setOnes(normal_queries + anomalous_queries);
        ep.episode.labels.head(normal_queries).setZero();
        out.push_back(std::move(ep));
      }
    }
  }
  return out;
}

// The engine of a split's episodes: `stream` 0 is the fixed split's; another class split
// (examples/experiments/meta_fashion_rotation.cpp) takes its own.
inline std::mt19937_64 episode_engine(std::uint64_t seed, std::uint64_t tag, std::uint64_t stream) {
  return std::mt19937_64(baypr::splitmix64(seed ^ tag ^ (stream << 32)));
}

// Held-out episodes: normal class c in {6..9} (or `classes`), K support images of c from the
// training split, 12 normal (c) + 4 anomalous (other held-out classes) queries from the test split.
inline std::vector<EvalEpisode> evaluation_episodes(
    const Data& d, const std::vector<Eigen::Index>& shots, int per_class, std::uint64_t seed,
    const std::vector<int>& classes = held_out_classes, std::uint64_t stream = 0) {
  std::mt19937_64 rng = episode_engine(seed, 0x65766131ULL, stream);
  return one_class_episodes(d.train, d.test, classes, classes, shots, per_class, rng);
}

// Validation (all that may guide a choice), the held-out protocol on the validation classes (or
// `classes`, episodes from engine `stream`): K = 1 and K = 5 episodes whose normal class is a
// validation class, anomalies from the other validation classes; support from the training split,
// queries from the test split.
inline std::vector<meta::MetaEpisode> validation_episodes(
    const Data& d, std::uint64_t seed, const std::vector<int>& classes = validation_classes,
    std::uint64_t stream = 0) {
  std::mt19937_64 rng = episode_engine(seed, 0x76616cULL, stream);
  std::vector<meta::MetaEpisode> out;
  for (auto& e : one_class_episodes(d.train, d.test, classes, classes, {1, 5},
                                    validation_per_class / 2, rng)) {
    out.push_back(std::move(e.episode));
  }
  return out;
}

inline double episode_auroc(const Eigen::VectorXd& scores, const meta::MetaEpisode& e) {
  return baypr::auroc(scores, e.labels);
}

}  // namespace meta_fashion
