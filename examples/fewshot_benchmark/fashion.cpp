// Fashion-MNIST (Debian's dataset-fashion-mnist): one-class few-shot episodes.
//
// Protocol (include/baypr/eval/episodes.hpp): each class c in turn is "normal"; an episode draws K
// normal *training* images as support and 12 normal + 4 anomalous (other classes) *test* images as
// queries (the authors' episode); optionally each support is also scored on the whole test split.
//
// Embeddings, fixed and untrained:
//   pixels-784  every pixel standardised with training-split statistics, (x - mean) / max(sd, 0.1)
//               (pixels in [0, 1]; the floor stops the near-constant border pixels dominating)
//   proj-128    those 784 standardised pixels times a fixed Gaussian matrix (entries N(0, 1/784),
//               seed 1), 128-d like the authors' embedding head
// Methods: fashion_methods() in methods.cpp.
#include <baypr/eval/episodes.hpp>
#include <baypr/io/idx.hpp>
#include <baypr_bench/methods.hpp>

#include <algorithm>
#include <random>
#include <sstream>

#include "common.hpp"

namespace bench {

namespace {

const char* const class_names[] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                   "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

std::string section_table(const baypr::OneClassResults& r, bool full, std::vector<std::string>& csv,
                          const char* protocol) {
  std::vector<std::vector<baypr::MeanInterval>> cells(r.methods.size());
  for (std::size_t m = 0; m < r.methods.size(); ++m) {
    const auto slash = r.methods[m].find(" / ");
    const std::string emb = r.methods[m].substr(0, slash), method = r.methods[m].substr(slash + 3);
    for (std::size_t k = 0; k < r.shots.size(); ++k) {
      const auto values = r.class_averaged(m, k, full);
      cells[m].push_back(baypr::mean_interval(values));
      csv.push_back(csv_row("fashion-mnist", protocol, emb, method, "class mean", "image_auroc",
                            r.shots[k], values));
      const auto& a = full ? r.full_test : r.auroc;
      for (std::size_t c = 0; c < r.classes.size(); ++c) {
        csv.push_back(csv_row("fashion-mnist", protocol, emb, method,
                              "class " + std::to_string(r.classes[c]), "image_auroc", r.shots[k],
                              a[m][c][k]));
      }
    }
  }
  return table(r.methods, r.shots, cells);
}

}  // namespace

FashionPixels load_fashion_pixels(const Args& args) {
  const auto train = baypr::read_idx_dataset(args.data_dir + "/train-images-idx3-ubyte.gz",
                                             args.data_dir + "/train-labels-idx1-ubyte.gz");
  const auto test = baypr::read_idx_dataset(args.data_dir + "/t10k-images-idx3-ubyte.gz",
                                            args.data_dir + "/t10k-labels-idx1-ubyte.gz");
  // Only the training images of the normal classes can be support: keep just those (the whole
  // training split, 376 MB as doubles, lives only while the standardiser is fitted).
  std::vector<Eigen::Index> keep;
  for (Eigen::Index i = 0; i < train.labels.size(); ++i) {
    if (std::find(args.classes.begin(), args.classes.end(), train.labels(i)) !=
        args.classes.end()) {
      keep.push_back(i);
    }
  }
  baypr::PixelStandardiser standardiser;
  Eigen::MatrixXd kept;
  {
    const Eigen::MatrixXd all_train = baypr::to_unit_interval(train.images);
    standardiser = baypr::PixelStandardiser::fit(all_train);
    kept = all_train(keep, Eigen::all);
  }
  return {train.labels(keep), standardiser.apply(kept), test.labels,
          standardiser.apply(baypr::to_unit_interval(test.images))};
}

baypr::OneClassOptions fashion_episode_options(const Args& args, Clock::time_point t0,
                                               std::string section) {
  baypr::OneClassOptions options;
  options.classes = args.classes;
  options.shots = args.shots;
  options.episodes = args.episodes;
  options.seed = args.seed;
  options.threads = args.threads;
  options.progress = [t0, section = std::move(section)](std::string_view what) {
    log_line(t0, section + ": " + std::string(what));
  };
  return options;
}

void run_fashion_mnist(const Args& args, Report& report) {
  const auto t0 = Clock::now();
  log_line(t0, "Fashion-MNIST: reading " + args.data_dir);
  const FashionPixels pixels = load_fashion_pixels(args);
  log_line(t0, "Fashion-MNIST: embedding");
  baypr::FewShotData data;
  data.train_labels = pixels.train_labels;
  data.test_labels = pixels.test_labels;
  const Eigen::MatrixXd& train_std = pixels.train;
  const Eigen::MatrixXd& test_std = pixels.test;
  const Eigen::MatrixXd projection = baypr::gaussian_projection(784, 128, 1);
  data.embeddings.push_back({"pixels-784", train_std, test_std});
  data.embeddings.push_back({"proj-128", train_std * projection, test_std * projection});

  baypr::OneClassOptions options = fashion_episode_options(args, t0, "Fashion-MNIST");
  options.full_test_split = args.full_test_split;
  const auto methods = fashion_methods();
  const auto results = baypr::run_one_class_episodes(data, options, methods);
  log_line(t0, "Fashion-MNIST: done");

  std::string classes;
  for (const int c : args.classes) {
    if (!classes.empty()) classes += ", ";
    classes += std::to_string(c);
    classes += " ";
    classes += class_names[c];
  }
  std::ostringstream md;
  md << "## Fashion-MNIST, one-class few-shot\n\n"
     << "Embeddings: pixels-784 = standardised pixels; proj-128 = a fixed seeded Gaussian "
        "projection of them to "
        "128-d. Normal classes: "
     << classes << ". " << args.episodes << " episodes per class per K, seed " << args.seed
     << ". Episode: K normal training images as support; 12 normal + 4 anomalous (other classes) "
        "test images as "
        "queries. The two ablation rows vary the Bayesian prior (see the README).\n\n"
     << section_table(results, false, report.csv, "episode_12+4");
  if (args.full_test_split) {
    md << "\n### Full test split (10,000 queries per episode)\n\n"
       << section_table(results, true, report.csv, "full_test_split");
  }

  // Charts: the first normal class, largest K, the first episode's support, every test image.
  if (report.figures) {
    const int c = args.classes.front();
    const Eigen::Index k = *std::max_element(args.shots.begin(), args.shots.end());
    std::vector<Eigen::Index> rows;
    for (Eigen::Index i = 0; i < data.train_labels.size(); ++i) {
      if (data.train_labels(i) == c) rows.push_back(i);
    }
    std::mt19937_64 rng(args.seed);
    for (std::size_t i = 0; i < static_cast<std::size_t>(k); ++i) {
      std::swap(rows[i],
                rows[i + static_cast<std::size_t>(baypr::uniform_below(rng, rows.size() - i))]);
    }
    rows.resize(static_cast<std::size_t>(k));
    const Eigen::VectorXi labels = (data.test_labels.array() != c).cast<int>();
    std::vector<std::string> names;
    std::vector<Eigen::VectorXd> scores;
    for (const auto& m : methods) {
      if (m.name.rfind("ablation", 0) == 0) continue;
      names.push_back(m.name);
      scores.push_back(m.fit_score(train_std(rows, Eigen::all), test_std));
    }
    md << "\nCharts: class " << c << " (" << class_names[c] << ") normal, one support of K = " << k
       << " training images, every test image as a query (pixels-784).\n\n"
       << score_charts(
              report, "fashion-class" + std::to_string(c),
              "Fashion-MNIST, class " + std::to_string(c) + " normal, K = " + std::to_string(k),
              names, scores, labels);
  }
  report.markdown += md.str() + "\n";
}

}  // namespace bench
