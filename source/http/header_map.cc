#include "source/http/header_map.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "source/common/strings.h"

namespace phoenix::http {

void HeaderMap::Add(std::string_view name, std::string_view value) {
  entries_.emplace_back(absl::AsciiStrToLower(AbslView(name)), std::string(value));
}

void HeaderMap::Set(std::string_view name, std::string_view value) {
  std::string lower = absl::AsciiStrToLower(AbslView(name));
  Remove(lower);
  entries_.emplace_back(std::move(lower), std::string(value));
}

size_t HeaderMap::Remove(std::string_view name) {
  size_t before = entries_.size();
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [&](const Entry& e) { return e.first == name; }),
                 entries_.end());
  return before - entries_.size();
}

const std::string* HeaderMap::Get(std::string_view name) const {
  for (const auto& entry : entries_) {
    if (entry.first == name) return &entry.second;
  }
  return nullptr;
}

size_t HeaderMap::Count(std::string_view name) const {
  return std::count_if(entries_.begin(), entries_.end(),
                       [&](const Entry& e) { return e.first == name; });
}

bool RequestHeaders::Lookup(std::string_view name, std::string_view* value) const {
  if (!name.empty() && name[0] == ':') {
    if (name == ":method") {
      *value = method;
    } else if (name == ":path") {
      *value = path;
    } else if (name == ":authority" || name == "host") {
      *value = authority;
    } else {
      return false;
    }
    return true;
  }
  if (name == "host") {
    *value = authority;
    return true;
  }
  const std::string* v = headers.Get(name);
  if (v == nullptr) return false;
  *value = *v;
  return true;
}

std::string_view RequestHeaders::PathWithoutQuery() const {
  std::string_view p = path;
  return p.substr(0, p.find('?'));
}

std::string_view RequestHeaders::Query() const {
  std::string_view p = path;
  size_t q = p.find('?');
  return q == std::string_view::npos ? std::string_view() : p.substr(q + 1);
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 417:
      return "Expectation Failed";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

bool IsHopByHopHeader(std::string_view name) {
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
         name == "transfer-encoding" || name == "te" || name == "trailer" || name == "upgrade";
}

}  // namespace phoenix::http
