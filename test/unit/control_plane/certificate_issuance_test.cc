#include "source/control_plane/certificate_issuance.h"

#include <stdlib.h>

#include <filesystem>

#include "gtest/gtest.h"
#include "source/tls/workload_certificates.h"

namespace phoenix::control_plane {
namespace {

using service::identity::v1::CreateCertificateRequest;

constexpr char kFrontend[] = "spiffe://phoenix.local/ns/shop/sa/frontend";
constexpr char kBackend[] = "spiffe://phoenix.local/ns/shop/sa/backend";

// CertificateIssuance on a real MeshCa (temp dir) with node tokens: who may get what, and
// that every outcome is audited.
class CertificateIssuanceTest : public testing::Test {
 protected:
  CertificateIssuanceTest() {
    char pattern[] = "/tmp/phoenix-issuance-test-XXXXXX";
    dir_ = mkdtemp(pattern);
    MeshCaOptions options;
    options.dir = dir_ + "/ca";
    options.generate = true;
    ca_ = *MeshCa::Open(options);
    auth_ = std::make_unique<Authenticator>(
        *TokenTable::Parse("tok-a node-a node:node-a\ntok-b node-b node:node-b\n", "tokens"));
    auto entitlements = IdentityEntitlements::Parse(
        std::string("node-a ") + kFrontend + "\nnode-b " + kBackend + "\n", "ids", "phoenix.local");
    issuance_ = std::make_unique<CertificateIssuance>(
        *ca_, auth_.get(), *std::move(entitlements), CertificateIssuance::Limits(),
        [this](const std::string& line) {
          audit_.push_back(line);
          return audit_status_;
        },
        [this](const std::string& node, time_t, const std::string&) {
          issued_to_.push_back(node);
        });
  }
  ~CertificateIssuanceTest() override { std::filesystem::remove_all(dir_); }

  // A request for `identity` from `node`, with a fresh key (kept in key_pem_).
  CreateCertificateRequest Request(const std::string& node, const std::string& identity) {
    auto made = tls::MakeKeyAndCsr(identity);
    EXPECT_TRUE(made.ok());
    key_pem_ = made->key_pem;
    CreateCertificateRequest request;
    request.set_csr(made->csr_pem);
    request.set_node_id(node);
    return request;
  }
  static CallerCredentials Token(const std::string& token) {
    return CallerCredentials{"Bearer " + token, ""};
  }

  std::string dir_;
  std::unique_ptr<MeshCa> ca_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<CertificateIssuance> issuance_;
  std::vector<std::string> audit_;
  absl::Status audit_status_;
  std::vector<std::string> issued_to_;
  std::string key_pem_;
};

TEST_F(CertificateIssuanceTest, ANodeGetsItsOwnIdentityWithItsToken) {
  auto issued = issuance_->Create(Request("node-a", ""), Token("tok-a"));
  ASSERT_TRUE(issued.ok()) << issued.status();
  EXPECT_EQ(issued->spiffe_id(), kFrontend);
  EXPECT_NE(issued->trust_bundle().find("BEGIN CERTIFICATE"), std::string::npos);
  EXPECT_GT(issued->not_after_unix(), time(nullptr) + 23 * 3600);
  ASSERT_EQ(audit_.size(), 1u);
  EXPECT_NE(audit_[0].find("\"issued\""), std::string::npos);
  EXPECT_NE(audit_[0].find(issued->serial()), std::string::npos);
  EXPECT_EQ(issued_to_, std::vector<std::string>{"node-a"});
}

TEST_F(CertificateIssuanceTest, AnotherNodesIdentityOrNodeIdIsRefusedAndAudited) {
  auto identity = issuance_->Create(Request("node-a", kBackend), Token("tok-a"));
  EXPECT_EQ(identity.status().code(), absl::StatusCode::kPermissionDenied);
  auto node = issuance_->Create(Request("node-b", ""), Token("tok-a"));
  EXPECT_EQ(node.status().code(), absl::StatusCode::kPermissionDenied);
  auto nobody = issuance_->Create(Request("node-a", ""), Token("forged"));
  EXPECT_EQ(nobody.status().code(), absl::StatusCode::kUnauthenticated);
  ASSERT_EQ(audit_.size(), 3u);
  for (const std::string& line : audit_) EXPECT_NE(line.find("\"refused\""), std::string::npos);
  EXPECT_NE(audit_[0].find(kBackend), std::string::npos);
  EXPECT_TRUE(issued_to_.empty());
}

TEST_F(CertificateIssuanceTest, ARenewalPresentsTheCertificateInHand) {
  auto first = issuance_->Create(Request("node-a", ""), Token("tok-a"));
  ASSERT_TRUE(first.ok()) << first.status();
  std::string old_key = key_pem_;
  CreateCertificateRequest renewal = Request("node-a", kFrontend);
  renewal.set_presented_certificate_chain(first->certificate_chain());
  renewal.set_proof(*tls::SignWithKey(old_key, renewal.csr()));
  auto renewed = issuance_->Create(renewal, CallerCredentials{});  // No token at all.
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_NE(renewed->serial(), first->serial());
  EXPECT_NE(audit_.back().find("(certificate " + first->serial() + ")"), std::string::npos);
  // A proof by another key, or the certificate used for another node, is refused.
  CreateCertificateRequest stolen = Request("node-a", kFrontend);
  stolen.set_presented_certificate_chain(first->certificate_chain());
  stolen.set_proof(*tls::SignWithKey(key_pem_, stolen.csr()));
  EXPECT_EQ(issuance_->Create(stolen, {}).status().code(), absl::StatusCode::kUnauthenticated);
  CreateCertificateRequest elsewhere = Request("node-b", kBackend);
  elsewhere.set_presented_certificate_chain(first->certificate_chain());
  elsewhere.set_proof(*tls::SignWithKey(old_key, elsewhere.csr()));
  EXPECT_EQ(issuance_->Create(elsewhere, {}).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(CertificateIssuanceTest, NothingIsHandedOutThatTheAuditDoesNotShow) {
  audit_status_ = absl::UnavailableError("disk full");
  auto issued = issuance_->Create(Request("node-a", ""), Token("tok-a"));
  EXPECT_EQ(issued.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(issued_to_.empty());
}

TEST_F(CertificateIssuanceTest, ValidityIsKeptBetweenTheLimits) {
  CreateCertificateRequest request = Request("node-a", "");
  request.mutable_validity()->set_seconds(30 * 24 * 3600);
  auto issued = issuance_->Create(request, Token("tok-a"));
  ASSERT_TRUE(issued.ok()) << issued.status();
  EXPECT_LE(issued->not_after_unix(), time(nullptr) + 24 * 3600);
  request.mutable_validity()->set_seconds(1);
  issued = issuance_->Create(request, Token("tok-a"));
  ASSERT_TRUE(issued.ok()) << issued.status();
  EXPECT_GE(issued->not_after_unix(), time(nullptr) + 9);
}

}  // namespace
}  // namespace phoenix::control_plane
