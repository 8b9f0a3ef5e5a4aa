// The few-shot anomaly-detection benchmark (the main job, run by ./scripts/demo): one-class
// episodes on Fashion-MNIST and an MVTec-like texture benchmark on GIMP's photographic patterns,
// every method on the same fixed embeddings and the same seeded episodes; or, with --npy, the same
// comparison on embeddings a user exported.
//
//   fewshot_benchmark [--datasets fashion-mnist,fashion-patches,textures] [--episodes N]
//                     [--shots 1,2,4,8] [--classes all|0,1,...] [--texture-categories N|all]
//                     [--seed S] [--full-test-split] [--whole-support] [--full] [--out DIR]
//                     [--data DIR] [--patterns DIR] [--threads T]
//   fewshot_benchmark --npy DIR [--episodes N] [--shots ...] [--seed S] [--out DIR] [--threads T]
//
// --threads T: the episodes of the Fashion-MNIST sections and of --npy on T threads (default 1;
// the same results for any T: every episode has its own seed).
//
// fashion-patches: the Fashion-MNIST images as 8 x 8 grids of 7 x 7 patches, per-position models
// against PaDiM and PatchCore (fashion_patches.cpp); --whole-support adds the whole training split
// of each class as support.
// --full: every Fashion-MNIST class, every eligible texture, 100 episodes, --whole-support (hours
// on 2 cores).
// --out DIR writes DIR/results.md, DIR/results.csv and DIR/figures/ (PNG: ROC curves, score
// histograms, texture heat maps; the charts need gnuplot).
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "common.hpp"

namespace bench {

namespace {

std::vector<long long> parse_list(const std::string& flag, const std::string& text) {
  std::vector<long long> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0')
      throw std::invalid_argument(flag + ": not an integer list: '" + text + "'");
    out.push_back(v);
  }
  if (out.empty()) throw std::invalid_argument(flag + ": empty list");
  return out;
}

constexpr const char* usage =
    "fewshot_benchmark [--datasets fashion-mnist,fashion-patches,textures] [--episodes N]\n"
    "                  [--shots 1,2,4,8] [--classes all|0,1,...] [--texture-categories N|all]\n"
    "                  [--seed S] [--full-test-split] [--whole-support] [--full] [--out DIR]\n"
    "                  [--data DIR] [--patterns DIR] [--threads T]\n"
    "fewshot_benchmark --npy DIR [--episodes N] [--shots 1,2,4,8] [--seed S] [--out DIR]\n"
    "                  [--threads T]\n"
    "  --threads T: the Fashion-MNIST and --npy episodes on T threads (same results)\n"
    "  --npy DIR: DIR holds support.npy ((n, d) or (n, p, d) embeddings of normal images),\n"
    "  queries.npy ((m, d) or (m, p, d)) and labels.npy ((m,), 0 normal / 1 anomalous)\n"
    "  --whole-support: fashion-patches also with each class's whole training split as support\n"
    "  --full: every Fashion-MNIST class and eligible texture, 100 episodes, --whole-support\n"
    "  (hours on 2 cores)\n";

}  // namespace

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(flag + ": needs a value");
      return argv[++i];
    };
    if (flag == "--datasets") {
      a.datasets.clear();
      std::stringstream ss(value());
      std::string d;
      while (std::getline(ss, d, ',')) {
        if (d != "fashion-mnist" && d != "fashion-patches" && d != "textures") {
          throw std::invalid_argument("--datasets: unknown dataset '" + d +
                                      "' (fashion-mnist, fashion-patches, textures)");
        }
        a.datasets.push_back(d);
      }
    } else if (flag == "--episodes") {
      a.episodes = static_cast<int>(parse_list(flag, value()).at(0));
      if (a.episodes < 2) throw std::invalid_argument("--episodes: must be >= 2");
    } else if (flag == "--classes") {
      const std::string v = value();
      a.classes.clear();
      if (v == "all") {
        for (int c = 0; c < 10; ++c) a.classes.push_back(c);
      } else {
        for (const long long c : parse_list(flag, v)) {
          if (c < 0 || c > 9)
            throw std::invalid_argument("--classes: class " + std::to_string(c) + " not in 0..9");
          a.classes.push_back(static_cast<int>(c));
        }
      }
    } else if (flag == "--texture-categories") {
      const std::string v = value();
      a.texture_categories = v == "all" ? 0 : static_cast<int>(parse_list(flag, v).at(0));
      if (a.texture_categories < 0 || (v != "all" && a.texture_categories < 2)) {
        throw std::invalid_argument("--texture-categories: must be >= 2 or 'all'");
      }
    } else if (flag == "--shots") {
      a.shots.clear();
      for (const long long k : parse_list(flag, value())) {
        if (k < 1) throw std::invalid_argument("--shots: K must be >= 1");
        a.shots.push_back(static_cast<Eigen::Index>(k));
      }
    } else if (flag == "--threads") {
      a.threads = static_cast<int>(parse_list(flag, value()).at(0));
      if (a.threads < 1) throw std::invalid_argument("--threads: must be >= 1");
    } else if (flag == "--seed") {
      a.seed = static_cast<std::uint64_t>(parse_list(flag, value()).at(0));
    } else if (flag == "--full-test-split") {
      a.full_test_split = true;
    } else if (flag == "--whole-support") {
      a.whole_support = true;
    } else if (flag == "--full") {
      a.whole_support = true;
      a.episodes = 100;
      a.classes = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
      a.texture_categories = 0;
    } else if (flag == "--out") {
      a.out_dir = value();
    } else if (flag == "--data") {
      a.data_dir = value();
    } else if (flag == "--patterns") {
      a.pattern_dir = value();
    } else if (flag == "--npy") {
      a.npy_dir = value();
    } else if (flag == "--help" || flag == "-h") {
      std::printf("%s", usage);
      std::exit(0);
    } else {
      throw std::invalid_argument("unknown flag '" + flag + "' (see --help)");
    }
  }
  return a;
}

