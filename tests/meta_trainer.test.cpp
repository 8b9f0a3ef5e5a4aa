// The meta-training loop: Adam, the one-class task sampler, seeded and resumable training with
// logs and checkpoints. The loop is tested with a known objective here; training a real embedding
// through meta_step on Fashion-MNIST is tests/meta_fashion.test.cpp.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "baypr/meta/progress.hpp"
#include "baypr/meta/trainer.hpp"
#include "support/catch.hpp"
#include "support/messages.hpp"

using baypr::test::contains;
using baypr::test::message_of;
namespace meta = baypr::meta;

namespace {

std::filesystem::path fresh_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("baypr-trainer-" + name);
  std::filesystem::remove_all(dir);
  return dir;
}

// A sampler whose "episode" is a random target point; the step's loss is |theta - target|^2 / 2.
struct PointSampler {
  Eigen::Index dim;
  [[nodiscard]] meta::MetaEpisode sample(std::mt19937_64& rng) const {
    meta::MetaEpisode e;
    e.support.resize(1, dim);
    for (Eigen::Index j = 0; j < dim; ++j)
      e.support(0, j) = 1.0 + static_cast<double>(rng() % 1000) / 10000.0;
    return e;
  }
};

meta::MetaStep quadratic_step(const Eigen::VectorXd& theta, const meta::MetaEpisode& e) {
  meta::MetaStep s;
  const Eigen::VectorXd r = theta - e.support.row(0).transpose();
  s.outer_loss = 0.5 * r.squaredNorm();
  s.inner_loss = s.outer_loss;
  s.gradient = r;
  s.adapted = theta;
  return s;
}

}  // namespace

TEST_CASE("Adam: bias-corrected steps", "[meta][trainer]") {
  meta::Adam adam;
  adam.lr = 0.1;
  Eigen::VectorXd theta(3), g(3);
  theta << 1.0, -2.0, 0.5;
  g << 0.3, -4.0, 0.0;
  const Eigen::VectorXd start = theta;
  adam.step(theta, g);
  // First step: m_hat = g, v_hat = g^2, so each coordinate moves by lr * g / (|g| + eps).
  for (Eigen::Index i = 0; i < 3; ++i) {
    CHECK(theta(i) == Approx(start(i) - 0.1 * g(i) / (std::abs(g(i)) + 1e-8)).epsilon(1e-14));
  }
  // Second step by hand.
  Eigen::VectorXd g2(3);
  g2 << -0.1, 1.0, 2.0;
  const Eigen::VectorXd before = theta;
  adam.step(theta, g2);
  for (Eigen::Index i = 0; i < 3; ++i) {
    const double m = 0.9 * (0.1 * g(i)) + 0.1 * g2(i);
    const double v = 0.999 * (0.001 * g(i) * g(i)) + 0.001 * g2(i) * g2(i);
    const double expected =
        before(i) - 0.1 * (m / (1 - 0.81)) / (std::sqrt(v / (1 - 0.999 * 0.999)) + 1e-8);
    CHECK(theta(i) == Approx(expected).epsilon(1e-12));
  }
  Eigen::VectorXd bad = g2;
  bad(1) = std::nan("");
  const Eigen::VectorXd kept = theta;
  CHECK(contains(message_of([&] { adam.step(theta, bad); }),
                 "baypr::meta::Adam::step: argument 'gradient'"));
  CHECK(theta == kept);
  CHECK(adam.t == 2);
  meta::Adam bad_beta;
  bad_beta.beta1 = 1.0;  // would divide by 1 - beta1^t = 0
  CHECK(contains(message_of([&] { bad_beta.step(theta, g2); }),
                 "argument 'beta1' must be in [0, 1), got 1"));
  CHECK(theta == kept);
}

