// Meta-training on Fashion-MNIST: does BayPrAnoMeta (or Proto-MAML, or MAML) improve held-out
// one-class few-shot AUROC over the same embedding left untrained, and which parts matter?
//
//   meta_training [--quick] [--out DIR] [--epochs N] [--steps S] [--eval-episodes E] [--seed S]
//                 [--log FILE] [--checkpoints DIR] [--resume]
//                 [--lr A] [--inner-lr B] [--meta-batch M] [--order first|second] [--supcon W]
//                 [--data DIR]
//
// Data, splits and settings: examples/meta_fashion_data.hpp (shared with
// tests/meta_fashion.test.cpp). /usr/share/datasets/fashion-mnist (Debian's
// dataset-fashion-mnist). Pixels in [0, 1] are standardised with training-split statistics
// (PixelStandardiser), then reduced 784 -> 128 by a fixed Gaussian projection (seed 1, the
// few-shot benchmark's proj-128): it cuts the embedding's parameters 6x, which keeps a
// second-order run within minutes on one core.
// Classes: meta-train {0..5} (T-shirt, Trouser, Pullover, Dress, Coat, Sandal), held out
// {6..9} (Shirt, Sneaker, Bag, Ankle boot). Meta-training tasks come from the training split of
// the meta-train classes only; validation (which is all that may guide tuning) uses episodes of
// the meta-train classes' *test* images; the held-out classes are touched only by the final
// evaluation.
// Embedding: Mlp::paper_head(128, 32) = Linear -> ReLU -> LayerNorm, seeded initial parameters
// shared by every method (MAML appends a zero linear head). Prior NIW(mu0 = 0, kappa0 = 0.01,
// nu0 = d + 2, Psi0 = I) (the authors').
// BayPrAnoMeta's outer loss includes the authors' SupCon term (weight 0.1): without it the
// Bayesian outer loss is minimised by shrinking every embedding together (the vague anomaly
// density is nearly flat, so anomalous queries push back hardly at all) and validation AUROC falls.
// Defaults (Adam lr 1e-3, inner step 5e-4, SupCon 0.1, 200 x 100 updates of 4 episodes) were
// chosen on the validation episodes only; MAML and Proto-MAML use the same lr, inner step and
// schedule. --quick (scripts/demo) trains 50 x 100 updates and evaluates 20 episodes per class
// and K: in the default run BayPrAnoMeta's validation AUROC (0.84 at the start) hovers at
// 0.84-0.88 for the first ~30 epochs, then climbs steadily (0.90 by epoch ~45, 0.97 by 150), so
// 50 epochs is about the shortest run that shows meta-training at work.
// Evaluation episode: normal class c in {6..9}; K in {1, 5} normal training images as support;
// 12 normal (class c) + 4 anomalous (other held-out classes) test images as queries. The episodes
// are drawn once from a seeded engine and scored by every row, so differences are paired.
// Rows: the methods ((a)-(e)) and ablations on the trained BayPrAnoMeta parameters (inner steps at
// evaluation; Student-t predictive against a Gaussian plug-in fitted to the same adapted support
// embeddings). Only evaluation changes in those ablations: training a Gaussian-likelihood
// BayPrAnoMeta is not done here. Two more trainings learn the anomaly model's location, log scale
// and log dof jointly with theta (meta/learned_anomaly.hpp), with and without SupCon.
// Output: Markdown on stdout (progress on stderr); --out DIR also writes DIR/meta.md (the same
// Markdown) and DIR/meta.csv (one line per row, K and statistic).
// Logs (--log FILE): one JSON-lines file per trained method, FILE with ".baypranometa" /
// ".proto_maml" / ".maml" / ".learned_anomaly" / ".learned_anomaly_no_supcon" inserted before its
// extension. Checkpoints (--checkpoints DIR): DIR/<the same tags>; --resume continues from them.
#include <baypr/baypr.hpp>
#include <baypr/meta/adapt.hpp>
#include <baypr/meta/baselines.hpp>
#include <baypr/meta/learned_anomaly.hpp>
#include <baypr/meta/mlp.hpp>
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
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cli_args.hpp"
#include "meta_fashion_data.hpp"

