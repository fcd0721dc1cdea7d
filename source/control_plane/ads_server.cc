#include "source/control_plane/ads_server.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "grpcpp/grpcpp.h"
#include "phoenix/service/discovery/v1/ads.grpc.pb.h"
#include "source/common/logging.h"
#include "source/control_plane/caller_credentials.h"
#include "source/control_plane/stream_subscriptions.h"

namespace phoenix::control_plane {

using service::discovery::v1::AggregatedDiscoveryService;
using service::discovery::v1::DiscoveryRequest;
using service::discovery::v1::DiscoveryResponse;

// The gRPC service: makes one AdsStream per call and knows every live one, so a new
// snapshot reaches them all. Lock order: streams_mu_, then a stream's own mutex, then
// snapshot_mu_.
class AdsService : public AggregatedDiscoveryService::CallbackService {
 public:
  AdsService(std::shared_ptr<const ResourceSnapshot> initial, const Authenticator* auth)
      : snapshot_(std::move(initial)), auth_(auth) {}

  grpc::ServerBidiReactor<DiscoveryRequest, DiscoveryResponse>* StreamAggregatedResources(
      grpc::CallbackServerContext* context) override;

  std::shared_ptr<const ResourceSnapshot> snapshot() const {
    std::lock_guard<std::mutex> lock(snapshot_mu_);
    return snapshot_;
  }
  void Publish(std::shared_ptr<const ResourceSnapshot> snapshot);
  void Add(AdsStream* stream) {
    std::lock_guard<std::mutex> lock(streams_mu_);
    streams_.insert(stream);
  }
  void Remove(AdsStream* stream) {
    std::lock_guard<std::mutex> lock(streams_mu_);
    streams_.erase(stream);
  }
  std::vector<ProxyStatus> Proxies();

 private:
  const Authenticator* auth_;
  mutable std::mutex snapshot_mu_;
  std::shared_ptr<const ResourceSnapshot> snapshot_;
  std::mutex streams_mu_;
  std::set<AdsStream*> streams_;
};

// One ADS stream: a proxy's subscriptions and the responses on their way to it. gRPC allows
// one outstanding write per stream, so responses queue here; Start* is never called with
// mu_ held (a reaction may run on another thread at once and take mu_).
class AdsStream : public grpc::ServerBidiReactor<DiscoveryRequest, DiscoveryResponse> {
 public:
  AdsStream(AdsService& service, std::string peer, Principal principal)
      : service_(service),
        peer_(std::move(peer)),
        principal_(std::move(principal)),
        connected_since_(absl::Now()) {
    service_.Add(this);
    StartRead(&request_);
  }

