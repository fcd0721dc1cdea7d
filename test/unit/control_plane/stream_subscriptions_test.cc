#include "source/control_plane/stream_subscriptions.h"

#include "gtest/gtest.h"

namespace phoenix::control_plane {
namespace {

using service::discovery::v1::DiscoveryRequest;
using Kind = StreamSubscriptions::RequestKind;

constexpr const char* kClusters = "type.googleapis.com/phoenix.config.v1.Cluster";

DiscoveryRequest Request(const std::string& nonce, const std::string& error = "") {
  DiscoveryRequest request;
  request.set_type_url(kClusters);
  request.set_response_nonce(nonce);
  if (!error.empty()) request.mutable_error_detail()->set_message(error);
  return request;
}

TEST(StreamSubscriptionsTest, FirstRequestSubscribes) {
  StreamSubscriptions subscriptions;
  EXPECT_EQ(subscriptions.OnRequest(Request("")).kind, Kind::kSubscribe);
  ASSERT_NE(subscriptions.Find(kClusters), nullptr);
  EXPECT_TRUE(subscriptions.Find(kClusters)->resource_names.empty());
}

TEST(StreamSubscriptionsTest, AckOfTheLastNonceRecordsTheVersion) {
  StreamSubscriptions subscriptions;
  subscriptions.OnRequest(Request(""));
  std::string nonce = subscriptions.RecordSent(kClusters, "1", "content");
  EXPECT_EQ(subscriptions.OnRequest(Request(nonce)).kind, Kind::kAck);
  EXPECT_EQ(subscriptions.Find(kClusters)->acked_version, "1");
}

TEST(StreamSubscriptionsTest, NackRecordsTheErrorAndKeepsTheAckedVersion) {
  StreamSubscriptions subscriptions;
  subscriptions.OnRequest(Request(""));
  subscriptions.OnRequest(Request(subscriptions.RecordSent(kClusters, "1", "a")));
  std::string nonce = subscriptions.RecordSent(kClusters, "2", "b");
  EXPECT_EQ(subscriptions.OnRequest(Request(nonce, "bad cluster")).kind, Kind::kNack);
  const auto* state = subscriptions.Find(kClusters);
  EXPECT_EQ(state->acked_version, "1");
  EXPECT_EQ(state->nacked_version, "2");
  EXPECT_EQ(state->last_error, "bad cluster");
}

TEST(StreamSubscriptionsTest, StaleNonceIsIgnored) {
  StreamSubscriptions subscriptions;
  subscriptions.OnRequest(Request(""));
  std::string old_nonce = subscriptions.RecordSent(kClusters, "1", "a");
  std::string nonce = subscriptions.RecordSent(kClusters, "2", "b");
  EXPECT_NE(old_nonce, nonce);
  EXPECT_EQ(subscriptions.OnRequest(Request(old_nonce)).kind, Kind::kStale);
  EXPECT_EQ(subscriptions.Find(kClusters)->acked_version, "");
  EXPECT_EQ(subscriptions.OnRequest(Request(nonce)).kind, Kind::kAck);
}

TEST(StreamSubscriptionsTest, ContentDecidesWhetherToSendAgain) {
  StreamSubscriptions subscriptions;
  subscriptions.OnRequest(Request(""));
  EXPECT_TRUE(subscriptions.Differs(kClusters, "a"));  // Nothing sent yet.
  subscriptions.RecordSent(kClusters, "1", "a");
  EXPECT_FALSE(subscriptions.Differs(kClusters, "a"));
  EXPECT_TRUE(subscriptions.Differs(kClusters, "b"));
}

TEST(StreamSubscriptionsTest, NewNamesWithAnAckAskForTheSetAgain) {
  StreamSubscriptions subscriptions;
  subscriptions.OnRequest(Request(""));
  DiscoveryRequest ack = Request(subscriptions.RecordSent(kClusters, "1", "a"));
  ack.add_resource_names("app");
  auto answer = subscriptions.OnRequest(ack);
  EXPECT_EQ(answer.kind, Kind::kAck);
  EXPECT_TRUE(answer.names_changed);
  EXPECT_EQ(subscriptions.Find(kClusters)->resource_names, std::vector<std::string>{"app"});
}

}  // namespace
}  // namespace phoenix::control_plane
