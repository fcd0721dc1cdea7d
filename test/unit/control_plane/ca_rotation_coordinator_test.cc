#include "source/control_plane/ca_rotation_coordinator.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "source/control_plane/audit_log.h"

namespace phoenix::control_plane {
namespace {

namespace fs = std::filesystem;

constexpr char kWeb[] = "spiffe://phoenix.local/ns/default/sa/web";

std::string ReadFileForTest(const std::string& path) {
  std::ifstream in(path);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// SharedRecords in memory: what etcd holds for the replicas.
class MemoryRecords : public SharedRecords {
 public:
  absl::StatusOr<std::map<std::string, std::string>> List(const std::string& prefix) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!reachable) return absl::UnavailableError("etcd unreachable");
    std::map<std::string, std::string> out;
    for (const auto& [name, value] : records_) {
      if (name.rfind(prefix, 0) == 0) out[name] = value;
    }
    return out;
  }
  absl::Status Put(const std::string& name, const std::string& value) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!reachable) return absl::UnavailableError("etcd unreachable");
    records_[name] = value;
    return absl::OkStatus();
  }
  absl::Status PutIf(const std::string& name, const std::optional<std::string>& expected,
                     const std::string& value) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!reachable) return absl::UnavailableError("etcd unreachable");
    if (refuse_next_put_and_list) {
      reachable = false;  // Then the read that asks again fails too.
      refuse_next_put_and_list = false;
      return absl::DeadlineExceededError("no answer");
    }
    auto it = records_.find(name);
    bool matches =
        expected ? it != records_.end() && it->second == *expected : it == records_.end();
    if (!matches) return absl::AbortedError("changed first");
    records_[name] = value;
    if (lose_next_answer) {
      lose_next_answer = false;
      return absl::DeadlineExceededError("the answer was lost");
    }
    return absl::OkStatus();
  }
  bool reachable = true;
  bool lose_next_answer = false;          // PutIf commits, then says it failed.
  bool refuse_next_put_and_list = false;  // PutIf fails, and etcd is unreachable after.

 private:
  std::mutex mu_;
  std::map<std::string, std::string> records_;
};

class CaRotationCoordinatorTest : public testing::Test {
 protected:
  CaRotationCoordinatorTest() {
    char pattern[] = "/tmp/phoenix-ca-coordinator-test-XXXXXX";
    parent_ = mkdtemp(pattern);
  }
  ~CaRotationCoordinatorTest() override { fs::remove_all(parent_); }

  // Replica `name`'s CA: the first makes the root; the others get a copy of it, as an
  // operator gives every replica the same root.
  struct Replica {
    std::unique_ptr<MeshCa> ca;
    std::unique_ptr<CaRotationCoordinator> coordinator;
  };
  Replica Start(const std::string& name) {
    MeshCaOptions options;
    options.dir = absl::StrCat(parent_, "/", name);
    options.replica = name;
    options.fenced = true;
    options.max_validity = std::chrono::seconds(3600);
    std::string given = parent_ + "/given-root";
    options.generate = !fs::exists(given);
    if (!options.generate) {
      fs::create_directories(options.dir);
      for (const char* file : {"root.crt", "root.key"}) {
        fs::copy_file(absl::StrCat(given, "/", file), absl::StrCat(options.dir, "/", file));
      }
    }
    Replica replica;
    auto ca = MeshCa::Open(options);
    EXPECT_TRUE(ca.ok()) << ca.status();
    if (options.generate) {
      fs::create_directories(given);
      for (const char* file : {"root.crt", "root.key"}) {
        fs::copy_file(absl::StrCat(options.dir, "/", file), absl::StrCat(given, "/", file));
      }
    }
    replica.ca = *std::move(ca);
    CaRotationCoordinator::Options coordination;
    coordination.replica = name;
    replica.coordinator = std::make_unique<CaRotationCoordinator>(
        *replica.ca, records_,
        [this]() -> absl::StatusOr<std::vector<std::string>> {
          if (!audit_readable_) return absl::ResourceExhaustedError("too big");
          return audit_;
        },
        coordination);
    return replica;
  }

  // Issues for node-1 from `replica`, audited as CertificateIssuance does.
  absl::StatusOr<tls::IssuedCertificate> IssueFrom(Replica& replica) {
    auto key = tls::MakeKeyAndCsr(kWeb);
    EXPECT_TRUE(key.ok());
    auto issued = replica.ca->Issue(key->csr_pem, kWeb, "node-1", std::chrono::seconds(600));
    if (issued.ok()) {
      audit_.push_back(AuditLog::IssuedLine(absl::Now(), "node-1", "node-1", kWeb, issued->serial,
                                            absl::FromTimeT(issued->not_after),
                                            issued->root_serial));
    }
    return issued;
  }

