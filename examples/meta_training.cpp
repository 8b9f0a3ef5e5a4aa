// Meta-training on Fashion-MNIST: does BayPrAnoMeta (or Proto-MAML, or MAML) improve held-out
// one-class few-shot AUROC over the same embedding left untrained, and which objective does?
//
//   meta_training [--quick] [--out DIR] [--seeds N] [--epochs N] [--patience P] [--steps S]
//                 [--eval-episodes E] [--seed S] [--log FILE] [--checkpoints DIR] [--resume]
//                 [--lr A] [--inner-lr B] [--meta-batch M] [--order first|second] [--supcon W]
//                 [--refit] [--data DIR]
//
// Data, splits and settings: examples/meta_fashion_data.hpp (shared with
// tests/meta_fashion.test.cpp). /usr/share/datasets/fashion-mnist (Debian's
// dataset-fashion-mnist). Pixels in [0, 1] are standardised with training-split statistics
// (PixelStandardiser), then reduced 784 -> 128 by a fixed Gaussian projection (seed 1, the
// few-shot benchmark's proj-128). No pretrained network: the embedding starts random.
// Classes: meta-train {0, 1, 2} (T-shirt, Trouser, Pullover; tasks from the training split),
// validation {3, 4, 5} (Dress, Coat, Sandal: the held-out protocol on classes never trained on;
// all that may guide a choice, and what train() keeps the best parameters by), held out {6..9}
// (Shirt, Sneaker, Bag, Ankle boot: touched only by the final evaluation).
// Embedding: Mlp::paper_head(128, 32) = Linear -> ReLU -> LayerNorm, seeded initial parameters
// shared by every method of a seed (MAML appends a zero linear head). Prior NIW(mu0 = 0,
// kappa0 = 0.01, nu0 = d + 2, Psi0 = I) (the authors'); anomaly model t(0, 100 I, 2).
// Objectives (meta/adapt.hpp, OuterOptions): BayPrAnoMeta trains with the discriminative default
// (class-balanced logistic loss on the calibrated score exp(rho) s + beta, rho and beta learned
// with theta from a start fitted on 32 training episodes at theta_0), and, for comparison, with
// the paper's generative loss and the ranking surrogate; each with the SupCon term (0.1).
// Seeds: every method is trained --seeds times (initial parameters and task stream from seed
// S + i); each held-out episode's AUROC is averaged over the seeds, then compared per episode
// (paired). Intervals: 95% two-level bootstrap, classes then episodes within a class
// (baypr::grouped_bootstrap_interval): with four held-out classes they are honest about how few
// classes there are. Each training runs up to --epochs (60) epochs of --steps (100) updates and
// stops after --patience (10) epochs without a new best validation value.
// --quick (scripts/demo): 2 seeds x at most 25 epochs, 20 episodes per class and K.
// --refit: once validation has chosen a run's epoch E, train that run again from the same start
// for E epochs on tasks of the meta-train and validation classes together (6 classes; the
// held-out ones stay out), without validation, and evaluate those parameters (a run whose best
// epoch is 0 keeps its start). The usual last step once settings are chosen: the final model
// learns from every class that is not held out. The validation columns of the training table are
// the first runs'.
// Evaluation episode: normal class c in {6..9}; K in {1, 5} normal training images as support;
// 12 normal (c) + 4 anomalous (other held-out classes) test images as queries; drawn once, the
// same for every row and seed.
// Prior rows: (lp) the prior (mu0, kappa0, nu0, diagonal Psi0) and the calibration trained through
// the discriminative loss with the embedding frozen at theta_0 (meta/learned_prior.hpp); (b+lp) the
// same with the embedding frozen at (b)'s trained parameters, from (b)'s calibration; (ml) and
// (b-ml) the prior fitted by type-II maximum likelihood (baypr::fit_prior) over 600 support sets of
// 5 meta-train training images embedded at theta_0, or at (b)'s parameters and scored as (b).
// Calibration: for the discriminative rows, the expected calibration error (10 equal-width bins)
// of sigma(exp(rho) s + beta) over every held-out query, averaged over seeds.
// Output: Markdown on stdout (progress on stderr); --out DIR also writes DIR/meta.md (the same
// Markdown) and DIR/meta.csv (one line per row, K and statistic).
// Logs (--log FILE) and checkpoints (--checkpoints DIR, --resume): one per method and seed, FILE
// with ".<method>.s<i>" inserted before its extension, DIR/<method>.s<i>.
#include <baypr/baypr.hpp>
#include <baypr/meta/adapt.hpp>
#include <baypr/meta/baselines.hpp>
#include <baypr/meta/learned_anomaly.hpp>
#include <baypr/meta/learned_prior.hpp>
#include <baypr/meta/mlp.hpp>
#include <baypr/meta/progress.hpp>
#include <baypr/meta/trainer.hpp>

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
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "cli_args.hpp"
#include "meta_fashion_data.hpp"

