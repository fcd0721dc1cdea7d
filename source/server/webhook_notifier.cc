#include "source/server/webhook_notifier.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "source/common/logging.h"
#include "source/common/strings.h"
#include "source/network/raw_buffer_socket.h"
#include "source/network/tcp_connection.h"

namespace phoenix::server {

// One POST: connect, write, read the status line, close. Ends (Finish) on the status line, a
// failure, or the timeout, whichever comes first.
class WebhookNotifier::Post : public network::ConnectionCallbacks {
 public:
  Post(WebhookNotifier& parent, const config::WebhookTarget& target,
       std::chrono::milliseconds timeout, std::string request)
      : parent_(parent), url_(target.url), request_(std::move(request)) {
    timer_ = parent.dispatcher_.CreateTimer([this] { Done(false, "timed out"); });
    timer_->Enable(timeout);
    connection_ = network::TcpConnection::Connect(
        parent.dispatcher_, reinterpret_cast<const sockaddr*>(&target.address), timeout, 16 * 1024,
        this, std::make_unique<network::RawBufferSocket>());
  }
  ~Post() override {
    if (connection_ != nullptr) connection_->Close();
  }

  void OnData(const char* data, size_t length) override {
    if (response_.size() < kMaxStatusLine) {
      response_.append(data, std::min(length, kMaxStatusLine - response_.size()));
    }
    size_t end = response_.find("\r\n");
    if (end == std::string::npos) {
      if (response_.size() >= kMaxStatusLine) Done(false, "no status line");
      return;
    }
    // "HTTP/1.1 204 No Content"
    std::string_view line(response_.data(), end);
    bool ok = line.size() >= 12 && line.starts_with("HTTP/1.") && line[9] == '2';
    Done(ok, ok ? "" : absl::StrCat("answered '", AbslView(line), "'"));
  }
  void OnEvent(network::ConnectionEvent event) override {
    switch (event) {
      case network::ConnectionEvent::kConnected:
        static_cast<network::Connection&>(*connection_).Write(request_);
        break;
      case network::ConnectionEvent::kConnectFailed:
        Done(false, "connection refused");
        break;
      case network::ConnectionEvent::kConnectTimeout:
        Done(false, "connect timed out");
        break;
      case network::ConnectionEvent::kRemoteClose:
        Done(false, "closed before answering");
        break;
    }
  }

  bool done() const { return done_; }
  const std::string& url() const { return url_; }

 private:
  static constexpr size_t kMaxStatusLine = 256;

  void Done(bool ok, std::string why) {
    if (done_) return;
    done_ = true;
    timer_->Disable();
    if (connection_ != nullptr) connection_->Close();
    parent_.Finish(this, ok, why);
  }

  WebhookNotifier& parent_;
  std::string url_;
  std::string request_;
  std::string response_;
  std::unique_ptr<Timer> timer_;
  std::unique_ptr<network::TcpConnection> connection_;
  bool done_ = false;
};

WebhookNotifier::WebhookNotifier(Dispatcher& dispatcher, StatsStore& stats)
    : dispatcher_(dispatcher), stats_(StatsScope(stats, "overload.")) {}

WebhookNotifier::~WebhookNotifier() = default;

void WebhookNotifier::SetTarget(std::optional<config::WebhookTarget> target,
                                std::chrono::milliseconds timeout, std::string node_id) {
  target_ = std::move(target);
  timeout_ = timeout;
  node_id_ = std::move(node_id);
}

void WebhookNotifier::Notify(const OverloadEvent& event) {
  if (!target_) return;
  std::string body = absl::StrFormat(
      "{\"event\":\"%s\",\"resource\":\"%s\",\"value\":%.3f,\"threshold\":%.3f,"
      "\"node\":\"%s\",\"time_us\":%d}",
      AbslView(OverloadEventName(event.kind)), JsonEscape(event.resource), event.value,
      event.threshold, JsonEscape(node_id_), dispatcher_.time_source().SystemUs());
  std::string request = absl::StrCat(
      "POST ", target_->path, " HTTP/1.1\r\nHost: ", target_->host,
      "\r\nUser-Agent: phoenix\r\nContent-Type: application/json\r\nContent-Length: ", body.size(),
      "\r\nConnection: close\r\n\r\n", body);
  if (queued_.size() >= kMaxQueued) {
    stats_.webhook_failed.Inc();
    PHX_LOG(kWarn, "overload webhook ", target_->url, ": ", kMaxQueued,
            " events waiting already; this one is dropped");
    return;
  }
  queued_.push_back({std::move(request), *target_, timeout_});
  SendNext();
}

void WebhookNotifier::SendNext() {
  if (sending_) return;
  sending_ = true;
  while (in_flight_ == nullptr && !queued_.empty()) {
    Queued next = std::move(queued_.front());
    queued_.pop_front();
    auto post = std::make_unique<Post>(*this, next.target, next.timeout, std::move(next.request));
    if (!post->done()) in_flight_ = std::move(post);  // Else it failed at once: the next.
  }
  sending_ = false;
}

void WebhookNotifier::Finish(Post* post, bool ok, std::string_view why) {
  if (ok) {
    stats_.webhook_sent.Inc();
  } else {
    stats_.webhook_failed.Inc();
    PHX_LOG(kWarn, "overload webhook ", post->url(), ": ", AbslView(why));
  }
  if (in_flight_.get() != post) return;  // It failed inside SendNext, which goes on.
  dispatcher_.DeferredDelete(std::move(in_flight_));
  SendNext();
}

}  // namespace phoenix::server
