// baypr/eval/episodes.hpp: the one-class few-shot episode protocol on labelled embeddings, and
// a user's task over few-shot episodes.
//
//   FewShotData { train_labels, test_labels, embeddings (name, train rows, test rows) }
//   OneClassOptions { classes, shots, episodes, seed, normal_queries, anomalous_queries,
//                     full_test_split, progress, threads }
//   OneClassResults run_one_class_episodes(data, options, methods)
//   EpisodeMethod make_episode_method(name, scorer)      any baypr::Scorer, fitted per episode
//   TaskResults run_task_episodes(support, queries, labels, TaskOptions, methods)   one user task
//
// The methods are the caller's: e.g. make_episode_method("bayes", BayesianScorer()) for each
// scorer compared (the repository's benchmark lists its own in bench/baypr_bench/methods.hpp).
//
// Protocol (the authors' episode, one class at a time as "normal"): support = K distinct normal
// images from the *training* split; queries = `normal_queries` normal + `anomalous_queries`
// anomalous images (anomalous = any other class) drawn without replacement from the *test* split;
// image AUROC per episode. With full_test_split, each episode's support is also scored against the
// whole test split (every image of class c normal, every other image anomalous). The images of an
// episode depend only on (seed, class, K, episode index), and are shared by every embedding and
// method, so methods are compared on identical episodes (paired). Sampling uses std::mt19937_64
// (whose output the standard fixes) with an exact rejection sampler, so a seed gives the same
// episodes with any standard library.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/core/random.hpp"
#include "baypr/eval/metrics.hpp"
#include "baypr/score/scorer.hpp"

namespace baypr {

struct EpisodeEmbedding {
  std::string name;
  Eigen::MatrixXd train, test;  // one embedding per image, rows aligned with the labels
};

struct FewShotData {
  Eigen::VectorXi train_labels, test_labels;  // class of each train / test row
  std::vector<EpisodeEmbedding> embeddings;
};

struct EpisodeMethod {
  std::string name;
  std::function<Eigen::VectorXd(const Eigen::MatrixXd& support, const Eigen::MatrixXd& queries)>
      fit_score;
};

// A method from a scorer with fit(support) and score(queries); the scorer is copied per call, so a
// method is stateless and safe to reuse.
template <class S>
[[nodiscard]] EpisodeMethod make_episode_method(std::string name, S scorer) {
  return {std::move(name),
          [scorer](const Eigen::MatrixXd& support, const Eigen::MatrixXd& queries) {
            S s = scorer;
            s.fit(support);
            return Eigen::VectorXd(s.score(queries));
          }};
}

struct OneClassOptions {
  std::vector<int> classes;                        // normal classes; empty: every training label
  std::vector<Eigen::Index> shots = {1, 2, 4, 8};  // K values
  int episodes = 20;                               // per class per K (>= 2, for the interval)
  std::uint64_t seed = 2026;
  Eigen::Index normal_queries = 12;
  Eigen::Index anomalous_queries = 4;
  bool full_test_split = false;
  std::function<void(std::string_view)> progress;  // called once per (class, K) when set
  // Episodes of one (class, K) run on this many threads (>= 1). Each episode's seed is its own
  // (class, K, episode), so the results are the same for any count; every method's fit_score
  // must then be safe to call concurrently (make_episode_method's are: a copy of the scorer per
  // call). progress is called from the calling thread only.
  int threads = 1;
};

struct OneClassResults {
  std::vector<std::string> methods;  // "<embedding> / <method>"
  std::vector<int> classes;
  std::vector<Eigen::Index> shots;
  // auroc[m][c][k][e]: method m, class index c, shot index k, episode e. full_test: the same on
  // the full test split (empty unless requested).
  std::vector<std::vector<std::vector<std::vector<double>>>> auroc, full_test;

