// baypr/meta/torch.hpp: LibTorch modules as embeddings. References: TorchScript modules and their
// outputs / autograd gradients written by PyTorch (tests/reference/make_torch_module.py ->
// tests/reference/torch/), and, independently of torch, baypr's own Mlp::paper_head, which must
// agree with the torch adapter in forward, vjp, adapt() and meta_step().
//
// torch.hpp comes first: glog (through LibTorch) defines a CHECK macro that Catch2 also defines.
#include "baypr/meta/torch.hpp"
#undef CHECK

#include <unistd.h>

#include <Eigen/Core>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "baypr/io/npy.hpp"
#include "baypr/meta/adapt.hpp"
#include "baypr/meta/baselines.hpp"
#include "baypr/meta/gradcheck.hpp"
#include "baypr/meta/mlp.hpp"
#include "support/catch.hpp"
#include "support/messages.hpp"

namespace fs = std::filesystem;
using baypr::test::contains;
using baypr::test::message_of;
using namespace baypr::meta;

namespace {

const fs::path fixture_dir = fs::path(BAYPR_TEST_DATA_DIR) / "torch";

Eigen::MatrixXd load_matrix(const std::string& name) {
  return baypr::read_npy_matrix<double>(fixture_dir / (name + ".npy"));
}

Eigen::VectorXd load_vector(const std::string& name) {
  const Eigen::MatrixXd m = load_matrix(name);  // (n,) reads as n x 1
  return m.col(0);
}

double max_abs_diff(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  return (a - b).cwiseAbs().maxCoeff();
}

// torch's flat layout of Linear(in, out) - ReLU - LayerNorm(out) (W row-major) -> Mlp's (W
// column-major); b, gamma, beta are laid out alike. `back` converts the other way.
Eigen::VectorXd torch_to_mlp(const Eigen::VectorXd& t, Eigen::Index in, Eigen::Index out,
                             bool back = false) {
  Eigen::VectorXd m = t;
  for (Eigen::Index o = 0; o < out; ++o) {
    for (Eigen::Index i = 0; i < in; ++i) {
      if (back) {
        m(o * in + i) = t(i * out + o);
      } else {
        m(i * out + o) = t(o * in + i);
      }
    }
  }
  return m;
}

Eigen::MatrixXd uniform_matrix(std::mt19937_64& rng, Eigen::Index rows, Eigen::Index cols) {
  Eigen::MatrixXd m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i)
    m(i) = static_cast<double>(rng() >> 11) * 0x1.0p-52 - 1.0;
  return m;
}

torch::nn::Sequential paper_head_module(std::int64_t in, std::int64_t out) {
  return torch::nn::Sequential(torch::nn::Linear(in, out), torch::nn::ReLU(),
                               torch::nn::LayerNorm(torch::nn::LayerNormOptions({out})));
}

}  // namespace

TEST_CASE("TorchScriptEmbedding reproduces PyTorch's forward and autograd gradient",
          "[meta][torch]") {
  const TorchScriptEmbedding e(fixture_dir / "paper_head.pt", 6, 4);
  REQUIRE(e.input_dim() == 6);
  REQUIRE(e.output_dim() == 4);
  REQUIRE(e.parameter_count() == 6 * 4 + 4 + 4 + 4);
  const Eigen::VectorXd theta = load_vector("paper_head_parameters");
  REQUIRE(e.initial_parameters() == theta);  // exact: copied, not recomputed
  const Eigen::MatrixXd x = load_matrix("paper_head_inputs");
  CHECK(max_abs_diff(e.forward(theta, x), load_matrix("paper_head_outputs")) <= 1e-12);
  const Eigen::VectorXd g = e.vjp(theta, x, load_matrix("paper_head_d_outputs"));
  CHECK(max_abs_diff(g, load_vector("paper_head_gradient")) <= 1e-12);
  // No state carries between calls: another theta, then back, gives the same values again.
  (void)e.forward(Eigen::VectorXd(theta * 2.0), x);
  CHECK(e.forward(theta, x) == e.forward(theta, x));
  CHECK(max_abs_diff(e.forward(theta, x), load_matrix("paper_head_outputs")) <= 1e-12);
  CHECK(e.initial_parameters() == theta);
}