  // Ticks every replica `rounds` times at `now`.
  void TickAll(std::vector<Replica*> replicas, time_t now, int rounds = 2,
               std::vector<ConnectedProxy> proxies = {}) {
    for (int i = 0; i < rounds; ++i) {
      for (Replica* replica : replicas) {
        absl::Status ticked = replica->coordinator->Tick(proxies, now);
        EXPECT_TRUE(ticked.ok()) << ticked;
      }
    }
  }

  // a starts a rotation; b joins it, asks for its intermediate under the new root, a signs
  // it and b takes it.
  void StartRotationJoinedBy(Replica& a, Replica& b, time_t now) {
    ASSERT_TRUE(a.coordinator->Start(now).ok());
    TickAll({&b, &a, &b}, now, 1);
  }

  // Rotates a's root with b taking part, from the start to the old root's leaving.
  void Rotate(Replica& a, Replica& b, time_t now) {
    StartRotationJoinedBy(a, b, now);
    ASSERT_TRUE(a.coordinator->BundlePublished(++bundle_version_).ok());
    TickAll({&a, &b}, now, 6, {{"node-1", bundle_version_}});
    ASSERT_EQ(a.coordinator->view().rotation->phase, "issuing_from_new");
    TickAll({&a, &b}, now + 3600, 8);
    ASSERT_EQ(a.coordinator->view().rotation->phase, "none");
    TickAll({&a, &b}, now + 3600, 1);
  }

  std::string parent_;
  MemoryRecords records_;
  std::vector<std::string> audit_;
  bool audit_readable_ = true;
  uint64_t bundle_version_ = 0;
};

TEST_F(CaRotationCoordinatorTest, ReplicasRotateTheRootTogether) {
  Replica a = Start("a");
  Replica b = Start("b");
  // Fenced: no issuing before the shared state has been read.
  EXPECT_EQ(IssueFrom(a).status().code(), absl::StatusCode::kUnavailable);
  time_t now = time(nullptr);
  TickAll({&a, &b}, now);
  auto before = IssueFrom(b);
  ASSERT_TRUE(before.ok()) << before.status();
  std::string old_root = a.ca->IssuingRootSerial();
  EXPECT_EQ(before->root_serial, old_root);

  ASSERT_TRUE(a.coordinator->Start(now).ok());
  // Only one rotation at a time, whoever asks.
  EXPECT_EQ(b.coordinator->Start(now).code(), absl::StatusCode::kFailedPrecondition);
  std::string new_root = a.ca->rotation().new_root_serial;
  // b joins, asks for its intermediate under the new root, a signs it, b takes it.
  TickAll({&b, &a, &b}, now, 1);
  EXPECT_EQ(b.ca->rotation().new_root_serial, new_root);
  EXPECT_FALSE(b.ca->PendingIntermediate());
  EXPECT_EQ(b.ca->TrustBundle(), a.ca->TrustBundle());
  EXPECT_FALSE(fs::exists(absl::StrCat(parent_, "/b/next/root.key")));  // Stays with a.
  // Until the bundle is published and every proxy ACKed it, both still issue under the old root.
  TickAll({&a, &b}, now, 3, {{"node-1", 7}});
  EXPECT_EQ(a.coordinator->view().rotation->phase, "adding_root");
  ASSERT_TRUE(a.coordinator->BundlePublished(8).ok());
  TickAll({&a, &b}, now, 3, {{"node-1", 7}});
  EXPECT_EQ(a.coordinator->view().waiting, std::vector<std::string>{"node-1"});
  EXPECT_EQ(a.coordinator->view().rotation->phase, "adding_root");
  EXPECT_EQ(IssueFrom(b)->root_serial, old_root);
  TickAll({&a, &b}, now, 3, {{"node-1", 8}});
  EXPECT_TRUE(a.coordinator->view().waiting.empty());
  EXPECT_EQ(a.coordinator->view().rotation->phase, "issuing_from_new");
  TickAll({&a, &b}, now, 1);
  EXPECT_EQ(IssueFrom(a)->root_serial, new_root);
  EXPECT_EQ(IssueFrom(b)->root_serial, new_root);
  EXPECT_EQ(b.ca->rotation().phase, MeshCa::RotationPhase::kIssuingFromNew);

  // The old root stays until the last certificate under it (600 s) has expired.
  TickAll({&a, &b}, now + 100, 6);
  EXPECT_EQ(a.coordinator->view().rotation->phase, "issuing_from_new");
  EXPECT_GE(a.coordinator->view().rotation->old_certificates_expire, now + 590);
  TickAll({&a, &b}, now + 700, 6);
  EXPECT_EQ(a.coordinator->view().rotation->phase, "none");
  for (Replica* replica : {&a, &b}) {
    EXPECT_EQ(replica->ca->rotation().phase, MeshCa::RotationPhase::kNone);
    EXPECT_EQ(tls::CertificateSerials(replica->ca->TrustBundle()),
              std::vector<std::string>{new_root});
  }
  // Done: any replica where it is done may publish the bundle (the same text everywhere).
  EXPECT_TRUE(a.coordinator->view().publishes_bundle);
  EXPECT_TRUE(b.coordinator->view().publishes_bundle);
  // The new root's key is a's alone; b's old one is retired, not left beside the new root.
  EXPECT_TRUE(fs::exists(absl::StrCat(parent_, "/a/root.key")));
  EXPECT_FALSE(fs::exists(absl::StrCat(parent_, "/b/root.key")));
  EXPECT_TRUE(fs::exists(absl::StrCat(parent_, "/b/retired/", old_root, ".key")));

  // A replica that was away through it all catches up before it serves.
  Replica c = Start("c");  // With the old root, as it was given.
  ASSERT_TRUE(c.coordinator->CatchUp(now + 700).ok());
  EXPECT_TRUE(c.ca->PendingIntermediate());
  TickAll({&c, &a, &c}, now + 700, 1);
  EXPECT_EQ(c.ca->rotation().phase, MeshCa::RotationPhase::kNone);
  EXPECT_EQ(c.ca->TrustBundle(), a.ca->TrustBundle());
  EXPECT_EQ(IssueFrom(c)->root_serial, new_root);
}

