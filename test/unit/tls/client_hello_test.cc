#include "source/tls/client_hello.h"

#include <openssl/bio.h>
#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/unit/fakes/client_hello_bytes.h"

namespace phoenix::tls {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr size_t kRecordHeaderBytes = 5;
constexpr size_t kHandshakeHeaderBytes = 4;

std::string DefaultHello() {
  return OpenSslClientHello({.server_name = "www.example.com", .alpn = {"h2", "http/1.1"}});
}

uint32_t GetU16(std::string_view s, size_t at) {
  return static_cast<uint8_t>(s[at]) << 8 | static_cast<uint8_t>(s[at + 1]);
}
uint32_t GetU24(std::string_view s, size_t at) {
  return static_cast<uint8_t>(s[at]) << 16 | GetU16(s, at + 1);
}
void SetU16(std::string& s, size_t at, uint32_t value) {
  s[at] = static_cast<char>(value >> 8);
  s[at + 1] = static_cast<char>(value);
}
void SetU24(std::string& s, size_t at, uint32_t value) {
  s[at] = static_cast<char>(value >> 16);
  SetU16(s, at + 1, value);
}
std::string U16(uint32_t value) {
  return {static_cast<char>(value >> 8), static_cast<char>(value)};
}

// The handshake message carried by a single-record hello.
std::string MessageOf(std::string_view record) {
  EXPECT_GE(record.size(), kRecordHeaderBytes);
  EXPECT_EQ(GetU16(record, 3), record.size() - kRecordHeaderBytes) << "not a single record";
  return std::string(record.substr(kRecordHeaderBytes));
}

// Frames a handshake message into handshake records of at most `fragment` bytes each, the way
// a client may spread a large hello (the 4-byte handshake header may itself be split).
std::string Reframe(std::string_view message, size_t fragment, uint32_t version = 0x0301) {
  std::string out;
  for (size_t at = 0; at < message.size(); at += fragment) {
    std::string_view piece = message.substr(at, fragment);
    out.push_back(22);
    out.append(U16(version));
    out.append(U16(static_cast<uint32_t>(piece.size())));
    out.append(piece);
  }
  return out;
}

// Offset in a handshake message of the 2-byte extensions block length.
size_t ExtensionsLengthOffset(std::string_view message) {
  size_t at = kHandshakeHeaderBytes + 2 + 32;
  at += 1 + static_cast<uint8_t>(message[at]);  // session_id
  at += 2 + GetU16(message, at);                // cipher_suites
  at += 1 + static_cast<uint8_t>(message[at]);  // compression_methods
  return at;
}

// Offset in a handshake message of the extension of `type` (its 2-byte type field), or 0.
size_t FindExtension(std::string_view message, uint32_t type) {
  size_t at = ExtensionsLengthOffset(message) + 2;
  while (at + 4 <= message.size()) {
    if (GetU16(message, at) == type) return at;
    at += 4 + GetU16(message, at + 2);
  }
  return 0;
}

// Like FindExtension, for an extension the test relies on.
size_t ExtensionOffset(std::string_view message, uint32_t type) {
  size_t at = FindExtension(message, type);
  EXPECT_NE(at, 0u) << "no extension " << type;
  return at;
}

// `message` with one more extension at the end of its extensions block, lengths fixed up.
std::string WithExtension(std::string message, uint32_t type, std::string_view body) {
  message += U16(type) + U16(static_cast<uint32_t>(body.size())) + std::string(body);
  size_t length_at = ExtensionsLengthOffset(message);
  SetU16(message, length_at, static_cast<uint32_t>(message.size() - length_at - 2));
  SetU24(message, 1, static_cast<uint32_t>(message.size() - kHandshakeHeaderBytes));
  return message;
}

// `message` with `remove` bytes at `at` replaced by `insert`, the handshake length fixed up
// (but no inner length).
std::string Splice(std::string message, size_t at, size_t remove, std::string_view insert) {
  message.replace(at, remove, insert);
  SetU24(message, 1, static_cast<uint32_t>(message.size() - kHandshakeHeaderBytes));
  return message;
}

// A server_name extension body listing (name_type, name) entries.
std::string ServerNameBody(const std::vector<std::pair<uint8_t, std::string>>& entries) {
  std::string list;
  for (const auto& [type, name] : entries) {
    list += static_cast<char>(type) + U16(static_cast<uint32_t>(name.size())) + name;
  }
  return U16(static_cast<uint32_t>(list.size())) + list;
}

ClientHelloStatus Parse(std::string_view data, ClientHello* hello) {
  return ParseClientHello(data, hello);
}
ClientHelloStatus Parse(std::string_view data) {
  ClientHello hello;
  return ParseClientHello(data, &hello);
}

TEST(ParseClientHelloTest, ReadsSniAndAlpnFromOpenSslHello) {
  ClientHello hello;
  ASSERT_EQ(Parse(DefaultHello(), &hello), ClientHelloStatus::kDone);
  EXPECT_EQ(hello.server_name, "www.example.com");
  EXPECT_THAT(hello.alpn, ElementsAre("h2", "http/1.1"));
}

TEST(ParseClientHelloTest, HelloWithoutSniHasEmptyServerName) {
  ClientHello hello;
  ASSERT_EQ(Parse(OpenSslClientHello({.alpn = {"h2"}}), &hello), ClientHelloStatus::kDone);
  EXPECT_EQ(hello.server_name, "");
  EXPECT_THAT(hello.alpn, ElementsAre("h2"));
}

TEST(ParseClientHelloTest, HelloWithoutAlpnHasNoProtocols) {
  ClientHello hello;
  ASSERT_EQ(Parse(OpenSslClientHello({.server_name = "api.example.org"}), &hello),
            ClientHelloStatus::kDone);
  EXPECT_EQ(hello.server_name, "api.example.org");
  EXPECT_THAT(hello.alpn, IsEmpty());
}

TEST(ParseClientHelloTest, Tls12OnlyHelloParses) {
  ClientHello hello;
  std::string bytes = OpenSslClientHello(
      {.server_name = "legacy.example.com", .alpn = {"http/1.1"}, .max_version = TLS1_2_VERSION});
  ASSERT_EQ(FindExtension(MessageOf(bytes), 43), 0u) << "expected no supported_versions";
  ASSERT_EQ(Parse(bytes, &hello), ClientHelloStatus::kDone);
  EXPECT_EQ(hello.server_name, "legacy.example.com");
  EXPECT_THAT(hello.alpn, ElementsAre("http/1.1"));
}

TEST(ParseClientHelloTest, UppercaseSniIsLowercased) {
  ClientHello hello;
  ASSERT_EQ(Parse(OpenSslClientHello({.server_name = "WWW.Example.COM"}), &hello),
            ClientHelloStatus::kDone);
  EXPECT_EQ(hello.server_name, "www.example.com");
}

TEST(ParseClientHelloTest, HostNameMayHoldUnderscoreAndWildcard) {
  ClientHello hello;
  ASSERT_EQ(Parse(OpenSslClientHello({.server_name = "_svc.*.Example-1.com."}), &hello),
            ClientHelloStatus::kDone);
  EXPECT_EQ(hello.server_name, "_svc.*.example-1.com.");
}

TEST(ParseClientHelloTest, EveryProperPrefixNeedsMoreData) {
  std::string bytes = DefaultHello();
  for (size_t size = 0; size < bytes.size(); ++size) {
    ASSERT_EQ(Parse(std::string_view(bytes).substr(0, size)), ClientHelloStatus::kNeedMoreData)
        << "prefix of " << size << " of " << bytes.size() << " bytes";
  }
  EXPECT_EQ(Parse(bytes), ClientHelloStatus::kDone);
}

TEST(ParseClientHelloTest, HelloSplitIntoTwoRecordsParses) {
  std::string message = MessageOf(DefaultHello());
  std::string bytes = Reframe(message, message.size() / 2 + 1);
  ASSERT_EQ(bytes.size(), message.size() + 2 * kRecordHeaderBytes);
  ClientHello hello;
  ASSERT_EQ(Parse(bytes, &hello), ClientHelloStatus::kDone);
  EXPECT_EQ(hello.server_name, "www.example.com");
  EXPECT_THAT(hello.alpn, ElementsAre("h2", "http/1.1"));
  // Nothing is decided before the second record is complete.
  for (size_t size = 0; size < bytes.size(); ++size) {
    ASSERT_EQ(Parse(std::string_view(bytes).substr(0, size)), ClientHelloStatus::kNeedMoreData)
        << size;
  }
}

TEST(ParseClientHelloTest, HelloInTinyRecordsParsesEvenWithTheHandshakeHeaderSplit) {
  std::string message = MessageOf(DefaultHello());
  for (size_t fragment : {1, 2, 3, 7, 100}) {
    ClientHello hello;
    ASSERT_EQ(Parse(Reframe(message, fragment, 0x0303), &hello), ClientHelloStatus::kDone)
        << fragment;
    EXPECT_EQ(hello.server_name, "www.example.com");
    EXPECT_THAT(hello.alpn, ElementsAre("h2", "http/1.1"));
  }
}

TEST(ParseClientHelloTest, HelloFragmentedByOpenSslParses) {
  std::vector<std::string> alpn;
  for (int i = 0; i < 60; ++i) alpn.push_back("protocol-number-" + std::to_string(i));
  std::string bytes = OpenSslClientHello(
      {.server_name = "big.example.com", .alpn = alpn, .max_send_fragment = 512});
  ASSERT_GT(bytes.size(), 1024u);
  ASSERT_EQ(GetU16(bytes, 3), 512u) << "expected OpenSSL to split the hello into records";
  ClientHello hello;
  ASSERT_EQ(Parse(bytes, &hello), ClientHelloStatus::kDone);
  EXPECT_EQ(hello.server_name, "big.example.com");
  EXPECT_EQ(hello.alpn, alpn);
}

TEST(ParseClientHelloTest, BytesAfterTheHelloAreIgnored) {
  std::string bytes = DefaultHello() + std::string("\x14\x03\x03\x00\x01\x01", 6);  // CCS
  ClientHello hello;
  ASSERT_EQ(Parse(bytes, &hello), ClientHelloStatus::kDone);
  EXPECT_EQ(hello.server_name, "www.example.com");
}

TEST(ParseClientHelloTest, HelloWithoutExtensionsBlockParses) {
  std::string message = MessageOf(DefaultHello());
  message.resize(ExtensionsLengthOffset(message));
  SetU24(message, 1, static_cast<uint32_t>(message.size() - kHandshakeHeaderBytes));
  ClientHello hello;
  hello.server_name = "stale";
  hello.alpn = {"stale"};
  ASSERT_EQ(Parse(Reframe(message, 16384), &hello), ClientHelloStatus::kDone);
  EXPECT_EQ(hello.server_name, "");
  EXPECT_THAT(hello.alpn, IsEmpty());
}

TEST(ParseClientHelloTest, ReusedHelloIsOverwritten) {
  ClientHello hello;
  ASSERT_EQ(
      Parse(OpenSslClientHello({.server_name = "a.example", .alpn = {"x", "y", "z"}}), &hello),
      ClientHelloStatus::kDone);
  ASSERT_EQ(Parse(OpenSslClientHello({.alpn = {"h2"}}), &hello), ClientHelloStatus::kDone);
  EXPECT_EQ(hello.server_name, "");
  EXPECT_THAT(hello.alpn, ElementsAre("h2"));
}

TEST(ParseClientHelloTest, FailureLeavesHelloUntouched) {
  std::string message = MessageOf(DefaultHello());
  message[kHandshakeHeaderBytes + 2 + 32] = 33;  // session_id length
  ClientHello hello;
  hello.server_name = "before";
  ASSERT_EQ(Parse(Reframe(message, 16384), &hello), ClientHelloStatus::kNotTls);
  EXPECT_EQ(hello.server_name, "before");
}

TEST(ParseClientHelloTest, PlaintextHttpIsNotTls) {
  EXPECT_EQ(Parse("GET / HTTP/1.1\r\n"), ClientHelloStatus::kNotTls);
  EXPECT_EQ(Parse("G"), ClientHelloStatus::kNotTls) << "decided on the first byte";
  EXPECT_EQ(Parse("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), ClientHelloStatus::kNotTls);
}

TEST(ParseClientHelloTest, StartOfRecordHeaderNeedsMoreData) {
  EXPECT_EQ(Parse(""), ClientHelloStatus::kNeedMoreData);
  EXPECT_EQ(Parse("\x16"), ClientHelloStatus::kNeedMoreData);
  EXPECT_EQ(Parse("\x16\x03\x01"), ClientHelloStatus::kNeedMoreData);
  EXPECT_EQ(Parse(std::string_view("\x16\x03\x01\x00\xf0\x01\x00", 7)),
            ClientHelloStatus::kNeedMoreData);
}

TEST(ParseClientHelloTest, Ssl2HelloIsNotTls) {
  // SSLv2-compatible CLIENT-HELLO: 2-byte length with the high bit set, type 1, version 3.1.
  EXPECT_EQ(Parse(std::string_view("\x80\x2e\x01\x03\x01\x00\x15\x00\x00\x00\x10", 11)),
            ClientHelloStatus::kNotTls);
  EXPECT_EQ(Parse("\x80"), ClientHelloStatus::kNotTls);
}

TEST(ParseClientHelloTest, BadRecordHeaderIsNotTls) {
  const std::string good = DefaultHello();
  struct Mutation {
    const char* what;
    std::function<void(std::string&)> apply;
  };
  const Mutation mutations[] = {
      {"alert record", [](std::string& s) { s[0] = 21; }},
      {"application data record", [](std::string& s) { s[0] = 23; }},
      {"major version 2", [](std::string& s) { s[1] = 2; }},
      {"SSL 3.0 record", [](std::string& s) { s[2] = 0; }},
      {"unknown minor version 5", [](std::string& s) { s[2] = 5; }},
      {"empty record", [](std::string& s) { SetU16(s, 3, 0); }},
      {"record longer than 2^14", [](std::string& s) { SetU16(s, 3, 16385); }},
  };
  for (const Mutation& mutation : mutations) {
    std::string bytes = good;
    mutation.apply(bytes);
    EXPECT_EQ(Parse(bytes), ClientHelloStatus::kNotTls) << mutation.what;
    // Rejected as soon as the offending header byte arrives.
    EXPECT_EQ(Parse(std::string_view(bytes).substr(0, kRecordHeaderBytes)),
              ClientHelloStatus::kNotTls)
        << mutation.what;
  }
}

TEST(ParseClientHelloTest, SecondRecordMustBeHandshakeToo) {
  std::string message = MessageOf(DefaultHello());
  std::string bytes = Reframe(message, 100);
  bytes[kRecordHeaderBytes + 100] = 23;
  EXPECT_EQ(Parse(bytes), ClientHelloStatus::kNotTls);
}

TEST(ParseClientHelloTest, OtherHandshakeMessagesAreNotTls) {
  std::string bytes = DefaultHello();
  bytes[kRecordHeaderBytes] = 2;  // ServerHello
  EXPECT_EQ(Parse(bytes), ClientHelloStatus::kNotTls);
  EXPECT_EQ(Parse(std::string_view(bytes).substr(0, kRecordHeaderBytes + 1)),
            ClientHelloStatus::kNotTls);
}

TEST(ParseClientHelloTest, OversizeDeclaredHandshakeLengthIsNotTls) {
  std::string bytes = DefaultHello();
  SetU24(bytes, kRecordHeaderBytes + 1, kMaxClientHelloBytes - kHandshakeHeaderBytes + 1);
  // Known from the handshake header alone, long before that many bytes could arrive.
  EXPECT_EQ(Parse(std::string_view(bytes).substr(0, kRecordHeaderBytes + kHandshakeHeaderBytes)),
            ClientHelloStatus::kNotTls);
  SetU24(bytes, kRecordHeaderBytes + 1, 0xffffff);
  EXPECT_EQ(Parse(bytes), ClientHelloStatus::kNotTls);
  // At the limit it is only incomplete.
  SetU24(bytes, kRecordHeaderBytes + 1, kMaxClientHelloBytes - kHandshakeHeaderBytes);
  EXPECT_EQ(Parse(bytes), ClientHelloStatus::kNeedMoreData);
}

TEST(ParseClientHelloTest, LargestHelloParsesAndOneByteMoreIsNotTls) {
  std::string message = MessageOf(DefaultHello());
  // A padding extension (21) that brings the message to exactly kMaxClientHelloBytes.
  size_t padding = kMaxClientHelloBytes - message.size() - 4;
  std::string largest = WithExtension(message, 21, std::string(padding, '\0'));
  ASSERT_EQ(largest.size(), kMaxClientHelloBytes);
  ClientHello hello;
  ASSERT_EQ(Parse(Reframe(largest, 16384), &hello), ClientHelloStatus::kDone);
  EXPECT_EQ(hello.server_name, "www.example.com");

  std::string too_large = WithExtension(message, 21, std::string(padding + 1, '\0'));
  EXPECT_EQ(Parse(Reframe(too_large, 16384)), ClientHelloStatus::kNotTls);
}

TEST(ParseClientHelloTest, CorruptedLengthFieldsAreNotTls) {
  const std::string good = MessageOf(DefaultHello());
  const size_t session_id_at = kHandshakeHeaderBytes + 2 + 32;
  const size_t cipher_suites_at = session_id_at + 1 + static_cast<uint8_t>(good[session_id_at]);
  const size_t compression_at = cipher_suites_at + 2 + GetU16(good, cipher_suites_at);
  const size_t extensions_at = ExtensionsLengthOffset(good);
  const size_t sni_at = ExtensionOffset(good, 0);
  const size_t alpn_at = ExtensionOffset(good, 16);
  auto add16 = [](std::string& s, size_t at, int delta) { SetU16(s, at, GetU16(s, at) + delta); };
  struct Mutation {
    const char* what;
    std::function<void(std::string&)> apply;
  };
  const Mutation mutations[] = {
      {"handshake length one short", [](std::string& s) { SetU24(s, 1, GetU24(s, 1) - 1); }},
      {"handshake length 0", [](std::string& s) { SetU24(s, 1, 0); }},
      {"legacy_version major 2", [](std::string& s) { s[kHandshakeHeaderBytes] = 2; }},
      {"session_id of 33 bytes", [&](std::string& s) { s[session_id_at] = 33; }},
      {"session_id past the end", [&](std::string& s) { s[session_id_at] = '\xff'; }},
      {"odd cipher_suites length", [&](std::string& s) { add16(s, cipher_suites_at, -1); }},
      {"no cipher_suites", [&](std::string& s) { SetU16(s, cipher_suites_at, 0); }},
      {"cipher_suites past the end", [&](std::string& s) { SetU16(s, cipher_suites_at, 0xfffe); }},
      {"no compression_methods", [&](std::string& s) { s[compression_at] = 0; }},
      {"extensions block one long", [&](std::string& s) { add16(s, extensions_at, 1); }},
      {"extensions block one short", [&](std::string& s) { add16(s, extensions_at, -1); }},
      {"SNI extension one long", [&](std::string& s) { add16(s, sni_at + 2, 1); }},
      {"SNI list one short", [&](std::string& s) { add16(s, sni_at + 4, -1); }},
      {"SNI list empty", [&](std::string& s) { SetU16(s, sni_at + 4, 0); }},
      {"SNI host_name one long", [&](std::string& s) { add16(s, sni_at + 7, 1); }},
      {"ALPN list one long", [&](std::string& s) { add16(s, alpn_at + 4, 1); }},
      {"ALPN name past its list", [&](std::string& s) { s[alpn_at + 6] = 9; }},
      {"ALPN name empty", [&](std::string& s) { s[alpn_at + 6] = 0; }},
  };
  for (const Mutation& mutation : mutations) {
    std::string message = good;
    mutation.apply(message);
    EXPECT_EQ(Parse(Reframe(message, 16384)), ClientHelloStatus::kNotTls) << mutation.what;
  }
}

// Each field below is wrong while every length around it is consistent, so that it is the
// field's own check that rejects it, not a misparse of what follows.
TEST(ParseClientHelloTest, WellFramedButInvalidFieldsAreNotTls) {
  const std::string good = MessageOf(DefaultHello());
  const size_t session_id_at = kHandshakeHeaderBytes + 2 + 32;
  const size_t session_id_bytes = static_cast<uint8_t>(good[session_id_at]);
  ASSERT_EQ(session_id_bytes, 32u) << "OpenSSL sends a 32-byte legacy_session_id";
  const size_t cipher_suites_at = session_id_at + 1 + session_id_bytes;
  const size_t compression_at = cipher_suites_at + 2 + GetU16(good, cipher_suites_at);
  ASSERT_EQ(good[compression_at], 1);

  std::string session_id_33 = Splice(good, session_id_at + 1, 0, "x");
  session_id_33[session_id_at] = 33;
  EXPECT_EQ(Parse(Reframe(session_id_33, 16384)), ClientHelloStatus::kNotTls);

  std::string odd_suites = Splice(good, cipher_suites_at + 2, 0, "x");
  SetU16(odd_suites, cipher_suites_at, GetU16(good, cipher_suites_at) + 1);
  EXPECT_EQ(Parse(Reframe(odd_suites, 16384)), ClientHelloStatus::kNotTls);

  std::string no_suites =
      Splice(good, cipher_suites_at, compression_at - cipher_suites_at, std::string(2, '\0'));
  EXPECT_EQ(Parse(Reframe(no_suites, 16384)), ClientHelloStatus::kNotTls);

  std::string no_compression = Splice(good, compression_at, 2, std::string(1, '\0'));
  EXPECT_EQ(Parse(Reframe(no_compression, 16384)), ClientHelloStatus::kNotTls);

  std::string byte_after_extensions = Splice(good, good.size(), 0, "x");
  EXPECT_EQ(Parse(Reframe(byte_after_extensions, 16384)), ClientHelloStatus::kNotTls);

  std::string lone_extensions_byte = Splice(good, ExtensionsLengthOffset(good), good.npos, "x");
  EXPECT_EQ(Parse(Reframe(lone_extensions_byte, 16384)), ClientHelloStatus::kNotTls);

  // And the same splices that keep every field valid parse.
  std::string short_session_id = Splice(good, session_id_at, 1 + session_id_bytes, "\x01x");
  EXPECT_EQ(Parse(Reframe(short_session_id, 16384)), ClientHelloStatus::kDone);
}

TEST(ParseClientHelloTest, DuplicateExtensionIsNotTls) {
  const std::string message = MessageOf(DefaultHello());
  EXPECT_EQ(
      Parse(Reframe(WithExtension(message, 0, ServerNameBody({{0, "other.example"}})), 16384)),
      ClientHelloStatus::kNotTls);
  EXPECT_EQ(Parse(Reframe(WithExtension(message, 16, std::string("\x00\x03\x02h2", 5)), 16384)),
            ClientHelloStatus::kNotTls);
  std::string twice = WithExtension(WithExtension(message, 0x1234, ""), 0x1234, "");
  EXPECT_EQ(Parse(Reframe(twice, 16384)), ClientHelloStatus::kNotTls);
  // Distinct unknown extensions are fine.
  std::string distinct = WithExtension(WithExtension(message, 0x1234, ""), 0x1235, "x");
  EXPECT_EQ(Parse(Reframe(distinct, 16384)), ClientHelloStatus::kDone);
}

TEST(ParseClientHelloTest, InvalidHostNameIsNotTls) {
  // OpenSSL sends whatever it is given.
  EXPECT_EQ(Parse(OpenSslClientHello({.server_name = "bad host.example"})),
            ClientHelloStatus::kNotTls);
  EXPECT_EQ(Parse(OpenSslClientHello({.server_name = "caf\xc3\xa9.example"})),
            ClientHelloStatus::kNotTls);
  EXPECT_EQ(Parse(OpenSslClientHello({.server_name = "a/b"})), ClientHelloStatus::kNotTls);

  const std::string no_sni = MessageOf(OpenSslClientHello({.alpn = {"h2"}}));
  auto with_names = [&](const std::vector<std::pair<uint8_t, std::string>>& entries) {
    return Parse(Reframe(WithExtension(no_sni, 0, ServerNameBody(entries)), 16384));
  };
  EXPECT_EQ(with_names({{0, ""}}), ClientHelloStatus::kNotTls);
  EXPECT_EQ(with_names({{0, std::string("a\0b", 3)}}), ClientHelloStatus::kNotTls);
  EXPECT_EQ(with_names({{0, std::string(256, 'a')}}), ClientHelloStatus::kNotTls);
  EXPECT_EQ(with_names({{0, "a.example"}, {0, "b.example"}}), ClientHelloStatus::kNotTls);

  ClientHello hello;
  ASSERT_EQ(
      Parse(Reframe(WithExtension(no_sni, 0, ServerNameBody({{0, std::string(255, 'A')}})), 16384),
            &hello),
      ClientHelloStatus::kDone);
  EXPECT_EQ(hello.server_name, std::string(255, 'a'));
}

TEST(ParseClientHelloTest, OnlyHostNameEntriesAreServerNames) {
  const std::string no_sni = MessageOf(OpenSslClientHello({.alpn = {"h2"}}));
  ClientHello hello;
  ASSERT_EQ(
      Parse(Reframe(WithExtension(no_sni, 0, ServerNameBody({{7, "not a host name"}})), 16384),
            &hello),
      ClientHelloStatus::kDone);
  EXPECT_EQ(hello.server_name, "");
  ASSERT_EQ(Parse(Reframe(WithExtension(no_sni, 0,
                                        ServerNameBody({{7, "opaque\x01"}, {0, "Host.Example"}})),
                          16384),
                  &hello),
            ClientHelloStatus::kDone);
  EXPECT_EQ(hello.server_name, "host.example");
}

TEST(ParseClientHelloTest, AlpnNamesAreKeptVerbatim) {
  const std::string no_alpn = MessageOf(OpenSslClientHello({.server_name = "x.example"}));
  std::string names = std::string("\x02h2", 3) + std::string("\x03\x00\xff\x41", 4);
  ClientHello hello;
  ASSERT_EQ(Parse(Reframe(WithExtension(no_alpn, 16, U16(names.size()) + names), 16384), &hello),
            ClientHelloStatus::kDone);
  EXPECT_THAT(hello.alpn, ElementsAre("h2", std::string("\x00\xff\x41", 3)));
  EXPECT_EQ(Parse(Reframe(WithExtension(no_alpn, 16, U16(0)), 16384)), ClientHelloStatus::kNotTls)
      << "empty protocol list";
  std::string with_empty = std::string("\x02h2\x00", 4);
  EXPECT_EQ(Parse(Reframe(WithExtension(no_alpn, 16, U16(4) + with_empty), 16384)),
            ClientHelloStatus::kNotTls)
      << "empty protocol name";
  std::string extension_too_long = U16(3) + std::string("\x02h2", 3) + "x";
  EXPECT_EQ(Parse(Reframe(WithExtension(no_alpn, 16, extension_too_long), 16384)),
            ClientHelloStatus::kNotTls)
      << "byte after the protocol list";
}

}  // namespace
}  // namespace phoenix::tls
