// One-class few-shot anomaly detection on Fashion-MNIST (Debian's dataset-fashion-mnist).
//
// Protocol (include/baypr/eval/episodes.hpp): each class c in turn is "normal"; an episode draws
// K normal *training* images as support and 12 normal + 4 anomalous (other classes) *test* images
// as queries (the authors' episode); optionally each support is also scored on the whole test split.
// Image AUROC per episode; the table reports, per method and K, the mean over episodes of the
// class-averaged AUROC and its 95% Student-t interval (baypr::mean_interval).
//
// Embeddings: there are no pretrained CNN weights offline, so these are honest fixed embeddings,
// not learned features:
//   pixels-784  every pixel standardised with training-split statistics, (x - mean) / max(sd, 0.1)
//               (pixels in [0, 1]; the floor stops the near-constant border pixels dominating)
//   proj-128    those 784 standardised pixels times a fixed Gaussian matrix (entries N(0, 1/784),
//               seed 1), 128-d like the authors' embedding head
// Methods: Bayesian llr and nll (empirical-Bayes Psi0 scale), PatchCore (memory bank = every
// support image, coreset 100%), prototype (distance to the support mean), Gaussian (Ledoit-Wolf).
//
//   fewshot_benchmark [--episodes N] [--classes all|0,1,...] [--shots 1,2,4,8] [--seed S]
//                     [--full-test-split] [--out DIR] [--data DIR]
// Default (about 1.5 minutes on one core): 10 episodes, classes 0,1, K in {1, 2, 4, 8}. The full run:
// --episodes 100 --classes all (about 4000 episodes x ~0.7 s; the 784-d Bayesian fits dominate).
#include <baypr/eval/episodes.hpp>
#include <baypr/eval/metrics.hpp>
#include <baypr/io/idx.hpp>
#include <baypr/io/npy.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

const char* const class_names[] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                   "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

struct Args {
  int episodes = 10;
  std::vector<int> classes = {0, 1};
  std::vector<Eigen::Index> shots = {1, 2, 4, 8};
  std::uint64_t seed = 2026;
  bool full_test_split = false;
  std::string out_dir;
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::string npy_dir;  // user mode: support.npy, queries.npy, labels.npy
};

std::vector<long long> parse_list(const std::string& flag, const std::string& text) {
  std::vector<long long> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0') throw std::invalid_argument(flag + ": not an integer list: '" + text + "'");
    out.push_back(v);
  }
  if (out.empty()) throw std::invalid_argument(flag + ": empty list");
  return out;
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(flag + ": needs a value");
      return argv[++i];
    };
    if (flag == "--episodes") {
      a.episodes = static_cast<int>(parse_list(flag, value()).at(0));
      if (a.episodes < 2) throw std::invalid_argument("--episodes: must be >= 2");
    } else if (flag == "--classes") {
      const std::string v = value();
      a.classes.clear();
      if (v == "all") {
        for (int c = 0; c < 10; ++c) a.classes.push_back(c);
      } else {
        for (const long long c : parse_list(flag, v)) {
          if (c < 0 || c > 9) throw std::invalid_argument("--classes: class " + std::to_string(c) + " not in 0..9");
          a.classes.push_back(static_cast<int>(c));
        }
      }
    } else if (flag == "--shots") {
      a.shots.clear();
      for (const long long k : parse_list(flag, value())) {
        if (k < 1) throw std::invalid_argument("--shots: K must be >= 1");
        a.shots.push_back(static_cast<Eigen::Index>(k));
      }
    } else if (flag == "--seed") {
      a.seed = std::strtoull(value().c_str(), nullptr, 10);
    } else if (flag == "--full-test-split") {
      a.full_test_split = true;
    } else if (flag == "--out") {
      a.out_dir = value();
    } else if (flag == "--data") {
      a.data_dir = value();
    } else if (flag == "--npy") {
      a.npy_dir = value();
    } else if (flag == "--help" || flag == "-h") {
      std::printf(
          "fewshot_benchmark [--episodes N] [--classes all|0,1,...] [--shots 1,2,4,8] [--seed S]\n"
          "                  [--full-test-split] [--out DIR] [--data DIR]\n"
          "fewshot_benchmark --npy DIR [--episodes N] [--shots 1,2,4,8] [--seed S] [--out DIR]\n"
          "  DIR holds support.npy ((n, d) or (n, p, d) embeddings of normal images), queries.npy\n"
          "  ((m, d) or (m, p, d)) and labels.npy ((m,), 0 normal / 1 anomalous, any integer or bool dtype)\n");
      std::exit(0);
    } else {
      throw std::invalid_argument("unknown flag '" + flag + "' (see --help)");
    }
  }
  return a;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string join(const std::vector<Eigen::Index>& v) {
  std::string s;
  for (const auto x : v) {
    if (!s.empty()) s += ",";
    s += std::to_string(x);
  }
  return s;
}

