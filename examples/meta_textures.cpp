// Meta-training on textures, leave-one-defect-type-out: meta-train an embedding of patch
// descriptors on some GIMP patterns and three of the four synthetic defect types, then detect the
// fourth type on held-out patterns. Does BayPrAnoMeta (or Proto-MAML, or MAML) beat the same
// embedding untrained, and the fixed descriptors it starts from?
//
//   meta_textures [--quick] [--out DIR] [--folds all|0,1,..] [--epochs N] [--steps S]
//                 [--episodes E] [--seed S] [--lr A] [--inner-lr B] [--meta-batch M]
//                 [--order first|second] [--supcon W] [--train-patterns N] [--tune]
//                 [--prior-lr C] [--prior-only] [--shaped-prior] [--patterns DIR]
//
// Data (examples/meta_textures_data.hpp): the eligible GIMP patterns (Debian gimp-data /
// gimp-data-extras) by the texture benchmark's rule. Held-out patterns: the benchmark's 4 default
// categories. Of the others, 4 evenly spaced in path order validate and all the rest meta-train
// (127 of Debian's 135 eligible; --train-patterns N: N of them, evenly spaced). Fixed by rule;
// only the choice "all rather than 16" was made on validation (see below).
// Folds: held-out defect type t in {cut_paste, scratch, blotch, hole}. Meta-training (and
// validation) draw anomalous patches only of the other three types; evaluation scores the normal
// queries against type t's. Every fold trains its own three models from the same initial
// parameters. Default: all 4 folds; --folds picks some.
// Unit: 8 x 8 patches (stride 4) of 64 x 64 crops, the benchmark's fixed 128-d descriptors
// (raw patch + pooled 16 x 16 context), standardised per episode with the support patches' mean
// and sd (as the benchmark; in training too). Embedding Mlp::paper_head(128, 32), seeded initial
// parameters shared by every method and fold (MAML appends a zero linear head). Prior NIW(0,
// 0.01, d + 2, I), anomaly model t(0, 100 I, 2); BayPrAnoMeta trains with the discriminative
// default objective (calibration start fitted per fold on 32 training tasks at theta0) and SupCon
// 0.1 (as meta_training.cpp).
// Training task (K = 5): 5 normal crops of a meta-train pattern, 32 random patches of each as the
// support; queries: 24 random patches of each of 2 further normal crops (48 normal) and up to 4
// defect patches of each of 4 defect images (types drawn from the fold's three): a patch is a
// defect patch when at least half of it lies in the exact mask (thin scratches: at least half as
// covered as the most-covered patch). Per-epoch validation: 16 fixed such tasks on the validation
// patterns, mean patch AUROC of the method's own score.
// Evaluation episode: the texture benchmark's episode, image for image (same seeding: K support
// crops, 12 normal crops, 4 defect images per type), K in {1, 5}, support = all 225 patches of each
// crop. Fold t keeps the 12 normal queries and type t's 4. Image score = max patch score; pixel map
// = mean of the covering patches' scores. Image AUROC and pixel AUROC per episode; the episodes are
// drawn once and scored by every row (paired). "All folds" averages each episode's values over the
// folds, then takes mean [95% t interval] over episodes. (Checked: row (r) gives exactly
// run_texture_episodes' per-type values for "bayes llr (EB Psi0)" on these episodes.)
// --tune: the same evaluation on the validation patterns, with fold t's queries being the normal
// ones and the three *training* types' (never type t).
// Defaults (Adam 1e-3, inner step 5e-4, 1 inner step, batch 4, SupCon 0.1, second order; 20 x 50
// updates): meta_training.cpp's when they were set (it has since moved to Adam 1e-4, chosen on
// Fashion-MNIST's validation classes). Tried on validation (--tune, scratch fold, 20 x 50): SupCon
// 1, Adam 1e-4, LayerNorm gamma frozen: none helped BayPrAnoMeta; 64 instead of 16 meta-train
// patterns helped all three methods (MAML most), hence every remaining pattern. train() returns the
// best-validation parameters (the start included), and those are evaluated.
// Row (p): no embedding; the NIW prior (diagonal Psi0) and the calibration learned per fold through
// the discriminative loss on the fixed descriptors (meta/learned_prior.hpp), from NIW(0, 0.01,
// d + 2, I) and a calibration fitted on 32 training tasks. Its Adam step (--prior-lr) is its own:
// its coordinates are logs (kappa0, nu0 - d + 1, the diagonal of Psi0) and the prior mean, and
// Adam moves each by about the step size per update, so 1000 updates of 1e-3 move log nu0 by at
// most about 1. Chosen on validation (--tune) among {1e-3, 1e-2, 3e-2} by row (p)'s image AUROC,
// mean over K of the all-folds means (rule fixed before those runs): 0.851 / 0.868 (1e-3, the
// earlier runs' step), 0.877 / 0.871 (1e-2), 0.881 / 0.871 (3e-2, chosen) at K = 1 / 5, against
// 0.862 / 0.869 for row (r) on the same validation episodes.
// --shaped-prior adds row (p*): one prior per K, learned on tasks shaped as that K's evaluation
// episodes (K crops, all 225 patches of each as the support, the same queries; validated on such
// tasks). Why it was tried: a prior's best strength depends on the support size it meets (nu0
// against n), and the shared tasks' 160 patches are near K = 1's 225 but far from K = 5's 1125.
// Its step was chosen on validation (--tune --prior-only --shaped-prior) among {1e-3, 1e-2, 3e-2}
// by the rule above: 0.850 / 0.868, 0.875 / 0.873, 0.879 / 0.875 (3e-2) at K = 1 / 5, against
// (p) 0.881 / 0.871 and (r) 0.862 / 0.869. Held out, run once: (p*) - (r) +0.026 [+0.008, +0.045]
// / +0.003 [-0.005, +0.011], (p*) - (p) -0.007 [-0.015, +0.002] / -0.001 [-0.005, +0.004] image
// AUROC. It learns a much stronger prior for K = 5 (nu0 1063-2181, Psi0's diagonal within [0.018,
// 2.8]) and gains nothing: not the default (it adds about 50 s to --quick, 3.5 min to a full run).
// --prior-only trains only the prior rows (the embedding rows score their start), for tuning.
// Runtime (one core, Release): default ~6 min (--shaped-prior ~9.5), --quick ~100 s (4 folds
// each), smoke config ~3 s.
// Output: Markdown on stdout (progress on stderr); --out DIR also writes DIR/meta_textures.md and
// DIR/meta_textures.csv.
#include <baypr/baypr.hpp>
#include <baypr/meta/adapt.hpp>
#include <baypr/meta/baselines.hpp>
#include <baypr/meta/learned_prior.hpp>
#include <baypr/meta/mlp.hpp>
#include <baypr/meta/progress.hpp>
#include <baypr/meta/trainer.hpp>
#include <baypr_bench/textures.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "cli_args.hpp"
#include "meta_textures_data.hpp"

