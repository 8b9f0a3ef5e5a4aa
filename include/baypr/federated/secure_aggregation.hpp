// baypr/federated/secure_aggregation.hpp: secure aggregation of the sites' sufficient statistics:
// the server learns the sum of the sites' vectors and nothing else, and the sum survives sites
// that drop out after the masks were agreed (Bonawitz et al., "Practical Secure Aggregation for
// Privacy-Preserving Machine Learning", CCS 2017; semi-honest server, double masking).
//
//   FixedPoint{fractional_bits}        the encoding: round(x 2^f) in the ring of integers mod 2^64
//   encode(x, fp, sites), decode(v, fp)
//   shamir_split(secret, n, t), shamir_combine(shares)     t-of-n sharing of 32 bytes, GF(2^8)
//   SecureSite, SecureAggregator       the protocol's two ends, one call per round (below)
//   statistics_vector(s, centre), statistics_from(v, d, centre)     a SufficientStatistics as a
//                                      summable vector (count, n (mean - c), S + n (mean - c)^2)
//   secure_pool(sites, options)        the whole protocol in process: the pooled statistics
//
// Needs libsodium (Debian libsodium-dev; CMake: link baypr::secure_aggregation, option
// BAYPR_WITH_SECURE_AGGREGATION): X25519 key agreement (crypto_scalarmult), BLAKE2b key
// derivation (crypto_generichash), ChaCha20 as the mask generator (crypto_stream_chacha20),
// XSalsa20-Poly1305 for the shares sent through the server (crypto_secretbox).
//
// The protocol (n sites, threshold t; the server relays every message):
//   0. advertise: each site makes two X25519 key pairs (one to encrypt shares, one to agree
//      masks) and sends the public keys.
//   1. share_keys: each site draws a self-mask seed b_i, splits b_i and its mask secret key into n
//      Shamir shares (any t reconstruct), and sends share j to site j, encrypted with a key only
//      i and j can derive.
//   2. mask: y_i = x_i + PRG(b_i) + sum_{j > i} PRG(s_ij) - sum_{j < i} PRG(s_ij) (mod 2^64), s_ij
//      the X25519 secret of i and j. The pairwise masks cancel in the sum; the self-mask keeps a
//      site's y_i private even if the server claims the site dropped.
//   3. unmask: given the sites whose y arrived (the survivors), each survivor reveals its share of
//      b_j for every survivor j and of the mask key of every site that dropped, never both for one
//      site. With t reveals the server rebuilds the b_j and the dropped sites' mask keys, removes
//      PRG(b_j) and the dropped sites' dangling pairwise masks, and holds sum_{survivors} x_i.
// Every site that advertised must share keys (mask() checks that it holds a share from each);
// a transport whose site drops between those two rounds restarts from round 0 without it.
// The default threshold is ceil(2n / 3): the sum survives up to a third of the sites dropping
// out after step 1 (their inputs are then not in the sum), and t > n / 2 keeps any minority of
// colluding sites and server from unmasking a single site.
//
// Precision (FixedPoint, f fractional bits, default 32): each value is rounded to the nearest
// multiple of 2^-f, so the decoded sum over m sites is within m 2^-(f+1) of the exact sum of the
// sites' doubles (2^-33 = 1.2e-10 per site at f = 32); the count is exact. encode() refuses a
// value with |x| 2^f >= 2^63 / sites, so no sum wraps. statistics_vector centres the second
// moments at a public point c (the prior mean, say) so that they stay small.
// Message sizes: a masked input is 8 bytes per value, the size of the plain doubles; the keys
// and shares add about 220 bytes per pair of sites.
#pragma once

#include <sodium.h>

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/stats/sufficient_statistics.hpp"

