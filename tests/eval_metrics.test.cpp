// Evaluation metrics (baypr/eval/metrics.hpp) against scikit-learn / SciPy reference values, hand
// computed cases, the invariances AUROC must have, the bootstrap interval's behaviour (including
// its coverage in a small simulation), and bad input.
#include "baypr/eval/metrics.hpp"

#include <Eigen/Core>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/messages.hpp"

using baypr::test::contains;
using baypr::test::message_of;

using baypr::test::relative_error;

namespace {

// One block of tests/reference/metrics.txt (format in tests/reference/generate_metrics.py): the
// header line's tokens and each "key values..." line.
struct Block {
  std::vector<std::string> header;
  std::map<std::string, std::vector<double>> values;
  long line = 0;

  bool has(const std::string& key) const { return values.count(key) != 0; }

  const std::vector<double>& get(const std::string& key, std::size_t count) const {
    const auto it = values.find(key);
    if (it == values.end())
      throw std::runtime_error("metrics.txt: block at line " + std::to_string(line) + " has no '" +
                               key + "'");
    if (it->second.size() != count)
      throw std::runtime_error("metrics.txt: '" + key + "' of the block at line " +
                               std::to_string(line) + " has " + std::to_string(it->second.size()) +
                               " values, expected " + std::to_string(count));
    return it->second;
  }

  double scalar(const std::string& key) const { return get(key, 1).front(); }

  Eigen::VectorXd vector(const std::string& key, std::size_t count) const {
    const auto& v = get(key, count);
    return Eigen::Map<const Eigen::VectorXd>(v.data(), static_cast<Eigen::Index>(v.size()));
  }

  std::size_t size() const { return static_cast<std::size_t>(std::stoul(header.at(2))); }
};

std::vector<Block> read_blocks(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open '" + path + "'");
  std::vector<Block> blocks;
  Block current;
  bool open = false;
  long line_no = 0;
  std::string line;
  while (std::getline(in, line)) {
    ++line_no;
    std::istringstream tokens(line);
    std::string key;
    if (!(tokens >> key) || key.front() == '#') continue;
    const auto fail = [&](const std::string& what) {
      throw std::runtime_error(path + ":" + std::to_string(line_no) + ": " + what);
    };
    if (key == "case" || key == "interval") {
      if (open) fail("'" + key + "' before 'end'");
      current = Block{};
      current.line = line_no;
      current.header.push_back(key);
      for (std::string t; tokens >> t;) current.header.push_back(t);
      if (current.header.size() != (key == "case" ? 3U : 4U)) fail("malformed header");
      open = true;
    } else if (key == "end") {
      if (!open) fail("'end' outside a block");
      blocks.push_back(std::move(current));
      open = false;
    } else {
      if (!open) fail("'" + key + "' outside a block");
      if (current.has(key)) fail("repeated key '" + key + "'");
      auto& values = current.values[key];
      for (std::string t; tokens >> t;) {
        char* end = nullptr;
        const double v = std::strtod(t.c_str(), &end);
        if (end == t.c_str() || *end != '\0') fail("not a number: '" + t + "'");
        values.push_back(v);
      }
    }
  }
  if (open) throw std::runtime_error(path + ": last block has no 'end'");
  return blocks;
}

const std::vector<Block>& blocks() {
  static const auto all = read_blocks(BAYPR_TEST_DATA_DIR "/metrics.txt");
  return all;
}

// n_pos anomalies ~ N(shift, 1) followed by n_neg normals ~ N(0, 1): true AUROC Phi(shift/sqrt 2).
void binormal(Eigen::Index n_pos, Eigen::Index n_neg, double shift, std::mt19937_64& rng,
              Eigen::VectorXd& scores, Eigen::VectorXi& labels) {
  std::normal_distribution<double> normal;
  scores.resize(n_pos + n_neg);
  labels.resize(n_pos + n_neg);
  for (Eigen::Index i = 0; i < n_pos + n_neg; ++i) {
    labels(i) = i < n_pos ? 1 : 0;
    scores(i) = normal(rng) + (i < n_pos ? shift : 0.0);
  }
}

const auto auroc_metric = [](const Eigen::VectorXd& s, const Eigen::VectorXi& l) {
  return baypr::auroc(s, l);
};

}  // namespace

