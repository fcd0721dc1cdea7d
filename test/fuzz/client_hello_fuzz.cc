// Fuzzes phoenix::tls::ParseClientHello (source/tls/client_hello.h), the hand parser that
// reads SNI and ALPN off the first bytes of every TLS connection.
//
// Input: the bytes a client sent, from the start of the connection.
//
// Invariants checked:
//  - kDone: server_name is 1..255 lowercase host name characters or empty, and every ALPN
//    name is non-empty;
//  - streaming: the listener calls again with more bytes after kNeedMoreData, so a prefix
//    (a quarter, a half, all but one byte) must never contradict the whole: kNotTls on a
//    prefix stays kNotTls, kDone on a prefix stays kDone with the same hello, and when the
//    whole is kDone no prefix is kNotTls;
//  - framing: when the input is exactly one handshake record, cutting its fragment into
//    records of 1..64 bytes (the size taken from the last input byte) changes nothing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "source/tls/client_hello.h"
#include "test/fuzz/fuzz_util.h"

namespace phoenix::fuzz {
namespace {

using tls::ClientHello;
using tls::ClientHelloStatus;

bool IsLowercaseHostNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' ||
         c == '*';
}

void CheckHello(const ClientHello& hello) {
  FUZZ_CHECK(hello.server_name.size() <= 255);
  for (char c : hello.server_name) FUZZ_CHECK(IsLowercaseHostNameChar(c));
  for (const std::string& protocol : hello.alpn) {
    FUZZ_CHECK(!protocol.empty());
    FUZZ_CHECK(protocol.size() <= 255);
  }
}

bool SameHello(const ClientHello& a, const ClientHello& b) {
  return a.server_name == b.server_name && a.alpn == b.alpn;
}

// Parses `data` and checks any hello it yields.
ClientHelloStatus ParseAndCheck(std::string_view data, ClientHello* hello) {
  ClientHelloStatus status = tls::ParseClientHello(data, hello);
  if (status == ClientHelloStatus::kDone) CheckHello(*hello);
  return status;
}

// The same handshake bytes cut into records of `fragment` bytes with the record header's
// version.
std::string Reframe(std::string_view header, std::string_view handshake, size_t fragment) {
  std::string out;
  for (size_t at = 0; at < handshake.size(); at += fragment) {
    std::string_view piece = handshake.substr(at, fragment);
    out.append(header.substr(0, 3));
    out.push_back(static_cast<char>(piece.size() >> 8));
    out.push_back(static_cast<char>(piece.size()));
    out.append(piece);
  }
  return out;
}

}  // namespace
}  // namespace phoenix::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using phoenix::fuzz::ParseAndCheck;
  using phoenix::fuzz::SameHello;
  using phoenix::tls::ClientHello;
  using phoenix::tls::ClientHelloStatus;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  ClientHello whole;
  const ClientHelloStatus status = ParseAndCheck(input, &whole);

  for (size_t prefix : {size / 4, size / 2, size > 0 ? size - 1 : 0}) {
    ClientHello partial;
    ClientHelloStatus partial_status = ParseAndCheck(input.substr(0, prefix), &partial);
    if (partial_status == ClientHelloStatus::kNotTls)
      FUZZ_CHECK(status == ClientHelloStatus::kNotTls);
    if (partial_status == ClientHelloStatus::kDone) {
      FUZZ_CHECK(status == ClientHelloStatus::kDone);
      FUZZ_CHECK(SameHello(partial, whole));
    }
    if (status == ClientHelloStatus::kDone)
      FUZZ_CHECK(partial_status != ClientHelloStatus::kNotTls);
  }

  // Exactly one record: re-cut its fragment into smaller records.
  if (size > 5 && data[0] == 22 && (static_cast<size_t>(data[3]) << 8 | data[4]) == size - 5 &&
      size - 5 <= 16384) {
    size_t fragment = 1 + data[size - 1] % 64;
    ClientHello reframed;
    ClientHelloStatus reframed_status =
        ParseAndCheck(phoenix::fuzz::Reframe(input, input.substr(5), fragment), &reframed);
    FUZZ_CHECK(reframed_status == status);
    if (status == ClientHelloStatus::kDone) FUZZ_CHECK(SameHello(reframed, whole));
  }
  return 0;
}