  // What the stream knows of its proxy; false until the proxy has said which node it is.
  bool Status(ProxyStatus& out) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!node_known_) return false;
    out.node_id = node_id_;
    out.peer = peer_;
    out.principal = principal_.unauthenticated ? "" : principal_.name;
    out.connected_since = connected_since_;
    out.types = subscriptions_.types();
    return true;
  }

  // A new snapshot: send each subscribed type whose set for this node changed.
  void Push(const ResourceSnapshot& snapshot) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!node_known_) return;
      // Make before break: types that add or change resources go first, in ServedTypes'
      // order (what others refer to first); types that remove some go last, in reverse (a
      // secret goes after the listener that used it).
      std::vector<std::string> removing;
      for (ResourceType type : ServedTypes()) {
        std::string type_url(config::TypeUrl(type));
        if (subscriptions_.Find(type_url) == nullptr) continue;
        if (RemovesResourcesLocked(snapshot, type_url)) {
          removing.push_back(type_url);
          continue;
        }
        QueueIfChangedLocked(snapshot, type_url, /*force=*/false);
      }
      for (auto it = removing.rbegin(); it != removing.rend(); ++it) {
        QueueIfChangedLocked(snapshot, *it, /*force=*/false);
      }
    }
    MaybeStartWrite();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        read_closed_ = true;
      }
      MaybeFinish();
      return;
    }
    grpc::Status refusal;
    {
      std::lock_guard<std::mutex> lock(mu_);
      HandleLocked(request_);
      if (!refusal_.ok()) {
        refusal = refusal_;
        finished_ = true;
      }
    }
    if (!refusal.ok()) {
      Finish(refusal);  // OnDone may run at once: `this` is not touched after.
      return;
    }
    MaybeStartWrite();
    StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = false;
      if (!ok) read_closed_ = true;  // The stream is gone: finish.
    }
    MaybeStartWrite();
    MaybeFinish();
  }

  void OnDone() override {
    service_.Remove(this);  // Waits out a Publish that is pushing to this stream.
    PHX_LOG(kInfo, "phoenix-cp: node ", node_known_ ? node_id_ : "(unknown)", " disconnected (",
            peer_, ")");
    delete this;
  }

 private:
  void HandleLocked(const DiscoveryRequest& request) {
    if (!node_known_) {
      // Node isolation: a stream asks only for the node its principal's role names.
      if (auto allowed = Authenticator::MayServe(principal_, request.node().id()); !allowed.ok()) {
        PHX_LOG(kWarn, "phoenix-cp: refused a stream from ", peer_, ": ", allowed.message());
        refusal_ =
            grpc::Status(grpc::StatusCode::PERMISSION_DENIED, std::string(allowed.message()));
        return;
      }
      node_known_ = true;
      node_id_ = request.node().id();
      node_.id = node_id_;
      node_.cluster = request.node().cluster();
      for (const auto& [key, value] : request.node().metadata().fields()) {
        if (value.has_string_value()) node_.metadata[key] = value.string_value();
      }
      PHX_LOG(kInfo, "phoenix-cp: node ", node_id_, " connected (", peer_, ")",
              principal_.unauthenticated ? "" : absl::StrCat(" as ", principal_.name));
    }
    auto answer = subscriptions_.OnRequest(request);
    const std::string type = TypeNameOf(request.type_url());
    switch (answer.kind) {
      case StreamSubscriptions::RequestKind::kSubscribe:
        PHX_LOG(kInfo, "phoenix-cp: node ", node_id_, " subscribed to ", type,
                request.resource_names_size() == 0
                    ? std::string(" (all)")
                    : absl::StrCat(" (", absl::StrJoin(request.resource_names(), ", "), ")"));
        QueueIfChangedLocked(*service_.snapshot(), request.type_url(), /*force=*/true);
        return;
      case StreamSubscriptions::RequestKind::kAck:
        PHX_LOG(kInfo, "phoenix-cp: node ", node_id_, " ACKed ", type, " version ",
                subscriptions_.Find(request.type_url())->acked_version);
        break;
      case StreamSubscriptions::RequestKind::kNack:
        PHX_LOG(kWarn, "phoenix-cp: node ", node_id_, " NACKed ", type, " version ",
                subscriptions_.Find(request.type_url())->nacked_version, ": ",
                request.error_detail().message());
        break;
      case StreamSubscriptions::RequestKind::kStale:
        PHX_LOG(kDebug, "phoenix-cp: node ", node_id_, ": ignoring a stale ", type,
                " request (nonce ", request.response_nonce(), ")");
        return;
    }
    if (answer.names_changed) {
      QueueIfChangedLocked(*service_.snapshot(), request.type_url(), /*force=*/true);
    }
  }

  // The resources of `type_url` this node gets from `snapshot` (those it subscribed to by
  // name, or all).
  std::map<std::string, const Resource*> ResourcesForLocked(const ResourceSnapshot& snapshot,
                                                            const std::string& type_url) {
    const StreamSubscriptions::TypeState* state = subscriptions_.Find(type_url);
    std::set<std::string> wanted;
    if (state != nullptr) wanted.insert(state->resource_names.begin(), state->resource_names.end());
    std::map<std::string, const Resource*> out;
    for (ResourceType type : ServedTypes()) {
      if (config::TypeUrl(type) != type_url) continue;
      for (const auto& [name, resource] : snapshot.For(node_, type)) {
        if (wanted.empty() || wanted.contains(name)) out.emplace(name, resource);
      }
    }
    return out;
  }

  // Whether `snapshot` takes away a resource of `type_url` this node was last sent.
  bool RemovesResourcesLocked(const ResourceSnapshot& snapshot, const std::string& type_url) {
    auto sent = sent_names_.find(type_url);
    if (sent == sent_names_.end()) return false;
    auto now = ResourcesForLocked(snapshot, type_url);
    return std::any_of(sent->second.begin(), sent->second.end(),
                       [&](const std::string& name) { return !now.contains(name); });
  }

  // Queues the set of `type_url` for this node when it differs from the last one sent (or
  // always, with `force`: a subscription is answered even when nothing changed).
  void QueueIfChangedLocked(const ResourceSnapshot& snapshot, const std::string& type_url,
                            bool force) {
    DiscoveryResponse response;
    response.set_type_url(type_url);
    std::string content;
    std::set<std::string> names;
    for (const auto& [name, resource] : ResourcesForLocked(snapshot, type_url)) {
      *response.add_resources() = resource->packed;
      absl::StrAppend(&content, name.size(), ":", name, resource->packed.value().size(), ":",
                      resource->packed.value());
      names.insert(name);
    }
    if (!force && !subscriptions_.Differs(type_url, content)) return;
    sent_names_[type_url] = std::move(names);
    std::string version = absl::StrCat(snapshot.version());
    response.set_version_info(version);
    response.set_nonce(subscriptions_.RecordSent(type_url, version, std::move(content)));
    PHX_LOG(kDebug, "phoenix-cp: node ", node_id_, ": sending ", TypeNameOf(type_url), " version ",
            version, " (", response.resources_size(), " resources, nonce ", response.nonce(), ")");
    pending_.push_back(std::move(response));
  }

  static std::string TypeNameOf(const std::string& type_url) {
    size_t dot = type_url.rfind('.');
    return dot == std::string::npos ? type_url : type_url.substr(dot + 1);
  }

  void MaybeStartWrite() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (writing_ || finished_ || pending_.empty()) return;
      writing_ = true;
      in_flight_ = std::move(pending_.front());
      pending_.pop_front();
    }
    StartWrite(&in_flight_);
  }

  // Finishes once the proxy has closed its side (or a write failed) and no write is out.
  void MaybeFinish() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_ || !read_closed_ || writing_) return;
      finished_ = true;
    }
    Finish(grpc::Status::OK);  // OnDone may run at once: `this` is not touched after.
  }

  AdsService& service_;
  const std::string peer_;
  const Principal principal_;
  const absl::Time connected_since_;
  grpc::Status refusal_;      // Set when the first request asks for a node not its own.
  DiscoveryRequest request_;  // Only the read path touches it, one read at a time.
  std::mutex mu_;
  bool node_known_ = false;
  std::string node_id_;
  StreamSubscriptions subscriptions_;
  NodeIdentity node_;  // From the first request: picks the scoped resources it gets.
  // Per type URL, the names of the resources last sent (to push removals last).
  std::map<std::string, std::set<std::string>> sent_names_;
  std::deque<DiscoveryResponse> pending_;
  DiscoveryResponse in_flight_;
  bool writing_ = false;
  bool read_closed_ = false;
  bool finished_ = false;
};

