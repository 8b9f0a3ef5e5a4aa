// federated/secure_aggregation.hpp: the fixed-point encoding, Shamir sharing, and the double-
// masking protocol, whose unmasked sum must be the plain pooled statistics to the encoding's
// stated precision, with a third of the sites dropped after the keys were shared.
#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <vector>

#include "baypr/federated/secure_aggregation.hpp"
#include "baypr/stats/niw.hpp"
#include "baypr/stats/sufficient_statistics.hpp"
#include "support/catch.hpp"
#include "support/messages.hpp"
#include "support/stack_rows.hpp"

namespace sec = baypr::federated::secure;
using baypr::SufficientStatistics;
using baypr::test::contains;
using baypr::test::message_of;

namespace {

// 12 sites of d = 8 embeddings, 3..40 rows each, centred near (2, ..., 2) with site offsets.
std::vector<SufficientStatistics<double>> sites_statistics(int sites, Eigen::Index d,
                                                           std::vector<Eigen::MatrixXd>* rows) {
  std::mt19937_64 rng(2024);
  std::normal_distribution<double> n01(0.0, 1.0);
  std::vector<SufficientStatistics<double>> out;
  for (int s = 0; s < sites; ++s) {
    Eigen::MatrixXd z(3 + (7 * s) % 38, d);
    for (Eigen::Index i = 0; i < z.rows(); ++i) {
      for (Eigen::Index j = 0; j < d; ++j) z(i, j) = 2.0 + 0.3 * s / sites + n01(rng);
    }
    out.push_back(SufficientStatistics<double>::of(z));
    if (rows != nullptr) rows->push_back(z);
  }
  return out;
}

// The largest absolute difference between two statistics' means and scatters.
double distance(const SufficientStatistics<double>& a, const SufficientStatistics<double>& b) {
  return std::max((a.mean - b.mean).cwiseAbs().maxCoeff(),
                  (a.scatter - b.scatter).cwiseAbs().maxCoeff());
}

}  // namespace

TEST_CASE("secure aggregation: fixed-point encoding rounds to 2^-(f+1) and sums mod 2^64",
          "[secure]") {
  const sec::FixedPoint fp{32};
  const std::vector<double> x = {0.0, 1.0, -1.0, 3.14159265358979, -2.5e-11, 123456.789};
  const auto e = sec::encode(x, fp, 4);
  const auto back = sec::decode(e, fp);
  for (std::size_t i = 0; i < x.size(); ++i) {
    CHECK(std::abs(back[i] - x[i]) <= std::ldexp(1.0, -33));
  }
  // Negative values are two's complement: the ring sum of encodings decodes to the sum.
  const auto y = sec::encode(std::vector<double>{-7.25, 1.5, 0.125}, fp, 4);
  std::vector<std::uint64_t> sum = {y[0] + y[1] + y[2]};
  CHECK(sec::decode(sum, fp)[0] == -5.625);
  // The range leaves room for the sum of `sites` values: |x| < 2^(63 - f) / sites.
  CHECK(contains(message_of([&] { (void)sec::encode(std::vector<double>{1e9}, fp, 4); }),
                 "argument 'x' must be finite with |x| < 2^(63 - f) / sites = 536870912"));
  CHECK(contains(message_of([&] {
                   (void)sec::encode(std::vector<double>{0.0, std::nan("")}, fp, 2);
                 }),
                 "got nan at index 1"));
  CHECK(contains(message_of([&] { (void)sec::encode(x, sec::FixedPoint{60}, 2); }),
                 "argument 'encoding.fractional_bits' must be in [1, 52], got 60"));
}

