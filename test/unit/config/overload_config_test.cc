#include "source/config/overload_config.h"

#include <netinet/in.h>

#include <string>

#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace phoenix::config {
namespace {

using testing::HasSubstr;

TEST(WebhookUrlTest, Forms) {
  WebhookTarget target;
  ASSERT_TRUE(ParseWebhookUrl("http://127.0.0.1:9000/hooks/cpu", &target));
  EXPECT_EQ(target.host, "127.0.0.1:9000");
  EXPECT_EQ(target.path, "/hooks/cpu");
  EXPECT_EQ(ntohs(reinterpret_cast<sockaddr_in*>(&target.address)->sin_port), 9000);
  ASSERT_TRUE(ParseWebhookUrl("http://localhost", &target));
  EXPECT_EQ(target.path, "/");
  EXPECT_EQ(ntohs(reinterpret_cast<sockaddr_in*>(&target.address)->sin_port), 80);
  ASSERT_TRUE(ParseWebhookUrl("http://[::1]:81/x", &target));
  EXPECT_EQ(target.address.ss_family, AF_INET6);
  for (const char* bad : {"https://127.0.0.1/", "http://example.com/", "http://127.0.0.1:0/",
                          "http://127.0.0.1:99999/", "http://127.0.0.1:/", "127.0.0.1:80",
                          "http://[::1/", "http://[::1]x/"}) {
    EXPECT_FALSE(ParseWebhookUrl(bad, &target)) << bad;
  }
}

TEST(OverloadConfigTest, DefaultsAndErrors) {
  phoenix::config::v1::OverloadManager proto;
  proto.mutable_cpu()->set_notice(0.9);
  proto.mutable_cpu()->set_shed(0.8);
  proto.mutable_memory()->set_shed(0.9);
  proto.set_notice_webhook("http://example.com/");
  ConfigErrors errors(nullptr);
  OverloadConfig config;
  BuildOverloadConfig(proto, "overload_manager", errors, &config);
  std::string all = absl::StrJoin(errors.errors(), "\n");
  EXPECT_THAT(all, HasSubstr("overload_manager.cpu.notice: must not be above shed"));
  EXPECT_THAT(all, HasSubstr("overload_manager.max_rss_mb: memory thresholds need max_rss_mb"));
  EXPECT_THAT(all, HasSubstr("overload_manager.notice_webhook: 'http://example.com/' is not"));
  EXPECT_EQ(config.refresh_interval.count(), 1000);
  EXPECT_EQ(config.webhook_timeout.count(), 2000);
  EXPECT_TRUE(config.enabled());
}

}  // namespace
}  // namespace phoenix::config