TEST_CASE("metrics match scikit-learn reference values", "[metrics][reference]") {
  std::size_t cases = 0, curves = 0;
  double worst_auroc = 0, worst_ap = 0, worst_f1 = 0, worst_roc = 0;
  for (const auto& b : blocks()) {
    if (b.header[0] != "case") continue;
    ++cases;
    INFO("case " << b.header[1]);
    const std::size_t n = b.size();
    const Eigen::VectorXd scores = b.vector("scores", n);
    const Eigen::VectorXi labels = b.vector("labels", n).cast<int>();

    const double auroc = baypr::auroc(scores, labels);
    const double ap = baypr::average_precision(scores, labels);
    const auto f1 = baypr::best_f1(scores, labels);
    const auto& expected_f1 = b.get("best_f1", 4);
    worst_auroc = std::max(worst_auroc, relative_error(auroc, b.scalar("auroc")));
    worst_ap = std::max(worst_ap, relative_error(ap, b.scalar("average_precision")));
    CHECK(relative_error(auroc, b.scalar("auroc")) <= 1e-12);
    CHECK(relative_error(ap, b.scalar("average_precision")) <= 1e-12);
    CHECK(relative_error(f1.f1, expected_f1[0]) <= 1e-12);
    CHECK(f1.threshold == expected_f1[1]);
    CHECK(relative_error(f1.precision, expected_f1[2]) <= 1e-12);
    CHECK(relative_error(f1.recall, expected_f1[3]) <= 1e-12);
    worst_f1 = std::max({worst_f1, relative_error(f1.f1, expected_f1[0]),
                         relative_error(f1.precision, expected_f1[2]),
                         relative_error(f1.recall, expected_f1[3])});

    // The same samples as one 2 x n/2 score map, and split into two images.
    if (n % 2 == 0) {
      const Eigen::Index rows = 2, cols = static_cast<Eigen::Index>(n / 2);
      const Eigen::Map<const Eigen::MatrixXd> map(scores.data(), rows, cols);
      const Eigen::Map<const Eigen::MatrixXi> mask(labels.data(), rows, cols);
      CHECK(baypr::pixel_auroc(map, mask) == auroc);
      std::vector<Eigen::MatrixXd> maps = {map.leftCols(1), map.rightCols(cols - 1)};
      std::vector<Eigen::MatrixXi> masks = {mask.leftCols(1), mask.rightCols(cols - 1)};
      CHECK(baypr::pixel_auroc(maps, masks) == auroc);
    }

    if (b.has("roc_fpr")) {
      ++curves;
      const auto m = b.values.at("roc_fpr").size();
      const auto roc = baypr::roc_curve(scores, labels);
      REQUIRE(static_cast<std::size_t>(roc.fpr.size()) == m);
      const double e =
          std::max(baypr::test::max_elementwise_relative_error(roc.fpr, b.vector("roc_fpr", m)),
                   baypr::test::max_elementwise_relative_error(roc.tpr, b.vector("roc_tpr", m)));
      worst_roc = std::max(worst_roc, e);
      CHECK(e <= 1e-12);
      CHECK(roc.thresholds == b.vector("roc_thresholds", m));
    }
  }
  CHECK(cases >= 24);
  CHECK(curves >= 15);
  WARN("worst relative error vs scikit-learn: auroc "
       << worst_auroc << ", average_precision " << worst_ap << ", best_f1 " << worst_f1 << ", roc "
       << worst_roc);
}

