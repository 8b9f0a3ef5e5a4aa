// A one-off check (compiled, not run, by the sanitize preset's BAYPR_CHECK_PROGRAMS): BayPrAnoMeta
// with the library's defaults on a second labelled image data set, as a new user would try it
// (issue 11: "tried on other labelled image data with the defaults and a validation split of the
// meta-train classes").
//
// Data: scikit-learn's 8 x 8 digits (Debian python3-sklearn, digits.csv.gz: 1797 images, 10
// classes), converted to x.npy (1797 x 64, pixel values 0..16) and y.npy (1797 x 1) by
//   python3 -c "import numpy as np, gzip; d =
//   np.loadtxt(gzip.open('/usr/lib/python3/dist-packages/\
//   sklearn/datasets/data/digits.csv.gz'), delimiter=','); np.save('x.npy', d[:, :64]); \
//   np.save('y.npy', d[:, 64:65])"
// Build and run (from the repository root):
//   g++ -std=c++20 -O2 -DNDEBUG -Iinclude -I/usr/include/eigen3
//   examples/experiments/meta_digits.cpp \
//       -o /tmp/meta_digits && /tmp/meta_digits DIR_WITH_NPY [VALIDATION_EPISODES_PER_CLASS_AND_K]
// Splits: meta-train classes {0, 1, 2, 3}, validation {4, 5, 6} (never trained on; picks each run's
// best epoch), held out {7, 8, 9}. Within each class the first half of its images (file order) give
// support and training tasks, the second half the queries. Inputs standardised with the meta-train
// images' statistics. Everything else is the library's default: Mlp::paper_head(64, 32), the
// authors' NIW prior, the discriminative objective with its calibration fitted at theta0, SupCon
// 0.1, Adam 1e-4 (meta_training's settings; 1e-3 before they were re-chosen by
// meta_fashion_selection.cpp), one inner step of 5e-4, exact second order, train() with keep_best
// and patience 10 over up to 60 epochs of 100 updates. 5 training seeds; 40 held-out episodes per
// class and K in {1, 5}; each episode's AUROC averaged over seeds; paired differences with the
// two-level bootstrap (classes, then episodes).
#include <baypr/baypr.hpp>
#include <baypr/eval/episodes.hpp>
#include <baypr/io/npy.hpp>
#include <baypr/meta/adapt.hpp>
#include <baypr/meta/mlp.hpp>
#include <baypr/meta/trainer.hpp>

#include <cstdio>
#include <iostream>
#include <random>
#include <string>
#include <vector>

namespace meta = baypr::meta;

namespace {

struct Episode {
  Eigen::Index shots;
  int cls;
  meta::MetaEpisode e;
};

std::vector<Episode> episodes(const Eigen::MatrixXd& x, const std::vector<int>& y,
                              const std::vector<int>& classes,
                              const std::vector<Eigen::Index>& shots, int per_class,
                              std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Episode> out;
  for (const Eigen::Index k : shots) {
    for (const int c : classes) {
      std::vector<Eigen::Index> first, second, others;
      std::vector<Eigen::Index> all;
      for (std::size_t i = 0; i < y.size(); ++i) {
        if (y[i] == c) all.push_back(static_cast<Eigen::Index>(i));
      }
      first.assign(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(all.size() / 2));
      second.assign(all.begin() + static_cast<std::ptrdiff_t>(all.size() / 2), all.end());
      for (const int o : classes) {
        if (o == c) continue;
        std::vector<Eigen::Index> rows;
        for (std::size_t i = 0; i < y.size(); ++i) {
          if (y[i] == o) rows.push_back(static_cast<Eigen::Index>(i));
        }
        others.insert(others.end(), rows.begin() + static_cast<std::ptrdiff_t>(rows.size() / 2),
                      rows.end());
      }
      for (int e = 0; e < per_class; ++e) {
        const auto s = baypr::sample_without_replacement(first, k, rng);
        auto q = baypr::sample_without_replacement(second, 12, rng);
        const auto a = baypr::sample_without_replacement(others, 4, rng);
        q.insert(q.end(), a.begin(), a.end());
        Episode ep{k, c, {}};
        ep.e.support = x(s, Eigen::all);
        ep.e.queries = x(q, Eigen::all);
        ep.e.labels.setOnes(16);
        ep.e.labels.head(12).setZero();
        out.push_back(std::move(ep));
      }
    }
  }
  return out;
}

double auroc_of(const Eigen::VectorXd& s, const meta::MetaEpisode& e) {
  return baypr::auroc(s, e.labels);
}

}  // namespace

