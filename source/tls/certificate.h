#pragma once

#include <openssl/ssl.h>

#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "phoenix/config/v1/tls.pb.h"
#include "source/network/connection.h"

namespace phoenix::tls {

// Owning handles for OpenSSL objects.
struct OpenSslFree {
  void operator()(X509* x) const { X509_free(x); }
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
  void operator()(SSL* s) const { SSL_free(s); }
  void operator()(SSL_SESSION* s) const { SSL_SESSION_free(s); }
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
using X509Ptr = std::unique_ptr<X509, OpenSslFree>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslFree>;
using X509StorePtr = std::unique_ptr<X509_STORE, OpenSslFree>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, OpenSslFree>;
using SslPtr = std::unique_ptr<SSL, OpenSslFree>;
using SslSessionPtr = std::unique_ptr<SSL_SESSION, OpenSslFree>;
using X509StackPtr = std::unique_ptr<STACK_OF(X509), OpenSslFree>;

// What an operator wants to know about a certificate in force (admin /certs, the expiry gauge).
struct CertificateInfo {
  std::string source;  // "/etc/phoenix/server.crt", or "inline"
  std::string subject;
  std::vector<std::string> subject_alt_names;  // "DNS:localhost", "URI:spiffe://..."
  std::string serial;                          // Hex.
  std::string key_type;                        // "ECDSA P-256", "RSA 2048"
  time_t not_before = 0;
  time_t not_after = 0;
};

// A certificate chain and its private key, parsed and checked: the key matches the leaf and
// the leaf is valid now.
struct LoadedCertificate {
  X509Ptr leaf;
  X509StackPtr chain;  // The intermediates after the leaf; may be empty.
  EvpPkeyPtr key;
  CertificateInfo info;
  std::string pem;  // Chain and key bytes as read, for the context's fingerprint.
};

// Where a DataSource's bytes come from, for messages: "file /x.pem" or "inline".
std::string DescribeSource(const config::v1::DataSource& source);
// The bytes of `source`: the file's contents or the inline string. The error names the file.
absl::StatusOr<std::string> ReadDataSource(const config::v1::DataSource& source);

// Loads and checks a certificate chain and key. A bad one (unparseable, a key that does not
// match, expired, not yet valid) is an error naming the file; a key file readable by others
// is logged as a warning.
absl::StatusOr<LoadedCertificate> LoadCertificate(const config::v1::TlsCertificate& proto);
// Loads a PEM CA bundle into a new store; an error names the file.
absl::StatusOr<X509StorePtr> LoadTrustedCa(const config::v1::DataSource& source, std::string* pem);

// Subject, SANs, serial and validity of `cert`.
CertificateInfo DescribeCertificate(X509* cert, std::string source);
// Fills `info` from an established connection: version, cipher, resumption and the peer's
// certificate; `local_uri_san` is this side's (known from its context, not parsed again).
void DescribeSession(SSL* ssl, std::string_view local_uri_san, network::TlsInfo* info);
// "CN=admin,O=x" style one-line subject.
std::string SubjectOf(X509* cert);

}  // namespace phoenix::tls
