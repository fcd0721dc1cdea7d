#include "source/control_plane/etcd_client.h"

#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "source/common/logging.h"

namespace phoenix::control_plane {
namespace {

// "http://host:port" -> "host:port" (gRPC's target); nullopt for what we cannot reach.
std::optional<std::string> TargetOf(const std::string& endpoint) {
  if (absl::StartsWith(endpoint, "https://")) return std::nullopt;
  std::string target = endpoint;
  if (absl::StartsWith(target, "http://")) target = target.substr(7);
  while (!target.empty() && target.back() == '/') target.pop_back();
  if (target.empty() || target.find('/') != std::string::npos) return std::nullopt;
  return target;
}

bool Unreachable(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
         status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

}  // namespace

std::vector<std::string> SplitEndpoints(const std::string& list) {
  return absl::StrSplit(list, ',', absl::SkipWhitespace());
}

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Create(
    const std::vector<std::string>& endpoints, std::chrono::milliseconds timeout) {
  if (endpoints.empty()) return absl::InvalidArgumentError("--etcd: no endpoint given");
  for (const std::string& endpoint : endpoints) {
    if (!TargetOf(endpoint)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--etcd: '", endpoint, "' is not http://HOST:PORT (TLS to etcd is not supported yet)"));
    }
  }
  return std::unique_ptr<EtcdClient>(new EtcdClient(endpoints, timeout));
}

std::shared_ptr<grpc::Channel> EtcdClient::NewChannel(const std::string& endpoint) {
  grpc::ChannelArguments args;
  // Its own connection, not one shared with other channels to the same address.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // Reconnect quickly once etcd is back (gRPC's default back-off reaches 120 s). The minimum
  // stays gRPC's: it is also how long one connection attempt may take.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  return grpc::CreateCustomChannel(*TargetOf(endpoint), grpc::InsecureChannelCredentials(), args);
}

EtcdClient::EtcdClient(std::vector<std::string> endpoints, std::chrono::milliseconds timeout)
    : endpoints_(std::move(endpoints)), timeout_(timeout) {
  for (const std::string& endpoint : endpoints_) {
    stubs_.push_back(etcdserverpb::KV::NewStub(NewChannel(endpoint)));
  }
}

template <typename Call>
absl::Status EtcdClient::Try(const char* what, Call call) {
  size_t first;
  std::vector<std::shared_ptr<etcdserverpb::KV::Stub>> stubs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    first = preferred_;
    stubs = stubs_;
  }
  grpc::Status status;
  std::vector<std::string> failures;
  for (size_t i = 0; i < stubs.size(); ++i) {
    size_t at = (first + i) % stubs.size();
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + timeout_);
    status = call(*stubs[at], &context);
    if (status.ok() || !Unreachable(status)) {
      std::lock_guard<std::mutex> lock(mu_);
      preferred_ = at;
      break;
    }
    failures.push_back(absl::StrCat(endpoints_[at], ": ", status.error_message()));
    std::lock_guard<std::mutex> lock(mu_);
    if (stubs_[at] == stubs[at]) {
      stubs_[at] = etcdserverpb::KV::NewStub(NewChannel(endpoints_[at]));
    }
  }
  if (status.ok()) return absl::OkStatus();
  if (Unreachable(status)) {
    return absl::UnavailableError(
        absl::StrCat("etcd unreachable (", absl::StrJoin(failures, "; "), ")"));
  }
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat("etcd ", what, ": ", status.error_message()));
}

absl::StatusOr<etcdserverpb::RangeResponse> EtcdClient::Range(
    const etcdserverpb::RangeRequest& request) {
  etcdserverpb::RangeResponse response;
  auto status = Try("range", [&](etcdserverpb::KV::Stub& stub, grpc::ClientContext* context) {
    return stub.Range(context, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<etcdserverpb::PutResponse> EtcdClient::Put(const etcdserverpb::PutRequest& request) {
  etcdserverpb::PutResponse response;
  auto status = Try("put", [&](etcdserverpb::KV::Stub& stub, grpc::ClientContext* context) {
    return stub.Put(context, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<etcdserverpb::TxnResponse> EtcdClient::Txn(const etcdserverpb::TxnRequest& request) {
  etcdserverpb::TxnResponse response;
  auto status = Try("txn", [&](etcdserverpb::KV::Stub& stub, grpc::ClientContext* context) {
    return stub.Txn(context, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

}  // namespace phoenix::control_plane
