#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "source/common/dispatcher.h"
#include "source/common/stats.h"
#include "source/config/overload_config.h"
#include "source/server/overload_manager.h"

namespace phoenix::server {

#define PHX_WEBHOOK_STATS(COUNTER, GAUGE, HISTOGRAM)                          \
  COUNTER(webhook_sent, "Overload events the notice webhook answered 2xx to") \
  COUNTER(webhook_failed, "Overload events the notice webhook failed, refused or timed out")
struct WebhookStats {
  PHX_STATS(WebhookStats, PHX_WEBHOOK_STATS);
};

// Sends each overload event to the operator's webhook as an HTTP/1.1 POST of a small JSON
// object, on the main loop, one connection per event, one event at a time so that they arrive
// in order. Fire and forget: a failure is logged and counted, never retried, and never holds
// up the overload manager; past kMaxQueued waiting events, new ones are dropped (and counted).
class WebhookNotifier : public OverloadNotifier {
 public:
  WebhookNotifier(Dispatcher& dispatcher, StatsStore& stats);
  ~WebhookNotifier() override;

  // Where events go from now on (nullopt: nowhere), and the node id they name.
  void SetTarget(std::optional<config::WebhookTarget> target, std::chrono::milliseconds timeout,
                 std::string node_id);
  void Notify(const OverloadEvent& event) override;

 private:
  class Post;
  static constexpr size_t kMaxQueued = 64;
  // Starts the next queued POST unless one is in flight.
  void SendNext();
  void Finish(Post* post, bool ok, std::string_view why);

  Dispatcher& dispatcher_;
  WebhookStats stats_;
  std::string node_id_;
  std::optional<config::WebhookTarget> target_;
  std::chrono::milliseconds timeout_{2000};
  // Requests waiting for the one in flight, each with where it goes: an event goes where the
  // config in force when it happened said, even if a reload changed that since.
  struct Queued {
    std::string request;
    config::WebhookTarget target;
    std::chrono::milliseconds timeout;
  };
  std::deque<Queued> queued_;
  std::unique_ptr<Post> in_flight_;
  bool sending_ = false;  // Inside SendNext (a POST may fail at once, re-entering Finish).
};

}  // namespace phoenix::server
