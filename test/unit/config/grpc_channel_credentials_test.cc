#include "source/config/grpc_channel_credentials.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "gtest/gtest.h"
#include "source/config/yaml_loader.h"

namespace phoenix::config {
namespace {

constexpr const char* kPath = "dynamic_resources.ads_config.grpc_services[0].google_grpc";

// The errors of `yaml`'s first grpc_services entry (file "boot.yaml"), one per line.
std::string ValidationErrors(const std::string& yaml) {
  v1::Bootstrap bootstrap;
  SourceMap map("boot.yaml");
  EXPECT_TRUE(LoadYamlString(yaml, &bootstrap, &map).ok());
  ConfigErrors errors(&map);
  ValidateChannelCredentials(
      bootstrap.dynamic_resources().ads_config().grpc_services(0).google_grpc(), kPath, errors);
  return std::string(errors.ToStatus().message());
}

std::string Bootstrap(const std::string& ssl_credentials) {
  return "dynamic_resources:\n"
         "  ads_config:\n"
         "    grpc_services:\n"
         "    - google_grpc:\n"
         "        target_uri: 127.0.0.1:18000\n"
         "        channel_credentials:\n"
         "          ssl_credentials:\n" +
         ssl_credentials;
}

TEST(ChannelCredentialsTest, AMissingFileNamesTheFieldWhereItIsWritten) {
  EXPECT_EQ(
      ValidationErrors(Bootstrap("            root_certs: {filename: /nonexistent/ca.crt}\n")),
      "boot.yaml:8:13: dynamic_resources.ads_config.grpc_services[0].google_grpc"
      ".channel_credentials.ssl_credentials.root_certs: cannot read /nonexistent/ca.crt");
}

TEST(ChannelCredentialsTest, AKeyNeedsItsChainAndPemIsChecked) {
  std::string pem = "-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----\\n";
  std::string key_only =
      ValidationErrors(Bootstrap("            private_key: {inline_string: \"" + pem + "\"}\n"));
  EXPECT_NE(key_only.find("ssl_credentials.cert_chain: a client certificate needs both "
                          "private_key and cert_chain"),
            std::string::npos)
      << key_only;
  std::string not_pem =
      ValidationErrors(Bootstrap("            root_certs: {inline_string: hello}\n"));
  EXPECT_NE(not_pem.find("ssl_credentials.root_certs: inline_string: no PEM block in it"),
            std::string::npos)
      << not_pem;
  EXPECT_EQ(
      ValidationErrors(Bootstrap("            root_certs: {inline_string: \"" + pem + "\"}\n")),
      "");
}

TEST(ChannelCredentialsTest, OnlySslCredentialsAreSupported) {
  EXPECT_EQ(ValidationErrors("dynamic_resources:\n"
                             "  ads_config:\n"
                             "    grpc_services:\n"
                             "    - google_grpc:\n"
                             "        target_uri: 127.0.0.1:18000\n"
                             "        channel_credentials: {}\n"),
            "boot.yaml:6:9: dynamic_resources.ads_config.grpc_services[0].google_grpc"
            ".channel_credentials: only ssl_credentials is supported");
}

TEST(ChannelCredentialsTest, MadeFromTheFilesAsTheyAreAtEachConnect) {
  v1::GrpcService::GoogleGrpc plaintext;
  plaintext.set_target_uri("127.0.0.1:1");
  EXPECT_TRUE(MakeChannelCredentials(plaintext).ok());

  std::string file = testing::TempDir() + "/ca-" + std::to_string(getpid()) + ".crt";
  v1::GrpcService::GoogleGrpc tls = plaintext;
  tls.mutable_channel_credentials()->mutable_ssl_credentials()->mutable_root_certs()->set_filename(
      file);
  auto missing = MakeChannelCredentials(tls);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "ssl_credentials.root_certs: cannot read " + file);
  std::ofstream(file) << "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  EXPECT_TRUE(MakeChannelCredentials(tls).ok());
  std::remove(file.c_str());
}

}  // namespace
}  // namespace phoenix::config