TEST_CASE("TorchScriptEmbedding with a sample shape (a small convolutional network)",
          "[meta][torch]") {
  const TorchScriptEmbedding e(fixture_dir / "conv.pt", 16, 3, {1, 4, 4});
  const Eigen::VectorXd theta = load_vector("conv_parameters");
  REQUIRE(e.parameter_count() == 2 * 9 + 2 + 3 * 8 + 3);
  REQUIRE(e.initial_parameters() == theta);
  const Eigen::MatrixXd x = load_matrix("conv_inputs");
  CHECK(max_abs_diff(e.forward(theta, x), load_matrix("conv_outputs")) <= 1e-12);
  CHECK(max_abs_diff(e.vjp(theta, x, load_matrix("conv_d_outputs")),
                     load_vector("conv_gradient")) <= 1e-12);
  const GradientCheck gc = check_embedding_gradient(e, theta, x, 5);
  CHECK(gc.passed(1e-6));
}

TEST_CASE("The torch adapters agree with baypr's own Mlp::paper_head", "[meta][torch]") {
  const TorchScriptEmbedding script(fixture_dir / "paper_head.pt", 6, 4);
  const TorchModuleEmbedding module(paper_head_module(6, 4), 6, 4);
  const Mlp mlp = Mlp::paper_head(6, 4);
  REQUIRE(module.parameter_count() == mlp.parameter_count());
  REQUIRE(script.parameter_count() == mlp.parameter_count());
  // The C++ module was built in float32 and converted: its initial parameters are float32 values.
  const Eigen::VectorXd init = module.initial_parameters();
  CHECK(init.cast<float>().cast<double>() == init);
  CHECK(init.segment(28, 4) == Eigen::VectorXd::Ones(4));  // LayerNorm gamma = 1, beta = 0
  CHECK(init.tail(4) == Eigen::VectorXd::Zero(4));

  std::mt19937_64 rng(42);
  const Eigen::MatrixXd x = load_matrix("paper_head_inputs");
  const Eigen::MatrixXd x2 = uniform_matrix(rng, 7, 6) * 2.0;
  for (int trial = 0; trial < 3; ++trial) {
    const Eigen::VectorXd theta = trial == 0 ? load_vector("paper_head_parameters")
                                             : Eigen::VectorXd(uniform_matrix(rng, 36, 1));
    const Eigen::VectorXd theta_mlp = torch_to_mlp(theta, 6, 4);
    REQUIRE(torch_to_mlp(theta_mlp, 6, 4, true) == theta);
    for (const Eigen::MatrixXd* in : {&x, &x2}) {
      const Eigen::MatrixXd z = mlp.forward(theta_mlp, *in);
      CHECK(max_abs_diff(script.forward(theta, *in), z) <= 1e-12);
      CHECK(max_abs_diff(module.forward(theta, *in), z) <= 1e-12);
      const Eigen::MatrixXd dz = uniform_matrix(rng, in->rows(), 4);
      const Eigen::VectorXd g = torch_to_mlp(mlp.vjp(theta_mlp, *in, dz), 6, 4, true);
      CHECK(max_abs_diff(script.vjp(theta, *in, dz), g) <= 1e-12);
      CHECK(max_abs_diff(module.vjp(theta, *in, dz), g) <= 1e-12);
    }
  }
  const Eigen::VectorXd theta = load_vector("paper_head_parameters");
  const GradientCheck a = check_embedding_gradient(script, theta, x, 3);
  const GradientCheck b = check_embedding_gradient(module, theta, x, 3);
  CHECK(a.coordinates_checked == 36);
  CHECK(a.passed(1e-6));
  CHECK(b.passed(1e-6));
}