namespace {

namespace meta = baypr::meta;
namespace mf = meta_fashion;
using Clock = std::chrono::steady_clock;

const std::vector<Eigen::Index> eval_shots = {1, 5};

struct Args {
  int epochs = 200;
  int steps = 100;
  int eval_episodes = 50;  // per held-out class and K
  bool quick = false;
  bool epochs_set = false, steps_set = false, eval_set = false;
  std::uint64_t seed = 2026;
  std::string out;
  std::string log;
  std::string checkpoints;
  bool resume = false;
  mf::Settings settings;
  std::string data_dir = mf::default_data_dir;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr
      << "meta_training: " << why << "\n"
      << "usage: meta_training [--quick] [--out DIR] [--epochs N] [--steps S] [--eval-episodes E] "
         "[--seed S]\n"
      << "                     [--log FILE] [--checkpoints DIR] [--resume] [--lr A] [--inner-lr "
         "B]\n"
      << "                     [--meta-batch M] [--order first|second] [--supcon W] [--data DIR]\n";
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
    } else if (arg == "--eval-episodes") {
      a.eval_episodes = std::max(positive_int(i), 2);
      a.eval_set = true;
    } else if (arg == "--quick") {
      a.quick = true;
    } else if (arg == "--out") {
      a.out = value(i);
    } else if (arg == "--seed") {
      a.seed = args.seed(i);
    } else if (arg == "--log") {
      a.log = value(i);
    } else if (arg == "--checkpoints") {
      a.checkpoints = value(i);
    } else if (arg == "--resume") {
      a.resume = true;
    } else if (arg == "--lr") {
      a.settings.lr = number(i, false);
    } else if (arg == "--inner-lr") {
      a.settings.inner_lr = number(i, false);
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
    } else if (arg == "--data") {
      a.data_dir = value(i);
    } else {
      usage("unknown argument '" + arg + "'");
    }
  }
  if (a.quick) {  // explicit --epochs / --steps / --eval-episodes still win
    if (!a.epochs_set) a.epochs = 50;
    if (!a.steps_set) a.steps = 100;
    if (!a.eval_set) a.eval_episodes = 20;
  }
  if (a.resume && a.checkpoints.empty()) usage("--resume needs --checkpoints DIR");
  return a;
}

using Scorer =
    std::function<Eigen::VectorXd(const Eigen::VectorXd& theta, const meta::MetaEpisode&)>;

double mean_auroc(const Scorer& score, const Eigen::VectorXd& theta,
                  const std::vector<meta::MetaEpisode>& episodes) {
  double sum = 0.0;
  for (const auto& e : episodes) sum += mf::episode_auroc(score(theta, e), e);
  return sum / static_cast<double>(episodes.size());
}

std::filesystem::path with_suffix(const std::string& path, const std::string& tag) {
  if (path.empty()) return {};
  const std::filesystem::path p(path);
  return p.parent_path() / (p.stem().string() + "." + tag + p.extension().string());
}

struct Trained {
  std::string name;
  meta::TrainResult result;
  double seconds = 0.0;
};

