#include "source/network/transport_socket_registry.h"

#include "google/protobuf/wrappers.pb.h"
#include "gtest/gtest.h"
#include "source/network/raw_buffer_socket.h"

namespace phoenix::network {
namespace {

class TransportSocketRegistryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { RegisterRawBufferSocket(); }

  // Builds `config` for a listener; the errors, one per line.
  TransportSocketFactoryPtr Build(const config::v1::TransportSocket& config,
                                  TransportSocketSide side = TransportSocketSide::kDownstream) {
    TransportSocketContext context;
    context.side = side;
    return TransportSocketRegistry::Build(config, context, "l.transport_socket", errors_);
  }
  std::string Errors() const { return std::string(errors_.ToStatus().message()); }

  config::ConfigErrors errors_;
};

config::v1::TransportSocket Named(const std::string& name) {
  config::v1::TransportSocket config;
  config.set_name(name);
  return config;
}

TEST_F(TransportSocketRegistryTest, NoneConfiguredIsRawTcp) {
  auto factory = Build(config::v1::TransportSocket());
  ASSERT_NE(factory, nullptr);
  EXPECT_NE(dynamic_cast<const RawBufferSocketFactory*>(factory.get()), nullptr);
  EXPECT_EQ(Errors(), "");
}

TEST_F(TransportSocketRegistryTest, RawBufferByNameWithOrWithoutItsEmptyConfig) {
  EXPECT_NE(Build(Named(RawBufferSocket::kName)), nullptr);
  auto config = Named(RawBufferSocket::kName);
  config.mutable_typed_config()->PackFrom(config::v1::RawBuffer());
  auto factory = Build(config);
  ASSERT_NE(factory, nullptr);
  EXPECT_FALSE(factory->ImplementsSecureTransport());
  EXPECT_EQ(Errors(), "");
}

TEST_F(TransportSocketRegistryTest, RawBufferRejectsAnotherConfigType) {
  auto config = Named(RawBufferSocket::kName);
  config.mutable_typed_config()->PackFrom(google::protobuf::BoolValue());
  EXPECT_EQ(Build(config), nullptr);
  EXPECT_EQ(Errors(),
            "l.transport_socket.typed_config: phoenix.transport_sockets.raw_buffer takes "
            "typed_config of type phoenix.config.v1.RawBuffer");
}

TEST_F(TransportSocketRegistryTest, UnknownNameSuggestsTheNearest) {
  EXPECT_EQ(Build(Named("envoy.transport_sockets.raw_buffer")), nullptr);
  EXPECT_EQ(Errors(),
            "l.transport_socket.name: unknown transport socket "
            "'envoy.transport_sockets.raw_buffer'; did you mean "
            "'phoenix.transport_sockets.raw_buffer'?");
}

TEST_F(TransportSocketRegistryTest, TypedConfigWithoutANameIsAnError) {
  config::v1::TransportSocket config;
  config.mutable_typed_config()->PackFrom(config::v1::RawBuffer());
  EXPECT_EQ(Build(config), nullptr);
  EXPECT_EQ(Errors(), "l.transport_socket.name: a transport socket needs a name");
}

// A registered transport gets its typed_config and the side it serves.
TEST_F(TransportSocketRegistryTest, BuildsARegisteredTransportForItsSide) {
  static std::vector<TransportSocketSide> sides;  // The registry outlives this test.
  sides.clear();                                  // And --gtest_repeat runs it again.
  TransportSocketRegistry::Register(
      "test.transport_sockets.recording",
      [](const google::protobuf::Any& typed_config, const TransportSocketContext& context,
         const std::string&, config::ConfigErrors&) -> TransportSocketFactoryPtr {
        EXPECT_TRUE(typed_config.Is<google::protobuf::BoolValue>());
        sides.push_back(context.side);
        return std::make_shared<RawBufferSocketFactory>();
      });
  auto config = Named("test.transport_sockets.recording");
  config.mutable_typed_config()->PackFrom(google::protobuf::BoolValue());
  EXPECT_NE(Build(config, TransportSocketSide::kUpstream), nullptr);
  EXPECT_NE(Build(config, TransportSocketSide::kDownstream), nullptr);
  EXPECT_EQ(sides, (std::vector<TransportSocketSide>{TransportSocketSide::kUpstream,
                                                     TransportSocketSide::kDownstream}));
}

}  // namespace
}  // namespace phoenix::network
