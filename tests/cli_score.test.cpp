// baypr-score end to end: .npy in, scores out, exactly what the library computes; bad flags and
// bad files give one line on stderr and exit code 2.
#include <sys/wait.h>

#include <Eigen/Core>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "baypr/baypr.hpp"
#include "baypr/io/npy.hpp"
#include "support/catch.hpp"
#include "support/fixtures.hpp"

using baypr::test::max_relative_error;

namespace {

namespace fs = std::filesystem;

struct Run {
  int code;
  std::string err;
};

// Runs baypr-score with the given arguments in `dir`, capturing stderr.
Run run_cli(const fs::path& dir, const std::string& arguments) {
  const fs::path err = dir / "stderr.txt";
  const std::string cmd = std::string("'") + BAYPR_SCORE_EXE + "' " + arguments +
                          " > /dev/null 2> '" + err.string() + "'";
  const int status = std::system(cmd.c_str());
  std::ifstream in(err);
  std::stringstream ss;
  ss << in.rdbuf();
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, ss.str()};
}

struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("baypr-cli-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  [[nodiscard]] std::string file(const std::string& name) const { return (path / name).string(); }
};

Eigen::MatrixXd random_rows(Eigen::Index n, Eigen::Index d, std::mt19937_64& rng, double shift) {
  std::normal_distribution<double> normal;
  Eigen::MatrixXd X = Eigen::MatrixXd::NullaryExpr(n, d, [&] { return normal(rng); });
  X.array() += shift;
  return X;
}

std::size_t lines(const std::string& s) {
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

}  // namespace

TEST_CASE("bayes nll is exactly -log t(q | posterior(S)) with the given prior", "[cli]") {
  TempDir dir;
  std::mt19937_64 rng(9);
  const Eigen::Index d = 12;
  const Eigen::MatrixXd S = random_rows(5, d, rng, 0.0);
  const Eigen::MatrixXd Q = random_rows(9, d, rng, 0.5);
  baypr::write_npy(dir.file("S.npy"), S);
  baypr::write_npy(dir.file("Q.npy"), Q.cast<float>().eval());  // float32 queries are fine too
  const Run r = run_cli(
      dir.path, "--method bayes --score nll --kappa0 0.5 --nu0 20 --psi-scale 2 --support " +
                    dir.file("S.npy") + " --query " + dir.file("Q.npy") + " --out " +
                    dir.file("out.npy"));
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.err.find("bayes fit on 5 rows x 12 dims") != std::string::npos);
  const auto out = baypr::read_npy_matrix<double>(dir.file("out.npy"));
  REQUIRE(out.rows() == 9);
  REQUIRE(out.cols() == 1);
  const auto t = baypr::NiwPrior<double>::isotropic(d, 0.5, 20.0, 2.0).posterior(S).predictive();
  const Eigen::VectorXd expected = -t.log_pdf(Q.cast<float>().cast<double>().eval());
  CHECK(max_relative_error(out.col(0), expected) <= 1e-14);
}

TEST_CASE("every method runs on patch embeddings and writes image and patch scores", "[cli]") {
  TempDir dir;
  std::mt19937_64 rng(10);
  const Eigen::Index p = 4, d = 6;
  const Eigen::MatrixXd S = random_rows(3 * p, d, rng, 0.0);
  Eigen::MatrixXd Q = random_rows(2 * p, d, rng, 0.0);
  Q.row(p + 2).array() += 25.0;  // image 1, patch 2 is a defect
  // (n, p, d) in C order: rows of the row-major (n p) x d matrix.
  const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> Sr = S, Qr = Q;
  baypr::write_npy(dir.file("S.npy"), std::vector<double>(Sr.data(), Sr.data() + Sr.size()),
                   std::vector<std::int64_t>{3, p, d});
  baypr::write_npy(dir.file("Q.npy"), std::vector<double>(Qr.data(), Qr.data() + Qr.size()),
                   std::vector<std::int64_t>{2, p, d});
  for (const std::string method :
       {"bayes", "patchcore", "proto", "gaussian", "per-position", "padim"}) {
    INFO("method " << method);
    const Run r =
        run_cli(dir.path, "--method " + method + " --support " + dir.file("S.npy") + " --query " +
                              dir.file("Q.npy") + " --out " + dir.file("img.npy") +
                              " --patch-out " + dir.file("patch.npy") + " --aggregate max");
    INFO(r.err);
    REQUIRE(r.code == 0);
    const auto img = baypr::read_npy_matrix<double>(dir.file("img.npy"));
    const auto patch = baypr::read_npy_matrix<double>(dir.file("patch.npy"));
    REQUIRE(img.rows() == 2);
    REQUIRE(patch.rows() == 2);
    REQUIRE(patch.cols() == p);
    CHECK(img(1, 0) > img(0, 0));
    CHECK(patch(1, 2) == patch.maxCoeff());
    CHECK(img(1, 0) == patch.row(1).maxCoeff());
    if (method == "patchcore") {  // the bank's size is said, and a small support is kept whole
      const auto rows = std::to_string(3 * p);
      CHECK(r.err.find("patchcore memory bank keeps " + std::string(3 * p <= 16 ? rows : "16") +
                       " of " + rows + " support rows") != std::string::npos);
    }
  }
  // The per-position methods' grid must have p positions.
  const Run r =
      run_cli(dir.path, "--method padim --grid 3x3 --support " + dir.file("S.npy") + " --query " +
                            dir.file("Q.npy") + " --out " + dir.file("img.npy"));
  CHECK(r.code == 2);
  CHECK(r.err.find("--grid 3x3 does not have the inputs' p = 4 positions") != std::string::npos);
}

