// Federated meta-learning on Fashion-MNIST: three sites that each own two classes meta-train one
// BayPrAnoMeta embedding together; does that reach the held-out AUROC of training on the pooled
// classes (centralised), and does either beat the untrained embedding?
//
//   federated_fashion [--quick] [--seeds N] [--rounds R] [--local-episodes E] [--eval-episodes P]
//                     [--supcon W] [--out DIR] [--data DIR] [--seed S]
//       the in-process comparison (sites on threads): a Markdown table on stdout, and with --out
//       DIR/federated.md, DIR/federated.csv and the stationarity figure DIR/federated.png
//   federated_fashion --site GROUP --server HOST:PORT --certs DIR --name NAME [--supcon W]
//       one site (classes of GROUP in 0..2) of a federation over gRPC with mutual TLS; needs a
//       build with BAYPR_WITH_GRPC (scripts/federation-demo runs a server and three of these)
//   federated_fashion --write-theta0 FILE.npy [--seed S]     the shared start, for the server
//   federated_fashion --evaluate FILE.npy [--seed S]         held-out AUROC of a model, without
//                                                            and with the inner step
//
// Data and model: examples/meta_fashion_data.hpp (Fashion-MNIST projected to 128, the
// Mlp::paper_head(128, 32) embedding, the authors' NIW prior, the discriminative objective with
// its calibration, one inner step of 5e-4, second order: the settings meta_training chose on its
// validation classes). Sites: {T-shirt, Trouser}, {Pullover, Dress}, {Coat, Sandal} (classes 0-5),
// each drawing K = 5 tasks from its own classes only: a heterogeneous federation. Held out:
// classes 6-9, evaluated as in meta_training (K = 1 and 5, normal class c, anomalies the other
// held-out classes). Nothing here was tuned on the held-out classes; nothing was tuned at all for
// the federation (FedAvg's local step size is the server's Adam step size, untested alternatives).
//
// Rows, each trained from the same start for R rounds of the same number of episodes (3 E):
//   centralised  one site holding all six classes, FedSGD = Adam on meta-batches of 3 E episodes
//   FedSGD       three sites, E episodes each per round, the server averages their gradients
//   FedAvg       three sites, E local SGD meta-steps each, the server's Adam on the mean change
// each with the SupCon term (--supcon, 0.1) and without. The start (theta0 and the calibration
// fitted on 32 training episodes of the six classes at theta0) is shared by every row of a seed.
// Intervals: per-episode AUROC averaged over seeds, paired differences, 95% two-level bootstrap
// (classes, then episodes).
#include <baypr/baypr.hpp>
#include <baypr/federated/algorithms.hpp>
#include <baypr/meta/adapt.hpp>
#include <baypr/meta/mlp.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#ifdef BAYPR_FEDERATED_GRPC
#include <baypr/federated/grpc.hpp>
#endif
#include "cli_args.hpp"
#include "federated_compare.hpp"
#include "meta_fashion_data.hpp"

