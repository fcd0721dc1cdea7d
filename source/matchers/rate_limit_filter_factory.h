#pragma once

#include <string>
#include <string_view>

#include "source/http/filter_registry.h"
#include "source/matchers/request_matcher.h"

namespace phoenix::matchers {

// The factory of a rate limit filter (local or global): each request gets a Filter on the one
// shared Config, and the explanation of a request lists which of the Config's limits cover it
// (each limit has Applies(request, source) and name()).
template <typename Filter, typename Config>
class RateLimitFilterFactory : public http::SharedConfigFilterFactory<Filter, Config> {
 public:
  using http::SharedConfigFilterFactory<Filter, Config>::SharedConfigFilterFactory;

  void Explain(const http::RequestHeaders& request, const std::string& client_ip,
               std::string_view principal, http::PolicyExplanation& explanation) const override {
    ParsedRequestSource source(client_ip, principal);
    std::string_view filter = Filter::kName;  // "phoenix.filters.http.local_ratelimit"
    filter.remove_prefix(filter.rfind('.') + 1);
    for (const auto& limit : this->config().limits()) {
      if (limit->Applies(request, source.get())) explanation.AddRateLimit(filter, limit->name());
    }
  }
};

}  // namespace phoenix::matchers
