#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "source/common/free_list.h"
#include "source/http/protocol.h"

namespace phoenix::http {

// Headers the proxy itself reads or writes on every request, looked up in O(1) by this
// enum instead of by name.
enum class WellKnownHeader : uint8_t {
  kConnection,
  kContentLength,
  kContentType,
  kExpect,
  kHost,
  kKeepAlive,
  kProxyConnection,
  kTe,
  kTrailer,
  kTransferEncoding,
  kUpgrade,
  kUserAgent,
  kXForwardedClientCert,
  kXForwardedFor,
  kXForwardedProto,
  kXRequestId,
  kCount,  // Not a header: the number of well-known ones.
};

// The lowercase name of a well-known header.
std::string_view WellKnownName(WellKnownHeader header);
// Which well-known header `lowercase_name` is, or kCount for any other name.
WellKnownHeader ClassifyHeader(std::string_view lowercase_name);
// True for the connection-level headers a proxy must not forward (RFC 9110 7.6.1).
inline bool IsHopByHop(WellKnownHeader header) {
  constexpr auto bit = [](WellKnownHeader h) { return 1u << static_cast<unsigned>(h); };
  constexpr unsigned kHopByHop =
      bit(WellKnownHeader::kConnection) | bit(WellKnownHeader::kKeepAlive) |
      bit(WellKnownHeader::kProxyConnection) | bit(WellKnownHeader::kTransferEncoding) |
      bit(WellKnownHeader::kTe) | bit(WellKnownHeader::kTrailer) | bit(WellKnownHeader::kUpgrade);
  static_assert(static_cast<unsigned>(WellKnownHeader::kCount) < 32);
  return (kHopByHop & bit(header)) != 0;  // kCount has no bit in the mask.
}

namespace internal {

// The bytes of `word` with ASCII capitals lowercased; bytes >= 0x80 are left alone. Per
// byte, on its low seven bits (no carry crosses bytes): the high bit of ge_a is set for
// 'A' and above, that of gt_z for above 'Z'.
template <typename Word>
Word LowercaseWord(Word word) {
  constexpr Word kOnes = static_cast<Word>(0x0101010101010101ULL);
  constexpr Word kHighs = static_cast<Word>(0x8080808080808080ULL);
  Word low7 = word & ~kHighs;
  Word ge_a = low7 + kOnes * (0x80 - 'A');
  Word gt_z = low7 + kOnes * (0x80 - 'Z' - 1);
  Word upper = ge_a & ~gt_z & ~word & kHighs;
  return word | (upper >> 2);  // 0x80 >> 2 == 0x20, the case bit.
}

// Lowercases the `Word`-sized block at `in` into `out`.
template <typename Word>
void LowercaseBlock(const char* in, char* out) {
  Word word;
  std::memcpy(&word, in, sizeof(word));
  word = LowercaseWord(word);
  std::memcpy(out, &word, sizeof(word));
}

}  // namespace internal

// Copies `size` bytes from `in` to `out`, ASCII letters lowercased, a word at a time: whole
// words, then one last word that may overlap the previous one (lowercasing twice changes
// nothing), so no byte-by-byte tail for names of 4 bytes and more. Inline: it runs for
// every header name.
inline void CopyLowercase(const char* in, size_t size, char* out) {
  if (size >= 8) {
    size_t i = 0;
    for (; i + 8 <= size; i += 8) internal::LowercaseBlock<uint64_t>(in + i, out + i);
    if (i != size) internal::LowercaseBlock<uint64_t>(in + size - 8, out + size - 8);
  } else if (size >= 4) {
    internal::LowercaseBlock<uint32_t>(in, out);
    internal::LowercaseBlock<uint32_t>(in + size - 4, out + size - 4);
  } else {
    for (size_t i = 0; i < size; ++i) {
      char c = in[i];
      out[i] = c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
    }
  }
}

// memcpy for the short pieces of a head (names, values, separators): up to 16 bytes as two
// overlapping fixed-size copies, which compile to a few moves instead of a library call.
inline void CopyBytes(char* out, const char* in, size_t size) {
  if (size >= 8 && size <= 16) {
    std::memcpy(out, in, 8);
    std::memcpy(out + size - 8, in + size - 8, 8);
  } else if (size >= 4 && size < 8) {
    std::memcpy(out, in, 4);
    std::memcpy(out + size - 4, in + size - 4, 4);
  } else if (size < 4) {
    for (size_t i = 0; i < size; ++i) out[i] = in[i];
  } else {
    std::memcpy(out, in, size);
  }
}

// Storage for the bytes of one header block. Memory comes in 1 KiB blocks from a per-thread
// pool, so a header block costs no malloc once the pool is warm. The views it hands out stay
// valid until the arena is destroyed, also when it is moved.
class HeaderArena {
 public:
  HeaderArena() = default;
  HeaderArena(HeaderArena&& other) noexcept;
  HeaderArena& operator=(HeaderArena&& other) noexcept;
  HeaderArena(const HeaderArena&) = delete;
  HeaderArena& operator=(const HeaderArena&) = delete;
  ~HeaderArena();

  std::string_view Copy(std::string_view text);
  // `text` with ASCII letters lowercased (header names).
  std::string_view CopyLowercase(std::string_view text);
  // The concatenation of `parts`, stored once.
  std::string_view Join(std::initializer_list<std::string_view> parts);
  // `size` writable bytes (the caller fills them in).
  char* Allocate(size_t size);
  // Gives every block back; views handed out before are invalid afterwards.
  void Clear() {
    if (!blocks_.empty()) Release();  // Most arenas (trailers, spills) never allocate.
  }

