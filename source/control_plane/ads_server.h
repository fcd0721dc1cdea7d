#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "source/control_plane/resource_snapshot.h"
#include "source/control_plane/stream_subscriptions.h"
#include "source/control_plane/tokens.h"

namespace grpc {
class Server;
class ServerCredentials;
class Service;
}  // namespace grpc

namespace phoenix::control_plane {

class AdsStream;
class AdsService;

// What one connected proxy runs, as its ADS stream says (for the admin service's Status).
struct ProxyStatus {
  std::string node_id;
  std::string peer;
  std::string principal;  // "" without an identity store (--tokens, --principals).
  absl::Time connected_since;
  std::map<std::string, StreamSubscriptions::TypeState> types;  // By type URL.
};

// The Aggregated Discovery Service endpoint (xDS v3, state of the world, gRPC's callback API:
// no thread per stream). Serves the current snapshot to each stream and pushes every newer
// one to all of them.
class AdsServer {
 public:
  // `auth` (null: none) decides which streams are served and which node each may ask for;
  // it must outlive the server.
  explicit AdsServer(std::shared_ptr<const ResourceSnapshot> initial,
                     const Authenticator* auth = nullptr);
  ~AdsServer();

  // Listens on `address` ("127.0.0.1:18000"; port 0 picks one) with `credentials`
  // (plaintext, TLS or mTLS: MakeServerCredentials) and returns the bound port. `also_serve`
  // are more services on the same port (the admin service); they must outlive the server.
  absl::StatusOr<int> Start(const std::string& address,
                            std::shared_ptr<grpc::ServerCredentials> credentials,
                            const std::vector<grpc::Service*>& also_serve = {});
  // Makes `snapshot` current and sends each stream the types whose content changed for it.
  // Any thread.
  void Publish(std::shared_ptr<const ResourceSnapshot> snapshot);
  // Every stream that has said which node it is, by node id then peer. Any thread.
  std::vector<ProxyStatus> Proxies() const;
  // Ends every stream and stops listening.
  void Shutdown();

 private:
  std::unique_ptr<AdsService> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace phoenix::control_plane
