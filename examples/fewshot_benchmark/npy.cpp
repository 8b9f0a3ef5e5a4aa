// User mode: the same comparison on embeddings a user exported as .npy (e.g. from their own
// network): support.npy (normal images), queries.npy and labels.npy in one directory.
#include <baypr/eval/episodes.hpp>
#include <baypr/io/npy.hpp>

#include <cstdio>
#include <sstream>
#include <stdexcept>

#include "common.hpp"

namespace bench {

void run_user_npy(const Args& args, Report& report) {
  const std::filesystem::path dir = args.npy_dir;
  // User mode: one task exported as .npy (support of normal images, labelled queries), every
  // method on it, over K-shot episodes drawn from the support and once with the whole support.
  const auto support = baypr::read_npy_embeddings<double>(dir / "support.npy");
  const auto queries = baypr::read_npy_embeddings<double>(dir / "queries.npy");
  if (support.patches != queries.patches) {
    throw std::invalid_argument("support.npy has " + std::to_string(support.patches) +
                                " patches per image, queries.npy " +
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
    labels(static_cast<Eigen::Index>(i)) =
        label_values[i] == 0 ? 0 : (label_values[i] == 1 ? 1 : -1);
    if (labels(static_cast<Eigen::Index>(i)) < 0) {
      throw std::invalid_argument("labels.npy: entry " + std::to_string(i) + " is " +
                                  std::to_string(label_values[i]) +
                                  ", must be 0 (normal) or 1 (anomalous)");
    }
  }
  baypr::TaskOptions options;
  options.shots = args.shots;
  options.episodes = args.episodes;
  options.seed = args.seed;
  options.patches = support.patches;
  options.threads = args.threads;
  const auto t0 = Clock::now();
  options.progress = [&](std::string_view what) { log_line(t0, what); };
  const auto r =
      baypr::run_task_episodes(support.rows, queries.rows, labels, options, user_methods());

  std::ostringstream md;
  md << "# Few-shot anomaly detection on user embeddings (" << dir.string() << ")\n\n"
     << "Support: " << support.images << " normal images; queries: " << queries.images << " ("
     << labels.sum() << " anomalous); " << support.patches
     << " row(s) per image, d = " << support.rows.cols()
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
    for (std::size_t k = 0; k < r.shots.size(); ++k)
      md << " " << cell(baypr::mean_interval(r.auroc[m][k])) << " |";
    char buf[32];
    std::snprintf(buf, sizeof buf, " %.3f |\n", r.full_support[m]);
    md << buf;
  }
  report.markdown += md.str();
  for (std::size_t m = 0; m < r.methods.size(); ++m) {
    for (std::size_t k = 0; k < r.shots.size(); ++k) {
      report.csv.push_back(csv_row("user-npy", "task", "user", r.methods[m], dir.string(),
                                   "image_auroc", r.shots[k], r.auroc[m][k]));
    }
  }
}

}  // namespace bench
