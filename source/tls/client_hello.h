// Reads the SNI and ALPN offers out of a TLS ClientHello so that a listener can pick a filter
// chain before any TLS state exists (what Envoy's tls_inspector does). Hand-parsed: no OpenSSL
// calls, no allocation until a hello is complete and valid.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace phoenix::tls {

// What a ClientHello offers that filter chain selection needs.
struct ClientHello {
  std::string server_name;        // SNI host_name, lowercased; "" if none.
  std::vector<std::string> alpn;  // ALPN protocol names in the client's order.
};

enum class ClientHelloStatus { kNeedMoreData, kDone, kNotTls };

// Largest ClientHello accepted (bytes of handshake message: its 4-byte header plus the body);
// bigger is kNotTls.
inline constexpr size_t kMaxClientHelloBytes = 64 * 1024;

// Parses the start of a connection's bytes. kNeedMoreData: the ClientHello is incomplete so far
// (call again with more bytes: `data` is always everything received from the start);
// kDone: *hello is filled; kNotTls: these bytes are not a TLS ClientHello (plaintext HTTP,
// garbage, SSLv2, a malformed or oversized hello).
//
// *hello is only written on kDone. Bytes after the ClientHello (the rest of its last record,
// later records) are ignored. The hello may span several handshake records; each call re-walks
// the record headers, so a caller feeding tiny reads pays O(records) per call until the message
// is complete, then one O(message) parse.
ClientHelloStatus ParseClientHello(std::string_view data, ClientHello* hello);

}  // namespace phoenix::tls