namespace {

namespace meta = baypr::meta;
namespace fed = baypr::federated;
namespace mf = meta_fashion;

const std::vector<std::vector<int>> kSiteClasses = {{0, 1}, {2, 3}, {4, 5}};
const std::vector<int> kAllClasses = {0, 1, 2, 3, 4, 5};

struct Args {
  int seeds = 5, rounds = 500, local_episodes = 4, eval_episodes = 50;
  double supcon = 0.1;
  std::uint64_t seed = 0;
  std::string data = mf::default_data_dir, out;
  // the gRPC site and the helpers
  int site = -1;
  std::string server, certs, name, theta0_file, evaluate_file;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "federated_fashion: " << why << "\n(see the comment at the top of "
            << "examples/federated_fashion.cpp)\n";
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  const cli::ArgReader reader(argc, argv, usage);
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    if (f == "--quick") {
      a.seeds = 2;
      a.rounds = 150;
      a.eval_episodes = 25;
    } else if (f == "--seeds") {
      a.seeds = reader.positive_int(i);
    } else if (f == "--rounds") {
      a.rounds = reader.positive_int(i);
    } else if (f == "--local-episodes") {
      a.local_episodes = reader.positive_int(i);
    } else if (f == "--eval-episodes") {
      a.eval_episodes = reader.positive_int(i);
    } else if (f == "--supcon") {
      a.supcon = reader.number(i, true);
    } else if (f == "--seed") {
      a.seed = reader.seed(i);
    } else if (f == "--data") {
      a.data = reader.value(i);
    } else if (f == "--out") {
      a.out = reader.value(i);
    } else if (f == "--site") {
      const std::string v = reader.value(i);
      if (v != "0" && v != "1" && v != "2") usage("--site needs 0, 1 or 2, got '" + v + "'");
      a.site = std::stoi(v);
    } else if (f == "--server") {
      a.server = reader.value(i);
    } else if (f == "--certs") {
      a.certs = reader.value(i);
    } else if (f == "--name") {
      a.name = reader.value(i);
    } else if (f == "--write-theta0") {
      a.theta0_file = reader.value(i);
    } else if (f == "--evaluate") {
      a.evaluate_file = reader.value(i);
    } else {
      usage("unknown option '" + f + "'");
    }
  }
  return a;
}

struct Setup {
  mf::Data data;
  meta::Mlp embedding = mf::embedding();
  baypr::NiwPrior<double> prior = mf::prior();
};

meta::MetaOptions training_options(double supcon) {
  mf::Settings s;
  s.supcon = supcon;
  return mf::meta_options(s, s.inner_steps);
}

// A site: episodes of its classes only, and the calibrated BayPrAnoMeta meta-step.
fed::Client make_site(const Setup& setup, const std::vector<int>& classes,
                      const meta::MetaOptions& options) {
  const auto sampler = std::make_shared<meta::ClassTaskSampler>(
      setup.data.train.x, setup.data.train.labels, classes, mf::task_shape());
  const auto stepper = std::make_shared<meta::MetaStepper<meta::Mlp>>(setup.embedding);
  fed::Client c;
  c.sample = [sampler](std::mt19937_64& rng) { return sampler->sample(rng); };
  c.step = [stepper, &setup, options](const Eigen::VectorXd& joint, const meta::MetaEpisode& e) {
    return meta::calibrated_meta_step(*stepper, joint, e, setup.prior, options);
  };
  return c;
}

// theta0 of the seed, with the calibration fitted on training episodes of the six classes.
Eigen::VectorXd shared_start(const Setup& setup, std::uint64_t seed) {
  const Eigen::VectorXd theta0 = setup.embedding.initial_parameters(seed);
  const meta::ClassTaskSampler all(setup.data.train.x, setup.data.train.labels, kAllClasses,
                                   mf::task_shape());
  return meta::with_calibration(theta0,
                                mf::initial_calibration(setup.embedding, theta0, all, setup.prior,
                                                        training_options(0.0), seed));
}

// Per-episode held-out AUROC of a joint vector (inner_steps 0: the untrained row's scoring).
Eigen::VectorXd held_out_auroc(const Setup& setup, const Eigen::VectorXd& joint,
                               const std::vector<mf::EvalEpisode>& episodes, int inner_steps) {
  meta::MetaOptions o = training_options(0.0);
  o.adapt.inner_steps = inner_steps;
  const Eigen::VectorXd theta = meta::split_calibration(joint).first;
  Eigen::VectorXd out(static_cast<Eigen::Index>(episodes.size()));
  for (std::size_t i = 0; i < episodes.size(); ++i) {
    const auto& e = episodes[i].episode;
    out(static_cast<Eigen::Index>(i)) = mf::episode_auroc(
        meta::scores(setup.embedding, theta, e.support, e.queries, setup.prior, o), e);
  }
  return out;
}

