#include "source/config/ads_config_source.h"

#include <grpcpp/grpcpp.h>

#include <future>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "phoenix/service/discovery/v1/ads.grpc.pb.h"
#include "source/common/duration.h"
#include "source/common/logging.h"
#include "source/common/strings.h"
#include "source/config/grpc_channel_credentials.h"

namespace phoenix::config {
namespace {

using service::discovery::v1::AggregatedDiscoveryService;
using service::discovery::v1::DiscoveryRequest;
using service::discovery::v1::DiscoveryResponse;

std::optional<ResourceType> TypeOfUrl(std::string_view url) {
  for (ResourceType type : AdsConfigSource::SubscribedTypes()) {
    if (TypeUrl(type) == url) return type;
  }
  return std::nullopt;
}

// gRPC's INVALID_ARGUMENT: what a NACK says of a config it could not use.
constexpr int kInvalidArgument = 3;

}  // namespace

const std::vector<ResourceType>& AdsConfigSource::SubscribedTypes() {
  static const auto* types = new std::vector<ResourceType>{
      ResourceType::kSecret, ResourceType::kCluster, ResourceType::kClusterLoadAssignment,
      ResourceType::kRouteConfiguration, ResourceType::kListener};
  return *types;
}

AdsConfigSource::AdsConfigSource(Dispatcher& dispatcher, const v1::Node& node,
                                 const v1::ApiConfigSource& config)
    : dispatcher_(dispatcher),
      node_(node),
      base_interval_(
          ToMillisecondsOr(config.reconnect_base_interval(), std::chrono::milliseconds(500))),
      max_interval_(ToMillisecondsOr(config.reconnect_max_interval(), std::chrono::seconds(10))) {
  for (const auto& service : config.grpc_services()) {
    targets_.push_back(service.google_grpc().target_uri());
    google_grpc_.push_back(service.google_grpc());
    auto& metadata = metadata_.emplace_back();
    for (const auto& header : service.initial_metadata()) {
      metadata.emplace_back(header.key(), header.value());
    }
  }
}

AdsConfigSource::~AdsConfigSource() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    if (context_ != nullptr) context_->TryCancel();
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string AdsConfigSource::description() const {
  return absl::StrCat("ADS ", absl::StrJoin(targets_, ", "));
}

absl::Status AdsConfigSource::Start(ConfigUpdateCallbacks& callbacks) {
  callbacks_ = &callbacks;
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

bool AdsConfigSource::WaitFor(std::chrono::milliseconds delay) {
  std::unique_lock<std::mutex> lock(mutex_);
  return !stop_cv_.wait_for(lock, delay, [this] { return stopping_; });
}

void AdsConfigSource::Run() {
  std::minstd_rand random(std::random_device{}());
  std::chrono::milliseconds backoff = base_interval_;
  size_t next = 0;
  size_t failed_in_round = 0;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
    }
    bool worked = RunStream(google_grpc_[next], metadata_[next]);
    next = (next + 1) % targets_.size();  // Fail over to the next address.
    if (worked) {
      backoff = base_interval_;
      failed_in_round = 0;
      continue;
    }
    if (++failed_in_round < targets_.size()) continue;
    // A whole round failed: wait from half to all of the back-off, then double it.
    failed_in_round = 0;
    auto wait = backoff / 2 + std::chrono::milliseconds(random() % (backoff.count() / 2 + 1));
    PHX_LOG(kInfo, "ads: no control plane reachable; trying again in ", wait.count(), " ms");
    if (!WaitFor(wait)) return;
    backoff = std::min(backoff * 2, max_interval_);
  }
}