std::string cell(const baypr::MeanInterval& ci) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f [%.3f, %.3f]", ci.mean, ci.lower, ci.upper);
  return buf;
}

// The summary table (class-averaged), as Markdown.
std::string table(const baypr::OneClassResults& r, bool full) {
  std::string s = "| method |";
  for (const auto k : r.shots) {
    s += " K = ";
    s += std::to_string(k);
    s += " |";
  }
  s += "\n|---|";
  for (std::size_t k = 0; k < r.shots.size(); ++k) s += "---|";
  s += "\n";
  for (std::size_t m = 0; m < r.methods.size(); ++m) {
    s += "| ";
    s += r.methods[m];
    s += " |";
    for (std::size_t k = 0; k < r.shots.size(); ++k) {
      s += " ";
      s += cell(baypr::mean_interval(r.class_averaged(m, k, full)));
      s += " |";
    }
    s += "\n";
  }
  return s;
}

void write_csv(const std::string& path, const baypr::OneClassResults& r) {
  std::ofstream out(path);
  if (!out) throw std::runtime_error("cannot write " + path);
  out << "protocol,embedding,method,class,K,episodes,mean_auroc,lower_95,upper_95\n";
  for (const bool full : {false, true}) {
    if (full && r.full_test.empty()) continue;
    const auto& a = full ? r.full_test : r.auroc;
    const char* protocol = full ? "full_test_split" : "episode_12+4";
    for (std::size_t m = 0; m < r.methods.size(); ++m) {
      const auto slash = r.methods[m].find(" / ");
      const std::string emb = r.methods[m].substr(0, slash), method = r.methods[m].substr(slash + 3);
      for (std::size_t k = 0; k < r.shots.size(); ++k) {
        auto row = [&](const std::string& cls, const std::vector<double>& v) {
          const auto ci = baypr::mean_interval(v);
          out << protocol << "," << emb << ",\"" << method << "\"," << cls << "," << r.shots[k] << "," << v.size()
              << "," << ci.mean << "," << ci.lower << "," << ci.upper << "\n";
        };
        for (std::size_t c = 0; c < r.classes.size(); ++c) row(std::to_string(r.classes[c]), a[m][c][k]);
        row("mean", r.class_averaged(m, k, full));
      }
    }
  }
}

// User mode: one task exported as .npy (support of normal images, labelled queries), every method
// on it, over K-shot episodes drawn from the support and once with the whole support.
struct NpyEmbeddings {
  Eigen::MatrixXd rows;  // (n p) x d
  Eigen::Index images = 0, patches = 1;
};

NpyEmbeddings load_embeddings(const std::filesystem::path& path) {
  const baypr::NpyArray a = baypr::read_npy(path);
  NpyEmbeddings e;
  if (a.rank() == 2) {
    e.rows = baypr::npy_matrix<double>(a);
    e.images = e.rows.rows();
  } else if (a.rank() == 3) {
    auto p = baypr::npy_patches<double>(a);
    e.images = p.n;
    e.patches = p.p;
    e.rows = p.embeddings;
  } else {
    throw std::invalid_argument(path.string() + ": must have shape (n, d) or (n, p, d), got rank " +
                                std::to_string(a.rank()));
  }
  return e;
}