TEST_CASE("secure aggregation: any t of n Shamir shares rebuild the secret, t - 1 do not",
          "[secure]") {
  sec::Key secret{};
  for (std::size_t i = 0; i < secret.size(); ++i) secret[i] = static_cast<std::uint8_t>(37 * i + 1);
  const auto shares = sec::shamir_split(secret, 5, 3);
  REQUIRE(shares.size() == 5);
  int subsets = 0;
  for (int a = 0; a < 5; ++a) {
    for (int b = a + 1; b < 5; ++b) {
      for (int c = b + 1; c < 5; ++c) {
        const std::vector<sec::Share> pick = {shares[static_cast<std::size_t>(a)],
                                              shares[static_cast<std::size_t>(b)],
                                              shares[static_cast<std::size_t>(c)]};
        CHECK(sec::shamir_combine(pick) == secret);
        ++subsets;
      }
      const std::vector<sec::Share> two = {shares[static_cast<std::size_t>(a)],
                                           shares[static_cast<std::size_t>(b)]};
      CHECK(sec::shamir_combine(two) != secret);
    }
  }
  CHECK(subsets == 10);
  CHECK(sec::shamir_combine(shares) == secret);  // more than t: the same polynomial
  // A 1-of-n sharing is the secret itself at every point.
  for (const auto& s : sec::shamir_split(secret, 3, 1)) CHECK(s.y == secret);
  CHECK(contains(message_of([&] {
                   const std::vector<sec::Share> twice = {shares[0], shares[0]};
                   (void)sec::shamir_combine(twice);
                 }),
                 "argument 'shares[1].x' repeats the point 1"));
  CHECK(contains(message_of([&] { (void)sec::shamir_split(secret, 3, 4); }),
                 "argument 't' must be in [1, n]"));
}

TEST_CASE(
    "secure aggregation: the unmasked sum is the plain pooled statistics to the encoding's "
    "precision",
    "[secure]") {
  constexpr int sites = 12;
  constexpr Eigen::Index d = 8;
  std::vector<Eigen::MatrixXd> rows;
  const auto s = sites_statistics(sites, d, &rows);
  const auto plain = baypr::pooled(s);
  sec::SecurePoolOptions o;
  o.centre = Eigen::VectorXd::Constant(d, 2.0);  // public, near the data
  const sec::SecurePoolResult r = sec::secure_pool(s, o);
  CHECK(r.survivors.size() == sites);
  CHECK(r.pooled.count == plain.count);  // exact
  // Stated precision: each summed coordinate within sites 2^-(f+1) of the exact sum; the mean
  // divides it by N, the scatter adds the mean's error times the first moments (small here).
  const double per_sum = sites * std::ldexp(1.0, -33);
  CHECK(distance(r.pooled, plain) < 4 * per_sum);
  CHECK(distance(r.pooled, plain) > 0.0);  // it was rounded: the encoding is not a no-op
  // The posterior of the securely pooled statistics is the posterior of all the rows together.
  const auto prior = baypr::NiwPrior<double>::isotropic(d, 0.01, d + 2.0, 1.0);
  const Eigen::MatrixXd all = baypr::test::stack_rows(rows);
  REQUIRE(all.rows() == plain.count);
  const auto q = Eigen::MatrixXd::Constant(3, d, 2.5);
  const Eigen::VectorXd secure_lp = prior.posterior(r.pooled).predictive().log_pdf(q);
  const Eigen::VectorXd direct_lp = prior.posterior(all).predictive().log_pdf(q);
  CHECK((secure_lp - direct_lp).cwiseAbs().maxCoeff() < 1e-8);
  // Message sizes: the masked input (the upper triangle only) is no larger than the plain
  // statistics; the keys and shares add about 120 bytes per other site, so at d = 32 a site sends
  // less than twice the plain message (at d = 8 the shares dominate: 360 + 1395 > 2 x 584).
  CHECK(r.masked_bytes <= r.plain_bytes);
  const auto wide = sec::secure_pool(sites_statistics(sites, 32, nullptr));
  CHECK(wide.plain_bytes == (1 + 32 + 32 * 32) * 8);
  CHECK(wide.masked_bytes == (1 + 32 + 32 * 33 / 2) * 8);
  CHECK(wide.masked_bytes + wide.overhead_bytes <= 2 * wide.plain_bytes);
}

