// Certificates made in memory for tests and fuzzers of source/tls: no files, no openssl CLI.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <string>

#include "phoenix/config/v1/tls.pb.h"
#include "source/tls/certificate.h"

namespace phoenix::tls {

// A key and a certificate made in memory, signed by `issuer` (self-signed when null), valid
// from an hour ago until `valid_for_seconds` from now.
struct TestCert {
  std::string cert_pem;
  std::string key_pem;
  X509Ptr cert;
  EvpPkeyPtr key;
};

inline std::string ToPem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  long length = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(length));
  BIO_free(bio);
  return pem;
}

inline std::string ToPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long length = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(length));
  BIO_free(bio);
  return pem;
}

inline void AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

inline TestCert MakeCert(const std::string& cn, const std::string& sans, const TestCert* issuer,
                         long valid_for_seconds = 3600) {
  TestCert out;
  out.key.reset(EVP_EC_gen("P-256"));
  out.cert.reset(X509_new());
  X509* cert = out.cert.get();
  X509_set_version(cert, 2);
  static long serial = 1;  // Distinct serials within one process.
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), valid_for_seconds);
  X509_set_pubkey(cert, out.key.get());
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert, issuer != nullptr ? X509_get_subject_name(issuer->cert.get()) : name);
  if (issuer == nullptr) {
    AddExtension(cert, nullptr, NID_basic_constraints, "critical,CA:TRUE");
    AddExtension(cert, nullptr, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExtension(cert, issuer->cert.get(), NID_basic_constraints, "CA:FALSE");
  }
  if (!sans.empty()) AddExtension(cert, nullptr, NID_subject_alt_name, sans.c_str());
  X509_sign(cert, issuer != nullptr ? issuer->key.get() : out.key.get(), EVP_sha256());
  out.cert_pem = ToPem(cert);
  out.key_pem = ToPem(out.key.get());
  return out;
}

inline config::v1::TlsCertificate Inline(const TestCert& cert) {
  config::v1::TlsCertificate proto;
  proto.mutable_certificate_chain()->set_inline_string(cert.cert_pem);
  proto.mutable_private_key()->set_inline_string(cert.key_pem);
  return proto;
}

}  // namespace phoenix::tls