namespace baypr::federated::secure {

using Key = std::array<std::uint8_t, 32>;

// ---- fixed-point encoding ----------------------------------------------------------------------

struct FixedPoint {
  int fractional_bits = 32;
};

namespace detail {

inline void check_fixed_point(const char* fn, const FixedPoint& fp) {
  if (fp.fractional_bits < 1 || fp.fractional_bits > 52) {
    baypr::detail::throw_invalid(fn, "encoding.fractional_bits",
                                 "must be in [1, 52], got " + std::to_string(fp.fractional_bits));
  }
}

inline void ensure_sodium(const char* fn) {
  if (sodium_init() < 0) baypr::detail::throw_numerical(fn, "libsodium failed to initialise");
}

}  // namespace detail

// round(x 2^f) as a two's-complement integer mod 2^64. Every value must be finite with
// |x| 2^f < 2^63 / sites, so that the sum of `sites` such encodings cannot wrap.
[[nodiscard]] inline std::vector<std::uint64_t> encode(std::span<const double> x, FixedPoint fp,
                                                       int sites) {
  constexpr const char* fn = "baypr::federated::secure::encode";
  detail::check_fixed_point(fn, fp);
  if (sites < 1) baypr::detail::throw_invalid(fn, "sites", "must be >= 1");
  const double limit = std::ldexp(1.0, 63) / static_cast<double>(sites);
  std::vector<std::uint64_t> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double scaled = std::ldexp(x[i], fp.fractional_bits);
    if (!std::isfinite(x[i]) || !(std::abs(scaled) < limit)) {
      baypr::detail::throw_invalid(
          fn, "x",
          "must be finite with |x| < 2^(63 - f) / sites = " +
              baypr::detail::format_value(std::ldexp(limit, -fp.fractional_bits)) + " (f = " +
              std::to_string(fp.fractional_bits) + ", " + std::to_string(sites) + " sites), got " +
              baypr::detail::format_value(x[i]) + " at index " + std::to_string(i));
    }
    out[i] = static_cast<std::uint64_t>(std::llround(scaled));
  }
  return out;
}

[[nodiscard]] inline std::vector<double> decode(std::span<const std::uint64_t> v, FixedPoint fp) {
  detail::check_fixed_point("baypr::federated::secure::decode", fp);
  std::vector<double> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    out[i] = std::ldexp(static_cast<double>(static_cast<std::int64_t>(v[i])), -fp.fractional_bits);
  }
  return out;
}

// ---- Shamir's secret sharing over GF(2^8), byte by byte ----------------------------------------

struct Share {
  std::uint8_t x = 0;  // the evaluation point, 1..255
  Key y{};
};