TEST_CASE("mean_interval matches the 60-digit t quantile and SciPy's t.ppf",
          "[metrics][reference]") {
  std::size_t count = 0;
  double worst = 0, worst_scipy = 0;
  for (const auto& b : blocks()) {
    if (b.header[0] != "interval") continue;
    ++count;
    INFO("interval " << b.header[1]);
    const std::size_t n = b.size();
    const double level = std::stod(b.header[3]);
    const Eigen::VectorXd values = b.vector("values", n);
    const auto r = baypr::mean_interval(values, level);
    CHECK(r.count == static_cast<Eigen::Index>(n));
    CHECK(r.level == level);
    CHECK(relative_error(r.mean, b.scalar("mean")) <= 1e-12);
    CHECK(relative_error(r.half_width, b.scalar("half_width")) <= 1e-12);
    CHECK(r.lower == r.mean - r.half_width);
    CHECK(r.upper == r.mean + r.half_width);
    // The t quantile baypr used, recovered from the half width.
    const double sd =
        std::sqrt((values.array() - values.mean()).square().sum() / static_cast<double>(n - 1));
    const double t = r.half_width / (sd / std::sqrt(static_cast<double>(n)));
    CHECK(relative_error(t, b.scalar("t")) <= 1e-12);
    CHECK(relative_error(t, b.scalar("t_scipy")) <= 1e-8);  // SciPy's own accuracy, see generator
    worst = std::max({worst, relative_error(r.mean, b.scalar("mean")),
                      relative_error(r.half_width, b.scalar("half_width"))});
    worst_scipy = std::max(worst_scipy, relative_error(t, b.scalar("t_scipy")));
    // The std::vector overload agrees exactly.
    const std::vector<double> v(values.data(), values.data() + values.size());
    CHECK(baypr::mean_interval(v, level).half_width == r.half_width);
  }
  CHECK(count >= 30);
  WARN("mean_interval worst relative error " << worst << "; t vs scipy.stats.t.ppf "
                                             << worst_scipy);
}