TEST_CASE("bad flags and bad files: one line on stderr, exit code 2", "[cli][errors]") {
  TempDir dir;
  baypr::write_npy(dir.file("S.npy"), Eigen::MatrixXd::Random(4, 3).eval());
  baypr::write_npy(dir.file("Q4.npy"), Eigen::MatrixXd::Random(2, 4).eval());
  baypr::write_npy(dir.file("v.npy"), std::vector<double>{1.0, 2.0, 3.0}, {3});
  {
    std::ofstream bad(dir.file("bad.npy"), std::ios::binary);
    bad << "\x93NUMPY\x01\x00garbage";
  }
  const std::string io = " --support " + dir.file("S.npy") + " --out " + dir.file("o.npy");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--method bayes --frobnicate 1" + io + " --query " + dir.file("S.npy"),
       "unknown option '--frobnicate'"},
      {"--method magic" + io + " --query " + dir.file("S.npy"),
       "--method must be bayes, patchcore, proto, gaussian, per-position or padim"},
      {"--method per-position" + io + " --query " + dir.file("S.npy"),
       "per-position methods need (n, p, d) inputs"},
      {"--method bayes" + io, "missing --query"},
      {"--method bayes --score weird" + io + " --query " + dir.file("S.npy"),
       "--score must be nll, llr or pvalue"},
      {"--method bayes --kappa0 abc" + io + " --query " + dir.file("S.npy"),
       "--kappa0 needs a number"},
      {"--method bayes --nu0 1" + io + " --query " + dir.file("S.npy"),
       "argument 'options.nu0_offset'"},
      {"--method bayes" + io + " --query " + dir.file("bad.npy"), "bad.npy"},
      {"--method bayes" + io + " --query " + dir.file("missing.npy"), "missing.npy"},
      {"--method proto" + io + " --query " + dir.file("Q4.npy"),
       "--support has d = 3 but --query has d = 4"},
      {"--method patchcore --coreset 2" + io + " --query " + dir.file("S.npy"), "coreset"},
      {"--method padim --pool 3x3" + io + " --query " + dir.file("S.npy"),
       "--pool applies to --method per-position, not to padim"},
      {"--method proto --grid 2x2" + io + " --query " + dir.file("S.npy"),
       "--grid applies to --method per-position or padim, not to proto"},
      {"--method bayes --eps 0.1" + io + " --query " + dir.file("S.npy"),
       "--eps applies to --method padim, not to bayes"},
      {"--method bayes" + io + " --query " + dir.file("v.npy"),
       "must hold a 2-D (n, d) or 3-D (n, p, d) array, got shape (3,)"},
  };
  for (const auto& [arguments, expected] : cases) {
    INFO("arguments: " << arguments);
    const Run r = run_cli(dir.path, arguments);
    INFO("stderr: " << r.err);
    CHECK(r.code == 2);
    CHECK(lines(r.err) == 1);
    CHECK(r.err.rfind("baypr-score: ", 0) == 0);
    CHECK(r.err.find(expected) != std::string::npos);
  }
  const Run help = run_cli(dir.path, "--help");
  CHECK(help.code == 0);
}