TEST_F(CaRotationCoordinatorTest, ARotationWaitsForEveryLiveReplicaAndHolder) {
  Replica a = Start("a");
  Replica b = Start("b");
  time_t now = time(nullptr);
  TickAll({&a, &b}, now);
  ASSERT_TRUE(IssueFrom(b).ok());  // node-1 holds a certificate.
  ASSERT_TRUE(a.coordinator->Start(now).ok());
  ASSERT_TRUE(a.coordinator->BundlePublished(3).ok());
  // b does not answer: a waits for it while its report is fresh, and for node-1 (not
  // connected anywhere).
  TickAll({&a}, now, 6);
  EXPECT_EQ(a.coordinator->view().rotation->phase, "adding_root");
  EXPECT_EQ(a.coordinator->view().waiting, std::vector<std::string>{"node-1 (not connected)"});
  // node-1 connects to a and runs the bundle; b is still not ready (no intermediate).
  TickAll({&a}, now, 6, {{"node-1", 3}});
  EXPECT_EQ(a.coordinator->view().rotation->phase, "adding_root");
  // Once b is gone (its report is old), it no longer holds the rotation up; when it comes
  // back it follows the shared phase.
  TickAll({&a}, now + 60, 6, {{"node-1", 3}});
  EXPECT_EQ(a.coordinator->view().rotation->phase, "issuing_from_new");
  TickAll({&b}, now + 60, 1);
  EXPECT_EQ(b.ca->rotation().phase, MeshCa::RotationPhase::kIssuingFromNew);
  // Without its intermediate under the new root b issues nothing (never under the old one)...
  EXPECT_EQ(IssueFrom(b).status().code(), absl::StatusCode::kUnavailable);
  // ...until a has signed it.
  TickAll({&a, &b}, now + 60, 1);
  EXPECT_EQ(IssueFrom(b)->root_serial, a.ca->rotation().new_root_serial);
}

