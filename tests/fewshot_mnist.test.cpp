// The IDX reader (crafted buffers and the real Fashion-MNIST files) and the one-class few-shot
// episode protocol end to end on real data.
#include <zlib.h>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "baypr/eval/episodes.hpp"
#include "baypr/io/idx.hpp"
#include "baypr_bench/methods.hpp"
#include "support/catch.hpp"
#include "support/messages.hpp"

using baypr::test::contains;
using baypr::test::message_of;

namespace {

const std::string fashion_dir = "/usr/share/datasets/fashion-mnist/";

std::string be32(std::uint32_t v) {
  std::string s(4, '\0');
  for (int k = 0; k < 4; ++k)
    s[static_cast<std::size_t>(k)] = static_cast<char>((v >> (24 - 8 * k)) & 0xFFU);
  return s;
}

// A 2 x 3 x 4 image file (pixel value = index) or a 2-label file.
std::string images_file(std::uint32_t n = 2, std::uint32_t rows = 3, std::uint32_t cols = 4) {
  std::string s = be32(0x00000803) + be32(n) + be32(rows) + be32(cols);
  for (std::uint32_t i = 0; i < n * rows * cols; ++i) s.push_back(static_cast<char>(i));
  return s;
}

std::string labels_file() {
  return be32(0x00000801) + be32(2) + std::string("\x07\x02", 2);
}

std::string gzip(const std::string& raw) {
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8,
                       Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&zs, static_cast<uLong>(raw.size())) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  zs.avail_in = static_cast<uInt>(raw.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

struct Fashion {
  baypr::IdxDataset train, test;
};

const Fashion& fashion() {
  static const Fashion data = [] {
    const std::string probe = fashion_dir + "train-images-idx3-ubyte.gz";
    INFO(
        "Fashion-MNIST not found: install it with scripts/deps data (Debian "
        "dataset-fashion-mnist)");
    REQUIRE(std::ifstream(probe).good());
    return Fashion{baypr::read_idx_dataset(fashion_dir + "train-images-idx3-ubyte.gz",
                                           fashion_dir + "train-labels-idx1-ubyte.gz"),
                   baypr::read_idx_dataset(fashion_dir + "t10k-images-idx3-ubyte.gz",
                                           fashion_dir + "t10k-labels-idx1-ubyte.gz")};
  }();
  return data;
}

}  // namespace

TEST_CASE("IDX: well-formed buffers, plain and gzip", "[io][idx]") {
  for (const bool compressed : {false, true}) {
    const std::string raw = images_file();
    const auto a = baypr::parse_idx(compressed ? gzip(raw) : raw, "crafted");
    REQUIRE(a.dims == std::vector<std::uint32_t>{2, 3, 4});
    const auto img = baypr::idx_images(a);
    CHECK(img.rows == 3);
    CHECK(img.cols == 4);
    REQUIRE(img.pixels.rows() == 2);
    REQUIRE(img.pixels.cols() == 12);
    CHECK(img.pixels(0, 0) == 0);
    CHECK(img.pixels(0, 5) == 5);  // row-major within an image
    CHECK(img.pixels(1, 11) == 23);
    const Eigen::MatrixXd unit = baypr::to_unit_interval(img);
    CHECK(unit(1, 11) == 23.0 / 255.0);
    const auto labels =
        baypr::idx_labels(baypr::parse_idx(compressed ? gzip(labels_file()) : labels_file()));
    CHECK(std::vector<int>(labels.begin(), labels.end()) == std::vector<int>{7, 2});
  }
  // Zero images is a valid (empty) file.
  CHECK(baypr::idx_images(baypr::parse_idx(images_file(0, 28, 28))).pixels.rows() == 0);
}

TEST_CASE("IDX: malformed buffers are named io_errors", "[io][idx]") {
  auto parse = [](const std::string& bytes) {
    return message_of([&] { (void)baypr::parse_idx(bytes, "crafted.idx"); });
  };
  std::string bad = images_file();
  bad[0] = 1;
  const std::string magic = parse(bad);
  CHECK(contains(magic, "baypr::parse_idx"));
  CHECK(contains(magic, "'crafted.idx'"));
  CHECK(contains(magic, "bad magic 0x01000803"));
  bad = images_file();
  bad[2] = 0x0D;  // float: a valid IDX type, not supported
  CHECK(contains(parse(bad), "unsupported IDX element type"));
  CHECK(contains(parse(std::string("\0\0", 2)), "truncated"));
  CHECK(contains(parse(be32(0x00000803) + be32(2)), "shorter than the 16-byte header"));
  const std::string full = images_file();
  const std::string truncated = parse(full.substr(0, full.size() - 1));
  CHECK(contains(truncated, "truncated: the header promises 24 data bytes, found 23"));
  CHECK(contains(parse(full + "x"), "1 trailing bytes"));
  CHECK(contains(parse(be32(0x00000803) + be32(0xFFFFFFFF) + be32(0xFFFFFFFF) + be32(0xFFFFFFFF)),
                 "more than"));

  // Wrong rank for what is asked.
  const auto labels = baypr::parse_idx(labels_file());
  const std::string as_images = message_of([&] { (void)baypr::idx_images(labels, "labels.idx"); });
  CHECK(contains(as_images, "baypr::idx_images"));
  CHECK(contains(as_images, "expected images (0x00000803"));
  CHECK(contains(message_of([&] { (void)baypr::idx_labels(baypr::parse_idx(images_file())); }),
                 "expected labels (0x00000801"));
  CHECK(
      contains(message_of([&] { (void)baypr::idx_images(baypr::parse_idx(images_file(2, 0, 4))); }),
               "wrong dimensions"));
  // Zero images of an absurd size: the data is empty, so only the per-image cap stops it (found by
  // the fuzzer: rows * cols overflowed Eigen::Index, and 2^31 empty columns took seconds to walk).
  CHECK(contains(message_of([&] {
                   (void)baypr::idx_images(
                       baypr::parse_idx(images_file(0, 0xFFFFFFFFU, 0xFFFFFFFFU)));
                 }),
                 "more than 16777216 per image"));
  CHECK(baypr::idx_images(baypr::parse_idx(images_file(0, 4096, 4096))).pixels.cols() ==
        4096 * 4096);

  // Corrupt gzip: a flipped byte in the deflate stream, a cut stream, and junk after it.
  std::string gz = gzip(images_file(4, 28, 28));
  const std::string cut = parse(gz.substr(0, gz.size() / 2));
  CHECK(contains(cut, "corrupt gzip"));
  CHECK(contains(parse(gz + "junk"), "corrupt gzip: 4 bytes after the end"));
  for (std::size_t k = 10; k < 16; ++k) gz[k] = static_cast<char>(~gz[k]);
  CHECK(contains(parse(gz), "corrupt gzip"));
  CHECK(contains(parse(std::string("\x1f\x8b", 2)), "corrupt gzip"));

  bool threw_io_error = false;
  try {
    (void)baypr::parse_idx(bad);
  } catch (const baypr::io_error&) {
    threw_io_error = true;
  }
  CHECK(threw_io_error);

  // Files: missing, and a label / image count mismatch.
  CHECK(contains(message_of([] { (void)baypr::read_idx_images("/nonexistent/x.gz"); }),
                 "baypr::read_idx_images: file '/nonexistent/x.gz': no such file"));
  const auto tmp = std::filesystem::temp_directory_path();
  CHECK(contains(message_of([&] { (void)baypr::read_idx_labels(tmp); }),
                 "baypr::read_idx_labels: file '" + tmp.string() + "': is a directory"));
  const auto crafted = tmp / "baypr-fewshot-test-bad-magic.idx";
  std::string bad_file = images_file();
  bad_file[0] = 1;
  std::ofstream(crafted, std::ios::binary) << bad_file;
  const std::string on_disk = message_of([&] { (void)baypr::read_idx_images(crafted); });
  std::filesystem::remove(crafted);
  CHECK(contains(on_disk, "baypr::read_idx_images: file '" + crafted.string() + "': bad magic"));
  const std::string mismatch = message_of([] {
    (void)baypr::read_idx_dataset(fashion_dir + "t10k-images-idx3-ubyte.gz",
                                  fashion_dir + "train-labels-idx1-ubyte.gz");
  });
  CHECK(contains(mismatch, "baypr::read_idx_dataset"));
  CHECK(contains(mismatch, "label / image count mismatch: 60000 labels for 10000 images"));
}

TEST_CASE("IDX: the real Fashion-MNIST files", "[io][idx][data]") {
  const Fashion& f = fashion();
  CHECK(f.train.images.pixels.rows() == 60000);
  CHECK(f.train.images.pixels.cols() == 784);
  CHECK(f.test.images.pixels.rows() == 10000);
  CHECK(f.test.images.pixels.cols() == 784);
  CHECK(f.train.images.rows == 28);
  CHECK(f.train.images.cols == 28);
  for (const auto* labels : {&f.train.labels, &f.test.labels}) {
    CHECK(*std::max_element(labels->begin(), labels->end()) == 9);
    CHECK(*std::min_element(labels->begin(), labels->end()) == 0);
  }
  // Balanced: 6000 / 1000 images per class.
  CHECK((f.train.labels.array() == 3).count() == 6000);
  CHECK((f.test.labels.array() == 3).count() == 1000);
  CHECK(f.train.images.pixels.maxCoeff() == 255);
}

TEST_CASE("one-class episodes on Fashion-MNIST: better than chance, reproducible",
          "[eval][episodes][data]") {
  const Fashion& f = fashion();
  // A subset keeps the test fast (and the sanitizer build tolerable).
  const Eigen::Index n_train = 6000, n_test = 2000;
  const Eigen::MatrixXd train = f.train.images.pixels.topRows(n_train).cast<double>() / 255.0;
  const Eigen::MatrixXd test = f.test.images.pixels.topRows(n_test).cast<double>() / 255.0;
  const auto standardiser = baypr::PixelStandardiser::fit(train);
  const Eigen::MatrixXd projection = baypr::gaussian_projection(784, 32, 7);
  baypr::FewShotData data;
  data.train_labels = f.train.labels.head(n_train);
  data.test_labels = f.test.labels.head(n_test);
  data.embeddings.push_back({"projection-32", standardiser.apply(train) * projection,
                             standardiser.apply(test) * projection});
  baypr::OneClassOptions options;
  options.classes = {1, 7};  // trouser, sneaker
  options.shots = {2, 4};
  options.episodes = 5;
  options.seed = 11;
  int progress_calls = 0;
  options.progress = [&](std::string_view) { ++progress_calls; };

  // The automatic path: K + 1 < d = 32, so the Bayesian scorers run on the low-rank path.
  const auto methods = baypr::standard_episode_methods();
  const auto a = baypr::run_one_class_episodes(data, options, methods);
  CHECK(progress_calls == 4);
  REQUIRE(a.methods.size() == 6);
  CHECK(a.methods[0] == "projection-32 / bayes llr");
  CHECK(a.methods[2] == "projection-32 / bayes llr (EB Psi0)");
  for (std::size_t m = 0; m < a.methods.size(); ++m) {
    double sum = 0.0;
    int count = 0;
    for (std::size_t k = 0; k < a.shots.size(); ++k) {
      const auto values = a.class_averaged(m, k);
      REQUIRE(values.size() == 5);
      for (const double v : values) {
        sum += v;
        ++count;
      }
    }
    INFO(a.methods[m]);
    CHECK(sum / count > 0.6);
  }
  // Out-of-range requests are named (the full split was not scored: it used to read past the end).
  CHECK(contains(
      message_of([&] { (void)a.class_averaged(0, 0, true); }),
      "baypr::OneClassResults::class_averaged: argument 'full' is true but the run did not score"));
  CHECK(contains(message_of([&] { (void)a.class_averaged(6, 0); }),
                 "argument 'm' must be < 6, got 6"));
  CHECK(contains(message_of([&] { (void)a.class_averaged(0, 2); }),
                 "argument 'k' must be < 2, got 2"));
  std::mt19937_64 draw(1);
  CHECK(contains(
      message_of([&] {
        (void)baypr::sample_without_replacement(std::vector<Eigen::Index>{1, 2}, 3, draw, "f", "n");
      }),
      "f: argument 'n' asks for 3 distinct draws from 2"));
  const auto b = baypr::run_one_class_episodes(data, options, methods);
  CHECK(a.auroc == b.auroc);  // bit-identical for a fixed seed
  // On three threads: the same episodes, the same values, in the same places; progress from the
  // calling thread, once per (class, K) as before.
  auto threaded = options;
  progress_calls = 0;
  threaded.threads = 3;
  CHECK(baypr::run_one_class_episodes(data, threaded, methods).auroc == a.auroc);
  CHECK(progress_calls == 4);
  // A method that throws on one thread: the exception reaches the caller (after every thread
  // has stopped).
  std::vector<baypr::EpisodeMethod> throwing = methods;
  throwing.push_back(
      {"throws", [](const Eigen::MatrixXd&, const Eigen::MatrixXd&) -> Eigen::VectorXd {
         throw std::runtime_error("a method failed");
       }});
  CHECK(message_of([&] { (void)baypr::run_one_class_episodes(data, threaded, throwing); }) ==
        "a method failed");
  threaded.threads = 0;
  CHECK(contains(message_of([&] { (void)baypr::run_one_class_episodes(data, threaded, methods); }),
                 "baypr::run_one_class_episodes: argument 'options.threads' must be >= 1, got 0"));
  options.seed = 12;
  const auto c = baypr::run_one_class_episodes(data, options, methods);
  CHECK(a.auroc != c.auroc);

  CHECK(contains(message_of([&] {
                   auto bad = options;
                   bad.shots = {7000};
                   (void)baypr::run_one_class_episodes(data, bad, methods);
                 }),
                 "baypr::run_one_class_episodes: argument 'options.shots' has K = 7000"));
}

TEST_CASE("run_task_episodes: user embeddings, image rows and patch rows", "[eval][episodes]") {
  // Normal rows near a 2-d subspace of R^6; anomalous queries pushed off it.
  std::mt19937_64 rng(7);
  std::normal_distribution<double> z;
  auto gaussian = [&](Eigen::Index r, Eigen::Index c) {
    Eigen::MatrixXd m(r, c);
    for (Eigen::Index j = 0; j < c; ++j)
      for (Eigen::Index i = 0; i < r; ++i) m(i, j) = z(rng);
    return m;
  };
  const Eigen::MatrixXd basis = gaussian(2, 6);
  auto normal_rows = [&](Eigen::Index n) {
    Eigen::MatrixXd x = gaussian(n, 2) * basis + 0.05 * gaussian(n, 6);
    return x;
  };
  const Eigen::MatrixXd support = normal_rows(12);
  Eigen::MatrixXd queries(20, 6);
  queries.topRows(14) = normal_rows(14);
  queries.bottomRows(6) = normal_rows(6) + 2.0 * gaussian(6, 6);
  Eigen::VectorXi labels = Eigen::VectorXi::Zero(20);
  labels.tail(6).setOnes();

  baypr::TaskOptions options;
  options.shots = {1, 3, 50};  // 50 > 12 support images: skipped
  options.episodes = 4;
  const auto methods = std::vector<baypr::EpisodeMethod>{
      baypr::make_episode_method("prototype", baypr::PrototypeScorer()),
      baypr::make_episode_method("gaussian", baypr::GaussianScorer())};
  const auto r = baypr::run_task_episodes(support, queries, labels, options, methods);
  REQUIRE(r.shots == std::vector<Eigen::Index>{1, 3});
  REQUIRE(r.auroc.size() == 2);
  REQUIRE(r.auroc[0][1].size() == 4);
  // The whole-support column is exactly the scorer fitted on every support row.
  baypr::PrototypeScorer proto;
  proto.fit(support);
  CHECK(r.full_support[0] == baypr::auroc(proto.score(queries), labels));
  CHECK(r.full_support[1] > 0.95);  // off-subspace anomalies are easy for a covariance model
  // Reproducible for a seed, different for another.
  CHECK(baypr::run_task_episodes(support, queries, labels, options, methods).auroc == r.auroc);
  auto threaded = options;  // on two threads: the same values in the same places
  threaded.threads = 2;
  CHECK(baypr::run_task_episodes(support, queries, labels, threaded, methods).auroc == r.auroc);
  threaded.threads = 0;
  CHECK(contains(message_of([&] {
                   (void)baypr::run_task_episodes(support, queries, labels, threaded, methods);
                 }),
                 "baypr::run_task_episodes: argument 'options.threads' must be >= 1, got 0"));
  options.seed = 1;
  CHECK(baypr::run_task_episodes(support, queries, labels, options, methods).auroc != r.auroc);

  SECTION("patch rows: image score = max over its patches") {
    // 3 patches per image; the anomaly lives in one patch of each anomalous query.
    Eigen::MatrixXd sp = normal_rows(12 * 3), qp = normal_rows(20 * 3);
    for (Eigen::Index i = 14; i < 20; ++i) qp.row(i * 3 + 1) += 3.0 * gaussian(1, 6);
    baypr::TaskOptions po = options;
    po.patches = 3;
    const auto pr = baypr::run_task_episodes(sp, qp, labels, po, methods);
    baypr::GaussianScorer g;
    g.fit(sp);
    const Eigen::VectorXd rows = g.score(qp);
    Eigen::VectorXd image(20);
    for (Eigen::Index i = 0; i < 20; ++i) image(i) = rows.segment(i * 3, 3).maxCoeff();
    CHECK(pr.full_support[1] == baypr::auroc(image, labels));
    CHECK(pr.full_support[1] > 0.95);
  }
  SECTION("bad input") {
    Eigen::VectorXi bad = labels;
    bad(3) = 2;
    CHECK(contains(message_of([&] {
                     (void)baypr::run_task_episodes(support, queries, bad, options, methods);
                   }),
                   "baypr::run_task_episodes: argument 'labels'"));
    CHECK(contains(message_of([&] {
                     (void)baypr::run_task_episodes(support, queries, Eigen::VectorXi::Zero(20),
                                                    options, methods);
                   }),
                   "both normal"));
    baypr::TaskOptions po = options;
    po.patches = 5;  // does not divide 12 rows
    CHECK(contains(
        message_of([&] { (void)baypr::run_task_episodes(support, queries, labels, po, methods); }),
        "options.patches"));
    const std::vector<baypr::EpisodeMethod> short_method = {
        {"short", [](const Eigen::MatrixXd&, const Eigen::MatrixXd& q) {
           return Eigen::VectorXd(Eigen::VectorXd::Zero(q.rows() - 1));
         }}};
    CHECK(contains(message_of([&] {
                     (void)baypr::run_task_episodes(support, queries, labels, options,
                                                    short_method);
                   }),
                   "argument 'methods[short] scores' has size 19, expected 20"));
    Eigen::MatrixXd nan_queries = queries;
    nan_queries(2, 2) = std::nan("");
    CHECK(contains(message_of([&] {
                     (void)baypr::run_task_episodes(support, nan_queries, labels, options, methods);
                   }),
                   "queries"));
  }
}