namespace {

namespace meta = baypr::meta;
namespace mt = meta_textures;
using Clock = std::chrono::steady_clock;

const std::vector<Eigen::Index> eval_shots = {1, 5};
constexpr int validation_tasks = 16;

struct Settings {
  double lr = 1e-3;
  double inner_lr = 5e-4;
  int inner_steps = 1;
  int meta_batch = 4;
  double supcon = 0.1;
  meta::MetaGradient order = meta::MetaGradient::second_order;
  double prior_lr = 3e-2;  // Adam for row (p), whose coordinates are logs and the prior mean
};

struct Args {
  int epochs = 20;
  int steps = 50;
  int episodes = 10;  // per held-out pattern and K
  bool quick = false, tune = false;
  bool prior_only = false;    // train only the prior rows (the embedding rows keep their start)
  bool shaped_prior = false;  // add row (p*): a prior per K on evaluation-shaped tasks
  int train_patterns = 0;     // 0: every eligible pattern not held out or validating
  bool epochs_set = false, steps_set = false, episodes_set = false;
  std::vector<int> folds = {0, 1, 2, 3};
  std::uint64_t seed = 2026;
  std::string out;
  std::string pattern_dir = mt::default_pattern_dir;
  Settings settings;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr
      << "meta_textures: " << why << "\n"
      << "usage: meta_textures [--quick] [--out DIR] [--folds all|0,1,..] [--epochs N] [--steps "
         "S]\n"
      << "                     [--episodes E] [--seed S] [--lr A] [--inner-lr B] [--meta-batch M]\n"
      << "                     [--order first|second] [--supcon W] [--train-patterns N] [--tune]\n"
      << "                     [--prior-lr C] [--prior-only] [--shaped-prior] [--patterns DIR]\n"
      << "  folds: 0 cut_paste, 1 scratch, 2 blotch, 3 hole (the held-out defect type)\n";
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  const cli::ArgReader args(argc, argv, usage);
  auto value = [&](int& i) { return args.value(i); };
  auto positive_int = [&](int& i) { return args.positive_int(i); };
  auto number = [&](int& i, bool allow_zero) { return args.number(i, allow_zero); };
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--epochs") {
      a.epochs = positive_int(i);
      a.epochs_set = true;
    } else if (arg == "--steps") {
      a.steps = positive_int(i);
      a.steps_set = true;
    } else if (arg == "--episodes") {
      a.episodes = std::max(positive_int(i), 2);
      a.episodes_set = true;
    } else if (arg == "--quick") {
      a.quick = true;
    } else if (arg == "--tune") {
      a.tune = true;
    } else if (arg == "--prior-only") {
      a.prior_only = true;
    } else if (arg == "--shaped-prior") {
      a.shaped_prior = true;
    } else if (arg == "--out") {
      a.out = value(i);
    } else if (arg == "--folds") {
      const std::string v = value(i);
      a.folds.clear();
      if (v == "all") {
        a.folds = {0, 1, 2, 3};
      } else {
        std::stringstream ss(v);
        std::string item;
        while (std::getline(ss, item, ',')) {
          if (item.size() != 1 || item[0] < '0' || item[0] > '3')
            usage("--folds needs 'all' or indices 0-3, got '" + v + "'");
          const int f = item[0] - '0';
          if (std::find(a.folds.begin(), a.folds.end(), f) != a.folds.end())
            usage("--folds lists " + item + " twice");
          a.folds.push_back(f);
        }
        if (a.folds.empty()) usage("--folds needs 'all' or indices 0-3");
      }
    } else if (arg == "--seed") {
      a.seed = args.seed(i);
    } else if (arg == "--lr") {
      a.settings.lr = number(i, false);
    } else if (arg == "--inner-lr") {
      a.settings.inner_lr = number(i, false);
    } else if (arg == "--prior-lr") {
      a.settings.prior_lr = number(i, false);
    } else if (arg == "--supcon") {
      a.settings.supcon = number(i, true);
    } else if (arg == "--meta-batch") {
      a.settings.meta_batch = positive_int(i);
    } else if (arg == "--order") {
      const std::string v = value(i);
      if (v == "first") {
        a.settings.order = meta::MetaGradient::first_order;
      } else if (v == "second") {
        a.settings.order = meta::MetaGradient::second_order;
      } else {
        usage("--order must be first or second, got '" + v + "'");
      }
    } else if (arg == "--train-patterns") {
      a.train_patterns = positive_int(i);
    } else if (arg == "--patterns") {
      a.pattern_dir = value(i);
    } else {
      usage("unknown argument '" + arg + "'");
    }
  }
  if (a.quick) {  // explicit values still win
    if (!a.epochs_set) a.epochs = 5;
    if (!a.steps_set) a.steps = 50;
    if (!a.episodes_set) a.episodes = 4;
  }
  return a;
}

