#include "source/filters/local_ratelimit/local_ratelimit.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "source/common/duration.h"
#include "source/http/filter_registry.h"
#include "source/matchers/rate_limit_filter_factory.h"

namespace phoenix::filters {
namespace {

using LocalRateLimitFilterFactory =
    matchers::RateLimitFilterFactory<LocalRateLimitFilter, LocalRateLimitConfig>;

}  // namespace

RateLimit::RateLimit(const config::v1::RateLimit& proto, StatsStore& stats,
                     const std::string& stat_prefix, const std::string& path,
                     config::ConfigErrors& errors)
    : name_(proto.name()),
      match_(proto.match(), path + ".match", errors),
      key_(proto.key(), path + ".key", errors),
      max_concurrent_(proto.max_concurrent_requests()),
      max_queued_(proto.max_queued_requests()) {
  if (proto.has_queue_timeout()) {
    queue_timeout_ = ToMilliseconds(proto.queue_timeout());
  }
  if (max_queued_ != 0 && max_concurrent_ == 0) {
    errors.Add(path + ".max_queued_requests", "needs max_concurrent_requests");
  }
  if (name_.empty()) errors.Add(path + ".name", "a limit needs a name (stats use it)");
  StatsScope scope = http::HttpStatsScope(stats, stat_prefix)
                         .Nested("local_ratelimit")
                         .Labelled("limit_name", name_);
  if (proto.has_token_bucket()) {
    const auto& bucket = proto.token_bucket();
    std::chrono::microseconds interval = ToMicroseconds(bucket.fill_interval());
    if (bucket.max_tokens() == 0) errors.Add(path + ".token_bucket.max_tokens", "must be > 0");
    if (interval < std::chrono::milliseconds(1)) {
      errors.Add(path + ".token_bucket.fill_interval", "must be at least 1ms");
    }
    max_tokens_ = bucket.max_tokens();
  } else if (max_concurrent_ == 0) {
    errors.Add(path, "set token_bucket, max_concurrent_requests, or both");
  }
  state_ = RateLimitState::Find(proto, stat_prefix, [&]() -> std::unique_ptr<KeyedTokenBuckets> {
    if (!proto.has_token_bucket()) return nullptr;
    const auto& bucket = proto.token_bucket();
    uint32_t per_fill = bucket.tokens_per_fill() == 0 ? 1 : bucket.tokens_per_fill();
    size_t max_keys = proto.max_keys() == 0 ? 10000 : proto.max_keys();
    if (!key_.keyed()) max_keys = 1;
    return std::make_unique<KeyedTokenBuckets>(
        max_tokens_, per_fill, ToMicroseconds(bucket.fill_interval()).count(), max_keys,
        &scope.gauge("keys", "Client keys the limit tracks"));
  });
  allowed_ = &scope.counter("allowed", "Requests the limit let through");
  limited_ = &scope.counter("limited", "Requests the limit refused");
}

KeyedTokenBuckets::Result RateLimit::TakeToken(const http::RequestHeaders& request,
                                               const std::string& client_ip,
                                               uint64_t now_us) const {
  std::string_view key = key_.Extract(request, client_ip);
  return state_->buckets()->Take(key, now_us);
}

std::shared_ptr<RateLimitState> RateLimitState::Find(
    const config::v1::RateLimit& proto, const std::string& stat_prefix,
    const std::function<std::unique_ptr<KeyedTokenBuckets>()>& make_buckets) {
  // Every live limit's state, by listener and definition. Entries whose state is gone are
  // dropped as the map is searched.
  static absl::Mutex registry_mu;
  static auto* registry = new std::map<std::string, std::weak_ptr<RateLimitState>>();
  std::string definition;
  google::protobuf::io::StringOutputStream stream(&definition);
  {
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    proto.SerializeToCodedStream(&coded);
  }
  std::string key = absl::StrCat(stat_prefix.size(), ":", stat_prefix, definition);
  absl::MutexLock lock(&registry_mu);
  std::erase_if(*registry, [](const auto& entry) { return entry.second.expired(); });
  if (auto it = registry->find(key); it != registry->end()) {
    if (std::shared_ptr<RateLimitState> live = it->second.lock()) return live;
  }
  auto state = std::make_shared<RateLimitState>();
  state->buckets_ = make_buckets();
  (*registry)[key] = state;
  return state;
}

RateLimitState::EnterResult RateLimitState::Enter(uint32_t max_concurrent, uint32_t max_queued,
                                                  const std::shared_ptr<SlotWaiter>& waiter) {
  absl::MutexLock lock(&mu_);
  if (in_flight_ < max_concurrent && waiters_.empty()) {
    ++in_flight_;
    return EnterResult::kEntered;
  }
  if (waiter == nullptr) return EnterResult::kRejected;
  // Drop waiters that gave up (timed out, client gone) before counting the queue.
  std::erase_if(waiters_, [](const std::shared_ptr<SlotWaiter>& w) {
    return w->state.load() != SlotWaiter::kWaiting;
  });
  if (waiters_.size() >= max_queued) return EnterResult::kRejected;
  waiters_.push_back(waiter);
  return EnterResult::kQueued;
}

void RateLimitState::Leave() {
  absl::MutexLock lock(&mu_);
  while (!waiters_.empty()) {
    std::shared_ptr<SlotWaiter> waiter = std::move(waiters_.front());
    waiters_.pop_front();
    int expected = SlotWaiter::kWaiting;
    if (waiter->state.compare_exchange_strong(expected, SlotWaiter::kGranted)) {
      // The slot passes to the waiter: in_flight_ stays as it is.
      waiter->dispatcher->Post([waiter] { waiter->on_granted(); });
      return;
    }
  }
  --in_flight_;
}

LocalRateLimitConfig::LocalRateLimitConfig(const config::v1::LocalRateLimit& proto,
                                           StatsStore& stats, const std::string& stat_prefix,
                                           const std::string& path, config::ConfigErrors& errors)
    : limits_(matchers::BuildLimits<RateLimit>(
          proto.limits(), path, errors,
          [&](const config::v1::RateLimit& limit, const std::string& limit_path) {
            return std::make_unique<RateLimit>(limit, stats, stat_prefix, limit_path, errors);
          })) {}

http::FilterStatus LocalRateLimitFilter::DecodeHeaders(http::RequestHeaders& headers, bool) {
  request_ = &headers;
  return CheckLimits(0);
}

http::FilterStatus LocalRateLimitFilter::CheckLimits(size_t from) {
  const std::string& client_ip = callbacks_->stream_info().client_ip;
  const http::Route* route = callbacks_->route();
  matchers::ParsedRequestSource source(client_ip, callbacks_->stream_info().peer_principal(),
                                       route != nullptr ? &route->app_path_semantics() : nullptr);
  uint64_t now_us = callbacks_->dispatcher().time_source().MonotonicUs();
  const auto& limits = config_->limits();
  for (size_t i = from; i < limits.size(); ++i) {
    const RateLimit& limit = *limits[i];
    if (!limit.Applies(*request_, source.get())) continue;
    if (limit.has_bucket()) {
      KeyedTokenBuckets::Result result = limit.TakeToken(*request_, client_ip, now_us);
      if (!result.allowed) {
        limit.limited().Inc();
        uint64_t reset_s = (result.reset_us + 999999) / 1000000;
        http::HeaderMap headers;
        headers.Add("retry-after", absl::StrCat(reset_s));
        headers.Add("x-ratelimit-limit", absl::StrCat(limit.max_tokens()));
        headers.Add("x-ratelimit-remaining", "0");
        headers.Add("x-ratelimit-reset", absl::StrCat(reset_s));
        callbacks_->SendLocalReply(429, "too many requests\n", "RL", &headers);
        return http::FilterStatus::kStop;
      }
    }
    if (limit.has_concurrency_cap()) {
      // A waiter is complete before Enter() publishes it: another worker may grant it at once.
      std::shared_ptr<SlotWaiter> waiter = limit.queues() ? MakeWaiter(i) : nullptr;
      switch (limit.Enter(waiter)) {
        case RateLimit::EnterResult::kEntered:
          entered_.push_back(&limit);
          break;
        case RateLimit::EnterResult::kRejected:
          limit.limited().Inc();
          ReplyOverloaded(/*queue_timed_out=*/false);
          return http::FilterStatus::kStop;
        case RateLimit::EnterResult::kQueued:
          waiter_ = std::move(waiter);
          waiting_on_ = i;
          queue_timer_ = callbacks_->dispatcher().CreateTimer([this] { OnQueueTimeout(); });
          queue_timer_->Enable(limit.queue_timeout());
          return http::FilterStatus::kStop;
      }
    }
    limit.allowed().Inc();
  }
  return http::FilterStatus::kContinue;
}

std::shared_ptr<SlotWaiter> LocalRateLimitFilter::MakeWaiter(size_t index) {
  auto waiter = std::make_shared<SlotWaiter>();
  waiter->dispatcher = &callbacks_->dispatcher();
  if (alive_ == nullptr) alive_ = std::make_shared<bool>(true);
  // Runs on this worker's thread. Weak references only: the waiter sits in the limit's own
  // queue. If this filter is gone by then, the slot goes back.
  // (A live filter holds its config, and so the limit.)
  waiter->on_granted = [self = this, alive = std::weak_ptr<bool>(alive_),
                        weak_state =
                            std::weak_ptr<RateLimitState>(config_->limits()[index]->state())] {
    if (alive.expired()) {
      if (std::shared_ptr<RateLimitState> state = weak_state.lock()) state->Leave();
      return;
    }
    self->OnSlotGranted();
  };
  return waiter;
}

void LocalRateLimitFilter::OnSlotGranted() {
  const RateLimit& limit = *config_->limits()[waiting_on_];
  waiter_.reset();
  queue_timer_.reset();
  entered_.push_back(&limit);
  limit.allowed().Inc();
  // Token buckets of the remaining limits still apply.
  if (CheckLimits(waiting_on_ + 1) == http::FilterStatus::kContinue) {
    callbacks_->ContinueDecoding();
  }
}

void LocalRateLimitFilter::OnQueueTimeout() {
  int expected = SlotWaiter::kWaiting;
  if (waiter_ == nullptr ||
      !waiter_->state.compare_exchange_strong(expected, SlotWaiter::kCancelled)) {
    return;  // Granted meanwhile: the grant is on its way.
  }
  config_->limits()[waiting_on_]->limited().Inc();
  waiter_.reset();
  ReplyOverloaded(/*queue_timed_out=*/true);
}

void LocalRateLimitFilter::ReplyOverloaded(bool queue_timed_out) {
  // The client may come back soon: a slot frees as soon as any request ends.
  http::HeaderMap headers;
  headers.Add("retry-after", "1");
  if (queue_timed_out) {
    callbacks_->SendLocalReply(503, "overloaded: no slot freed in time\n", "QT", &headers);
  } else {
    callbacks_->SendLocalReply(503, "overloaded: too many requests in flight\n", "UO", &headers);
  }
}

void LocalRateLimitFilter::OnDestroy() {
  queue_timer_.reset();
  if (waiter_ != nullptr) {
    int expected = SlotWaiter::kWaiting;
    waiter_->state.compare_exchange_strong(expected, SlotWaiter::kCancelled);
    // If it was granted instead, the pending grant sees this filter gone (`alive_` expires
    // below) and gives the slot back.
    waiter_.reset();
  }
  alive_.reset();
  for (const RateLimit* limit : entered_) limit->Leave();
  entered_.clear();
}

void RegisterLocalRateLimitFilter() {
  http::FilterRegistry::RegisterSharedConfig<config::v1::LocalRateLimit, LocalRateLimitConfig,
                                             LocalRateLimitFilterFactory>(
      LocalRateLimitFilter::kName);
}

}  // namespace phoenix::filters
