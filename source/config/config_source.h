#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/any.pb.h"
#include "phoenix/config/v1/bootstrap.pb.h"
#include "source/common/config_errors.h"

namespace phoenix::config {

// The kinds of resource a source delivers, as xDS names them.
enum class ResourceType {
  kListener,
  kRouteConfiguration,
  kCluster,
  kClusterLoadAssignment,
  kSecret,
};

// "type.googleapis.com/phoenix.config.v1.Listener" and so on: what a resource's Any says.
std::string_view TypeUrl(ResourceType type);
std::string_view TypeName(ResourceType type);  // "Listener", for logs and /config_dump.

// One delivery from a source. For each type it carries, the complete set of that type's
// resources (state of the world) and the set's version; a type it does not carry keeps its
// resources. Resources are packed in Any, as the control plane will push them.
struct ConfigUpdate {
  struct Resources {
    std::string version;
    std::vector<google::protobuf::Any> resources;
  };
  std::map<ResourceType, Resources> types;
  // The parts of the bootstrap that are not resources (node, admin, drain timeout): only a
  // file source has them. May be null.
  const v1::Bootstrap* bootstrap = nullptr;
  // Where each field was written, for errors with file:line:column. May be null.
  const SourceMap* source_map = nullptr;
};

// What a source hands its updates to (the server). The returned status is the answer to
// the update: OK acknowledges it (ACK), an error rejects it (NACK) and the last good config
// stays in force.
class ConfigUpdateCallbacks {
 public:
  virtual ~ConfigUpdateCallbacks() = default;
  virtual absl::Status OnConfigUpdate(const ConfigUpdate& update) = 0;
};

// Where configuration comes from: the YAML file today, an xDS client next. Runs on the main
// thread.
class ConfigSource {
 public:
  // What became of the updates of one type.
  struct TypeStatus {
    std::string accepted_version;  // Of the last update acknowledged; "" before the first.
    std::string rejected_version;  // Of the last update rejected since then, with its error.
    std::string last_error;
    std::string last_updated;  // When the accepted version arrived (RFC 3339), if known.
  };

  virtual ~ConfigSource() = default;
  // Starts delivering to `callbacks`. A file delivers its config before this returns, and
  // the result is that delivery's answer.
  virtual absl::Status Start(ConfigUpdateCallbacks& callbacks) = 0;
  // Asks for the config again (SIGHUP, POST /reload). A file delivers it at once and returns
  // the answer; a dynamic source may deliver later.
  virtual absl::Status Refresh() = 0;
  // Whether resources arrive independently: a route may then name a cluster that has not
  // arrived yet (its requests get 503, flag NC). A static source delivers everything
  // together, so such a reference is a typo and fails validation.
  virtual bool dynamic() const = 0;
  virtual std::map<ResourceType, TypeStatus> status() const = 0;
  // Human-readable origin: "file /etc/phoenix.yaml".
  virtual std::string description() const = 0;
};

}  // namespace phoenix::config