namespace detail {

// GF(2^8) with the AES polynomial x^8 + x^4 + x^3 + x + 1, through exp / log tables of the
// generator 3.
struct Gf256 {
  std::array<std::uint8_t, 512> exp{};
  std::array<int, 256> log{};
  Gf256() {
    unsigned x = 1;
    for (int i = 0; i < 255; ++i) {
      exp[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(x);
      log[x] = i;
      const unsigned doubled = (x << 1) ^ ((x & 0x80U) != 0 ? 0x11bU : 0U);  // x * 2
      x = doubled ^ x;                                                       // x * 3
    }
    for (std::size_t i = 255; i < 512; ++i) exp[i] = exp[i - 255];
  }
  [[nodiscard]] std::uint8_t mul(std::uint8_t a, std::uint8_t b) const {
    if (a == 0 || b == 0) return 0;
    return exp[static_cast<std::size_t>(log[a] + log[b])];
  }
  [[nodiscard]] std::uint8_t div(std::uint8_t a, std::uint8_t b) const {  // b != 0
    if (a == 0) return 0;
    return exp[static_cast<std::size_t>(log[a] + 255 - log[b])];
  }
};

inline const Gf256& gf256() {
  static const Gf256 field;
  return field;
}

}  // namespace detail

// n shares of `secret`, any t of which reconstruct it (1 <= t <= n <= 255); t - 1 of them say
// nothing about it. Share j is evaluated at x = j + 1.
[[nodiscard]] inline std::vector<Share> shamir_split(const Key& secret, int n, int t) {
  constexpr const char* fn = "baypr::federated::secure::shamir_split";
  if (n < 1 || n > 255) baypr::detail::throw_invalid(fn, "n", "must be in [1, 255]");
  if (t < 1 || t > n) baypr::detail::throw_invalid(fn, "t", "must be in [1, n]");
  detail::ensure_sodium(fn);
  const auto& f = detail::gf256();
  // coefficients[k][b]: byte b's polynomial, a_0 = the secret's byte.
  std::vector<Key> coefficients(static_cast<std::size_t>(t));
  coefficients[0] = secret;
  for (std::size_t k = 1; k < coefficients.size(); ++k) {
    randombytes_buf(coefficients[k].data(), coefficients[k].size());
  }
  std::vector<Share> shares(static_cast<std::size_t>(n));
  for (int j = 0; j < n; ++j) {
    Share& s = shares[static_cast<std::size_t>(j)];
    s.x = static_cast<std::uint8_t>(j + 1);
    for (std::size_t b = 0; b < s.y.size(); ++b) {
      std::uint8_t acc = 0;  // Horner, highest coefficient first
      for (std::size_t k = coefficients.size(); k-- > 0;) {
        acc = static_cast<std::uint8_t>(f.mul(acc, s.x) ^ coefficients[k][b]);
      }
      s.y[b] = acc;
    }
  }
  return shares;
}

// The secret from shares at distinct non-zero points (Lagrange interpolation at 0). Given at
// least t shares of a t-of-n sharing it is the secret; given fewer, an unrelated value.
[[nodiscard]] inline Key shamir_combine(std::span<const Share> shares) {
  constexpr const char* fn = "baypr::federated::secure::shamir_combine";
  if (shares.empty()) baypr::detail::throw_invalid(fn, "shares", "needs at least one share");
  for (std::size_t i = 0; i < shares.size(); ++i) {
    if (shares[i].x == 0) {
      baypr::detail::throw_invalid(fn, "shares[" + std::to_string(i) + "].x", "must be non-zero");
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (shares[j].x == shares[i].x) {
        baypr::detail::throw_invalid(fn, "shares[" + std::to_string(i) + "].x",
                                     "repeats the point " + std::to_string(shares[i].x));
      }
    }
  }
  const auto& f = detail::gf256();
  Key secret{};
  for (std::size_t i = 0; i < shares.size(); ++i) {
    // l_i(0) = prod_{j != i} x_j / (x_j - x_i); subtraction is xor in GF(2^8).
    std::uint8_t l = 1;
    for (std::size_t j = 0; j < shares.size(); ++j) {
      if (j == i) continue;
      l = f.mul(l, f.div(shares[j].x, static_cast<std::uint8_t>(shares[j].x ^ shares[i].x)));
    }
    for (std::size_t b = 0; b < secret.size(); ++b) {
      secret[b] = static_cast<std::uint8_t>(secret[b] ^ f.mul(l, shares[i].y[b]));
    }
  }
  return secret;
}

// ---- the protocol's messages -------------------------------------------------------------------

struct PublicKeys {
  int site = -1;
  Key cipher{};  // X25519 public key for the shares' encryption
  Key mask{};    // X25519 public key for the pairwise masks
};

struct EncryptedShare {
  int from = -1, to = -1;
  std::vector<std::uint8_t> box;  // nonce || secretbox(from, to, x, share of mask key, share of b)
};

// The sizes of a share's plaintext (from, to, x, the two shares' 32 bytes) and of its box.
inline constexpr std::size_t share_plain_bytes = 8 + 1 + 32 + 32;
inline constexpr std::size_t share_box_bytes =
    crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + share_plain_bytes;

struct MaskedInput {
  int site = -1;
  std::vector<std::uint64_t> values;
};

struct Reveal {
  int site = -1;
  std::map<int, Share> self_mask;  // site j (a survivor) -> this site's share of b_j
  std::map<int, Share> mask_key;   // site j (dropped) -> this site's share of its mask key
};

namespace detail {

// A 32-byte key from an X25519 secret, bound to a purpose and to both sites in a fixed order.
inline Key derive(const Key& shared, const char* purpose, int a, int b) {
  const int lo = std::min(a, b), hi = std::max(a, b);
  crypto_generichash_state h;
  crypto_generichash_init(&h, nullptr, 0, 32);
  crypto_generichash_update(&h, shared.data(), shared.size());
  crypto_generichash_update(&h, reinterpret_cast<const unsigned char*>(purpose),
                            std::strlen(purpose));
  const std::array<std::uint8_t, 8> ids = {
      static_cast<std::uint8_t>(lo),       static_cast<std::uint8_t>(lo >> 8),
      static_cast<std::uint8_t>(lo >> 16), static_cast<std::uint8_t>(lo >> 24),
      static_cast<std::uint8_t>(hi),       static_cast<std::uint8_t>(hi >> 8),
      static_cast<std::uint8_t>(hi >> 16), static_cast<std::uint8_t>(hi >> 24)};
  crypto_generichash_update(&h, ids.data(), ids.size());
  Key out{};
  crypto_generichash_final(&h, out.data(), out.size());
  return out;
}

inline Key agree(const char* fn, const Key& secret, const Key& peer_public) {
  Key shared{};
  if (crypto_scalarmult(shared.data(), secret.data(), peer_public.data()) != 0) {
    baypr::detail::throw_invalid(fn, "public key", "is a low-order point (rejected)");
  }
  return shared;
}

// Adds sign * PRG(seed) to v, mod 2^64 (ChaCha20 keystream, zero nonce: a seed masks once).
inline void add_prg(std::vector<std::uint64_t>& v, const Key& seed, bool subtract) {
  std::vector<unsigned char> stream(v.size() * 8);
  const std::array<unsigned char, crypto_stream_chacha20_NONCEBYTES> nonce{};
  crypto_stream_chacha20(stream.data(), stream.size(), nonce.data(), seed.data());
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::uint64_t r = 0;
    for (int b = 7; b >= 0; --b) r = (r << 8) | stream[i * 8 + static_cast<std::size_t>(b)];
    v[i] = subtract ? v[i] - r : v[i] + r;
  }
}

inline Key random_key() {
  Key k{};
  randombytes_buf(k.data(), k.size());
  return k;
}

inline Key public_of(const Key& secret) {
  Key pk{};
  crypto_scalarmult_base(pk.data(), secret.data());
  return pk;
}

inline void check_threshold(const char* fn, int sites, int threshold) {
  if (sites < 2 || sites > 255) {
    baypr::detail::throw_invalid(fn, "sites", "must be in [2, 255], got " + std::to_string(sites));
  }
  if (threshold <= sites / 2 || threshold > sites) {
    baypr::detail::throw_invalid(fn, "threshold",
                                 "must be in (sites / 2, sites] = (" + std::to_string(sites / 2) +
                                     ", " + std::to_string(sites) + "], got " +
                                     std::to_string(threshold));
  }
}

}  // namespace detail

