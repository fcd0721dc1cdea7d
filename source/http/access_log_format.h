#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "source/http/header_map.h"
#include "source/http/protocol.h"

namespace phoenix::network {
struct TlsInfo;
}

namespace phoenix::http {

// What an access log line may say about one request (or one refused stream).
struct AccessLogContext {
  int64_t start_wall_us = 0;
  // As the client sent them (before normalization and rewrites).
  std::string_view method, path, authority;
  Protocol protocol = Protocol::kHttp11;
  int code = 0;
  std::string_view flags;
  uint64_t bytes_received = 0, bytes_sent = 0;
  int64_t duration_ms = 0;
  std::string_view xff, user_agent, request_id, upstream_host;
  std::string_view downstream_address, route_name;
  const network::TlsInfo* tls = nullptr;
  std::string_view principal;
  std::string_view policy_rule;
  // The request's headers, for %REQ(x)%; null when the stream never had a request head.
  const RequestHeaders* request = nullptr;
  // The response header values the formats asked for (%RESP(x)%), by lowercase name.
  const std::vector<std::pair<std::string, std::string>>* response_headers = nullptr;
};

// Turns a request's AccessLogContext into one access log line (newline included). Built once
// per config from the listener's access_log entry: the default Envoy-like line, an Envoy
// %OPERATOR% text format, or a JSON object of such formats.
class AccessLogFormatter {
 public:
  virtual ~AccessLogFormatter() = default;
  virtual std::string Format(const AccessLogContext& context) const = 0;
  // The response headers (lowercase) its %RESP(x)% operators read: the connection manager
  // keeps their values until the line is written.
  const std::vector<std::string>& response_headers() const { return response_headers_; }

 protected:
  std::vector<std::string> response_headers_;
};

// Phoenix's default line: [time] "METHOD path PROTOCOL" code flags bytes_received bytes_sent
// duration "xff" "user-agent" "request-id" "authority" "upstream" tls "principal" "rule".
std::unique_ptr<AccessLogFormatter> DefaultAccessLogFormatter();

// An Envoy text format: literal text with %OPERATOR% commands. Supported: START_TIME (and
// START_TIME(strftime format)), REQ(x?y):n, RESP(x?y):n, RESPONSE_CODE, RESPONSE_FLAGS,
// DURATION, BYTES_RECEIVED, BYTES_SENT, PROTOCOL, UPSTREAM_HOST, ROUTE_NAME,
// DOWNSTREAM_REMOTE_ADDRESS, DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT, DOWNSTREAM_PEER_URI_SAN,
// DOWNSTREAM_TLS_VERSION, POLICY_RULE; "%%" is a literal '%'. A value that is absent prints
// "-". A line without a trailing newline gets one. An unknown operator is an error naming it.
absl::StatusOr<std::unique_ptr<AccessLogFormatter>> ParseTextAccessLogFormat(
    std::string_view format);

// A JSON object per line: each key's value is a text format as above. A value that is one
// numeric operator (RESPONSE_CODE, DURATION, BYTES_*) is a JSON number; an absent value is
// null. Keys come out sorted.
absl::StatusOr<std::unique_ptr<AccessLogFormatter>> ParseJsonAccessLogFormat(
    const std::map<std::string, std::string>& fields);

}  // namespace phoenix::http
