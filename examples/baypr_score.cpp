// baypr-score: score query embeddings against support embeddings with one of baypr's scorers,
// from .npy files (numpy.save), so that methods can be compared on embeddings exported from
// PyTorch. See --help.
#include <sys/resource.h>
#include <baypr/baypr.hpp>
#include <baypr/io/npy.hpp>
#include <baypr/score/patchcore.hpp>
#include <baypr/score/per_position.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

constexpr const char* usage =
    R"(usage: baypr-score --method bayes|patchcore|proto|gaussian|per-position|padim
                   --support S.npy --query Q.npy --out scores.npy
                   [--score nll|llr|pvalue] [--kappa0 K] [--nu0 N] [--psi-scale S|auto]
                   [--coreset R] [--neighbors K] [--seed N] [--grid RxC] [--pool none|3x3] [--eps E]
                   [--aggregate max|mean|topk:K] [--patch-out P.npy]

Fits a normality model on the support embeddings and writes one anomaly score per query
(float64, higher = more anomalous).

inputs
  --support S.npy   (n, d) image embeddings, or (n, p, d) patch embeddings (p patches per image)
  --query Q.npy     (m, d) or (m, p, d), the same layout and d as the support
  --out F.npy       (m,) float64 image scores
  --patch-out P.npy (m, p) float64 patch scores (the anomaly map), patch inputs only

methods
  bayes      NIW posterior over the support (all patches pooled), Student-t posterior predictive
  patchcore  memory bank of the support (greedy k-centre coreset), nearest-neighbour distance
  proto      squared Euclidean distance to the support mean
  gaussian   squared Mahalanobis distance, Ledoit-Wolf shrunk covariance
  per-position  (patch inputs of aligned images) one NIW posterior per patch position, under one
             prior learned across the positions (type-II maximum likelihood); Student-t scores
  padim      (patch inputs) PaDiM: one Gaussian per position, covariance + eps I, Mahalanobis

bayes options
  --score nll       -log t(q | posterior(S)), exactly
  --score llr       log p_a(q) - log t(q | posterior(S)), p_a a vague Student-t (mu 0,
                    Sigma 100 I, dof 2): the BayPrAnoMeta score (default)
  --score pvalue    -log of the calibrated tail probability P(delta(Y) >= delta(q)) under the
                    predictive (exp(-score) is the p-value)
  --kappa0 K        prior mean strength (default 1e-4)
  --nu0 N           prior degrees of freedom, N > d - 1 (default d + 2)
  --psi-scale S     Psi0 = S I (default 1); 'auto' picks S by maximum marginal likelihood

patchcore options
  --coreset R       coreset ratio in (0, 1] (default 0.1; 1 keeps every support patch); the bank
                    keeps at least min(n, 16) of the n support rows (stderr says how many)
  --neighbors K     score = mean distance to the K nearest bank items (default 1: the nearest)
  --seed N          seed of the random projection and the first centre (default 0)

per-position and padim options
  --grid RxC        the patch grid, R x C = p (default: the square grid when p is a square)
  --pool 3x3        per-position: fit each position on its 3 x 3 neighbourhood's patches
                    (default none: on its own patches)
  --score S         per-position: nll, llr or pvalue (default llr, the library's: it was chosen
                    with a kappa0 held at 1e-4 on validation classes; see per_position.hpp)
  --eps E           padim: the covariance regulariser (default 0.01)

patch inputs
  --aggregate A     image score from patch scores: max (default), mean, topk:K