TEST_CASE("hand-computed small cases", "[metrics]") {
  const Eigen::Vector4d s(0.1, 0.4, 0.35, 0.8);
  const Eigen::Vector4i y(0, 0, 1, 1);
  // Pairs (positive, negative): 0.8 beats both, 0.35 beats 0.1 only: 3 / 4.
  CHECK(baypr::auroc(s, y) == 0.75);
  // Descending: 0.8 (+) P 1 R 1/2; 0.4 (-); 0.35 (+) P 2/3 R 1: AP = 1/2 + (1/2)(2/3) = 5/6.
  CHECK(relative_error(baypr::average_precision(s, y), 5.0 / 6.0) <= 1e-15);
  const auto f1 = baypr::best_f1(s, y);
  CHECK(f1.f1 == 0.8);  // at 0.35: TP 2, FP 1, FN 0 -> 2*2 / (2*2 + 1)
  CHECK(f1.threshold == 0.35);
  CHECK(f1.precision == 2.0 / 3.0);
  CHECK(f1.recall == 1.0);
  const auto roc = baypr::roc_curve(s, y);
  CHECK(roc.fpr == Eigen::Vector<double, 5>(0, 0, 0.5, 0.5, 1));
  CHECK(roc.tpr == Eigen::Vector<double, 5>(0, 0.5, 0.5, 1, 1));
  CHECK(std::isinf(roc.thresholds(0)));
  CHECK(roc.thresholds.tail(4) == Eigen::Vector4d(0.8, 0.4, 0.35, 0.1));

  // Other input types give the same: float scores, bool / double labels, a row vector, a
  // strided map, an expression (including a product, evaluated once).
  const Eigen::Vector4f sf = s.cast<float>();
  const Eigen::Matrix<bool, 4, 1> yb(false, false, true, true);
  CHECK(baypr::auroc(sf, yb) == 0.75);
  CHECK(baypr::auroc(s.transpose(), y.cast<double>()) == 0.75);
  const double interleaved[8] = {0.1, -1, 0.4, -1, 0.35, -1, 0.8, -1};
  const Eigen::Map<const Eigen::VectorXd, 0, Eigen::InnerStride<2>> strided(interleaved, 4);
  CHECK(baypr::auroc(strided, y) == 0.75);
  CHECK(baypr::auroc(2.0 * s.array().matrix(), y) == 0.75);
  const Eigen::Matrix4d twice = 2.0 * Eigen::Matrix4d::Identity();
  CHECK(baypr::auroc(twice * s, y) == 0.75);
  Eigen::MatrixXd block_source = Eigen::MatrixXd::Zero(6, 3);
  block_source.block(1, 1, 4, 1) = s;
  CHECK(baypr::auroc(block_source.block(1, 1, 4, 1), y) == 0.75);

  // All scores tied: every threshold flags everything.
  const Eigen::Vector4d tied = Eigen::Vector4d::Constant(1.0);
  const Eigen::Vector4i y2(0, 1, 0, 1);
  CHECK(baypr::auroc(tied, y2) == 0.5);
  CHECK(baypr::average_precision(tied, y2) == 0.5);
  CHECK(baypr::best_f1(tied, y2).f1 == 2.0 / 3.0);
  CHECK(baypr::roc_curve(tied, y2).fpr.size() == 2);

  // Partial ties: positive 0.5 ties a negative (1/2), beats 0.2 (1); positive 0.9 beats both.
  CHECK(baypr::auroc(Eigen::Vector4d(0.5, 0.5, 0.2, 0.9), Eigen::Vector4i(1, 0, 0, 1)) ==
        3.5 / 4.0);

  // Equal F1 at two thresholds: the higher one is returned.
  // Descending 4(+) 3(-) 2(-) 1(+) 0(-): F1 at 4: 2/(2+1) = 2/3; at 1: 4/(2+4) = 2/3.
  const auto tie =
      baypr::best_f1(Eigen::Vector<double, 5>(4, 3, 2, 1, 0), Eigen::Vector<int, 5>(1, 0, 0, 1, 0));
  CHECK(tie.f1 == 2.0 / 3.0);
  CHECK(tie.threshold == 4.0);

  // mean_interval of {1, 2, 3}: mean 2, s 1. With 2 degrees of freedom P(|T| <= t) =
  // t / sqrt(2 + t^2), so t_{0.975, 2} = sqrt(2 L^2 / (1 - L^2)), L = 0.95: 4.3026527297494...
  // (SciPy's t.ppf(0.975, 2) = 4.302652729911275 is 3.8e-11 off).
  const auto mi = baypr::mean_interval(Eigen::Vector3d(1, 2, 3));
  CHECK(mi.mean == 2.0);
  const double t2 = std::sqrt(2.0 * 0.95 * 0.95 / (1.0 - 0.95 * 0.95));
  CHECK(relative_error(mi.half_width, t2 / std::sqrt(3.0)) <= 1e-14);
  CHECK(mi.level == 0.95);
  // Identical values: a zero-width interval, not NaN.
  const auto flat = baypr::mean_interval(Eigen::Vector3d(0.5, 0.5, 0.5), 0.9);
  CHECK(flat.lower == 0.5);
  CHECK(flat.upper == 0.5);

  // One score map with a masked defect: 2 defective pixels both above all 4 clean ones.
  Eigen::Matrix<float, 2, 3> map;
  map << 0.1f, 0.9f, 0.2f, 0.3f, 0.8f, 0.0f;
  Eigen::Matrix<int, 2, 3> mask;
  mask << 0, 1, 0, 0, 1, 0;
  CHECK(baypr::pixel_auroc(map, mask) == 1.0);
  CHECK(baypr::pixel_auroc(map.array(), mask.array()) == 1.0);
}