std::string csv_row(std::string_view dataset, std::string_view protocol, std::string_view embedding,
                    std::string_view method, std::string_view group, std::string_view metric,
                    Eigen::Index k, const std::vector<double>& values) {
  const auto ci = baypr::mean_interval(values);
  std::ostringstream s;
  s.precision(10);
  s << dataset << "," << protocol << "," << embedding << ",\"" << method << "\",\"" << group
    << "\"," << metric << "," << k << "," << values.size() << "," << ci.mean << "," << ci.lower
    << "," << ci.upper;
  return s.str();
}

std::string cell(const baypr::MeanInterval& ci) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f [%.3f, %.3f]", ci.mean, ci.lower, ci.upper);
  return buf;
}

std::string table(const std::vector<std::string>& names, const std::vector<Eigen::Index>& shots,
                  const std::vector<std::vector<baypr::MeanInterval>>& cells) {
  std::ostringstream s;
  s << "| method |";
  for (const auto k : shots) s << " K = " << k << " |";
  s << "\n|---|";
  for (std::size_t k = 0; k < shots.size(); ++k) s << "---|";
  s << "\n";
  for (std::size_t m = 0; m < names.size(); ++m) {
    s << "| " << names[m] << " |";
    for (const auto& c : cells[m]) s << " " << cell(c) << " |";
    s << "\n";
  }
  return s.str();
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void log_line(Clock::time_point t0, std::string_view what) {
  std::fprintf(stderr, "[%7.1fs] %.*s\n", seconds_since(t0), static_cast<int>(what.size()),
               what.data());
}

}  // namespace bench

int main(int argc, char** argv) try {
  const bench::Args args = bench::parse_args(argc, argv);
  bench::Report report;
  if (!args.out_dir.empty()) {
    report.out_dir = args.out_dir;
    std::filesystem::create_directories(report.out_dir);
#ifdef BAYPR_REPORT_FIGURES
    report.figures = true;
    std::filesystem::create_directories(report.out_dir / "figures");
#endif
  }
  if (!args.npy_dir.empty()) {
    bench::run_user_npy(args, report);
  } else {
    report.markdown +=
        "# baypr few-shot anomaly-detection benchmark\n\n"
        "Fixed, untrained embeddings: no pretrained CNN weights are available offline, so every "
        "method sees "
        "the same honest baseline features (described per dataset below), and the same seeded "
        "episodes. "
        "Cells: mean AUROC over episodes [95% Student-t interval over episodes]; each episode's "
        "value is first "
        "averaged over the classes / categories.\n\n";
    for (const auto& d : args.datasets) {
      if (d == "fashion-mnist") bench::run_fashion_mnist(args, report);
      if (d == "fashion-patches") bench::run_fashion_patches(args, report);
      if (d == "textures") bench::run_textures(args, report);
    }
  }
  std::printf("%s", report.markdown.c_str());
  if (!args.out_dir.empty()) {
    std::ofstream(report.out_dir / "results.md") << report.markdown;
    std::ofstream csv(report.out_dir / "results.csv");
    csv << bench::csv_header << "\n";
    for (const auto& row : report.csv) csv << row << "\n";
    std::fprintf(stderr, "wrote %s/results.md, results.csv%s\n", args.out_dir.c_str(),
                 report.figures ? " and figures/" : "");
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "fewshot_benchmark: %s\n", e.what());
  return 1;
}