template <class Step>
Trained run_training(const char* tag, const char* name, const Eigen::VectorXd& theta0, Step&& step,
                     const meta::ClassTaskSampler& sampler, const Scorer& score,
                     const std::vector<meta::MetaEpisode>& validation, const Args& args) {
  meta::TrainerOptions options;
  options.epochs = args.epochs;
  options.steps_per_epoch = args.steps;
  options.meta_batch = args.settings.meta_batch;
  options.seed = args.seed;
  options.adam.lr = args.settings.lr;
  options.log_path = with_suffix(args.log, tag);
  if (!args.checkpoints.empty())
    options.checkpoint_dir = std::filesystem::path(args.checkpoints) / tag;
  options.resume = args.resume;
  std::cerr << "meta_training: training " << name << "\n";
  const auto t0 = Clock::now();
  Trained t;
  t.name = name;
  t.result = meta::train(
      theta0, std::forward<Step>(step), sampler,
      [&](const Eigen::VectorXd& theta) { return mean_auroc(score, theta, validation); }, options);
  t.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return t;
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

baypr::MeanInterval interval(const Eigen::VectorXd& v) {
  return baypr::mean_interval(v);
}

// One evaluated row: per K, the AUROC of every episode of that K (same order for every row).
struct Row {
  std::string id, name;
  Scorer score;
  const Eigen::VectorXd* theta;
  std::vector<Eigen::VectorXd> auroc;  // [K index] -> per-episode values
};

void evaluate(Row& row, const std::vector<mf::EvalEpisode>& episodes) {
  for (const Eigen::Index k : eval_shots) {
    std::vector<double> values;
    for (const auto& e : episodes) {
      if (e.shots == k) values.push_back(baypr::auroc(row.score(*row.theta, e.episode), e.labels));
    }
    row.auroc.emplace_back(
        Eigen::Map<const Eigen::VectorXd>(values.data(), static_cast<Eigen::Index>(values.size())));
  }
}

std::string csv_line(const std::string& section, const Row& row, std::size_t k,
                     const baypr::MeanInterval& m) {
  std::ostringstream s;
  s.precision(6);
  s << section << "," << row.id << ",\"" << row.name << "\"," << eval_shots[k] << "," << m.mean
    << "," << m.lower << "," << m.upper << "," << m.count << "\n";
  return s.str();
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  if (!f) throw baypr::io_error("meta_training: cannot write '" + path.string() + "'");
}

}  // namespace

