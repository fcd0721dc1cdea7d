#include "source/tls/workload_certificates.h"

#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <string>

#include "gtest/gtest.h"
#include "source/tls/certificate.h"

namespace phoenix::tls {
namespace {

using std::chrono::hours;
using std::chrono::seconds;

constexpr char kWeb[] = "spiffe://phoenix.local/ns/default/sa/web";

X509Ptr FirstCert(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509Ptr cert(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  return cert;
}

// A root and an intermediate under it, made once per test.
class WorkloadCertificatesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto root = GenerateRootCa("phoenix.local", "root", hours(24 * 365));
    ASSERT_TRUE(root.ok()) << root.status();
    root_ = *root;
    auto intermediate =
        GenerateIntermediateCa(root_, "phoenix.local", "intermediate", hours(24 * 30));
    ASSERT_TRUE(intermediate.ok()) << intermediate.status();
    intermediate_ = *intermediate;
    auto signer = CertificateSigner::Create(intermediate_, root_.cert_pem);
    ASSERT_TRUE(signer.ok()) << signer.status();
    signer_ = std::make_unique<CertificateSigner>(*std::move(signer));
  }

  // A key, and a certificate for it issued at `now`.
  struct Workload {
    KeyAndCsr key;
    IssuedCertificate cert;
  };
  Workload IssueFor(const std::string& spiffe_id, seconds validity, time_t now) {
    Workload workload;
    auto key = MakeKeyAndCsr(spiffe_id);
    EXPECT_TRUE(key.ok()) << key.status();
    workload.key = *key;
    auto cert = signer_->Issue(key->csr_pem, spiffe_id, "node-1", validity, now);
    EXPECT_TRUE(cert.ok()) << cert.status();
    if (cert.ok()) workload.cert = *cert;
    return workload;
  }

  CaMaterial root_, intermediate_;
  std::unique_ptr<CertificateSigner> signer_;
};

TEST_F(WorkloadCertificatesTest, RootAndIntermediateAreMeshCas) {
  X509Ptr root = FirstCert(root_.cert_pem);
  X509Ptr intermediate = FirstCert(intermediate_.cert_pem);
  ASSERT_NE(root, nullptr);
  ASSERT_NE(intermediate, nullptr);
  EXPECT_EQ(X509_check_ca(root.get()), 1);
  EXPECT_EQ(X509_check_ca(intermediate.get()), 1);
  EXPECT_EQ(X509_get_pathlen(intermediate.get()), 0);
  EXPECT_EQ(X509_get_pathlen(root.get()), -1);
  EXPECT_EQ(X509_get_key_usage(intermediate.get()), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
  EXPECT_NE(X509_get0_subject_key_id(intermediate.get()), nullptr);
  EXPECT_NE(X509_get0_authority_key_id(intermediate.get()), nullptr);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(intermediate.get()),
                                  X509_get0_subject_key_id(root.get())),
            0);
  CertificateInfo info = DescribeCertificate(root.get(), "");
  EXPECT_EQ(info.subject, "CN=root,O=phoenix mesh");
  EXPECT_EQ(info.key_type, "ECDSA P-256");
  ASSERT_EQ(info.subject_alt_names.size(), 1u);
  EXPECT_EQ(info.subject_alt_names[0], "URI:spiffe://phoenix.local");
  EXPECT_EQ(root_.key_pem.rfind("-----BEGIN PRIVATE KEY-----", 0), 0u);  // PKCS#8
  EXPECT_LE(signer_->not_after(), CertificateNotAfter(root_.cert_pem));
  EXPECT_EQ(signer_->intermediate_pem(), intermediate_.cert_pem);
}

