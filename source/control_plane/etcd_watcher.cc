#include "source/control_plane/etcd_watcher.h"

#include <algorithm>

#include "etcd/etcdserverpb/rpc.grpc.pb.h"
#include "source/common/logging.h"
#include "source/control_plane/etcd_client.h"

namespace phoenix::control_plane {
namespace {

constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{5000};

}  // namespace

EtcdWatcher::EtcdWatcher(std::vector<std::string> endpoints, std::string key, std::string range_end,
                         std::function<void()> on_change)
    : endpoints_(std::move(endpoints)),
      key_(std::move(key)),
      range_end_(std::move(range_end)),
      on_change_(std::move(on_change)),
      thread_([this] { Run(); }) {}

EtcdWatcher::~EtcdWatcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    if (context_ != nullptr) context_->TryCancel();
  }
  stop_cv_.notify_all();
  thread_.join();
}

bool EtcdWatcher::Wait(std::chrono::milliseconds delay) {
  std::unique_lock<std::mutex> lock(mu_);
  return !stop_cv_.wait_for(lock, delay, [this] { return stopping_; });
}

void EtcdWatcher::Run() {
  std::chrono::milliseconds backoff = kFirstBackoff;
  size_t at = 0;
  bool lost = false;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    if (lost) PHX_LOG(kInfo, "phoenix-cp: etcd watch: trying ", endpoints_[at]);
    bool established = WatchOnce(at);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    if (established) backoff = kFirstBackoff;
    lost = true;
    at = (at + 1) % endpoints_.size();
    if (!Wait(backoff)) return;
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

bool EtcdWatcher::WatchOnce(size_t at) {
  auto stub = etcdserverpb::Watch::NewStub(EtcdClient::NewChannel(endpoints_[at]));
  grpc::ClientContext context;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    context_ = &context;
  }
  auto stream = stub->Watch(&context);
  etcdserverpb::WatchRequest request;
  request.mutable_create_request()->set_key(key_);
  request.mutable_create_request()->set_range_end(range_end_);
  bool established = false;
  if (stream->Write(request)) {
    etcdserverpb::WatchResponse response;
    while (stream->Read(&response)) {
      if (response.canceled()) {
        PHX_LOG(kWarn, "phoenix-cp: etcd watch canceled by ", endpoints_[at], ": ",
                response.cancel_reason());
        context.TryCancel();
        break;
      }
      if (response.created()) {
        established = true;
        PHX_LOG(kInfo, "phoenix-cp: watching etcd at ", endpoints_[at]);
        on_change_();  // What changed before the watch began is read now.
        continue;
      }
      if (response.events_size() > 0) on_change_();
    }
  }
  stream->WritesDone();
  grpc::Status status = stream->Finish();
  {
    std::lock_guard<std::mutex> lock(mu_);
    context_ = nullptr;
    if (stopping_) return established;
  }
  PHX_LOG(kWarn, "phoenix-cp: etcd watch on ", endpoints_[at], " lost (",
          status.ok() ? std::string("stream ended") : status.error_message(),
          "); still serving what it has, reconnecting");
  return established;
}

}  // namespace phoenix::control_plane
