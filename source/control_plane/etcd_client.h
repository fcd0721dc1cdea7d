#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "etcd/etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace phoenix::control_plane {

// etcd's v3 KV API over gRPC (plain HTTP/2) for the etcd store: each call has a deadline and
// goes to the endpoint that answered last, then to the others in turn when it cannot be
// reached, so one etcd member down is no failure. Thread-safe.
class EtcdClient {
 public:
  // `endpoints`: "http://host:port" (or "host:port"); INVALID_ARGUMENT for an https:// one or
  // an empty list.
  static absl::StatusOr<std::unique_ptr<EtcdClient>> Create(
      const std::vector<std::string>& endpoints, std::chrono::milliseconds timeout);

  absl::StatusOr<etcdserverpb::RangeResponse> Range(const etcdserverpb::RangeRequest& request);
  absl::StatusOr<etcdserverpb::PutResponse> Put(const etcdserverpb::PutRequest& request);
  absl::StatusOr<etcdserverpb::TxnResponse> Txn(const etcdserverpb::TxnRequest& request);

  const std::vector<std::string>& endpoints() const { return endpoints_; }

  // A new channel to `endpoint` (valid, as Create checked), with its own connection: a
  // channel that failed to connect was seen to keep failing for a long while after etcd came
  // up, so a call that finds etcd unreachable drops its channel and the next one starts anew.
  static std::shared_ptr<grpc::Channel> NewChannel(const std::string& endpoint);

 private:
  EtcdClient(std::vector<std::string> endpoints, std::chrono::milliseconds timeout);

  // Calls `call(stub, context)` on the preferred endpoint, then on the others while the
  // failure is one of reaching etcd (UNAVAILABLE, DEADLINE_EXCEEDED).
  template <typename Call>
  absl::Status Try(const char* what, Call call);

  const std::vector<std::string> endpoints_;
  const std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::vector<std::shared_ptr<etcdserverpb::KV::Stub>> stubs_;  // Per endpoint; mu_.
  size_t preferred_ = 0;                                        // Guarded by mu_.
};

// "http://127.0.0.1:2379,http://10.0.0.2:2379" -> its endpoints.
std::vector<std::string> SplitEndpoints(const std::string& list);

}  // namespace phoenix::control_plane