// ceil(2 sites / 3): survives a third of the sites dropping out.
[[nodiscard]] constexpr int default_threshold(int sites) {
  return (2 * sites + 2) / 3;
}

// One site's side of the protocol. Calls must come in order: advertise, share_keys, mask, unmask.
class SecureSite {
 public:
  SecureSite(int index, int sites, int threshold)
      : index_(index), sites_(sites), threshold_(threshold) {
    constexpr const char* fn = "baypr::federated::secure::SecureSite";
    detail::check_threshold(fn, sites, threshold);
    if (index < 0 || index >= sites) {
      baypr::detail::throw_invalid(fn, "index",
                                   "must be in [0, sites), got " + std::to_string(index));
    }
    detail::ensure_sodium(fn);
  }

  // Round 0: this site's two public keys.
  [[nodiscard]] PublicKeys advertise() {
    cipher_secret_ = detail::random_key();
    mask_secret_ = detail::random_key();
    return {index_, detail::public_of(cipher_secret_), detail::public_of(mask_secret_)};
  }

  // Round 1: the public keys of the sites that advertised (this one included); returns one
  // encrypted share for each other of them.
  [[nodiscard]] std::vector<EncryptedShare> share_keys(const std::vector<PublicKeys>& keys) {
    constexpr const char* fn = "baypr::federated::secure::SecureSite::share_keys";
    check_keys(fn, keys);
    keys_.clear();
    for (const auto& k : keys) keys_[k.site] = k;
    self_mask_seed_ = detail::random_key();
    const auto mask_key_shares = shamir_split(mask_secret_, sites_, threshold_);
    const auto self_mask_shares = shamir_split(self_mask_seed_, sites_, threshold_);
    std::vector<EncryptedShare> out;
    for (const auto& [j, k] : keys_) {
      const Share& a = mask_key_shares[static_cast<std::size_t>(j)];
      const Share& b = self_mask_shares[static_cast<std::size_t>(j)];
      if (j == index_) {
        own_ = {a, b};
        continue;
      }
      std::array<std::uint8_t, share_plain_bytes> plain{};
      put_int(plain.data(), index_);
      put_int(plain.data() + 4, j);
      plain[8] = a.x;
      std::copy(a.y.begin(), a.y.end(), plain.begin() + 9);
      std::copy(b.y.begin(), b.y.end(), plain.begin() + 41);
      EncryptedShare e;
      e.from = index_;
      e.to = j;
      e.box.resize(share_box_bytes);
      randombytes_buf(e.box.data(), crypto_secretbox_NONCEBYTES);
      const Key key = box_key(fn, j);
      crypto_secretbox_easy(e.box.data() + crypto_secretbox_NONCEBYTES, plain.data(), plain.size(),
                            e.box.data(), key.data());
      sodium_memzero(plain.data(), plain.size());
      out.push_back(std::move(e));
    }
    return out;
  }

