#include "source/router/router_filter.h"

#include <uv.h>

#include "absl/strings/str_cat.h"
#include "phoenix/config/v1/listener.pb.h"
#include "source/common/logging.h"
#include "source/http/filter_registry.h"
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
  route_ = callbacks_->route();
  if (route_ == nullptr) {
    callbacks_->SendLocalReply(404, "", "NR");
    return http::FilterStatus::kStop;
  }
  if (route_->action == RouteEntry::Action::kDirectResponse ||
      route_->action == RouteEntry::Action::kRedirect) {
    AnswerLocally(*route_, headers);
    return http::FilterStatus::kStop;
  }
  const std::string& cluster_name = route_->PickCluster(callbacks_->Random());
  cluster_ = callbacks_->cluster_manager().Get(cluster_name);
  if (cluster_ == nullptr) {
    callbacks_->SendLocalReply(503, "no cluster\n", "NC");
    return http::FilterStatus::kStop;
  }
  host_ = cluster_->load_balancer().Choose();
  if (host_ == nullptr) {
    callbacks_->SendLocalReply(503, "no healthy upstream\n", "UH");
    return http::FilterStatus::kStop;
  }
  route_->virtual_host->request_mutations.Apply(headers.headers);
  route_->request_mutations.Apply(headers.headers);
  route_->RewriteRequest(headers);
  request_ = &headers;
  request_end_ = end_stream;
  callbacks_->stream_info().upstream_host = host_->address_string();

  const auto& stats = cluster_->info().stats();
  stats.upstream_rq_total.Inc();
  stats.upstream_rq_active.Inc();
  host_->rq_total.fetch_add(1, std::memory_order_relaxed);
  host_->rq_active.fetch_add(1, std::memory_order_relaxed);
  upstream_start_us_ = uv_hrtime() / 1000;

  if (route_->timeout.count() > 0) {
    timeout_timer_ = callbacks_->dispatcher().CreateTimer([this] { OnRouteTimeout(); });
    timeout_timer_->Enable(route_->timeout);
  }
  pool_ = &cluster_->PoolFor(*host_);
  waiting_for_pool_ = true;
  if (upstream::UpstreamClient* client = pool_->NewStream(*this)) OnPoolReady(*client);
  return http::FilterStatus::kStop;
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
  if (client_ != nullptr) {
    client_->codec().EncodeData(data, end_stream);
    return http::FilterStatus::kStop;
  }
  pending_body_.append(data);
  // Hold the client back until the upstream connection is up.
  if (!downstream_read_disabled_ && pending_body_.size() > 64 * 1024) {
    downstream_read_disabled_ = true;
    callbacks_->ReadDisableDownstream(true);
  }
  return http::FilterStatus::kStop;
}

http::FilterStatus RouterFilter::DecodeTrailers(http::HeaderMap& trailers) {
  if (done_) return http::FilterStatus::kStop;
  request_end_ = true;
  if (client_ != nullptr) {
    client_->codec().EncodeTrailers(trailers);
  } else {
    pending_trailers_ = std::make_unique<http::HeaderMap>(std::move(trailers));
  }
  return http::FilterStatus::kStop;
}

void RouterFilter::OnPoolReady(upstream::UpstreamClient& client) {
  waiting_for_pool_ = false;
  client_ = &client;
  client.Attach(this);
  bool has_more = !pending_body_.empty() || pending_trailers_ != nullptr;
  client.codec().EncodeHeaders(*request_, request_end_ && !has_more);
  if (!pending_body_.empty()) {
    client.codec().EncodeData(pending_body_, request_end_ && pending_trailers_ == nullptr);
    pending_body_.clear();
    pending_body_.shrink_to_fit();
  }
  if (pending_trailers_ != nullptr) {
    client.codec().EncodeTrailers(*pending_trailers_);
    pending_trailers_.reset();
  }
  if (downstream_read_disabled_) {
    downstream_read_disabled_ = false;
    callbacks_->ReadDisableDownstream(false);
  }
}

void RouterFilter::OnPoolFailure(Failure failure) {
  waiting_for_pool_ = false;
  if (failure == Failure::kTimeout) cluster_->info().stats().upstream_cx_connect_timeout.Inc();
  OnUpstreamFailure(503, "upstream connect error\n", "UF");
}

