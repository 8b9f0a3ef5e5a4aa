// Federated meta-learning on textures: three sites that each own a third of the meta-train GIMP
// patterns meta-train one BayPrAnoMeta embedding of patch descriptors together; does that reach
// the held-out image AUROC of training on all their patterns together (centralised), and does
// either beat the untrained embedding? The texture counterpart of federated_fashion.cpp.
//
//   federated_textures [--quick] [--seeds N] [--rounds R] [--local-episodes E]
//                      [--eval-episodes P] [--supcon W] [--out DIR] [--patterns DIR] [--seed S]
//       a Markdown table on stdout; with --out also DIR/federated_textures.md, .csv and the
//       stationarity figure .png
//
// Data and model: examples/meta_textures_data.hpp and meta_textures.cpp's settings (chosen there on
// validation patterns): the eligible GIMP patterns, the benchmark's 4 held-out ones, the 127 meta-
// train ones (the 4 validation patterns are unused here); 8 x 8 patches of 64 x 64 crops, the fixed
// 128-d descriptors standardised per episode; Mlp::paper_head(128, 32), NIW(0, 0.01, d + 2, I),
// the discriminative objective with its calibration (fitted on 32 training tasks of all the
// meta-train patterns at theta0), one inner step of 5e-4, second order; patch-level training tasks
// (K = 5) with anomalous patches of all four synthetic defect types. Sites: the meta-train
// patterns in path order cut into three contiguous thirds (42, 42, 43 patterns), each drawing tasks
// from its own patterns only (neighbouring names in Debian's pattern directories tend to be alike,
// so the sites' textures differ). Nothing was tuned for this program.
// Rows (federated_compare.hpp): centralised (one site with every meta-train pattern), FedSGD and
// FedAvg over the three sites, with SupCon (--supcon, 0.1) and without, each from the same start
// for R rounds of 3 E episodes (a site's E per round; the centralised site's 3 E). Evaluation: the
// texture benchmark's episodes on the 4 held-out patterns (K in {1, 5}; 12 normal crops and 4 defect
// images of each type as queries), image score = max patch score after one inner step (the
// untrained row: none), image AUROC per episode averaged over seeds, paired differences, 95%
// two-level bootstrap (patterns, then episodes).
#include <baypr/baypr.hpp>
#include <baypr/federated/algorithms.hpp>
#include <baypr/meta/adapt.hpp>
#include <baypr/meta/mlp.hpp>
#include <baypr_bench/textures.hpp>

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cli_args.hpp"
#include "federated_compare.hpp"
#include "meta_textures_data.hpp"

namespace {

namespace meta = baypr::meta;
namespace fed = baypr::federated;
namespace mt = meta_textures;

constexpr int kSites = 3;

struct Args {
  federated_compare::Config config{3, 200, 4, 10, 0.1, 2026, ""};
  std::string patterns = mt::default_pattern_dir;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "federated_textures: " << why << "\n(see the comment at the top of "
            << "examples/federated_textures.cpp)\n";
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  auto& c = a.config;
  const cli::ArgReader reader(argc, argv, usage);
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    if (f == "--quick") {
      c.seeds = 2;
      c.rounds = 60;
      c.eval_episodes = 4;
    } else if (f == "--seeds") {
      c.seeds = reader.positive_int(i);
    } else if (f == "--rounds") {
      c.rounds = reader.positive_int(i);
    } else if (f == "--local-episodes") {
      c.local_episodes = reader.positive_int(i);
    } else if (f == "--eval-episodes") {
      c.eval_episodes = reader.positive_int(i);
    } else if (f == "--supcon") {
      c.supcon = reader.number(i, true);
    } else if (f == "--seed") {
      c.seed = reader.seed(i);
    } else if (f == "--out") {
      c.out = reader.value(i);
    } else if (f == "--patterns") {
      a.patterns = reader.value(i);
    } else {
      usage("unknown option '" + f + "'");
    }
  }
  return a;
}

struct Setup {
  mt::PatternSplit split;
  std::vector<std::vector<baypr::TextureCategory>> sites;
  meta::Mlp embedding =
      meta::Mlp::paper_head(baypr::patch_feature_dim(mt::features()), mt::embedding_dim);
  baypr::NiwPrior<double> prior = baypr::NiwPrior<double>::isotropic(
      mt::embedding_dim, 0.01, static_cast<double>(mt::embedding_dim + 2), 1.0);
};

meta::MetaOptions options(double supcon, int inner_steps = 1) {
  meta::MetaOptions o;
  o.adapt.inner_steps = inner_steps;
  o.adapt.inner_step_size = 5e-4;
  o.order = meta::MetaGradient::second_order;
  o.outer.supcon_weight = supcon;
  return o;
}

fed::Client make_site(const Setup& setup, const std::vector<baypr::TextureCategory>& patterns,
                      double supcon) {
  const auto sampler = std::make_shared<mt::PatchTaskSampler>(patterns, baypr::all_defect_types(),
                                                              mt::PatchTaskShape{});
  const auto stepper = std::make_shared<meta::MetaStepper<meta::Mlp>>(setup.embedding);
  fed::Client c;
  c.sample = [sampler](std::mt19937_64& rng) { return sampler->sample(rng); };
  c.step = [stepper, &setup, o = options(supcon)](const Eigen::VectorXd& joint,
                                                  const meta::MetaEpisode& e) {
    return meta::calibrated_meta_step(*stepper, joint, e, setup.prior, o);
  };
  return c;
}

