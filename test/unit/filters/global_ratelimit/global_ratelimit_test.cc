#include "source/filters/global_ratelimit/global_ratelimit.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "source/config/yaml_loader.h"
#include "source/filters/global_ratelimit/redis_counter_store.h"
#include "test/common/simulated_time_source.h"
#include "test/unit/fakes/fake_filter_callbacks.h"

namespace phoenix::filters {
namespace {

// Counts nothing itself: records each increment, and the test answers it.
class FakeCounterStore : public CounterStore {
 public:
  struct Call : public CounterCall {
    CounterRequest request;
    CounterCallbacks* callbacks = nullptr;
    bool cancelled = false;
    bool answered = false;
    void Cancel() override { cancelled = true; }
  };

  CounterCall* Increment(const CounterRequest& request, CounterCallbacks& callbacks) override {
    if (!available) return nullptr;
    auto call = std::make_unique<Call>();
    call->request = request;
    call->callbacks = &callbacks;
    calls.push_back(std::move(call));
    return calls.back().get();
  }
  // Answers call `i` as the store would: never once it is cancelled.
  void Answer(size_t i, CounterReply reply) {
    ASSERT_LT(i, calls.size());
    Call& call = *calls[i];
    ASSERT_FALSE(call.answered);
    call.answered = true;
    if (!call.cancelled) call.callbacks->OnCounted(reply);
  }
  void Count(size_t i, uint64_t current, uint64_t previous = 0) {
    Answer(i, {CounterReply::Status::kOk, current, previous});
  }

  bool available = true;
  std::vector<std::unique_ptr<Call>> calls;
};

class FakeProvider : public CounterStoreProvider {
 public:
  std::shared_ptr<CounterStore> StoreFor(Dispatcher&) override { return store; }
  std::shared_ptr<FakeCounterStore> store = std::make_shared<FakeCounterStore>();
};

class GlobalRateLimitTest : public ::testing::Test {
 protected:
  std::shared_ptr<GlobalRateLimitConfig> Build(const std::string& yaml) {
    config::v1::GlobalRateLimit proto;
    absl::Status status = config::LoadYamlString(yaml, &proto, nullptr);
    EXPECT_TRUE(status.ok()) << status;
    auto config = std::make_shared<GlobalRateLimitConfig>(proto, stats_, "ingress", "grl", errors_,
                                                          provider_);
    EXPECT_TRUE(errors_.empty()) << errors_.ToStatus();
    return config;
  }

  // The errors of a config that must not build.
  std::string Errors(const std::string& yaml) {
    config::v1::GlobalRateLimit proto;
    absl::Status status = config::LoadYamlString(yaml, &proto, nullptr);
    EXPECT_TRUE(status.ok()) << status;
    config::ConfigErrors errors;
    GlobalRateLimitConfig config(proto, stats_, "ingress", "grl", errors);
    return std::string(errors.ToStatus().message());
  }

  // One request through its own filter.
  struct Request {
    Request(Dispatcher& dispatcher, std::shared_ptr<GlobalRateLimitConfig> config, std::string path,
            std::string user = "")
        : callbacks(dispatcher), filter(std::move(config)) {
      headers.method = "GET";
      headers.path = std::move(path);
      headers.authority = "app";
      if (!user.empty()) headers.headers.Add("x-user", user);
      callbacks.info.client_ip = "10.0.0.1";
      filter.SetCallbacks(callbacks);
    }
    http::FilterStatus Decode() { return filter.DecodeHeaders(headers, true); }
    fakes::FakeFilterCallbacks callbacks;
    http::RequestHeaders headers;
    GlobalRateLimitFilter filter;
  };

  // Alice's first count on this worker (of 1, as every key's first), answered with `count`:
  // her key may lease after it.
  void CountAliceFirst(std::shared_ptr<GlobalRateLimitConfig> config, uint64_t count = 1,
                       uint64_t previous = 0) {
    Request first(dispatcher_, std::move(config), "/generatecert", "alice");
    first.Decode();
    ASSERT_EQ(store().calls.back()->request.amount, 1);
    store().Count(store().calls.size() - 1, count, previous);
    ASSERT_EQ(first.callbacks.continue_calls, 1);
  }