TEST_CASE("AUROC is invariant under monotone transforms and flips under negation",
          "[metrics][invariance]") {
  std::mt19937_64 rng(11);
  for (const bool with_ties : {false, true}) {
    Eigen::VectorXd s;
    Eigen::VectorXi y;
    binormal(120, 380, 0.7, rng, s, y);
    if (with_ties) s = (4.0 * s.array()).round().matrix();
    INFO("ties " << with_ties);
    const double a = baypr::auroc(s, y);
    const double ap = baypr::average_precision(s, y);
    const double f1 = baypr::best_f1(s, y).f1;
    // Strictly increasing transforms keep every ordering and every tie: the metrics are equal.
    const Eigen::VectorXd e = s.array().exp();
    const Eigen::VectorXd affine = (3.0 * s.array() + 7.0).matrix();
    const Eigen::VectorXd cube = s.array().cube();
    for (const Eigen::VectorXd* t : {&e, &affine, &cube}) {
      CHECK(baypr::auroc(*t, y) == a);
      CHECK(baypr::average_precision(*t, y) == ap);
      CHECK(baypr::best_f1(*t, y).f1 == f1);
    }
    CHECK(baypr::auroc(s.array().atan().matrix(), y) == a);  // an expression
    // Reversing the order: AUROC(-s) = 1 - AUROC(s), ties included.
    CHECK(std::abs(baypr::auroc(-s, y) + a - 1.0) <= 1e-15);
    // Swapping the classes does the same.
    CHECK(std::abs(baypr::auroc(s, (1 - y.array()).matrix()) + a - 1.0) <= 1e-15);
    // Shuffling the samples changes nothing.
    std::vector<Eigen::Index> order(static_cast<std::size_t>(s.size()));
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<Eigen::Index>(i);
    std::shuffle(order.begin(), order.end(), rng);
    Eigen::VectorXd s2(s.size());
    Eigen::VectorXi y2(y.size());
    for (Eigen::Index i = 0; i < s.size(); ++i) {
      s2(i) = s(order[static_cast<std::size_t>(i)]);
      y2(i) = y(order[static_cast<std::size_t>(i)]);
    }
    CHECK(baypr::auroc(s2, y2) == a);
    CHECK(baypr::average_precision(s2, y2) == ap);
    // The ROC curve's trapezoidal area is the AUROC.
    const auto roc = baypr::roc_curve(s, y);
    double area = 0.0;
    for (Eigen::Index k = 1; k < roc.fpr.size(); ++k)
      area += (roc.fpr(k) - roc.fpr(k - 1)) * (roc.tpr(k) + roc.tpr(k - 1)) / 2.0;
    CHECK(std::abs(area - a) <= 1e-14);
    CHECK(roc.fpr(roc.fpr.size() - 1) == 1.0);
    CHECK(roc.tpr(roc.tpr.size() - 1) == 1.0);
  }
}

TEST_CASE("bootstrap interval: contains the estimate, narrows with data, is reproducible",
          "[metrics][bootstrap]") {
  std::mt19937_64 data_rng(3);
  Eigen::VectorXd s_small, s_large;
  Eigen::VectorXi y_small, y_large;
  binormal(30, 70, 1.0, data_rng, s_small, y_small);
  binormal(300, 700, 1.0, data_rng, s_large, y_large);

  std::mt19937_64 rng(42);
  const auto small = baypr::bootstrap_interval(auroc_metric, s_small, y_small, 500, 0.95, rng);
  CHECK(small.estimate == baypr::auroc(s_small, y_small));
  CHECK(small.level == 0.95);
  CHECK(small.lower < small.estimate);
  CHECK(small.estimate < small.upper);
  CHECK(small.lower >= 0.0);
  CHECK(small.upper <= 1.0);

  const auto large = baypr::bootstrap_interval(auroc_metric, s_large, y_large, 500, 0.95, rng);
  CHECK(large.lower < large.estimate);
  CHECK(large.estimate < large.upper);
  // Ten times the data: the width shrinks by about sqrt(10) ~ 3.2.
  const double ratio = (small.upper - small.lower) / (large.upper - large.lower);
  CHECK(ratio > 2.0);
  CHECK(ratio < 5.0);
  // A lower level gives a narrower interval from the same resamples.
  std::mt19937_64 rng_a(5), rng_b(5);
  const auto i95 = baypr::bootstrap_interval(auroc_metric, s_small, y_small, 400, 0.95, rng_a);
  const auto i50 = baypr::bootstrap_interval(auroc_metric, s_small, y_small, 400, 0.5, rng_b);
  CHECK(i50.lower > i95.lower);
  CHECK(i50.upper < i95.upper);

  // The same seed reproduces the interval exactly; another seed does not.
  std::mt19937_64 r1(2024), r2(2024), r3(2025);
  const auto a = baypr::bootstrap_interval(auroc_metric, s_small, y_small, 200, 0.9, r1);
  const auto b = baypr::bootstrap_interval(auroc_metric, s_small, y_small, 200, 0.9, r2);
  const auto c = baypr::bootstrap_interval(auroc_metric, s_small, y_small, 200, 0.9, r3);
  CHECK(a.lower == b.lower);
  CHECK(a.upper == b.upper);
  CHECK((a.lower != c.lower || a.upper != c.upper));

  // Any metric works, and every resample keeps both classes and the class sizes.
  std::mt19937_64 r4(9);
  Eigen::Index calls = 0;
  const auto counted = baypr::bootstrap_interval(
      [&](const Eigen::VectorXd& s, const Eigen::VectorXi& l) {
        ++calls;
        CHECK(s.size() == 100);
        CHECK(l.sum() == 30);
        return baypr::average_precision(s, l);
      },
      s_small, y_small, 50, 0.9, r4);
  CHECK(calls == 51);  // the full data, then 50 resamples
  CHECK(counted.estimate == baypr::average_precision(s_small, y_small));
}

