#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "phoenix/config/v1/bootstrap.pb.h"
#include "phoenix/service/discovery/v1/ads.pb.h"
#include "source/common/dispatcher.h"
#include "source/config/config_source.h"

namespace grpc {
class ClientContext;
}

namespace phoenix::config {

// The xDS client: one ADS stream (state of the world) to the control plane named by the
// bootstrap's dynamic_resources.ads_config, delivering each response as an update of its type
// and answering it with an ACK (the new version) or a NACK (the version in force, plus the
// error). The stream runs on a thread of its own with gRPC's blocking API; each response is
// handed to the main thread's loop, where the update is applied, and the thread writes the
// answer. When the stream breaks it reconnects, moving to the next control-plane address, with
// exponential back-off and jitter between rounds, and resumes from the versions in force:
// meanwhile the proxy serves what it has.
class AdsConfigSource : public ConfigSource {
 public:
  AdsConfigSource(Dispatcher& dispatcher, const v1::Node& node, const v1::ApiConfigSource& config);
  ~AdsConfigSource() override;  // Ends the stream and joins its thread.

  // Starts the stream thread; updates arrive later, on `dispatcher`'s thread.
  absl::Status Start(ConfigUpdateCallbacks& callbacks) override;
  // Nothing to ask: the control plane pushes.
  absl::Status Refresh() override { return absl::OkStatus(); }
  bool dynamic() const override { return true; }
  std::map<ResourceType, TypeStatus> status() const override { return status_; }
  std::string description() const override;

  // The types it subscribes to, in the order it asks for them: what others refer to first.
  static const std::vector<ResourceType>& SubscribedTypes();

 private:
  // The stream thread: connect, subscribe, serve responses, back off, again.
  void Run();
  // One stream to the control plane at `google_grpc`; returns whether any response arrived
  // on it.
  bool RunStream(const v1::GrpcService::GoogleGrpc& google_grpc,
                 const std::vector<std::pair<std::string, std::string>>& metadata);
  // On the main thread: applies `response`; the answer is the ACK (OK) or NACK (error).
  absl::Status Apply(const service::discovery::v1::DiscoveryResponse& response);
  // Waits up to `delay` unless stopping; false if stopping.
  bool WaitFor(std::chrono::milliseconds delay);

  Dispatcher& dispatcher_;
  const v1::Node node_;
  std::vector<std::string> targets_;
  // Per target: its address and channel credentials.
  std::vector<v1::GrpcService::GoogleGrpc> google_grpc_;
  // Per target: the initial_metadata sent with its stream (a bearer token).
  std::vector<std::vector<std::pair<std::string, std::string>>> metadata_;
  std::chrono::milliseconds base_interval_;
  std::chrono::milliseconds max_interval_;
  ConfigUpdateCallbacks* callbacks_ = nullptr;
  // Main thread only.
  std::map<ResourceType, TypeStatus> status_;
  // Stream thread only: the version accepted per type URL, sent when subscribing again.
  std::map<std::string, std::string> accepted_;

  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;                   // Guarded by mutex_.
  grpc::ClientContext* context_ = nullptr;  // Of the stream in progress; guarded by mutex_.
  // Work posted to the main thread runs only while this lives.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace phoenix::config