std::string fixed(double v, int digits = 3) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string cell(const baypr::MeanInterval& m, bool sign = false) {
  char buf[80];
  std::snprintf(buf, sizeof buf, sign ? "%+.3f [%+.3f, %+.3f]" : "%.3f [%.3f, %.3f]", m.mean,
                m.lower, m.upper);
  return buf;
}

Eigen::VectorXd as_vector(const std::vector<double>& v) {
  return Eigen::Map<const Eigen::VectorXd>(v.data(), static_cast<Eigen::Index>(v.size()));
}

Eigen::VectorXi as_labels(const std::vector<int>& v) {
  return Eigen::Map<const Eigen::VectorXi>(v.data(), static_cast<Eigen::Index>(v.size()));
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  if (!f) throw baypr::io_error("meta_textures: cannot write '" + path.string() + "'");
}

// Patch scores of every query row given parameters and the (standardised) support rows.
using Scorer = std::function<Eigen::VectorXd(
    const Eigen::VectorXd& theta, const Eigen::MatrixXd& support, const Eigen::MatrixXd& queries)>;

struct Trained {
  int fold = 0;
  std::string name;
  meta::TrainResult result;
  double seconds = 0.0;
};

// One row of the table. Fold-independent rows (untrained, fixed descriptors) hold one parameter
// vector and are scored once per episode; the others one per evaluated fold.
struct Row {
  std::string id, name;
  Scorer score;
  // size 1 (shared) or one per evaluated fold; empty when theta_at_shots is given
  std::vector<const Eigen::VectorXd*> theta;
  // [fold][K index] -> per-episode values, episodes in (pattern, episode) order
  std::vector<std::vector<std::vector<double>>> image, pixel;
  // When not empty, [K index] -> one per evaluated fold: parameters trained for that K, in place of
  // theta.
  std::vector<std::vector<const Eigen::VectorXd*>> theta_at_shots = {};
};

// Image and pixel AUROC of the queries whose type passes `keep` (normal queries always kept).
template <class Keep>
std::pair<double, double> aurocs(const Eigen::VectorXd& patch_scores, const mt::ImageEpisode& ep,
                                 Keep keep) {
  const baypr::PatchGrid g = mt::grid();
  const Eigen::Index p = g.count();
  std::vector<double> image;
  std::vector<int> labels;
  std::vector<Eigen::ArrayXXd> maps;
  std::vector<baypr::DefectMask> masks;
  for (std::size_t q = 0; q < ep.query_types.size(); ++q) {
    const int t = ep.query_types[q];
    if (t >= 0 && !keep(t)) continue;
    const Eigen::VectorXd s = patch_scores.segment(static_cast<Eigen::Index>(q) * p, p);
    image.push_back(s.maxCoeff());
    labels.push_back(t >= 0 ? 1 : 0);
    maps.push_back(baypr::patch_scores_to_map(s, g));
    masks.push_back(ep.masks[q]);
  }
  return {baypr::auroc(as_vector(image), as_labels(labels)), baypr::pixel_auroc(maps, masks)};
}

}  // namespace