TEST_F(CaRotationCoordinatorTest, AReplicaCutOffFromTheSharedStateStopsIssuing) {
  Replica a = Start("a");
  time_t now = time(nullptr);
  TickAll({&a}, now - 20, 1);  // Last read 20 s ago: the fence (10 s) has run out.
  EXPECT_EQ(IssueFrom(a).status().code(), absl::StatusCode::kUnavailable);
  records_.reachable = false;
  EXPECT_EQ(a.coordinator->Tick({}, now).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(IssueFrom(a).status().code(), absl::StatusCode::kUnavailable);
  records_.reachable = true;
  TickAll({&a}, now, 1);
  EXPECT_TRUE(IssueFrom(a).ok());
}

TEST_F(CaRotationCoordinatorTest, AStartWhoseAnswerIsLostIsSettledNotLost) {
  Replica a = Start("a");
  time_t now = time(nullptr);
  TickAll({&a}, now, 1);
  // Committed, but the answer never came: asked again, it is this replica's: it goes on.
  records_.lose_next_answer = true;
  ASSERT_TRUE(a.coordinator->Start(now).ok());
  std::string new_root = a.ca->rotation().new_root_serial;
  TickAll({&a}, now, 1);
  EXPECT_EQ(a.coordinator->view().rotation->new_root_serial, new_root);
  EXPECT_TRUE(a.ca->HoldsRootKey(new_root));
}

TEST_F(CaRotationCoordinatorTest, AStartEtcdNeverAnsweredIsDroppedOnceEtcdSaysSo) {
  Replica a = Start("a");
  time_t now = time(nullptr);
  TickAll({&a}, now, 1);
  records_.refuse_next_put_and_list = true;
  absl::Status started = a.coordinator->Start(now);
  EXPECT_EQ(started.code(), absl::StatusCode::kUnavailable) << started;
  // Not known: the new root stays until etcd can say.
  EXPECT_EQ(a.ca->rotation().phase, MeshCa::RotationPhase::kAddingRoot);
  records_.reachable = true;
  TickAll({&a}, now, 1);  // Not shared after all: dropped.
  EXPECT_EQ(a.ca->rotation().phase, MeshCa::RotationPhase::kNone);
  EXPECT_EQ(tls::CertificateSerials(a.ca->TrustBundle()).size(), 1u);
}

TEST_F(CaRotationCoordinatorTest, ASecondRotationDecidesOnItsOwnFacts) {
  Replica a = Start("a");
  Replica b = Start("b");
  time_t now = time(nullptr);
  TickAll({&a, &b}, now);
  ASSERT_TRUE(IssueFrom(a).ok());
  Rotate(a, b, now);
  // A second rotation while the audit trail cannot be read: what the first one read decides
  // nothing; it waits.
  audit_readable_ = false;
  now += 3600;
  StartRotationJoinedBy(a, b, now);
  ASSERT_TRUE(a.coordinator->BundlePublished(++bundle_version_).ok());
  TickAll({&a, &b}, now, 8, {{"node-1", bundle_version_}});
  EXPECT_EQ(a.coordinator->view().rotation->phase, "adding_root");
  audit_readable_ = true;
  TickAll({&a, &b}, now, 2, {{"node-1", bundle_version_}});
  EXPECT_NE(a.coordinator->view().rotation->phase, "adding_root");
}

TEST_F(CaRotationCoordinatorTest, ANewRotationWaitsForEveryReplicaToFinishTheLast) {
  Replica a = Start("a");
  Replica b = Start("b");
  time_t now = time(nullptr);
  TickAll({&a, &b}, now);
  StartRotationJoinedBy(a, b, now);
  ASSERT_TRUE(a.coordinator->BundlePublished(1).ok());
  TickAll({&a, &b}, now, 6, {{"node-1", 1}});
  // a moves the rotation to done; b has not seen it yet.
  for (int i = 0; i < 20 && a.coordinator->view().rotation->phase != "none"; ++i) {
    TickAll({&b, &a}, now + 3600, 1);
  }
  ASSERT_EQ(a.coordinator->view().rotation->phase, "none");
  ASSERT_EQ(b.ca->rotation().phase, MeshCa::RotationPhase::kIssuingFromNew);
  absl::Status refused = a.coordinator->Start(now + 3600);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_NE(refused.message().find("replica b has not finished"), std::string::npos) << refused;
  TickAll({&b}, now + 3600, 1);
  EXPECT_EQ(b.ca->rotation().phase, MeshCa::RotationPhase::kNone);
  EXPECT_TRUE(a.coordinator->Start(now + 3600).ok());
}

TEST_F(CaRotationCoordinatorTest, AReplicaWithoutTheRootKeyRenewsItsIntermediateThroughAnother) {
  Replica a = Start("a");
  Replica b = Start("b");
  time_t now = time(nullptr);
  TickAll({&a, &b}, now);
  Rotate(a, b, now);  // The new root's key is a's alone.
  ASSERT_FALSE(fs::exists(absl::StrCat(parent_, "/b/root.key")));
  std::string root = a.ca->IssuingRootSerial();
  std::string path = absl::StrCat(parent_, "/b/intermediate-b.crt");
  std::string before = tls::CertificateSerials(ReadFileForTest(path))[0];
  // 340 days on, b's intermediate is due: it asks, a signs, b takes it.
  ASSERT_TRUE(b.ca->RenewIntermediatesIfDue(now + 340 * 86400).ok());
  ASSERT_TRUE(b.ca->PendingIntermediate());
  EXPECT_EQ(b.ca->PendingIntermediate()->root_serial, root);
  TickAll({&b, &a, &b}, now + 3600, 1);
  EXPECT_FALSE(b.ca->PendingIntermediate());
  EXPECT_NE(tls::CertificateSerials(ReadFileForTest(path))[0], before);
  EXPECT_EQ(IssueFrom(b)->root_serial, root);
}

TEST_F(CaRotationCoordinatorTest, ASilentDriverIsTakenOver) {
  Replica a = Start("a");
  Replica b = Start("b");
  time_t now = time(nullptr);
  TickAll({&a, &b}, now);
  StartRotationJoinedBy(a, b, now);  // b holds its intermediate under the new root.
  ASSERT_TRUE(a.coordinator->BundlePublished(5).ok());
  TickAll({&b}, now, 2);
  EXPECT_EQ(b.coordinator->view().rotation->driver, "a");
  // a goes silent; after 30 s b drives, and moves the rotation on.
  TickAll({&b}, now + 20, 2, {{"node-1", 5}});
  EXPECT_EQ(b.coordinator->view().rotation->driver, "a");
  TickAll({&b}, now + 40, 6, {{"node-1", 5}});
  EXPECT_EQ(b.coordinator->view().rotation->driver, "b");
  EXPECT_NE(b.coordinator->view().rotation->phase, "adding_root");
  TickAll({&b}, now + 40, 1);
  EXPECT_TRUE(b.coordinator->view().publishes_bundle);  // The bundle is b's to publish now.
}

TEST_F(CaRotationCoordinatorTest, ARotationStillAddingItsRootCanBeAbandonedFromAnyReplica) {
  Replica a = Start("a");
  Replica b = Start("b");
  time_t now = time(nullptr);
  TickAll({&a, &b}, now);
  std::string old_root = a.ca->IssuingRootSerial();
  ASSERT_TRUE(a.coordinator->Start(now).ok());
  std::string new_root = a.ca->rotation().new_root_serial;
  TickAll({&b, &a, &b}, now, 1);
  ASSERT_EQ(b.ca->rotation().phase, MeshCa::RotationPhase::kAddingRoot);
  // b abandons it (say a, which holds the new root's key, is lost for good).
  auto dropped = b.coordinator->Abort(now);
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  EXPECT_EQ(*dropped, new_root);
  TickAll({&a, &b}, now, 2);
  for (Replica* replica : {&a, &b}) {
    EXPECT_EQ(replica->ca->rotation().phase, MeshCa::RotationPhase::kNone);
    EXPECT_EQ(tls::CertificateSerials(replica->ca->TrustBundle()),
              std::vector<std::string>{old_root});
    EXPECT_TRUE(replica->coordinator->view().publishes_bundle);
    EXPECT_EQ(IssueFrom(*replica)->root_serial, old_root);
  }
  // The new root is kept, not destroyed.
  EXPECT_TRUE(fs::exists(absl::StrCat(parent_, "/a/retired/abandoned-", new_root, ".key")));
  // A rotation issuing under its new root cannot be abandoned; the next one can start.
  StartRotationJoinedBy(a, b, now);
  ASSERT_TRUE(a.coordinator->BundlePublished(9).ok());
  TickAll({&a, &b}, now, 6, {{"node-1", 9}});
  ASSERT_EQ(a.coordinator->view().rotation->phase, "issuing_from_new");
  EXPECT_EQ(b.coordinator->Abort(now).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(CaRotationCoordinatorTest, TwoReplicasGivenOneNameAreTold) {
  Replica a = Start("a");
  Replica twin = Start("b");
  CaRotationCoordinator::Options same;
  same.replica = "a";
  CaRotationCoordinator impostor(
      *twin.ca, records_,
      [] { return absl::StatusOr<std::vector<std::string>>(std::vector<std::string>()); }, same);
  time_t now = time(nullptr);
  ASSERT_TRUE(a.coordinator->Tick({}, now).ok());
  ASSERT_TRUE(impostor.Tick({}, now).ok());
  absl::Status told = a.coordinator->Tick({}, now);
  EXPECT_EQ(told.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(told.message().find("--ca-replica"), std::string::npos) << told;
}

}  // namespace
}  // namespace phoenix::control_plane
