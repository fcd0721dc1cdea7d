#pragma once

#include <string>
#include <string_view>

#include "absl/strings/string_view.h"

namespace phoenix {

// Debian's abseil 20220623 is built with its own absl::string_view (not an alias of
// std::string_view), so std::string_view must be converted explicitly at absl call sites.
inline absl::string_view AbslView(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}
inline std::string_view StdView(absl::string_view s) {
  return std::string_view(s.data(), s.size());
}

// `s` escaped for the inside of a JSON string: quotes, backslashes and control characters.
// `ascii_only` also escapes every byte past ASCII as \u00XX, so that bytes that are not UTF-8
// (request headers, say) still make valid JSON.
std::string JsonEscape(std::string_view s, bool ascii_only = false);

// The host part of "host:port": "1.2.3.4:56" -> "1.2.3.4", "[::1]:56" -> "::1".
std::string_view AddressHost(std::string_view address);

}  // namespace phoenix