TEST_CASE(
    "secure aggregation: a third of the sites dropping out after sharing keys, or staying "
    "silent at unmasking, still gives the survivors' sum",
    "[secure]") {
  constexpr int sites = 12;  // threshold ceil(24 / 3) = 8
  const auto s = sites_statistics(sites, 4, nullptr);
  sec::SecurePoolOptions o;
  o.centre = Eigen::VectorXd::Constant(4, 2.0);
  o.drop_after_keys = {1, 4, 7, 10};  // a third: their masks dangle in everyone else's input
  const auto r = sec::secure_pool(s, o);
  CHECK(r.survivors == std::vector<int>{0, 2, 3, 5, 6, 8, 9, 11});
  std::vector<SufficientStatistics<double>> kept;
  for (const int i : r.survivors) kept.push_back(s[static_cast<std::size_t>(i)]);
  const auto plain = baypr::pooled(kept);
  CHECK(r.pooled.count == plain.count);
  CHECK(distance(r.pooled, plain) < 4 * 8 * std::ldexp(1.0, -33));

  o.drop_after_keys.clear();
  o.silent_at_unmasking = {0, 3, 6, 9};  // their inputs count; the others' reveals suffice
  const auto silent = sec::secure_pool(s, o);
  CHECK(silent.survivors.size() == sites);
  CHECK(distance(silent.pooled, baypr::pooled(s)) < 4 * sites * std::ldexp(1.0, -33));

  // One more than a third: fewer survivors than the threshold, and the server cannot unmask.
  o.silent_at_unmasking.clear();
  o.drop_after_keys = {1, 4, 7, 10, 11};
  CHECK(contains(message_of([&] { (void)sec::secure_pool(s, o); }),
                 "number at least the threshold 8"));
}

TEST_CASE("secure aggregation: masks hide each input, forged shares and second reveals are refused",
          "[secure]") {
  constexpr int n = 3, t = 2;
  const std::vector<double> x0 = {1.0, 2.0, 3.0}, x1 = {-1.0, 0.5, 4.0}, x2 = {0.25, 0.0, -3.0};
  const sec::FixedPoint fp{20};
  std::vector<sec::SecureSite> site;
  for (int i = 0; i < n; ++i) site.emplace_back(i, n, t);
  sec::SecureAggregator server(n, t, 3);
  for (auto& c : site) server.add_keys(c.advertise());
  for (auto& c : site) server.add_shares(c.share_keys(server.keys()));

  // A share whose box was altered in transit does not decrypt, and nothing changes.
  auto tampered = server.shares_for(0);
  tampered[0].box.back() ^= 1;
  CHECK(contains(message_of([&] { (void)site[0].mask(sec::encode(x0, fp, n), tampered); }),
                 "does not decrypt (forged or corrupted)"));

  const sec::MaskedInput y0 = site[0].mask(sec::encode(x0, fp, n), server.shares_for(0));
  const sec::MaskedInput y1 = site[1].mask(sec::encode(x1, fp, n), server.shares_for(1));
  const sec::MaskedInput y2 = site[2].mask(sec::encode(x2, fp, n), server.shares_for(2));
  // What the server holds of site 0 is not its input: the masked values decode far from it.
  const auto seen = sec::decode(y0.values, fp);
  for (std::size_t i = 0; i < 3; ++i) CHECK(std::abs(seen[i] - x0[i]) > 1.0);
  // The masked sum alone is not the sum either (the self-masks remain).
  std::vector<std::uint64_t> raw(3, 0);
  for (const auto* y : {&y0, &y1, &y2}) {
    for (std::size_t i = 0; i < 3; ++i) raw[i] += y->values[i];
  }
  CHECK(std::abs(sec::decode(raw, fp)[0] - 0.25) > 1.0);

  // Site 2 drops: the server gets 0 and 1, the reveals remove every mask.
  server.add_masked(y0);
  server.add_masked(y1);
  const std::vector<int> survivors = server.survivors();
  const std::vector<sec::Reveal> reveals = {site[0].unmask(survivors), site[1].unmask(survivors)};
  CHECK(reveals[0].self_mask.size() == 2);
  CHECK(reveals[0].mask_key.size() == 1);  // site 2's, and never its self-mask share
  CHECK(contains(message_of([&] { (void)server.unmask({reveals[0]}); }),
                 "needs at least the threshold 2 of survivors and of reveals, got 2 survivors and "
                 "1 reveals"));
  const auto sum = sec::decode(server.unmask(reveals), fp);
  CHECK(sum == std::vector<double>{0.0, 2.5, 7.0});
  // A site answers the unmasking round once.
  CHECK(contains(message_of([&] {
                   (void)site[0].unmask({0, 2});
                 }),
                 "this site has already revealed"));
  CHECK(contains(message_of([&] {
                   server.add_keys({5, {}, {}});
                 }),
                 "argument 'k.site' is not a site index in [0, 3), got 5"));
  CHECK(contains(message_of([] { sec::SecureSite bad(0, 4, 2); }),
                 "argument 'threshold' must be in (sites / 2, sites] = (2, 4], got 2"));
}