  // Per episode, the mean over classes (episode e of every class averaged): the values whose
  // mean and interval a summary table reports.
  // Throws baypr::invalid_argument for m or k out of range, or full without the full-split run.
  [[nodiscard]] std::vector<double> class_averaged(std::size_t m, std::size_t k,
                                                   bool full = false) const {
    constexpr std::string_view fn = "baypr::OneClassResults::class_averaged";
    detail::check_index(fn, "m", m, methods.size());
    detail::check_index(fn, "k", k, shots.size());
    if (full && full_test.empty()) {
      detail::throw_invalid(fn, "full",
                            "is true but the run did not score the full test split "
                            "(OneClassOptions::full_test_split)");
    }
    const auto& a = full ? full_test : auroc;
    if (classes.empty() || a.size() != methods.size()) {
      detail::throw_invalid(fn, "this", "holds no results for its methods and classes");
    }
    return group_averaged(classes.size(), a[m].at(0).at(k).size(),
                          [&](std::size_t c, std::size_t e) { return a[m].at(c).at(k).at(e); });
  }
};

namespace detail {

// f(0), ..., f(n - 1) on `threads` threads (the calling thread is one of them), indices handed out
// in order; the first exception thrown is rethrown here after every thread has stopped, and no
// index is started after it.
template <class F>
void for_each_index(std::size_t n, std::size_t threads, F&& f) {
  threads = std::min(threads, n);
  if (threads <= 1) {
    for (std::size_t i = 0; i < n; ++i) f(i);
    return;
  }
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&] {
    for (std::size_t i = next++; i < n && !failed; i = next++) {
      try {
        f(i);
      } catch (...) {
        const std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (std::size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace detail

[[nodiscard]] inline OneClassResults run_one_class_episodes(
    const FewShotData& data, const OneClassOptions& options,
    const std::vector<EpisodeMethod>& methods) {
  constexpr std::string_view fn = "baypr::run_one_class_episodes";
  if (data.embeddings.empty()) detail::throw_invalid(fn, "data.embeddings", "must not be empty");
  if (methods.empty()) detail::throw_invalid(fn, "methods", "must not be empty");
  if (options.episodes < 2) {
    detail::throw_invalid(fn, "options.episodes",
                          "must be >= 2, got " + std::to_string(options.episodes));
  }
  if (options.shots.empty()) detail::throw_invalid(fn, "options.shots", "must not be empty");
  if (options.normal_queries < 1 || options.anomalous_queries < 1) {
    detail::throw_invalid(fn, "options.normal_queries / anomalous_queries", "must both be >= 1");
  }
  if (options.threads < 1) {
    detail::throw_invalid(fn, "options.threads",
                          "must be >= 1, got " + std::to_string(options.threads));
  }
  for (const auto& emb : data.embeddings) {
    detail::check_size(fn, "data.embeddings[" + emb.name + "].train", "rows", emb.train.rows(),
                       data.train_labels.size());
    detail::check_size(fn, "data.embeddings[" + emb.name + "].test", "rows", emb.test.rows(),
                       data.test_labels.size());
    detail::check_size(fn, "data.embeddings[" + emb.name + "].test", "columns", emb.test.cols(),
                       emb.train.cols());
  }
  OneClassResults out;
  out.classes = options.classes;
  if (out.classes.empty()) {
    out.classes.assign(data.train_labels.begin(), data.train_labels.end());
    std::sort(out.classes.begin(), out.classes.end());
    out.classes.erase(std::unique(out.classes.begin(), out.classes.end()), out.classes.end());
  }
  out.shots = options.shots;
  for (const auto& emb : data.embeddings) {
    for (const auto& m : methods) out.methods.push_back(emb.name + " / " + m.name);
  }
  const std::size_t n_methods = out.methods.size();
  const auto empty = std::vector<std::vector<std::vector<double>>>(
      out.classes.size(), std::vector<std::vector<double>>(out.shots.size()));
  out.auroc.assign(n_methods, empty);
  if (options.full_test_split) out.full_test.assign(n_methods, empty);

  Eigen::VectorXi episode_labels(options.normal_queries + options.anomalous_queries);
  episode_labels.head(options.normal_queries).setZero();
  episode_labels.tail(options.anomalous_queries).setOnes();

  for (std::size_t ci = 0; ci < out.classes.size(); ++ci) {
    const int c = out.classes[ci];
    std::vector<Eigen::Index> train_normal, test_normal, test_anomalous;
    for (Eigen::Index i = 0; i < data.train_labels.size(); ++i) {
      if (data.train_labels(i) == c) train_normal.push_back(i);
    }
    Eigen::VectorXi full_labels(data.test_labels.size());
    for (Eigen::Index i = 0; i < data.test_labels.size(); ++i) {
      (data.test_labels(i) == c ? test_normal : test_anomalous).push_back(i);
      full_labels(i) = data.test_labels(i) == c ? 0 : 1;
    }
    for (const Eigen::Index k : out.shots) {
      if (k < 1 || k > static_cast<Eigen::Index>(train_normal.size())) {
        detail::throw_invalid(fn, "options.shots",
                              "has K = " + std::to_string(k) + ", but class " + std::to_string(c) +
                                  " has " + std::to_string(train_normal.size()) +
                                  " training images");
      }
    }
    if (static_cast<Eigen::Index>(test_normal.size()) < options.normal_queries ||
        static_cast<Eigen::Index>(test_anomalous.size()) < options.anomalous_queries) {
      detail::throw_invalid(fn, "options.classes",
                            "has class " + std::to_string(c) + " with " +
                                std::to_string(test_normal.size()) + " normal and " +
                                std::to_string(test_anomalous.size()) +
                                " anomalous test images, too few for the queries");
    }
    for (std::size_t ki = 0; ki < out.shots.size(); ++ki) {
      const Eigen::Index k = out.shots[ki];
      if (options.progress) {
        options.progress("class " + std::to_string(c) + ", K = " + std::to_string(k) + ": " +
                         std::to_string(options.episodes) + " episodes");
      }
      const auto episodes = static_cast<std::size_t>(options.episodes);
      for (std::size_t m = 0; m < n_methods; ++m) {
        out.auroc[m][ci][ki].assign(episodes, 0.0);
        if (options.full_test_split) out.full_test[m][ci][ki].assign(episodes, 0.0);
      }
      // One episode: its own seed, its own slots in the results.
      auto run_episode = [&](std::size_t e) {
        std::mt19937_64 rng(derive_seed(
            options.seed, {static_cast<std::uint32_t>(c), static_cast<std::uint64_t>(k), e}));
        const auto support_rows =
            sample_without_replacement(train_normal, k, rng, fn, "options.shots");
        auto query_rows = sample_without_replacement(test_normal, options.normal_queries, rng, fn,
                                                     "options.normal_queries");
        const auto anomalous = sample_without_replacement(test_anomalous, options.anomalous_queries,
                                                          rng, fn, "options.anomalous_queries");
        query_rows.insert(query_rows.end(), anomalous.begin(), anomalous.end());
        std::size_t m = 0;
        for (const auto& emb : data.embeddings) {
          const Eigen::MatrixXd support = emb.train(support_rows, Eigen::all);
          const Eigen::MatrixXd queries = emb.test(query_rows, Eigen::all);
          for (const auto& method : methods) {
            out.auroc[m][ci][ki][e] = auroc(method.fit_score(support, queries), episode_labels);
            if (options.full_test_split) {
              out.full_test[m][ci][ki][e] = auroc(method.fit_score(support, emb.test), full_labels);
            }
            ++m;
          }
        }
      };
      detail::for_each_index(episodes, static_cast<std::size_t>(options.threads), run_episode);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// One user task: support embeddings of normal images and labelled queries (e.g. exported from the
// user's own network as .npy), compared over few-shot episodes.
//
// Rows per image: `patches` (p) rows belong to each image, image-major (numpy's reshape(n p, d)),
// p = 1 for image embeddings. An episode draws K support images (all their patch rows), fits each
// method on them, scores every query row and aggregates each query image's p scores by max; image
// AUROC against `labels` (0 normal, 1 anomalous). K = the whole support is one more "episode" (all
// methods see every support image), reported as `full_support`.
struct TaskOptions {
  std::vector<Eigen::Index> shots = {1, 2, 4, 8};  // K values larger than the support are skipped
  int episodes = 20;                               // per K (>= 2)
  std::uint64_t seed = 2026;
  Eigen::Index patches = 1;  // rows per image
  std::function<void(std::string_view)> progress;
  int threads = 1;  // episodes of one K on this many threads, as OneClassOptions::threads
};

struct TaskResults {
  std::vector<std::string> methods;
  std::vector<Eigen::Index> shots;                      // the K values run (<= support images)
  std::vector<std::vector<std::vector<double>>> auroc;  // [method][shot][episode]
  std::vector<double> full_support;                     // [method]: AUROC with every support image
};

[[nodiscard]] inline TaskResults run_task_episodes(const Eigen::MatrixXd& support,
                                                   const Eigen::MatrixXd& queries,
                                                   const Eigen::VectorXi& labels,
                                                   const TaskOptions& options,
                                                   const std::vector<EpisodeMethod>& methods) {
  constexpr std::string_view fn = "baypr::run_task_episodes";
  if (methods.empty()) detail::throw_invalid(fn, "methods", "must not be empty");
  if (options.episodes < 2) {
    detail::throw_invalid(fn, "options.episodes",
                          "must be >= 2, got " + std::to_string(options.episodes));
  }
  if (options.threads < 1) {
    detail::throw_invalid(fn, "options.threads",
                          "must be >= 1, got " + std::to_string(options.threads));
  }
  const Eigen::Index p = options.patches;
  if (p < 1) detail::throw_invalid(fn, "options.patches", "must be >= 1, got " + std::to_string(p));
  detail::check_nonempty(fn, "support", support.rows());
  detail::check_nonempty(fn, "queries", queries.rows());
  detail::check_size(fn, "queries", "columns", queries.cols(), support.cols());
  detail::check_finite(fn, "support", support);
  detail::check_finite(fn, "queries", queries);
  if (support.rows() % p != 0 || queries.rows() % p != 0) {
    detail::throw_invalid(fn, "options.patches",
                          "must divide the support rows (" + std::to_string(support.rows()) +
                              ") and query rows (" + std::to_string(queries.rows()) + "), got " +
                              std::to_string(p));
  }
  const Eigen::Index n_support = support.rows() / p, n_queries = queries.rows() / p;
  const Eigen::Index n_anomalous = detail::check_binary_labels(fn, "labels", labels, n_queries);
  if (n_anomalous == 0 || n_anomalous == labels.size()) {
    detail::throw_invalid(fn, "labels", "must contain both normal (0) and anomalous (1) queries");
  }

  auto image_scores = [&](const EpisodeMethod& m, const Eigen::MatrixXd& s) -> Eigen::VectorXd {
    const Eigen::VectorXd rows = m.fit_score(s, queries);
    detail::check_size(fn, "methods[" + m.name + "] scores", "size", rows.size(), queries.rows());
    if (p == 1) return rows;
    const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>
        per_image(rows.data(), n_queries, p);
    return aggregate(per_image, Aggregation::max());
  };

  TaskResults out;
  for (const auto& m : methods) out.methods.push_back(m.name);
  for (const Eigen::Index k : options.shots) {
    if (k < 1) detail::throw_invalid(fn, "options.shots", "must be >= 1, got " + std::to_string(k));
    if (k <= n_support) out.shots.push_back(k);
  }
  out.auroc.assign(methods.size(), std::vector<std::vector<double>>(out.shots.size()));
  std::vector<Eigen::Index> pool(static_cast<std::size_t>(n_support));
  for (Eigen::Index i = 0; i < n_support; ++i) pool[static_cast<std::size_t>(i)] = i;
  for (std::size_t ki = 0; ki < out.shots.size(); ++ki) {
    const Eigen::Index k = out.shots[ki];
    if (options.progress) {
      options.progress("K = " + std::to_string(k) + ": " + std::to_string(options.episodes) +
                       " episodes");
    }
    const auto episodes = static_cast<std::size_t>(options.episodes);
    for (auto& per_method : out.auroc) per_method[ki].assign(episodes, 0.0);
    detail::for_each_index(episodes, static_cast<std::size_t>(options.threads), [&](std::size_t e) {
      std::mt19937_64 rng(derive_seed(options.seed, {static_cast<std::uint64_t>(k), e}));
      const auto images = sample_without_replacement(pool, k, rng, fn, "options.shots");
      Eigen::MatrixXd rows(k * p, support.cols());
      for (std::size_t i = 0; i < images.size(); ++i) {
        rows.middleRows(static_cast<Eigen::Index>(i) * p, p) = support.middleRows(images[i] * p, p);
      }
      for (std::size_t m = 0; m < methods.size(); ++m)
        out.auroc[m][ki][e] = auroc(image_scores(methods[m], rows), labels);
    });
  }
  if (options.progress) options.progress("all " + std::to_string(n_support) + " support images");
  for (const auto& m : methods) out.full_support.push_back(auroc(image_scores(m, support), labels));
  return out;
}

}  // namespace baypr
