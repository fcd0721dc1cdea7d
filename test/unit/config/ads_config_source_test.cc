#include "source/config/ads_config_source.h"

#include <grpcpp/grpcpp.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "phoenix/service/discovery/v1/ads.grpc.pb.h"
#include "test/unit/fakes/test_dispatcher.h"

namespace phoenix::config {
namespace {

using service::discovery::v1::AggregatedDiscoveryService;
using service::discovery::v1::DiscoveryRequest;
using service::discovery::v1::DiscoveryResponse;
using ::testing::HasSubstr;

// A control plane in the test process (gRPC's blocking server on a loopback port): records
// every request the client sends and lets the test push responses on the stream in progress.
class FakeControlPlane : public AggregatedDiscoveryService::Service {
 public:
  // Each request recorded wakes `test_loop` (the test waits on it with RunUntil).
  explicit FakeControlPlane(Dispatcher& test_loop) : test_loop_(test_loop) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
  }
  ~FakeControlPlane() override { Stop(); }

  std::string target() const { return absl::StrCat("127.0.0.1:", port_); }
  void Stop() {
    if (server_ == nullptr) return;
    server_->Shutdown(std::chrono::system_clock::now());
    server_->Wait();
    server_.reset();
  }

  grpc::Status StreamAggregatedResources(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<DiscoveryResponse, DiscoveryRequest>* stream) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stream_ = stream;
    }
    DiscoveryRequest request;
    while (stream->Read(&request)) {
      std::lock_guard<std::mutex> lock(mutex_);
      requests_.push_back(request);
      test_loop_.Post([] {});
    }
    std::lock_guard<std::mutex> lock(mutex_);
    stream_ = nullptr;
    return grpc::Status::OK;
  }

  bool Push(const DiscoveryResponse& response) {
    std::lock_guard<std::mutex> lock(mutex_);
    return stream_ != nullptr && stream_->Write(response);
  }
  size_t request_count() {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_.size();
  }
  DiscoveryRequest request(size_t i) {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_.at(i);
  }

 private:
  Dispatcher& test_loop_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::mutex mutex_;
  grpc::ServerReaderWriter<DiscoveryResponse, DiscoveryRequest>* stream_ = nullptr;
  std::vector<DiscoveryRequest> requests_;
};

// Takes the updates; answers each with `answer`.
struct RecordingCallbacks : public ConfigUpdateCallbacks {
  absl::Status OnConfigUpdate(const ConfigUpdate& update) override {
    updates.push_back(update);
    return answer;
  }
  std::vector<ConfigUpdate> updates;
  absl::Status answer = absl::OkStatus();
};

DiscoveryResponse ClusterResponse(const std::string& version, const std::string& nonce) {
  DiscoveryResponse response;
  response.set_version_info(version);
  response.set_nonce(nonce);
  response.set_type_url(std::string(TypeUrl(ResourceType::kCluster)));
  v1::Cluster cluster;
  cluster.set_name("app");
  response.add_resources()->PackFrom(cluster);
  return response;
}

class AdsConfigSourceTest : public ::testing::Test {
 protected:
  std::unique_ptr<AdsConfigSource> Source(const std::vector<std::string>& targets) {
    v1::Node node;
    node.set_id("sidecar-1");
    v1::ApiConfigSource config;
    config.set_api_type(v1::ApiConfigSource::GRPC);
    for (const auto& target : targets) {
      config.add_grpc_services()->mutable_google_grpc()->set_target_uri(target);
    }
    config.mutable_reconnect_base_interval()->set_nanos(20 * 1000 * 1000);
    auto source = std::make_unique<AdsConfigSource>(dispatcher_, node, config);
    EXPECT_TRUE(source->Start(callbacks_).ok());
    return source;
  }
  bool WaitForRequests(FakeControlPlane& cp, size_t count) {
    return dispatcher_.RunUntil([&] { return cp.request_count() >= count; });
  }

  fakes::TestDispatcher dispatcher_;
  RecordingCallbacks callbacks_;
};

