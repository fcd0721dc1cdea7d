#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "phoenix/config/v1/local_ratelimit.pb.h"
#include "source/common/config_errors.h"
#include "source/common/dispatcher.h"
#include "source/common/free_list.h"
#include "source/common/stats.h"
#include "source/filters/local_ratelimit/token_bucket.h"
#include "source/http/filter.h"
#include "source/matchers/rate_limit_key.h"
#include "source/matchers/request_matcher.h"

namespace phoenix::filters {

class RateLimit;

// A request waiting for an in-flight slot. Shared by the worker where the request waits and
// whichever worker frees a slot: the freeing side flips `state` to granted and posts
// `on_granted` to the waiter's dispatcher; a waiter that gives up flips it to cancelled.
struct SlotWaiter {
  enum State { kWaiting, kGranted, kCancelled };
  std::atomic<int> state{kWaiting};
  Dispatcher* dispatcher = nullptr;
  std::function<void()> on_granted;  // Runs on `dispatcher`'s thread.
};

// What a limit has counted: its token buckets and its in-flight slots and queue. Outlives a
// config snapshot: a reload that leaves a limit as it was (same listener, same definition)
// finds the same state again, so reloading never refills a bucket or forgets a request in
// flight (RateLimitState::Find).
class RateLimitState {
 public:
  enum class EnterResult { kEntered, kQueued, kRejected };

  // The state of the limit `proto` on the listener `stat_prefix`: the live one if a config
  // still holds it, else a new one made by `make_buckets` (null: no token bucket).
  static std::shared_ptr<RateLimitState> Find(
      const config::v1::RateLimit& proto, const std::string& stat_prefix,
      const std::function<std::unique_ptr<KeyedTokenBuckets>()>& make_buckets);

  KeyedTokenBuckets* buckets() const { return buckets_.get(); }
  EnterResult Enter(uint32_t max_concurrent, uint32_t max_queued,
                    const std::shared_ptr<SlotWaiter>& waiter);
  void Leave();

 private:
  std::unique_ptr<KeyedTokenBuckets> buckets_;
  absl::Mutex mu_;
  uint32_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<std::shared_ptr<SlotWaiter>> waiters_ ABSL_GUARDED_BY(mu_);
};

// One configured limit: which requests it covers, its buckets, its in-flight cap.
class RateLimit {
 public:
  RateLimit(const config::v1::RateLimit& proto, StatsStore& stats, const std::string& stat_prefix,
            const std::string& path, config::ConfigErrors& errors);

  bool Applies(const http::RequestHeaders& request, const matchers::RequestSource& source) const {
    return match_.Match(request, source);
  }
  // Takes a token for this request's key.
  KeyedTokenBuckets::Result TakeToken(const http::RequestHeaders& request,
                                      const std::string& client_ip, uint64_t now_us) const;
  bool has_bucket() const { return state_->buckets() != nullptr; }
  uint32_t max_tokens() const { return max_tokens_; }
  // In-flight accounting. kQueued: `waiter` (null: this request may not wait) hears
  // on_granted later, unless it is cancelled first.
  using EnterResult = RateLimitState::EnterResult;
  EnterResult Enter(const std::shared_ptr<SlotWaiter>& waiter) const {
    return state_->Enter(max_concurrent_, max_queued_, waiter);
  }
  // Frees a slot, or hands it straight to the oldest waiting request.
  void Leave() const { state_->Leave(); }
  // What the limit has counted, shared with the same limit in later configs.
  const std::shared_ptr<RateLimitState>& state() const { return state_; }
  std::chrono::milliseconds queue_timeout() const { return queue_timeout_; }
  bool queues() const { return max_queued_ != 0; }
  bool has_concurrency_cap() const { return max_concurrent_ != 0; }
  const std::string& name() const { return name_; }
  Counter& allowed() const { return *allowed_; }
  Counter& limited() const { return *limited_; }

 private:
  std::string name_;
  matchers::RequestMatcher match_;
  matchers::RateLimitKeyExtractor key_;
  uint32_t max_tokens_ = 0;
  uint32_t max_concurrent_;
  uint32_t max_queued_;
  std::chrono::milliseconds queue_timeout_{1000};
  std::shared_ptr<RateLimitState> state_;
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
// in-flight cap is reached and its queue is full or absent, 503 (flag QT) when a queued
// request's queue_timeout passes; both 503s carry retry-after. Otherwise the request goes on,
// holding its in-flight slots until it ends.
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
  // Checks limits[from..]; kStop if the request was answered or is now waiting.
  http::FilterStatus CheckLimits(size_t from);
  std::shared_ptr<SlotWaiter> MakeWaiter(size_t index);
  void OnSlotGranted();
  // The 503 of an in-flight cap: over it at once (UO), or after waiting in vain (QT).
  void ReplyOverloaded(bool queue_timed_out);
  void OnQueueTimeout();

  std::shared_ptr<const LocalRateLimitConfig> config_;
  const http::RequestHeaders* request_ = nullptr;
  std::vector<const RateLimit*> entered_;  // Limits whose in-flight slot this request holds.
  std::shared_ptr<SlotWaiter> waiter_;     // Set while queued for limits()[waiting_on_].
  size_t waiting_on_ = 0;
  std::unique_ptr<Timer> queue_timer_;
  std::shared_ptr<bool> alive_;  // A pending grant checks this filter still exists.
};

void RegisterLocalRateLimitFilter();

}  // namespace phoenix::filters
