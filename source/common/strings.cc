#include "source/common/strings.h"

#include "absl/strings/str_cat.h"

namespace phoenix {

std::string JsonEscape(std::string_view s, bool ascii_only) {
  std::string out;
  for (char c : s) {
    unsigned char byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (byte < 0x20 || (ascii_only && byte >= 0x7f)) {
      absl::StrAppend(&out, "\\u00", absl::Hex(c, absl::kZeroPad2));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string_view AddressHost(std::string_view address) {
  if (!address.empty() && address[0] == '[') {
    size_t end = address.find(']');
    return end == std::string_view::npos ? address : address.substr(1, end - 1);
  }
  size_t colon = address.rfind(':');
  return colon == std::string_view::npos ? address : address.substr(0, colon);
}

}  // namespace phoenix