namespace {

namespace meta = baypr::meta;
namespace mf = meta_fashion;
using Clock = std::chrono::steady_clock;

const std::vector<Eigen::Index> eval_shots = {1, 5};

struct Args {
  int seeds = 5;
  int epochs = 60;
  int patience = 10;  // stop a training after this many epochs without a new best validation
  int steps = 100;
  int eval_episodes = 50;  // per held-out class and K
  bool quick = false;
  bool seeds_set = false, epochs_set = false, steps_set = false, eval_set = false;
  std::uint64_t seed = 2026;
  std::string out;
  std::string log;
  std::string checkpoints;
  bool resume = false;
  bool refit = false;
  mf::Settings settings;
  std::string data_dir = mf::default_data_dir;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr
      << "meta_training: " << why << "\n"
      << "usage: meta_training [--quick] [--out DIR] [--seeds N] [--epochs N] [--patience P] "
         "[--steps S] "
         "[--eval-episodes E] [--seed S]\n"
      << "                     [--log FILE] [--checkpoints DIR] [--resume] [--lr A] [--inner-lr "
         "B]\n"
      << "                     [--meta-batch M] [--order first|second] [--supcon W] [--refit] "
         "[--data DIR]\n";
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  const cli::ArgReader args(argc, argv, usage);
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--seeds") {
      a.seeds = args.positive_int(i);
      a.seeds_set = true;
    } else if (arg == "--patience") {
      a.patience = args.positive_int(i);
    } else if (arg == "--epochs") {
      a.epochs = args.positive_int(i);
      a.epochs_set = true;
    } else if (arg == "--steps") {
      a.steps = args.positive_int(i);
      a.steps_set = true;
    } else if (arg == "--eval-episodes") {
      a.eval_episodes = std::max(args.positive_int(i), 2);
      a.eval_set = true;
    } else if (arg == "--quick") {
      a.quick = true;
    } else if (arg == "--out") {
      a.out = args.value(i);
    } else if (arg == "--seed") {
      a.seed = args.seed(i);
    } else if (arg == "--log") {
      a.log = args.value(i);
    } else if (arg == "--checkpoints") {
      a.checkpoints = args.value(i);
    } else if (arg == "--resume") {
      a.resume = true;
    } else if (arg == "--lr") {
      a.settings.lr = args.number(i, false);
    } else if (arg == "--inner-lr") {
      a.settings.inner_lr = args.number(i, false);
    } else if (arg == "--supcon") {
      a.settings.supcon = args.number(i, true);
    } else if (arg == "--meta-batch") {
      a.settings.meta_batch = args.positive_int(i);
    } else if (arg == "--order") {
      const std::string v = args.value(i);
      if (v == "first") {
        a.settings.order = meta::MetaGradient::first_order;
      } else if (v == "second") {
        a.settings.order = meta::MetaGradient::second_order;
      } else {
        usage("--order must be first or second, got '" + v + "'");
      }
    } else if (arg == "--refit") {
      a.refit = true;
    } else if (arg == "--data") {
      a.data_dir = args.value(i);
    } else {
      usage("unknown argument '" + arg + "'");
    }
  }
  if (a.quick) {  // explicit values still win
    if (!a.seeds_set) a.seeds = 2;
    if (!a.epochs_set) a.epochs = 25;
    if (!a.eval_set) a.eval_episodes = 20;
  }
  if (a.resume && a.checkpoints.empty()) usage("--resume needs --checkpoints DIR");
  return a;
}

// Scores of one episode's queries for parameters (a method's own layout: theta, theta + rho, beta,
// theta + anomaly coordinates, or theta + MAML head).
using Scorer =
    std::function<Eigen::VectorXd(const Eigen::VectorXd& params, const meta::MetaEpisode&)>;
using Step = std::function<meta::MetaStep(const Eigen::VectorXd& params, const meta::MetaEpisode&)>;

std::filesystem::path tagged(const std::string& path, const std::string& tag) {
  if (path.empty()) return {};
  const std::filesystem::path p(path);
  return p.parent_path() / (p.stem().string() + "." + tag + p.extension().string());
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

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  if (!f) throw baypr::io_error("meta_training: cannot write '" + path.string() + "'");
}

