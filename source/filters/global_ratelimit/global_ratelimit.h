#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "phoenix/config/v1/global_ratelimit.pb.h"
#include "source/common/config_errors.h"
#include "source/common/free_list.h"
#include "source/common/stats.h"
#include "source/filters/global_ratelimit/counter_store.h"
#include "source/http/filter.h"
#include "source/matchers/rate_limit_key.h"
#include "source/matchers/request_matcher.h"

namespace phoenix::filters {

// Keys a worker knows to be over their limit, and until when (wall clock, µs): requests on
// them are refused without asking Redis. Bounded: when full, expired keys go first, then all.
class OverLimitCache {
 public:
  explicit OverLimitCache(size_t max_keys = 10000) : max_keys_(max_keys) {}
  // The time `key` stays over its limit, or 0 if it is not known to be over at `now_us`.
  int64_t OverUntil(const std::string& key, int64_t now_us);
  void Add(std::string key, int64_t until_us, int64_t now_us);
  size_t size() const { return until_.size(); }

 private:
  size_t max_keys_;
  absl::flat_hash_map<std::string, int64_t> until_;
};

// Requests a worker leased from Redis for one key's window (max_lease) and has not let
// through yet: a request that finds one goes on without a round trip. Also remembers what the
// last count left of the limit, which sizes the next lease, and whether a lease is on its way
// (one at a time per key: leases asked for at once would all be sized from the same count).
// Bounded like OverLimitCache.
class TokenLeases {
 public:
  explicit TokenLeases(size_t max_keys = 10000) : max_keys_(max_keys) {}
  // Whether one of `key`'s leased requests is left and its window has not ended.
  bool Has(const std::string& key, int64_t now_us);
  // Takes one; Has() must have said so.
  void Take(const std::string& key);
  // How many requests the next count of `key` asks for: 1 while the key's count is unknown
  // on this worker or a lease is on its way; else an eighth of what the last count left of
  // the limit, within [1, max_lease] (a lease, on its way until FinishLease()).
  uint32_t StartCount(const std::string& key, uint32_t max_lease, int64_t until_us, int64_t now_us);
  // The lease StartCount() started is answered or lost.
  void FinishLease(const std::string& key);
  // A count of `key` answered: `granted` more requests may go on until `until_us`; `spare`
  // is what the count left of the limit.
  void Record(const std::string& key, uint32_t granted, uint32_t spare, int64_t until_us,
              int64_t now_us);
  size_t size() const { return leases_.size(); }

 private:
  struct Lease {
    uint32_t tokens = 0;
    uint32_t spare = 0;
    bool counted = false;  // `spare` is known.
    bool in_flight = false;
    int64_t until_us = 0;
  };
  // `key`'s entry, made room for if new.
  Lease& Entry(const std::string& key, int64_t until_us, int64_t now_us);

  size_t max_keys_;
  absl::flat_hash_map<std::string, Lease> leases_;
};

// The window one request falls in, and what a count there means: the fixed or sliding
// window arithmetic, apart from where the counts come from.
struct WindowPosition {
  int64_t index = 0;     // Whole units since the Unix epoch.
  int64_t start_us = 0;  // When the window began.
  int64_t unit_us = 0;
};

// One configured global limit: which requests it counts, under which key, how many per unit.
class GlobalLimit {
 public:
  using Proto = config::v1::GlobalRateLimitDescriptor;
  GlobalLimit(const Proto& proto, const std::string& domain, const StatsScope& scope,
              const std::string& path, config::ConfigErrors& errors);

  bool Applies(const http::RequestHeaders& request, const matchers::RequestSource& source) const {
    return match_.Match(request, source);
  }
  WindowPosition Position(int64_t now_us) const;
  // The counter request of `key_value` in the window at `position`.
  CounterRequest Request(const WindowPosition& position, std::string_view key_value) const;
  std::string_view KeyValue(const http::RequestHeaders& request, std::string_view client_ip) const {
    return key_.Extract(request, client_ip);
  }
  // Over the limit with these counts at `now_us`? If so, `until_us` is when it stops being.
  bool Over(const WindowPosition& position, const CounterReply& counts, int64_t now_us,
            int64_t* until_us) const;
  // How many more requests the limit allows at `now_us` after these counts (the sliding
  // estimate's whole part below the limit), 0 if none.
  uint32_t Spare(const WindowPosition& position, const CounterReply& counts, int64_t now_us) const;

  const std::string& name() const { return name_; }
  uint32_t limit() const { return limit_; }
  bool sliding() const { return sliding_; }
  Counter& allowed() const { return *allowed_; }
  Counter& limited() const { return *limited_; }