  // Round 2: the masked input, given this site's encoded values and the shares the other sites
  // sent it (every site that advertised must have sent one).
  [[nodiscard]] MaskedInput mask(std::span<const std::uint64_t> encoded,
                                 const std::vector<EncryptedShare>& received) {
    constexpr const char* fn = "baypr::federated::secure::SecureSite::mask";
    if (keys_.empty()) baypr::detail::throw_invalid(fn, "order", "share_keys must come first");
    std::map<int, std::pair<Share, Share>> held;
    held[index_] = own_;
    for (std::size_t i = 0; i < received.size(); ++i) {
      const EncryptedShare& e = received[i];
      const std::string arg = "received[" + std::to_string(i) + "]";
      if (e.to != index_ || !keys_.count(e.from) || e.from == index_ || held.count(e.from)) {
        baypr::detail::throw_invalid(fn, arg, "is not a share for this site from another site");
      }
      std::array<std::uint8_t, share_plain_bytes> plain{};
      const Key key = box_key(fn, e.from);
      if (e.box.size() != share_box_bytes ||
          crypto_secretbox_open_easy(plain.data(), e.box.data() + crypto_secretbox_NONCEBYTES,
                                     e.box.size() - crypto_secretbox_NONCEBYTES, e.box.data(),
                                     key.data()) != 0 ||
          get_int(plain.data()) != e.from || get_int(plain.data() + 4) != index_) {
        baypr::detail::throw_invalid(fn, arg, "does not decrypt (forged or corrupted)");
      }
      Share a, b;
      a.x = b.x = plain[8];
      std::copy(plain.begin() + 9, plain.begin() + 41, a.y.begin());
      std::copy(plain.begin() + 41, plain.end(), b.y.begin());
      held[e.from] = {a, b};
      sodium_memzero(plain.data(), plain.size());
    }
    if (held.size() != keys_.size()) {
      baypr::detail::throw_invalid(fn, "received",
                                   "holds " + std::to_string(held.size() - 1) +
                                       " shares, expected " + std::to_string(keys_.size() - 1));
    }
    held_ = std::move(held);
    MaskedInput out{index_, std::vector<std::uint64_t>(encoded.begin(), encoded.end())};
    detail::add_prg(out.values, self_mask_seed_, false);
    for (const auto& [j, k] : keys_) {
      if (j == index_) continue;
      const Key seed = detail::derive(detail::agree(fn, mask_secret_, k.mask), "mask", index_, j);
      detail::add_prg(out.values, seed, j < index_);
    }
    return out;
  }

  // Round 3: given the sites whose masked input arrived (this one among them, at least
  // threshold of them), this site's shares of each survivor's self-mask seed and of each dropped
  // site's mask key. Answers once: a second call (a server asking again with another list of
  // survivors, to get both shares of one site) throws.
  [[nodiscard]] Reveal unmask(const std::vector<int>& survivors) {
    constexpr const char* fn = "baypr::federated::secure::SecureSite::unmask";
    if (held_.empty()) baypr::detail::throw_invalid(fn, "order", "mask must come first");
    if (revealed_) baypr::detail::throw_invalid(fn, "order", "this site has already revealed");
    std::vector<int> s = survivors;
    std::sort(s.begin(), s.end());
    if (std::adjacent_find(s.begin(), s.end()) != s.end() ||
        !std::binary_search(s.begin(), s.end(), index_) ||
        static_cast<int>(s.size()) < threshold_) {
      baypr::detail::throw_invalid(fn, "survivors",
                                   "must be distinct sites, include this one, and number at "
                                   "least the threshold " +
                                       std::to_string(threshold_));
    }
    Reveal r;
    r.site = index_;
    for (const auto& [j, shares] : held_) {
      if (std::binary_search(s.begin(), s.end(), j)) {
        r.self_mask[j] = shares.second;
      } else {
        r.mask_key[j] = shares.first;
      }
    }
    for (const int j : s) {
      if (!held_.count(j)) {
        baypr::detail::throw_invalid(
            fn, "survivors", "names site " + std::to_string(j) + ", which never shared keys");
      }
    }
    revealed_ = true;
    return r;
  }

