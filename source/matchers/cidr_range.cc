#include "source/matchers/cidr_range.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/numbers.h"

namespace phoenix::matchers {

bool CidrRange::ParseAddress(std::string_view text, in6_addr* out) {
  std::string s(text);
  in_addr v4;
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    std::memset(out, 0, sizeof(*out));
    out->s6_addr[10] = 0xff;
    out->s6_addr[11] = 0xff;
    std::memcpy(&out->s6_addr[12], &v4, 4);
    return true;
  }
  return inet_pton(AF_INET6, s.c_str(), out) == 1;
}

bool CidrRange::Parse(const std::string& text, CidrRange* out) {
  size_t slash = text.find('/');
  std::string address = text.substr(0, slash);
  bool v4 = address.find(':') == std::string::npos;
  if (!ParseAddress(address, &out->prefix_)) return false;
  int max = v4 ? 32 : 128;
  int length = max;
  if (slash != std::string::npos &&
      (!absl::SimpleAtoi(text.substr(slash + 1), &length) || length < 0 || length > max)) {
    return false;
  }
  out->length_ = v4 ? length + 96 : length;
  // Clear host bits so Contains() can compare whole bytes.
  for (int bit = out->length_; bit < 128; ++bit) {
    out->prefix_.s6_addr[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  }
  return true;
}

bool CidrRange::Contains(const in6_addr& address) const {
  int full = length_ / 8;
  if (std::memcmp(address.s6_addr, prefix_.s6_addr, full) != 0) return false;
  int rest = length_ % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (address.s6_addr[full] & mask) == prefix_.s6_addr[full];
}

}  // namespace phoenix::matchers