TEST_F(AdsConfigSourceTest, SubscribesToEveryTypeThenAcksWithTheVersionAndNonce) {
  FakeControlPlane cp(dispatcher_);
  auto source = Source({cp.target()});
  ASSERT_TRUE(WaitForRequests(cp, 5));
  EXPECT_EQ(cp.request(0).node().id(), "sidecar-1");
  EXPECT_FALSE(cp.request(1).has_node());
  std::vector<std::string> types;
  for (size_t i = 0; i < 5; ++i) types.push_back(cp.request(i).type_url());
  EXPECT_THAT(types,
              ::testing::ElementsAre(HasSubstr(".Secret"), HasSubstr(".Cluster"),
                                     HasSubstr(".ClusterLoadAssignment"),
                                     HasSubstr(".RouteConfiguration"), HasSubstr(".Listener")));

  ASSERT_TRUE(cp.Push(ClusterResponse("1", "n1")));
  ASSERT_TRUE(WaitForRequests(cp, 6));
  ASSERT_EQ(callbacks_.updates.size(), 1u);
  const auto& delivered = callbacks_.updates[0].types.at(ResourceType::kCluster);
  EXPECT_EQ(delivered.version, "1");
  EXPECT_EQ(delivered.resources.size(), 1u);
  DiscoveryRequest ack = cp.request(5);
  EXPECT_EQ(ack.type_url(), TypeUrl(ResourceType::kCluster));
  EXPECT_EQ(ack.version_info(), "1");
  EXPECT_EQ(ack.response_nonce(), "n1");
  EXPECT_FALSE(ack.has_error_detail());
  EXPECT_EQ(source->status().at(ResourceType::kCluster).accepted_version, "1");
}

TEST_F(AdsConfigSourceTest, NackCarriesTheErrorAndTheVersionInForce) {
  FakeControlPlane cp(dispatcher_);
  auto source = Source({cp.target()});
  ASSERT_TRUE(WaitForRequests(cp, 5));
  ASSERT_TRUE(cp.Push(ClusterResponse("1", "n1")));
  ASSERT_TRUE(WaitForRequests(cp, 6));
  callbacks_.answer = absl::InvalidArgumentError("clusters[0].connect_timeout: too long");
  ASSERT_TRUE(cp.Push(ClusterResponse("2", "n2")));
  ASSERT_TRUE(WaitForRequests(cp, 7));
  DiscoveryRequest nack = cp.request(6);
  EXPECT_EQ(nack.version_info(), "1");
  EXPECT_EQ(nack.response_nonce(), "n2");
  EXPECT_EQ(nack.error_detail().code(), 3);
  EXPECT_THAT(nack.error_detail().message(), HasSubstr("connect_timeout: too long"));
  // status() is a copy: keep it while its entries are read.
  const auto statuses = source->status();
  const auto& status = statuses.at(ResourceType::kCluster);
  EXPECT_EQ(status.accepted_version, "1");
  EXPECT_EQ(status.rejected_version, "2");
  EXPECT_THAT(status.last_error, HasSubstr("too long"));
}

TEST_F(AdsConfigSourceTest, UnknownTypesAndMismatchedResourcesAreNacked) {
  FakeControlPlane cp(dispatcher_);
  auto source = Source({cp.target()});
  ASSERT_TRUE(WaitForRequests(cp, 5));
  DiscoveryResponse unknown;
  unknown.set_type_url("type.googleapis.com/phoenix.config.v1.Runtime");
  unknown.set_nonce("n1");
  ASSERT_TRUE(cp.Push(unknown));
  ASSERT_TRUE(WaitForRequests(cp, 6));
  EXPECT_THAT(cp.request(5).error_detail().message(), HasSubstr("unsupported resource type"));
  DiscoveryResponse mismatched = ClusterResponse("1", "n2");
  mismatched.set_type_url(std::string(TypeUrl(ResourceType::kListener)));
  ASSERT_TRUE(cp.Push(mismatched));
  ASSERT_TRUE(WaitForRequests(cp, 7));
  EXPECT_THAT(cp.request(6).error_detail().message(), HasSubstr("in a response of"));
  EXPECT_TRUE(callbacks_.updates.empty());
}

TEST_F(AdsConfigSourceTest, FailsOverToTheNextAddressAndResumesFromTheVersionsInForce) {
  FakeControlPlane first(dispatcher_);
  FakeControlPlane second(dispatcher_);
  auto source = Source({first.target(), second.target()});
  ASSERT_TRUE(WaitForRequests(first, 5));
  ASSERT_TRUE(first.Push(ClusterResponse("7", "n1")));
  ASSERT_TRUE(WaitForRequests(first, 6));
  first.Stop();
  ASSERT_TRUE(WaitForRequests(second, 5));
  EXPECT_EQ(second.request(0).node().id(), "sidecar-1");
  EXPECT_EQ(second.request(1).type_url(), TypeUrl(ResourceType::kCluster));
  EXPECT_EQ(second.request(1).version_info(), "7");
  EXPECT_EQ(second.request(4).version_info(), "");  // No listener accepted yet.
}

TEST_F(AdsConfigSourceTest, StopsPromptlyWhileNoControlPlaneAnswers) {
  auto source = Source({"127.0.0.1:1"});  // Nothing listens there: it backs off and retries.
  dispatcher_.RunPending();
  EXPECT_TRUE(source->status().empty());
  source.reset();  // Joins the stream thread, whether it is connecting or waiting.
  EXPECT_TRUE(callbacks_.updates.empty());
}

}  // namespace
}  // namespace phoenix::config