void RouterFilter::OnResponseHeaders(http::ResponseHeadersPtr headers, bool end_stream) {
  if (done_) return;
  response_started_ = true;
  const auto& stats = cluster_->info().stats();
  int status = headers->status;
  if (status >= 100 && status < 600) stats.upstream_rq_class[status / 100 - 1]->Inc();
  if (status >= 500) host_->rq_error.fetch_add(1, std::memory_order_relaxed);
  route_->virtual_host->response_mutations.Apply(headers->headers);
  route_->response_mutations.Apply(headers->headers);
  if (end_stream) ReleaseUpstream(true);
  callbacks_->EncodeHeaders(std::move(headers), end_stream);
}

void RouterFilter::OnResponseData(std::string_view data, bool end_stream) {
  if (done_) return;
  if (end_stream) ReleaseUpstream(true);
  callbacks_->EncodeData(data, end_stream);
}

void RouterFilter::OnResponseTrailers(http::HeaderMap trailers) {
  if (done_) return;
  ReleaseUpstream(true);
  callbacks_->EncodeTrailers(std::move(trailers));
}

void RouterFilter::OnResponseProtocolError(std::string_view details) {
  OnUpstreamFailure(502, "upstream protocol error\n", "UPE");
}

void RouterFilter::OnUpstreamReset() {
  OnUpstreamFailure(503, "upstream connection reset\n", "UC");
}

void RouterFilter::OnUpstreamFailure(int status, std::string_view body, std::string_view flag) {
  if (done_) return;
  if (cluster_ != nullptr) cluster_->info().stats().upstream_rq_reset.Inc();
  if (host_ != nullptr) host_->rq_error.fetch_add(1, std::memory_order_relaxed);
  ReleaseUpstream(false);
  if (response_started_) {
    callbacks_->stream_info().AddFlag(flag);
    callbacks_->ResetStream();
  } else {
    callbacks_->SendLocalReply(status, body, flag);
  }
}

void RouterFilter::OnRouteTimeout() {
  if (done_) return;
  OnUpstreamFailure(504, "upstream request timeout\n", "UT");
}

void RouterFilter::OnUpstreamAboveWriteBufferHighWatermark() {
  if (!downstream_read_disabled_) {
    downstream_read_disabled_ = true;
    callbacks_->ReadDisableDownstream(true);
  }
}

void RouterFilter::OnUpstreamBelowWriteBufferLowWatermark() {
  if (downstream_read_disabled_) {
    downstream_read_disabled_ = false;
    callbacks_->ReadDisableDownstream(false);
  }
}

void RouterFilter::OnDownstreamAboveWriteBufferHighWatermark() {
  if (client_ != nullptr) client_->connection().ReadDisable(true);
}

void RouterFilter::OnDownstreamBelowWriteBufferLowWatermark() {
  if (client_ != nullptr) client_->connection().ReadDisable(false);
}

void RouterFilter::ReleaseUpstream(bool reusable) {
  if (done_) return;
  done_ = true;
  timeout_timer_.reset();
  if (waiting_for_pool_ && pool_ != nullptr) {
    pool_->Cancel(*this);
    waiting_for_pool_ = false;
  }
  if (host_ != nullptr) {
    host_->rq_active.fetch_sub(1, std::memory_order_relaxed);
    const auto& stats = cluster_->info().stats();
    stats.upstream_rq_active.Dec();
    stats.upstream_rq_time.Record((uv_hrtime() / 1000 - upstream_start_us_) / 1000.0);
  }
  if (client_ != nullptr) {
    upstream::UpstreamClient* client = client_;
    client_ = nullptr;
    client->Attach(nullptr);
    if (!reusable) client->connection().Close();
    client->connection().ReadDisable(false);
    pool_->Release(*client);
  }
}

void RouterFilter::OnDestroy() {
  // The downstream went away (or the stream ended): an unfinished upstream exchange cannot
  // be reused.
  if (!done_ && host_ != nullptr) ReleaseUpstream(false);
  done_ = true;
}

}  // namespace phoenix::router