  uint64_t Stat(const std::string& name) {
    return stats_.counter("http.ingress.global_ratelimit.grl." + name).Value();
  }
  FakeCounterStore& store() { return *provider_->store; }

  static constexpr const char* kPerUser = R"(
stat_prefix: grl
domain: fleet
redis: {addresses: ["127.0.0.1:6379"]}
limits:
- name: certs
  match: {path: {prefix: /generatecert}}
  key: {header: x-user}
  requests_per_unit: 2
  unit: MINUTE
)";

  SimulatedTimeSource time_;  // Wall clock at 2024-01-01T00:00:00Z: a window's start.
  Dispatcher dispatcher_{time_};
  StatsStore stats_;
  config::ConfigErrors errors_;
  std::shared_ptr<FakeProvider> provider_ = std::make_shared<FakeProvider>();
};

TEST_F(GlobalRateLimitTest, UnderTheLimitTheRequestWaitsForRedisThenGoesOn) {
  auto config = Build(kPerUser);
  Request r(dispatcher_, config, "/generatecert", "alice");
  EXPECT_EQ(r.Decode(), http::FilterStatus::kStop);
  ASSERT_EQ(store().calls.size(), 1u);
  const CounterRequest& sent = store().calls[0]->request;
  int64_t minute = 1704067200 / 60;
  EXPECT_EQ(sent.key, absl::StrCat("phx_rl:fleet:certs:", minute, ":alice"));
  EXPECT_EQ(sent.previous_key, "");
  EXPECT_EQ(sent.ttl_s, 61u);
  EXPECT_EQ(r.callbacks.continue_calls, 0);
  store().Count(0, 2);
  EXPECT_EQ(r.callbacks.continue_calls, 1);
  EXPECT_EQ(r.callbacks.status(), 0);
  EXPECT_EQ(Stat("certs.allowed"), 1u);
}

TEST_F(GlobalRateLimitTest, RequestsTheLimitDoesNotCoverCostNoRoundTrip) {
  auto config = Build(kPerUser);
  Request r(dispatcher_, config, "/other", "alice");
  EXPECT_EQ(r.Decode(), http::FilterStatus::kContinue);
  EXPECT_TRUE(store().calls.empty());
}

TEST_F(GlobalRateLimitTest, OverTheLimitAnswers429AndCachesTheKeyUntilTheWindowEnds) {
  auto config = Build(kPerUser);
  time_.Advance(std::chrono::seconds(15));
  Request over(dispatcher_, config, "/generatecert", "alice");
  over.Decode();
  store().Count(0, 3);
  EXPECT_EQ(over.callbacks.continue_calls, 0);
  EXPECT_EQ(over.callbacks.status(), 429);
  EXPECT_EQ(over.callbacks.info.response_flags, "RL");
  EXPECT_EQ(over.callbacks.header("retry-after"), "45");
  EXPECT_EQ(over.callbacks.header("x-ratelimit-reset"), "45");
  EXPECT_EQ(over.callbacks.header("x-ratelimit-limit"), "2");
  EXPECT_EQ(over.callbacks.header("x-ratelimit-remaining"), "0");
  EXPECT_EQ(Stat("certs.limited"), 1u);

  // Known over: refused at once, no round trip. Another key still asks.
  time_.Advance(std::chrono::seconds(40));
  Request cached(dispatcher_, config, "/generatecert", "alice");
  EXPECT_EQ(cached.Decode(), http::FilterStatus::kStop);
  EXPECT_EQ(cached.callbacks.status(), 429);
  EXPECT_EQ(cached.callbacks.header("retry-after"), "5");
  EXPECT_EQ(store().calls.size(), 1u);
  EXPECT_EQ(Stat("over_limit_cache_hit"), 1u);
  EXPECT_EQ(Stat("certs.limited"), 2u);
  Request bob(dispatcher_, config, "/generatecert", "bob");
  EXPECT_EQ(bob.Decode(), http::FilterStatus::kStop);
  EXPECT_EQ(store().calls.size(), 2u);

  // The next window asks Redis again.
  time_.Advance(std::chrono::seconds(5));
  Request next(dispatcher_, config, "/generatecert", "alice");
  EXPECT_EQ(next.Decode(), http::FilterStatus::kStop);
  ASSERT_EQ(store().calls.size(), 3u);
  store().Count(2, 1);
  EXPECT_EQ(next.callbacks.continue_calls, 1);
}

TEST_F(GlobalRateLimitTest, FailOpenLetsRequestsOnWhenRedisFails) {
  auto config = Build(kPerUser);
  Request timed_out(dispatcher_, config, "/generatecert", "alice");
  timed_out.Decode();
  store().Answer(0, {CounterReply::Status::kTimeout});
  EXPECT_EQ(timed_out.callbacks.continue_calls, 1);
  // No connection: decided at once, inside DecodeHeaders.
  store().available = false;
  Request unreachable(dispatcher_, config, "/generatecert", "alice");
  EXPECT_EQ(unreachable.Decode(), http::FilterStatus::kContinue);
  EXPECT_EQ(unreachable.callbacks.continue_calls, 0);
  EXPECT_EQ(Stat("redis_error"), 2u);
  EXPECT_EQ(Stat("failure_mode_allowed"), 2u);
  EXPECT_EQ(Stat("failure_mode_denied"), 0u);
}

TEST_F(GlobalRateLimitTest, FailClosedAnswers500WhenRedisFails) {
  auto config = Build(std::string(kPerUser) + "failure_mode: FAIL_CLOSED\n");
  Request failed(dispatcher_, config, "/generatecert", "alice");
  failed.Decode();
  store().Answer(0, {CounterReply::Status::kError});
  EXPECT_EQ(failed.callbacks.continue_calls, 0);
  EXPECT_EQ(failed.callbacks.status(), 500);
  EXPECT_EQ(failed.callbacks.info.response_flags, "RLSE");
  store().available = false;
  Request unreachable(dispatcher_, config, "/generatecert", "alice");
  EXPECT_EQ(unreachable.Decode(), http::FilterStatus::kStop);
  EXPECT_EQ(unreachable.callbacks.status(), 500);
  EXPECT_EQ(Stat("failure_mode_denied"), 2u);
  EXPECT_EQ(Stat("redis_error"), 2u);
}

TEST_F(GlobalRateLimitTest, AResetWhileRedisAnswersCancelsTheCall) {
  auto config = Build(kPerUser);
  {
    Request gone(dispatcher_, config, "/generatecert", "alice");
    gone.Decode();
    gone.filter.OnDestroy();  // The downstream reset: the connection manager destroys it.
  }
  ASSERT_EQ(store().calls.size(), 1u);
  EXPECT_TRUE(store().calls[0]->cancelled);
  store().Count(0, 1);  // Would touch the freed filter if the cancel were lost.
  EXPECT_EQ(Stat("certs.allowed"), 0u);
}

TEST_F(GlobalRateLimitTest, EveryLimitThatAppliesIsCountedAndOneOverRefuses) {
  auto config = Build(R"(
stat_prefix: grl
redis: {addresses: ["127.0.0.1:6379"]}
limits:
- {name: all, requests_per_unit: 100, unit: SECOND}
- {name: per_path, key: {path: true}, requests_per_unit: 1, unit: HOUR, window: SLIDING}
)");
  Request r(dispatcher_, config, "/a?x=1");
  EXPECT_EQ(r.Decode(), http::FilterStatus::kStop);
  ASSERT_EQ(store().calls.size(), 2u);
  EXPECT_EQ(store().calls[0]->request.key, absl::StrCat("phx_rl:phoenix:all:", 1704067200, ":"));
  int64_t hour = 1704067200 / 3600;
  EXPECT_EQ(store().calls[1]->request.key, absl::StrCat("phx_rl:phoenix:per_path:", hour, ":/a"));
  EXPECT_EQ(store().calls[1]->request.previous_key,
            absl::StrCat("phx_rl:phoenix:per_path:", hour - 1, ":/a"));
  EXPECT_EQ(store().calls[1]->request.ttl_s, 7201u);
  store().Count(1, 2);
  EXPECT_EQ(r.callbacks.status(), 0) << "decided before every count was in";
  store().Count(0, 1);
  EXPECT_EQ(r.callbacks.status(), 429);
  EXPECT_EQ(r.callbacks.header("x-ratelimit-limit"), "1");
  EXPECT_EQ(Stat("all.allowed"), 0u);
  EXPECT_EQ(Stat("per_path.limited"), 1u);
}

TEST(GlobalLimitTest, SlidingWindowWeighsThePreviousWindow) {
  config::v1::GlobalRateLimitDescriptor proto;
  proto.set_name("l");
  proto.set_requests_per_unit(10);
  proto.set_unit(config::v1::GlobalRateLimitDescriptor::SECOND);
  proto.set_window(config::v1::GlobalRateLimitDescriptor::SLIDING);
  StatsStore stats;
  config::ConfigErrors errors;
  GlobalLimit limit(proto, "d", StatsScope(stats, "x."), "l", errors);
  ASSERT_TRUE(errors.empty()) << errors.ToStatus();
  int64_t start = 1000 * 1000000ll;
  WindowPosition at = limit.Position(start + 250000);  // A quarter into the window.
  EXPECT_EQ(at.start_us, start);
  int64_t until = 0;
  auto counts = [](uint64_t current, uint64_t previous) {
    return CounterReply{CounterReply::Status::kOk, current, previous};
  };
  // 8 * 0.75 + 4 = 10: at the limit, allowed.
  EXPECT_FALSE(limit.Over(at, counts(4, 8), start + 250000, &until));
  // 8 * 0.75 + 5 = 11: over until 8 * (1 - f) <= 5, f >= 3/8.
  EXPECT_TRUE(limit.Over(at, counts(5, 8), start + 250000, &until));
  EXPECT_EQ(until, start + 375000);
  // Over on the current window alone: until it ends.
  EXPECT_TRUE(limit.Over(at, counts(11, 0), start + 250000, &until));
  EXPECT_EQ(until, start + 1000000);
  EXPECT_TRUE(limit.Over(at, counts(10, 1), start + 250000, &until));
  EXPECT_EQ(until, start + 1000000);
}

TEST(RedisAddressTest, ParsesHostPortAndBracketedV6) {
  auto v4 = RedisAddress::Parse("127.0.0.1:6379");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 6379);
  auto v6 = RedisAddress::Parse("[::1]:7000");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 7000);
  EXPECT_FALSE(RedisAddress::Parse("redis").ok());
  EXPECT_FALSE(RedisAddress::Parse("redis:0").ok());
  EXPECT_FALSE(RedisAddress::Parse("redis:70000").ok());
  EXPECT_FALSE(RedisAddress::Parse("::1:6379").ok());
  EXPECT_FALSE(RedisAddress::Parse(":6379").ok());
}

