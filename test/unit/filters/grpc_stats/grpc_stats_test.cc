#include "source/filters/grpc_stats/grpc_stats.h"

#include "gtest/gtest.h"
#include "source/config/yaml_loader.h"

namespace phoenix::filters {
namespace {

class GrpcStatsTest : public ::testing::Test {
 protected:
  std::shared_ptr<GrpcStatsConfig> Build(const std::string& yaml) {
    config::v1::GrpcStats proto;
    absl::Status status = config::LoadYamlString(yaml, &proto, nullptr);
    EXPECT_TRUE(status.ok()) << status;
    auto config = std::make_shared<GrpcStatsConfig>(proto, stats_, "in", "grpc_stats", errors_);
    EXPECT_TRUE(errors_.empty()) << errors_.ToStatus();
    return config;
  }

  // One call to `path` (content type `type`) through a filter, ended by `end`.
  void Call(const std::shared_ptr<GrpcStatsConfig>& config, const std::string& path,
            const std::function<void(GrpcStatsFilter&)>& end,
            const std::string& type = "application/grpc") {
    GrpcStatsFilter filter(config);
    http::RequestHeaders request;
    request.method = "POST";
    request.path = path;
    request.headers.Add("content-type", type);
    filter.DecodeHeaders(request, false);
    end(filter);
    filter.OnDestroy();
  }

  static std::function<void(GrpcStatsFilter&)> Trailers(const std::string& status) {
    return [status](GrpcStatsFilter& filter) {
      http::ResponseHeaders head;
      filter.EncodeHeaders(head, false);
      http::HeaderMap trailers;
      trailers.Add("grpc-status", status);
      filter.EncodeTrailers(trailers);
    };
  }

  uint64_t Count(const std::string& name) { return stats_.counter("http.in.grpc." + name).Value(); }

  StatsStore stats_;
  config::ConfigErrors errors_;
};

TEST_F(GrpcStatsTest, AllowListedMethodsAreCountedByStatus) {
  auto config =
      Build("individual_method_stats_allowlist: {services: [{name: a.S, method_names: [M]}]}");
  Call(config, "/a.S/M", Trailers("0"));
  Call(config, "/a.S/M", Trailers("14"));
  Call(config, "/a.S/Other", Trailers("0"));
  EXPECT_EQ(Count("a.S.M.total"), 2u);
  EXPECT_EQ(Count("a.S.M.success"), 1u);
  EXPECT_EQ(Count("a.S.M.failure"), 1u);
  EXPECT_EQ(Count("a.S.M.14"), 1u);
  EXPECT_EQ(Count("other.other.total"), 1u);
}

TEST_F(GrpcStatsTest, TrailersOnlyAndHttpErrorsCarryTheirStatus) {
  auto config = Build("stats_for_all_methods: true");
  Call(config, "/a.S/M", [](GrpcStatsFilter& filter) {
    http::ResponseHeaders head;
    head.headers.Add("grpc-status", "7");
    filter.EncodeHeaders(head, true);
  });
  Call(config, "/a.S/M", [](GrpcStatsFilter& filter) {
    http::ResponseHeaders head;
    head.status = 503;  // An HTTP error without grpc-status: UNAVAILABLE to the client.
    filter.EncodeHeaders(head, true);
  });
  EXPECT_EQ(Count("a.S.M.7"), 1u);
  EXPECT_EQ(Count("a.S.M.14"), 1u);
  EXPECT_EQ(Count("a.S.M.failure"), 2u);
}

TEST_F(GrpcStatsTest, AResetCountsAsAFailureWithoutStatus) {
  auto config = Build("stats_for_all_methods: true");
  Call(config, "/a.S/M", [](GrpcStatsFilter&) {});
  EXPECT_EQ(Count("a.S.M.total"), 1u);
  EXPECT_EQ(Count("a.S.M.failure"), 1u);
}

TEST_F(GrpcStatsTest, MethodsBeyondTheCapAreOther) {
  auto config = Build("stats_for_all_methods: true\nmax_methods: 2");
  for (const char* method : {"/a.S/One", "/a.S/Two", "/a.S/Three", "/a.S/One"}) {
    Call(config, method, Trailers("0"));
  }
  EXPECT_EQ(Count("a.S.One.total"), 2u);
  EXPECT_EQ(Count("a.S.Two.total"), 1u);
  EXPECT_EQ(Count("a.S.Three.total"), 0u);
  EXPECT_EQ(Count("other.other.total"), 1u);
}

TEST_F(GrpcStatsTest, PathsThatAreNoStatNameAreOther) {
  auto config = Build("stats_for_all_methods: true");
  Call(config, "/a.S/M?x=1", Trailers("0"));    // The query is not part of the method.
  Call(config, "/a.S/M/extra", Trailers("0"));  // Not service/method.
  Call(config, "/a S/M", Trailers("0"));        // Not a name.
  EXPECT_EQ(Count("a.S.M.total"), 1u);
  EXPECT_EQ(Count("other.other.total"), 2u);
}

TEST_F(GrpcStatsTest, OtherRequestsAreNotCounted) {
  auto config = Build("stats_for_all_methods: true");
  Call(config, "/a.S/M", Trailers("0"), "application/json");
  Call(config, "/a.S/M", Trailers("0"), "application/grpcfoo");
  EXPECT_EQ(Count("a.S.M.total"), 0u);
  EXPECT_EQ(Count("other.other.total"), 0u);
}

}  // namespace
}  // namespace phoenix::filters