std::string run_npy_mode(const Args& args) {
  const std::filesystem::path dir = args.npy_dir;
  const auto support = load_embeddings(dir / "support.npy");
  const auto queries = load_embeddings(dir / "queries.npy");
  if (support.patches != queries.patches) {
    throw std::invalid_argument("support.npy has " + std::to_string(support.patches) + " patches per image, queries.npy " +
                                std::to_string(queries.patches));
  }
  const baypr::NpyArray label_array = baypr::read_npy(dir / "labels.npy");
  if (label_array.rank() != 1) {
    throw std::invalid_argument((dir / "labels.npy").string() + ": must be 1-D (m,), got rank " +
                                std::to_string(label_array.rank()));
  }
  const auto label_values = label_array.as<std::int64_t>();
  Eigen::VectorXi labels(static_cast<Eigen::Index>(label_values.size()));
  for (std::size_t i = 0; i < label_values.size(); ++i) {
    labels(static_cast<Eigen::Index>(i)) = label_values[i] == 0 ? 0 : (label_values[i] == 1 ? 1 : -1);
    if (labels(static_cast<Eigen::Index>(i)) < 0) {
      throw std::invalid_argument("labels.npy: entry " + std::to_string(i) + " is " + std::to_string(label_values[i]) +
                                  ", must be 0 (normal) or 1 (anomalous)");
    }
  }
  baypr::TaskOptions options;
  options.shots = args.shots;
  options.episodes = args.episodes;
  options.seed = args.seed;
  options.patches = support.patches;
  const auto t0 = std::chrono::steady_clock::now();
  options.progress = [&](std::string_view what) {
    std::fprintf(stderr, "[%6.1fs] %.*s\n", seconds_since(t0), static_cast<int>(what.size()), what.data());
  };
  const auto r = baypr::run_task_episodes(support.rows, queries.rows, labels, options);

  std::ostringstream md;
  md << "# Few-shot anomaly detection on user embeddings (" << dir.string() << ")\n\n"
     << "Support: " << support.images << " normal images; queries: " << queries.images << " ("
     << labels.sum() << " anomalous); " << support.patches << " row(s) per image, d = " << support.rows.cols()
     << (support.patches > 1 ? "; image score = max over its patches" : "") << ".\n"
     << "Cells: mean image AUROC over " << args.episodes
     << " episodes of K support images drawn at random (seed " << args.seed
     << ") [95% t interval]; last column: every support image.\n\n| method |";
  for (const auto k : r.shots) md << " K = " << k << " |";
  md << " all " << support.images << " |\n|---|";
  for (std::size_t k = 0; k <= r.shots.size(); ++k) md << "---|";
  md << "\n";
  for (std::size_t m = 0; m < r.methods.size(); ++m) {
    md << "| " << r.methods[m] << " |";
    for (std::size_t k = 0; k < r.shots.size(); ++k) md << " " << cell(baypr::mean_interval(r.auroc[m][k])) << " |";
    char buf[32];
    std::snprintf(buf, sizeof buf, " %.3f |\n", r.full_support[m]);
    md << buf;
  }
  return md.str();
}

}  // namespace

