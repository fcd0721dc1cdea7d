#pragma once

#include <map>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace phoenix::control_plane {

// Small named records that phoenix-cp replicas share beside the resources: the mesh CA's
// rotation (its phase, each replica's report, the intermediates the rotation's driver signs).
// It exists so that the coordination between replicas is written once, against this, and
// tested with an in-memory one; etcd holds the records in production. Thread-safe.
class SharedRecords {
 public:
  virtual ~SharedRecords() = default;

  // Every record whose name starts with `prefix`: name -> value.
  virtual absl::StatusOr<std::map<std::string, std::string>> List(const std::string& prefix) = 0;
  virtual absl::Status Put(const std::string& name, const std::string& value) = 0;
  // Puts `value` only if the record holds `expected` now (nullopt: if it does not exist);
  // ABORTED otherwise (another replica wrote it first).
  virtual absl::Status PutIf(const std::string& name, const std::optional<std::string>& expected,
                             const std::string& value) = 0;
};

}  // namespace phoenix::control_plane
