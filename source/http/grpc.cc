#include "source/http/grpc.h"

#include <cstdint>

namespace phoenix::http {

bool IsGrpcRequest(const RequestHeaders& request) {
  const std::string_view* type = request.headers.Get(WellKnownHeader::kContentType);
  if (type == nullptr || !type->starts_with("application/grpc")) return false;
  return type->size() == 16 || (*type)[16] == '+' || (*type)[16] == ';';
}

GrpcStatus GrpcStatusForHttpStatus(int status) {
  switch (status) {
    case 400:
      return GrpcStatus::kInternal;
    case 401:
      return GrpcStatus::kUnauthenticated;
    case 403:
      return GrpcStatus::kPermissionDenied;
    case 404:
      return GrpcStatus::kUnimplemented;
    case 408:
    case 504:
      return GrpcStatus::kDeadlineExceeded;
    case 429:
      return GrpcStatus::kResourceExhausted;
    case 502:
    case 503:
      return GrpcStatus::kUnavailable;
    default:
      return GrpcStatus::kUnknown;
  }
}

std::string GrpcMessage(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  std::string out;
  out.reserve(text.size());
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : text) {
    if (c >= 0x20 && c <= 0x7e && c != '%') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

std::optional<std::chrono::milliseconds> ParseGrpcTimeout(std::string_view value) {
  if (value.size() < 2 || value.size() > 9) return std::nullopt;
  uint64_t amount = 0;
  for (char c : value.substr(0, value.size() - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    amount = amount * 10 + static_cast<uint64_t>(c - '0');
  }
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  switch (value.back()) {
    case 'H':
      return duration_cast<milliseconds>(std::chrono::hours(amount));
    case 'M':
      return duration_cast<milliseconds>(std::chrono::minutes(amount));
    case 'S':
      return duration_cast<milliseconds>(std::chrono::seconds(amount));
    case 'm':
      return milliseconds(amount);
    case 'u':
      // Rounded up: a deadline shorter than a millisecond is still a deadline.
      return milliseconds((amount + 999) / 1000);
    case 'n':
      return milliseconds((amount + 999999) / 1000000);
    default:
      return std::nullopt;
  }
}

std::optional<int> GrpcStatusOf(const HeaderMap& headers) {
  const std::string_view* value = headers.Get("grpc-status");
  if (value == nullptr || value->empty() || value->size() > 3) return std::nullopt;
  int status = 0;
  for (char c : *value) {
    if (c < '0' || c > '9') return std::nullopt;
    status = status * 10 + (c - '0');
  }
  return status;
}

}  // namespace phoenix::http