int main(int argc, char** argv) try {
  // glibc hands freed blocks of a megabyte and more back to the system (mmap, heap trimming), and
  // the next step faults their pages in again: the prior rows' steps on 1125 x 128 supports spent
  // 90% of their time in page faults (26.6 ms a step; 2.4 ms with this). The program's choice, not
  // the library's: keep freed memory for reuse. Results are unchanged.
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
  const Args args = parse(argc, argv);
  const Settings& settings = args.settings;
  const auto t_start = Clock::now();
  const auto types = baypr::all_defect_types();
  const std::size_t n_folds = args.folds.size();

  const auto all_patterns = mt::load_patterns(args.pattern_dir);
  const mt::PatternSplit split =
      mt::split_patterns(all_patterns, static_cast<std::size_t>(args.train_patterns));
  const std::vector<baypr::TextureCategory>& eval_patterns =
      args.tune ? split.validation : split.held_out;
  const auto names = [](const std::vector<baypr::TextureCategory>& v) {
    std::string s;
    for (const auto& c : v) s += (s.empty() ? "" : ", ") + c.name;
    return s;
  };

  const meta::Mlp embedding =
      meta::Mlp::paper_head(baypr::patch_feature_dim(mt::features()), mt::embedding_dim);
  const Eigen::VectorXd theta0 = embedding.initial_parameters(args.seed);
  const Eigen::VectorXd maml0 = meta::initial_parameters<meta::Maml>(embedding, theta0);
  const auto prior = baypr::NiwPrior<double>::isotropic(
      mt::embedding_dim, 0.01, static_cast<double>(mt::embedding_dim + 2), 1.0);
  // The default discriminative objective with its learned calibration (params = [theta; rho;
  // beta], the calibration's start fitted per fold on 32 training tasks at theta0), and SupCon;
  // the authors' anomaly model.
  meta::MetaOptions options;
  options.adapt.inner_steps = settings.inner_steps;
  options.adapt.inner_step_size = settings.inner_lr;
  options.order = settings.order;
  options.outer.supcon_weight = settings.supcon;
  meta::MetaOptions no_adaptation = options;
  no_adaptation.adapt.inner_steps = 0;
  const meta::VagueAnomalyModel& anomaly = options.anomaly;

  // Method M's scores after adaptation with o.
  const auto after = [&]<class M>(M, const meta::MetaOptions& o) -> Scorer {
    return [&embedding, &prior, o](const Eigen::VectorXd& theta, const Eigen::MatrixXd& s,
                                   const Eigen::MatrixXd& q) {
      return meta::scores<M>(embedding, theta, s, q, prior, o);
    };
  };
  const Scorer bayes_untrained = after(meta::BayPrAnoMeta{}, no_adaptation);
  const Scorer bayes_adapted = after(meta::BayPrAnoMeta{}, options);
  // The same on [theta; rho; beta] (the calibration does not change the ranking).
  const auto without_calibration = [](const Scorer& score) -> Scorer {
    return
        [score](const Eigen::VectorXd& joint, const Eigen::MatrixXd& s, const Eigen::MatrixXd& q) {
          return score(meta::split_calibration(joint).first, s, q);
        };
  };
  const Scorer bayes_calibrated = without_calibration(bayes_adapted);
  const Scorer proto_adapted = after(meta::ProtoMaml{}, options);
  const Scorer maml_adapted = after(meta::Maml{}, options);
  // PatchCore, memory bank = every support patch embedding (no coreset reduction).
  const Scorer patchcore = [&](const Eigen::VectorXd& theta, const Eigen::MatrixXd& s,
                               const Eigen::MatrixXd& q) {
    baypr::PatchCoreOptions o;
    o.coreset.ratio = 1.0;
    baypr::PatchCoreScorer<double> scorer(o);
    scorer.fit(embedding.forward(theta, s));
    return Eigen::VectorXd(scorer.score(embedding.forward(theta, q)));
  };
  // The benchmark's "bayes llr (EB Psi0)" on the fixed 128-d descriptors (no embedding).
  const Scorer fixed_bayes = [](const Eigen::VectorXd&, const Eigen::MatrixXd& s,
                                const Eigen::MatrixXd& q) {
    baypr::BayesianScorerOptions o;
    o.empirical_psi_scale = true;
    o.kappa0 = 0.01;  // as the texture benchmark
    baypr::BayesianScorer scorer(o);
    scorer.fit(s);
    return Eigen::VectorXd(scorer.score(q));
  };
  // The same score on the fixed descriptors with a learned prior: params = [prior coordinates; rho;
  // beta] (meta/learned_prior.hpp), trained per fold through the discriminative loss; the
  // calibration does not change the ranking.
  const Scorer learned_prior_bayes =
      [&anomaly](const Eigen::VectorXd& joint, const Eigen::MatrixXd& s, const Eigen::MatrixXd& q) {
        baypr::BayesianScorerOptions o;
        o.prior = meta::split_prior_joint(joint).first;
        o.anomaly_scale = anomaly.scale;
        o.anomaly_dof = anomaly.dof;
        baypr::BayesianScorer scorer(o);
        scorer.fit(s);
        return Eigen::VectorXd(scorer.score(q));
      };
  // Its start: NIW(0, 0.01, d + 2, I) on the standardised descriptors (d = 128), calibration fitted
  // to the scores of 32 training tasks of the fold.
  const Eigen::Index descriptor_dim = baypr::patch_feature_dim(mt::features());
  const auto descriptor_prior = baypr::NiwPrior<double>::isotropic(
      descriptor_dim, 0.01, static_cast<double>(descriptor_dim + 2), 1.0);
  meta::MetaOptions discriminative;
  discriminative.outer.objective = meta::Objective::discriminative;

  // Per-fold training.
  const double load_seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
  // fold-major: BayPrAnoMeta, Proto-MAML, MAML, learned prior (p), and with --shaped-prior the
  // learned priors of (p*), one per K
  std::vector<Trained> trained;
  const mt::PatchTaskShape shape;
  for (std::size_t fi = 0; fi < n_folds; ++fi) {
    const int fold = args.folds[fi];
    std::vector<baypr::DefectType> train_types;
    for (std::size_t t = 0; t < types.size(); ++t) {
      if (static_cast<int>(t) != fold) train_types.push_back(types[t]);
    }
    const mt::PatchTaskSampler sampler(split.train, train_types, shape);
    const mt::PatchTaskSampler validation_sampler(split.validation, train_types, shape);
    std::vector<meta::MetaEpisode> validation;
    std::mt19937_64 vrng(
        baypr::derive_seed(args.seed, {0x76616cULL, static_cast<std::uint64_t>(fold)}));
    for (int v = 0; v < validation_tasks; ++v)
      validation.push_back(validation_sampler.sample(vrng));
    const auto validate_with = [](const std::vector<meta::MetaEpisode>& tasks,
                                  const Scorer& score) {
      return [&tasks, score](const Eigen::VectorXd& theta) {
        double sum = 0.0;
        for (const auto& e : tasks) {
          sum += baypr::auroc(score(theta, e.support, e.queries), e.labels);
        }
        return sum / static_cast<double>(tasks.size());
      };
    };
    meta::TrainerOptions training;
    training.epochs = args.epochs;
    training.steps_per_epoch = args.steps;
    training.meta_batch = settings.meta_batch;
    training.seed = baypr::derive_seed(args.seed, {static_cast<std::uint64_t>(fold)});
    training.observer = meta::progress_bar();
    // Each method's Adam step is its own argument (the prior rows take settings.prior_lr), and so
    // are its tasks and validation tasks; --prior-only skips the embedding rows' training (0
    // epochs: they keep their start).
    const auto run = [&](const std::string& name, const Eigen::VectorXd& start, auto step,
                         const Scorer& score, double lr, bool embedding_row,
                         const mt::PatchTaskSampler& tasks,
                         const std::vector<meta::MetaEpisode>& tasks_validation) {
      std::cerr << "meta_textures: fold " << fold << " (held out "
                << baypr::defect_name(types[static_cast<std::size_t>(fold)]) << "): training "
                << name << "\n";
      const auto t0 = Clock::now();
      Trained t;
      t.fold = fold;
      t.name = name;
      meta::TrainerOptions o = training;
      o.adam.lr = lr;
      if (embedding_row && args.prior_only) o.epochs = 0;
      t.result = meta::train(start, step, tasks, validate_with(tasks_validation, score), o);
      t.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      trained.push_back(std::move(t));
    };
    {
      std::mt19937_64 crng(
          baypr::derive_seed(args.seed, {0x626179ULL, static_cast<std::uint64_t>(fold)}));
      std::vector<double> scores;
      std::vector<int> labels;
      for (int i = 0; i < 32; ++i) {
        const meta::MetaEpisode e = sampler.sample(crng);
        const Eigen::VectorXd sc = bayes_adapted(theta0, e.support, e.queries);
        scores.insert(scores.end(), sc.data(), sc.data() + sc.size());
        labels.insert(labels.end(), e.labels.begin(), e.labels.end());
      }
      meta::MetaStepper<meta::Mlp> stepper(embedding);
      run(
          "BayPrAnoMeta",
          meta::with_calibration(theta0,
                                 meta::fit_calibration(as_vector(scores), as_labels(labels))),
          [&](const Eigen::VectorXd& joint, const meta::MetaEpisode& e) {
            return meta::calibrated_meta_step(stepper, joint, e, prior, options);
          },
          bayes_calibrated, settings.lr, true, sampler, validation);
    }
    meta::MetaStepper<meta::Mlp, meta::ProtoMaml> proto_stepper(embedding);
    run(
        "Proto-MAML", theta0,
        [&](const Eigen::VectorXd& theta, const meta::MetaEpisode& e) {
          return proto_stepper.step(theta, e, prior, options);
        },
        proto_adapted, settings.lr, true, sampler, validation);
    meta::MetaStepper<meta::Mlp, meta::Maml> maml_stepper(embedding);
    run(
        "MAML", maml0,
        [&](const Eigen::VectorXd& params, const meta::MetaEpisode& e) {
          return maml_stepper.step(params, e, prior, options);
        },
        maml_adapted, settings.lr, true, sampler, validation);
    // The learned prior on the fixed descriptors, from NIW(0, 0.01, d + 2, I) and a calibration
    // fitted on 32 tasks of `tasks` drawn with `calibration_seed`.
    const auto learn_prior = [&](const std::string& name, const mt::PatchTaskSampler& tasks,
                                 const std::vector<meta::MetaEpisode>& tasks_validation,
                                 std::uint64_t calibration_seed) {
      std::mt19937_64 crng(calibration_seed);
      std::vector<double> scores;
      std::vector<int> labels;
      for (int i = 0; i < 32; ++i) {
        const meta::MetaEpisode e = tasks.sample(crng);
        baypr::BayesianScorerOptions o;
        o.prior = descriptor_prior;
        baypr::BayesianScorer scorer(o);
        const Eigen::VectorXd sc = scorer.fit(e.support).score(e.queries);
        scores.insert(scores.end(), sc.data(), sc.data() + sc.size());
        labels.insert(labels.end(), e.labels.begin(), e.labels.end());
      }
      const meta::Calibration start = meta::fit_calibration(as_vector(scores), as_labels(labels));
      run(
          name, meta::prior_joint_parameters(descriptor_prior, start),
          [&](const Eigen::VectorXd& joint, const meta::MetaEpisode& e) {
            return meta::learned_prior_step(e.support, e.queries, e.labels, joint, discriminative);
          },
          learned_prior_bayes, settings.prior_lr, false, tasks, tasks_validation);
    };
    learn_prior("learned prior (fixed descriptors)", sampler, validation,
                baypr::derive_seed(args.seed, {0x63616cULL, static_cast<std::uint64_t>(fold)}));
    // Row (p*): one prior per K, learned on tasks shaped as that K's evaluation episodes (K normal
    // crops, all 225 patches of each as the support; the same queries), validated on such tasks.
    for (const Eigen::Index k : args.shaped_prior ? eval_shots : std::vector<Eigen::Index>{}) {
      mt::PatchTaskShape evaluation_shape = shape;
      evaluation_shape.shots = k;
      evaluation_shape.support_patches = mt::grid().count();
      const mt::PatchTaskSampler shaped(split.train, train_types, evaluation_shape);
      const mt::PatchTaskSampler shaped_validation(split.validation, train_types, evaluation_shape);
      std::vector<meta::MetaEpisode> shaped_tasks;
      std::mt19937_64 krng(baypr::derive_seed(
          args.seed,
          {0x76616cULL, static_cast<std::uint64_t>(fold), static_cast<std::uint64_t>(k)}));
      for (int v = 0; v < validation_tasks; ++v)
        shaped_tasks.push_back(shaped_validation.sample(krng));
      learn_prior("learned prior (fixed descriptors), K = " + std::to_string(k) + " tasks", shaped,
                  shaped_tasks,
                  baypr::derive_seed(args.seed, {0x63616cULL, static_cast<std::uint64_t>(fold),
                                                 static_cast<std::uint64_t>(k)}));
    }
  }
  const double train_seconds =
      std::chrono::duration<double>(Clock::now() - t_start).count() - load_seconds;
  const std::size_t methods_per_fold = args.shaped_prior ? 6 : 4;
  const auto per_fold = [&](std::size_t method) {
    std::vector<const Eigen::VectorXd*> v;
    for (std::size_t fi = 0; fi < n_folds; ++fi)
      v.push_back(&trained[methods_per_fold * fi + method].result.theta);
    return v;
  };
  const Eigen::VectorXd unused;  // the fixed-descriptor row has no parameters

  std::vector<Row> rows = {
      {"r",
       "fixed 128-d descriptors + Bayesian llr (EB Psi0), the benchmark's",
       fixed_bayes,
       {&unused},
       {},
       {}},
      {"a",
       "untrained embedding + Bayesian llr (0 inner steps)",
       bayes_untrained,
       {&theta0},
       {},
       {}},
      {"a'", "untrained embedding + PatchCore (coreset 100%)", patchcore, {&theta0}, {}, {}},
      {"b",
       "BayPrAnoMeta (discriminative; 1 inner step + Bayesian llr)",
       bayes_calibrated,
       per_fold(0),
       {},
       {}},
      {"c", "Proto-MAML (1 inner step + prototype distance)", proto_adapted, per_fold(1), {}, {}},
      {"d", "MAML (1 inner step + linear-head logit)", maml_adapted, per_fold(2), {}, {}},
      {"e",
       "BayPrAnoMeta-trained embedding + PatchCore (coreset 100%)",
       without_calibration(patchcore),
       per_fold(0),
       {},
       {}},
      {"p",
       "fixed 128-d descriptors + Bayesian llr, prior and calibration learned (discriminative)",
       learned_prior_bayes,
       per_fold(3),
       {},
       {}},
  };
  if (args.shaped_prior) {
    rows.push_back({"p*",
                    "the same, one prior per K learned on tasks shaped as that K's evaluation",
                    learned_prior_bayes,
                    {},
                    {},
                    {},
                    {per_fold(4), per_fold(5)}});
  }
  constexpr std::size_t ref_r = 0, ref_a = 1, ref_b = 3;
  for (auto& row : rows) {
    row.image.assign(n_folds, std::vector<std::vector<double>>(eval_shots.size()));
    row.pixel = row.image;
  }

  std::cerr << "meta_textures: evaluating " << rows.size() << " rows on "
            << eval_shots.size() * eval_patterns.size() * static_cast<std::size_t>(args.episodes)
            << " episodes\n";
  const auto t_eval = Clock::now();
  for (std::size_t ki = 0; ki < eval_shots.size(); ++ki) {
    for (std::size_t c = 0; c < eval_patterns.size(); ++c) {
      for (int e = 0; e < args.episodes; ++e) {
        const mt::ImageEpisode ep =
            mt::image_episode(eval_patterns, c, eval_shots[ki], e, args.seed);
        for (auto& row : rows) {
          const auto& theta = row.theta_at_shots.empty() ? row.theta : row.theta_at_shots[ki];
          Eigen::VectorXd shared;
          if (theta.size() == 1) shared = row.score(*theta[0], ep.support, ep.queries);
          for (std::size_t fi = 0; fi < n_folds; ++fi) {
            const Eigen::VectorXd s =
                theta.size() == 1 ? shared : row.score(*theta[fi], ep.support, ep.queries);
            const int fold = args.folds[fi];
            const auto [image, pixel] = args.tune
                                            ? aurocs(s, ep, [fold](int t) { return t != fold; })
                                            : aurocs(s, ep, [fold](int t) { return t == fold; });
            row.image[fi][ki].push_back(image);
            row.pixel[fi][ki].push_back(pixel);
          }
        }
      }
    }
  }
  const double eval_seconds = std::chrono::duration<double>(Clock::now() - t_eval).count();

  // Per-episode values averaged over the evaluated folds.
  const auto fold_mean = [&](const std::vector<std::vector<std::vector<double>>>& v,
                             std::size_t ki) {
    Eigen::VectorXd m = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(v[0][ki].size()));
    for (std::size_t fi = 0; fi < n_folds; ++fi) m += as_vector(v[fi][ki]);
    return Eigen::VectorXd(m / static_cast<double>(n_folds));
  };

  std::ostringstream md, csv;
  csv << "section,metric,fold,row,method,K,mean,lower,upper,episodes\n";
  const auto csv_line = [&](const std::string& section, const std::string& metric,
                            const std::string& fold, const Row& row, std::size_t ki,
                            const baypr::MeanInterval& m) {
    csv.precision(6);
    csv << section << "," << metric << "," << fold << "," << row.id << ",\"" << row.name << "\","
        << eval_shots[ki] << "," << m.mean << "," << m.lower << "," << m.upper << "," << m.count
        << "\n";
  };
  std::string fold_names;
  for (const int f : args.folds)
    fold_names += (fold_names.empty() ? "" : ", ") +
                  std::string(baypr::defect_name(types[static_cast<std::size_t>(f)]));

  md << "## Meta-training on textures: leave one defect type out\n\n"
     << (args.tune ? "**Tuning run (--tune): validation patterns, the folds' *training* defect "
                     "types; not a result.**\n\n"
                   : std::string())
     << (args.prior_only ? "**--prior-only: rows (b)-(e) were not trained (they score the "
                           "start).**\n\n"
                         : std::string())
     << "Run: " << (args.quick ? "`--quick`" : "default")
     << ", folds (held-out defect type): " << fold_names << "; " << args.epochs << " epoch(s) x "
     << args.steps << " updates x " << settings.meta_batch << " tasks per fold and method; "
     << args.episodes << " evaluation episodes per " << (args.tune ? "validation" : "held-out")
     << " pattern and K, seed " << args.seed << ".\n\n"
     << "Patterns (" << all_patterns.size()
     << " eligible): " << (args.tune ? "validation (evaluated)" : "held out") << ": "
     << names(eval_patterns) << ". Meta-train: " << split.train.size()
     << (args.train_patterns == 0 ? " (every other eligible pattern)" : " (evenly spaced)")
     << ". Validation" << (args.tune ? "" : " (per-epoch patch AUROC only)") << ": "
     << names(split.validation) << ".\n\n"
     << "Inputs: the benchmark's fixed 128-d patch descriptors (225 patches per 64 x 64 crop), "
        "standardised per "
        "episode with the support patches' statistics. Embedding: Mlp::paper_head(128, 32), "
     << embedding.parameter_count() << " parameters, the same initial parameters (seed "
     << args.seed
     << ") for every row and fold (MAML: plus a zero linear head). Prior NIW(0, 0.01, d + 2, I); "
        "anomaly model "
        "t(0, 100 I, 2). Training tasks: 5 normal crops x 32 support patches"
     << (args.shaped_prior ? " (row (p*): K crops x all 225 patches, the evaluation's support, one "
                             "prior per K)"
                           : "")
     << "; queries 48 normal patches + up to 16 defect patches of the fold's three training types; "
        "Adam lr "
     << settings.lr << " (prior rows: " << settings.prior_lr << "), inner SGD "
     << settings.inner_steps << " step of " << settings.inner_lr << ", "
     << (settings.order == meta::MetaGradient::second_order ? "exact second-order" : "first-order")
     << " meta-gradients, SupCon " << settings.supcon << " (BayPrAnoMeta only).\n\n"
     << "Evaluation: the texture benchmark's episodes (K normal support crops, all their patches), "
        "fold t keeps "
     << (args.tune ? "the 12 normal and the 12 training-type defect queries"
                   : "the 12 normal and the 4 type-t defect queries")
     << "; image score = max patch score, pixel map = mean of the covering patches' scores. Every "
        "row scores the "
        "same episodes. \"All folds\": each episode's value averaged over the folds, then mean "
        "[95% t interval] over "
        "episodes. (r), (a), (a') see no defects, so differ between folds only through the query "
        "subset.\n\n";

  const auto metric_section = [&](const char* title, const char* metric, bool image) {
    md << "### " << title << ", all folds\n\n| row |";
    for (const Eigen::Index k : eval_shots) md << " K = " << k << " |";
    for (const Eigen::Index k : eval_shots) md << " - (a), K = " << k << " |";
    md << "\n|---|";
    for (std::size_t i = 0; i < 2 * eval_shots.size(); ++i) md << "---|";
    md << "\n";
    for (const auto& row : rows) {
      const auto& v = image ? row.image : row.pixel;
      const auto& va = image ? rows[ref_a].image : rows[ref_a].pixel;
      md << "| (" << row.id << ") " << row.name << " |";
      for (std::size_t ki = 0; ki < eval_shots.size(); ++ki) {
        const auto m = baypr::mean_interval(fold_mean(v, ki));
        md << " " << cell(m) << " |";
        csv_line("all_folds", metric, "all", row, ki, m);
      }
      for (std::size_t ki = 0; ki < eval_shots.size(); ++ki) {
        if (&row == &rows[ref_a]) {
          md << " - |";
          continue;
        }
        const auto m = baypr::mean_interval(Eigen::VectorXd(fold_mean(v, ki) - fold_mean(va, ki)));
        md << " " << cell(m, true) << " |";
        csv_line("paired_vs_a", metric, "all", row, ki, m);
      }
      md << "\n";
    }
    md << "\n";
  };
  metric_section("Image AUROC", "image_auroc", true);
  metric_section("Pixel AUROC", "pixel_auroc", false);

  md << "### Per fold (held-out type), image / pixel AUROC, mean over episodes\n\n| row |";
  for (const Eigen::Index k : eval_shots) {
    for (const int f : args.folds)
      md << " " << baypr::defect_name(types[static_cast<std::size_t>(f)]) << ", K = " << k << " |";
  }
  md << "\n|---|";
  for (std::size_t i = 0; i < eval_shots.size() * n_folds; ++i) md << "---|";
  md << "\n";
  for (const auto& row : rows) {
    md << "| (" << row.id << ") |";
    for (std::size_t ki = 0; ki < eval_shots.size(); ++ki) {
      for (std::size_t fi = 0; fi < n_folds; ++fi) {
        const auto mi = baypr::mean_interval(as_vector(row.image[fi][ki]));
        const auto mp = baypr::mean_interval(as_vector(row.pixel[fi][ki]));
        md << " " << fixed(mi.mean) << " / " << fixed(mp.mean) << " |";
        const std::string fold(baypr::defect_name(types[static_cast<std::size_t>(args.folds[fi])]));
        csv_line("fold", "image_auroc", fold, row, ki, mi);
        csv_line("fold", "pixel_auroc", fold, row, ki, mp);
      }
    }
    md << "\n";
  }
  md << "\n### Paired differences, all folds (image AUROC / pixel AUROC)\n\n| difference |";
  for (const Eigen::Index k : eval_shots)
    md << " image, K = " << k << " | pixel, K = " << k << " |";
  md << "\n|---|";
  for (std::size_t i = 0; i < 2 * eval_shots.size(); ++i) md << "---|";
  md << "\n";
  std::vector<std::pair<std::size_t, std::size_t>> differences = {
      {ref_b, ref_a}, {ref_b, ref_r}, {ref_b, 4}, {ref_b, 5}, {6, 2}, {7, ref_r}};
  if (args.shaped_prior) {
    differences.emplace_back(8, ref_r);
    differences.emplace_back(8, 7);
  }
  for (const auto& [r, ref] : differences) {
    md << "| (" << rows[r].id << ") - (" << rows[ref].id << ") |";
    for (std::size_t ki = 0; ki < eval_shots.size(); ++ki) {
      for (const bool image : {true, false}) {
        const auto& v = image ? rows[r].image : rows[r].pixel;
        const auto& w = image ? rows[ref].image : rows[ref].pixel;
        const auto m = baypr::mean_interval(Eigen::VectorXd(fold_mean(v, ki) - fold_mean(w, ki)));
        md << " " << cell(m, true) << " |";
        csv_line("paired_" + rows[r].id + "_vs_" + rows[ref].id,
                 image ? "image_auroc" : "pixel_auroc", "all", rows[r], ki, m);
      }
    }
    md << "\n";
  }

  md << "\n### Training\n\n| fold (held out) | method | seconds | first-epoch outer loss | "
        "last-epoch outer loss | "
        "validation patch AUROC before -> best -> last |\n|---|---|---|---|---|---|\n";
  for (const auto& t : trained) {
    const auto& h = t.result.history;
    double best = t.result.initial_validation;
    for (const auto& r : h) best = std::max(best, r.validation);
    md << "| " << baypr::defect_name(types[static_cast<std::size_t>(t.fold)]) << " | " << t.name
       << " | " << fixed(t.seconds, 1) << " | "
       << (h.empty() ? std::string("-") : fixed(h.front().outer_loss, 4)) << " | "
       << (h.empty() ? std::string("-") : fixed(h.back().outer_loss, 4)) << " | "
       << fixed(t.result.initial_validation) << " -> " << fixed(best) << " -> "
       << (h.empty() ? std::string("-") : fixed(h.back().validation)) << " |\n";
  }
  md << "\nThe learned prior" << (args.shaped_prior ? "s of rows (p) and (p*)" : " of row (p)")
     << ", the parameters evaluated (start: kappa0 0.01, nu0 d + 2 = " << descriptor_dim + 2
     << ", Psi0 = I, mu0 = 0):\n\n| fold (held out) | row | kappa0 | nu0 | "
        "Psi0 diagonal: geometric mean [min, max] | mu0 RMS |\n|---|---|---|---|---|---|\n";
  for (std::size_t fi = 0; fi < n_folds; ++fi) {
    for (std::size_t m = 3; m < methods_per_fold; ++m) {
      const Trained& t = trained[methods_per_fold * fi + m];
      const auto learned = meta::split_prior_joint(t.result.theta).first;
      const Eigen::ArrayXd psi = learned.scatter().diagonal().array();
      md << "| " << baypr::defect_name(types[static_cast<std::size_t>(t.fold)]) << " | "
         << (m == 3 ? std::string("(p)") : "(p*), K = " + std::to_string(eval_shots[m - 4]))
         << " | " << fixed(learned.kappa(), 4) << " | " << fixed(learned.nu(), 1) << " | "
         << fixed(std::exp(psi.log().mean())) << " [" << fixed(psi.minCoeff()) << ", "
         << fixed(psi.maxCoeff()) << "] | "
         << fixed(learned.mean().norm() / std::sqrt(static_cast<double>(learned.dim()))) << " |\n";
    }
  }
  md << "\ntrain() returns the best-validation parameters (the start included), and those are "
        "evaluated. Outer losses are not comparable across "
        "methods (BayPrAnoMeta: discriminative + SupCon; the learned prior: discriminative; the "
        "others: logistic). "
        "Validation: "
     << validation_tasks
     << " fixed patch-level tasks on the validation patterns with the fold's training types, each "
        "method's own score after its inner step.\n\nPatterns loaded in "
     << fixed(load_seconds, 1) << " s, training " << fixed(train_seconds, 1) << " s, evaluation "
     << fixed(eval_seconds, 1) << " s, total "
     << fixed(std::chrono::duration<double>(Clock::now() - t_start).count(), 1) << " s.\n";

  std::cout << md.str();
  if (!args.out.empty()) {
    const std::filesystem::path dir(args.out);
    std::filesystem::create_directories(dir);
    write_file(dir / "meta_textures.md", md.str());
    write_file(dir / "meta_textures.csv", csv.str());
    std::cerr << "meta_textures: wrote " << (dir / "meta_textures.md").string() << " and "
              << (dir / "meta_textures.csv").string() << "\n";
  }
  return 0;
} catch (const std::exception& e) {
  std::cerr << "meta_textures: " << e.what() << "\n";
  return 1;
}
