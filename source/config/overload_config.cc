#include "source/config/overload_config.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "source/common/duration.h"
#include "source/common/strings.h"
#include "source/upstream/cluster.h"

namespace phoenix::config {
namespace {

OverloadThresholds CheckThresholds(const phoenix::config::v1::OverloadThresholds& proto,
                                   const std::string& path, ConfigErrors& errors) {
  OverloadThresholds thresholds{proto.notice(), proto.shed()};
  if (thresholds.notice < 0) errors.Add(path + ".notice", "must not be negative");
  if (thresholds.shed < 0) errors.Add(path + ".shed", "must not be negative");
  if (thresholds.notice > 0 && thresholds.shed > 0 && thresholds.notice > thresholds.shed) {
    errors.Add(path + ".notice", "must not be above shed (a notice comes before shedding)");
  }
  return thresholds;
}

}  // namespace

bool ParseWebhookUrl(const std::string& url, WebhookTarget* out) {
  std::string_view rest = url;
  if (!rest.starts_with("http://")) return false;
  rest.remove_prefix(7);
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  out->path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  std::string_view host = authority;
  std::string_view port_text;
  if (authority.starts_with("[")) {  // [v6 address]:port
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return false;
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after[0] != ':') return false;
    if (!after.empty()) port_text = after.substr(1);
  } else if (size_t colon = authority.find(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port_text = authority.substr(colon + 1);
  }
  uint32_t port = 80;
  if (!port_text.empty() || authority.ends_with(":")) {
    if (!absl::SimpleAtoi(AbslView(port_text), &port) || port == 0 || port > 65535) return false;
  }
  std::string ip = host == "localhost" ? "127.0.0.1" : std::string(host);
  if (!upstream::ParseSocketAddress(ip, port, &out->address)) return false;
  out->host = std::string(authority);
  out->url = url;
  return true;
}

void BuildOverloadConfig(const phoenix::config::v1::OverloadManager& proto, const std::string& path,
                         ConfigErrors& errors, OverloadConfig* out) {
  out->refresh_interval = ToMillisecondsOr(proto.refresh_interval(), out->refresh_interval);
  out->cpu = CheckThresholds(proto.cpu(), path + ".cpu", errors);
  out->memory = CheckThresholds(proto.memory(), path + ".memory", errors);
  out->app_cpu = CheckThresholds(proto.app_cpu(), path + ".app_cpu", errors);
  out->max_rss_bytes = uint64_t{proto.max_rss_mb()} * 1024 * 1024;
  if (out->memory.enabled() && out->max_rss_bytes == 0) {
    errors.Add(path + ".max_rss_mb", "memory thresholds need max_rss_mb, what 1.0 means");
  }
  if (!proto.notice_webhook().empty()) {
    out->has_webhook = ParseWebhookUrl(proto.notice_webhook(), &out->webhook);
    if (!out->has_webhook) {
      errors.Add(path + ".notice_webhook",
                 absl::StrCat("'", proto.notice_webhook(),
                              "' is not an http:// URL with an IP address or localhost"));
    }
  }
  out->webhook_timeout = ToMillisecondsOr(proto.webhook_timeout(), out->webhook_timeout);
}

}  // namespace phoenix::config