// A stream refused before its first read (no principal with a node role): ends at once
// with why.
class RefusedStream : public grpc::ServerBidiReactor<DiscoveryRequest, DiscoveryResponse> {
 public:
  explicit RefusedStream(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

grpc::ServerBidiReactor<DiscoveryRequest, DiscoveryResponse>* AdsService::StreamAggregatedResources(
    grpc::CallbackServerContext* context) {
  Authenticator open(std::nullopt);
  auto principal = (auth_ ? auth_ : &open)->ForNode(CredentialsOf(*context));
  if (!principal.ok()) {
    PHX_LOG(kWarn, "phoenix-cp: refused a stream from ", context->peer(), ": ",
            principal.status().message());
    return new RefusedStream(grpc::Status(static_cast<grpc::StatusCode>(principal.status().code()),
                                          std::string(principal.status().message())));
  }
  return new AdsStream(*this, context->peer(), *std::move(principal));
}

std::vector<ProxyStatus> AdsService::Proxies() {
  std::vector<ProxyStatus> proxies;
  {
    std::lock_guard<std::mutex> lock(streams_mu_);
    for (AdsStream* stream : streams_) {
      ProxyStatus status;
      if (stream->Status(status)) proxies.push_back(std::move(status));
    }
  }
  std::sort(proxies.begin(), proxies.end(), [](const ProxyStatus& a, const ProxyStatus& b) {
    return std::tie(a.node_id, a.peer) < std::tie(b.node_id, b.peer);
  });
  return proxies;
}

void AdsService::Publish(std::shared_ptr<const ResourceSnapshot> snapshot) {
  {
    std::lock_guard<std::mutex> lock(snapshot_mu_);
    snapshot_ = snapshot;
  }
  std::lock_guard<std::mutex> lock(streams_mu_);
  for (AdsStream* stream : streams_) stream->Push(*snapshot);
}

AdsServer::AdsServer(std::shared_ptr<const ResourceSnapshot> initial, const Authenticator* auth)
    : service_(std::make_unique<AdsService>(std::move(initial), auth)) {}

AdsServer::~AdsServer() { Shutdown(); }

absl::StatusOr<int> AdsServer::Start(const std::string& address,
                                     std::shared_ptr<grpc::ServerCredentials> credentials,
                                     const std::vector<grpc::Service*>& also_serve) {
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, std::move(credentials), &port);
  builder.RegisterService(service_.get());
  for (grpc::Service* service : also_serve) builder.RegisterService(service);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port == 0) {
    server_.reset();
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address));
  }
  return port;
}

void AdsServer::Publish(std::shared_ptr<const ResourceSnapshot> snapshot) {
  service_->Publish(std::move(snapshot));
}

std::vector<ProxyStatus> AdsServer::Proxies() const { return service_->Proxies(); }

void AdsServer::Shutdown() {
  if (server_ == nullptr) return;
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server_->Wait();
  server_.reset();
}

}  // namespace phoenix::control_plane
