#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "source/common/config_errors.h"
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
               std::string_view principal, const http::PathSemantics* app_paths,
               http::PolicyExplanation& explanation) const override {
    ParsedRequestSource source(client_ip, principal, app_paths);
    std::string_view filter = Filter::kName;  // "phoenix.filters.http.local_ratelimit"
    filter.remove_prefix(filter.rfind('.') + 1);
    for (const auto& limit : this->config().limits()) {
      if (limit->Applies(request, source.get())) explanation.AddRateLimit(filter, limit->name());
    }
  }
};

// A rate limit config's limits, in order, from its `limits` field: `make(proto, path)` builds
// each (its errors under <path>.limits[i]); a name two limits share is an error.
template <typename Limit, typename Protos, typename Make>
std::vector<std::unique_ptr<Limit>> BuildLimits(const Protos& protos, const std::string& path,
                                                config::ConfigErrors& errors, const Make& make) {
  std::vector<std::unique_ptr<Limit>> limits;
  for (int i = 0; i < protos.size(); ++i) {
    std::string limit_path = absl::StrCat(path, ".limits[", i, "]");
    for (const auto& other : limits) {
      if (!protos[i].name().empty() && other->name() == protos[i].name()) {
        errors.Add(limit_path + ".name",
                   absl::StrCat("limit name '", protos[i].name(), "' is used twice"));
      }
    }
    limits.push_back(make(protos[i], limit_path));
  }
  return limits;
}

}  // namespace phoenix::matchers