TEST_CASE("ClassTaskSampler: one-class episodes over the given classes only", "[meta][trainer]") {
  // Row i has label i % 4 and value i in every column, so rows can be traced back.
  const Eigen::Index n = 80;
  Eigen::MatrixXd x(n, 3);
  Eigen::VectorXi labels(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    x.row(i).setConstant(static_cast<double>(i));
    labels(i) = static_cast<int>(i % 4);
  }
  const meta::ClassTaskSampler sampler(x, labels, {0, 1, 2}, {3, 5, 2});
  std::mt19937_64 rng(1), again(1);
  std::set<int> normal_classes_seen;
  for (int t = 0; t < 50; ++t) {
    const auto e = sampler.sample(rng);
    REQUIRE(e.support.rows() == 3);
    REQUIRE(e.queries.rows() == 7);
    REQUIRE(e.labels.size() == 7);
    REQUIRE(e.labels == Eigen::VectorXi{{0, 0, 0, 0, 0, 1, 1}});
    const int c = static_cast<int>(e.support(0, 0)) % 4;
    normal_classes_seen.insert(c);
    std::set<int> rows;
    for (Eigen::Index i = 0; i < 3; ++i) {
      CHECK(static_cast<int>(e.support(i, 0)) % 4 == c);
      rows.insert(static_cast<int>(e.support(i, 0)));
    }
    for (Eigen::Index i = 0; i < 7; ++i) {
      const int label = static_cast<int>(e.queries(i, 0)) % 4;
      CHECK(label != 3);  // never a class outside the sampler's
      CHECK((label == c) == (i < 5));
      rows.insert(static_cast<int>(e.queries(i, 0)));
    }
    CHECK(rows.size() == 10);  // support and queries are distinct rows
    CHECK(sampler.sample(again).queries == e.queries);
  }
  CHECK(normal_classes_seen == std::set<int>{0, 1, 2});
  CHECK(contains(message_of([&] { meta::ClassTaskSampler(x, labels, {0}, {}); }), "classes"));
  // One label per row (labels are an Eigen::VectorXi, as everywhere in baypr).
  CHECK(contains(message_of([&] {
                   meta::ClassTaskSampler(x, Eigen::VectorXi(labels.head(n - 1)), {0, 1}, {});
                 }),
                 "baypr::meta::ClassTaskSampler: argument 'labels' has size 79, expected 80"));
  CHECK(contains(message_of([&] {
                   meta::ClassTaskSampler(x, labels, {0, 1, 0}, {});
                 }),
                 "lists class 0 twice"));
  CHECK(contains(message_of([&] {
                   meta::ClassTaskSampler(x.topRows(8), Eigen::VectorXi{{0, 1, 0, 1, 0, 1, 0, 1}},
                                          {0, 1}, {1, 2, 5});
                 }),
                 "fewer than the anomalous queries"));
  CHECK(contains(message_of([&] {
                   meta::ClassTaskSampler(x, labels, {0, 1}, {30, 12, 4});
                 }),
                 "class 0 has 20 rows"));
}