// kPerUser with `limit` per minute and token leases of up to `max_lease`.
std::string Leasing(uint32_t limit, uint32_t max_lease) {
  return absl::StrCat(R"(
stat_prefix: grl
domain: fleet
redis: {addresses: ["127.0.0.1:6379"]}
max_lease: )",
                      max_lease, R"(
limits:
- name: certs
  match: {path: {prefix: /generatecert}}
  key: {header: x-user}
  requests_per_unit: )",
                      limit, R"(
  unit: MINUTE
)");
}

TEST_F(GlobalRateLimitTest, ALeaseLetsTheNextRequestsOnWithoutARoundTrip) {
  auto config = Build(Leasing(160, 10));
  // The key's count is unknown on this worker: the first request counts alone.
  Request first(dispatcher_, config, "/generatecert", "alice");
  EXPECT_EQ(first.Decode(), http::FilterStatus::kStop);
  ASSERT_EQ(store().calls.size(), 1u);
  EXPECT_EQ(store().calls[0]->request.amount, 1);
  store().Count(0, 1);
  EXPECT_EQ(first.callbacks.continue_calls, 1);
  // Then a lease: 159 / 8, capped by max_lease. One at a time: meanwhile requests count alone.
  Request leasing(dispatcher_, config, "/generatecert", "alice");
  leasing.Decode();
  Request meanwhile(dispatcher_, config, "/generatecert", "alice");
  meanwhile.Decode();
  ASSERT_EQ(store().calls.size(), 3u);
  EXPECT_EQ(store().calls[1]->request.amount, 10);
  EXPECT_EQ(store().calls[2]->request.amount, 1);
  store().Count(1, 11);
  store().Count(2, 12);
  EXPECT_EQ(leasing.callbacks.continue_calls, 1);
  EXPECT_EQ(meanwhile.callbacks.continue_calls, 1);
  for (int i = 0; i < 9; ++i) {
    Request leased(dispatcher_, config, "/generatecert", "alice");
    EXPECT_EQ(leased.Decode(), http::FilterStatus::kContinue) << i;
  }
  EXPECT_EQ(store().calls.size(), 3u);
  EXPECT_EQ(Stat("lease_hit"), 9u);
  EXPECT_EQ(Stat("certs.allowed"), 12u);
  // Used up: the next request leases again. A lease lost with its request (a reset) does not
  // keep the key from leasing.
  {
    Request reset(dispatcher_, config, "/generatecert", "alice");
    reset.Decode();
    EXPECT_EQ(store().calls[3]->request.amount, 10);
  }
  Request next(dispatcher_, config, "/generatecert", "alice");
  next.Decode();
  EXPECT_EQ(store().calls[4]->request.amount, 10);
  // Other keys and the next window start from a count of their own.
  Request bob(dispatcher_, config, "/generatecert", "bob");
  bob.Decode();
  EXPECT_EQ(store().calls[5]->request.amount, 1);
  time_.Advance(std::chrono::seconds(60));
  Request later(dispatcher_, config, "/generatecert", "alice");
  later.Decode();
  EXPECT_EQ(store().calls[6]->request.amount, 1);
}