int main(int argc, char** argv) try {
  const Args args = parse(argc, argv);
  const mf::Settings& settings = args.settings;
  const auto t_start = Clock::now();

  const mf::Data data = mf::load(args.data_dir);
  const meta::ClassTaskSampler sampler = mf::training_sampler(data);
  const auto validation = mf::validation_episodes(data, args.seed);
  const auto evaluation = mf::evaluation_episodes(data, eval_shots, args.eval_episodes, args.seed);

  const meta::Mlp embedding = mf::embedding();
  const Eigen::VectorXd theta0 = embedding.initial_parameters(args.seed);
  const Eigen::VectorXd maml0 = meta::maml_initial_parameters(embedding, theta0);
  const auto prior = mf::prior();
  const meta::VagueAnomalyModel anomaly;  // authors': location 0, scale 100, dof 2
  const meta::AdaptOptions adapt_options = mf::adapt_options(settings, settings.inner_steps);

  // Bayesian llr score after `steps` inner SGD steps on the support.
  const auto bayes_after = [&](int steps) -> Scorer {
    const meta::AdaptOptions o = mf::adapt_options(settings, steps);
    return [&embedding, &prior, &anomaly, o](const Eigen::VectorXd& theta,
                                             const meta::MetaEpisode& e) {
      const auto a = meta::adapt(embedding, theta, e.support, prior, o);
      return meta::bayes_scores(embedding, a.params, e.support, e.queries, prior, anomaly);
    };
  };
  // The same with the anomaly model's coordinates appended to theta (learned_anomaly.hpp).
  const Scorer bayes_learned_anomaly = [&](const Eigen::VectorXd& joint, const meta::MetaEpisode& e) {
    const auto [theta, learned] = meta::split_joint_parameters(joint);
    const auto a = meta::adapt(embedding, theta, e.support, prior, adapt_options);
    return meta::bayes_scores(embedding, a.params, e.support, e.queries, prior, learned);
  };
  const Scorer bayes_untrained = bayes_after(0);
  const Scorer bayes_adapted = bayes_after(settings.inner_steps);
  const Scorer proto_untrained = [&](const Eigen::VectorXd& theta, const meta::MetaEpisode& e) {
    return meta::proto_scores(embedding, theta, e.support, e.queries);
  };
  const Scorer proto_adapted = [&](const Eigen::VectorXd& theta, const meta::MetaEpisode& e) {
    const Eigen::VectorXd adapted = meta::proto_adapt(embedding, theta, e.support, adapt_options);
    return meta::proto_scores(embedding, adapted, e.support, e.queries);
  };
  const Scorer maml_adapted = [&](const Eigen::VectorXd& params, const meta::MetaEpisode& e) {
    const Eigen::VectorXd adapted = meta::maml_adapt(embedding, params, e.support, adapt_options);
    return meta::maml_scores(embedding, adapted, e.queries);
  };
  // PatchCore with the whole support as memory bank: distance to the nearest support embedding.
  const Scorer patchcore = [&](const Eigen::VectorXd& theta, const meta::MetaEpisode& e) {
    baypr::PatchCoreOptions o;
    o.coreset_ratio = 1.0;
    baypr::PatchCoreScorer<double> scorer(o);
    scorer.fit(embedding.forward(theta, e.support));
    return Eigen::VectorXd(scorer.score(embedding.forward(theta, e.queries)));
  };
  // Gaussian plug-in on the same adapted support embeddings as the Bayesian score: mean and
  // Ledoit-Wolf covariance (+ 1% mean-variance ridge), i.e. baypr::GaussianScorer. `llr` adds the
  // anomaly model: log p_a(q) - log N(q | m, S) = log p_a(q) + Mahalanobis^2 / 2 + an
  // episode constant, so only the predictive differs from the Bayesian llr score.
  const auto gaussian_after_adaptation = [&](bool llr) -> Scorer {
    return [&embedding, &prior, &anomaly, &adapt_options, llr](const Eigen::VectorXd& theta,
                                                               const meta::MetaEpisode& e) {
      const auto a = meta::adapt(embedding, theta, e.support, prior, adapt_options);
      const Eigen::MatrixXd Z = embedding.forward(a.params, e.support);
      const Eigen::MatrixXd Q = embedding.forward(a.params, e.queries);
      baypr::GaussianScorer gaussian;
      gaussian.fit(Z);
      const Eigen::VectorXd mahalanobis = gaussian.score(Q);
      return llr ? Eigen::VectorXd(anomaly.log_pdf(Q) + 0.5 * mahalanobis) : mahalanobis;
    };
  };

  meta::OuterOptions outer;
  outer.supcon_weight = settings.supcon;

  const double load_seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
  std::vector<Trained> trained;
  meta::MetaStepper stepper(embedding);  // meta_step with its buffers kept between updates
  trained.push_back(run_training(
      "baypranometa", "BayPrAnoMeta", theta0,
      [&](const Eigen::VectorXd& theta, const meta::MetaEpisode& e) {
        return stepper.step(theta, e, prior, anomaly, adapt_options, settings.order, outer);
      },
      sampler, bayes_adapted, validation, args));
  trained.push_back(run_training(
      "proto_maml", "Proto-MAML", theta0,
      [&](const Eigen::VectorXd& theta, const meta::MetaEpisode& e) {
        return meta::proto_maml_step(embedding, theta, e, adapt_options, settings.order);
      },
      sampler, proto_adapted, validation, args));
  trained.push_back(run_training(
      "maml", "MAML", maml0,
      [&](const Eigen::VectorXd& params, const meta::MetaEpisode& e) {
        return meta::maml_step(embedding, params, e, adapt_options, settings.order);
      },
      sampler, maml_adapted, validation, args));
  // Learning the anomaly model too (issue: "may also be learned — try it and report"): its
  // location, log scale and log dof join theta under the same Adam, from the authors' values; with
  // and without the SupCon term (without it, a fixed vague p_a lets the embeddings collapse).
  const Eigen::VectorXd joint0 = meta::joint_parameters(theta0, anomaly);
  meta::OuterOptions no_supcon = outer;
  no_supcon.supcon_weight = 0.0;
  for (const auto* o : {&outer, &no_supcon}) {
    const bool supcon = o->supcon_weight > 0.0;
    trained.push_back(run_training(
        supcon ? "learned_anomaly" : "learned_anomaly_no_supcon",
        supcon ? "BayPrAnoMeta, anomaly model learned" : "BayPrAnoMeta, anomaly model learned, no SupCon", joint0,
        [&embedding, &prior, &adapt_options, &settings, o](const Eigen::VectorXd& joint, const meta::MetaEpisode& e) {
          return meta::learned_anomaly_meta_step(embedding, joint, e, prior, adapt_options, settings.order, *o);
        },
        sampler, bayes_learned_anomaly, validation, args));
  }
  const Eigen::VectorXd& bayes_theta = trained[0].result.theta;

  std::vector<Row> rows = {
      {"a", "untrained + Bayesian llr (0 inner steps)", bayes_untrained, &theta0, {}},
      {"a'", "untrained + prototype distance (0 inner steps)", proto_untrained, &theta0, {}},
      {"a''", "untrained + PatchCore (coreset 100%)", patchcore, &theta0, {}},
      {"b", "BayPrAnoMeta (1 inner step + Bayesian llr)", bayes_adapted, &bayes_theta, {}},
      {"c",
       "Proto-MAML (1 inner step + prototype distance)",
       proto_adapted,
       &trained[1].result.theta,
       {}},
      {"d", "MAML (1 inner step + linear-head logit)", maml_adapted, &trained[2].result.theta, {}},
      {"e",
       "BayPrAnoMeta-trained embedding + PatchCore (coreset 100%, no inner step)",
       patchcore,
       &bayes_theta,
       {}},
  };
  const std::size_t method_rows = rows.size();
  rows.push_back({"b0", "trained, 0 inner steps + Bayesian llr", bayes_after(0), &bayes_theta, {}});
  rows.push_back({"b5", "trained, 5 inner steps + Bayesian llr", bayes_after(5), &bayes_theta, {}});
  rows.push_back({"g",
                  "trained, 1 inner step + Gaussian plug-in Mahalanobis (GaussianScorer)",
                  gaussian_after_adaptation(false),
                  &bayes_theta,
                  {}});
  rows.push_back({"g-llr",
                  "trained, 1 inner step + Gaussian plug-in llr (same anomaly model)",
                  gaussian_after_adaptation(true),
                  &bayes_theta,
                  {}});
  rows.push_back({"la",
                  "trained with the anomaly model learned, 1 inner step + Bayesian llr (learned p_a)",
                  bayes_learned_anomaly,
                  &trained[3].result.theta,
                  {}});
  rows.push_back({"la0",
                  "as (la), trained without SupCon",
                  bayes_learned_anomaly,
                  &trained[4].result.theta,
                  {}});
  const std::size_t ref_untrained = 0, ref_bayes = 3;

  std::cerr << "meta_training: evaluating " << rows.size() << " rows on " << evaluation.size()
            << " episodes\n";
  const auto t_eval = Clock::now();
  for (auto& row : rows) evaluate(row, evaluation);
  const double eval_seconds = std::chrono::duration<double>(Clock::now() - t_eval).count();
  const auto paired = [&](std::size_t r, std::size_t ref, std::size_t k) {
    return interval(rows[r].auroc[k] - rows[ref].auroc[k]);
  };

  // Scale of the embedding (1 at initialisation): a shrinking gamma means collapsing embeddings.
  const auto gamma_rms = [&](const Eigen::VectorXd& theta) {
    return theta.segment(embedding.gamma_offset(), mf::embedding_dim).norm() /
           std::sqrt(static_cast<double>(mf::embedding_dim));
  };

  // Entropy of the query labels' base rate: what a head that ignores its input can reach.
  const double rate = static_cast<double>(mf::anomalous_queries) /
                      static_cast<double>(mf::normal_queries + mf::anomalous_queries);
  const double base_rate_loss = -(rate * std::log(rate) + (1.0 - rate) * std::log(1.0 - rate));
  std::ostringstream md, csv;
  csv << "section,row,method,K,mean,lower,upper,episodes\n";
  const int per_k = static_cast<int>(mf::held_out_classes.size()) * args.eval_episodes;
  const auto header = [&](const std::string& first, bool deltas) {
    md << "| " << first << " |";
    for (const Eigen::Index k : eval_shots) md << " K = " << k << " |";
    if (deltas) {
      for (const Eigen::Index k : eval_shots) md << " vs (b), K = " << k << " |";
    }
    md << "\n|---|";
    for (std::size_t k = 0; k < eval_shots.size() * (deltas ? 2 : 1); ++k) md << "---|";
    md << "\n";
  };
  md << "## Meta-training on Fashion-MNIST: held-out one-class few-shot AUROC\n\n"
     << "Run: " << (args.quick ? "`--quick`" : "default") << ", " << args.epochs << " epoch(s) x "
     << args.steps << " updates, " << args.eval_episodes
     << " evaluation episodes per held-out class and K, seed " << args.seed << ".\n\n"
     << "Inputs: standardised pixels projected 784 -> " << mf::projected_dim
     << " (fixed Gaussian, seed 1). Embedding: "
     << "Mlp::paper_head(" << mf::projected_dim << ", " << mf::embedding_dim << "), "
     << embedding.parameter_count() << " parameters, identical initial parameters (seed "
     << args.seed << ") for every row (MAML: plus a zero "
     << "linear head). Meta-train classes 0-5 (training split), validation on 24 fixed episodes of "
        "classes 0-5's "
     << "test images, held-out classes 6-9. Prior NIW(0, 0.01, d + 2, I); anomaly model t(0, 100 "
        "I, 2).\n"
     << "Training (BayPrAnoMeta, Proto-MAML and MAML alike): " << args.epochs << " epoch(s) x "
     << args.steps << " Adam updates x " << settings.meta_batch
     << " episodes (K = 5, 12 + 4 queries), Adam lr " << settings.lr << ", inner SGD "
     << settings.inner_steps << " step of " << settings.inner_lr << ", "
     << (settings.order == meta::MetaGradient::second_order ? "exact second-order" : "first-order")
     << " meta-gradients"
     << (settings.supcon > 0.0
             ? ", SupCon weight " + fixed(settings.supcon, 3) + " (BayPrAnoMeta only)"
             : std::string())
     << ". Evaluation: " << per_k << " episodes per K (" << args.eval_episodes
     << " per held-out class), K normal training images + 12 normal / 4 anomalous held-out test "
        "images, the same "
        "episodes for every row; mean AUROC [95% t interval].\n\n";

  md << "### Methods\n\n";
  header("method", false);
  for (std::size_t r = 0; r < method_rows; ++r) {
    md << "| (" << rows[r].id << ") " << rows[r].name << " |";
    for (std::size_t k = 0; k < eval_shots.size(); ++k) {
      const auto m = interval(rows[r].auroc[k]);
      md << " " << cell(m) << " |";
      csv << csv_line("auroc", rows[r], k, m);
    }
    md << "\n";
  }
  md << "\n(a'') and (e): the memory bank is every support embedding (no coreset reduction), the "
        "score the "
        "Euclidean distance to the nearest one; at K = 1 this ranks queries exactly as the "
        "prototype distance. "
        "(e) uses the meta-trained parameters without an inner step (PatchCore has no inner loss). "
        "(d): the "
        "linear head is shared by all tasks and re-aimed only by the inner step; an outer loss "
        "near "
     << fixed(base_rate_loss, 4)
     << " (the logistic loss of predicting the 4-in-16 base rate for every query) means MAML "
        "learned the base "
        "rate and no per-task detector. Its inner step is the shared, validated "
     << settings.inner_lr << "; the larger steps MAML usually needs were not tried.\n\n";

  md << "### Ablations on the trained BayPrAnoMeta parameters (evaluation only)\n\n";
  header("variant", true);
  for (std::size_t r : {std::size_t{0}, ref_bayes}) {  // the two references, for reading the table
    md << "| (" << rows[r].id << ") " << rows[r].name << " |";
    for (std::size_t k = 0; k < eval_shots.size(); ++k)
      md << " " << cell(interval(rows[r].auroc[k])) << " |";
    for (std::size_t k = 0; k < eval_shots.size(); ++k) {
      md << " " << (r == ref_bayes ? std::string("-") : cell(paired(r, ref_bayes, k), true))
         << " |";
    }
    md << "\n";
  }
  for (std::size_t r = method_rows; r < rows.size(); ++r) {
    md << "| (" << rows[r].id << ") " << rows[r].name << " |";
    for (std::size_t k = 0; k < eval_shots.size(); ++k) {
      const auto m = interval(rows[r].auroc[k]);
      md << " " << cell(m) << " |";
      csv << csv_line("auroc", rows[r], k, m);
    }
    for (std::size_t k = 0; k < eval_shots.size(); ++k) {
      const auto m = paired(r, ref_bayes, k);
      md << " " << cell(m, true) << " |";
      csv << csv_line("paired_vs_b", rows[r], k, m);
    }
    md << "\n";
  }
  md << "\n\"vs (b)\": paired per-episode AUROC difference against (b) [95% t interval]. (b0) / "
        "(b5): the "
        "trained parameters scored after 0 / 5 inner SGD steps (step "
     << settings.inner_lr
     << ") instead of the 1 used in training. (g): the support embeddings after (b)'s inner step, "
        "fitted with a "
        "Gaussian of their mean and Ledoit-Wolf covariance plus a ridge of 1% of the mean variance "
        "(baypr::GaussianScorer); score = squared Mahalanobis distance. (g-llr): the same Gaussian "
        "in place of the "
        "Student-t predictive inside the llr score, log p_a(q) - log N(q | m, S). At K = 1 the "
        "covariance is zero "
        "and GaussianScorer falls back to the identity, so (g) is the prototype distance of the "
        "adapted embedding. "
        "Only the evaluation-time predictive changes: the embedding was trained with the Student-t "
        "likelihood; "
        "training a Gaussian-likelihood variant is out of scope here.\n\n";

  md << "### Learning the anomaly model\n\n"
     << "(la) and (la0) train the anomaly model's location a, log scale and log dof jointly with "
        "theta (same Adam, same schedule; meta::learned_anomaly_meta_step), starting from the "
        "authors' t(0, 100 I, 2), and score with the learned model. Learned values:\n\n"
     << "| training | location a | scale s | dof v |\n|---|---|---|---|\n";
  for (std::size_t t = 3; t < trained.size(); ++t) {
    const auto learned = meta::split_joint_parameters(trained[t].result.theta).second;
    md << "| " << trained[t].name << " | " << fixed(learned.location, 4) << " | " << fixed(learned.scale, 4)
       << " | " << fixed(learned.dof, 4) << " |\n";
  }
  md << "\n";

  md << "### Paired differences against (a) (untrained + Bayesian llr)\n\n";
  header("row - (a)", false);
  for (std::size_t r = 1; r < rows.size(); ++r) {
    md << "| (" << rows[r].id << ") - (a) |";
    for (std::size_t k = 0; k < eval_shots.size(); ++k) {
      const auto m = paired(r, ref_untrained, k);
      md << " " << cell(m, true) << " |";
      csv << csv_line("paired_vs_a", rows[r], k, m);
    }
    md << "\n";
  }
  md << "\nPer-episode AUROC differences on identical episodes, mean [95% t interval].\n\n";

  md << "### Training\n\n"
     << "| training | seconds | first-epoch outer loss | last-epoch outer loss | validation AUROC "
        "before -> after | "
        "LayerNorm gamma RMS |\n"
     << "|---|---|---|---|---|---|\n";
  bool resumed = false;
  for (const auto& t : trained) {
    const auto& h = t.result.history;
    resumed = resumed || t.result.start_epoch > 0;
    md << "| " << t.name << " | " << fixed(t.seconds, 2) << " | "
       << (h.empty() ? std::string("-") : fixed(h.front().outer_loss, 4)) << " | "
       << (h.empty() ? std::string("-") : fixed(h.back().outer_loss, 4)) << " | "
       << fixed(t.result.initial_validation) << " -> "
       << (h.empty() ? std::string("-") : fixed(h.back().validation)) << " | "
       << fixed(gamma_rms(t.result.theta)) << " |\n";
  }
  md << "\nOuter losses are not comparable across methods (BayPrAnoMeta: Bayesian + SupCon; the "
        "others: logistic). "
        "Validation uses each method's own score after its inner step.\n";
  if (resumed) {
    md << "\nResumed from checkpoints (epochs done:";
    for (const auto& t : trained) md << " " << t.name << " " << t.result.start_epoch << ";";
    md << " the losses, times and 'before' refer to this run's epochs only).\n";
  }
  md << "\nData loading " << fixed(load_seconds, 1) << " s, evaluation " << fixed(eval_seconds, 1)
     << " s, total " << fixed(std::chrono::duration<double>(Clock::now() - t_start).count(), 1)
     << " s.\n";

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
