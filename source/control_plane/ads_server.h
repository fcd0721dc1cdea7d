#pragma once

#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "source/control_plane/resource_snapshot.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace phoenix::control_plane {

class AdsStream;
class AdsService;

// The Aggregated Discovery Service endpoint (xDS v3, state of the world, gRPC's callback API:
// no thread per stream). Serves the current snapshot to each stream and pushes every newer
// one to all of them.
class AdsServer {
 public:
  explicit AdsServer(std::shared_ptr<const ResourceSnapshot> initial);
  ~AdsServer();

  // Listens on `address` ("127.0.0.1:18000"; port 0 picks one) and returns the bound port.
  absl::StatusOr<int> Start(const std::string& address);
  // Makes `snapshot` current and sends each stream the types whose content changed for it.
  // Any thread.
  void Publish(std::shared_ptr<const ResourceSnapshot> snapshot);
  // Ends every stream and stops listening.
  void Shutdown();

 private:
  std::unique_ptr<AdsService> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace phoenix::control_plane
