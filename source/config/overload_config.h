#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "phoenix/config/v1/overload.pb.h"
#include "source/common/config_errors.h"

namespace phoenix::config {

// When one resource's reading (a fraction) raises a notice or sheds load; 0: never.
struct OverloadThresholds {
  double notice = 0;
  double shed = 0;
  bool enabled() const { return notice > 0 || shed > 0; }
  bool operator==(const OverloadThresholds&) const = default;
};

// Where notices are POSTed: an HTTP URL with an IP address (or localhost) and port.
struct WebhookTarget {
  sockaddr_storage address{};
  std::string host;  // As written: the Host header.
  std::string path;  // "/hook"; "/" when the URL has none.
  std::string url;
};

// The bootstrap's overload_manager section, checked. Empty (enabled() false) when unset.
struct OverloadConfig {
  std::chrono::milliseconds refresh_interval{1000};
  OverloadThresholds cpu, memory, app_cpu;
  uint64_t max_rss_bytes = 0;
  bool has_webhook = false;
  WebhookTarget webhook;
  std::chrono::milliseconds webhook_timeout{2000};

  bool enabled() const { return cpu.enabled() || memory.enabled() || app_cpu.enabled(); }
};

// Checks `proto` (at `path` in the bootstrap) and fills `out`; errors name the field.
void BuildOverloadConfig(const phoenix::config::v1::OverloadManager& proto, const std::string& path,
                         ConfigErrors& errors, OverloadConfig* out);

// Parses "http://<ip or localhost>[:port][/path]" into `out`; false if it is not one.
bool ParseWebhookUrl(const std::string& url, WebhookTarget* out);

}  // namespace phoenix::config
