// src/federation/pooling_wire.hpp (internal to baypr::pooling): the secure-aggregation protocol's
// messages (federated/secure_aggregation.hpp) written into the Pooling service's protobuf messages,
// for the server's answers and the site's requests alike.
#pragma once

#include <cstdint>
#include <string>

#include "baypr/federated/secure_aggregation.hpp"
#include "baypr/federation/v1/federation.pb.h"

namespace baypr::federated::wire {

inline void put_keys(const secure::PublicKeys& k, baypr::federation::v1::PoolKeys* out) {
  out->set_site(static_cast<std::uint32_t>(k.site));
  out->set_cipher(std::string(k.cipher.begin(), k.cipher.end()));
  out->set_mask(std::string(k.mask.begin(), k.mask.end()));
}

inline void put_share(const secure::EncryptedShare& s, baypr::federation::v1::PoolShare* out) {
  out->set_from(static_cast<std::uint32_t>(s.from));
  out->set_to(static_cast<std::uint32_t>(s.to));
  out->set_box(std::string(s.box.begin(), s.box.end()));
}

}  // namespace baypr::federated::wire