 private:
  static constexpr size_t kBlockSize = 1024;
  struct Block {
    char* data;
    size_t size;
  };
  // Makes room for `size` more bytes, in a new block if needed.
  void Reserve(size_t size);
  void Release();

  absl::InlinedVector<Block, 2> blocks_;
  char* current_ = nullptr;  // The last block's data.
  size_t used_ = 0;
  size_t capacity_ = 0;
};

// An ordered list of header fields with lowercase names, as views into the map's own arena:
// adding a field copies its bytes once and allocates nothing else for a typical head.
// Requests carry ~10 headers, so a flat vector with linear lookup serves names; the
// well-known headers are indexed.
class HeaderMap {
 public:
  struct Entry {
    using first_type = std::string_view;  // Pair-like, as gmock's Pair() expects.
    using second_type = std::string_view;
    std::string_view first;   // Name, lowercase.
    std::string_view second;  // Value.
  };

  HeaderMap() { index_.fill(0); }
  HeaderMap(HeaderMap&&) noexcept = default;
  HeaderMap& operator=(HeaderMap&&) noexcept = default;
  // A copy has its own arena (the bytes are copied once more).
  HeaderMap(const HeaderMap& other);
  HeaderMap& operator=(const HeaderMap& other);

  // `name` is lowercased; both are copied.
  void Add(std::string_view name, std::string_view value);
  // `lowercase_name` must already be lowercase; both are copied.
  void AddLowercase(std::string_view lowercase_name, std::string_view value);
  // For bytes already in arena() or static (parsers, literals): nothing is copied.
  void AddStored(std::string_view lowercase_name, std::string_view value);
  // AddStored() for a name the caller has classified already (parsers).
  void AddStored(std::string_view lowercase_name, std::string_view value, WellKnownHeader known);
  // Removes the fields for which `predicate(name)` is true.
  template <typename Predicate>
  void RemoveIf(Predicate predicate) {
    size_t before = entries_.size();
    entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                  [&](const Entry& e) { return predicate(e.first); }),
                   entries_.end());
    if (entries_.size() != before) Reindex();
  }
  // Replaces every field named `name` with one.
  void Set(std::string_view name, std::string_view value);
  // Set() for a name and value already in arena() or static.
  void SetStored(std::string_view lowercase_name, std::string_view value);
  // Removes every field named `name` (lowercase). Returns how many were removed.
  size_t Remove(std::string_view name);
  // The first value of `name` (lowercase), or nullptr.
  const std::string_view* Get(std::string_view name) const;
  const std::string_view* Get(WellKnownHeader header) const {
    uint16_t slot = index_[static_cast<size_t>(header)];
    return slot == 0 ? nullptr : &entries_[slot - 1].second;
  }
  size_t Count(std::string_view name) const;

  const Entry* begin() const { return entries_.data(); }
  const Entry* end() const { return entries_.data() + entries_.size(); }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  HeaderArena& arena() { return arena_; }

 private:
  // Indexes entries_[position], a `known` header (kCount: none).
  void Index(size_t position, WellKnownHeader known);
  void Reindex();

  absl::InlinedVector<Entry, 12> entries_;
  // Position + 1 of each well-known header's first field; 0: absent.
  std::array<uint16_t, static_cast<size_t>(WellKnownHeader::kCount)> index_;
  HeaderArena arena_;
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
  // The protocol the client asks to switch to ("websocket"), lowercase; empty for a plain
  // request. Set by a server codec for an upgrade it can carry; a client codec that sees it
  // asks its upstream for the same upgrade. The Upgrade and Connection fields themselves are
  // hop-by-hop: never in `headers`.
  std::string upgrade;

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

// Whether `value` may be forwarded as a field value (RFC 9110 5.5). Every codec checks what
// it receives with it; inline, as it runs for every field.
// Field values may hold visible characters, spaces and tabs; no other control characters.
// Eight bytes at a time: only a word that holds a byte below 0x20 or a DEL is looked at
// byte by byte (a tab is such a byte, and allowed). The last word may overlap the one
// before it, so values of 8 bytes and more have no byte-by-byte tail.
inline bool IsValidFieldValue(std::string_view value) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHighs = 0x8080808080808080ULL;
  auto byte_ok = [](unsigned char c) { return (c >= 0x20 || c == '\t') && c != 0x7f; };
  auto word_ok = [&](const char* p) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    uint64_t below_space = (word - kOnes * 0x20) & ~word & kHighs;
    uint64_t del = word ^ (kOnes * 0x7f);
    uint64_t has_del = (del - kOnes) & ~del & kHighs;
    if ((below_space | has_del) == 0) return true;
    for (int i = 0; i < 8; ++i) {
      if (!byte_ok(static_cast<unsigned char>(p[i]))) return false;
    }
    return true;
  };
  const char* p = value.data();
  size_t n = value.size();
  if (n < 8) {
    for (size_t i = 0; i < n; ++i) {
      if (!byte_ok(static_cast<unsigned char>(p[i]))) return false;
    }
    return true;
  }
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    if (!word_ok(p + i)) return false;
  }
  return i == n || word_ok(p + n - 8);
}

}  // namespace phoenix::http