TEST_CASE("train: seeded, logged, checkpointed, resumable bit for bit", "[meta][trainer]") {
  const PointSampler sampler{4};
  meta::TrainerOptions options;
  options.epochs = 4;
  options.steps_per_epoch = 6;
  options.meta_batch = 3;
  options.adam.lr = 0.05;
  auto validate = [](const Eigen::VectorXd& theta) { return -(theta.array() - 1.05).abs().sum(); };
  const Eigen::VectorXd theta0 = Eigen::VectorXd::Zero(4);

  const auto straight = meta::train(theta0, quadratic_step, sampler, validate, options);
  REQUIRE(straight.history.size() == 4);
  CHECK(straight.history.back().outer_loss < straight.history.front().outer_loss);
  CHECK(straight.history.back().validation > straight.initial_validation);
  CHECK(meta::train(theta0, quadratic_step, sampler, validate, options).theta == straight.theta);
  options.seed = 99;
  CHECK(meta::train(theta0, quadratic_step, sampler, validate, options).theta != straight.theta);
  options.seed = 2026;

  // Two epochs, then resume to four: the same parameters, bit for bit, and a four-line log.
  const auto dir = fresh_dir("resume");
  options.checkpoint_dir = dir / "ckpt";
  options.log_path = dir / "log.jsonl";
  std::filesystem::create_directories(dir);
  options.epochs = 2;
  (void)meta::train(theta0, quadratic_step, sampler, validate, options);
  options.epochs = 4;
  options.resume = true;
  const auto resumed = meta::train(theta0, quadratic_step, sampler, validate, options);
  CHECK(resumed.start_epoch == 2);
  CHECK(resumed.history.size() == 2);
  CHECK(resumed.theta == straight.theta);
  std::ifstream log(options.log_path);
  std::string line;
  int lines = 0;
  while (std::getline(log, line)) {
    ++lines;
    CHECK(contains(line, "\"epoch\": " + std::to_string(lines) + ","));
  }
  CHECK(lines == 4);
  CHECK(baypr::read_npy_matrix<double>(options.checkpoint_dir / "theta-4.npy").reshaped() ==
        straight.theta);
  CHECK(!std::filesystem::exists(options.checkpoint_dir /
                                 "theta-2.npy"));  // the older epoch's files are gone
  for (const auto& entry : std::filesystem::directory_iterator(options.checkpoint_dir)) {
    CHECK(!contains(entry.path().filename().string(), ".tmp"));  // no temporary file left behind
  }

  // A checkpoint of another model's size is an io_error naming its file.
  const Eigen::VectorXd wider = Eigen::VectorXd::Zero(5);
  CHECK(contains(
      message_of([&] { (void)meta::train(wider, quadratic_step, sampler, validate, options); }),
      "baypr::meta::train: file '" + (options.checkpoint_dir / "theta-4.npy").string() +
          "': has 4 parameters, the model 5"));

  // A corrupt checkpoint is an io_error naming it; a missing one starts from theta0.
  std::ofstream(options.checkpoint_dir / "state.txt") << "epochs banana\n";
  CHECK(contains(
      message_of([&] { (void)meta::train(theta0, quadratic_step, sampler, validate, options); }),
      "state.txt': is malformed"));
  options.checkpoint_dir = dir / "none";
  CHECK(meta::train(theta0, quadratic_step, sampler, validate, options).start_epoch == 0);
  // A checkpoint directory that cannot be created (a file is in the way) is an io_error naming
  // the trainer and the path, not a std::filesystem::filesystem_error.
  std::ofstream(dir / "a-file") << "x";
  options.checkpoint_dir = dir / "a-file" / "ckpt";
  options.resume = false;
  bool io_error = false;
  try {
    (void)meta::train(theta0, quadratic_step, sampler, validate, options);
  } catch (const baypr::io_error& e) {
    io_error =
        contains(e.what(), "baypr::meta::train: directory '") && contains(e.what(), "a-file");
  }
  CHECK(io_error);
  options.resume = true;
  std::filesystem::remove_all(dir);

  // A step whose gradient has the wrong size is named, not accumulated out of bounds.
  auto short_step = [](const Eigen::VectorXd& theta, const meta::MetaEpisode& e) {
    auto r = quadratic_step(theta, e);
    r.gradient.conservativeResize(2);
    return r;
  };
  options.resume = false;
  options.checkpoint_dir.clear();
  options.log_path.clear();
  CHECK(contains(
      message_of([&] { (void)meta::train(theta0, short_step, sampler, validate, options); }),
      "(epoch 1, update 1, episode 1)' has size 2, expected 4"));
  options.steps_per_epoch = 0;
  CHECK(contains(
      message_of([&] { (void)meta::train(theta0, quadratic_step, sampler, validate, options); }),
      "steps_per_epoch"));
}

TEST_CASE("train: the observer sees every update and every epoch's record", "[meta][trainer]") {
  const PointSampler sampler{2};
  meta::TrainerOptions options;
  options.epochs = 3;
  options.steps_per_epoch = 4;
  options.meta_batch = 1;
  options.adam.lr = 0.05;
  std::vector<meta::TrainProgress> seen;
  std::vector<meta::EpochRecord> records;
  options.observer = [&](const meta::TrainProgress& p) {
    seen.push_back(p);
    if (p.epoch_end != nullptr) records.push_back(*p.epoch_end);
  };
  auto validate = [](const Eigen::VectorXd& theta) { return -theta.squaredNorm(); };
  const auto result =
      meta::train(Eigen::VectorXd::Zero(2), quadratic_step, sampler, validate, options);
  REQUIRE(seen.size() == 3 * (4 + 1));
  int updates = 0;
  for (std::size_t i = 0; i < seen.size(); ++i) {
    const auto& p = seen[i];
    const bool end = i % 5 == 4;
    CHECK((p.epoch_end != nullptr) == end);
    if (!end) ++updates;
    CHECK(p.epoch == static_cast<int>(i / 5) + 1);
    CHECK(p.update == (end ? 4 : static_cast<int>(i % 5) + 1));
    CHECK(p.updates_done == updates);
    CHECK((p.epochs == 3 && p.steps_per_epoch == 4 && p.total_updates == 12));
    CHECK(p.seconds >= 0.0);
    if (i > 0) CHECK(p.seconds >= seen[i - 1].seconds);
  }
  REQUIRE(records.size() == result.history.size());
  for (std::size_t e = 0; e < records.size(); ++e) {
    CHECK(records[e].epoch == result.history[e].epoch);
    CHECK(records[e].validation == result.history[e].validation);
    CHECK(records[e].outer_loss == result.history[e].outer_loss);
  }
  // The library's progress bar is an observer too: "never" is none; "always" draws to the stream.
  CHECK(!meta::progress_bar(stderr, meta::ProgressBar::never));
  std::FILE* sink = std::tmpfile();
  REQUIRE(sink != nullptr);
  options.observer = meta::progress_bar(sink, meta::ProgressBar::always);
  REQUIRE(options.observer);
  (void)meta::train(Eigen::VectorXd::Zero(2), quadratic_step, sampler, validate, options);
  std::rewind(sink);
  std::string drawn;
  for (int ch = std::fgetc(sink); ch != EOF; ch = std::fgetc(sink))
    drawn.push_back(static_cast<char>(ch));
  std::fclose(sink);
  CHECK(contains(drawn, "epoch 3/3  update 4/4"));
  CHECK(std::count(drawn.begin(), drawn.end(), '\n') == 3);  // one finished line per epoch
}

