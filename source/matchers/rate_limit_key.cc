#include "source/matchers/rate_limit_key.h"

namespace phoenix::matchers {

RateLimitKeyExtractor::RateLimitKeyExtractor(const config::v1::RateLimitKey& proto,
                                             const std::string& path, config::ConfigErrors& errors)
    : proto_(proto) {
  if (proto_.source_case() == config::v1::RateLimitKey::kHeader && proto_.header().empty()) {
    errors.Add(path + ".header", "name the header");
  }
}

std::string_view RateLimitKeyExtractor::Extract(const http::RequestHeaders& request,
                                                std::string_view client_ip) const {
  switch (proto_.source_case()) {
    case config::v1::RateLimitKey::kClientAddress:
      return client_ip;
    case config::v1::RateLimitKey::kHeader:
      if (const std::string_view* value = request.headers.Get(proto_.header())) return *value;
      return {};
    case config::v1::RateLimitKey::kPath:
      return request.PathWithoutQuery();
    case config::v1::RateLimitKey::SOURCE_NOT_SET:
      break;
  }
  return {};
}

}  // namespace phoenix::matchers
