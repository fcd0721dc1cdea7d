// Genuine TLS ClientHello bytes from an OpenSSL client, for tests of what reads them before
// any TLS state exists (the ClientHello parser, filter chain selection).
#pragma once

#include <openssl/bio.h>
#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace phoenix::tls {

// What the OpenSSL client is told to offer.
struct ClientOptions {
  std::string server_name = "";        // "": no SNI.
  std::vector<std::string> alpn = {};  // Empty: no ALPN.
  int max_version = 0;                 // 0: OpenSSL's default (TLS 1.3).
  unsigned max_send_fragment = 0;      // 0: OpenSSL's default (16384).
};

// Genuine ClientHello bytes: what an OpenSSL client writes on its first SSL_connect() into a
// memory BIO, before any server has answered.
inline std::string OpenSslClientHello(const ClientOptions& options) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        SSL_CTX_free);
  if (ctx == nullptr) {
    ADD_FAILURE() << "SSL_CTX_new";
    return "";
  }
  if (options.max_version != 0) SSL_CTX_set_max_proto_version(ctx.get(), options.max_version);
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl.get(), rbio, wbio);  // The SSL owns both.
  if (!options.server_name.empty() &&
      SSL_set_tlsext_host_name(ssl.get(), options.server_name.c_str()) != 1) {
    ADD_FAILURE() << "SSL_set_tlsext_host_name " << options.server_name;
  }
  if (!options.alpn.empty()) {
    std::string wire;
    for (const std::string& name : options.alpn) {
      wire.push_back(static_cast<char>(name.size()));
      wire.append(name);
    }
    // Returns 0 on success.
    if (SSL_set_alpn_protos(ssl.get(), reinterpret_cast<const unsigned char*>(wire.data()),
                            static_cast<unsigned>(wire.size())) != 0) {
      ADD_FAILURE() << "SSL_set_alpn_protos";
    }
  }
  if (options.max_send_fragment != 0) {
    SSL_set_max_send_fragment(ssl.get(), options.max_send_fragment);
  }
  int rc = SSL_connect(ssl.get());
  EXPECT_EQ(rc, -1);
  EXPECT_EQ(SSL_get_error(ssl.get(), rc), SSL_ERROR_WANT_READ);
  char* bytes = nullptr;
  long size = BIO_get_mem_data(wbio, &bytes);
  return std::string(bytes, static_cast<size_t>(size));
}

}  // namespace phoenix::tls
