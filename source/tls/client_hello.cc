#include "source/tls/client_hello.h"

#include <algorithm>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace phoenix::tls {
namespace {

constexpr uint8_t kContentTypeHandshake = 22;
constexpr uint8_t kHandshakeTypeClientHello = 1;
constexpr uint8_t kTlsMajorVersion = 3;
constexpr uint8_t kMinRecordMinorVersion = 1;  // TLS 1.0 (0x0301), what ClientHellos say.
constexpr uint8_t kMaxRecordMinorVersion = 4;  // TLS 1.3 (0x0304).
constexpr size_t kRecordHeaderBytes = 5;
constexpr size_t kHandshakeHeaderBytes = 4;
// RFC 8446 5.1: a TLSPlaintext fragment is at most 2^14 bytes, and a handshake fragment is
// never empty.
constexpr size_t kMaxRecordFragmentBytes = 16384;
constexpr size_t kRandomBytes = 32;
constexpr size_t kMaxSessionIdBytes = 32;
constexpr uint16_t kExtensionServerName = 0;
constexpr uint16_t kExtensionAlpn = 16;
constexpr uint8_t kNameTypeHostName = 0;
constexpr size_t kMaxHostNameBytes = 255;

// Takes big-endian integers and byte runs off the front of a buffer. Every read checks the
// remaining length first and fails on underflow, so the parser can never read past its input.
class ByteReader {
 public:
  explicit ByteReader(std::string_view data) : data_(data) {}

  bool ReadU8(uint8_t* out) {
    if (data_.empty()) return false;
    *out = static_cast<uint8_t>(data_[0]);
    data_.remove_prefix(1);
    return true;
  }

  bool ReadU16(uint16_t* out) {
    if (data_.size() < 2) return false;
    *out = static_cast<uint16_t>(Byte(0) << 8 | Byte(1));
    data_.remove_prefix(2);
    return true;
  }

  bool ReadU24(uint32_t* out) {
    if (data_.size() < 3) return false;
    *out = Byte(0) << 16 | Byte(1) << 8 | Byte(2);
    data_.remove_prefix(3);
    return true;
  }

  bool ReadBytes(size_t count, std::string_view* out) {
    if (data_.size() < count) return false;
    *out = data_.substr(0, count);
    data_.remove_prefix(count);
    return true;
  }

  // TLS vectors: a 1- or 2-byte length, then that many bytes.
  bool ReadU8Prefixed(std::string_view* out) {
    uint8_t length;
    return ReadU8(&length) && ReadBytes(length, out);
  }
  bool ReadU16Prefixed(std::string_view* out) {
    uint16_t length;
    return ReadU16(&length) && ReadBytes(length, out);
  }

  bool empty() const { return data_.empty(); }

 private:
  uint32_t Byte(size_t i) const { return static_cast<uint8_t>(data_[i]); }

  std::string_view data_;
};

// The fragment length of a complete 5-byte record header.
size_t RecordFragmentBytes(std::string_view record_header) {
  return static_cast<size_t>(static_cast<uint8_t>(record_header[3])) << 8 |
         static_cast<uint8_t>(record_header[4]);
}

// Checks the bytes of a record header received so far (0 to 5 of them), so that a connection
// that is not TLS (plaintext HTTP, SSLv2) is turned away on its first byte rather than after
// a whole header.
bool PlausibleRecordHeader(std::string_view header) {
  auto byte = [&](size_t i) { return static_cast<uint8_t>(header[i]); };
  if (header.size() > 0 && byte(0) != kContentTypeHandshake) return false;
  if (header.size() > 1 && byte(1) != kTlsMajorVersion) return false;
  if (header.size() > 2 && (byte(2) < kMinRecordMinorVersion || byte(2) > kMaxRecordMinorVersion)) {
    return false;
  }
  if (header.size() == kRecordHeaderBytes) {
    size_t length = RecordFragmentBytes(header);
    if (length == 0 || length > kMaxRecordFragmentBytes) return false;
  }
  return true;
}

// RFC 952/1123 host names, plus '_' (seen in the wild) and '*' (so that a wildcard pattern
// can at least be matched literally). Anything else is rejected rather than matched: a filter
// chain is never selected by a name with control bytes, spaces or non-ASCII in it.
bool IsValidHostName(std::string_view name) {
  if (name.empty() || name.size() > kMaxHostNameBytes) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_' || c == '*';
    if (!ok) return false;
  }
  return true;
}

