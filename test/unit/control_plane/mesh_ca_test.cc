#include "source/control_plane/mesh_ca.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "gtest/gtest.h"

namespace phoenix::control_plane {
namespace {

namespace fs = std::filesystem;
using std::chrono::hours;

constexpr char kWeb[] = "spiffe://phoenix.local/ns/default/sa/web";

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

mode_t Mode(const std::string& path) {
  struct stat st = {};
  stat(path.c_str(), &st);
  return st.st_mode & 0777;
}

class MeshCaTest : public testing::Test {
 protected:
  MeshCaTest() {
    char pattern[] = "/tmp/phoenix-mesh-ca-test-XXXXXX";
    parent_ = mkdtemp(pattern);
    options_.dir = parent_ + "/ca";
    options_.generate = true;
  }
  ~MeshCaTest() override { fs::remove_all(parent_); }

  std::unique_ptr<MeshCa> OpenCa(const MeshCaOptions& options) {
    auto ca = MeshCa::Open(options);
    EXPECT_TRUE(ca.ok()) << ca.status();
    return ca.ok() ? *std::move(ca) : nullptr;
  }

  // A certificate for kWeb from `ca`, and a proof of its key.
  struct Issued {
    tls::IssuedCertificate cert;
    std::string proof;
  };
  Issued IssueFrom(MeshCa& ca) {
    Issued issued;
    auto key = tls::MakeKeyAndCsr(kWeb);
    EXPECT_TRUE(key.ok());
    auto cert = ca.Issue(key->csr_pem, kWeb, "node-1", hours(1));
    EXPECT_TRUE(cert.ok()) << cert.status();
    if (!cert.ok()) return issued;
    issued.cert = *cert;
    issued.proof = *tls::SignWithKey(key->key_pem, "nonce");
    return issued;
  }
  bool VerifiesAgainst(const Issued& issued, const std::string& roots) {
    return tls::VerifyPresentedCertificate(issued.cert.chain_pem, roots, "nonce", issued.proof,
                                           time(nullptr))
        .ok();
  }