TEST_CASE(
    "train: returns the best-validation parameters, stops on patience, keeps the best across a "
    "resume",
    "[meta][trainer]") {
  // Validation rewards closeness to 0.3 while training pulls theta towards ~1.05: the best
  // validation is reached early (or at the start), and later epochs are worse.
  const PointSampler sampler{3};
  meta::TrainerOptions options;
  options.epochs = 8;
  options.steps_per_epoch = 5;
  options.meta_batch = 2;
  options.adam.lr = 0.05;
  auto validate = [](const Eigen::VectorXd& theta) { return -(theta.array() - 0.3).abs().sum(); };
  const Eigen::VectorXd theta0 = Eigen::VectorXd::Zero(3);

  options.keep_best = false;
  const auto last = meta::train(theta0, quadratic_step, sampler, validate, options);
  options.keep_best = true;
  const auto best = meta::train(theta0, quadratic_step, sampler, validate, options);
  REQUIRE(best.history.size() == 8);
  CHECK(best.last_theta == last.theta);
  // The best of the start and every epoch, and the parameters it returns score exactly that.
  double want = best.initial_validation;
  int want_epoch = 0;
  for (const auto& h : best.history) {
    if (h.validation > want) {
      want = h.validation;
      want_epoch = h.epoch;
    }
  }
  CHECK(best.best_validation == want);
  CHECK(best.best_epoch == want_epoch);
  CHECK(validate(best.theta) == want);
  CHECK(best.best_epoch > 0);
  CHECK(best.best_epoch < 8);
  CHECK(validate(best.theta) > validate(last.theta));

  // A validation that only falls: the start is returned.
  auto falling = [](const Eigen::VectorXd& theta) { return -theta.norm(); };
  const auto start = meta::train(theta0, quadratic_step, sampler, falling, options);
  CHECK(start.best_epoch == 0);
  CHECK(start.theta == theta0);

  // Patience: stops after that many epochs without a new best.
  options.patience = 2;
  const auto stopped = meta::train(theta0, quadratic_step, sampler, falling, options);
  CHECK(stopped.stopped_early);
  CHECK(stopped.history.size() == 2);
  options.patience = -1;
  CHECK(contains(
      message_of([&] { (void)meta::train(theta0, quadratic_step, sampler, validate, options); }),
      "argument 'options.patience'"));
  options.patience = 0;

  // Resumed half-way, the best is the uninterrupted run's.
  const auto dir = fresh_dir("best");
  options.checkpoint_dir = dir / "ckpt";
  options.epochs = 4;
  (void)meta::train(theta0, quadratic_step, sampler, validate, options);
  options.epochs = 8;
  options.resume = true;
  const auto resumed = meta::train(theta0, quadratic_step, sampler, validate, options);
  CHECK(resumed.best_epoch == best.best_epoch);
  CHECK(resumed.theta == best.theta);
  CHECK(resumed.last_theta == best.last_theta);
  std::filesystem::remove_all(dir);
}