// The server_name extension body (RFC 6066 section 3): a non-empty ServerNameList of
// (name_type, opaque<1..2^16-1>) entries, at most one of type host_name. Sets *host_name to
// that entry, or leaves it empty when there is none.
bool ParseServerName(std::string_view body, std::string_view* host_name) {
  ByteReader reader(body);
  std::string_view list;
  if (!reader.ReadU16Prefixed(&list) || !reader.empty() || list.empty()) return false;
  ByteReader entries(list);
  bool found = false;
  while (!entries.empty()) {
    uint8_t name_type;
    std::string_view name;
    if (!entries.ReadU8(&name_type) || !entries.ReadU16Prefixed(&name)) return false;
    if (name_type != kNameTypeHostName) continue;
    if (found || !IsValidHostName(name)) return false;
    *host_name = name;
    found = true;
  }
  return true;
}

// The ALPN extension body (RFC 7301 section 3.1): a non-empty ProtocolNameList of
// opaque<1..2^8-1> names. Sets *list to the validated list, to be copied out on success.
bool ParseAlpn(std::string_view body, std::string_view* list) {
  ByteReader reader(body);
  std::string_view names;
  if (!reader.ReadU16Prefixed(&names) || !reader.empty() || names.empty()) return false;
  ByteReader names_reader(names);
  while (!names_reader.empty()) {
    std::string_view name;
    if (!names_reader.ReadU8Prefixed(&name) || name.empty()) return false;
  }
  *list = names;
  return true;
}

// Walks the extensions block: every extension must fit, no type may repeat (RFC 8446 4.2),
// and server_name and ALPN must be well-formed. Other extensions are skipped unread.
bool ParseExtensions(std::string_view extensions, std::string_view* host_name,
                     std::string_view* alpn_list) {
  std::bitset<65536> seen;  // One bit per extension type: 8 KiB of stack, no allocation.
  ByteReader reader(extensions);
  while (!reader.empty()) {
    uint16_t type;
    std::string_view body;
    if (!reader.ReadU16(&type) || !reader.ReadU16Prefixed(&body)) return false;
    if (seen.test(type)) return false;
    seen.set(type);
    if (type == kExtensionServerName && !ParseServerName(body, host_name)) return false;
    if (type == kExtensionAlpn && !ParseAlpn(body, alpn_list)) return false;
  }
  return true;
}

// Parses a complete ClientHello body (after the 4-byte handshake header; RFC 8446 4.1.2) and
// fills *hello only once all of it has proved well-formed.
ClientHelloStatus ParseClientHelloBody(std::string_view body, ClientHello* hello) {
  ByteReader reader(body);
  uint16_t legacy_version;
  std::string_view random, session_id, cipher_suites, compression_methods;
  if (!reader.ReadU16(&legacy_version) || legacy_version >> 8 != kTlsMajorVersion) {
    return ClientHelloStatus::kNotTls;
  }
  if (!reader.ReadBytes(kRandomBytes, &random)) return ClientHelloStatus::kNotTls;
  if (!reader.ReadU8Prefixed(&session_id) || session_id.size() > kMaxSessionIdBytes) {
    return ClientHelloStatus::kNotTls;
  }
  if (!reader.ReadU16Prefixed(&cipher_suites) || cipher_suites.size() < 2 ||
      cipher_suites.size() % 2 != 0) {
    return ClientHelloStatus::kNotTls;
  }
  if (!reader.ReadU8Prefixed(&compression_methods) || compression_methods.empty()) {
    return ClientHelloStatus::kNotTls;
  }
  std::string_view host_name, alpn_list;
  if (!reader.empty()) {  // Extensions are optional, but when present must end the body.
    std::string_view extensions;
    if (!reader.ReadU16Prefixed(&extensions) || !reader.empty()) return ClientHelloStatus::kNotTls;
    if (!ParseExtensions(extensions, &host_name, &alpn_list)) return ClientHelloStatus::kNotTls;
  }

  hello->server_name.assign(host_name);
  for (char& c : hello->server_name) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  // Counted first so that the strings already in hello->alpn are reused, not reallocated.
  size_t count = 0;
  for (ByteReader names(alpn_list); !names.empty(); ++count) {
    std::string_view name;
    names.ReadU8Prefixed(&name);
  }
  hello->alpn.resize(count);
  ByteReader names(alpn_list);
  for (std::string& protocol : hello->alpn) {
    std::string_view name;
    names.ReadU8Prefixed(&name);
    protocol.assign(name);
  }
  return ClientHelloStatus::kDone;
}

}  // namespace

