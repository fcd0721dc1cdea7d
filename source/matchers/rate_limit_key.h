#pragma once

#include <string>
#include <string_view>

#include "phoenix/config/v1/local_ratelimit.pb.h"
#include "source/common/config_errors.h"
#include "source/http/header_map.h"

namespace phoenix::matchers {

// What a rate limit counts a request under (its RateLimitKey): the client address, a
// header's value or the path. Shared by the local and the global limits, so that a key means
// the same in both.
class RateLimitKeyExtractor {
 public:
  RateLimitKeyExtractor(const config::v1::RateLimitKey& proto, const std::string& path,
                        config::ConfigErrors& errors);

  // The key of `request` from `client_ip`; "" when the limit is not keyed, and for a missing
  // header (its own key). Views into `request` or `client_ip`.
  std::string_view Extract(const http::RequestHeaders& request, std::string_view client_ip) const;
  bool keyed() const { return proto_.source_case() != config::v1::RateLimitKey::SOURCE_NOT_SET; }

 private:
  config::v1::RateLimitKey proto_;
};

}  // namespace phoenix::matchers
