// examples/meta_textures_data.hpp: the texture meta-learning setup of examples/meta_textures.cpp —
// pattern loading and the fixed meta-train / validation / held-out split, per-episode
// standardisation, patch-level meta-training tasks with labelled defect patches, and the seeded
// image-level evaluation episodes (the texture benchmark's episodes, bit for bit). See
// meta_textures.cpp's header comment for why each choice.
//
//   meta_textures::load_patterns(dir)              eligible GIMP patterns, grey, in path order
//   meta_textures::split_patterns(all, n)          held-out (the benchmark's 4), train, validation
//   meta_textures::standardise(support, queries)   with the support's patch mean and sd
//   meta_textures::patch_coverage(mask, grid)      fraction of each patch inside a defect mask
//   meta_textures::defect_patches(coverage)        the patches labelled anomalous in training
//   meta_textures::PatchTaskSampler                patch-level MetaEpisodes (for meta::train)
//   meta_textures::image_episode(patterns, c, K, e, seed)
//                                                  one evaluation episode: K support crops, 12
//                                                  normal + 4 per defect type queries
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <baypr/eval/episodes.hpp>
#include <baypr/eval/metrics.hpp>
#include <baypr/io/pat.hpp>
#include <baypr/meta/adapt.hpp>
#include <baypr_bench/textures.hpp>

namespace meta_textures {

namespace meta = baypr::meta;
using baypr::DefectType;
using baypr::TextureCategory;

inline constexpr Eigen::Index image_size = 64, embedding_dim = 32;
inline constexpr Eigen::Index eval_normal_queries = 12, eval_anomalous_per_type = 4;
inline const std::string default_pattern_dir = "/usr/share/gimp/2.0/patterns";

inline const baypr::PatchFeatureOptions& features() {
  static const baypr::PatchFeatureOptions
      options;  // 8 x 8 patches, stride 4, 16 x 16 context: 128-d
  return options;
}

inline baypr::PatchGrid grid() {
  return baypr::patch_grid(image_size, features());
}

// The benchmark's rule (examples/fewshot_benchmark/textures.cpp): every pattern whose shorter side
// is at least the crop size and whose grey levels are not flat (sd >= 0.02), in path order.
inline std::vector<TextureCategory> load_patterns(const std::string& dir) {
  std::vector<TextureCategory> all;
  for (const auto& path : baypr::find_pat_files(dir)) {
    const auto pattern = baypr::read_pat(path);
    if (std::min(pattern.width, pattern.height) < static_cast<std::uint32_t>(image_size)) continue;
    Eigen::ArrayXXd grey = baypr::pattern_to_grey(pattern);
    const double sd = std::sqrt((grey - grey.mean()).square().mean());
    if (sd < 0.02) continue;
    all.push_back(
        {std::filesystem::relative(path, dir).replace_extension().string(), std::move(grey)});
  }
  return all;
}

// `count` indices evenly spaced over 0..n-1 (first and last included), the benchmark's rule.
inline std::vector<std::size_t> evenly_spaced(std::size_t n, std::size_t count) {
  std::vector<std::size_t> out;
  if (count == 0 || n == 0) return out;
  if (count == 1) return {0};
  for (std::size_t i = 0; i < count; ++i) {
    out.push_back(static_cast<std::size_t>(
        std::lround(static_cast<double>(i) * (static_cast<double>(n) - 1.0) /
                    (static_cast<double>(count) - 1.0))));
  }
  return out;
}

struct PatternSplit {
  std::vector<TextureCategory> held_out, train, validation;
};

// Held out: the benchmark's 4 default categories (4 evenly spaced in path order). Of the rest,
// validation_count evenly spaced ones validate and the others meta-train (train_count > 0: only
// that many of them, evenly spaced). Fixed by rule, not by results.
inline PatternSplit split_patterns(const std::vector<TextureCategory>& all,
                                   std::size_t train_count = 0, std::size_t validation_count = 4) {
  constexpr std::size_t held_out_count = 4;
  const std::size_t needed =
      held_out_count + validation_count + std::max<std::size_t>(train_count, 2);
  if (all.size() < needed) {
    throw std::runtime_error("meta_textures: need " + std::to_string(needed) +
                             " usable patterns, found " + std::to_string(all.size()));
  }
  PatternSplit s;
  std::vector<bool> taken(all.size(), false);
  for (const std::size_t i : evenly_spaced(all.size(), held_out_count)) {
    s.held_out.push_back(all[i]);
    taken[i] = true;
  }
  std::vector<std::size_t> rest;
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (!taken[i]) rest.push_back(i);
  }
  std::vector<bool> validates(rest.size(), false);
  for (const std::size_t j : evenly_spaced(rest.size(), validation_count)) {
    validates[j] = true;
    s.validation.push_back(all[rest[j]]);
  }
  std::vector<TextureCategory> train;
  for (std::size_t j = 0; j < rest.size(); ++j) {
    if (!validates[j]) train.push_back(all[rest[j]]);
  }
  if (train_count == 0 || train_count >= train.size()) {
    s.train = std::move(train);
  } else {
    for (const std::size_t j : evenly_spaced(train.size(), train_count))
      s.train.push_back(train[j]);
  }
  return s;
}