 private:
  std::string name_;
  matchers::RequestMatcher match_;
  matchers::RateLimitKeyExtractor key_;
  uint32_t limit_;
  int64_t unit_s_ = 1;
  bool sliding_;
  std::string key_prefix_;  // "phx_rl:<domain>:<name>:"
  Counter* allowed_;
  Counter* limited_;
};

// The filter's stats besides the per-limit ones.
#define PHX_GLOBAL_RATELIMIT_STATS(COUNTER, GAUGE, HISTOGRAM)                                  \
  COUNTER(redis_error, "Counts Redis could not give in time (outage, timeout, bad reply)")     \
  COUNTER(failure_mode_allowed, "Requests let through because Redis failed (FAIL_OPEN)")       \
  COUNTER(failure_mode_denied, "Requests refused with 500 because Redis failed (FAIL_CLOSED)") \
  COUNTER(over_limit_cache_hit, "Requests refused from the over-limit cache, without Redis")   \
  COUNTER(lease_hit, "Requests let through on a token lease (max_lease), without Redis")
struct GlobalRateLimitStats {
  PHX_STATS(GlobalRateLimitStats, PHX_GLOBAL_RATELIMIT_STATS);
};

// The compiled GlobalRateLimit config, shared by every worker; each worker has its own
// counter store (one Redis connection per address) and over-limit cache.
class GlobalRateLimitConfig {
 public:
  // `provider` null: Redis at the configured addresses.
  GlobalRateLimitConfig(const config::v1::GlobalRateLimit& proto, StatsStore& stats,
                        const std::string& stat_prefix, const std::string& path,
                        config::ConfigErrors& errors,
                        std::shared_ptr<CounterStoreProvider> provider = nullptr);

  // This worker's store and cache (made on first use). On the worker's thread.
  struct Worker {
    std::shared_ptr<CounterStore> store;
    OverLimitCache over_limit;
    TokenLeases leases;
  };
  Worker& ForWorker(Dispatcher& dispatcher) const;

  const std::vector<std::unique_ptr<GlobalLimit>>& limits() const { return limits_; }
  bool fail_closed() const { return fail_closed_; }
  uint32_t max_lease() const { return max_lease_; }
  GlobalRateLimitStats& stats() const { return *stats_; }

 private:
  std::vector<std::unique_ptr<GlobalLimit>> limits_;
  bool fail_closed_ = false;
  uint32_t max_lease_ = 1;
  std::unique_ptr<GlobalRateLimitStats> stats_;
  std::shared_ptr<CounterStoreProvider> provider_;
  mutable absl::Mutex mu_;
  mutable absl::flat_hash_map<Dispatcher*, std::unique_ptr<Worker>> workers_ ABSL_GUARDED_BY(mu_);
};

// The HTTP filter: counts the request in Redis under every limit that applies (one round trip
// each, in parallel, decoding paused meanwhile; none for a limit with a leased request left),
// then lets it on, or answers 429 (flag RL, retry-after and x-ratelimit-* as the local limit
// sends). Redis failing or slower than the timeout: FAIL_OPEN lets it on, FAIL_CLOSED answers
// 500 (flag RLSE).
class GlobalRateLimitFilter : public http::StreamFilter {
 public:
  static constexpr const char* kName = "phoenix.filters.http.global_ratelimit";
  PHX_FREE_LIST_ALLOCATED(GlobalRateLimitFilter)

  explicit GlobalRateLimitFilter(std::shared_ptr<const GlobalRateLimitConfig> config)
      : config_(std::move(config)) {}
  ~GlobalRateLimitFilter() override { OnDestroy(); }

  http::FilterStatus DecodeHeaders(http::RequestHeaders& headers, bool end_stream) override;
  void OnDestroy() override;

 private:
  // One limit's count in flight.
  struct Check : public CounterCallbacks {
    GlobalRateLimitFilter* filter = nullptr;
    const GlobalLimit* limit = nullptr;
    WindowPosition position;
    CounterRequest request;
    CounterCall* call = nullptr;
    CounterReply reply;
    bool leased = false;      // Went on a token lease: no count to wait for.
    bool lease_open = false;  // Asked for a lease (amount > 1) not yet finished.
    void OnCounted(const CounterReply& answer) override;
  };

  void OnChecked();
  // Gives Redis back `count` requests of a lease that did not fit under the limit, so the
  // shared count is not left inflated (no reply awaited).
  void Refund(const Check& check, uint32_t count);
  // Frees the key's lease slot once for `check`'s lease, if it asked for one.
  void FinishLease(Check& check);
  // Decides once every count is in: true if the request goes on.
  bool Decide();
  void ReplyLimited(const GlobalLimit& limit, int64_t until_us);

  std::shared_ptr<const GlobalRateLimitConfig> config_;
  GlobalRateLimitConfig::Worker* worker_ = nullptr;
  std::vector<Check> checks_;
  size_t outstanding_ = 0;
  int64_t now_us_ = 0;  // Wall clock when the request came.
};

void RegisterGlobalRateLimitFilter();

}  // namespace phoenix::filters
