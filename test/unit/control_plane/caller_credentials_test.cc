#include "source/control_plane/caller_credentials.h"

#include <map>
#include <string>
#include <vector>

#include "grpc/grpc_security_constants.h"
#include "grpcpp/security/auth_context.h"
#include "gtest/gtest.h"

namespace phoenix::control_plane {
namespace {

// An AuthContext holding the properties a test gives it, as gRPC's TLS would fill it.
class FakeAuthContext : public grpc::AuthContext {
 public:
  explicit FakeAuthContext(bool authenticated) : authenticated_(authenticated) {}

  bool IsPeerAuthenticated() const override { return authenticated_; }
  std::vector<grpc::string_ref> GetPeerIdentity() const override { return {}; }
  std::string GetPeerIdentityPropertyName() const override { return ""; }
  std::vector<grpc::string_ref> FindPropertyValues(const std::string& name) const override {
    std::vector<grpc::string_ref> values;
    auto [begin, end] = properties_.equal_range(name);
    for (auto it = begin; it != end; ++it) values.emplace_back(it->second);
    return values;
  }
  grpc::AuthPropertyIterator begin() const override { return NoProperties(); }
  grpc::AuthPropertyIterator end() const override { return NoProperties(); }
  void AddProperty(const std::string& key, const grpc::string_ref& value) override {
    properties_.emplace(key, std::string(value.data(), value.size()));
  }
  bool SetPeerIdentityPropertyName(const std::string&) override { return false; }

 private:
  struct NoProperties : grpc::AuthPropertyIterator {};

  bool authenticated_;
  std::multimap<std::string, std::string> properties_;
};

TEST(CertificatePrincipalTest, TheFirstUriSanGoesFirst) {
  FakeAuthContext auth(/*authenticated=*/true);
  auth.AddProperty(GRPC_X509_CN_PROPERTY_NAME, "web");
  auth.AddProperty(GRPC_PEER_DNS_PROPERTY_NAME, "web.default.svc");
  auth.AddProperty(GRPC_PEER_URI_PROPERTY_NAME, "spiffe://phoenix.local/ns/default/sa/web");
  auth.AddProperty(GRPC_PEER_URI_PROPERTY_NAME, "https://web.example");
  EXPECT_EQ(CertificatePrincipal(auth), "spiffe://phoenix.local/ns/default/sa/web");
}

TEST(CertificatePrincipalTest, ThenTheDnsSanThenTheCommonName) {
  FakeAuthContext dns(/*authenticated=*/true);
  dns.AddProperty(GRPC_X509_CN_PROPERTY_NAME, "web");
  dns.AddProperty(GRPC_PEER_DNS_PROPERTY_NAME, "web.default.svc");
  EXPECT_EQ(CertificatePrincipal(dns), "web.default.svc");
  FakeAuthContext cn(/*authenticated=*/true);
  cn.AddProperty(GRPC_X509_CN_PROPERTY_NAME, "web");
  EXPECT_EQ(CertificatePrincipal(cn), "web");
}

TEST(CertificatePrincipalTest, NothingWithoutAVerifiedPeer) {
  FakeAuthContext unverified(/*authenticated=*/false);
  unverified.AddProperty(GRPC_PEER_URI_PROPERTY_NAME, "spiffe://phoenix.local/ns/ops/sa/admin");
  EXPECT_EQ(CertificatePrincipal(unverified), "");
  EXPECT_EQ(CertificatePrincipal(FakeAuthContext(/*authenticated=*/true)), "");
}

}  // namespace
}  // namespace phoenix::control_plane