 private:
  static void put_int(std::uint8_t* p, int v) {
    for (int b = 0; b < 4; ++b)
      p[b] = static_cast<std::uint8_t>(static_cast<unsigned>(v) >> (8 * b));
  }
  static int get_int(const std::uint8_t* p) {
    unsigned v = 0;
    for (int b = 3; b >= 0; --b) v = (v << 8) | p[b];
    return static_cast<int>(v);
  }
  [[nodiscard]] Key box_key(const char* fn, int peer) const {
    return detail::derive(detail::agree(fn, cipher_secret_, keys_.at(peer).cipher), "share", index_,
                          peer);
  }
  void check_keys(const char* fn, const std::vector<PublicKeys>& keys) const {
    bool self = false;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (keys[i].site < 0 || keys[i].site >= sites_) {
        baypr::detail::throw_invalid(fn, "keys[" + std::to_string(i) + "].site",
                                     "is not a site index, got " + std::to_string(keys[i].site));
      }
      for (std::size_t j = 0; j < i; ++j) {
        if (keys[j].site == keys[i].site) {
          baypr::detail::throw_invalid(fn, "keys[" + std::to_string(i) + "].site", "repeats");
        }
      }
      self = self || keys[i].site == index_;
    }
    if (!self || static_cast<int>(keys.size()) < threshold_) {
      baypr::detail::throw_invalid(fn, "keys",
                                   "must include this site and at least the threshold " +
                                       std::to_string(threshold_) + " sites");
    }
  }

  int index_, sites_, threshold_;
  Key cipher_secret_{}, mask_secret_{}, self_mask_seed_{};
  std::map<int, PublicKeys> keys_;
  std::pair<Share, Share> own_;                  // this site's own shares (mask key, b)
  std::map<int, std::pair<Share, Share>> held_;  // site -> shares it sent this site
  bool revealed_ = false;
};

// The server's side: relays keys and shares, sums the masked inputs, and removes the masks from
// the sum with the survivors' reveals. It sees only public keys, encrypted shares, masked inputs
// and (of each site) either its self-mask seed or its mask key, never both.
class SecureAggregator {
 public:
  SecureAggregator(int sites, int threshold, std::size_t length)
      : sites_(sites), threshold_(threshold), length_(length) {
    detail::check_threshold("baypr::federated::secure::SecureAggregator", sites, threshold);
  }

  void add_keys(const PublicKeys& k) {
    if (k.site < 0 || k.site >= sites_) {
      baypr::detail::throw_invalid("baypr::federated::secure::SecureAggregator::add_keys", "k.site",
                                   "is not a site index in [0, " + std::to_string(sites_) +
                                       "), got " + std::to_string(k.site));
    }
    keys_[k.site] = k;
  }
  [[nodiscard]] std::vector<PublicKeys> keys() const {
    std::vector<PublicKeys> out;
    for (const auto& [i, k] : keys_) out.push_back(k);
    return out;
  }

  void add_shares(const std::vector<EncryptedShare>& shares) {
    for (const auto& s : shares) mailbox_[s.to].push_back(s);
  }
  [[nodiscard]] std::vector<EncryptedShare> shares_for(int site) const {
    const auto it = mailbox_.find(site);
    return it == mailbox_.end() ? std::vector<EncryptedShare>{} : it->second;
  }

  void add_masked(const MaskedInput& y) {
    constexpr const char* fn = "baypr::federated::secure::SecureAggregator::add_masked";
    if (y.values.size() != length_) {
      baypr::detail::throw_invalid(fn, "y.values",
                                   "has " + std::to_string(y.values.size()) + " values, expected " +
                                       std::to_string(length_));
    }
    if (!keys_.count(y.site)) {
      baypr::detail::throw_invalid(fn, "y.site",
                                   "never advertised keys, got " + std::to_string(y.site));
    }
    masked_[y.site] = y.values;
  }
  [[nodiscard]] std::vector<int> survivors() const {
    std::vector<int> out;
    for (const auto& [i, v] : masked_) out.push_back(i);
    return out;
  }