Timing and memory per stage go to stderr. Bad flags or files (a method's option given to another
method included): one line on stderr, exit code 2.
)";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Args {
  std::map<std::string, std::string> values;

  static Args parse(int argc, char** argv) {
    static const std::vector<std::string> known = {
        "--method",    "--support",   "--query",   "--out",       "--score", "--kappa0",
        "--nu0",       "--psi-scale", "--coreset", "--neighbors", "--seed",  "--aggregate",
        "--patch-out", "--grid",      "--pool",    "--eps"};
    Args a;
    for (int i = 1; i < argc; ++i) {
      const std::string flag = argv[i];
      if (flag == "--help" || flag == "-h") {
        std::fputs(usage, stdout);
        std::exit(0);
      }
      if (std::find(known.begin(), known.end(), flag) == known.end()) {
        throw UsageError("unknown option '" + flag + "' (see --help)");
      }
      if (i + 1 >= argc) throw UsageError("option " + flag + " needs a value");
      if (!a.values.emplace(flag, argv[++i]).second)
        throw UsageError("option " + flag + " given twice");
    }
    for (const char* required : {"--method", "--support", "--query", "--out"}) {
      if (!a.values.contains(required))
        throw UsageError(std::string("missing ") + required + " (see --help)");
    }
    return a;
  }

  [[nodiscard]] std::optional<std::string> get(const std::string& flag) const {
    const auto it = values.find(flag);
    if (it == values.end()) return std::nullopt;
    return it->second;
  }

  [[nodiscard]] double number(const std::string& flag, double fallback) const {
    const auto v = get(flag);
    if (!v) return fallback;
    std::size_t used = 0;
    double x = 0.0;
    try {
      x = std::stod(*v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != v->size() || v->empty())
      throw UsageError("option " + flag + " needs a number, got '" + *v + "'");
    return x;
  }
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double peak_rss_mib() {
  rusage usage_now{};
  getrusage(RUSAGE_SELF, &usage_now);
  return static_cast<double>(usage_now.ru_maxrss) / 1024.0;  // Linux: kilobytes
}

using Embeddings = baypr::NpyEmbeddings<double>;  // (n, d) or (n, p, d), as rows

Embeddings load(const std::string& path, const char* what) {
  Embeddings e = baypr::read_npy_embeddings<double>(path);
  if (e.rows.rows() == 0 || e.rows.cols() == 0) {
    throw UsageError(std::string(what) + " '" + path + "' is empty");
  }
  return e;
}

template <class S>
Eigen::VectorXd run(S& scorer, const Embeddings& support, const Embeddings& query,
                    const char* name) {
  auto t0 = std::chrono::steady_clock::now();
  scorer.fit(support.rows);
  std::fprintf(stderr, "baypr-score: %s fit on %lld rows x %lld dims: %.3f s\n", name,
               static_cast<long long>(support.rows.rows()),
               static_cast<long long>(support.rows.cols()), seconds_since(t0));
  t0 = std::chrono::steady_clock::now();
  Eigen::VectorXd s = scorer.score(query.rows);
  const double dt = seconds_since(t0);
  std::fprintf(stderr,
               "baypr-score: %s scored %lld rows: %.3f s (%.0f rows/s), peak memory %.1f MiB\n",
               name, static_cast<long long>(query.rows.rows()), dt,
               static_cast<double>(query.rows.rows()) / dt, peak_rss_mib());
  return s;
}

// --score nll|llr|pvalue of the Bayesian methods.
baypr::BayesScore score_of(const Args& args, const std::string& fallback) {
  const std::string score = args.get("--score").value_or(fallback);
  if (score == "nll") return baypr::BayesScore::nll;
  if (score == "llr") return baypr::BayesScore::llr;
  if (score == "pvalue") return baypr::BayesScore::tail;
  throw UsageError("--score must be nll, llr or pvalue, got '" + score + "'");
}

// The patch grid of per-position methods: --grid RxC, or the square one; p must match.
std::pair<Eigen::Index, Eigen::Index> grid_of(const Args& args, const Embeddings& support,
                                              const Embeddings& query) {
  if (query.rank != 3 || support.patches != query.patches)
    throw UsageError("per-position methods need (n, p, d) inputs with the same p for both");
  const Eigen::Index p = query.patches;
  if (const auto g = args.get("--grid")) {
    const auto x = g->find('x');
    std::size_t used_r = 0, used_c = 0;
    long long r = 0, c = 0;
    try {
      if (x != std::string::npos) {
        r = std::stoll(g->substr(0, x), &used_r);
        c = std::stoll(g->substr(x + 1), &used_c);
      }
    } catch (const std::exception&) {
      used_r = 0;
    }
    if (x == std::string::npos || used_r != x || used_c != g->size() - x - 1 || r < 1 || c < 1)
      throw UsageError("--grid must be RxC with R, C >= 1, got '" + *g + "'");
    if (r > p || c > p || r * c != p) {  // (r, c <= p first: the product cannot overflow)
      throw UsageError("--grid " + *g + " does not have the inputs' p = " + std::to_string(p) +
                       " positions");
    }
    return {static_cast<Eigen::Index>(r), static_cast<Eigen::Index>(c)};
  }
  const auto side = static_cast<Eigen::Index>(std::lround(std::sqrt(static_cast<double>(p))));
  if (side * side != p) {
    throw UsageError("p = " + std::to_string(p) + " patches is not a square grid: give --grid RxC");
  }
  return {side, side};
}

// A flag that only some methods read is refused by the others, rather than silently ignored.
void check_flags_apply(const Args& args, const std::string& method) {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> owners = {
      {"--score", {"bayes", "per-position"}},
      {"--kappa0", {"bayes"}},
      {"--nu0", {"bayes"}},
      {"--psi-scale", {"bayes"}},
      {"--coreset", {"patchcore"}},
      {"--neighbors", {"patchcore"}},
      {"--seed", {"patchcore"}},
      {"--grid", {"per-position", "padim"}},
      {"--pool", {"per-position"}},
      {"--eps", {"padim"}}};
  const std::vector<std::string> methods = {"bayes",    "patchcore",    "proto",
                                            "gaussian", "per-position", "padim"};
  if (std::find(methods.begin(), methods.end(), method) == methods.end()) return;  // named later
  for (const auto& [flag, users] : owners) {
    if (!args.get(flag) || std::find(users.begin(), users.end(), method) != users.end()) continue;
    std::string list;
    for (const auto& u : users) list += (list.empty() ? "" : " or ") + u;
    throw UsageError(flag + " applies to --method " + list + ", not to " + method);
  }
}

int main_impl(int argc, char** argv) {
  const Args args = Args::parse(argc, argv);
  const std::string method = *args.get("--method");
  check_flags_apply(args, method);
  const Embeddings support = load(*args.get("--support"), "--support");
  const Embeddings query = load(*args.get("--query"), "--query");
  if (support.rows.cols() != query.rows.cols()) {
    throw UsageError("--support has d = " + std::to_string(support.rows.cols()) +
                     " but --query has d = " + std::to_string(query.rows.cols()));
  }
  // Patch counts may differ between support and query (scorers work on rows), layouts may not.
  if (support.rank != query.rank)
    throw UsageError("--support and --query must both be (n, d) or both be (n, p, d)");
  const bool patch_mode = query.rank == 3;
  if (args.get("--patch-out") && !patch_mode)
    throw UsageError("--patch-out needs (n, p, d) patch inputs");
  const baypr::Aggregation how = baypr::Aggregation::parse(args.get("--aggregate").value_or("max"));
  const auto d = static_cast<double>(support.rows.cols());

  Eigen::VectorXd flat;
  if (method == "bayes") {
    baypr::BayesianScorerOptions opt;
    opt.score = score_of(args, "llr");
    opt.kappa0 = args.number("--kappa0", opt.kappa0);
    opt.nu0_offset = args.number("--nu0", d + opt.nu0_offset) - d;
    if (args.get("--psi-scale") == std::optional<std::string>("auto")) {
      opt.empirical_psi_scale = true;
    } else {
      opt.psi_scale = args.number("--psi-scale", opt.psi_scale);
    }
    baypr::BayesianScorer scorer(opt);
    flat = run(scorer, support, query, "bayes");
    if (opt.empirical_psi_scale)
      std::fprintf(stderr, "baypr-score: bayes psi scale (auto) = %.6g\n", scorer.psi_scale());
  } else if (method == "patchcore") {
    baypr::PatchCoreOptions opt;
    opt.coreset.ratio = args.number("--coreset", opt.coreset.ratio);
    const double k = args.number("--neighbors", 1.0);
    if (!(k >= 1.0) || k != static_cast<double>(static_cast<Eigen::Index>(k))) {
      throw UsageError("--neighbors must be a whole number >= 1");
    }
    opt.neighbours = static_cast<Eigen::Index>(k);
    opt.coreset.seed = static_cast<std::uint64_t>(args.number("--seed", 0.0));
    baypr::PatchCoreScorer<double> scorer(opt);
    flat = run(scorer, support, query, "patchcore");
    std::fprintf(stderr,
                 "baypr-score: patchcore memory bank keeps %lld of %lld support rows (coreset %g, "
                 "at least %lld)\n",
                 static_cast<long long>(scorer.memory_size()),
                 static_cast<long long>(support.rows.rows()), opt.coreset.ratio,
                 static_cast<long long>(opt.min_memory));
  } else if (method == "proto") {
    baypr::PrototypeScorer scorer;
    flat = run(scorer, support, query, "proto");
  } else if (method == "gaussian") {
    baypr::GaussianScorer scorer;
    flat = run(scorer, support, query, "gaussian");
  } else if (method == "per-position" || method == "padim") {
    const auto [rows, cols] = grid_of(args, support, query);
    if (method == "padim") {
      baypr::PadimScorer scorer(rows, cols, args.number("--eps", 0.01));
      flat = run(scorer, support, query, "padim");
    } else {
      baypr::PerPositionScorerOptions opt;
      opt.grid_rows = rows;
      opt.grid_cols = cols;
      if (args.get("--score")) opt.score = score_of(args, "llr");
      const std::string pool = args.get("--pool").value_or("none");
      if (pool != "none" && pool != "3x3")
        throw UsageError("--pool must be none or 3x3, got '" + pool + "'");
      opt.pool_neighbourhood = pool == "3x3";
      baypr::PerPositionScorer scorer(opt);
      flat = run(scorer, support, query, "per-position");
    }
  } else {
    throw UsageError(
        "--method must be bayes, patchcore, proto, gaussian, per-position or padim, got '" +
        method + "'");
  }

  const Eigen::Index m = query.images, p = query.patches;
  const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>
      map(flat.data(), m, p);
  const Eigen::VectorXd image = patch_mode ? baypr::aggregate(map, how) : flat;
  baypr::write_npy(*args.get("--out"), std::vector<double>(image.data(), image.data() + m),
                   std::vector<std::int64_t>{static_cast<std::int64_t>(m)});
  if (const auto patch_out = args.get("--patch-out")) {
    baypr::write_npy(
        *patch_out, std::vector<double>(flat.data(), flat.data() + flat.size()),
        std::vector<std::int64_t>{static_cast<std::int64_t>(m), static_cast<std::int64_t>(p)});
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return main_impl(argc, argv);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "baypr-score: %s\n", e.what());
    return 2;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "baypr-score: %s\n", e.what());
    return 2;
  } catch (const baypr::io_error& e) {
    std::fprintf(stderr, "baypr-score: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "baypr-score: error: %s\n", e.what());
    return 1;
  }
}
