#include "source/filters/global_ratelimit/global_ratelimit.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "source/common/dispatcher.h"
#include "source/common/duration.h"
#include "source/common/strings.h"
#include "source/filters/global_ratelimit/redis_counter_store.h"
#include "source/http/filter_registry.h"
#include "source/matchers/rate_limit_filter_factory.h"

namespace phoenix::filters {
namespace {

constexpr int64_t kMicrosPerSecond = 1000000;
constexpr uint32_t kMaxLease = 100000;

using GlobalRateLimitFilterFactory =
    matchers::RateLimitFilterFactory<GlobalRateLimitFilter, GlobalRateLimitConfig>;

int64_t UnitSeconds(config::v1::GlobalRateLimitDescriptor::Unit unit) {
  switch (unit) {
    case config::v1::GlobalRateLimitDescriptor::SECOND:
      return 1;
    case config::v1::GlobalRateLimitDescriptor::MINUTE:
      return 60;
    case config::v1::GlobalRateLimitDescriptor::HOUR:
      return 3600;
    default:
      return 0;
  }
}

int64_t WindowEnd(const WindowPosition& position) { return position.start_us + position.unit_us; }

}  // namespace

int64_t OverLimitCache::OverUntil(const std::string& key, int64_t now_us) {
  auto it = until_.find(key);
  if (it == until_.end()) return 0;
  if (it->second <= now_us) {
    until_.erase(it);
    return 0;
  }
  return it->second;
}

void OverLimitCache::Add(std::string key, int64_t until_us, int64_t now_us) {
  if (until_us <= now_us) return;
  if (until_.size() >= max_keys_) {
    absl::erase_if(until_, [now_us](const auto& entry) { return entry.second <= now_us; });
    if (until_.size() >= max_keys_) until_.clear();
  }
  until_[std::move(key)] = until_us;
}

bool TokenLeases::Has(const std::string& key, int64_t now_us) {
  auto it = leases_.find(key);
  if (it == leases_.end()) return false;
  if (it->second.until_us <= now_us) {
    leases_.erase(it);
    return false;
  }
  return it->second.tokens != 0;
}

void TokenLeases::Take(const std::string& key) {
  auto it = leases_.find(key);
  if (it != leases_.end() && it->second.tokens != 0) --it->second.tokens;
}

TokenLeases::Lease& TokenLeases::Entry(const std::string& key, int64_t until_us, int64_t now_us) {
  if (leases_.size() >= max_keys_ && !leases_.contains(key)) {
    absl::erase_if(leases_,
                   [now_us](const auto& entry) { return entry.second.until_us <= now_us; });
    if (leases_.size() >= max_keys_) leases_.clear();
  }
  Lease& lease = leases_[key];
  lease.until_us = until_us;
  return lease;
}

uint32_t TokenLeases::StartCount(const std::string& key, uint32_t max_lease, int64_t until_us,
                                 int64_t now_us) {
  auto it = leases_.find(key);
  if (it == leases_.end() || !it->second.counted || it->second.in_flight) return 1;
  uint32_t lease = std::clamp<uint32_t>(it->second.spare / 8, 1, std::max<uint32_t>(max_lease, 1));
  if (lease > 1) Entry(key, until_us, now_us).in_flight = true;
  return lease;
}

void TokenLeases::FinishLease(const std::string& key) {
  auto it = leases_.find(key);
  if (it != leases_.end()) it->second.in_flight = false;
}

void TokenLeases::Record(const std::string& key, uint32_t granted, uint32_t spare, int64_t until_us,
                         int64_t now_us) {
  if (until_us <= now_us) return;
  Lease& lease = Entry(key, until_us, now_us);
  lease.tokens += granted;
  lease.spare = spare;
  lease.counted = true;
}

GlobalLimit::GlobalLimit(const Proto& proto, const std::string& domain, const StatsScope& scope,
                         const std::string& path, config::ConfigErrors& errors)
    : name_(proto.name()),
      match_(proto.match(), path + ".match", errors),
      key_(proto.key(), path + ".key", errors),
      limit_(proto.requests_per_unit()),
      unit_s_(UnitSeconds(proto.unit())),
      sliding_(proto.window() == Proto::SLIDING) {
  if (name_.empty()) {
    errors.Add(path + ".name", "a limit needs a name (stats and the Redis key use it)");
  } else if (name_.find(':') != std::string::npos) {
    errors.Add(path + ".name", "no ':' in a limit's name (it is part of the Redis key)");
  }
  if (limit_ == 0) errors.Add(path + ".requests_per_unit", "must be > 0");
  if (unit_s_ == 0) {
    errors.Add(path + ".unit", "set SECOND, MINUTE or HOUR");
    unit_s_ = 1;
  }
  key_prefix_ = absl::StrCat("phx_rl:", domain, ":", name_, ":");
  StatsScope limit_scope = scope.Labelled("limit_name", name_, "limit");
  allowed_ = &limit_scope.counter("allowed", "Requests the global limit let through");
  limited_ = &limit_scope.counter("limited", "Requests the global limit refused");
}

WindowPosition GlobalLimit::Position(int64_t now_us) const {
  WindowPosition position;
  position.unit_us = unit_s_ * kMicrosPerSecond;
  position.index = now_us / position.unit_us;
  position.start_us = position.index * position.unit_us;
  return position;
}

CounterRequest GlobalLimit::Request(const WindowPosition& position,
                                    std::string_view key_value) const {
  CounterRequest request;
  request.key = absl::StrCat(key_prefix_, position.index, ":", AbslView(key_value));
  if (sliding_) {
    request.previous_key = absl::StrCat(key_prefix_, position.index - 1, ":", AbslView(key_value));
  }
  // A second more than the counts are needed for, for clocks a little apart across sidecars.
  request.ttl_s = static_cast<uint32_t>((sliding_ ? 2 : 1) * unit_s_ + 1);
  return request;
}

bool GlobalLimit::Over(const WindowPosition& position, const CounterReply& counts, int64_t now_us,
                       int64_t* until_us) const {
  int64_t end_us = position.start_us + position.unit_us;
  *until_us = end_us;
  // The current count only grows until the window ends: over stays over.
  if (counts.current > limit_) return true;
  if (!sliding_) return false;
  // Sliding: the previous window still counts for the part of it the last unit overlaps.
  double elapsed = static_cast<double>(now_us - position.start_us) / position.unit_us;
  double estimate = counts.previous * (1.0 - elapsed) + counts.current;
  if (estimate <= limit_) return false;
  // Under again once previous * (1 - elapsed) <= limit - current.
  double clear_at = 1.0 - static_cast<double>(limit_ - counts.current) / counts.previous;
  *until_us = std::clamp<int64_t>(
      position.start_us + static_cast<int64_t>(std::ceil(clear_at * position.unit_us)), now_us + 1,
      end_us);
  return true;
}

uint32_t GlobalLimit::Spare(const WindowPosition& position, const CounterReply& counts,
                            int64_t now_us) const {
  double estimate = static_cast<double>(counts.current);
  if (sliding_) {
    double elapsed = static_cast<double>(now_us - position.start_us) / position.unit_us;
    estimate += counts.previous * (1.0 - elapsed);
  }
  double spare = std::floor(limit_ - estimate);
  return spare <= 0 ? 0 : static_cast<uint32_t>(spare);
}

GlobalRateLimitConfig::GlobalRateLimitConfig(const config::v1::GlobalRateLimit& proto,
                                             StatsStore& stats, const std::string& stat_prefix,
                                             const std::string& path, config::ConfigErrors& errors,
                                             std::shared_ptr<CounterStoreProvider> provider)
    : fail_closed_(proto.failure_mode() == config::v1::GlobalRateLimit::FAIL_CLOSED),
      max_lease_(std::max<uint32_t>(proto.max_lease(), 1)),
      provider_(std::move(provider)) {
  if (proto.max_lease() > kMaxLease) {
    errors.Add(path + ".max_lease", absl::StrCat("at most ", kMaxLease));
  }
  if (proto.stat_prefix().empty()) {
    errors.Add(path + ".stat_prefix", "name the filter's stats (stat_prefix)");
  }
  std::string domain = proto.domain().empty() ? "phoenix" : proto.domain();
  if (domain.find(':') != std::string::npos) {
    errors.Add(path + ".domain", "no ':' in the domain (it is part of the Redis key)");
  }
  StatsScope scope = http::HttpStatsScope(stats, stat_prefix)
                         .Nested("global_ratelimit")
                         .Labelled("global_ratelimit_prefix", proto.stat_prefix());
  stats_ = std::make_unique<GlobalRateLimitStats>(scope);
  if (proto.limits_size() == 0) errors.Add(path + ".limits", "set at least one limit");
  limits_ = matchers::BuildLimits<GlobalLimit>(
      proto.limits(), path, errors,
      [&](const config::v1::GlobalRateLimitDescriptor& limit, const std::string& limit_path) {
        return std::make_unique<GlobalLimit>(limit, domain, scope, limit_path, errors);
      });
  std::vector<RedisAddress> addresses;
  if (!proto.has_redis() || proto.redis().addresses_size() == 0) {
    errors.Add(path + (proto.has_redis() ? ".redis.addresses" : ".redis"),
               "set redis.addresses (host:port of the Redis that holds the counters)");
  }
  for (int i = 0; i < proto.redis().addresses_size(); ++i) {
    absl::StatusOr<RedisAddress> address = RedisAddress::Parse(proto.redis().addresses(i));
    if (!address.ok()) {
      errors.Add(absl::StrCat(path, ".redis.addresses[", i, "]"),
                 std::string(address.status().message()));
    } else {
      addresses.push_back(*std::move(address));
    }
  }
  std::chrono::milliseconds timeout{20};
  if (proto.redis().has_timeout()) {
    timeout = ToMilliseconds(proto.redis().timeout());
    if (timeout < std::chrono::milliseconds(1)) {
      errors.Add(path + ".redis.timeout", "must be at least 1ms");
    }
  }
  if (provider_ == nullptr) {
    provider_ = std::make_shared<RedisCounterStoreProvider>(std::move(addresses), timeout);
  }
}

GlobalRateLimitConfig::Worker& GlobalRateLimitConfig::ForWorker(Dispatcher& dispatcher) const {
  absl::MutexLock lock(&mu_);
  std::unique_ptr<Worker>& worker = workers_[&dispatcher];
  if (worker == nullptr) {
    worker = std::make_unique<Worker>();
    worker->store = provider_->StoreFor(dispatcher);
  }
  return *worker;
}

void GlobalRateLimitFilter::Check::OnCounted(const CounterReply& answer) {
  call = nullptr;
  reply = answer;
  filter->OnChecked();
}

http::FilterStatus GlobalRateLimitFilter::DecodeHeaders(http::RequestHeaders& request, bool) {
  const http::StreamInfo& info = callbacks_->stream_info();
  const http::Route* route = callbacks_->route();
  matchers::ParsedRequestSource source(info.client_ip, info.peer_principal(),
                                       route != nullptr ? &route->app_path_semantics() : nullptr);
  worker_ = &config_->ForWorker(callbacks_->dispatcher());
  now_us_ = callbacks_->dispatcher().time_source().SystemUs();
  bool leasing = config_->max_lease() > 1;
  const auto& limits = config_->limits();
  checks_.reserve(limits.size());
  for (const auto& limit : limits) {
    if (!limit->Applies(request, source.get())) continue;
    Check& check = checks_.emplace_back();
    check.filter = this;
    check.limit = limit.get();
    check.position = limit->Position(now_us_);
    check.request = limit->Request(check.position, limit->KeyValue(request, info.client_ip));
    // A request this worker leased goes on first: Redis counted it under the limit.
    if (leasing && worker_->leases.Has(check.request.key, now_us_)) {
      check.leased = true;
      continue;
    }
    // Known to be over in this window: refused at once, no round trip (and no lease spent).
    if (int64_t until_us = worker_->over_limit.OverUntil(check.request.key, now_us_)) {
      config_->stats().over_limit_cache_hit.Inc();
      limit->limited().Inc();
      checks_.clear();
      ReplyLimited(*limit, until_us);
      return http::FilterStatus::kStop;
    }
  }
  if (checks_.empty()) return http::FilterStatus::kContinue;
  for (Check& check : checks_) {
    if (check.leased) {
      worker_->leases.Take(check.request.key);
      config_->stats().lease_hit.Inc();
      continue;
    }
    if (leasing) {
      check.request.amount = worker_->leases.StartCount(check.request.key, config_->max_lease(),
                                                        WindowEnd(check.position), now_us_);
      check.lease_open = check.request.amount > 1;
    }
    check.call = worker_->store->Increment(check.request, check);
    if (check.call == nullptr) {
      check.reply.status = CounterReply::Status::kError;  // No connection: fail at once.
      FinishLease(check);
    } else {
      ++outstanding_;
    }
  }
  if (outstanding_ != 0) return http::FilterStatus::kStop;
  return Decide() ? http::FilterStatus::kContinue : http::FilterStatus::kStop;
}

void GlobalRateLimitFilter::OnChecked() {
  if (--outstanding_ != 0) return;
  if (Decide()) callbacks_->ContinueDecoding();
}

bool GlobalRateLimitFilter::Decide() {
  const GlobalLimit* refusing = nullptr;
  int64_t refused_until_us = 0;
  bool failed = false;
  for (Check& check : checks_) {
    if (check.leased) continue;
    uint32_t extra = static_cast<uint32_t>(check.request.amount - 1);  // Leased beyond this one.
    FinishLease(check);
    if (!check.reply.ok()) {
      config_->stats().redis_error.Inc();
      failed = true;
      continue;
    }
    // A lease of n counts this request as the first of its n.
    CounterReply counts = check.reply;
    counts.current = counts.current > extra ? counts.current - extra : 1;
    int64_t until_us = 0;
    bool over = check.limit->Over(check.position, counts, now_us_, &until_us);
    if (config_->max_lease() > 1) {
      // The rest of the lease that fits under the limit goes on later without a round trip;
      // what does not fit goes back to Redis.
      uint32_t granted =
          over ? 0 : std::min(extra, check.limit->Spare(check.position, counts, now_us_));
      CounterReply kept = check.reply;
      kept.current -= extra - granted;
      if (granted < extra) Refund(check, extra - granted);
      worker_->leases.Record(check.request.key, granted,
                             check.limit->Spare(check.position, kept, now_us_),
                             WindowEnd(check.position), now_us_);
    }
    if (over) {
      worker_->over_limit.Add(check.request.key, until_us, now_us_);
      check.limit->limited().Inc();
      if (refusing == nullptr) {
        refusing = check.limit;
        refused_until_us = until_us;
      }
    }
  }
  if (refusing != nullptr) {
    ReplyLimited(*refusing, refused_until_us);
    return false;
  }
  if (failed) {
    if (config_->fail_closed()) {
      config_->stats().failure_mode_denied.Inc();
      callbacks_->SendLocalReply(500, "rate limit service unavailable\n", "RLSE");
      return false;
    }
    config_->stats().failure_mode_allowed.Inc();
  }
  for (const Check& check : checks_) check.limit->allowed().Inc();
  return true;
}

void GlobalRateLimitFilter::Refund(const Check& check, uint32_t count) {
  // Nothing waits for the answer; a refund lost to an outage only leaves the count high.
  struct IgnoreReply : public CounterCallbacks {
    void OnCounted(const CounterReply&) override {}
  };
  static IgnoreReply ignore;
  CounterRequest refund = check.request;
  refund.amount = -static_cast<int64_t>(count);
  worker_->store->Increment(refund, ignore);
}

void GlobalRateLimitFilter::ReplyLimited(const GlobalLimit& limit, int64_t until_us) {
  int64_t reset_s =
      std::max<int64_t>(1, (until_us - now_us_ + kMicrosPerSecond - 1) / kMicrosPerSecond);
  http::HeaderMap headers;
  headers.Add("retry-after", absl::StrCat(reset_s));
  headers.Add("x-ratelimit-limit", absl::StrCat(limit.limit()));
  headers.Add("x-ratelimit-remaining", "0");
  headers.Add("x-ratelimit-reset", absl::StrCat(reset_s));
  callbacks_->SendLocalReply(429, "too many requests\n", "RL", &headers);
}

void GlobalRateLimitFilter::FinishLease(Check& check) {
  if (!check.lease_open) return;
  check.lease_open = false;
  worker_->leases.FinishLease(check.request.key);
}

void GlobalRateLimitFilter::OnDestroy() {
  for (Check& check : checks_) {
    if (check.call != nullptr) {
      check.call->Cancel();
      check.call = nullptr;
      // A lease still on its way is lost (Redis may count it): the next count may lease again.
    } else if (check.lease_open && check.reply.ok()) {
      // Counted, but the request went away before every count was in: nothing of the lease
      // was used, so it all goes back.
      Refund(check, static_cast<uint32_t>(check.request.amount - 1));
    }
    FinishLease(check);
  }
  outstanding_ = 0;
}

void RegisterGlobalRateLimitFilter() {
  http::FilterRegistry::RegisterSharedConfig<config::v1::GlobalRateLimit, GlobalRateLimitConfig,
                                             GlobalRateLimitFilterFactory>(
      GlobalRateLimitFilter::kName);
}

}  // namespace phoenix::filters