TEST_F(WorkloadCertificatesTest, IssueThenVerifyRoundTrip) {
  time_t now = time(nullptr);
  Workload web = IssueFor(kWeb, hours(24), now);
  ASSERT_FALSE(web.cert.chain_pem.empty());
  EXPECT_EQ(web.cert.spiffe_id, kWeb);
  EXPECT_EQ(web.cert.not_before, now - 60);
  EXPECT_EQ(web.cert.not_after, now + 24 * 3600);
  EXPECT_EQ(CertificateNotAfter(web.cert.chain_pem), web.cert.not_after);
  std::vector<std::string> serials = CertificateSerials(web.cert.chain_pem);
  ASSERT_EQ(serials.size(), 2u);  // Leaf, intermediate.
  EXPECT_EQ(serials[0], web.cert.serial);
  EXPECT_EQ(serials[1], CertificateSerials(intermediate_.cert_pem)[0]);
  EXPECT_GE(web.cert.serial.size(), 24u);  // 128 random bits: rarely fewer than 24 hex digits.

  X509Ptr leaf = FirstCert(web.cert.chain_pem);
  CertificateInfo info = DescribeCertificate(leaf.get(), "");
  EXPECT_EQ(info.subject, "CN=node-1,O=phoenix mesh");
  ASSERT_EQ(info.subject_alt_names.size(), 1u);
  EXPECT_EQ(info.subject_alt_names[0], std::string("URI:") + kWeb);
  EXPECT_EQ(X509_check_ca(leaf.get()), 0);
  EXPECT_EQ(X509_get_extended_key_usage(leaf.get()), XKU_SSL_SERVER | XKU_SSL_CLIENT);
  EXPECT_NE(X509_get_key_usage(leaf.get()) & KU_DIGITAL_SIGNATURE, 0u);
  EXPECT_NE(X509_get0_authority_key_id(leaf.get()), nullptr);

  auto proof = SignWithKey(web.key.key_pem, "nonce-123");
  ASSERT_TRUE(proof.ok()) << proof.status();
  auto identity =
      VerifyPresentedCertificate(web.cert.chain_pem, root_.cert_pem, "nonce-123", *proof, now);
  ASSERT_TRUE(identity.ok()) << identity.status();
  EXPECT_EQ(identity->spiffe_id, kWeb);
  EXPECT_EQ(identity->node_id, "node-1");
  EXPECT_EQ(identity->serial, web.cert.serial);
  EXPECT_EQ(identity->not_after, web.cert.not_after);
}

TEST_F(WorkloadCertificatesTest, TheSpiffeIdIssuedIsTheArgumentNotWhatTheCsrAsked) {
  auto key = MakeKeyAndCsr("spiffe://phoenix.local/ns/ops/sa/admin");
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(*CsrSpiffeId(key->csr_pem), "spiffe://phoenix.local/ns/ops/sa/admin");
  auto cert = signer_->Issue(key->csr_pem, kWeb, "n", hours(1), time(nullptr));
  ASSERT_TRUE(cert.ok()) << cert.status();
  X509Ptr leaf = FirstCert(cert->chain_pem);
  CertificateInfo info = DescribeCertificate(leaf.get(), "");
  ASSERT_EQ(info.subject_alt_names.size(), 1u);
  EXPECT_EQ(info.subject_alt_names[0], std::string("URI:") + kWeb);
}

TEST_F(WorkloadCertificatesTest, NeverIssuedPastTheIntermediatesNotAfter) {
  time_t now = time(nullptr);
  Workload web = IssueFor(kWeb, hours(24 * 400), now);
  EXPECT_EQ(web.cert.not_after, signer_->not_after());
  // Once the intermediate has expired there is nothing to issue.
  auto key = MakeKeyAndCsr(kWeb);
  auto late = signer_->Issue(key->csr_pem, kWeb, "n", hours(1), signer_->not_after() + 1);
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(WorkloadCertificatesTest, CsrsAreChecked) {
  auto key = MakeKeyAndCsr(kWeb);
  ASSERT_TRUE(key.ok());
  // Flip one byte of the signature (the end of the DER, just before the PEM footer).
  std::string bad = key->csr_pem;
  size_t footer = bad.find("-----END");
  ASSERT_NE(footer, std::string::npos);
  size_t at = footer - 6;  // In the base64 body, not the padding.
  bad[at] = bad[at] == 'A' ? 'B' : 'A';
  EXPECT_EQ(CsrSpiffeId(bad).status().code(), absl::StatusCode::kInvalidArgument);
  auto refused = signer_->Issue(bad, kWeb, "n", hours(1), time(nullptr));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CsrSpiffeId("not a csr").status().code(), absl::StatusCode::kInvalidArgument);

  auto anonymous = MakeKeyAndCsr("");
  ASSERT_TRUE(anonymous.ok());
  EXPECT_EQ(*CsrSpiffeId(anonymous->csr_pem), "");
  // No error names any key material.
  EXPECT_EQ(std::string(SignWithKey("garbage", "x").status().message()).find("garbage"),
            std::string::npos);
}