  // The sum over the survivors of their encoded inputs (mod 2^64), from at least threshold
  // reveals of survivors.
  [[nodiscard]] std::vector<std::uint64_t> unmask(const std::vector<Reveal>& reveals) const {
    constexpr const char* fn = "baypr::federated::secure::SecureAggregator::unmask";
    if (static_cast<int>(masked_.size()) < threshold_ ||
        static_cast<int>(reveals.size()) < threshold_) {
      baypr::detail::throw_invalid(fn, "reveals",
                                   "needs at least the threshold " + std::to_string(threshold_) +
                                       " of survivors and of reveals, got " +
                                       std::to_string(masked_.size()) + " survivors and " +
                                       std::to_string(reveals.size()) + " reveals");
    }
    std::vector<std::uint64_t> sum(length_, 0);
    for (const auto& [i, v] : masked_) {
      for (std::size_t k = 0; k < length_; ++k) sum[k] += v[k];
    }
    const auto gather = [&](int j, bool self_mask) {
      std::vector<Share> shares;
      for (const Reveal& r : reveals) {
        const auto& m = self_mask ? r.self_mask : r.mask_key;
        const auto it = m.find(j);
        if (it != m.end() && masked_.count(r.site)) shares.push_back(it->second);
      }
      if (static_cast<int>(shares.size()) < threshold_) {
        baypr::detail::throw_invalid(fn, "reveals",
                                     "hold " + std::to_string(shares.size()) + " shares for site " +
                                         std::to_string(j) + ", the threshold is " +
                                         std::to_string(threshold_));
      }
      return shamir_combine(
          std::span<const Share>(shares.data(), static_cast<std::size_t>(threshold_)));
    };
    for (const auto& [i, k] : keys_) {
      if (masked_.count(i)) {
        detail::add_prg(sum, gather(i, true), true);  // remove the survivor's self-mask
        continue;
      }
      // A dropped site: rebuild its mask key and remove its pairwise masks from the survivors'.
      const Key secret = gather(i, false);
      if (detail::public_of(secret) != k.mask) {
        baypr::detail::throw_invalid(fn, "reveals",
                                     "rebuild a mask key for site " + std::to_string(i) +
                                         " that does not match its public key (a bad share)");
      }
      for (const auto& [j, v] : masked_) {
        const Key seed = detail::derive(detail::agree(fn, secret, keys_.at(j).mask), "mask", i, j);
        // Survivor j added +PRG when i > j, -PRG when i < j: undo it.
        detail::add_prg(sum, seed, i > j);
      }
    }
    return sum;
  }

 private:
  int sites_, threshold_;
  std::size_t length_;
  std::map<int, PublicKeys> keys_;
  std::map<int, std::vector<EncryptedShare>> mailbox_;
  std::map<int, std::vector<std::uint64_t>> masked_;
};

// ---- sufficient statistics as summable vectors ------------------------------------------------

// [n, n (mean - c), upper triangle (row by row) of S + n (mean - c)(mean - c)^T]: each entry is a
// sum over rows, so the vectors of several sites add up to the vector of their union.
[[nodiscard]] inline std::vector<double> statistics_vector(const SufficientStatistics<double>& s,
                                                           const Eigen::VectorXd& centre) {
  constexpr const char* fn = "baypr::federated::secure::statistics_vector";
  s.check(fn, "s");
  baypr::detail::check_size(fn, "centre", "size", centre.size(), s.dim());
  baypr::detail::check_finite(fn, "centre", centre);
  const Eigen::Index d = s.dim();
  const double n = static_cast<double>(s.count);
  const Eigen::VectorXd shift =
      s.count > 0 ? Eigen::VectorXd(s.mean - centre) : Eigen::VectorXd::Zero(d);
  std::vector<double> v;
  v.reserve(static_cast<std::size_t>(1 + d + d * (d + 1) / 2));
  v.push_back(n);
  for (Eigen::Index i = 0; i < d; ++i) v.push_back(n * shift(i));
  for (Eigen::Index i = 0; i < d; ++i) {
    for (Eigen::Index j = i; j < d; ++j) v.push_back(s.scatter(i, j) + n * shift(i) * shift(j));
  }
  return v;
}

// The statistics a (summed) statistics_vector of dimension d describes.
[[nodiscard]] inline SufficientStatistics<double> statistics_from(std::span<const double> v,
                                                                  Eigen::Index d,
                                                                  const Eigen::VectorXd& centre) {
  constexpr const char* fn = "baypr::federated::secure::statistics_from";
  baypr::detail::check_size(fn, "v", "size", static_cast<Eigen::Index>(v.size()),
                            1 + d + d * (d + 1) / 2);
  baypr::detail::check_size(fn, "centre", "size", centre.size(), d);
  const double n = std::round(v[0]);
  if (!(n >= 0.0) || std::abs(v[0] - n) > 1e-6) {
    baypr::detail::throw_invalid(fn, "v[0]",
                                 "is not a count, got " + baypr::detail::format_value(v[0]));
  }
  auto s = SufficientStatistics<double>::empty(d);
  s.count = static_cast<Eigen::Index>(n);
  if (s.count == 0) return s;
  Eigen::VectorXd first(d);
  for (Eigen::Index i = 0; i < d; ++i) first(i) = v[static_cast<std::size_t>(1 + i)];
  std::size_t k = static_cast<std::size_t>(1 + d);
  for (Eigen::Index i = 0; i < d; ++i) {
    for (Eigen::Index j = i; j < d; ++j) {
      s.scatter(i, j) = s.scatter(j, i) = v[k++] - first(i) * first(j) / n;
    }
  }
  s.mean = centre + first / n;
  if (s.count == 1) s.scatter.setZero();
  return s;
}