TEST_F(GlobalRateLimitTest, LeasesShrinkNearTheLimitAndNeverLetMoreThroughThanIt) {
  // One worker alone on a key: Redis's count is the sum of what it asked for and gave back.
  auto config = Build(Leasing(100, 1000));
  auto redis_count = [&](size_t upto) {
    int64_t count = 0;
    for (size_t i = 0; i <= upto; ++i) count += store().calls[i]->request.amount;
    return count;
  };
  int allowed = 0;
  for (int i = 0; i < 150; ++i) {
    Request r(dispatcher_, config, "/generatecert", "alice");
    http::FilterStatus status = r.Decode();
    if (status == http::FilterStatus::kStop && r.callbacks.status() == 0) {
      size_t call = store().calls.size() - 1;
      store().Count(call, redis_count(call));
    }
    if (status == http::FilterStatus::kContinue || r.callbacks.continue_calls == 1) ++allowed;
  }
  EXPECT_EQ(allowed, 100);
  // The one request over the limit counted, then the over-limit cache.
  EXPECT_EQ(redis_count(store().calls.size() - 1), 101);
  EXPECT_LT(store().calls.size(), 40u);
  EXPECT_EQ(store().calls.back()->request.amount, 1);
  EXPECT_EQ(Stat("certs.limited"), 50u);
}

