#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "source/config/yaml_loader.h"
#include "source/filters/local_ratelimit/local_ratelimit.h"

namespace phoenix::filters {
namespace {

std::unique_ptr<LocalRateLimitConfig> Build(StatsStore& stats, const std::string& yaml,
                                            const std::string& stat_prefix = "ingress") {
  config::v1::LocalRateLimit proto;
  absl::Status status = config::LoadYamlString(yaml, &proto, nullptr);
  EXPECT_TRUE(status.ok()) << status;
  config::ConfigErrors errors;
  auto config = std::make_unique<LocalRateLimitConfig>(proto, stats, stat_prefix, "f", errors);
  EXPECT_TRUE(errors.empty()) << errors.ToStatus();
  return config;
}

http::RequestHeaders Get() {
  http::RequestHeaders r;
  r.method = "GET";
  r.path = "/";
  return r;
}

constexpr const char* kTwoPerMinute = R"(
limits:
- {name: two, token_bucket: {max_tokens: 2, tokens_per_fill: 2, fill_interval: 60s},
   max_concurrent_requests: 1}
)";

// A reload builds the config again; an unchanged limit must not start over.
TEST(RateLimitStateTest, AnUnchangedLimitKeepsItsBucketsAndSlotsAcrossAReload) {
  StatsStore stats;
  auto before = Build(stats, kTwoPerMinute);
  const RateLimit& old_limit = *before->limits()[0];
  EXPECT_TRUE(old_limit.TakeToken(Get(), "1.2.3.4", 0).allowed);
  EXPECT_TRUE(old_limit.TakeToken(Get(), "1.2.3.4", 0).allowed);
  EXPECT_EQ(old_limit.Enter(nullptr), RateLimit::EnterResult::kEntered);

  auto after = Build(stats, kTwoPerMinute);
  const RateLimit& new_limit = *after->limits()[0];
  EXPECT_EQ(new_limit.state(), old_limit.state());
  EXPECT_FALSE(new_limit.TakeToken(Get(), "1.2.3.4", 1000).allowed) << "the bucket was refilled";
  EXPECT_EQ(new_limit.Enter(nullptr), RateLimit::EnterResult::kRejected)
      << "the request in flight under the old config was forgotten";
  old_limit.Leave();  // The old config's request ends: its slot frees for the new one.
  before.reset();
  EXPECT_EQ(new_limit.Enter(nullptr), RateLimit::EnterResult::kEntered);
  new_limit.Leave();
}

TEST(RateLimitStateTest, AChangedLimitOrAnotherListenerStartsAfresh) {
  StatsStore stats;
  auto first = Build(stats, kTwoPerMinute);
  auto changed = Build(stats, R"(
limits:
- {name: two, token_bucket: {max_tokens: 3, tokens_per_fill: 3, fill_interval: 60s},
   max_concurrent_requests: 1}
)");
  auto other_listener = Build(stats, kTwoPerMinute, "egress");
  EXPECT_NE(first->limits()[0]->state(), changed->limits()[0]->state());
  EXPECT_NE(first->limits()[0]->state(), other_listener->limits()[0]->state());
}

TEST(RateLimitStateTest, AStateNoConfigHoldsIsGone) {
  StatsStore stats;
  std::weak_ptr<RateLimitState> old_state;
  {
    auto config = Build(stats, kTwoPerMinute, "gone");
    old_state = config->limits()[0]->state();
    EXPECT_TRUE(config->limits()[0]->TakeToken(Get(), "", 0).allowed);
  }
  EXPECT_TRUE(old_state.expired());
  auto again = Build(stats, kTwoPerMinute, "gone");
  EXPECT_TRUE(again->limits()[0]->TakeToken(Get(), "", 0).allowed);
  EXPECT_TRUE(again->limits()[0]->TakeToken(Get(), "", 0).allowed);
}

}  // namespace
}  // namespace phoenix::filters
