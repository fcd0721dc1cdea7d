#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "source/common/free_list.h"
#include "source/http/protocol.h"

namespace phoenix::http {

// An ordered list of header fields with lowercase names. Requests carry ~10 headers, so a
// flat vector with linear lookup beats any hash map here.
class HeaderMap {
 public:
  using Entry = std::pair<std::string, std::string>;

  // `name` is lowercased.
  void Add(std::string_view name, std::string_view value);
  // For parsers: `lowercase_name` must already be lowercase; both strings are moved in.
  void AddLowercase(std::string lowercase_name, std::string value) {
    entries_.emplace_back(std::move(lowercase_name), std::move(value));
  }
  // Removes the fields for which `predicate(name)` is true.
  template <typename Predicate>
  void RemoveIf(Predicate predicate) {
    std::erase_if(entries_, [&](const Entry& e) { return predicate(e.first); });
  }
  // Replaces every field named `name` with one.
  void Set(std::string_view name, std::string_view value);
  // Removes every field named `name` (lowercase). Returns how many were removed.
  size_t Remove(std::string_view name);
  // The first value of `name` (lowercase), or nullptr.
  const std::string* Get(std::string_view name) const;
  size_t Count(std::string_view name) const;

  std::vector<Entry>::const_iterator begin() const { return entries_.begin(); }
  std::vector<Entry>::const_iterator end() const { return entries_.end(); }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  void Reserve(size_t n) { entries_.reserve(n); }

 private:
  std::vector<Entry> entries_;
};

// A request head. The request target is split into path and query; Host lives in
// `authority`, not in `headers`.
struct RequestHeaders {
  PHX_FREE_LIST_ALLOCATED(RequestHeaders)
  std::string method;
  std::string path;  // Path and query as received ("/a/b?x=1"), or rewritten.
  std::string authority;
  Protocol protocol = Protocol::kHttp11;
  HeaderMap headers;

  // Value of a header by lowercase name, including the pseudo-headers ":method", ":path"
  // and ":authority". Empty view and false if absent.
  bool Lookup(std::string_view name, std::string_view* value) const;
  std::string_view PathWithoutQuery() const;
  std::string_view Query() const;  // After '?', without it.
};

struct ResponseHeaders {
  PHX_FREE_LIST_ALLOCATED(ResponseHeaders)
  int status = 200;
  HeaderMap headers;
};

using RequestHeadersPtr = std::unique_ptr<RequestHeaders>;
using ResponseHeadersPtr = std::unique_ptr<ResponseHeaders>;

std::string_view ReasonPhrase(int status);

// True for the connection-level headers a proxy must not forward (RFC 9110 7.6.1).
bool IsHopByHopHeader(std::string_view lowercase_name);

}  // namespace phoenix::http
