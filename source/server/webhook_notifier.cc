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
      : parent_(parent), request_(std::move(request)) {
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
  auto post = std::make_unique<Post>(*this, *target_, timeout_, std::move(request));
  if (post->done()) return;  // Failed at once (Finish found nothing to remove).
  Post* key = post.get();
  in_flight_.emplace(key, std::move(post));
}

void WebhookNotifier::Finish(Post* post, bool ok, std::string_view why) {
  if (ok) {
    stats_.webhook_sent.Inc();
  } else {
    stats_.webhook_failed.Inc();
    PHX_LOG(kWarn, "overload webhook ", target_ ? target_->url : std::string(), ": ",
            AbslView(why));
  }
  auto it = in_flight_.find(post);
  if (it == in_flight_.end()) return;
  dispatcher_.DeferredDelete(std::move(it->second));
  in_flight_.erase(it);
}

}  // namespace phoenix::server