TEST_CASE("bootstrap interval covers the true AUROC of a binormal model at about the nominal rate",
          "[metrics][bootstrap][coverage]") {
  // Anomalies ~ N(1, 1), normals ~ N(0, 1): true AUROC = Phi(1 / sqrt 2) = erfc(-1/2) / 2.
  const double truth = 0.5 * std::erfc(-0.5);
  const int trials = 200;
  const double level = 0.9;
  std::mt19937_64 rng(123);
  int covered = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < trials; ++t) {
    Eigen::VectorXd s;
    Eigen::VectorXi y;
    binormal(40, 60, 1.0, rng, s, y);
    const auto ci = baypr::bootstrap_interval(auroc_metric, s, y, 200, level, rng);
    if (ci.lower <= truth && truth <= ci.upper) ++covered;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double coverage = covered / static_cast<double>(trials);
  // Binomial sd at 0.9 over 200 trials is 0.021; the percentile bootstrap under-covers a little
  // at this size.
  WARN("bootstrap coverage " << coverage << " at nominal " << level << " (" << trials << " trials, "
                             << seconds << " s)");
  CHECK(coverage >= 0.82);
  CHECK(coverage <= 0.96);
}

TEST_CASE("bad input names the function, the argument and the index", "[metrics][errors]") {
  const Eigen::Vector4d s(0.1, 0.4, 0.35, 0.8);
  const Eigen::Vector4i y(0, 0, 1, 1);
  using E = baypr::invalid_argument;

  CHECK_THROWS_AS(baypr::auroc(s, Eigen::Vector3i(0, 1, 0)), E);
  auto m = message_of([&] { (void)baypr::auroc(s, Eigen::Vector3i(0, 1, 0)); });
  CHECK(contains(m, "baypr::auroc: argument 'labels' has size 3, expected 4"));

  Eigen::Vector4d bad = s;
  bad(2) = std::nan("");
  m = message_of([&] { (void)baypr::average_precision(bad, y); });
  CHECK(contains(m,
                 "baypr::average_precision: argument 'scores' must be finite, got nan at index 2"));
  bad(2) = -std::numeric_limits<double>::infinity();
  m = message_of([&] { (void)baypr::best_f1(bad, y); });
  CHECK(contains(m, "baypr::best_f1: argument 'scores' must be finite, got -inf at index 2"));

  m = message_of([&] { (void)baypr::roc_curve(s, Eigen::Vector4i(0, 2, 1, 1)); });
  CHECK(contains(m, "baypr::roc_curve: argument 'labels' must be 0 or 1, got 2 at index 1"));
  m = message_of([&] { (void)baypr::auroc(s, Eigen::Vector4d(0, 0.5, 1, 1)); });
  CHECK(contains(m, "argument 'labels' must be 0 or 1, got 0.5 at index 1"));

  m = message_of([&] { (void)baypr::auroc(s, Eigen::Vector4i(1, 1, 1, 1)); });
  CHECK(contains(m,
                 "baypr::auroc: argument 'labels' must contain both classes (0 and 1), got 4 "
                 "positives and 0 negatives"));
  m = message_of([&] { (void)baypr::auroc(Eigen::VectorXd(), Eigen::VectorXi()); });
  CHECK(contains(m, "must contain both classes"));
  m = message_of([&] { (void)baypr::auroc(Eigen::Matrix2d::Identity(), y); });
  CHECK(contains(m, "baypr::auroc: argument 'scores' must be a vector, got a 2x2 matrix"));

  // pixel_auroc: image, row and column.
  std::vector<Eigen::MatrixXd> maps = {Eigen::MatrixXd::Zero(2, 2), Eigen::MatrixXd::Zero(3, 2)};
  std::vector<Eigen::MatrixXi> masks = {Eigen::MatrixXi::Zero(2, 2), Eigen::MatrixXi::Ones(3, 2)};
  CHECK(baypr::pixel_auroc(maps, masks) == 0.5);
  maps[1](2, 1) = std::nan("");
  m = message_of([&] { (void)baypr::pixel_auroc(maps, masks); });
  CHECK(contains(m,
                 "baypr::pixel_auroc: argument 'maps' must be finite, got nan at image 1, "
                 "row 2, column 1"));
  maps[1](2, 1) = 0.0;
  masks[0](1, 0) = 3;
  m = message_of([&] { (void)baypr::pixel_auroc(maps, masks); });
  CHECK(contains(m, "argument 'masks' must be 0 or 1, got 3 at image 0, row 1, column 0"));
  masks[0](1, 0) = 0;
  masks[1] = Eigen::MatrixXi::Ones(2, 3);
  m = message_of([&] { (void)baypr::pixel_auroc(maps, masks); });
  CHECK(contains(m, "argument 'masks' has shape 2x3 at image 1, expected that of its map, 3x2"));
  masks.pop_back();
  m = message_of([&] { (void)baypr::pixel_auroc(maps, masks); });
  CHECK(contains(m, "argument 'masks' has size 1, expected 2"));
  m = message_of(
      [&] { (void)baypr::pixel_auroc(Eigen::Matrix2d::Zero(), Eigen::Matrix2i::Zero()); });
  CHECK(contains(m, "baypr::pixel_auroc: argument 'masks' must contain both classes"));
  m = message_of(
      [&] { (void)baypr::pixel_auroc(Eigen::Matrix2d::Zero(), Eigen::Vector4i::Zero()); });
  CHECK(contains(m, "argument 'masks' has shape 4x1, expected that of its map, 2x2"));

  // bootstrap_interval.
  std::mt19937_64 rng(1);
  m = message_of([&] { (void)baypr::bootstrap_interval(auroc_metric, s, y, 0, 0.9, rng); });
  CHECK(contains(m, "baypr::bootstrap_interval: argument 'resamples' must be >= 1, got 0"));
  m = message_of([&] { (void)baypr::bootstrap_interval(auroc_metric, s, y, 10, 1.0, rng); });
  CHECK(contains(m, "baypr::bootstrap_interval: argument 'level' must be in (0, 1), got 1"));
  bad = s;
  bad(3) = std::numeric_limits<double>::infinity();
  m = message_of([&] { (void)baypr::bootstrap_interval(auroc_metric, bad, y, 10, 0.9, rng); });
  CHECK(contains(m,
                 "baypr::bootstrap_interval: argument 'scores' must be finite, got inf at "
                 "index 3"));
  CHECK_THROWS_AS(baypr::bootstrap_interval(
                      [](const Eigen::VectorXd&, const Eigen::VectorXi&) { return std::nan(""); },
                      s, y, 10, 0.9, rng),
                  baypr::numerical_error);

  // mean_interval.
  m = message_of([&] { (void)baypr::mean_interval(Eigen::VectorXd::Ones(1)); });
  CHECK(contains(m, "baypr::mean_interval: argument 'values' must have at least 2 entries, got 1"));
  m = message_of([&] { (void)baypr::mean_interval(Eigen::Vector3d(1, std::nan(""), 2)); });
  CHECK(contains(m, "baypr::mean_interval: argument 'values' must be finite, got nan at index 1"));
  m = message_of([&] { (void)baypr::mean_interval(Eigen::Vector3d(1, 2, 3), 0.0); });
  CHECK(contains(m, "baypr::mean_interval: argument 'level' must be in (0, 1), got 0"));
}