int compare(const Args& a, const Setup& setup) {
  const std::vector<Eigen::Index> shots = {1, 5};
  const auto episodes = mf::evaluation_episodes(setup.data, shots, a.eval_episodes, a.seed);
  federated_compare::Experiment x;
  x.name = "federated";
  x.program = "federated_fashion";
  x.title = "Held-out AUROC (classes 6-9)";
  x.group = "classes";
  x.each = "class";
  x.sites = static_cast<int>(kSiteClasses.size());
  x.shots = shots;
  for (const auto& e : episodes) {
    x.episode_shot.push_back(e.shots == 1 ? 0 : 1);
    x.episode_group.push_back(e.normal_class);
  }
  // Adam 1e-3: meta_training's learning rate when this comparison was recorded (it now takes 1e-4,
  // chosen by examples/experiments/meta_fashion_selection.cpp); kept so that the recorded
  // federated table stays what it measured.
  x.lr = 1e-3;
  x.start = [&](std::uint64_t seed) { return shared_start(setup, seed); };
  x.make_site = [&](int site, double supcon) {
    return make_site(setup, site < 0 ? kAllClasses : kSiteClasses[static_cast<std::size_t>(site)],
                     training_options(supcon));
  };
  x.evaluate = [&](const Eigen::VectorXd& joint, int inner_steps) {
    return held_out_auroc(setup, joint, episodes, inner_steps);
  };
  return federated_compare::compare(
      x, {a.seeds, a.rounds, a.local_episodes, a.eval_episodes, a.supcon, a.seed, a.out});
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  if (!mf::data_available(a.data)) {
    std::cerr << "federated_fashion: Fashion-MNIST not found in " << a.data
              << " (Debian: dataset-fashion-mnist)\n";
    return 1;
  }
  try {
    Setup setup;
    setup.data = mf::load(a.data);
    if (!a.theta0_file.empty()) {
      baypr::write_npy(a.theta0_file, shared_start(setup, a.seed));
      return 0;
    }
    if (!a.evaluate_file.empty()) {
      const auto joint = baypr::read_npy_matrix<double>(a.evaluate_file);
      const auto episodes = mf::evaluation_episodes(setup.data, {1, 5}, a.eval_episodes, a.seed);
      // Episodes are K = 1 first, then K = 5, the same number of each.
      for (const int steps : {0, 1}) {
        const Eigen::VectorXd v = held_out_auroc(setup, joint.col(0), episodes, steps);
        const Eigen::Index half = v.size() / 2;
        std::cout << "  held-out AUROC, " << steps << " inner step(s): K = 1 "
                  << v.head(half).mean() << ", K = 5 " << v.tail(v.size() - half).mean() << "\n";
      }
      return 0;
    }
    if (a.site >= 0) {
#ifdef BAYPR_FEDERATED_GRPC
      if (a.server.empty() || a.certs.empty() || a.name.empty()) {
        usage("--site needs --server, --certs and --name");
      }
      fed::SiteOptions o;
      o.server = a.server;
      o.server_name = "localhost";
      o.tls = {std::filesystem::path(a.certs) / "ca.crt",
               std::filesystem::path(a.certs) / (a.name + ".crt"),
               std::filesystem::path(a.certs) / (a.name + ".key")};
      const fed::Client site = make_site(setup, kSiteClasses[static_cast<std::size_t>(a.site)],
                                         training_options(a.supcon));
      const fed::SiteResult r = fed::run_site(site, o);
      std::cerr << "site " << r.site << " (" << a.name << "): " << r.rounds_submitted
                << " rounds answered, " << r.rounds_late << " late\n";
      if (!a.out.empty()) baypr::write_npy(a.out, r.theta);
      return 0;
#else
      usage("--site needs a build with BAYPR_WITH_GRPC");
#endif
    }
    return compare(a, setup);
  } catch (const std::exception& e) {
    std::cerr << "federated_fashion: " << e.what() << '\n';
    return 1;
  }
}
