#include "source/control_plane/etcd_store.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

namespace phoenix::control_plane {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::RangeRequest;
using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;

void AddPut(TxnRequest& txn, const std::string& key, const std::string& value) {
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key(key);
  put->set_value(value);
}

void AddDelete(TxnRequest& txn, const std::string& key) {
  txn.add_success()->mutable_request_delete_range()->set_key(key);
}

RangeRequest PrefixRange(const std::string& prefix) {
  RangeRequest range;
  range.set_key(prefix);
  range.set_range_end(PrefixRangeEnd(prefix));
  return range;
}

std::string RandomReplicaId() {
  std::random_device device;
  return absl::StrFormat("%08x", static_cast<uint32_t>(device()));
}

}  // namespace

EtcdStore::EtcdStore(std::unique_ptr<EtcdClient> client, std::string prefix)
    : client_(std::move(client)),
      keys_(std::move(prefix)),
      replica_(RandomReplicaId()),
      shared_(client_.get(), keys_.SharedPrefix()) {}

EtcdStore::~EtcdStore() { watcher_.reset(); }

std::string EtcdStore::description() const {
  return absl::StrCat("etcd ", absl::StrJoin(client_->endpoints(), ","), " prefix ",
                      keys_.prefix());
}

absl::StatusOr<StoredState> EtcdStore::Read() {
  // One transaction without conditions: the version and its files at the same revision.
  TxnRequest txn;
  txn.add_success()->mutable_request_range()->set_key(keys_.Version());
  *txn.add_success()->mutable_request_range() = PrefixRange(keys_.FilesPrefix());
  auto response = client_->Txn(txn);
  if (!response.ok()) return response.status();
  if (response->responses_size() != 2) {
    return absl::InternalError("etcd answered a read with an unexpected shape");
  }
  StoredState state;
  const auto& version = response->responses(0).response_range();
  if (version.kvs_size() > 0) {
    auto decoded = DecodeVersion(version.kvs(0).value());
    if (!decoded) {
      return absl::DataLossError(absl::StrCat(keys_.Version(), " holds '", version.kvs(0).value(),
                                              "', not a version number"));
    }
    state.version = *decoded;
  }
  for (const auto& kv : response->responses(1).response_range().kvs()) {
    if (auto path = keys_.PathOfFile(kv.key())) state.files.push_back({*path, kv.value()});
  }
  state.files = SortedFileSet(std::move(state.files));
  return state;
}

absl::Status EtcdStore::Commit(const StoredState& seen, const FileSet& next,
                               const std::string& audit_line) {
  const uint64_t version = seen.version + 1;
  TxnRequest txn;
  Compare* still = txn.add_compare();
  still->set_key(keys_.Version());
  still->set_result(Compare::EQUAL);
  if (seen.version == 0) {
    still->set_target(Compare::CREATE);  // No version key yet: created at revision 0.
    still->set_create_revision(0);
  } else {
    still->set_target(Compare::VALUE);
    still->set_value(EncodeVersion(seen.version));
  }
  AddPut(txn, keys_.Version(), EncodeVersion(version));
  // Only the files that change: etcd caps the operations of one transaction (128 by default).
  for (const IncomingFile& file : next) {
    auto it = std::find_if(seen.files.begin(), seen.files.end(),
                           [&](const IncomingFile& f) { return f.path == file.path; });
    if (it == seen.files.end() || it->content != file.content) {
      AddPut(txn, keys_.File(file.path), file.content);
    }
  }
  for (const IncomingFile& file : seen.files) {
    bool kept = std::any_of(next.begin(), next.end(),
                            [&](const IncomingFile& f) { return f.path == file.path; });
    if (!kept) AddDelete(txn, keys_.File(file.path));
  }
  AddPut(txn, keys_.History(version), EncodeFileSet(next));
  if (version > kKeptVersions) AddDelete(txn, keys_.History(version - kKeptVersions));
  AddPut(txn, NextAuditKey(), audit_line);
  auto response = client_->Txn(txn);
  if (!response.ok()) return response.status();
  if (!response->succeeded()) {
    return absl::AbortedError(
        absl::StrCat("another replica committed a version after ", seen.version, " first"));
  }
  return absl::OkStatus();
}

absl::StatusOr<FileSet> EtcdStore::Version(uint64_t version) {
  RangeRequest range;
  range.set_key(keys_.History(version));
  auto response = client_->Range(range);
  if (!response.ok()) return response.status();
  if (response->kvs_size() == 0) {
    // Say which are kept.
    RangeRequest kept = PrefixRange(keys_.HistoryPrefix());
    kept.set_keys_only(true);
    auto all = client_->Range(kept);
    std::vector<uint64_t> versions;
    if (all.ok()) {
      for (const auto& kv : all->kvs()) {
        if (auto v = keys_.VersionOfHistory(kv.key())) versions.push_back(*v);
      }
    }
    if (versions.empty()) {
      return absl::NotFoundError(absl::StrCat("version ", version, " is not kept (no version is)"));
    }
    return absl::NotFoundError(absl::StrCat("version ", version, " is not kept: the last ",
                                            versions.size(), " versions are (", versions.front(),
                                            " to ", versions.back(), ")"));
  }
  auto files = DecodeFileSet(response->kvs(0).value());
  if (!files.ok()) {
    return absl::DataLossError(
        absl::StrCat(keys_.History(version), ": ", files.status().message()));
  }
  return files;
}

absl::Status EtcdStore::AppendAudit(const std::string& line) {
  etcdserverpb::PutRequest put;
  put.set_key(NextAuditKey());
  put.set_value(line);
  auto response = client_->Put(put);
  return response.ok() ? absl::OkStatus() : response.status();
}

absl::StatusOr<std::vector<std::string>> EtcdStore::AuditLines() {
  // In pages (sorted by key: by time), so a long trail stays under gRPC's message limit.
  constexpr int64_t kPage = 1000;
  RangeRequest range = PrefixRange(keys_.AuditPrefix());
  range.set_limit(kPage);
  std::vector<std::string> lines;
  for (;;) {
    auto response = client_->Range(range);
    if (!response.ok()) return response.status();
    for (const auto& kv : response->kvs()) lines.push_back(kv.value());
    if (!response->more() || response->kvs_size() == 0) return lines;
    range.set_key(response->kvs(response->kvs_size() - 1).key() + std::string(1, '\0'));
  }
}

void EtcdStore::Watch(std::function<void()> on_change) {
  // Every commit writes the version key: watching it is watching every change.
  watcher_ = std::make_unique<EtcdWatcher>(client_->endpoints(), keys_.Version(), "",
                                           std::move(on_change));
}

std::string EtcdStore::NextAuditKey() {
  return keys_.Audit(absl::Now(), replica_, audit_sequence_++);
}

}  // namespace phoenix::control_plane