TEST_CASE("grouped_bootstrap_interval: two-level resampling, exact small cases, bad input",
          "[eval]") {
  std::mt19937_64 rng(5);
  // Two groups of one value each, 0 and 1: a resample's mean is 0, 1/2 or 1 with probabilities
  // 1/4, 1/2, 1/4, so the 95% interval runs from 0 to 1 and the estimate is 1/2.
  const Eigen::Vector2d two(0.0, 1.0);
  const auto i2 = baypr::grouped_bootstrap_interval(two, {7, 9}, 4000, 0.95, rng);
  CHECK(i2.mean == 0.5);
  CHECK(i2.lower == 0.0);
  CHECK(i2.upper == 1.0);
  CHECK(i2.count == 2);
  // Equal values: a degenerate interval.
  const auto flat = baypr::grouped_bootstrap_interval(Eigen::VectorXd::Constant(6, 0.25),
                                                      {1, 1, 2, 2, 3, 3}, 200, 0.95, rng);
  CHECK(flat.lower == 0.25);
  CHECK(flat.upper == 0.25);
  // Groups whose means differ: wider than the t interval that treats every value as independent,
  // and the same seed gives the same interval.
  Eigen::VectorXd v(40);
  std::vector<int> g(40);
  std::normal_distribution<double> nd(0.0, 0.05);
  for (int i = 0; i < 40; ++i) {
    g[static_cast<std::size_t>(i)] = i / 10;
    v(i) = 0.1 * (i / 10) + nd(rng);
  }
  std::mt19937_64 a(11), b(11);
  const auto grouped = baypr::grouped_bootstrap_interval(v, g, 2000, 0.95, a);
  const auto again = baypr::grouped_bootstrap_interval(v, g, 2000, 0.95, b);
  CHECK(grouped.lower == again.lower);
  CHECK(grouped.upper == again.upper);
  const auto t = baypr::mean_interval(v);
  CHECK(std::abs(grouped.mean - v.mean()) < 1e-12);
  CHECK(grouped.upper - grouped.lower > 1.5 * (t.upper - t.lower));
  CHECK(grouped.lower < grouped.mean);
  CHECK(grouped.mean < grouped.upper);
  // Bad input names the argument.
  CHECK(contains(message_of([&] {
                   (void)baypr::grouped_bootstrap_interval(v, {1, 2}, 10, 0.95, rng);
                 }),
                 "baypr::grouped_bootstrap_interval: argument 'groups'"));
  CHECK(contains(
      message_of([&] {
        (void)baypr::grouped_bootstrap_interval(Eigen::Vector2d(1, 2), {3, 3}, 10, 0.95, rng);
      }),
      "at least 2 groups"));
  Eigen::VectorXd bad = v;
  bad(3) = std::nan("");
  CHECK(
      contains(message_of([&] { (void)baypr::grouped_bootstrap_interval(bad, g, 10, 0.95, rng); }),
               "argument 'values' must be finite, got nan at index 3"));
  CHECK(contains(message_of([&] { (void)baypr::grouped_bootstrap_interval(v, g, 0, 0.95, rng); }),
                 "argument 'resamples'"));
}

TEST_CASE("group_averaged: per episode, the mean over groups; no groups named", "[metrics]") {
  // values[g][e]: 3 groups, 2 episodes.
  const std::vector<std::vector<double>> values{{0.5, 1.0}, {0.75, 0.0}, {1.0, 0.5}};
  const auto out = baypr::group_averaged(
      values.size(), 2, [&](std::size_t g, std::size_t e) { return values[g][e]; });
  REQUIRE(out.size() == 2);
  CHECK(out[0] == 0.75);  // (0.5 + 0.75 + 1.0) / 3, exact in binary
  CHECK(out[1] == 0.5);
  CHECK(baypr::group_averaged(2, 0, [](std::size_t, std::size_t) { return 1.0; }).empty());
  CHECK(contains(message_of([] {
                   (void)baypr::group_averaged(0, 3, [](std::size_t, std::size_t) { return 1.0; });
                 }),
                 "baypr::group_averaged: argument 'groups' must be positive"));
}