// The benchmark's per-episode standardisation: centre and scale both by the support rows' mean and
// sd (n - 1), the sd floored at max(1e-3 x mean sd, 1e-12).
inline void standardise(Eigen::MatrixXd& support, Eigen::MatrixXd& queries) {
  const Eigen::RowVectorXd mean = support.colwise().mean();
  support.rowwise() -= mean;
  queries.rowwise() -= mean;
  Eigen::RowVectorXd sd =
      (support.colwise().squaredNorm() / static_cast<double>(support.rows() - 1)).cwiseSqrt();
  sd = sd.cwiseMax(std::max(1e-3 * sd.mean(), 1e-12));
  support.array().rowwise() /= sd.array();
  queries.array().rowwise() /= sd.array();
}

// Fraction of each patch's pixels inside the mask, patches in patch_features' (row-major) order.
inline Eigen::VectorXd patch_coverage(const baypr::DefectMask& mask, const baypr::PatchGrid& g) {
  Eigen::VectorXd out(g.count());
  const double area = static_cast<double>(g.patch * g.patch);
  for (Eigen::Index gi = 0; gi < g.rows; ++gi) {
    for (Eigen::Index gj = 0; gj < g.cols; ++gj) {
      out(gi * g.cols + gj) =
          static_cast<double>(mask.block(gi * g.stride, gj * g.stride, g.patch, g.patch).count()) /
          area;
    }
  }
  return out;
}

// Patches labelled anomalous for meta-training: at least half inside the defect; for a defect
// where no patch reaches that (thin scratches), those at least half as covered as the most-covered
// patch. Never empty for a non-empty mask.
inline std::vector<Eigen::Index> defect_patches(const Eigen::VectorXd& coverage) {
  const double threshold = std::min(0.5, 0.5 * coverage.maxCoeff());
  std::vector<Eigen::Index> out;
  for (Eigen::Index i = 0; i < coverage.size(); ++i) {
    if (coverage(i) > 0.0 && coverage(i) >= threshold) out.push_back(i);
  }
  return out;
}

inline Eigen::MatrixXd rows_of(const Eigen::MatrixXd& x, const std::vector<Eigen::Index>& rows) {
  return x(rows, Eigen::all);
}

