#include "source/http/header_map.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "source/common/strings.h"

namespace phoenix::http {

namespace {

constexpr std::string_view kWellKnownNames[] = {
    "connection",
    "content-length",
    "content-type",
    "expect",
    "host",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "x-forwarded-client-cert",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-request-id",
};
static_assert(std::size(kWellKnownNames) == static_cast<size_t>(WellKnownHeader::kCount));

// Blocks of HeaderArena::kBlockSize, recycled per thread.
struct BlockPool {
  std::vector<char*> blocks;
  ~BlockPool() {
    for (char* block : blocks) delete[] block;
  }
};
BlockPool& Pool() {
  thread_local BlockPool pool;
  return pool;
}

}  // namespace

std::string_view WellKnownName(WellKnownHeader header) {
  return kWellKnownNames[static_cast<size_t>(header)];
}

WellKnownHeader ClassifyHeader(std::string_view name) {
  // First by length, so most names cost one comparison at most; each comparison has a
  // constant length, which the compiler turns into a few word compares.
  const char* p = name.data();
  switch (name.size()) {
    case 2:
      if (std::memcmp(p, "te", 2) == 0) return WellKnownHeader::kTe;
      return WellKnownHeader::kCount;
    case 4:
      if (std::memcmp(p, "host", 4) == 0) return WellKnownHeader::kHost;
      return WellKnownHeader::kCount;
    case 6:
      if (std::memcmp(p, "expect", 6) == 0) return WellKnownHeader::kExpect;
      return WellKnownHeader::kCount;
    case 7:
      if (std::memcmp(p, "trailer", 7) == 0) return WellKnownHeader::kTrailer;
      if (std::memcmp(p, "upgrade", 7) == 0) return WellKnownHeader::kUpgrade;
      return WellKnownHeader::kCount;
    case 10:
      if (std::memcmp(p, "connection", 10) == 0) return WellKnownHeader::kConnection;
      if (std::memcmp(p, "keep-alive", 10) == 0) return WellKnownHeader::kKeepAlive;
      if (std::memcmp(p, "user-agent", 10) == 0) return WellKnownHeader::kUserAgent;
      return WellKnownHeader::kCount;
    case 12:
      if (std::memcmp(p, "content-type", 12) == 0) return WellKnownHeader::kContentType;
      if (std::memcmp(p, "x-request-id", 12) == 0) return WellKnownHeader::kXRequestId;
      return WellKnownHeader::kCount;
    case 14:
      if (std::memcmp(p, "content-length", 14) == 0) return WellKnownHeader::kContentLength;
      return WellKnownHeader::kCount;
    case 15:
      if (std::memcmp(p, "x-forwarded-for", 15) == 0) return WellKnownHeader::kXForwardedFor;
      return WellKnownHeader::kCount;
    case 16:
      if (std::memcmp(p, "proxy-connection", 16) == 0) return WellKnownHeader::kProxyConnection;
      return WellKnownHeader::kCount;
    case 17:
      if (std::memcmp(p, "transfer-encoding", 17) == 0) return WellKnownHeader::kTransferEncoding;
      if (std::memcmp(p, "x-forwarded-proto", 17) == 0) return WellKnownHeader::kXForwardedProto;
      return WellKnownHeader::kCount;
    case 23:
      if (std::memcmp(p, "x-forwarded-client-cert", 23) == 0) {
        return WellKnownHeader::kXForwardedClientCert;
      }
      return WellKnownHeader::kCount;
    default:
      return WellKnownHeader::kCount;
  }
}

HeaderArena::HeaderArena(HeaderArena&& other) noexcept
    : blocks_(std::move(other.blocks_)),
      current_(other.current_),
      used_(other.used_),
      capacity_(other.capacity_) {
  other.blocks_.clear();
  other.current_ = nullptr;
  other.used_ = other.capacity_ = 0;
}

HeaderArena& HeaderArena::operator=(HeaderArena&& other) noexcept {
  if (this == &other) return *this;
  Release();
  blocks_ = std::move(other.blocks_);
  current_ = other.current_;
  used_ = other.used_;
  capacity_ = other.capacity_;
  other.blocks_.clear();
  other.current_ = nullptr;
  other.used_ = other.capacity_ = 0;
  return *this;
}

HeaderArena::~HeaderArena() { Release(); }

void HeaderArena::Release() {
  if (blocks_.empty()) return;  // Most maps of a request (trailers, spills) never allocate.
  auto& pool = Pool().blocks;
  for (const Block& block : blocks_) {
    if (block.size == kBlockSize && pool.size() < 1024) {
      pool.push_back(block.data);
    } else {
      delete[] block.data;
    }
  }
  blocks_.clear();
  current_ = nullptr;
  used_ = capacity_ = 0;
}

void HeaderArena::Reserve(size_t size) {
  if (used_ + size <= capacity_) return;
  Block block;
  auto& pool = Pool().blocks;
  if (size <= kBlockSize && !pool.empty()) {
    block = {pool.back(), kBlockSize};
    pool.pop_back();
  } else {
    block.size = size <= kBlockSize ? kBlockSize : size * 2;
    block.data = new char[block.size];
  }
  blocks_.push_back(block);
  current_ = block.data;
  capacity_ = block.size;
  used_ = 0;
}

char* HeaderArena::Allocate(size_t size) {
  Reserve(size);
  char* out = current_ + used_;
  used_ += size;
  return out;
}

std::string_view HeaderArena::Copy(std::string_view text) {
  if (text.empty()) return std::string_view();
  char* out = Allocate(text.size());
  std::memcpy(out, text.data(), text.size());
  return std::string_view(out, text.size());
}

std::string_view HeaderArena::Join(std::initializer_list<std::string_view> parts) {
  size_t size = 0;
  for (std::string_view part : parts) size += part.size();
  char* out = Allocate(size);
  char* p = out;
  for (std::string_view part : parts) {
    if (part.empty()) continue;
    std::memcpy(p, part.data(), part.size());
    p += part.size();
  }
  return std::string_view(out, size);
}

std::string_view HeaderArena::CopyLowercase(std::string_view text) {
  if (text.empty()) return std::string_view();
  char* out = Allocate(text.size());
  http::CopyLowercase(text.data(), text.size(), out);
  return std::string_view(out, text.size());
}

HeaderMap::HeaderMap(const HeaderMap& other) {
  index_.fill(0);
  entries_.reserve(other.size());
  for (const auto& [name, value] : other) AddLowercase(name, value);
}

HeaderMap& HeaderMap::operator=(const HeaderMap& other) {
  if (this != &other) *this = HeaderMap(other);
  return *this;
}

void HeaderMap::Index(size_t position, WellKnownHeader known) {
  if (known == WellKnownHeader::kCount) return;
  uint16_t& slot = index_[static_cast<size_t>(known)];
  if (slot == 0 && position < 0xffff) slot = static_cast<uint16_t>(position + 1);
}

void HeaderMap::Reindex() {
  index_.fill(0);
  for (size_t i = 0; i < entries_.size(); ++i) Index(i, ClassifyHeader(entries_[i].first));
}

void HeaderMap::AddStored(std::string_view lowercase_name, std::string_view value) {
  AddStored(lowercase_name, value, ClassifyHeader(lowercase_name));
}

void HeaderMap::AddStored(std::string_view lowercase_name, std::string_view value,
                          WellKnownHeader known) {
  entries_.push_back({lowercase_name, value});
  Index(entries_.size() - 1, known);
}

void HeaderMap::AddLowercase(std::string_view lowercase_name, std::string_view value) {
  std::string_view name = arena_.Copy(lowercase_name);
  AddStored(name, arena_.Copy(value));
}

void HeaderMap::Add(std::string_view name, std::string_view value) {
  AddStored(arena_.CopyLowercase(name), arena_.Copy(value));
}

void HeaderMap::Set(std::string_view name, std::string_view value) {
  std::string_view lower = arena_.CopyLowercase(name);
  Remove(lower);
  AddStored(lower, arena_.Copy(value));
}

void HeaderMap::SetStored(std::string_view lowercase_name, std::string_view value) {
  Remove(lowercase_name);
  AddStored(lowercase_name, value);
}

size_t HeaderMap::Remove(std::string_view name) {
  size_t before = entries_.size();
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [&](const Entry& e) { return e.first == name; }),
                 entries_.end());
  size_t removed = before - entries_.size();
  if (removed != 0) Reindex();
  return removed;
}

const std::string_view* HeaderMap::Get(std::string_view name) const {
  WellKnownHeader header = ClassifyHeader(name);
  if (header != WellKnownHeader::kCount) return Get(header);
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
  const std::string_view* v = headers.Get(name);
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

bool IsHopByHopHeader(std::string_view name) { return IsHopByHop(ClassifyHeader(name)); }

}  // namespace phoenix::http