bool AdsConfigSource::RunStream(const v1::GrpcService::GoogleGrpc& google_grpc,
                                const std::vector<std::pair<std::string, std::string>>& metadata) {
  const std::string& target = google_grpc.target_uri();
  // Made at each connect: a rotated certificate file is used from the next one on.
  auto credentials = MakeChannelCredentials(google_grpc);
  if (!credentials.ok()) {
    PHX_LOG(kWarn, "ads: cannot connect to ", target, ": ", credentials.status().message());
    return false;
  }
  auto channel = grpc::CreateChannel(target, *credentials);
  auto stub = AggregatedDiscoveryService::NewStub(channel);
  grpc::ClientContext context;
  for (const auto& [key, value] : metadata) context.AddMetadata(key, value);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return false;
    context_ = &context;
  }
  auto stream = stub->StreamAggregatedResources(&context);
  bool first = true;
  bool subscribed = true;
  for (ResourceType type : SubscribedTypes()) {
    DiscoveryRequest request;
    if (first) *request.mutable_node() = node_;
    first = false;
    request.set_type_url(std::string(TypeUrl(type)));
    request.set_version_info(accepted_[request.type_url()]);
    if (!stream->Write(request)) {
      subscribed = false;
      break;
    }
  }
  bool received = false;
  DiscoveryResponse response;
  while (subscribed && stream->Read(&response)) {
    if (!received) PHX_LOG(kInfo, "ads: connected to ", target);
    received = true;
    // Applied on the main thread; this thread waits for the answer, unless stopping.
    auto answer = std::make_shared<std::promise<absl::Status>>();
    std::future<absl::Status> answered = answer->get_future();
    dispatcher_.Post([this, alive = std::weak_ptr<int>(alive_), answer, response] {
      answer->set_value(alive.expired() ? absl::CancelledError("shutting down") : Apply(response));
    });
    while (answered.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) break;
    }
    if (answered.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      context.TryCancel();  // Stopping: Finish must not wait for the control plane.
      break;
    }
    absl::Status status = answered.get();
    DiscoveryRequest request;
    request.set_type_url(response.type_url());
    request.set_response_nonce(response.nonce());
    if (status.ok()) {
      accepted_[response.type_url()] = response.version_info();
    } else {
      request.mutable_error_detail()->set_code(kInvalidArgument);
      request.mutable_error_detail()->set_message(std::string(status.message()));
    }
    request.set_version_info(accepted_[response.type_url()]);
    if (!stream->Write(request)) break;
  }
  // The stream has ended (or was cancelled above): Finish has the control plane's status,
  // e.g. why it refused this proxy.
  grpc::Status status = stream->Finish();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    context_ = nullptr;
    if (stopping_) return received;
  }
  PHX_LOG(kWarn, "ads: stream to ", target, received ? " ended: " : " failed: ",
          status.error_message().empty() ? "closed" : status.error_message());
  return received;
}

absl::Status AdsConfigSource::Apply(const DiscoveryResponse& response) {
  std::optional<ResourceType> type = TypeOfUrl(response.type_url());
  if (!type.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported resource type ", response.type_url()));
  }
  ConfigUpdate update;
  ConfigUpdate::Resources& delivered = update.types[*type];
  delivered.version = response.version_info();
  delivered.resources.assign(response.resources().begin(), response.resources().end());
  for (const auto& resource : delivered.resources) {
    if (resource.type_url() != response.type_url()) {
      return absl::InvalidArgumentError(absl::StrCat("a resource of type ", resource.type_url(),
                                                     " in a response of ", response.type_url()));
    }
  }
  absl::Status answer = callbacks_->OnConfigUpdate(update);
  TypeStatus& status = status_[*type];
  if (answer.ok()) {
    status = {response.version_info(), "", "",
              absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone())};
    PHX_LOG(kInfo, "ads: ", AbslView(TypeName(*type)), " version ", response.version_info(),
            " applied (", delivered.resources.size(), " resources)");
  } else {
    status.rejected_version = response.version_info();
    status.last_error = std::string(answer.message());
    PHX_LOG(kError, "ads: ", AbslView(TypeName(*type)), " version ", response.version_info(),
            " rejected: ", answer.message());
  }
  return answer;
}

}  // namespace phoenix::config