TEST_F(GlobalRateLimitTest, ALeaseOthersFilledPartlyLetsOnlyWhatFitsAndGivesTheRestBack) {
  auto config = Build(Leasing(80, 10));
  CountAliceFirst(config);
  Request leasing(dispatcher_, config, "/generatecert", "alice");
  leasing.Decode();
  ASSERT_EQ(store().calls[1]->request.amount, 9);  // 79 / 8.
  store().Count(1, 85);  // Other sidecars counted 75 meanwhile: this request is the 77th.
  EXPECT_EQ(leasing.callbacks.continue_calls, 1);
  // 3 more fit (78th to 80th); the other 5 go back to Redis.
  ASSERT_EQ(store().calls.size(), 3u);
  EXPECT_EQ(store().calls[2]->request.amount, -5);
  EXPECT_EQ(store().calls[2]->request.key, store().calls[1]->request.key);
  for (int i = 0; i < 3; ++i) {
    Request leased(dispatcher_, config, "/generatecert", "alice");
    EXPECT_EQ(leased.Decode(), http::FilterStatus::kContinue) << i;
  }
  Request over(dispatcher_, config, "/generatecert", "alice");
  EXPECT_EQ(over.Decode(), http::FilterStatus::kStop);
  ASSERT_EQ(store().calls.size(), 4u);
  EXPECT_EQ(store().calls[3]->request.amount, 1);
  store().Count(3, 81);
  EXPECT_EQ(over.callbacks.status(), 429);
  EXPECT_EQ(Stat("certs.allowed"), 5u);
}