int main(int argc, char** argv) try {
  const std::string dir = argc > 1 ? argv[1] : ".";
  // Validation episodes per validation class and K (default 8; a second argument changes it).
  const int validation_per_class = argc > 2 ? std::stoi(argv[2]) : 8;
  const Eigen::MatrixXd raw = baypr::read_npy_matrix<double>(dir + "/x.npy");
  const Eigen::MatrixXd labels = baypr::read_npy_matrix<double>(dir + "/y.npy");
  std::vector<int> y(static_cast<std::size_t>(labels.rows()));
  for (Eigen::Index i = 0; i < labels.rows(); ++i)
    y[static_cast<std::size_t>(i)] = static_cast<int>(labels(i, 0));
  const std::vector<int> train_classes = {0, 1, 2, 3}, validation_classes = {4, 5, 6},
                         held_out = {7, 8, 9};

  // Standardise with the meta-train images' statistics (constant pixels: sd 1).
  std::vector<Eigen::Index> train_rows;
  for (std::size_t i = 0; i < y.size(); ++i) {
    if (y[i] <= 3) train_rows.push_back(static_cast<Eigen::Index>(i));
  }
  const Eigen::MatrixXd tr = raw(train_rows, Eigen::all);
  const Eigen::RowVectorXd mean = tr.colwise().mean();
  Eigen::RowVectorXd sd =
      ((tr.rowwise() - mean).colwise().squaredNorm() / static_cast<double>(tr.rows())).cwiseSqrt();
  for (Eigen::Index j = 0; j < sd.size(); ++j) sd(j) = sd(j) > 1e-6 ? sd(j) : 1.0;
  const Eigen::MatrixXd x = (raw.rowwise() - mean).array().rowwise() / sd.array();

  // Training tasks: the first half of each meta-train class's images.
  std::vector<Eigen::Index> task_rows;
  std::vector<int> task_labels;
  for (const int c : train_classes) {
    std::vector<Eigen::Index> all;
    for (std::size_t i = 0; i < y.size(); ++i) {
      if (y[i] == c) all.push_back(static_cast<Eigen::Index>(i));
    }
    for (std::size_t i = 0; i < all.size() / 2; ++i) {
      task_rows.push_back(all[i]);
      task_labels.push_back(c);
    }
  }
  const meta::ClassTaskSampler sampler(
      x(task_rows, Eigen::all),
      Eigen::Map<const Eigen::VectorXi>(task_labels.data(),
                                        static_cast<Eigen::Index>(task_labels.size())),
      train_classes, {5, 12, 4});
  const auto validation =
      episodes(x, y, validation_classes, {1, 5}, validation_per_class, 0x76616c);
  const auto evaluation = episodes(x, y, held_out, {1, 5}, 40, 0x657661);

  const meta::Mlp embedding = meta::Mlp::paper_head(64, 32);
  const auto prior = baypr::NiwPrior<double>::isotropic(32, 0.01, 34.0, 1.0);
  // The defaults (one inner step of 5e-4, the authors' anomaly model, discriminative, exact second
  // order) and SupCon 0.1.
  meta::MetaOptions options;
  options.outer.supcon_weight = 0.1;
  const auto score = [&](const Eigen::VectorXd& theta, const meta::MetaEpisode& e) {
    return meta::scores(embedding, theta, e.support, e.queries, prior, options);
  };

  const int seeds = 5;
  Eigen::VectorXd untrained = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(evaluation.size()));
  Eigen::VectorXd trained = untrained;
  for (int si = 0; si < seeds; ++si) {
    const std::uint64_t seed = 2026 + static_cast<std::uint64_t>(si);
    const Eigen::VectorXd theta0 = embedding.initial_parameters(seed);
    std::mt19937_64 crng(seed);
    Eigen::VectorXd s0(32 * 16);
    Eigen::VectorXi l0(32 * 16);
    for (Eigen::Index i = 0; i < 32; ++i) {
      const auto e = sampler.sample(crng);
      s0.segment(16 * i, 16) = score(theta0, e);
      l0.segment(16 * i, 16) = e.labels;
    }
    const auto cal = meta::fit_calibration(s0, l0);
    meta::MetaStepper<meta::Mlp> stepper(embedding);
    meta::TrainerOptions o;
    o.epochs = 60;
    o.steps_per_epoch = 100;
    o.meta_batch = 4;
    o.seed = seed;
    o.adam.lr = 1e-4;
    o.patience = 10;
    const auto result = meta::train(
        meta::with_calibration(theta0, cal),
        [&](const Eigen::VectorXd& joint, const meta::MetaEpisode& e) {
          return meta::calibrated_meta_step(stepper, joint, e, prior, options);
        },
        sampler,
        [&](const Eigen::VectorXd& joint) {
          double sum = 0;
          for (const auto& v : validation)
            sum += auroc_of(score(meta::split_calibration(joint).first, v.e), v.e);
          return sum / static_cast<double>(validation.size());
        },
        o);
    const Eigen::VectorXd theta = meta::split_calibration(result.theta).first;
    std::fprintf(stderr, "seed %llu: validation %.3f -> %.3f (epoch %d)\n",
                 static_cast<unsigned long long>(seed), result.initial_validation,
                 result.best_validation, result.best_epoch);
    for (std::size_t i = 0; i < evaluation.size(); ++i) {
      const auto& e = evaluation[i].e;
      untrained(static_cast<Eigen::Index>(i)) += auroc_of(score(theta0, e), e) / seeds;
      trained(static_cast<Eigen::Index>(i)) += auroc_of(score(theta, e), e) / seeds;
    }
  }
  std::mt19937_64 brng(7);
  for (const Eigen::Index k : {1, 5}) {
    std::vector<double> a, b;
    std::vector<int> groups;
    for (std::size_t i = 0; i < evaluation.size(); ++i) {
      if (evaluation[i].shots != k) continue;
      a.push_back(untrained(static_cast<Eigen::Index>(i)));
      b.push_back(trained(static_cast<Eigen::Index>(i)));
      groups.push_back(evaluation[i].cls);
    }
    const Eigen::Map<const Eigen::VectorXd> ua(a.data(), static_cast<Eigen::Index>(a.size()));
    const Eigen::Map<const Eigen::VectorXd> tb(b.data(), static_cast<Eigen::Index>(b.size()));
    const auto mu = baypr::grouped_bootstrap_interval(ua, groups, 4000, 0.95, brng);
    const auto mt = baypr::grouped_bootstrap_interval(tb, groups, 4000, 0.95, brng);
    const auto md =
        baypr::grouped_bootstrap_interval(Eigen::VectorXd(tb - ua), groups, 4000, 0.95, brng);
    std::printf(
        "K = %lld: untrained %.3f [%.3f, %.3f], BayPrAnoMeta %.3f [%.3f, %.3f], difference %+.3f "
        "[%+.3f, %+.3f]\n",
        static_cast<long long>(k), mu.mean, mu.lower, mu.upper, mt.mean, mt.lower, mt.upper,
        md.mean, md.lower, md.upper);
  }
  return 0;
} catch (const std::exception& e) {
  std::cerr << "meta_digits: " << e.what() << "\n";
  return 1;
}