// ---- the whole protocol in one process --------------------------------------------------------

struct SecurePoolOptions {
  FixedPoint encoding;
  int threshold = 0;                     // 0: default_threshold(sites)
  Eigen::VectorXd centre;                // the public centre of the second moments; empty: 0
  std::vector<int> drop_after_keys;      // sites that share keys, then never send their input
  std::vector<int> silent_at_unmasking;  // sites that send their input, then never reveal
};

struct SecurePoolResult {
  SufficientStatistics<double> pooled;  // the survivors' statistics, pooled
  std::vector<int> survivors;
  std::size_t plain_bytes = 0;     // one site's statistics as doubles
  std::size_t masked_bytes = 0;    // one site's masked input
  std::size_t overhead_bytes = 0;  // one site's keys and encrypted shares sent
};

// Runs the protocol among the sites (in process; every message goes through a SecureAggregator)
// and returns the pooled statistics of the sites whose input arrived.
[[nodiscard]] inline SecurePoolResult secure_pool(
    std::span<const SufficientStatistics<double>> sites, const SecurePoolOptions& options = {}) {
  constexpr const char* fn = "baypr::federated::secure::secure_pool";
  const int n = static_cast<int>(sites.size());
  if (n < 2) baypr::detail::throw_invalid(fn, "sites", "needs at least two sites");
  for (int i = 0; i < n; ++i) {
    sites[static_cast<std::size_t>(i)].check(fn, "sites[" + std::to_string(i) + "]");
    baypr::detail::check_size(fn, "sites[" + std::to_string(i) + "]", "dimension",
                              sites[static_cast<std::size_t>(i)].dim(), sites[0].dim());
  }
  const Eigen::Index d = sites[0].dim();
  const Eigen::VectorXd centre =
      options.centre.size() == 0 ? Eigen::VectorXd::Zero(d) : options.centre;
  const int t = options.threshold == 0 ? default_threshold(n) : options.threshold;
  const auto in = [](const std::vector<int>& v, int i) {
    return std::find(v.begin(), v.end(), i) != v.end();
  };
  std::vector<std::vector<std::uint64_t>> encoded;
  for (int i = 0; i < n; ++i) {
    encoded.push_back(
        encode(statistics_vector(sites[static_cast<std::size_t>(i)], centre), options.encoding, n));
  }
  const std::size_t length = encoded[0].size();
  SecureAggregator server(n, t, length);
  std::vector<SecureSite> clients;
  for (int i = 0; i < n; ++i) clients.emplace_back(i, n, t);
  SecurePoolResult result;
  for (auto& c : clients) server.add_keys(c.advertise());
  const auto keys = server.keys();
  for (auto& c : clients) {
    const auto shares = c.share_keys(keys);
    result.overhead_bytes = 2 * sizeof(Key) + shares.size() * (8 + shares[0].box.size());
    server.add_shares(shares);
  }
  for (int i = 0; i < n; ++i) {
    const MaskedInput y = clients[static_cast<std::size_t>(i)].mask(
        encoded[static_cast<std::size_t>(i)], server.shares_for(i));
    if (!in(options.drop_after_keys, i)) server.add_masked(y);
  }
  result.survivors = server.survivors();
  std::vector<Reveal> reveals;
  for (const int i : result.survivors) {
    if (!in(options.silent_at_unmasking, i)) {
      reveals.push_back(clients[static_cast<std::size_t>(i)].unmask(result.survivors));
    }
  }
  const std::vector<double> sum = decode(server.unmask(reveals), options.encoding);
  result.pooled = statistics_from(sum, d, centre);
  result.plain_bytes = static_cast<std::size_t>(1 + d + d * d) * sizeof(double);
  result.masked_bytes = length * sizeof(std::uint64_t);
  return result;
}

}  // namespace baypr::federated::secure