// A CSR for `key`, asking for kWeb.
std::string CsrFor(EVP_PKEY* key) {
  X509_REQ* req = X509_REQ_new();
  X509_REQ_set_pubkey(req, key);
  X509_REQ_sign(req, key, EVP_sha256());
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509_REQ(bio, req);
  char* data = nullptr;
  long length = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(length));
  BIO_free(bio);
  X509_REQ_free(req);
  return pem;
}

TEST_F(WorkloadCertificatesTest, WeakKeysAreRefused) {
  EvpPkeyPtr rsa1024(EVP_RSA_gen(1024));
  EXPECT_EQ(CsrSpiffeId(CsrFor(rsa1024.get())).status().code(), absl::StatusCode::kInvalidArgument);
  EvpPkeyPtr p384(EVP_EC_gen("P-384"));
  EXPECT_EQ(CsrSpiffeId(CsrFor(p384.get())).status().code(), absl::StatusCode::kInvalidArgument);
  EvpPkeyPtr rsa2048(EVP_RSA_gen(2048));
  std::string csr = CsrFor(rsa2048.get());
  EXPECT_EQ(*CsrSpiffeId(csr), "");
  auto cert = signer_->Issue(csr, kWeb, "n", hours(1), time(nullptr));
  EXPECT_TRUE(cert.ok()) << cert.status();
}

// Found by the workload_csr fuzzer: a P-256 key spelled out with explicit curve parameters
// passed the CSR check (its group still reads "prime256v1"), then Issue signed a certificate and
// refused it (INTERNAL: "Certificate public key has explicit ECC parameters").
TEST_F(WorkloadCertificatesTest, ExplicitCurveParametersAreRefused) {
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  ASSERT_NE(ctx, nullptr);
  ASSERT_EQ(EVP_PKEY_keygen_init(ctx), 1);
  ASSERT_GT(EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx, NID_X9_62_prime256v1), 0);
  ASSERT_GT(EVP_PKEY_CTX_set_ec_param_enc(ctx, OPENSSL_EC_EXPLICIT_CURVE), 0);
  EVP_PKEY* generated = nullptr;
  ASSERT_EQ(EVP_PKEY_keygen(ctx, &generated), 1);
  EVP_PKEY_CTX_free(ctx);
  EvpPkeyPtr key(generated);
  std::string csr = CsrFor(key.get());
  ASSERT_NE(csr.find("BEGIN CERTIFICATE REQUEST"), std::string::npos);

  auto asked = CsrSpiffeId(csr);
  EXPECT_EQ(asked.status().code(), absl::StatusCode::kInvalidArgument) << asked.status();
  auto refused = signer_->Issue(csr, kWeb, "n", hours(1), time(nullptr));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
  // The same curve by name is a workload key.
  EvpPkeyPtr named(EVP_EC_gen("P-256"));
  EXPECT_TRUE(signer_->Issue(CsrFor(named.get()), kWeb, "n", hours(1), time(nullptr)).ok());
}

