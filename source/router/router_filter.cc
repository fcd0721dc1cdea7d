#include "source/router/router_filter.h"

#include "absl/strings/str_cat.h"
#include "phoenix/config/v1/listener.pb.h"
#include "source/common/logging.h"
#include "source/http/filter_registry.h"
#include "source/http/grpc.h"
#include "source/router/route_table.h"

namespace phoenix::router {
namespace {

int RedirectStatus(config::v1::RedirectAction::RedirectResponseCode code) {
  switch (code) {
    case config::v1::RedirectAction::FOUND:
      return 302;
    case config::v1::RedirectAction::SEE_OTHER:
      return 303;
    case config::v1::RedirectAction::TEMPORARY_REDIRECT:
      return 307;
    case config::v1::RedirectAction::PERMANENT_REDIRECT:
      return 308;
    default:
      return 301;
  }
}

class RouterFilterFactory : public http::FilterFactory {
 public:
  std::unique_ptr<http::StreamFilter> Create() const override {
    return std::make_unique<RouterFilter>();
  }
};

}  // namespace

void RegisterRouterFilter() {
  http::FilterRegistry::Register(
      RouterFilter::kName,
      [](const google::protobuf::Any& typed_config, const http::FilterFactoryContext&,
         const std::string& path, config::ConfigErrors& errors) -> http::FilterFactoryPtr {
        if (!typed_config.type_url().empty() && !typed_config.Is<config::v1::Router>()) {
          errors.Add(path, "the router takes typed_config of type phoenix.config.v1.Router");
          return nullptr;
        }
        return std::make_shared<RouterFilterFactory>();
      },
      /*terminal=*/true);
}

RouterFilter::~RouterFilter() { OnDestroy(); }

http::FilterStatus RouterFilter::DecodeHeaders(http::RequestHeaders& headers, bool end_stream) {
  route_ = RouteEntry::From(callbacks_->route());
  if (route_ == nullptr) {
    callbacks_->SendLocalReply(404, "", "NR");
    return http::FilterStatus::kStop;
  }
  if (route_->action == RouteEntry::Action::kDirectResponse ||
      route_->action == RouteEntry::Action::kRedirect) {
    AnswerLocally(*route_, headers);
    return http::FilterStatus::kStop;
  }
  const std::string& cluster_name = route_->PickCluster([this] { return callbacks_->Random(); });
  cluster_ = upstream::ClusterManager::ForThisThread()->Get(cluster_name);
  if (cluster_ == nullptr) {
    callbacks_->SendLocalReply(503, "no cluster\n", "NC");
    return http::FilterStatus::kStop;
  }
  if (!headers.upgrade.empty() && cluster_->info().http2()) {
    // An upgrade over HTTP/2 needs extended CONNECT (RFC 8441), which is not implemented.
    callbacks_->SendLocalReply(403, "upgrade not supported by the upstream\n", "");
    return http::FilterStatus::kStop;
  }
  route_->virtual_host->request_mutations.Apply(headers.headers);
  route_->request_mutations.Apply(headers.headers);
  route_->RewriteRequest(headers);
  request_ = &headers;
  request_end_ = end_stream;
  request_has_body_ = !end_stream;
  retries_left_ = route_->retry.num_retries;
  keep_body_for_retry_ = route_->retry.enabled();
  const std::string_view* grpc_timeout = nullptr;
  std::optional<std::chrono::milliseconds> deadline;
  if (route_->grpc_timeout_header && http::IsGrpcRequest(headers) &&
      (grpc_timeout = headers.headers.Get("grpc-timeout")) != nullptr &&
      (deadline = http::ParseGrpcTimeout(*grpc_timeout))) {
    // The client's own deadline: a duration per request, so a timer rather than a queue.
    std::chrono::milliseconds timeout = *deadline;
    if (route_->grpc_timeout_max.count() > 0) timeout = std::min(timeout, route_->grpc_timeout_max);
    request_timer_ = callbacks_->dispatcher().CreateTimer([this] { OnRouteTimeout(); });
    request_timer_->Enable(std::max(timeout, std::chrono::milliseconds(1)));
  } else if (route_->timeout.count() > 0) {
    callbacks_->dispatcher().TimeoutQueueFor(route_->timeout).Arm(route_timeout_);
  }
  if (route_->max_stream_duration.count() > 0) {
    stream_timer_ = callbacks_->dispatcher().CreateTimer([this] { OnMaxStreamDuration(); });
    stream_timer_->Enable(route_->max_stream_duration);
  }
  StartAttempt();
  return http::FilterStatus::kStop;
}

void RouterFilter::StartAttempt() {
  host_ = cluster_->ChooseHost(failed_hosts_);
  if (host_ == nullptr) {
    done_ = true;
    callbacks_->SendLocalReply(503, "no healthy upstream\n", "UH");
    return;
  }
  if (!cluster_->BeginRequest(*host_)) {
    Overflow();
    return;
  }
  ++attempts_;
  callbacks_->stream_info().upstream_host = host_->address_string();
  if (route_->retry.enabled()) {
    request_->headers.Set("x-phoenix-attempt-count", absl::StrCat(attempts_));
  }
  attempt_start_us_ = callbacks_->dispatcher().time_source().MonotonicUs();
  attempt_active_ = true;
  if (route_->retry.per_try_timeout.count() > 0) {
    per_try_timer_ = callbacks_->dispatcher().CreateTimer(
        [this] { OnAttemptFailed(AttemptFailure::kPerTryTimeout); });
    per_try_timer_->Enable(route_->retry.per_try_timeout);
  }
  pool_ = &cluster_->PoolFor(*host_);
  waiting_for_pool_ = true;
  pool_->NewStream(upstream_, upstream_);
}

void RouterFilter::Overflow() {
  // A breaker is open: answer at once, without touching the upstream.
  cluster_->OnOverflow();
  done_ = true;
  DisarmTimeouts();
  retry_timer_.reset();
  if (attempts_ > 1) callbacks_->stream_info().AddFlag("URX");
  http::HeaderMap headers;
  headers.Add("x-phoenix-overloaded", "true");
  callbacks_->SendLocalReply(503, "overloaded\n", "UO", &headers);
}

void RouterFilter::AnswerLocally(const RouteEntry& route, const http::RequestHeaders& headers) {
  if (route.action == RouteEntry::Action::kDirectResponse) {
    auto response = std::make_unique<http::ResponseHeaders>();
    response->status = static_cast<int>(route.direct_status);
    if (!route.direct_body.empty()) response->headers.Add("content-type", "text/plain");
    response->headers.Add("content-length", absl::StrCat(route.direct_body.size()));
    route.virtual_host->response_mutations.Apply(response->headers);
    route.response_mutations.Apply(response->headers);
    bool empty = route.direct_body.empty();
    callbacks_->EncodeHeaders(std::move(response), empty);
    if (!empty) callbacks_->EncodeData(route.direct_body, true);
    return;
  }
  auto response = std::make_unique<http::ResponseHeaders>();
  response->status = RedirectStatus(route.redirect.response_code());
  response->headers.Add("location", route.RedirectLocation(headers));
  response->headers.Add("content-length", "0");
  callbacks_->EncodeHeaders(std::move(response), true);
}

http::FilterStatus RouterFilter::DecodeData(std::string_view data, bool end_stream) {
  if (done_) return http::FilterStatus::kStop;
  request_end_ = end_stream;
  if (keep_body_for_retry_ && body_.size() + data.size() > route_->retry.max_buffered_body_bytes) {
    // Too long to replay: this request will not be retried, and its body is never cut.
    keep_body_for_retry_ = false;
    if (encoder_ != nullptr) body_.clear();
  }
  if (encoder_ != nullptr) {
    encoder_->EncodeData(data, end_stream);
    if (keep_body_for_retry_) body_.append(data);
    return http::FilterStatus::kStop;
  }
  body_.append(data);
  // Hold the client back until an upstream connection is up.
  if (!downstream_read_disabled_ && body_.size() > 64 * 1024) {
    downstream_read_disabled_ = true;
    callbacks_->ReadDisableDownstream(true);
  }
  return http::FilterStatus::kStop;
}

http::FilterStatus RouterFilter::DecodeTrailers(http::HeaderMap& trailers) {
  if (done_) return http::FilterStatus::kStop;
  request_end_ = true;
  trailers_ = std::make_unique<http::HeaderMap>(std::move(trailers));
  if (encoder_ != nullptr) encoder_->EncodeTrailers(*trailers_);
  return http::FilterStatus::kStop;
}

void RouterFilter::OnPoolReady(http::RequestEncoder& encoder) {
  waiting_for_pool_ = false;
  encoder_ = &encoder;
  encoder.stream().SetCallbacks(&upstream_);
  bool more = !body_.empty() || trailers_ != nullptr;
  encoder.EncodeHeaders(*request_, request_end_ && !more);
  if (encoder_ == nullptr) return;  // Reset as it was sent (the attempt has failed).
  SendRequestBody();
  if (downstream_read_disabled_) {
    downstream_read_disabled_ = false;
    callbacks_->ReadDisableDownstream(false);
  }
}

void RouterFilter::SendRequestBody() {
  if (!body_.empty()) {
    encoder_->EncodeData(body_, request_end_ && trailers_ == nullptr);
    if (!keep_body_for_retry_) {
      body_.clear();
      body_.shrink_to_fit();
    }
  }
  if (trailers_ != nullptr && request_end_) encoder_->EncodeTrailers(*trailers_);
}

void RouterFilter::OnPoolFailure(upstream::PoolCallbacks::Failure failure) {
  waiting_for_pool_ = false;
  if (failure == upstream::PoolCallbacks::Failure::kOverflow) {
    EndAttempt(/*reusable=*/false);
    Overflow();
    return;
  }
  if (failure == upstream::PoolCallbacks::Failure::kTimeout) {
    cluster_->info().stats().upstream_cx_connect_timeout.Inc();
  }
  OnAttemptFailed(AttemptFailure::kConnect);
}

void RouterFilter::OnUpstreamHeaders(http::ResponseHeadersPtr headers, bool end_stream) {
  if (done_ || !attempt_active_) return;
  int status = headers->status;
  cluster_->ReportResponse(*host_, status);
  if (CanRetry(AttemptFailure::kStatus, status)) {
    OnAttemptFailed(AttemptFailure::kStatus, status);
    return;
  }
  if (end_stream && route_->retry.grpc_statuses != 0) {
    // A Trailers-Only gRPC response carries its status in the head: still retriable.
    std::optional<int> grpc_status = http::GrpcStatusOf(headers->headers);
    if (grpc_status && route_->retry.RetriableGrpcStatus(*grpc_status) &&
        CanRetry(AttemptFailure::kGrpcStatus, status)) {
      OnAttemptFailed(AttemptFailure::kGrpcStatus, status);
      return;
    }
  }
  response_started_ = true;
  per_try_timer_.reset();
  if (status == 101) {
    // A tunnel lasts as long as its peers want: the route timeout, meant for a response,
    // stops here; stream_idle_timeout and max_stream_duration still apply. Nothing can be
    // retried any more, so no body is kept for it.
    route_timeout_.Disarm();
    request_timer_.reset();
    keep_body_for_retry_ = false;
    body_.clear();
  }
  route_->virtual_host->response_mutations.Apply(headers->headers);
  route_->response_mutations.Apply(headers->headers);
  if (end_stream) Finish();
  callbacks_->EncodeHeaders(std::move(headers), end_stream);
}

void RouterFilter::OnUpstreamData(std::string_view data, bool end_stream) {
  if (done_) return;
  if (end_stream) Finish();
  callbacks_->EncodeData(data, end_stream);
}

void RouterFilter::OnUpstreamTrailers(http::HeaderMap trailers) {
  if (done_) return;
  Finish();
  callbacks_->EncodeTrailers(std::move(trailers));
}

void RouterFilter::OnUpstreamReset(http::StreamResetReason reason) {
  encoder_ = nullptr;  // The stream is gone (with its connection, for HTTP/1).
  switch (reason) {
    case http::StreamResetReason::kProtocolError:
      OnAttemptFailed(AttemptFailure::kProtocol);
      return;
    case http::StreamResetReason::kRemoteRefusedStreamReset:
      OnAttemptFailed(AttemptFailure::kRefused);
      return;
    default:
      OnAttemptFailed(AttemptFailure::kReset);
      return;
  }
}

bool RouterFilter::CanRetry(AttemptFailure failure, int status) const {
  const RetryConfig& retry = route_->retry;
  if (response_started_ || done_) return false;
  // A body that could not be kept cannot be replayed.
  if (request_has_body_ && !keep_body_for_retry_) return false;
  // The upstream never processed a refused stream: sending it again is always safe, and done
  // once even without a retry policy (an HTTP/2 connection's GOAWAY races new streams).
  if (failure == AttemptFailure::kRefused && !refused_retry_used_) return true;
  if (retries_left_ == 0) return false;
  switch (failure) {
    case AttemptFailure::kRefused:
      return retry.on_reset || retry.on_gateway_error || retry.on_5xx;
    case AttemptFailure::kGrpcStatus:
      return true;  // The caller checked the status against the policy.
    case AttemptFailure::kConnect:
      return retry.on_connect_failure || retry.on_gateway_error || retry.on_5xx;
    case AttemptFailure::kReset:
    case AttemptFailure::kPerTryTimeout:
      return retry.on_reset || retry.on_gateway_error || retry.on_5xx;
    case AttemptFailure::kProtocol:
      return retry.on_gateway_error || retry.on_5xx;
    case AttemptFailure::kStatus:
      return retry.RetriableStatus(status);
  }
  return false;
}

void RouterFilter::OnAttemptFailed(AttemptFailure failure, int status) {
  if (done_) return;
  bool answered = failure == AttemptFailure::kStatus || failure == AttemptFailure::kGrpcStatus;
  if (!answered && failure != AttemptFailure::kRefused) cluster_->ReportFailure(*host_);
  bool retry = CanRetry(failure, status);
  EndAttempt(/*reusable=*/false);
  if (retry && !cluster_->BeginRetry()) retry = false;
  if (retry) {
    holds_retry_slot_ = true;
    if (failure == AttemptFailure::kRefused && !refused_retry_used_) {
      refused_retry_used_ = true;
    } else {
      --retries_left_;
    }
    failed_hosts_.push_back(host_);
    // Full jitter: a random wait up to the exponential bound.
    const RetryConfig& config = route_->retry;
    uint64_t bound = std::min<uint64_t>(
        config.max_interval.count(), config.base_interval.count() << std::min(attempts_ - 1, 20u));
    auto delay = std::chrono::milliseconds(callbacks_->Random() % (bound + 1));
    retry_timer_ = callbacks_->dispatcher().CreateTimer([this] { StartAttempt(); });
    retry_timer_->Enable(delay);
    return;
  }
  std::string_view flag;
  int reply = 503;
  std::string_view body = "upstream connection reset\n";
  switch (failure) {
    case AttemptFailure::kConnect:
      flag = "UF";
      body = "upstream connect error\n";
      break;
    case AttemptFailure::kReset:
    case AttemptFailure::kRefused:
      flag = "UC";
      break;
    case AttemptFailure::kProtocol:
      flag = "UPE";
      reply = 502;
      body = "upstream protocol error\n";
      break;
    case AttemptFailure::kPerTryTimeout:
      flag = "UT";
      reply = 504;
      body = "upstream request timeout\n";
      break;
    case AttemptFailure::kStatus:
    case AttemptFailure::kGrpcStatus:
      break;  // Not reached: a non-retried status is forwarded, not failed.
  }
  done_ = true;
  DisarmTimeouts();
  if (attempts_ > 1) callbacks_->stream_info().AddFlag("URX");
  if (response_started_) {
    callbacks_->stream_info().AddFlag(flag);
    callbacks_->ResetStream();
  } else {
    callbacks_->SendLocalReply(reply, body, flag);
  }
}

void RouterFilter::OnRouteTimeout() { EndOnTimeout("UT", "upstream request timeout\n"); }

void RouterFilter::OnMaxStreamDuration() { EndOnTimeout("UMSDR", "max stream duration reached\n"); }

void RouterFilter::EndOnTimeout(std::string_view flag, std::string_view body) {
  if (done_) return;
  EndAttempt(/*reusable=*/false);
  done_ = true;
  retry_timer_.reset();
  DisarmTimeouts();
  if (response_started_) {
    callbacks_->stream_info().AddFlag(flag);
    callbacks_->ResetStream();
  } else {
    callbacks_->SendLocalReply(504, body, flag);
  }
}

void RouterFilter::DisarmTimeouts() {
  route_timeout_.Disarm();
  request_timer_.reset();
  stream_timer_.reset();
}

void RouterFilter::OnUpstreamWatermark(bool above) {
  // The upstream cannot take the request body as fast as the client sends it.
  if (downstream_read_disabled_ == above) return;
  downstream_read_disabled_ = above;
  callbacks_->ReadDisableDownstream(above);
}

void RouterFilter::OnDownstreamAboveWriteBufferHighWatermark() {
  if (encoder_ != nullptr) encoder_->stream().ReadDisable(true);
}

void RouterFilter::OnDownstreamBelowWriteBufferLowWatermark() {
  if (encoder_ != nullptr) encoder_->stream().ReadDisable(false);
}

void RouterFilter::Finish() {
  EndAttempt(/*reusable=*/true);
  done_ = true;
  DisarmTimeouts();
  retry_timer_.reset();
}

void RouterFilter::EndAttempt(bool reusable) {
  if (!attempt_active_) return;
  attempt_active_ = false;
  per_try_timer_.reset();
  if (waiting_for_pool_ && pool_ != nullptr) {
    pool_->Cancel(upstream_);
    waiting_for_pool_ = false;
  }
  if (holds_retry_slot_ && attempts_ > 1) {
    // The retry this attempt was has ended.
    holds_retry_slot_ = false;
    cluster_->EndRetry();
  }
  cluster_->EndRequest(
      *host_, (callbacks_->dispatcher().time_source().MonotonicUs() - attempt_start_us_) / 1000.0);
  if (encoder_ != nullptr) {
    http::Stream& stream = encoder_->stream();
    encoder_ = nullptr;
    stream.SetCallbacks(nullptr);
    // A complete exchange hands its connection back by itself; anything else is reset.
    if (!reusable) stream.ResetStream();
  }
}

void RouterFilter::OnDestroy() {
  // The downstream went away (or the stream ended): an unfinished upstream exchange cannot be
  // reused.
  EndAttempt(/*reusable=*/false);
  if (holds_retry_slot_) {  // A retry was scheduled but never started.
    holds_retry_slot_ = false;
    cluster_->EndRetry();
  }
  done_ = true;
  DisarmTimeouts();
  retry_timer_.reset();
}

}  // namespace phoenix::router
