#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "source/http/header_map.h"

namespace phoenix::http {

// What the proxy needs to know of gRPC (https://github.com/grpc/grpc/blob/master/doc/
// PROTOCOL-HTTP2.md) to answer a gRPC client in its own terms and honour its deadline.

// gRPC status codes the proxy itself produces or matches.
enum class GrpcStatus {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kDeadlineExceeded = 4,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kUnauthenticated = 16,
};

// Whether `request` is a gRPC call (content-type application/grpc, or application/grpc+...).
bool IsGrpcRequest(const RequestHeaders& request);

// The gRPC status that tells a gRPC client what the HTTP status `status` of a local reply
// means: 403 PERMISSION_DENIED, 429 RESOURCE_EXHAUSTED, 404 UNIMPLEMENTED, 502/503
// UNAVAILABLE, 504 and 408 DEADLINE_EXCEEDED, 401 UNAUTHENTICATED, 400 INTERNAL, else UNKNOWN.
GrpcStatus GrpcStatusForHttpStatus(int status);

// `text` as a grpc-message value: surrounding whitespace dropped, and bytes outside
// printable ASCII, and '%', percent-encoded.
std::string GrpcMessage(std::string_view text);

// The duration a grpc-timeout value ("100m", "5S", ...: at most 8 digits and a unit of H, M,
// S, m, u or n) stands for; nullopt if malformed.
std::optional<std::chrono::milliseconds> ParseGrpcTimeout(std::string_view value);

// The grpc-status in `headers` (a Trailers-Only response, or trailers); nullopt if absent or
// not a number.
std::optional<int> GrpcStatusOf(const HeaderMap& headers);

}  // namespace phoenix::http
