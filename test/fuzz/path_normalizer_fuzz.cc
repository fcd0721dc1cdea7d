// Fuzzes phoenix::http::NormalizePath (source/http/path_normalizer.h) under every option
// combination.
//
// Input: 1 option byte (bit 0: normalize, bit 1: merge_slashes, bit 2:
// reject_escaped_slashes), then the request target.
//
// Invariants checked on every target that normalizes:
//  - the result is "*" or starts with '/', and has no '#';
//  - normalizing it again succeeds and changes nothing (idempotence);
//  - the query is left exactly as sent;
//  - merge_slashes: the path has no "//";
//  - normalize: the path has no "." or ".." segment, no %XX escape of an unreserved
//    character, and every escape is well-formed upper-case hex;
//  - reject_escaped_slashes: the path has no '\', %2F or %5C;
//  - a target accepted with reject_escaped_slashes normalizes to the same result without it.
#include <cstdint>
#include <string>
#include <string_view>

#include "source/http/path_normalizer.h"
#include "test/fuzz/fuzz_util.h"

namespace phoenix::fuzz {
namespace {

bool IsUpperHex(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); }

bool IsUnreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

int HexValue(char c) { return c <= '9' ? c - '0' : c - 'A' + 10; }

// The query of a target as NormalizePath sees it: after the first '?', before any '#'.
std::string_view QueryOf(std::string_view target, bool* has_query) {
  target = target.substr(0, target.find('#'));
  size_t q = target.find('?');
  *has_query = q != std::string_view::npos;
  return *has_query ? target.substr(q) : std::string_view();
}

void CheckNormalized(const std::string& original, const std::string& result,
                     const http::PathNormalizationOptions& options) {
  FUZZ_CHECK(result.find('#') == std::string::npos);
  if (result == "*") return;
  FUZZ_CHECK(result.starts_with("/"));

  bool had_query, has_query;
  std::string_view original_query = QueryOf(original, &had_query);
  std::string_view query = QueryOf(result, &has_query);
  FUZZ_CHECK(had_query == has_query);
  FUZZ_CHECK(query == original_query);

  std::string_view path = std::string_view(result).substr(0, result.find('?'));
  if (options.merge_slashes) FUZZ_CHECK(path.find("//") == std::string_view::npos);
  if (options.normalize) {
    FUZZ_CHECK(path.find("/./") == std::string_view::npos);
    FUZZ_CHECK(path.find("/../") == std::string_view::npos);
    FUZZ_CHECK(!path.ends_with("/.") && !path.ends_with("/.."));
    for (size_t i = 0; i < path.size(); ++i) {
      if (path[i] != '%') continue;
      FUZZ_CHECK(i + 2 < path.size() && IsUpperHex(path[i + 1]) && IsUpperHex(path[i + 2]));
      FUZZ_CHECK(!IsUnreserved(
          static_cast<unsigned char>(HexValue(path[i + 1]) * 16 + HexValue(path[i + 2]))));
    }
  }
  if (options.reject_escaped_slashes) {
    FUZZ_CHECK(path.find('\\') == std::string_view::npos);
    for (size_t i = 0; i + 2 < path.size(); ++i) {
      if (path[i] != '%') continue;
      std::string escape(path.substr(i + 1, 2));
      for (char& c : escape) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
      FUZZ_CHECK(escape != "2F" && escape != "5C");
    }
  }

  std::string again = result;
  FUZZ_CHECK(http::NormalizePath(again, options));
  FUZZ_CHECK(again == result);
}

}  // namespace
}  // namespace phoenix::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  phoenix::http::PathNormalizationOptions options;
  options.normalize = data[0] & 0x01;
  options.merge_slashes = data[0] & 0x02;
  options.reject_escaped_slashes = data[0] & 0x04;
  const std::string original(reinterpret_cast<const char*>(data) + 1, size - 1);

  std::string target = original;
  bool ok = phoenix::http::NormalizePath(target, options);
  if (ok) phoenix::fuzz::CheckNormalized(original, target, options);

  if (options.reject_escaped_slashes && ok) {
    phoenix::http::PathNormalizationOptions lenient = options;
    lenient.reject_escaped_slashes = false;
    std::string lenient_target = original;
    FUZZ_CHECK(phoenix::http::NormalizePath(lenient_target, lenient));
    FUZZ_CHECK(lenient_target == target);
  }
  return 0;
}
