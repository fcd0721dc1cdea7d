#include "source/http/path_normalizer.h"

#include <string_view>
#include <vector>

namespace phoenix::http {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsUnreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// "%63" -> "c", "%2f" -> "%2F" (or rejection), "%zz" -> rejection.
bool DecodePercent(std::string_view in, const PathNormalizationOptions& options, std::string& out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '\\') {
      if (options.reject_escaped_slashes) return false;
      out.push_back(c);
      continue;
    }
    if (c != '%') {
      out.push_back(c);
      continue;
    }
    if (i + 2 >= in.size()) return false;  // Truncated escape.
    int high = HexValue(in[i + 1]);
    int low = HexValue(in[i + 2]);
    if (high < 0 || low < 0) return false;
    unsigned char value = static_cast<unsigned char>(high * 16 + low);
    i += 2;
    if (value == '/' || value == '\\') {
      if (options.reject_escaped_slashes) return false;
    } else if (options.normalize && IsUnreserved(value)) {
      out.push_back(static_cast<char>(value));
      continue;
    }
    out.push_back('%');
    out.push_back(kHex[value >> 4]);
    out.push_back(kHex[value & 0xf]);
  }
  return true;
}

bool IsDotSegment(std::string_view s) { return s == "." || s == ".."; }

// RFC 3986 5.2.4 on an absolute path, segment by segment.
bool RemoveDotSegments(std::string& path) {
  std::vector<std::string_view> output;
  std::string_view rest(path);
  rest.remove_prefix(1);  // Leading '/'.
  bool trailing_slash = false;
  while (true) {
    size_t slash = rest.find('/');
    std::string_view segment = rest.substr(0, slash);
    bool last = slash == std::string_view::npos;
    // Servlet containers read "..;x" as "..": a proxy that does not must refuse it.
    size_t semicolon = segment.find(';');
    if (semicolon != std::string_view::npos && IsDotSegment(segment.substr(0, semicolon))) {
      return false;
    }
    if (segment == "..") {
      if (!output.empty()) output.pop_back();
      trailing_slash = true;
    } else if (segment == ".") {
      trailing_slash = true;
    } else {
      output.push_back(segment);
      trailing_slash = false;
    }
    if (last) break;
    rest.remove_prefix(slash + 1);
  }
  std::string result;
  result.reserve(path.size());
  for (std::string_view segment : output) {
    result.push_back('/');
    result.append(segment);
  }
  if (trailing_slash || result.empty()) result.push_back('/');
  path = std::move(result);
  return true;
}

// Whether `path` has a segment that starts "." or ".." and ends there or at a ';' (what
// RemoveDotSegments removes or refuses). Dots elsewhere ("/pkg.Service/Method") are not.
bool HasDotSegment(std::string_view path) {
  for (size_t i = path.find("/."); i != std::string_view::npos; i = path.find("/.", i + 1)) {
    size_t end = i + 2;
    if (end < path.size() && path[end] == '.') ++end;
    if (end == path.size() || path[end] == '/' || path[end] == ';') return true;
  }
  return false;
}

// False when normalizing `path` cannot change it: no escape, no backslash, no dot segment
// and, when slashes are merged, no empty segment. Most request paths are like that.
bool MayChange(std::string_view path, bool merge_slashes) {
  char previous = 0;
  bool dot = false;
  for (char c : path) {
    if (c == '%' || c == '\\') return true;
    if (merge_slashes && c == '/' && previous == '/') return true;
    dot = dot || c == '.';
    previous = c;
  }
  return dot && HasDotSegment(path);
}

}  // namespace

bool NormalizePath(std::string& target, const PathNormalizationOptions& options) {
  size_t fragment = target.find('#');
  if (fragment != std::string::npos) target.resize(fragment);
  if (target == "*") return true;  // OPTIONS *
  size_t query_start = target.find('?');
  std::string_view path = std::string_view(target).substr(0, query_start);
  if (path.empty() || path[0] != '/') return false;
  if (!MayChange(path, options.merge_slashes)) return true;

  std::string normalized;
  if (!DecodePercent(path, options, normalized)) return false;
  if (options.merge_slashes) {
    size_t out = 0;
    for (size_t i = 0; i < normalized.size(); ++i) {
      if (normalized[i] == '/' && out > 0 && normalized[out - 1] == '/') continue;
      normalized[out++] = normalized[i];
    }
    normalized.resize(out);
  }
  if (options.normalize && !RemoveDotSegments(normalized)) return false;
  if (query_start != std::string::npos) normalized.append(target, query_start);
  target = std::move(normalized);
  return true;
}

}  // namespace phoenix::http
