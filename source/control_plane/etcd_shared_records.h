#pragma once

#include <string>

#include "source/control_plane/etcd_client.h"
#include "source/control_plane/shared_records.h"

namespace phoenix::control_plane {

// SharedRecords in etcd: record `name` is the key <prefix><name> (the store's prefix plus
// "shared/"). PutIf is one transaction comparing the key's value (or that it was never
// created).
class EtcdSharedRecords : public SharedRecords {
 public:
  // `client` outlives this.
  EtcdSharedRecords(EtcdClient* client, std::string prefix)
      : client_(client), prefix_(std::move(prefix)) {}

  absl::StatusOr<std::map<std::string, std::string>> List(const std::string& prefix) override;
  absl::Status Put(const std::string& name, const std::string& value) override;
  absl::Status PutIf(const std::string& name, const std::optional<std::string>& expected,
                     const std::string& value) override;

 private:
  EtcdClient* const client_;
  const std::string prefix_;
};

}  // namespace phoenix::control_plane