TEST_F(GlobalRateLimitTest, ASlidingWindowLeasesWhatTheEstimateLeaves) {
  auto config = Build(Leasing(80, 40) + "  window: SLIDING\n");
  time_.Advance(std::chrono::seconds(45));  // The previous window still weighs a quarter.
  CountAliceFirst(config, 11, 200);         // Estimate 200 / 4 + 11 = 61: 19 left.
  Request leasing(dispatcher_, config, "/generatecert", "alice");
  leasing.Decode();
  ASSERT_EQ(store().calls[1]->request.amount, 2);  // 19 / 8.
  store().Count(1, 13, 200);
  EXPECT_EQ(leasing.callbacks.continue_calls, 1);
  Request leased(dispatcher_, config, "/generatecert", "alice");
  EXPECT_EQ(leased.Decode(), http::FilterStatus::kContinue);
  EXPECT_EQ(store().calls.size(), 2u);
}

TEST_F(GlobalRateLimitTest, ALeasedRequestGoesOnAheadOfTheOverLimitCache) {
  // Counts of one request may land over the limit while this worker still holds leased ones,
  // which Redis counted under it: those still go on.
  auto config = Build(Leasing(80, 10));
  CountAliceFirst(config);
  Request leasing(dispatcher_, config, "/generatecert", "alice");
  leasing.Decode();
  Request single(dispatcher_, config, "/generatecert", "alice");
  single.Decode();
  store().Count(1, 10);  // 8 leased.
  store().Count(2, 81);  // Others filled the rest: this one is over, and the key cached.
  EXPECT_EQ(single.callbacks.status(), 429);
  for (int i = 0; i < 8; ++i) {
    Request leased(dispatcher_, config, "/generatecert", "alice");
    EXPECT_EQ(leased.Decode(), http::FilterStatus::kContinue) << i;
  }
  Request cached(dispatcher_, config, "/generatecert", "alice");
  EXPECT_EQ(cached.Decode(), http::FilterStatus::kStop);
  EXPECT_EQ(cached.callbacks.status(), 429);
  EXPECT_EQ(Stat("over_limit_cache_hit"), 1u);
}

