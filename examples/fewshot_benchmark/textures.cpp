// Textures: an MVTec-AD-like benchmark on GIMP's photographic patterns (Debian gimp-data and
// gimp-data-extras), defined in bench/baypr_bench/textures.hpp.
//
// Categories: every pattern whose shorter side is at least 64 px (the crop size), converted to
// grey; --texture-categories N takes N of them evenly spaced in path order (the default run), 'all'
// every one. Normal images are 64 x 64 crops with mild nuisance (offset, +-5 degrees, scale
// 0.95-1.05, brightness +-5%); anomalous ones get one synthetic defect (cut-paste of another
// category's texture, scratch, blotch, hole) with an exact pixel mask. Embedding: fixed 128-d patch
// descriptors (raw 8 x 8 patch + 2 x 2-pooled 16 x 16 context, stride 4: 225 patches per image),
// standardised with the support patches' statistics. Image score = max over patches; pixel map =
// mean of the covering patches' scores.
#include <baypr/io/pat.hpp>
#include <baypr_bench/textures.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "common.hpp"

#ifdef BAYPR_REPORT_FIGURES
#include "report.hpp"
#endif

namespace bench {

namespace {

std::vector<baypr::TextureCategory> load_categories(const Args& args, Eigen::Index min_side) {
  std::vector<baypr::TextureCategory> all;
  for (const auto& path : baypr::find_pat_files(args.pattern_dir)) {
    const auto pattern = baypr::read_pat(path);
    if (std::min(pattern.width, pattern.height) < static_cast<std::uint32_t>(min_side)) continue;
    Eigen::ArrayXXd grey = baypr::pattern_to_grey(pattern);
    // A flat pattern has no texture to model and no pixels a defect could change visibly.
    const double sd = std::sqrt((grey - grey.mean()).square().mean());
    if (sd < 0.02) continue;
    all.push_back({std::filesystem::relative(path, args.pattern_dir).replace_extension().string(),
                   std::move(grey)});
  }
  if (all.size() < 2)
    throw std::runtime_error("textures: fewer than 2 usable patterns under " + args.pattern_dir);
  if (args.texture_categories == 0 ||
      static_cast<std::size_t>(args.texture_categories) >= all.size())
    return all;
  std::vector<baypr::TextureCategory> chosen;
  const auto n = static_cast<double>(args.texture_categories);
  for (int i = 0; i < args.texture_categories; ++i) {
    const auto at = static_cast<std::size_t>(
        std::lround(i * (static_cast<double>(all.size()) - 1.0) / (n - 1.0)));
    chosen.push_back(all[at]);
  }
  return chosen;
}

std::string metric_table(const baypr::TextureResults& r, baypr::TextureMetric metric, int type,
                         std::vector<std::string>& csv) {
  std::vector<std::vector<baypr::MeanInterval>> cells(r.methods.size());
  const std::string group(type < 0
                              ? std::string_view("all defects")
                              : baypr::defect_name(r.defect_types[static_cast<std::size_t>(type)]));
  const char* metric_name =
      metric == baypr::TextureMetric::image_auroc ? "image_auroc" : "pixel_auroc";
  for (std::size_t m = 0; m < r.methods.size(); ++m) {
    for (std::size_t k = 0; k < r.shots.size(); ++k) {
      const auto values = r.class_averaged(metric, m, k, type);
      cells[m].push_back(baypr::mean_interval(values));
      csv.push_back(csv_row("textures", "episode_12+4/type", "patch-128", r.methods[m], group,
                            metric_name, r.shots[k], values));
    }
  }
  return table(r.methods, r.shots, cells);
}

// The largest K, per defect type: one table, methods x types, image and pixel AUROC.
std::string per_type_table(const baypr::TextureResults& r) {
  const std::size_t k = r.shots.size() - 1;
  std::ostringstream s;
  s << "| method |";
  for (const auto t : r.defect_types) s << " " << baypr::defect_name(t) << " (image / pixel) |";
  s << "\n|---|";
  for (std::size_t t = 0; t < r.defect_types.size(); ++t) s << "---|";
  s << "\n";
  for (std::size_t m = 0; m < r.methods.size(); ++m) {
    s << "| " << r.methods[m] << " |";
    for (std::size_t t = 0; t < r.defect_types.size(); ++t) {
      char buf[48];
      std::snprintf(buf, sizeof buf, " %.3f / %.3f |",
                    r.summary(baypr::TextureMetric::image_auroc, m, k, static_cast<int>(t)).mean,
                    r.summary(baypr::TextureMetric::pixel_auroc, m, k, static_cast<int>(t)).mean);
      s << buf;
    }
    s << "\n";
  }
  return s.str();
}

#ifdef BAYPR_REPORT_FIGURES
// One figure per kept example: a row per shown query (the first normal one and the first of each
// defect type): the image, the ground truth outlined, then each method's map over the image.
// Colour scale per method: from its lowest to its highest pixel score over the shown queries.
std::string heatmap_figure(const Report& report, const baypr::TextureResults& r,
                           const baypr::TextureExample& ex, const std::string& stem) {
  namespace rp = baypr::report;
  constexpr int zoom = 3;
  std::vector<std::size_t> shown;
  for (int t = -1; t < static_cast<int>(r.defect_types.size()); ++t) {
    for (std::size_t q = 0; q < r.query_types.size(); ++q) {
      if (r.query_types[q] == t) {
        shown.push_back(q);
        break;
      }
    }
  }
  std::vector<double> lo(r.methods.size(), 1e300), hi(r.methods.size(), -1e300);
  for (std::size_t m = 0; m < r.methods.size(); ++m) {
    for (const auto q : shown) {
      lo[m] = std::min(lo[m], ex.maps[m][q].minCoeff());
      hi[m] = std::max(hi[m], ex.maps[m][q].maxCoeff());
    }
    if (!(hi[m] > lo[m])) hi[m] = lo[m] + 1.0;
  }
  std::vector<std::vector<rp::RgbImage>> grid;
  for (const auto q : shown) {
    std::vector<rp::RgbImage> row;
    row.push_back(rp::upscale(rp::grey_image(ex.queries[q]), zoom));
    rp::RgbImage truth = rp::upscale(rp::grey_image(ex.queries[q]), zoom);
    rp::outline_mask(truth, ex.masks[q], {0, 255, 0});
    row.push_back(std::move(truth));
    for (std::size_t m = 0; m < r.methods.size(); ++m) {
      row.push_back(
          rp::upscale(rp::heat_overlay(ex.queries[q], ex.maps[m][q], lo[m], hi[m], 0.6), zoom));
    }
    grid.push_back(std::move(row));
  }
  grid.push_back({rp::colour_bar(64 * zoom, 12)});
  const std::string file = stem + ".png";
  rp::write_png(report.figure(file), rp::tile(grid, 4, {255, 255, 255}));
  std::ostringstream md;
  md << "![Heat maps, " << ex.category << "](figures/" << file << ")\n\n"
     << ex.category << ", K = " << ex.shot << ". Rows: normal";
  for (const auto t : r.defect_types) md << ", " << baypr::defect_name(t);
  md << ". Columns: image | ground truth (green outline)";
  for (const auto& m : r.methods) md << " | " << m;
  md << ". Colour (bar at the bottom, low to high): each method's scores scaled from its lowest to "
        "its highest pixel "
        "score over these rows.\n\n";
  return md.str();
}
#endif

}  // namespace

void run_textures(const Args& args, Report& report) {
  const auto t0 = Clock::now();
  baypr::TextureOptions options;
  options.shots = args.shots;
  options.episodes = args.episodes;
  options.seed = args.seed;
  options.keep_examples = report.figures;
  log_line(t0, "textures: reading patterns under " + args.pattern_dir);
  const auto categories = load_categories(args, options.image_size);
  options.progress = [&](std::string_view what) { log_line(t0, "textures: " + std::string(what)); };
  const auto r = baypr::run_texture_episodes(categories, options, texture_methods());
  log_line(t0, "textures: done");

  std::ostringstream md;
  std::string names;
  for (const auto& c : r.categories) {
    if (!names.empty()) names += ", ";
    names += c;
  }
  md << "## Textures (GIMP patterns), synthetic defects\n\n"
     << "Categories (" << r.categories.size() << "): " << names
     << ". Normal: 64 x 64 grey crops with mild nuisance; "
     << "anomalous: one synthetic defect (cut-paste, scratch, blotch, hole) with an exact pixel "
        "mask. Embedding: "
        "fixed 128-d patch descriptors (raw 8 x 8 patch + pooled 16 x 16 context, stride 4, 225 "
        "patches per image), "
        "standardised with the support's patch statistics. "
     << args.episodes << " episodes per category per K, seed " << args.seed
     << ". Episode: K normal support crops; 12 normal queries + 4 per defect type. Image score = "
        "max patch score.\n\n"
     << "### Image AUROC, all defect types (12 normal vs 16 defective)\n\n"
     << metric_table(r, baypr::TextureMetric::image_auroc, -1, report.csv)
     << "\n### Pixel AUROC, all defect types\n\n"
     << metric_table(r, baypr::TextureMetric::pixel_auroc, -1, report.csv);
  for (std::size_t t = 0; t < r.defect_types.size(); ++t) {
    // Per-type tables feed the CSV; the Markdown shows the largest K per type compactly below.
    (void)metric_table(r, baypr::TextureMetric::image_auroc, static_cast<int>(t), report.csv);
    (void)metric_table(r, baypr::TextureMetric::pixel_auroc, static_cast<int>(t), report.csv);
  }
  md << "\n### Per defect type, K = " << r.shots.back()
     << " (image AUROC / pixel AUROC, mean over episodes)\n\n"
     << "Each type is scored alone against the same normal queries, so a method's strength on one "
        "defect type is "
        "not averaged away by the others (the fixed embedding sees no anomalies, so this is also "
        "the "
        "leave-one-defect-type-out number for it).\n\n"
     << per_type_table(r);

  if (report.figures) {
    // Pooled over every category's episodes at the largest K: ROC curves and histograms.
    const std::size_t k = r.shots.size() - 1;
    const Eigen::VectorXi labels = r.query_labels();
    const auto n_q = labels.size();
    std::vector<Eigen::VectorXd> scores;
    Eigen::VectorXi pooled_labels;
    for (std::size_t m = 0; m < r.methods.size(); ++m) {
      std::vector<double> s;
      std::vector<int> l;
      for (std::size_t c = 0; c < r.categories.size(); ++c) {
        const Eigen::MatrixXd& per = r.image_scores[m][c][k];
        for (Eigen::Index e = 0; e < per.rows(); ++e) {
          for (Eigen::Index q = 0; q < n_q; ++q) {
            s.push_back(per(e, q));
            l.push_back(labels(q));
          }
        }
      }
      scores.push_back(
          Eigen::Map<const Eigen::VectorXd>(s.data(), static_cast<Eigen::Index>(s.size())));
      pooled_labels =
          Eigen::Map<const Eigen::VectorXi>(l.data(), static_cast<Eigen::Index>(l.size()));
    }
    md << "\nCharts: image scores pooled over every category and episode at K = " << r.shots.back()
       << " (scores are not comparable across categories, so pooled AUROC is below the per-episode "
          "mean).\n\n"
       << score_charts(report, "textures", "Textures, K = " + std::to_string(r.shots.back()),
                       r.methods, scores, pooled_labels);
#ifdef BAYPR_REPORT_FIGURES
    md << "### Heat maps\n\n";
    for (std::size_t i = 0; i < r.examples.size() && i < 3; ++i) {
      md << heatmap_figure(report, r, r.examples[i], "heatmap-" + std::to_string(i));
    }
#endif
  }
  report.markdown += md.str() + "\n";
}

}  // namespace bench