  std::string parent_;
  MeshCaOptions options_;
};

TEST_F(MeshCaTest, GeneratesOnFirstStartAndKeepsItsFilesAfter) {
  auto ca = OpenCa(options_);
  ASSERT_NE(ca, nullptr);
  const std::string& dir = options_.dir;
  for (const char* name :
       {"root.crt", "root.key", "intermediate-default.crt", "intermediate-default.key"}) {
    EXPECT_TRUE(fs::exists(dir + "/" + name)) << name;
  }
  EXPECT_EQ(Mode(dir), 0700u);
  EXPECT_EQ(Mode(dir + "/root.key"), 0600u);
  EXPECT_EQ(Mode(dir + "/intermediate-default.key"), 0600u);
  EXPECT_EQ(ca->TrustBundle(), Read(dir + "/root.crt"));
  EXPECT_EQ(ca->rotation().phase, MeshCa::RotationPhase::kNone);

  std::string root = Read(dir + "/root.crt");
  std::string intermediate = Read(dir + "/intermediate-default.crt");
  ca.reset();
  options_.generate = false;  // Nothing to generate any more.
  auto reopened = OpenCa(options_);
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(Read(dir + "/root.crt"), root);
  EXPECT_EQ(Read(dir + "/intermediate-default.crt"), intermediate);
  Issued issued = IssueFrom(*reopened);
  EXPECT_NE(issued.cert.chain_pem.find(intermediate), std::string::npos);
}

TEST_F(MeshCaTest, WithoutARootOrGenerateItSaysHowToMakeOne) {
  options_.generate = false;
  auto ca = MeshCa::Open(options_);
  ASSERT_FALSE(ca.ok());
  EXPECT_EQ(ca.status().message(), "phoenix-cp: no mesh CA root in " + options_.dir +
                                       ": give root.crt and root.key, or start with --ca-generate");
}

TEST_F(MeshCaTest, IssueThenVerifyRoundTrip) {
  auto ca = OpenCa(options_);
  ASSERT_NE(ca, nullptr);
  Issued issued = IssueFrom(*ca);
  auto identity = ca->Verify(issued.cert.chain_pem, "nonce", issued.proof);
  ASSERT_TRUE(identity.ok()) << identity.status();
  EXPECT_EQ(identity->spiffe_id, kWeb);
  EXPECT_EQ(identity->node_id, "node-1");
  EXPECT_EQ(identity->serial, issued.cert.serial);
  EXPECT_EQ(ca->Verify(issued.cert.chain_pem, "other nonce", issued.proof).status().code(),
            absl::StatusCode::kUnauthenticated);
  auto key_elsewhere = tls::MakeKeyAndCsr("spiffe://elsewhere/ns/default/sa/web");
  EXPECT_EQ(ca->Issue(key_elsewhere->csr_pem, "spiffe://elsewhere/ns/default/sa/web", "n", hours(1))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  // Validity is cut to max_validity.
  auto key = tls::MakeKeyAndCsr(kWeb);
  auto long_lived = ca->Issue(key->csr_pem, kWeb, "n", hours(24 * 30));
  ASSERT_TRUE(long_lived.ok());
  EXPECT_LE(long_lived->not_after, time(nullptr) + 24 * 3600);
}

TEST_F(MeshCaTest, ARunningCaRenewsItsIntermediateBeforeItEnds) {
  options_.intermediate_validity = std::chrono::seconds(4);  // Renewed in its last 2 s.
  auto ca = OpenCa(options_);
  ASSERT_NE(ca, nullptr);
  std::string path = options_.dir + "/intermediate-" + options_.replica + ".crt";
  std::string first = Read(path);
  ASSERT_TRUE(ca->RenewIntermediatesIfDue(time(nullptr)).ok());
  EXPECT_EQ(Read(path), first);  // Not due yet.
  ASSERT_TRUE(ca->RenewIntermediatesIfDue(time(nullptr) + 3).ok());
  EXPECT_NE(Read(path), first);
  // It signs with the new one.
  Issued issued = IssueFrom(*ca);
  EXPECT_NE(issued.cert.chain_pem.find(Read(path)), std::string::npos);
}

TEST_F(MeshCaTest, ReplicasHaveTheirOwnIntermediatesUnderOneRoot) {
  MeshCaOptions a = options_, b = options_;
  a.replica = "a";
  b.replica = "b";
  auto ca_a = OpenCa(a);
  auto ca_b = OpenCa(b);
  ASSERT_NE(ca_a, nullptr);
  ASSERT_NE(ca_b, nullptr);
  EXPECT_EQ(ca_a->TrustBundle(), ca_b->TrustBundle());
  std::string intermediate_a = Read(options_.dir + "/intermediate-a.crt");
  std::string intermediate_b = Read(options_.dir + "/intermediate-b.crt");
  ASSERT_FALSE(intermediate_a.empty());
  EXPECT_NE(intermediate_a, intermediate_b);
  Issued from_a = IssueFrom(*ca_a);
  Issued from_b = IssueFrom(*ca_b);
  EXPECT_NE(from_a.cert.chain_pem.find(intermediate_a), std::string::npos);
  EXPECT_NE(from_b.cert.chain_pem.find(intermediate_b), std::string::npos);
  EXPECT_TRUE(VerifiesAgainst(from_a, ca_b->TrustBundle()));
  EXPECT_TRUE(ca_a->Verify(from_b.cert.chain_pem, "nonce", from_b.proof).ok());
}

TEST_F(MeshCaTest, AnIntermediateThatDoesNotChainIsReplaced) {
  auto ca = OpenCa(options_);
  ca.reset();
  auto other = tls::GenerateRootCa("phoenix.local", "other", hours(24));
  auto stray = tls::GenerateIntermediateCa(*other, "phoenix.local", "stray", hours(24));
  std::ofstream(options_.dir + "/intermediate-default.crt") << stray->cert_pem;
  std::ofstream(options_.dir + "/intermediate-default.key") << stray->key_pem;
  auto reopened = OpenCa(options_);
  ASSERT_NE(reopened, nullptr);
  EXPECT_NE(Read(options_.dir + "/intermediate-default.crt"), stray->cert_pem);
  EXPECT_TRUE(VerifiesAgainst(IssueFrom(*reopened), reopened->TrustBundle()));
}

TEST_F(MeshCaTest, AnOperatorsIntermediateIsUsedWithoutTheRootKey) {
  auto root = tls::GenerateRootCa("phoenix.local", "corp root", hours(24 * 365));
  auto intermediate =
      tls::GenerateIntermediateCa(*root, "phoenix.local", "corp intermediate", hours(24 * 90));
  fs::create_directories(options_.dir);
  std::ofstream(options_.dir + "/root.crt") << root->cert_pem;
  std::ofstream(options_.dir + "/intermediate.crt") << intermediate->cert_pem;
  std::ofstream(options_.dir + "/intermediate.key") << intermediate->key_pem;
  options_.generate = false;
  auto ca = OpenCa(options_);
  ASSERT_NE(ca, nullptr);
  Issued issued = IssueFrom(*ca);
  EXPECT_NE(issued.cert.chain_pem.find(intermediate->cert_pem), std::string::npos);
  EXPECT_TRUE(VerifiesAgainst(issued, root->cert_pem));
  EXPECT_FALSE(fs::exists(options_.dir + "/root.key"));
  EXPECT_EQ(ca->StartRotation().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(MeshCaTest, RotationFullCycle) {
  auto ca = OpenCa(options_);
  ASSERT_NE(ca, nullptr);
  std::string old_root = ca->TrustBundle();
  Issued before = IssueFrom(*ca);

  ASSERT_TRUE(ca->StartRotation().ok());
  EXPECT_EQ(ca->StartRotation().code(), absl::StatusCode::kFailedPrecondition);
  MeshCa::RotationStatus status = ca->rotation();
  EXPECT_EQ(status.phase, MeshCa::RotationPhase::kAddingRoot);
  EXPECT_EQ(status.old_root_serial, tls::CertificateSerials(old_root)[0]);
  std::vector<std::string> bundle = tls::CertificateSerials(ca->TrustBundle());
  ASSERT_EQ(bundle.size(), 2u);
  EXPECT_EQ(bundle[1], status.new_root_serial);
  std::string new_root = Read(options_.dir + "/next/root.crt");
  // Still issuing under the old root.
  Issued adding = IssueFrom(*ca);
  EXPECT_TRUE(VerifiesAgainst(adding, old_root));

  EXPECT_FALSE(ca->AdvanceRotation(false, time(nullptr)));
  EXPECT_EQ(ca->rotation().phase, MeshCa::RotationPhase::kAddingRoot);
  EXPECT_TRUE(ca->AdvanceRotation(true, time(nullptr)));
  status = ca->rotation();
  EXPECT_EQ(status.phase, MeshCa::RotationPhase::kIssuingFromNew);
  // This process made the old root, so it knows the last certificate under it.
  EXPECT_EQ(status.old_certificates_expire, adding.cert.not_after);
  Issued after = IssueFrom(*ca);
  EXPECT_TRUE(VerifiesAgainst(after, new_root));
  EXPECT_FALSE(VerifiesAgainst(after, old_root));
  EXPECT_TRUE(ca->Verify(before.cert.chain_pem, "nonce", before.proof).ok());
  EXPECT_TRUE(ca->Verify(after.cert.chain_pem, "nonce", after.proof).ok());

  // Not yet past, with the margin for peers whose clocks run behind (60 s here).
  EXPECT_FALSE(ca->AdvanceRotation(true, status.old_certificates_expire + 60));
  EXPECT_TRUE(ca->AdvanceRotation(true, status.old_certificates_expire + 61));
  EXPECT_EQ(ca->rotation().phase, MeshCa::RotationPhase::kNone);
  EXPECT_EQ(ca->TrustBundle(), new_root);
  EXPECT_EQ(Read(options_.dir + "/root.crt"), new_root);
  std::string retired = options_.dir + "/retired/" + status.old_root_serial;
  EXPECT_EQ(Read(retired + ".crt"), old_root);
  EXPECT_TRUE(fs::exists(retired + ".key"));
  EXPECT_EQ(Mode(retired + ".key"), 0600u);
  EXPECT_FALSE(fs::exists(options_.dir + "/next"));
  EXPECT_FALSE(fs::exists(options_.dir + "/rotation"));
  EXPECT_FALSE(ca->AdvanceRotation(true, time(nullptr)));

  // A restart finds the new root alone, and its intermediate.
  ca.reset();
  auto reopened = OpenCa(options_);
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->TrustBundle(), new_root);
  EXPECT_TRUE(VerifiesAgainst(IssueFrom(*reopened), new_root));
}

TEST_F(MeshCaTest, ARestartResumesTheRotation) {
  auto ca = OpenCa(options_);
  ASSERT_NE(ca, nullptr);
  std::string old_root = ca->TrustBundle();
  ASSERT_TRUE(ca->StartRotation().ok());
  std::string bundle = ca->TrustBundle();
  std::string new_root = Read(options_.dir + "/next/root.crt");
  ca.reset();

  auto adding = OpenCa(options_);
  ASSERT_NE(adding, nullptr);
  EXPECT_EQ(adding->rotation().phase, MeshCa::RotationPhase::kAddingRoot);
  EXPECT_EQ(adding->TrustBundle(), bundle);
  EXPECT_TRUE(VerifiesAgainst(IssueFrom(*adding), old_root));
  time_t now = time(nullptr);
  ASSERT_TRUE(adding->AdvanceRotation(true, now));
  // This process did not make the old root: certificates from before it may last as long as
  // max_validity allows.
  EXPECT_GE(adding->rotation().old_certificates_expire, now + 24 * 3600);
  MeshCa::RotationStatus status = adding->rotation();
  adding.reset();

  auto issuing = OpenCa(options_);
  ASSERT_NE(issuing, nullptr);
  MeshCa::RotationStatus resumed = issuing->rotation();
  EXPECT_EQ(resumed.phase, MeshCa::RotationPhase::kIssuingFromNew);
  EXPECT_EQ(resumed.old_root_serial, status.old_root_serial);
  EXPECT_EQ(resumed.new_root_serial, status.new_root_serial);
  EXPECT_EQ(resumed.old_certificates_expire, status.old_certificates_expire);
  EXPECT_EQ(issuing->TrustBundle(), bundle);
  Issued issued = IssueFrom(*issuing);
  EXPECT_TRUE(VerifiesAgainst(issued, new_root));
  EXPECT_FALSE(VerifiesAgainst(issued, old_root));
  EXPECT_TRUE(issuing->AdvanceRotation(false, resumed.old_certificates_expire + 61));
  EXPECT_EQ(issuing->TrustBundle(), new_root);
}

TEST_F(MeshCaTest, ACompletionCutShortIsFinishedAtOpen) {
  auto ca = OpenCa(options_);
  ASSERT_NE(ca, nullptr);
  ASSERT_TRUE(ca->StartRotation().ok());
  ASSERT_TRUE(ca->AdvanceRotation(true, time(nullptr)));
  MeshCa::RotationStatus status = ca->rotation();
  ca.reset();
  // As if completion stopped right after the new root became root.crt/.key.
  const std::string& dir = options_.dir;
  fs::create_directories(dir + "/retired");
  fs::copy_file(dir + "/root.crt", dir + "/retired/" + status.old_root_serial + ".crt");
  fs::copy_file(dir + "/root.key", dir + "/retired/" + status.old_root_serial + ".key");
  fs::copy_file(dir + "/next/root.crt", dir + "/root.crt", fs::copy_options::overwrite_existing);
  fs::copy_file(dir + "/next/root.key", dir + "/root.key", fs::copy_options::overwrite_existing);
  std::string new_root = Read(dir + "/root.crt");

  auto reopened = OpenCa(options_);
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->rotation().phase, MeshCa::RotationPhase::kNone);
  EXPECT_EQ(reopened->TrustBundle(), new_root);
  EXPECT_FALSE(fs::exists(dir + "/rotation"));
  EXPECT_FALSE(fs::exists(dir + "/next"));
  EXPECT_TRUE(VerifiesAgainst(IssueFrom(*reopened), new_root));
}

}  // namespace
}  // namespace phoenix::control_plane
