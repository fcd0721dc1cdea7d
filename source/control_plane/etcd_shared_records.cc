#include "source/control_plane/etcd_shared_records.h"

#include "absl/strings/str_cat.h"
#include "source/control_plane/etcd_keys.h"

namespace phoenix::control_plane {

absl::StatusOr<std::map<std::string, std::string>> EtcdSharedRecords::List(
    const std::string& prefix) {
  etcdserverpb::RangeRequest range;
  range.set_key(prefix_ + prefix);
  range.set_range_end(PrefixRangeEnd(prefix_ + prefix));
  auto response = client_->Range(range);
  if (!response.ok()) return response.status();
  std::map<std::string, std::string> records;
  for (const auto& kv : response->kvs()) records[kv.key().substr(prefix_.size())] = kv.value();
  return records;
}

absl::Status EtcdSharedRecords::Put(const std::string& name, const std::string& value) {
  etcdserverpb::PutRequest put;
  put.set_key(prefix_ + name);
  put.set_value(value);
  return client_->Put(put).status();
}

absl::Status EtcdSharedRecords::PutIf(const std::string& name,
                                      const std::optional<std::string>& expected,
                                      const std::string& value) {
  etcdserverpb::TxnRequest txn;
  etcdserverpb::Compare* compare = txn.add_compare();
  compare->set_key(prefix_ + name);
  compare->set_result(etcdserverpb::Compare::EQUAL);
  if (expected) {
    compare->set_target(etcdserverpb::Compare::VALUE);
    compare->set_value(*expected);
  } else {
    compare->set_target(etcdserverpb::Compare::CREATE);
    compare->set_create_revision(0);
  }
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key(prefix_ + name);
  put->set_value(value);
  auto response = client_->Txn(txn);
  if (!response.ok()) return response.status();
  if (!response->succeeded()) {
    return absl::AbortedError(absl::StrCat(name, " was changed by another replica first"));
  }
  return absl::OkStatus();
}

}  // namespace phoenix::control_plane
