// src/federation/pooling_site.cpp: pool_site (include/baypr/federated/pooling.hpp), a site's side
// of a pooling session: Join, then SubmitPlain, or the four phases of secure aggregation with
// secure::SecureSite. Every call is a long poll with the site's call deadline, retried while the
// phase is open and while the server is unreachable (up to SiteOptions::reconnect).
#include <cstdint>
#include <string>
#include <vector>

#include "baypr/federated/pooling.hpp"
#include "baypr/federated/secure_aggregation.hpp"
#include "baypr/federation/v1/federation.grpc.pb.h"
#include "common.hpp"
#include "pooling_wire.hpp"
#include "wire.hpp"

namespace baypr::federated {

namespace pb = baypr::federation::v1;
namespace sec = secure;

namespace {

constexpr const char* kPoolSite = "baypr::federated::pool_site";

[[noreturn]] void server_error(const std::string& why) {
  throw federation_error(std::string(kPoolSite) + ": the server sent " + why);
}

sec::Key key_of(const std::string& bytes, const char* what) {
  if (bytes.size() != 32)
    server_error(std::string(what) + " of " + std::to_string(bytes.size()) + " bytes, expected 32");
  sec::Key k{};
  std::copy(bytes.begin(), bytes.end(), k.begin());
  return k;
}

std::vector<int> sites_of(const google::protobuf::RepeatedField<std::uint32_t>& ids) {
  return {ids.begin(), ids.end()};
}

// The four phases of secure aggregation through the server; the pooled result.
pb::PoolResult secure_rounds(common::Connection<pb::Pooling>& connection,
                             const SufficientStatistics<double>& statistics, int site,
                             const pb::PoolConfiguration& c) {
  using Stub = pb::Pooling::Stub;
  const int n = static_cast<int>(c.sites());
  if (c.centre_size() != c.dimension()) {
    server_error("a centre of " + std::to_string(c.centre_size()) + " values, expected " +
                 std::to_string(c.dimension()));
  }
  const Eigen::VectorXd centre = wire::to_vector(c.centre());
  const std::vector<std::uint64_t> encoded = sec::encode(sec::statistics_vector(statistics, centre),
                                                         sec::FixedPoint{c.fractional_bits()}, n);
  sec::SecureSite me(site, n, static_cast<int>(c.threshold()));

  const sec::PublicKeys own = me.advertise();
  pb::PoolKeys advert;
  wire::put_keys(own, &advert);
  const auto key_list =
      connection.call<pb::PoolKeys, pb::PoolKeyList>("Advertise", advert, &Stub::Advertise, true);
  std::vector<sec::PublicKeys> keys;
  for (const pb::PoolKeys& k : key_list.keys()) {
    keys.push_back({static_cast<int>(k.site()), key_of(k.cipher(), "a cipher key"),
                    key_of(k.mask(), "a mask key")});
  }

  pb::PoolShareList outgoing;
  for (const sec::EncryptedShare& s : me.share_keys(keys)) {
    wire::put_share(s, outgoing.add_shares());
  }
  const auto incoming = connection.call<pb::PoolShareList, pb::PoolShareList>(
      "ShareKeys", outgoing, &Stub::ShareKeys, true);
  std::vector<sec::EncryptedShare> received;
  for (const pb::PoolShare& s : incoming.shares()) {
    received.push_back({static_cast<int>(s.from()), static_cast<int>(s.to()),
                        std::vector<std::uint8_t>(s.box().begin(), s.box().end())});
  }

  const sec::MaskedInput y = me.mask(encoded, received);
  pb::PoolMasked masked;
  masked.mutable_values()->Add(y.values.begin(), y.values.end());
  const auto survivors = connection.call<pb::PoolMasked, pb::PoolSurvivors>(
      "SubmitMasked", masked, &Stub::SubmitMasked, true);

  const sec::Reveal r = me.unmask(sites_of(survivors.sites()));
  pb::PoolReveal reveal;
  const auto put = [](const std::map<int, sec::Share>& shares, auto* list) {
    for (const auto& [j, s] : shares) {
      pb::PoolRevealedShare* m = list->Add();
      m->set_site(static_cast<std::uint32_t>(j));
      m->set_x(s.x);
      m->set_y(std::string(s.y.begin(), s.y.end()));
    }
  };
  put(r.self_mask, reveal.mutable_self_mask());
  put(r.mask_key, reveal.mutable_mask_key());
  return connection.call<pb::PoolReveal, pb::PoolResult>("Unmask", reveal, &Stub::Unmask, true);
}

}  // namespace

PoolSiteResult pool_site(const SufficientStatistics<double>& statistics,
                         const SiteOptions& options) {
  statistics.check(kPoolSite, "statistics");
  common::check_site_options(kPoolSite, options);
  common::Connection<pb::Pooling> connection(kPoolSite, options);
  using Stub = pb::Pooling::Stub;
  const auto joined = connection.call<pb::JoinRequest, pb::PoolJoinReply>("Join", pb::JoinRequest{},
                                                                          &Stub::Join, false);
  const pb::PoolConfiguration& c = joined.configuration();
  if (statistics.dim() != c.dimension()) {
    baypr::detail::throw_invalid(kPoolSite, "statistics",
                                 "has dimension " + std::to_string(statistics.dim()) +
                                     ", the session pools dimension " +
                                     std::to_string(c.dimension()));
  }
  PoolSiteResult result;
  result.site = static_cast<int>(joined.site());
  pb::PoolResult pooled;
  if (c.mode() == pb::POOLING_MODE_PLAIN) {
    pooled = connection.call<pb::PoolStatistics, pb::PoolResult>(
        "SubmitPlain", wire::statistics_message(statistics), &Stub::SubmitPlain, true);
  } else if (c.mode() == pb::POOLING_MODE_SECURE) {
    pooled = secure_rounds(connection, statistics, result.site, c);
  } else {
    server_error("pooling mode " + std::to_string(c.mode()) + ", which this site does not know");
  }
  std::string why;
  auto s = wire::statistics_of(pooled.pooled(), c.dimension(), kPoolSite, "the pooled result", why);
  if (!s) server_error("malformed pooled statistics: " + why);
  result.pooled = std::move(*s);
  result.sites = sites_of(pooled.sites());
  return result;
}

}  // namespace baypr::federated