TEST_CASE("TorchModuleEmbedding reproduces the PyTorch fixture and honours frozen parameters",
          "[meta][torch]") {
  torch::nn::Sequential seq = paper_head_module(6, 4);
  const TorchModuleEmbedding e(seq, 6, 4);
  const Eigen::VectorXd theta = load_vector("paper_head_parameters");
  const Eigen::MatrixXd x = load_matrix("paper_head_inputs");
  const Eigen::MatrixXd dz = load_matrix("paper_head_d_outputs");
  const Eigen::VectorXd g = load_vector("paper_head_gradient");
  CHECK(max_abs_diff(e.forward(theta, x), load_matrix("paper_head_outputs")) <= 1e-12);
  CHECK(max_abs_diff(e.vjp(theta, x, dz), g) <= 1e-12);
  // The module is shared: it was converted in place and holds the last theta used.
  CHECK(seq->parameters()[0].scalar_type() == torch::kDouble);
  CHECK(seq->parameters()[3][3].item<double>() == theta(35));

  // Freeze the Linear bias (theta 24..27): its gradient is reported as 0, the rest unchanged.
  seq->parameters()[1].set_requires_grad(false);
  const Eigen::VectorXd frozen = e.vjp(theta, x, dz);
  CHECK(frozen.segment(24, 4) == Eigen::VectorXd::Zero(4));
  CHECK(max_abs_diff(frozen.head(24), g.head(24)) <= 1e-12);
  CHECK(max_abs_diff(frozen.tail(8), g.tail(8)) <= 1e-12);
  // ... and it still follows theta in forward.
  Eigen::VectorXd shifted = theta;
  shifted.segment(24, 4).array() += 0.25;
  CHECK(max_abs_diff(e.forward(shifted, x), e.forward(theta, x)) > 1e-3);
  for (const auto& p : seq->parameters()) p.set_requires_grad(false);
  CHECK(e.vjp(theta, x, dz) == Eigen::VectorXd::Zero(36));
}

TEST_CASE("adapt, scores and first-order meta_step through torch equal those through Mlp",
          "[meta][torch]") {
  const TorchScriptEmbedding script(fixture_dir / "paper_head.pt", 6, 4);
  const Mlp mlp = Mlp::paper_head(6, 4);
  const auto prior = baypr::NiwPrior<double>::method_default(4);
  std::mt19937_64 rng(9);
  MetaEpisode episode;
  episode.support = uniform_matrix(rng, 6, 6) * 2.0;
  episode.queries = uniform_matrix(rng, 6, 6) * 2.0;
  episode.queries.bottomRows(2).array() += 3.0;
  episode.labels = Eigen::VectorXi{{0, 0, 0, 0, 1, 1}};
  const Eigen::VectorXd theta = load_vector("paper_head_parameters");
  const Eigen::VectorXd theta_mlp = torch_to_mlp(theta, 6, 4);
  MetaOptions options;  // order: automatic, first order for a double-only embedding
  options.adapt.inner_steps = 3;
  options.adapt.inner_step_size = 0.05;
  MetaOptions first = options;
  first.order = MetaGradient::first_order;
  MetaOptions second = options;
  second.order = MetaGradient::second_order;
  // Double-only: no second order, and automatic means first order.
  STATIC_REQUIRE(!TwiceDifferentiableEmbedding<TorchScriptEmbedding>);

  // Every method: its parameters in torch's layout (torch_to_mlp converts the embedding's part and
  // leaves Maml's head [w; b] after it as it is).
  const auto same_through_torch = [&](auto method, const char* name) {
    using Method = decltype(method);
    INFO(name);
    const Eigen::VectorXd p = initial_parameters<Method>(script, theta);
    const Eigen::VectorXd p_mlp = initial_parameters<Method>(mlp, theta_mlp);
    REQUIRE(p.size() == parameter_count<Method>(script));
    REQUIRE(torch_to_mlp(p, 6, 4) == p_mlp);

    const Adaptation a = adapt<Method>(script, p, episode.support, prior, options);
    const Adaptation b = adapt<Method>(mlp, p_mlp, episode.support, prior, options);
    CHECK(max_abs_diff(torch_to_mlp(a.params, 6, 4), b.params) <= 1e-10);
    CHECK(max_abs_diff(a.params, p) > 1e-4);  // the steps did move theta
    REQUIRE(a.inner_losses.size() == 4);
    REQUIRE(b.inner_losses.size() == 4);
    for (std::size_t t = 0; t < 4; ++t)
      CHECK(std::abs(a.inner_losses[t] - b.inner_losses[t]) <= 1e-10);
    // The adapted support embeddings, the posterior (BayPrAnoMeta only) and the scores agree too.
    CHECK(a.support == script.forward(Eigen::VectorXd(a.params.head(script.parameter_count())),
                                      episode.support));
    CHECK(max_abs_diff(a.support, b.support) <= 1e-10);
    CHECK(a.posterior.has_value() == std::is_same_v<Method, BayPrAnoMeta>);
    CHECK(b.posterior.has_value() == std::is_same_v<Method, BayPrAnoMeta>);
    const Eigen::VectorXd sa = scores<Method>(script, a, episode.queries, options);
    CHECK(sa == scores<Method>(script, p, episode.support, episode.queries, prior, options));
    CHECK(max_abs_diff(sa, scores<Method>(mlp, b, episode.queries, options)) <= 1e-8);

    const MetaStep s = meta_step<Method>(script, p, episode, prior, first);
    const MetaStep r = meta_step<Method>(mlp, p_mlp, episode, prior, first);
    CHECK(std::abs(s.outer_loss - r.outer_loss) <= 1e-10);
    CHECK(std::abs(s.inner_loss - r.inner_loss) <= 1e-10);
    CHECK(max_abs_diff(torch_to_mlp(s.gradient, 6, 4), r.gradient) <= 1e-10);
    CHECK(max_abs_diff(torch_to_mlp(s.adapted, 6, 4), r.adapted) <= 1e-10);
    CHECK(r.gradient.norm() > 1e-3);
    // The default order is first order here; second order is refused with a message naming the
    // option.
    const MetaStep automatic = meta_step<Method>(script, p, episode, prior, options);
    CHECK(automatic.outer_loss == s.outer_loss);
    CHECK(automatic.gradient == s.gradient);
    const std::string msg =
        message_of([&] { (void)meta_step<Method>(script, p, episode, prior, second); });
    CHECK(contains(msg, "baypr::meta::meta_step: argument 'options.order'"));
    CHECK(contains(msg, "second_order needs a TwiceDifferentiableEmbedding"));
  };
  same_through_torch(BayPrAnoMeta{}, "BayPrAnoMeta");
  same_through_torch(ProtoMaml{}, "ProtoMaml");
  same_through_torch(Maml{}, "Maml");
}

