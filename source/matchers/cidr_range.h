#pragma once

#include <netinet/in.h>

#include <string>
#include <string_view>

namespace phoenix::matchers {

// An address range ("10.0.0.0/8", "::1/128"). IPv4 is held as IPv4-mapped IPv6, so one
// comparison serves both families.
class CidrRange {
 public:
  // False if `text` is not a valid CIDR range or address.
  static bool Parse(const std::string& text, CidrRange* out);
  bool Contains(const in6_addr& address) const;
  // Parses "1.2.3.4" or "::1" as IPv4-mapped / plain IPv6.
  static bool ParseAddress(std::string_view text, in6_addr* out);

 private:
  in6_addr prefix_{};
  int length_ = 0;  // In bits, over the 128-bit form.
};

}  // namespace phoenix::matchers