inline std::vector<Eigen::Index> iota(Eigen::Index n) {
  std::vector<Eigen::Index> v(static_cast<std::size_t>(n));
  for (Eigen::Index i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
  return v;
}

// A cut_paste source other than pattern c, drawn as the benchmark draws it.
inline const Eigen::ArrayXXd* other_texture(const std::vector<TextureCategory>& patterns,
                                            std::size_t c, std::mt19937_64& rng) {
  auto o = static_cast<std::size_t>(baypr::uniform_below(rng, patterns.size() - 1));
  if (o >= c) ++o;
  return &patterns[o].texture;
}

// The shape of a patch-level training task. Support: `shots` normal crops of one pattern,
// `support_patches` random patches of each (the standardisation uses all their patches).
// Queries: `normal_patches` random patches of each of `normal_images` further normal crops, and up
// to `anomalous_patches` defect patches (defect_patches) of each of `anomalous_images` defect
// images, each of a defect type drawn uniformly from the sampler's types.
struct PatchTaskShape {
  Eigen::Index shots = 5, support_patches = 32;
  Eigen::Index normal_images = 2, normal_patches = 24;
  Eigen::Index anomalous_images = 4, anomalous_patches = 4;
};

// Patch-level one-class tasks over some patterns and defect types (meta::train's Sampler).
class PatchTaskSampler {
 public:
  PatchTaskSampler(std::vector<TextureCategory> patterns, std::vector<DefectType> types,
                   PatchTaskShape shape)
      : patterns_(std::move(patterns)), types_(std::move(types)), shape_(shape) {
    if (patterns_.size() < 2)
      throw std::invalid_argument("PatchTaskSampler: needs >= 2 patterns (cut_paste)");
    if (types_.empty()) throw std::invalid_argument("PatchTaskSampler: needs >= 1 defect type");
    const Eigen::Index p = grid().count();
    if (shape_.shots < 1 || shape_.support_patches < 1 || shape_.support_patches > p ||
        shape_.normal_images < 1 || shape_.normal_patches < 1 || shape_.normal_patches > p ||
        shape_.anomalous_images < 1 || shape_.anomalous_patches < 1) {
      throw std::invalid_argument("PatchTaskSampler: bad task shape");
    }
  }

  [[nodiscard]] meta::MetaEpisode sample(std::mt19937_64& rng) const {
    const auto c = static_cast<std::size_t>(baypr::uniform_below(rng, patterns_.size()));
    const Eigen::ArrayXXd& texture = patterns_[c].texture;
    const Eigen::Index p = grid().count(), d = baypr::patch_feature_dim(features());
    Eigen::MatrixXd support_all(shape_.shots * p, d);
    for (Eigen::Index i = 0; i < shape_.shots; ++i)
      support_all.middleRows(i * p, p) =
          baypr::patch_features(baypr::normal_crop(texture, image_size, rng), features());
    std::vector<Eigen::Index> support_rows;
    for (Eigen::Index i = 0; i < shape_.shots; ++i) {
      for (const Eigen::Index r :
           baypr::sample_without_replacement(iota(p), shape_.support_patches, rng))
        support_rows.push_back(i * p + r);
    }
    std::vector<Eigen::MatrixXd> parts;
    Eigen::Index normal = 0, anomalous = 0;
    for (Eigen::Index i = 0; i < shape_.normal_images; ++i) {
      const Eigen::MatrixXd f =
          baypr::patch_features(baypr::normal_crop(texture, image_size, rng), features());
      parts.push_back(
          rows_of(f, baypr::sample_without_replacement(iota(p), shape_.normal_patches, rng)));
      normal += shape_.normal_patches;
    }
    for (Eigen::Index i = 0; i < shape_.anomalous_images; ++i) {
      const DefectType type =
          types_[static_cast<std::size_t>(baypr::uniform_below(rng, types_.size()))];
      const Eigen::ArrayXXd base = baypr::normal_crop(texture, image_size, rng);
      const Eigen::ArrayXXd* other =
          type == DefectType::cut_paste ? other_texture(patterns_, c, rng) : nullptr;
      const baypr::DefectImage defect = baypr::add_defect(base, type, rng, other);
      const auto eligible = defect_patches(patch_coverage(defect.mask, grid()));
      const Eigen::Index take = std::min<Eigen::Index>(shape_.anomalous_patches,
                                                       static_cast<Eigen::Index>(eligible.size()));
      parts.push_back(rows_of(baypr::patch_features(defect.image, features()),
                              baypr::sample_without_replacement(eligible, take, rng)));
      anomalous += take;
    }
    meta::MetaEpisode e;
    e.queries.resize(normal + anomalous, d);
    Eigen::Index at = 0;
    for (const auto& part : parts) {
      e.queries.middleRows(at, part.rows()) = part;
      at += part.rows();
    }
    standardise(support_all, e.queries);
    e.support = rows_of(support_all, support_rows);
    e.labels.setOnes(normal + anomalous);
    e.labels.head(normal).setZero();
    return e;
  }

  [[nodiscard]] const std::vector<DefectType>& types() const { return types_; }

 private:
  std::vector<TextureCategory> patterns_;
  std::vector<DefectType> types_;
  PatchTaskShape shape_;
};

// One evaluation episode, standardised patch rows (K * 225 support, 28 * 225 query rows, images
// in query order), masks and each query's type (-1 normal, else the all_defect_types() index).
struct ImageEpisode {
  std::size_t pattern = 0;
  Eigen::Index shots = 0;
  Eigen::MatrixXd support, queries;
  std::vector<baypr::DefectMask> masks;
  std::vector<int> query_types;
};

// The draws of baypr::run_texture_episodes for category c, shot K and episode e with default
// TextureOptions (seed from (seed, c, K, e); K support crops; 12 normal crops; 4 defect images
// per type in all_defect_types() order, cut_paste from another of `patterns`), so with the
// benchmark's categories and seed these are exactly its images.
inline ImageEpisode image_episode(const std::vector<TextureCategory>& patterns, std::size_t c,
                                  Eigen::Index k, int e, std::uint64_t seed) {
  std::mt19937_64 rng(
      baypr::derive_seed(seed, {static_cast<std::uint64_t>(c), static_cast<std::uint64_t>(k),
                                static_cast<std::uint64_t>(e)}));
  const Eigen::ArrayXXd& texture = patterns[c].texture;
  const auto types = baypr::all_defect_types();
  const Eigen::Index p = grid().count(), d = baypr::patch_feature_dim(features());
  const Eigen::Index n_queries =
      eval_normal_queries + eval_anomalous_per_type * static_cast<Eigen::Index>(types.size());
  ImageEpisode ep;
  ep.pattern = c;
  ep.shots = k;
  ep.support.resize(k * p, d);
  ep.queries.resize(n_queries * p, d);
  for (Eigen::Index i = 0; i < k; ++i)
    ep.support.middleRows(i * p, p) =
        baypr::patch_features(baypr::normal_crop(texture, image_size, rng), features());
  Eigen::Index q = 0;
  for (; q < eval_normal_queries; ++q) {
    ep.queries.middleRows(q * p, p) =
        baypr::patch_features(baypr::normal_crop(texture, image_size, rng), features());
    ep.masks.push_back(baypr::DefectMask::Constant(image_size, image_size, false));
    ep.query_types.push_back(-1);
  }
  for (std::size_t t = 0; t < types.size(); ++t) {
    for (Eigen::Index i = 0; i < eval_anomalous_per_type; ++i, ++q) {
      const Eigen::ArrayXXd base = baypr::normal_crop(texture, image_size, rng);
      const Eigen::ArrayXXd* other =
          types[t] == DefectType::cut_paste ? other_texture(patterns, c, rng) : nullptr;
      baypr::DefectImage defect = baypr::add_defect(base, types[t], rng, other);
      ep.queries.middleRows(q * p, p) = baypr::patch_features(defect.image, features());
      ep.masks.push_back(std::move(defect.mask));
      ep.query_types.push_back(static_cast<int>(t));
    }
  }
  standardise(ep.support, ep.queries);
  return ep;
}

}  // namespace meta_textures