// Expected calibration error of probabilities p for labels y: sum over 10 equal-width bins of
// (bin size / n) |mean label - mean probability|.
double expected_calibration_error(const std::vector<double>& p, const std::vector<int>& y) {
  constexpr int bins = 10;
  double count[bins] = {}, label[bins] = {}, prob[bins] = {};
  for (std::size_t i = 0; i < p.size(); ++i) {
    const int b = std::min(bins - 1, static_cast<int>(p[i] * bins));
    count[b] += 1.0;
    label[b] += y[i];
    prob[b] += p[i];
  }
  double ece = 0.0;
  for (int b = 0; b < bins; ++b) {
    if (count[b] > 0.0) ece += std::abs(label[b] - prob[b]) / static_cast<double>(p.size());
  }
  return ece;
}

// A trained method: how to build its start, one step, its validation / evaluation score.
struct Method {
  std::string tag, name;
  std::function<Eigen::VectorXd(const Eigen::VectorXd& theta0)> start;
  std::function<Step()> make_step;  // a fresh step (with its own MetaStepper) per training
  Scorer score;
  bool calibrated = false;  // params = [theta; rho; beta] (or [prior coordinates; rho; beta])
  bool learned_anomaly = false;
  // Not null: params = [prior coordinates; rho; beta], the embedding frozen at *frozen (set per
  // seed before this method trains).
  const Eigen::VectorXd* frozen = nullptr;
};

struct Trained {
  meta::TrainResult result;
  double seconds = 0.0;
};

}  // namespace