TEST_F(WorkloadCertificatesTest, VerifyRefusesExpiredCertificates) {
  time_t now = time(nullptr);
  Workload web = IssueFor(kWeb, hours(1), now);
  auto proof = SignWithKey(web.key.key_pem, "d");
  auto later =
      VerifyPresentedCertificate(web.cert.chain_pem, root_.cert_pem, "d", *proof, now + 2 * 3600);
  EXPECT_EQ(later.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(later.status().message(), "certificate expired");
  auto early =
      VerifyPresentedCertificate(web.cert.chain_pem, root_.cert_pem, "d", *proof, now - 3600);
  EXPECT_EQ(early.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(early.status().message(), "certificate not yet valid");
}

TEST_F(WorkloadCertificatesTest, VerifyRefusesAnotherRoot) {
  time_t now = time(nullptr);
  Workload web = IssueFor(kWeb, hours(1), now);
  auto proof = SignWithKey(web.key.key_pem, "d");
  auto other = GenerateRootCa("phoenix.local", "root", hours(24));
  ASSERT_TRUE(other.ok());
  auto refused = VerifyPresentedCertificate(web.cert.chain_pem, other->cert_pem, "d", *proof, now);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(
      std::string(refused.status().message()).rfind("certificate not signed by the mesh CA", 0), 0u)
      << refused.status();
  // A bundle with both roots accepts it (a rotation).
  EXPECT_TRUE(VerifyPresentedCertificate(web.cert.chain_pem, other->cert_pem + root_.cert_pem, "d",
                                         *proof, now)
                  .ok());
}

TEST_F(WorkloadCertificatesTest, VerifyRefusesAWrongProof) {
  time_t now = time(nullptr);
  Workload web = IssueFor(kWeb, hours(1), now);
  Workload other = IssueFor(kWeb, hours(1), now);
  auto proof = SignWithKey(web.key.key_pem, "nonce-1");
  auto wrong_data =
      VerifyPresentedCertificate(web.cert.chain_pem, root_.cert_pem, "nonce-2", *proof, now);
  EXPECT_EQ(wrong_data.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(wrong_data.status().message(), "proof of key does not verify");
  auto wrong_key =
      VerifyPresentedCertificate(other.cert.chain_pem, root_.cert_pem, "nonce-1", *proof, now);
  EXPECT_EQ(wrong_key.status().message(), "proof of key does not verify");
  EXPECT_EQ(VerifyPresentedCertificate(web.cert.chain_pem, root_.cert_pem, "nonce-1", "", now)
                .status()
                .message(),
            "proof of key does not verify");
}

TEST_F(WorkloadCertificatesTest, VerifyNeedsTheIntermediate) {
  time_t now = time(nullptr);
  Workload web = IssueFor(kWeb, hours(1), now);
  auto proof = SignWithKey(web.key.key_pem, "d");
  std::string leaf_only = web.cert.chain_pem.substr(0, web.cert.chain_pem.find("-----END") + 26);
  ASSERT_EQ(CertificateSerials(leaf_only).size(), 1u);
  auto refused = VerifyPresentedCertificate(leaf_only, root_.cert_pem, "d", *proof, now);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(VerifyPresentedCertificate("", root_.cert_pem, "d", *proof, now).status().message(),
            "no certificate presented");
}

TEST_F(WorkloadCertificatesTest, TheIntermediateItselfIsNoWorkloadIdentity) {
  time_t now = time(nullptr);
  auto proof = SignWithKey(intermediate_.key_pem, "d");
  ASSERT_TRUE(proof.ok());
  auto refused =
      VerifyPresentedCertificate(intermediate_.cert_pem, root_.cert_pem, "d", *proof, now);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(WorkloadCertificatesTest, SignerChecksItsIntermediate) {
  auto other = GenerateRootCa("phoenix.local", "other", hours(24));
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(CertificateSigner::Create(intermediate_, other->cert_pem).ok());
  CaMaterial mismatched{intermediate_.cert_pem, other->key_pem};
  EXPECT_FALSE(CertificateSigner::Create(mismatched, root_.cert_pem).ok());
  auto web = MakeKeyAndCsr(kWeb);
  auto leaf = signer_->Issue(web->csr_pem, kWeb, "n", hours(1), time(nullptr));
  ASSERT_TRUE(leaf.ok());
  CaMaterial not_a_ca{leaf->chain_pem, web->key_pem};
  EXPECT_FALSE(CertificateSigner::Create(not_a_ca, root_.cert_pem).ok());
  // Copies share one state.
  CertificateSigner copy = *signer_;
  EXPECT_EQ(copy.not_after(), signer_->not_after());
}

TEST_F(WorkloadCertificatesTest, SignWithKeyVerifiesWithTheCertificatesKey) {
  auto key = MakeKeyAndCsr(kWeb);
  auto a = SignWithKey(key->key_pem, "data");
  auto b = SignWithKey(key->key_pem, "data");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_NE(*a, *b);  // ECDSA signatures are randomized.
  auto cert = signer_->Issue(key->csr_pem, kWeb, "n", hours(1), time(nullptr));
  for (const std::string& proof : {*a, *b}) {
    EXPECT_TRUE(
        VerifyPresentedCertificate(cert->chain_pem, root_.cert_pem, "data", proof, time(nullptr))
            .ok());
  }
}

TEST_F(WorkloadCertificatesTest, AnIntermediateIsSignedFromACsrWhoseKeyStaysWithItsMaker) {
  auto key = MakeKeyAndCsr("spiffe://phoenix.local");
  ASSERT_TRUE(key.ok()) << key.status();
  auto cert = SignIntermediateCsr(root_, key->csr_pem, "phoenix.local", "replica b", hours(24));
  ASSERT_TRUE(cert.ok()) << cert.status();
  // A CA under the root for the CSR's key: it signs workload certificates.
  auto signer = CertificateSigner::Create(CaMaterial{*cert, key->key_pem}, root_.cert_pem);
  ASSERT_TRUE(signer.ok()) << signer.status();
  auto workload = MakeKeyAndCsr(kWeb);
  ASSERT_TRUE(workload.ok());
  EXPECT_TRUE(signer->Issue(workload->csr_pem, kWeb, "node-1", hours(1), time(nullptr)).ok());
  // Not with another key, and not from a CSR that does not parse.
  EXPECT_FALSE(
      CertificateSigner::Create(CaMaterial{*cert, intermediate_.key_pem}, root_.cert_pem).ok());
  EXPECT_EQ(
      SignIntermediateCsr(root_, "not a csr", "phoenix.local", "b", hours(24)).status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(CertificateHelpersTest, NothingParses) {
  EXPECT_EQ(CertificateNotAfter("nope"), 0);
  EXPECT_TRUE(CertificateSerials("nope").empty());
}

TEST(WorkloadCertificatesNameTest, ANodeIdThatMakesNoSubjectIsRefused) {
  auto root = GenerateRootCa("phoenix.local", "root", std::chrono::hours(24));
  ASSERT_TRUE(root.ok());
  auto intermediate =
      GenerateIntermediateCa(*root, "phoenix.local", "intermediate", std::chrono::hours(24));
  ASSERT_TRUE(intermediate.ok());
  auto signer = CertificateSigner::Create(*intermediate, root->cert_pem);
  ASSERT_TRUE(signer.ok()) << signer.status();
  auto key = MakeKeyAndCsr("spiffe://phoenix.local/ns/a/sa/b");
  ASSERT_TRUE(key.ok());
  time_t now = time(nullptr);
  for (const std::string& node : {std::string(65, 'n'), std::string(""), std::string("\xff\xfe")}) {
    auto issued = signer->Issue(key->csr_pem, "spiffe://phoenix.local/ns/a/sa/b", node,
                                std::chrono::hours(1), now);
    EXPECT_EQ(issued.status().code(), absl::StatusCode::kInvalidArgument) << node.size();
  }
  EXPECT_TRUE(signer
                  ->Issue(key->csr_pem, "spiffe://phoenix.local/ns/a/sa/b", std::string(64, 'n'),
                          std::chrono::hours(1), now)
                  .ok());
}

}  // namespace
}  // namespace phoenix::tls