TEST_F(GlobalRateLimitTest, ALeaseWhoseRequestGoesAwayIsGivenBackAndFreesItsSlot) {
  auto config = Build(R"(
stat_prefix: grl
redis: {addresses: ["127.0.0.1:6379"]}
max_lease: 10
limits:
- {name: all, requests_per_unit: 800, unit: MINUTE}
- {name: per_path, key: {path: true}, requests_per_unit: 800, unit: MINUTE}
)");
  Request first(dispatcher_, config, "/a");
  first.Decode();
  store().Count(0, 1);
  store().Count(1, 1);
  EXPECT_EQ(first.callbacks.continue_calls, 1);
  {
    // Both limits lease; one answers, then the request is reset before the other does.
    Request reset(dispatcher_, config, "/a");
    reset.Decode();
    ASSERT_EQ(store().calls.size(), 4u);
    EXPECT_EQ(store().calls[2]->request.amount, 10);
    EXPECT_EQ(store().calls[3]->request.amount, 10);
    store().Count(2, 11);
  }
  // The answered lease goes back whole (nothing of it was used); the other was cancelled.
  ASSERT_EQ(store().calls.size(), 5u);
  EXPECT_EQ(store().calls[4]->request.amount, -9);
  EXPECT_EQ(store().calls[4]->request.key, store().calls[2]->request.key);
  EXPECT_TRUE(store().calls[3]->cancelled);
  // Neither key is stuck with a lease on its way: the next request leases both again.
  Request next(dispatcher_, config, "/a");
  next.Decode();
  ASSERT_EQ(store().calls.size(), 7u);
  EXPECT_EQ(store().calls[5]->request.amount, 10);
  EXPECT_EQ(store().calls[6]->request.amount, 10);
}

TEST_F(GlobalRateLimitTest, ALeaseLostToRedisFreesItsSlot) {
  auto config = Build(Leasing(160, 10));
  CountAliceFirst(config);
  Request failed(dispatcher_, config, "/generatecert", "alice");
  failed.Decode();
  ASSERT_EQ(store().calls[1]->request.amount, 10);
  store().Answer(1, {CounterReply::Status::kTimeout, 0, 0});
  EXPECT_EQ(failed.callbacks.continue_calls, 1);  // FAIL_OPEN.
  store().available = false;
  Request no_connection(dispatcher_, config, "/generatecert", "alice");
  EXPECT_EQ(no_connection.Decode(), http::FilterStatus::kContinue);
  store().available = true;
  Request next(dispatcher_, config, "/generatecert", "alice");
  next.Decode();
  EXPECT_EQ(store().calls.back()->request.amount, 10);
}

TEST_F(GlobalRateLimitTest, ConfigErrorsNameTheField) {
  std::string errors = Errors(R"(
limits:
- {name: "a:b", requests_per_unit: 0, key: {header: ""}}
)");
  EXPECT_NE(errors.find("grl.stat_prefix:"), std::string::npos) << errors;
  EXPECT_NE(errors.find("grl.redis: set redis.addresses"), std::string::npos) << errors;
  EXPECT_NE(errors.find("grl.limits[0].name: no ':'"), std::string::npos) << errors;
  EXPECT_NE(errors.find("grl.limits[0].requests_per_unit: must be > 0"), std::string::npos)
      << errors;
  EXPECT_NE(errors.find("grl.limits[0].unit:"), std::string::npos) << errors;
  EXPECT_NE(errors.find("grl.limits[0].key.header: name the header"), std::string::npos) << errors;
  errors = Errors(R"(
stat_prefix: s
redis: {addresses: ["127.0.0.1:6379", "redis"], timeout: 0s}
limits: [{name: a, requests_per_unit: 1, unit: SECOND}]
)");
  EXPECT_NE(errors.find("grl.redis.addresses[1]: 'redis' is not host:port"), std::string::npos)
      << errors;
  EXPECT_EQ(errors.find("addresses[0]"), std::string::npos) << errors;
  EXPECT_NE(errors.find("grl.redis.timeout: must be at least 1ms"), std::string::npos) << errors;
  errors = Errors(Leasing(10, 100001));
  EXPECT_NE(errors.find("grl.max_lease: at most 100000"), std::string::npos) << errors;
}

}  // namespace
}  // namespace phoenix::filters