int main(int argc, char** argv) try {
  const Args args = parse(argc, argv);
  const mf::Settings& settings = args.settings;
  const auto t_start = Clock::now();

  const mf::Data data = mf::load(args.data_dir);
  const meta::ClassTaskSampler sampler = mf::training_sampler(data);
  const meta::ClassTaskSampler refit_sampler = mf::refit_sampler(data);
  const auto validation = mf::validation_episodes(data, args.seed);
  const auto evaluation = mf::evaluation_episodes(data, eval_shots, args.eval_episodes, args.seed);

  const meta::Mlp embedding = mf::embedding();
  const auto prior = mf::prior();
  // The settings as meta/ options: with the inner steps, and with none (the untrained rows); the
  // authors' anomaly model t(0, 100 I, 2).
  const meta::MetaOptions options = mf::meta_options(settings, settings.inner_steps);
  const meta::MetaOptions no_adaptation = mf::meta_options(settings, 0);
  const meta::VagueAnomalyModel& anomaly = options.anomaly;

  // Bayesian llr score after the inner steps, for parameters [theta], [theta; rho; beta] or
  // [theta; anomaly coordinates].
  const auto bayes = [&](const meta::MetaOptions& o, bool calibrated, bool learned) -> Scorer {
    return [&embedding, &prior, o, calibrated, learned](const Eigen::VectorXd& params,
                                                        const meta::MetaEpisode& e) {
      Eigen::VectorXd theta = params;
      meta::MetaOptions with = o;
      if (calibrated) theta = meta::split_calibration(params).first;
      if (learned) std::tie(theta, with.anomaly) = meta::split_joint_parameters(params);
      return meta::scores(embedding, theta, e.support, e.queries, prior, with);
    };
  };
  // The same score with a per-seed type-II maximum likelihood prior (set before each evaluation).
  std::optional<baypr::NiwPrior<double>> ml_prior_untrained, ml_prior_trained;
  const auto bayes_ml = [&](const std::optional<baypr::NiwPrior<double>>& ml,
                            const meta::MetaOptions& o, bool calibrated) -> Scorer {
    return [&embedding, &ml, o, calibrated](const Eigen::VectorXd& params,
                                            const meta::MetaEpisode& e) {
      const Eigen::VectorXd theta = calibrated ? meta::split_calibration(params).first : params;
      return meta::scores(embedding, theta, e.support, e.queries, *ml, o);
    };
  };
  // A baseline's score after adaptation with options (no_adaptation: the untrained prototype).
  const auto baseline = [&]<class M>(M, const meta::MetaOptions& o) -> Scorer {
    return [&embedding, &prior, o](const Eigen::VectorXd& params, const meta::MetaEpisode& e) {
      return meta::scores<M>(embedding, params, e.support, e.queries, prior, o);
    };
  };
  // PatchCore with the whole support as memory bank: distance to the nearest support embedding.
  const auto patchcore = [&](bool calibrated) -> Scorer {
    return [&embedding, calibrated](const Eigen::VectorXd& params, const meta::MetaEpisode& e) {
      const Eigen::VectorXd theta = calibrated ? meta::split_calibration(params).first : params;
      baypr::PatchCoreOptions o;
      o.coreset.ratio = 1.0;
      baypr::PatchCoreScorer<double> scorer(o);
      scorer.fit(embedding.forward(theta, e.support));
      return Eigen::VectorXd(scorer.score(embedding.forward(theta, e.queries)));
    };
  };

  std::uint64_t current_seed = args.seed;  // the seed of the method being trained
  Eigen::VectorXd current_theta0;          // and its initial parameters
  Eigen::VectorXd current_b;  // the default's (methods[0]'s) trained embedding parameters
  meta::Calibration default_calibration;  // and its learned calibration

  const auto with_objective = [&](meta::Objective objective) {
    meta::MetaOptions o = options;
    o.outer.objective = objective;
    return o;
  };
  const auto calibrated_method = [&](std::string tag, std::string name, meta::Objective objective) {
    Method m;
    m.tag = std::move(tag);
    m.name = std::move(name);
    m.calibrated = true;
    m.start = [&](const Eigen::VectorXd& theta0) {
      return meta::with_calibration(theta0, mf::initial_calibration(embedding, theta0, sampler,
                                                                    prior, options, current_seed));
    };
    m.make_step = [&embedding, &prior, o = with_objective(objective)]() -> Step {
      auto stepper = std::make_shared<meta::MetaStepper<meta::Mlp>>(embedding);
      return [stepper, &prior, o](const Eigen::VectorXd& joint, const meta::MetaEpisode& e) {
        return meta::calibrated_meta_step(*stepper, joint, e, prior, o);
      };
    };
    m.score = bayes(options, true, false);
    return m;
  };
  std::vector<Method> methods;
  methods.push_back(calibrated_method("baypranometa", "BayPrAnoMeta (discriminative, default)",
                                      meta::Objective::discriminative));
  {
    Method m;
    m.tag = "generative";
    m.name = "BayPrAnoMeta, generative objective (the paper's)";
    m.start = [](const Eigen::VectorXd& theta0) { return theta0; };
    m.make_step = [&embedding, &prior, o = with_objective(meta::Objective::generative)]() -> Step {
      auto stepper = std::make_shared<meta::MetaStepper<meta::Mlp>>(embedding);
      return [stepper, &prior, o](const Eigen::VectorXd& theta, const meta::MetaEpisode& e) {
        return stepper->step(theta, e, prior, o);
      };
    };
    m.score = bayes(options, false, false);
    methods.push_back(std::move(m));
  }
  methods.push_back(
      calibrated_method("ranking", "BayPrAnoMeta, ranking objective", meta::Objective::ranking));
  {
    Method m;
    m.tag = "learned_anomaly";
    m.name = "BayPrAnoMeta (discriminative), anomaly model learned";
    m.learned_anomaly = true;
    m.start = [&anomaly](const Eigen::VectorXd& theta0) {
      return meta::joint_parameters(theta0, anomaly);
    };
    m.make_step = [&embedding, &prior, &options]() -> Step {
      return
          [&embedding, &prior, &options](const Eigen::VectorXd& joint, const meta::MetaEpisode& e) {
            return meta::learned_anomaly_meta_step(embedding, joint, e, prior, options);
          };
    };
    m.score = bayes(options, false, true);
    methods.push_back(std::move(m));
  }
  // The baselines train and score with the same options (their own losses; no calibration).
  const auto baseline_method = [&]<class M>(M, std::string tag, std::string name) {
    Method m;
    m.tag = std::move(tag);
    m.name = std::move(name);
    m.start = [&embedding](const Eigen::VectorXd& theta0) {
      return meta::initial_parameters<M>(embedding, theta0);
    };
    m.make_step = [&embedding, &prior, &options]() -> Step {
      auto stepper = std::make_shared<meta::MetaStepper<meta::Mlp, M>>(embedding);
      return [stepper, &prior, &options](const Eigen::VectorXd& theta, const meta::MetaEpisode& e) {
        return stepper->step(theta, e, prior, options);
      };
    };
    m.score = baseline(M{}, options);
    return m;
  };
  methods.push_back(baseline_method(meta::ProtoMaml{}, "proto_maml", "Proto-MAML"));
  methods.push_back(baseline_method(meta::Maml{}, "maml", "MAML"));
  // The ablation "prior + calibration with theta frozen": MetaQDA's learned prior under the
  // discriminative loss on the features of a frozen embedding, no inner steps, from the default
  // prior and the calibration `start_calibration` gives.
  const auto prior_method = [&](std::string tag, std::string name, const Eigen::VectorXd& frozen,
                                std::function<meta::Calibration()> start_calibration) {
    Method m;
    m.tag = std::move(tag);
    m.name = std::move(name);
    m.calibrated = true;
    m.frozen = &frozen;
    m.start = [&prior, start_calibration](const Eigen::VectorXd&) {
      return meta::prior_joint_parameters(prior, start_calibration());
    };
    m.make_step = [&embedding, &frozen,
                   o = with_objective(meta::Objective::discriminative)]() -> Step {
      return [&embedding, &frozen, o](const Eigen::VectorXd& joint, const meta::MetaEpisode& e) {
        return meta::learned_prior_step(embedding.forward(frozen, e.support),
                                        embedding.forward(frozen, e.queries), e.labels, joint, o);
      };
    };
    m.score = [&embedding, &frozen, &no_adaptation](const Eigen::VectorXd& joint,
                                                    const meta::MetaEpisode& e) {
      const auto learned = meta::split_prior_joint(joint).first;
      return meta::scores(embedding, frozen, e.support, e.queries, learned, no_adaptation);
    };
    return m;
  };
  // On the untrained embedding, the calibration's start fitted at theta_0.
  methods.push_back(prior_method(
      "learned_prior", "untrained embedding, prior and calibration learned (discriminative)",
      current_theta0, [&] {
        return mf::initial_calibration(embedding, current_theta0, sampler, prior, no_adaptation,
                                       current_seed);
      }));
  // The full rung in two stages: the default's trained embedding frozen, then its prior learned
  // with the calibration, from the calibration the default learned.
  methods.push_back(prior_method(
      "learned_prior_b", "(b)'s embedding, then prior and calibration learned (theta frozen)",
      current_b, [&] { return default_calibration; }));

  // Rows: the untrained references, then each trained method, then PatchCore on the default's
  // trained embedding. auroc[row][k] = per-episode AUROC (episodes of shot k), summed over seeds.
  struct Row {
    std::string id, name;
    Scorer score;
    int method = -1;  // index into methods (-1: untrained theta_0)
    std::vector<Eigen::VectorXd> auroc;
    bool calibrated =
        false;  // the score is the calibrated llr: report the ECE of its probabilities
  };
  std::vector<Row> rows = {
      {"a", "untrained + Bayesian llr (0 inner steps)", bayes(no_adaptation, false, false), -1, {}},
      {"a'", "untrained + prototype distance", baseline(meta::ProtoMaml{}, no_adaptation), -1, {}},
      {"a''", "untrained + PatchCore (coreset 100%)", patchcore(false), -1, {}},
  };
  const char* ids[] = {"b", "gen", "rank", "la", "proto", "maml", "lp", "b+lp"};
  for (std::size_t m = 0; m < methods.size(); ++m) {
    rows.push_back({ids[m],
                    methods[m].name,
                    methods[m].score,
                    static_cast<int>(m),
                    {},
                    methods[m].calibrated});
  }
  rows.push_back(
      {"e", "(b)'s embedding + PatchCore (coreset 100%, no inner step)", patchcore(true), 0, {}});
  rows.push_back({"ml",
                  "untrained + Bayesian llr, type-II ML prior (fit_prior, meta-train support sets)",
                  bayes_ml(ml_prior_untrained, no_adaptation, false),
                  -1,
                  {}});
  rows.push_back({"b-ml",
                  "(b) with its prior refitted by type-II ML on its own embedding",
                  bayes_ml(ml_prior_trained, options, true),
                  0,
                  {}});
  std::vector<std::size_t> k_count(eval_shots.size(), 0);
  std::vector<int> groups_of_k[2];
  for (std::size_t k = 0; k < eval_shots.size(); ++k) {
    for (const auto& e : evaluation) {
      if (e.shots != eval_shots[k]) continue;
      ++k_count[k];
      groups_of_k[k].push_back(e.normal_class);
    }
  }
  for (auto& row : rows) {
    for (std::size_t k = 0; k < eval_shots.size(); ++k) {
      row.auroc.push_back(Eigen::VectorXd::Zero(static_cast<Eigen::Index>(k_count[k])));
    }
  }
  // Calibration of the calibrated rows: probabilities and labels of every held-out query, as
  // trained (equal classes) and at the episodes' anomaly rate (4 of 16 queries), summed over seeds.
  const double query_anomaly_rate = static_cast<double>(mf::anomalous_queries) /
                                    static_cast<double>(mf::normal_queries + mf::anomalous_queries);
  std::vector<std::vector<double>> ece_sum(methods.size(),
                                           std::vector<double>(eval_shots.size(), 0.0));
  auto ece_rate_sum = ece_sum;

  struct Summary {
    double seconds = 0, initial_validation = 0, best_validation = 0, best_epoch = 0,
           last_validation = 0;
    double gamma_rms = 0;
    std::vector<meta::VagueAnomalyModel> learned;
    std::vector<meta::Calibration> calibrations;
  };
  std::vector<Summary> summaries(methods.size());
  const auto gamma_rms = [&](const Eigen::VectorXd& theta) {
    return theta.segment(embedding.gamma_offset(), mf::embedding_dim).norm() /
           std::sqrt(static_cast<double>(mf::embedding_dim));
  };

  const double load_seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
  for (int si = 0; si < args.seeds; ++si) {
    current_seed = args.seed + static_cast<std::uint64_t>(si);
    const Eigen::VectorXd theta0 = embedding.initial_parameters(current_seed);
    current_theta0 = theta0;
    std::vector<Eigen::VectorXd> trained(methods.size());
    for (std::size_t m = 0; m < methods.size(); ++m) {
      const Method& method = methods[m];
      const std::string tag = method.tag + ".s" + std::to_string(si);
      meta::TrainerOptions training;
      training.epochs = args.epochs;
      training.steps_per_epoch = args.steps;
      training.meta_batch = settings.meta_batch;
      training.seed = current_seed;
      training.adam.lr = settings.lr;
      training.log_path = tagged(args.log, tag);
      if (!args.checkpoints.empty())
        training.checkpoint_dir = std::filesystem::path(args.checkpoints) / tag;
      training.resume = args.resume;
      training.patience = args.patience;
      training.observer = meta::progress_bar();
      std::cerr << "meta_training: seed " << current_seed << ", training " << method.name << "\n";
      const auto t0 = Clock::now();
      const Scorer& score = method.score;
      const Eigen::VectorXd start = method.start(theta0);  // --refit starts there again
      const auto result = meta::train(
          start, method.make_step(), sampler,
          [&](const Eigen::VectorXd& params) {
            double sum = 0.0;
            for (const auto& e : validation) sum += mf::episode_auroc(score(params, e), e);
            return sum / static_cast<double>(validation.size());
          },
          training);
      Summary& s = summaries[m];
      s.initial_validation += result.initial_validation;
      s.best_validation += result.best_validation;
      s.best_epoch += result.best_epoch;
      s.last_validation +=
          result.history.empty() ? result.initial_validation : result.history.back().validation;
      trained[m] = result.theta;
      if (args.refit && result.best_epoch > 0) {
        // The chosen number of epochs again, on the meta-train and validation classes, from the
        // same start; no validation, the last parameters kept.
        meta::TrainerOptions again = training;
        again.epochs = result.best_epoch;
        again.patience = 0;
        again.keep_best = false;
        again.log_path = tagged(args.log, tag + ".refit");
        if (!args.checkpoints.empty())
          again.checkpoint_dir = std::filesystem::path(args.checkpoints) / (tag + ".refit");
        std::cerr << "meta_training: seed " << current_seed << ", refitting " << method.name
                  << " for " << again.epochs << " epoch(s) on classes 0-5\n";
        trained[m] = meta::train(
                         start, method.make_step(), refit_sampler,
                         [](const Eigen::VectorXd&) { return 0.0; }, again)
                         .theta;
      }
      s.seconds += std::chrono::duration<double>(Clock::now() - t0).count();
      s.gamma_rms += gamma_rms(method.frozen != nullptr ? *method.frozen : trained[m]);
      if (m == 0) std::tie(current_b, default_calibration) = meta::split_calibration(trained[0]);
      if (method.learned_anomaly)
        s.learned.push_back(meta::split_joint_parameters(trained[m]).second);
      if (method.calibrated) s.calibrations.push_back(meta::split_calibration(trained[m]).second);
    }
    ml_prior_untrained = mf::type2_prior(embedding, theta0, data, current_seed).prior;
    ml_prior_trained =
        mf::type2_prior(embedding, meta::split_calibration(trained[0]).first, data, current_seed)
            .prior;
    std::cerr << "meta_training: seed " << current_seed << ", evaluating " << rows.size()
              << " rows on " << evaluation.size() << " episodes\n";
    for (auto& row : rows) {
      const Eigen::VectorXd& params =
          row.method < 0 ? theta0 : trained[static_cast<std::size_t>(row.method)];
      for (std::size_t k = 0; k < eval_shots.size(); ++k) {
        Eigen::Index i = 0;
        std::vector<double> probabilities, probabilities_at_rate;
        std::vector<int> labels;
        for (const auto& e : evaluation) {
          if (e.shots != eval_shots[k]) continue;
          const Eigen::VectorXd s = row.score(params, e.episode);
          row.auroc[k](i++) += baypr::auroc(s, e.episode.labels);
          if (row.calibrated) {
            const meta::Calibration c = meta::split_calibration(params).second;
            const Eigen::VectorXd p = meta::anomaly_probability(s, c);
            const Eigen::VectorXd pr = meta::anomaly_probability(s, c, query_anomaly_rate);
            probabilities.insert(probabilities.end(), p.data(), p.data() + p.size());
            probabilities_at_rate.insert(probabilities_at_rate.end(), pr.data(),
                                         pr.data() + pr.size());
            labels.insert(labels.end(), e.episode.labels.begin(), e.episode.labels.end());
          }
        }
        if (!probabilities.empty()) {
          ece_sum[static_cast<std::size_t>(row.method)][k] +=
              expected_calibration_error(probabilities, labels);
          ece_rate_sum[static_cast<std::size_t>(row.method)][k] +=
              expected_calibration_error(probabilities_at_rate, labels);
        }
      }
    }
  }
  const double seeds = static_cast<double>(args.seeds);
  for (auto& row : rows) {
    for (auto& v : row.auroc) v /= seeds;
  }

  std::mt19937_64 bootstrap_rng(baypr::derive_seed(args.seed, {0x626f6fULL}));
  const auto interval = [&](const Eigen::VectorXd& v, std::size_t k) {
    return baypr::grouped_bootstrap_interval(v, groups_of_k[k], 4000, 0.95, bootstrap_rng);
  };

  std::ostringstream md, csv;
  csv << "section,row,method,K,mean,lower,upper,episodes\n";
  const auto csv_line = [&](const std::string& section, const Row& row, std::size_t k,
                            const baypr::MeanInterval& m) {
    std::ostringstream s;
    s.precision(6);
    s << section << "," << row.id << ",\"" << row.name << "\"," << eval_shots[k] << "," << m.mean
      << "," << m.lower << "," << m.upper << "," << m.count << "\n";
    csv << s.str();
  };
  const int per_k = static_cast<int>(mf::held_out_classes.size()) * args.eval_episodes;
  md << "## Meta-training on Fashion-MNIST: held-out one-class few-shot AUROC\n\n"
     << "Run: " << (args.quick ? "`--quick`" : "default") << ", " << args.seeds
     << " training seed(s) (" << args.seed << ".."
     << args.seed + static_cast<std::uint64_t>(args.seeds - 1) << ") x " << args.epochs
     << " epoch(s) (stopping after " << args.patience << " without a new best validation) x "
     << args.steps << " updates x " << settings.meta_batch << " episodes per method; "
     << args.eval_episodes << " evaluation episodes per held-out class and K."
     << (args.refit ? " Refit (--refit): each run trained again from its start for the epochs its "
                      "validation chose, on tasks of classes 0-5, and those parameters evaluated."
                    : "")
     << "\n\n"
     << "Inputs: standardised pixels projected 784 -> " << mf::projected_dim
     << " (fixed Gaussian, seed 1); no pretrained network. Embedding: Mlp::paper_head("
     << mf::projected_dim << ", " << mf::embedding_dim << "), " << embedding.parameter_count()
     << " parameters, the same initial parameters for every method of a seed. Meta-train classes "
        "0-2 (training "
        "split); validation classes 3-5 (held-out protocol, classes never trained on: picks each "
        "run's best epoch); "
        "held-out classes 6-9. Prior NIW(0, 0.01, d + 2, I); anomaly model t(0, 100 I, 2). Adam lr "
     << settings.lr << ", inner SGD " << settings.inner_steps << " step of " << settings.inner_lr
     << ", "
     << (settings.order == meta::MetaGradient::second_order ? "exact second-order" : "first-order")
     << " meta-gradients, SupCon " << fixed(settings.supcon, 2)
     << " for the BayPrAnoMeta rows. Evaluation: " << per_k
     << " episodes per K, K normal training images + 12 normal / 4 anomalous held-out test images, "
        "the "
        "same episodes for every row and seed; per-episode AUROC averaged over seeds; mean [95% "
        "two-level "
        "bootstrap interval: classes, then episodes].\n\n";
  const auto header = [&](const std::string& first) {
    md << "| " << first << " |";
    for (const Eigen::Index k : eval_shots) md << " K = " << k << " |";
    for (const Eigen::Index k : eval_shots) md << " - (a), K = " << k << " |";
    md << "\n|---|";
    for (std::size_t k = 0; k < eval_shots.size() * 2; ++k) md << "---|";
    md << "\n";
  };
  header("row");
  for (const auto& row : rows) {
    md << "| (" << row.id << ") " << row.name << " |";
    for (std::size_t k = 0; k < eval_shots.size(); ++k) {
      const auto m = interval(row.auroc[k], k);
      md << " " << cell(m) << " |";
      csv_line("auroc", row, k, m);
    }
    for (std::size_t k = 0; k < eval_shots.size(); ++k) {
      if (&row == &rows[0]) {
        md << " - |";
        continue;
      }
      const auto m = interval(Eigen::VectorXd(row.auroc[k] - rows[0].auroc[k]), k);
      md << " " << cell(m, true) << " |";
      csv_line("paired_vs_a", row, k, m);
    }
    md << "\n";
  }
  const std::size_t row_b = 3, row_proto = 3 + 4;
  md << "\n(b) - Proto-MAML, paired:";
  for (std::size_t k = 0; k < eval_shots.size(); ++k) {
    const auto m = interval(Eigen::VectorXd(rows[row_b].auroc[k] - rows[row_proto].auroc[k]), k);
    md << " K = " << eval_shots[k] << " " << cell(m, true)
       << (k + 1 < eval_shots.size() ? ";" : ".");
    csv_line("paired_vs_proto_maml", rows[row_b], k, m);
  }
  md << "\n\n(a'') and (e): the memory bank is every support embedding; at K = 1 this ranks "
        "queries exactly as "
        "the prototype distance.\n\n";

  md << "### Calibration and learned parameters\n\n"
     << "| training | ECE, K = 1 | ECE, K = 5 | ECE at rate 1/4, K = 1 | ECE at rate 1/4, K = 5 | "
        "learned (mean over seeds) |\n|---|---|---|---|---|---|\n";
  for (std::size_t m = 0; m < methods.size(); ++m) {
    if (!methods[m].calibrated && !methods[m].learned_anomaly) continue;
    md << "| " << methods[m].name << " |";
    for (const auto* sum : {&ece_sum, &ece_rate_sum}) {
      for (std::size_t k = 0; k < eval_shots.size(); ++k) {
        md << " " << (methods[m].calibrated ? fixed((*sum)[m][k] / seeds) : std::string("-"))
           << " |";
      }
    }
    double a = 0, b = 0;
    for (const auto& c : summaries[m].calibrations) {
      a += c.alpha() / seeds;
      b += c.beta / seeds;
    }
    double loc = 0, scale = 0, dof = 0;
    for (const auto& l : summaries[m].learned) {
      loc += l.location / seeds;
      scale += l.scale / seeds;
      dof += l.dof / seeds;
    }
    md << " "
       << (methods[m].calibrated ? "alpha " + fixed(a, 4) + ", beta " + fixed(b, 3)
                                 : "p_a location " + fixed(loc, 3) + ", scale " + fixed(scale, 3) +
                                       ", dof " + fixed(dof, 3))
       << " |\n";
  }
  md << "\nECE: expected calibration error (10 equal-width bins) of sigma(alpha s + beta), the "
        "probability that a query is anomalous, over every held-out query (12 normal, 4 anomalous "
        "per episode); the class-balanced loss calibrates to equal classes. At rate 1/4: "
        "sigma(alpha s + beta + log(1/3)), meta::anomaly_probability told the episodes' anomaly "
        "rate (Bayes' rule with that prior; nothing fitted).\n\n";

  md << "### Training (means over seeds)\n\n"
     << "| training | seconds | validation: start -> best (epoch) -> last | LayerNorm gamma RMS |\n"
     << "|---|---|---|---|\n";
  for (std::size_t m = 0; m < methods.size(); ++m) {
    const Summary& s = summaries[m];
    md << "| " << methods[m].name << " | " << fixed(s.seconds / seeds, 1) << " | "
       << fixed(s.initial_validation / seeds) << " -> " << fixed(s.best_validation / seeds) << " ("
       << fixed(s.best_epoch / seeds, 1) << ") -> " << fixed(s.last_validation / seeds) << " | "
       << fixed(s.gamma_rms / seeds) << " |\n";
  }
  md << "\nValidation: mean AUROC of each method's own score on 24 K = 1 and 24 K = 5 episodes of "
        "the validation "
        "classes. train() returns the best-validation parameters (the start included), and those "
        "are "
        "evaluated.\n\nData loading "
     << fixed(load_seconds, 1) << " s, total "
     << fixed(std::chrono::duration<double>(Clock::now() - t_start).count(), 1) << " s.\n";

  std::cout << md.str();
  if (!args.out.empty()) {
    const std::filesystem::path dir(args.out);
    std::filesystem::create_directories(dir);
    write_file(dir / "meta.md", md.str());
    write_file(dir / "meta.csv", csv.str());
    std::cerr << "meta_training: wrote " << (dir / "meta.md").string() << " and "
              << (dir / "meta.csv").string() << "\n";
  }
  return 0;
} catch (const std::exception& e) {
  std::cerr << "meta_training: " << e.what() << "\n";
  return 1;
}
