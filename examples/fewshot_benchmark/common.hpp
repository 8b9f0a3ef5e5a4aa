// Shared pieces of the few-shot benchmark program (examples/fewshot_benchmark/): command-line
// options, the report being assembled (Markdown, CSV, figures), and table formatting.
#pragma once

#include <baypr/eval/metrics.hpp>

#include <Eigen/Core>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace baypr {
// eval/episodes.hpp; only declared here to keep main.cpp and figures.cpp light.
struct EpisodeMethod;
struct OneClassOptions;
}  // namespace baypr

namespace bench {

struct Args {
  std::vector<std::string> datasets = {"fashion-mnist", "fashion-patches", "textures"};
  int episodes = 10;
  std::vector<int> classes = {0, 1};  // Fashion-MNIST normal classes
  int texture_categories = 4;         // 0: every eligible pattern
  std::vector<Eigen::Index> shots = {1, 2, 4, 8};
  std::uint64_t seed = 2026;
  int threads = 1;  // episodes on this many threads (Fashion-MNIST sections, --npy)
  bool full_test_split = false;
  bool whole_support = false;  // fashion-patches: also the whole training split as support
  std::string out_dir;
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::string pattern_dir = "/usr/share/gimp/2.0/patterns";
  std::string npy_dir;  // user mode: support.npy, queries.npy, labels.npy
};

Args parse_args(int argc, char** argv);

// The report: Markdown sections, CSV rows (one header for all), and figures written into
// out_dir/figures when figures are enabled (out_dir given and the program built with
// baypr_report).
struct Report {
  std::string markdown;
  std::vector<std::string> csv;  // rows of results.csv
  std::filesystem::path out_dir;
  bool figures = false;
  [[nodiscard]] std::filesystem::path figure(const std::string& name) const {
    return out_dir / "figures" / name;
  }
};

inline const char* csv_header =
    "dataset,protocol,embedding,method,group,metric,K,episodes,mean,lower_95,upper_95";

std::string csv_row(std::string_view dataset, std::string_view protocol, std::string_view embedding,
                    std::string_view method, std::string_view group, std::string_view metric,
                    Eigen::Index k, const std::vector<double>& values);

// "0.873 [0.866, 0.880]"
std::string cell(const baypr::MeanInterval& ci);

// A Markdown table: one row per name, one column per K.
std::string table(const std::vector<std::string>& names, const std::vector<Eigen::Index>& shots,
                  const std::vector<std::vector<baypr::MeanInterval>>& cells);

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0);
void log_line(Clock::time_point t0, std::string_view what);

// The methods compared (methods.cpp).
std::vector<baypr::EpisodeMethod> fashion_methods();
std::vector<baypr::EpisodeMethod> texture_methods();
std::vector<baypr::EpisodeMethod> user_methods();

// Fashion-MNIST as the benchmark's sections use it (fashion.cpp): pixels in [0, 1] standardised
// with the whole training split's statistics (baypr::PixelStandardiser); the training images of
// the normal classes (args.classes) only, every test image.
struct FashionPixels {
  Eigen::VectorXi train_labels;
  Eigen::MatrixXd train;
  Eigen::VectorXi test_labels;
  Eigen::MatrixXd test;
};
FashionPixels load_fashion_pixels(const Args& args);
// The one-class episode options of args (classes, shots, episodes, seed), logging progress as
// "<section>: ..." (fashion.cpp).
baypr::OneClassOptions fashion_episode_options(const Args& args, Clock::time_point t0,
                                               std::string section);

void run_fashion_mnist(const Args& args, Report& report);
void run_fashion_patches(const Args& args, Report& report);
void run_textures(const Args& args, Report& report);
void run_user_npy(const Args& args, Report& report);

}  // namespace bench

namespace bench {

// ROC curves and score histograms of several methods on one set of labelled scores, written as
// figures/<stem>-roc.png and figures/<stem>-hist.png (no-op without figures or gnuplot). Returns
// Markdown image links for what was written.
std::string score_charts(const Report& report, const std::string& stem, const std::string& title,
                         const std::vector<std::string>& methods,
                         const std::vector<Eigen::VectorXd>& scores, const Eigen::VectorXi& labels);

}  // namespace bench
