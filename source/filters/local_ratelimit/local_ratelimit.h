#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "phoenix/config/v1/local_ratelimit.pb.h"
#include "source/common/free_list.h"
#include "source/common/stats.h"
#include "source/config/config_errors.h"
#include "source/filters/access_policy/access_policy.h"
#include "source/filters/local_ratelimit/token_bucket.h"
#include "source/http/filter.h"

namespace phoenix::filters {

// One configured limit: which requests it covers, its buckets, its in-flight cap.
class RateLimit {
 public:
  RateLimit(const config::v1::RateLimit& proto, StatsStore& stats, const std::string& stat_prefix,
            const std::string& path, config::ConfigErrors& errors);

  bool Applies(const http::RequestHeaders& request, const in6_addr* client) const {
    return match_.Match(request, client);
  }
  // Takes a token for this request's key.
  KeyedTokenBuckets::Result TakeToken(const http::RequestHeaders& request,
                                      const std::string& client_ip, uint64_t now_us) const;
  bool has_bucket() const { return buckets_ != nullptr; }
  uint32_t max_tokens() const { return max_tokens_; }
  // In-flight accounting; TryEnter() false: over the cap.
  bool TryEnter() const;
  void Leave() const;
  bool has_concurrency_cap() const { return max_concurrent_ != 0; }
  const std::string& name() const { return name_; }
  Counter& allowed() const { return *allowed_; }
  Counter& limited() const { return *limited_; }

 private:
  std::string name_;
  AccessMatcher match_;
  config::v1::RateLimitKey key_;
  uint32_t max_tokens_ = 0;
  std::unique_ptr<KeyedTokenBuckets> buckets_;
  uint32_t max_concurrent_;
  mutable std::atomic<uint32_t> in_flight_{0};
  Counter* allowed_;
  Counter* limited_;
};

// The compiled LocalRateLimit config, shared by every worker (so limits are process-wide).
class LocalRateLimitConfig {
 public:
  LocalRateLimitConfig(const config::v1::LocalRateLimit& proto, StatsStore& stats,
                       const std::string& stat_prefix, const std::string& path,
                       config::ConfigErrors& errors);
  const std::vector<std::unique_ptr<RateLimit>>& limits() const { return limits_; }

 private:
  std::vector<std::unique_ptr<RateLimit>> limits_;
};

// The HTTP filter: 429 (flag RL) when a token bucket is empty, 503 (flag UO) when an
// in-flight cap is reached; otherwise the request goes on, holding its in-flight slots
// until it ends.
class LocalRateLimitFilter : public http::StreamFilter {
 public:
  static constexpr const char* kName = "phoenix.filters.http.local_ratelimit";
  PHX_FREE_LIST_ALLOCATED(LocalRateLimitFilter)

  explicit LocalRateLimitFilter(std::shared_ptr<const LocalRateLimitConfig> config)
      : config_(std::move(config)) {}
  ~LocalRateLimitFilter() override { OnDestroy(); }

  http::FilterStatus DecodeHeaders(http::RequestHeaders& headers, bool end_stream) override;
  void OnDestroy() override;

 private:
  std::shared_ptr<const LocalRateLimitConfig> config_;
  std::vector<const RateLimit*> entered_;  // Limits whose in-flight slot this request holds.
};

void RegisterLocalRateLimitFilter();

}  // namespace phoenix::filters