int main(int argc, char** argv) try {
  const Args args = parse_args(argc, argv);
  if (!args.npy_dir.empty()) {
    const std::string report = run_npy_mode(args);
    std::printf("%s", report.c_str());
    if (!args.out_dir.empty()) {
      std::filesystem::create_directories(args.out_dir);
      std::ofstream(args.out_dir + "/results.md") << report;
      std::fprintf(stderr, "wrote %s/results.md\n", args.out_dir.c_str());
    }
    return 0;
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::fprintf(stderr, "[%6.1fs] reading Fashion-MNIST from %s\n", seconds_since(t0), args.data_dir.c_str());
  const auto train = baypr::read_idx_dataset(args.data_dir + "/train-images-idx3-ubyte.gz",
                                             args.data_dir + "/train-labels-idx1-ubyte.gz");
  const auto test = baypr::read_idx_dataset(args.data_dir + "/t10k-images-idx3-ubyte.gz",
                                            args.data_dir + "/t10k-labels-idx1-ubyte.gz");

  std::fprintf(stderr, "[%6.1fs] embedding\n", seconds_since(t0));
  baypr::PixelStandardiser standardiser;
  {
    const Eigen::MatrixXd all_train = baypr::to_unit_interval(train.images);
    standardiser = baypr::PixelStandardiser::fit(all_train);
  }
  // Only the training images of the normal classes can be support: keep just those.
  std::vector<Eigen::Index> keep;
  baypr::FewShotData data;
  for (std::size_t i = 0; i < train.labels.size(); ++i) {
    if (std::find(args.classes.begin(), args.classes.end(), train.labels[i]) != args.classes.end()) {
      keep.push_back(static_cast<Eigen::Index>(i));
      data.train_labels.push_back(train.labels[i]);
    }
  }
  Eigen::MatrixXd train_pixels(static_cast<Eigen::Index>(keep.size()), 784);
  for (std::size_t i = 0; i < keep.size(); ++i) {
    train_pixels.row(static_cast<Eigen::Index>(i)) = train.images.pixels.row(keep[i]).cast<double>() / 255.0;
  }
  data.test_labels.assign(test.labels.begin(), test.labels.end());
  const Eigen::MatrixXd train_std = standardiser.apply(train_pixels);
  const Eigen::MatrixXd test_std = standardiser.apply(baypr::to_unit_interval(test.images));
  const Eigen::MatrixXd projection = baypr::gaussian_projection(784, 128, 1);
  data.embeddings.push_back({"pixels-784", train_std, test_std});
  data.embeddings.push_back({"proj-128", train_std * projection, test_std * projection});

  baypr::OneClassOptions options;
  options.classes = args.classes;
  options.shots = args.shots;
  options.episodes = args.episodes;
  options.seed = args.seed;
  options.full_test_split = args.full_test_split;
  options.progress = [&](std::string_view what) {
    std::fprintf(stderr, "[%6.1fs] %.*s\n", seconds_since(t0), static_cast<int>(what.size()), what.data());
  };
  const auto results = baypr::run_one_class_episodes(data, options);
  std::fprintf(stderr, "[%6.1fs] done\n", seconds_since(t0));

  std::string classes;
  for (const int c : args.classes) {
    if (!classes.empty()) classes += ", ";
    classes += std::to_string(c);
    classes += " ";
    classes += class_names[c];
  }
  std::ostringstream head;
  head << "# One-class few-shot anomaly detection, Fashion-MNIST\n\n"
       << "Embeddings are fixed, not learned: no pretrained CNN weights are available offline. pixels-784 = "
          "standardised pixels; proj-128 = a fixed seeded Gaussian projection of them to 128-d.\n\n"
       << "Normal classes: " << classes << ". K in {" << join(args.shots) << "}, " << args.episodes
       << " episodes per class per K, seed " << args.seed << ".\n"
       << "Episode: K normal training images as support; 12 normal + 4 anomalous test images as queries.\n"
       << "Cells: mean image AUROC of the class-averaged episodes [95% t interval over episodes].\n\n";
  std::string report = head.str() + "## Episode queries (12 normal + 4 anomalous)\n\n" + table(results, false);
  if (args.full_test_split) {
    report += "\n## Full test split (10,000 queries per episode)\n\n" + table(results, true);
  }
  std::printf("%s", report.c_str());
  if (!args.out_dir.empty()) {
    std::filesystem::create_directories(args.out_dir);
    std::ofstream(args.out_dir + "/results.md") << report;
    write_csv(args.out_dir + "/results.csv", results);
    std::fprintf(stderr, "wrote %s/results.md and %s/results.csv\n", args.out_dir.c_str(), args.out_dir.c_str());
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "fewshot_benchmark: %s\n", e.what());
  return 1;
}