// theta0 of the seed, with the calibration fitted on 32 training tasks of every meta-train
// pattern at theta0 (as meta_textures.cpp).
Eigen::VectorXd shared_start(const Setup& setup, std::uint64_t seed) {
  const Eigen::VectorXd theta0 = setup.embedding.initial_parameters(seed);
  const mt::PatchTaskSampler all(setup.split.train, baypr::all_defect_types(), {});
  std::mt19937_64 rng(baypr::derive_seed(seed, {0x626179ULL}));
  std::vector<double> scores;
  std::vector<int> labels;
  for (int i = 0; i < 32; ++i) {
    const meta::MetaEpisode e = all.sample(rng);
    const Eigen::VectorXd s =
        meta::scores(setup.embedding, theta0, e.support, e.queries, setup.prior, options(0.0));
    scores.insert(scores.end(), s.data(), s.data() + s.size());
    labels.insert(labels.end(), e.labels.begin(), e.labels.end());
  }
  return meta::with_calibration(
      theta0, meta::fit_calibration(Eigen::Map<const Eigen::VectorXd>(
                                        scores.data(), static_cast<Eigen::Index>(scores.size())),
                                    Eigen::Map<const Eigen::VectorXi>(
                                        labels.data(), static_cast<Eigen::Index>(labels.size()))));
}

// Image AUROC (max patch score) of every held-out episode: K in shots, then pattern, then episode.
Eigen::VectorXd held_out_auroc(const Setup& setup, const Eigen::VectorXd& joint,
                               const std::vector<Eigen::Index>& shots, int episodes,
                               std::uint64_t seed, int inner_steps) {
  const Eigen::VectorXd theta = meta::split_calibration(joint).first;
  const meta::MetaOptions o = options(0.0, inner_steps);
  const Eigen::Index p = mt::grid().count();
  std::vector<double> out;
  for (const Eigen::Index k : shots) {
    for (std::size_t c = 0; c < setup.split.held_out.size(); ++c) {
      for (int e = 0; e < episodes; ++e) {
        const mt::ImageEpisode ep = mt::image_episode(setup.split.held_out, c, k, e, seed);
        const Eigen::VectorXd s =
            meta::scores(setup.embedding, theta, ep.support, ep.queries, setup.prior, o);
        const auto images = static_cast<Eigen::Index>(ep.query_types.size());
        Eigen::VectorXd image(images);
        Eigen::VectorXi labels(images);
        for (Eigen::Index q = 0; q < images; ++q) {
          image(q) = s.segment(q * p, p).maxCoeff();
          labels(q) = ep.query_types[static_cast<std::size_t>(q)] >= 0 ? 1 : 0;
        }
        out.push_back(baypr::auroc(image, labels));
      }
    }
  }
  return Eigen::Map<const Eigen::VectorXd>(out.data(), static_cast<Eigen::Index>(out.size()));
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  try {
    Setup setup;
    setup.split = mt::split_patterns(mt::load_patterns(a.patterns), 0);
    const auto& train = setup.split.train;
    for (int s = 0; s < kSites; ++s) {
      const std::size_t from = train.size() * static_cast<std::size_t>(s) / kSites;
      const std::size_t to = train.size() * static_cast<std::size_t>(s + 1) / kSites;
      setup.sites.emplace_back(train.begin() + static_cast<std::ptrdiff_t>(from),
                               train.begin() + static_cast<std::ptrdiff_t>(to));
    }
    std::cerr << "federated_textures: " << train.size() << " meta-train patterns, sites of "
              << setup.sites[0].size() << ", " << setup.sites[1].size() << " and "
              << setup.sites[2].size() << "; held out: " << setup.split.held_out.size() << "\n";

    const std::vector<Eigen::Index> shots = {1, 5};
    federated_compare::Experiment x;
    x.name = "federated_textures";
    x.program = "federated_textures";
    x.title = "Held-out image AUROC (4 held-out patterns, all four defect types)";
    x.group = "patterns";
    x.each = "pattern";
    x.sites = kSites;
    x.shots = shots;
    for (std::size_t k = 0; k < shots.size(); ++k) {
      for (std::size_t c = 0; c < setup.split.held_out.size(); ++c) {
        for (int e = 0; e < a.config.eval_episodes; ++e) {
          x.episode_shot.push_back(k);
          x.episode_group.push_back(static_cast<int>(c));
        }
      }
    }
    x.lr = 1e-3;
    x.start = [&](std::uint64_t seed) { return shared_start(setup, seed); };
    x.make_site = [&](int site, double supcon) {
      return make_site(setup, site < 0 ? train : setup.sites[static_cast<std::size_t>(site)],
                       supcon);
    };
    x.evaluate = [&](const Eigen::VectorXd& joint, int inner_steps) {
      return held_out_auroc(setup, joint, shots, a.config.eval_episodes, a.config.seed,
                            inner_steps);
    };
    return federated_compare::compare(x, a.config);
  } catch (const std::exception& e) {
    std::cerr << "federated_textures: " << e.what() << '\n';
    return 1;
  }
}