ClientHelloStatus ParseClientHello(std::string_view data, ClientHello* hello) {
  // Pass 1: walk the record headers without copying, learning the message length from the
  // first 4 handshake bytes (which may themselves span records), until the records received
  // hold the whole message.
  char handshake_header[kHandshakeHeaderBytes];
  size_t header_bytes = 0;
  size_t message_bytes = 0;  // Header plus body; 0 until the header is known.
  size_t fragment_bytes = 0;
  size_t records = 0;
  size_t pos = 0;
  while (true) {
    std::string_view record_header = data.substr(pos, kRecordHeaderBytes);
    if (!PlausibleRecordHeader(record_header)) return ClientHelloStatus::kNotTls;
    if (record_header.size() < kRecordHeaderBytes) return ClientHelloStatus::kNeedMoreData;
    size_t length = RecordFragmentBytes(record_header);
    size_t fragment_start = pos + kRecordHeaderBytes;
    std::string_view fragment = data.substr(fragment_start, length);  // Maybe not all here yet.
    ++records;
    for (size_t i = 0; header_bytes < kHandshakeHeaderBytes && i < fragment.size(); ++i) {
      handshake_header[header_bytes++] = fragment[i];
    }
    if (header_bytes > 0 &&
        static_cast<uint8_t>(handshake_header[0]) != kHandshakeTypeClientHello) {
      return ClientHelloStatus::kNotTls;
    }
    if (header_bytes == kHandshakeHeaderBytes && message_bytes == 0) {
      ByteReader reader(std::string_view(handshake_header + 1, kHandshakeHeaderBytes - 1));
      uint32_t body_bytes;
      reader.ReadU24(&body_bytes);
      message_bytes = kHandshakeHeaderBytes + body_bytes;
      if (message_bytes > kMaxClientHelloBytes) return ClientHelloStatus::kNotTls;
    }
    fragment_bytes += fragment.size();
    if (message_bytes != 0 && fragment_bytes >= message_bytes) break;
    if (fragment.size() < length) return ClientHelloStatus::kNeedMoreData;
    pos = fragment_start + length;
  }

  // Pass 2: the message, viewed in place when one record holds it (the usual case), else
  // copied out of its records.
  std::string reassembled;
  std::string_view message;
  if (records == 1) {
    message = data.substr(kRecordHeaderBytes, message_bytes);
  } else {
    reassembled.reserve(message_bytes);
    for (pos = 0; reassembled.size() < message_bytes;) {
      size_t length = RecordFragmentBytes(data.substr(pos, kRecordHeaderBytes));
      pos += kRecordHeaderBytes;
      reassembled.append(data.substr(pos, std::min(length, message_bytes - reassembled.size())));
      pos += length;
    }
    message = reassembled;
  }
  return ParseClientHelloBody(message.substr(kHandshakeHeaderBytes), hello);
}

}  // namespace phoenix::tls