TEST_CASE("torch adapters reject bad arguments with useful messages", "[meta][torch]") {
  const TorchScriptEmbedding e(fixture_dir / "paper_head.pt", 6, 4);
  const Eigen::VectorXd theta = e.initial_parameters();
  const Eigen::MatrixXd x = load_matrix("paper_head_inputs");
  const Eigen::MatrixXd dz = load_matrix("paper_head_d_outputs");
  const Eigen::MatrixXd z0 = e.forward(theta, x);

  CHECK_THROWS_AS(e.forward(Eigen::VectorXd(theta.head(35)), x), baypr::invalid_argument);
  CHECK(contains(message_of([&] { (void)e.forward(Eigen::VectorXd(theta.head(35)), x); }),
                 "TorchScriptEmbedding::forward: argument 'theta' has size 35, expected 36"));
  CHECK(contains(message_of([&] { (void)e.forward(theta, Eigen::MatrixXd(x.leftCols(5))); }),
                 "argument 'inputs' has columns 5, expected 6"));
  Eigen::MatrixXd bad = x;
  bad(2, 3) = std::nan("");
  CHECK(contains(
      message_of([&] { (void)e.vjp(theta, bad, dz); }),
      "TorchScriptEmbedding::vjp: argument 'inputs' must be finite, got nan at row 2, column 3"));
  CHECK(contains(message_of([&] { (void)e.vjp(theta, x, Eigen::MatrixXd(dz.leftCols(3))); }),
                 "argument 'd_embeddings' has columns 3, expected 4"));
  CHECK(contains(message_of([&] { (void)e.vjp(theta, x, Eigen::MatrixXd(dz.topRows(4))); }),
                 "argument 'd_embeddings' has rows 4, expected 5"));
  CHECK(e.forward(theta, x) == z0);  // failed calls leave nothing behind

  CHECK(contains(message_of([&] { TorchScriptEmbedding(fixture_dir / "paper_head.pt", 6, 5); }),
                 "TorchScriptEmbedding: argument 'output_dim' is 5, but the module maps a sample "
                 "of shape (1, 6) to "
                 "shape (1, 4)"));
  CHECK(contains(message_of([&] { TorchScriptEmbedding(fixture_dir / "paper_head.pt", 7, 4); }),
                 "TorchScriptEmbedding: argument 'module' fails on one zero sample of shape (1, "
                 "7): RuntimeError: mat1 and "
                 "mat2 shapes cannot be multiplied (1x7 and 6x4)"));
  CHECK(
      contains(message_of([&] {
                 TorchScriptEmbedding(fixture_dir / "conv.pt", 16, 3, {1, 4, 5});
               }),
               "argument 'sample_shape' must have input_dim = 16 elements, got (1, 4, 5) with 20"));
  CHECK(contains(message_of([&] { TorchModuleEmbedding(paper_head_module(6, 4), 0, 4); }),
                 "TorchModuleEmbedding: argument 'input_dim' must be >= 1, got 0"));
  CHECK_THROWS_AS(TorchModuleEmbedding(paper_head_module(6, 4), 6, 3), baypr::invalid_argument);
  // Bad dimensions are caught before the shared module is converted to double.
  const torch::nn::Sequential untouched = paper_head_module(6, 4);
  CHECK(contains(message_of([&] {
                   TorchModuleEmbedding(untouched, 6, 4, {2, 2});
                 }),
                 "argument 'sample_shape' must have input_dim = 6 elements, got (2, 2) with 4"));
  CHECK(untouched->parameters()[0].scalar_type() == torch::kFloat);

  const fs::path missing = fs::path(BAYPR_TEST_DATA_DIR) / "torch" / "no_such_module.pt";
  CHECK_THROWS_AS(TorchScriptEmbedding(missing, 6, 4), baypr::io_error);
  CHECK(contains(message_of([&] { TorchScriptEmbedding(missing, 6, 4); }),
                 "TorchScriptEmbedding: file '" + missing.string() +
                     "': cannot load TorchScript module: open file failed"));
  const fs::path corrupt = fs::temp_directory_path() /
                           ("baypr_meta_torch_corrupt_" + std::to_string(::getpid()) + ".pt");
  {
    std::ifstream in(fixture_dir / "paper_head.pt", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    bytes.resize(bytes.size() / 2);  // a truncated zip archive
    std::ofstream(corrupt, std::ios::binary) << bytes;
  }
  CHECK_THROWS_AS(TorchScriptEmbedding(corrupt, 6, 4), baypr::io_error);
  const std::string corrupt_message = message_of([&] { TorchScriptEmbedding(corrupt, 6, 4); });
  CHECK(contains(corrupt_message,
                 "file '" + corrupt.string() + "': cannot load TorchScript module: "));
  CHECK(!contains(corrupt_message, "\n"));
  CHECK(contains(corrupt_message, "PytorchStreamReader failed reading zip archive"));
  fs::remove(corrupt);
}

// Timing, not a check: run with `meta_torch.test "[.timing]"`.
TEST_CASE("timing: torch adapter vs Mlp, 32 x 784 -> 128", "[.timing]") {
  torch::set_num_threads(1);
  Eigen::setNbThreads(1);
  const TorchModuleEmbedding module(paper_head_module(784, 128), 784, 128);
  const Mlp mlp = Mlp::paper_head(784, 128);
  std::mt19937_64 rng(1);
  const Eigen::MatrixXd x = uniform_matrix(rng, 32, 784);
  const Eigen::MatrixXd dz = uniform_matrix(rng, 32, 128);
  const Eigen::VectorXd theta = module.initial_parameters();
  const Eigen::VectorXd theta_mlp = torch_to_mlp(theta, 784, 128);
  const auto time = [&](const auto& e, const Eigen::VectorXd& t) {
    double sink = 0.0;
    for (int i = 0; i < 5; ++i) sink += e.vjp(t, x, dz)(0);  // warm-up
    const int reps = 200;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) {
      sink += e.forward(t, x)(0, 0);
      sink += e.vjp(t, x, dz)(0);
    }
    const std::chrono::duration<double, std::micro> us = std::chrono::steady_clock::now() - start;
    std::printf("  (sink %g)\n", sink);
    return us.count() / reps;
  };
  const double t_torch = time(module, theta);
  const double t_mlp = time(mlp, theta_mlp);
  std::printf(
      "forward + vjp, 32 x 784 -> 128, one thread: torch %.1f us, Mlp %.1f us (ratio %.2f)\n",
      t_torch, t_mlp, t_torch / t_mlp);
  CHECK(t_torch > 0.0);
}
