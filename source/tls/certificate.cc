#include "source/tls/certificate.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "source/common/logging.h"

namespace phoenix::tls {
namespace {

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;

BioPtr MemoryBio(const std::string& bytes) {
  return BioPtr(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())), &BIO_free);
}

std::string FormatTime(time_t t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromTimeT(t), absl::UTCTimeZone());
}

time_t ToTimeT(const ASN1_TIME* time) {
  struct tm tm = {};
  if (ASN1_TIME_to_tm(time, &tm) != 1) return 0;
  return timegm(&tm);
}

std::string KeyType(EVP_PKEY* key) {
  if (key == nullptr) return "unknown";
  int bits = EVP_PKEY_get_bits(key);
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
      return absl::StrCat("RSA ", bits);
    case EVP_PKEY_EC: {
      char group[64] = "";
      size_t length = 0;
      EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof(group), &length);
      std::string name = group;
      if (name == "prime256v1") name = "P-256";
      if (name == "secp384r1") name = "P-384";
      return absl::StrCat("ECDSA ", name);
    }
    case EVP_PKEY_ED25519:
      return "Ed25519";
    default:
      return absl::StrCat("other ", bits);
  }
}

// Warns when a private key file can be read by users other than its owner.
void WarnIfWorldReadable(const config::v1::DataSource& source) {
  if (source.specifier_case() != config::v1::DataSource::kFilename) return;
  struct stat st;
  if (stat(source.filename().c_str(), &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)) != 0) {
    PHX_LOG(kWarn, "tls: private key file ", source.filename(),
            " is readable by other users; chmod 600 it");
  }
}

}  // namespace

std::string DescribeSource(const config::v1::DataSource& source) {
  if (source.specifier_case() == config::v1::DataSource::kFilename) {
    return absl::StrCat("file ", source.filename());
  }
  return "inline";
}

absl::StatusOr<std::string> ReadDataSource(const config::v1::DataSource& source) {
  switch (source.specifier_case()) {
    case config::v1::DataSource::kInlineString:
      return source.inline_string();
    case config::v1::DataSource::kFilename: {
      std::ifstream in(source.filename(), std::ios::binary);
      if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", source.filename()));
      std::stringstream bytes;
      bytes << in.rdbuf();
      return bytes.str();
    }
    default:
      return absl::InvalidArgumentError("give filename or inline_string");
  }
}

std::string SubjectOf(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()), &BIO_free);
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0,
                     XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  char* data = nullptr;
  long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(length));
}

CertificateInfo DescribeCertificate(X509* cert, std::string source) {
  CertificateInfo info;
  info.source = std::move(source);
  info.subject = SubjectOf(cert);
  GENERAL_NAMES* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    auto text = [](const ASN1_STRING* s) {
      return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                         ASN1_STRING_length(s));
    };
    switch (name->type) {
      case GEN_DNS:
        info.subject_alt_names.push_back("DNS:" + text(name->d.dNSName));
        break;
      case GEN_URI:
        info.subject_alt_names.push_back("URI:" + text(name->d.uniformResourceIdentifier));
        break;
      case GEN_EMAIL:
        info.subject_alt_names.push_back("email:" + text(name->d.rfc822Name));
        break;
      case GEN_IPADD: {
        const ASN1_OCTET_STRING* ip = name->d.iPAddress;
        char buffer[64] = "";
        if (ASN1_STRING_length(ip) == 4) {
          const unsigned char* b = ASN1_STRING_get0_data(ip);
          snprintf(buffer, sizeof(buffer), "%d.%d.%d.%d", b[0], b[1], b[2], b[3]);
        } else {
          snprintf(buffer, sizeof(buffer), "(IPv6)");
        }
        info.subject_alt_names.push_back(absl::StrCat("IP:", buffer));
        break;
      }
      default:
        break;
    }
  }
  GENERAL_NAMES_free(names);
  BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
  if (serial != nullptr) {
    char* hex = BN_bn2hex(serial);
    info.serial = hex;
    OPENSSL_free(hex);
    BN_free(serial);
  }
  info.key_type = KeyType(X509_get0_pubkey(cert));
  info.not_before = ToTimeT(X509_get0_notBefore(cert));
  info.not_after = ToTimeT(X509_get0_notAfter(cert));
  return info;
}

void DescribeSession(SSL* ssl, std::string_view local_uri_san, network::TlsInfo* info) {
  info->local_uri_san = local_uri_san;
  info->version = SSL_get_version(ssl);
  info->cipher = SSL_get_cipher_name(ssl);
  info->session_reused = SSL_session_reused(ssl) == 1;
  auto first_san = [](const CertificateInfo& cert, std::string_view prefix) {
    for (const std::string& san : cert.subject_alt_names) {
      if (san.rfind(prefix, 0) == 0) return san.substr(prefix.size());
    }
    return std::string();
  };
  X509* certificate = SSL_get0_peer_certificate(ssl);
  if (certificate == nullptr) return;
  CertificateInfo cert = DescribeCertificate(certificate, "");
  auto peer = std::make_unique<network::PeerCertificate>();
  peer->uri_san = first_san(cert, "URI:");
  peer->dns_san = first_san(cert, "DNS:");
  peer->subject = cert.subject;
  peer->principal = !peer->uri_san.empty()   ? peer->uri_san
                    : !peer->dns_san.empty() ? peer->dns_san
                                             : peer->subject;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  X509_digest(certificate, EVP_sha256(), digest, &length);
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned int i = 0; i < length; ++i) {
    peer->sha256.push_back(kHex[digest[i] >> 4]);
    peer->sha256.push_back(kHex[digest[i] & 15]);
  }
  info->peer = std::move(peer);
}

absl::StatusOr<LoadedCertificate> LoadCertificate(const config::v1::TlsCertificate& proto) {
  std::string cert_name = DescribeSource(proto.certificate_chain());
  std::string key_name = DescribeSource(proto.private_key());
  auto chain_pem = ReadDataSource(proto.certificate_chain());
  if (!chain_pem.ok()) return chain_pem.status();
  auto key_pem = ReadDataSource(proto.private_key());
  if (!key_pem.ok()) return key_pem.status();
  LoadedCertificate loaded;
  loaded.pem = *chain_pem + *key_pem;

  BioPtr chain_bio = MemoryBio(*chain_pem);
  loaded.leaf.reset(PEM_read_bio_X509(chain_bio.get(), nullptr, nullptr, nullptr));
  if (loaded.leaf == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(cert_name, ": no PEM certificate in it"));
  }
  loaded.chain.reset(sk_X509_new_null());
  while (X509* next = PEM_read_bio_X509(chain_bio.get(), nullptr, nullptr, nullptr)) {
    sk_X509_push(loaded.chain.get(), next);
  }
  ERR_clear_error();  // The end of the PEM data.

  BioPtr key_bio = MemoryBio(*key_pem);
  loaded.key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (loaded.key == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(key_name, ": no PEM private key in it"));
  }
  WarnIfWorldReadable(proto.private_key());
  if (X509_check_private_key(loaded.leaf.get(), loaded.key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat(key_name, ": the private key does not match the certificate in ", cert_name));
  }
  loaded.info = DescribeCertificate(loaded.leaf.get(), proto.certificate_chain().filename().empty()
                                                           ? "inline"
                                                           : proto.certificate_chain().filename());
  time_t now = time(nullptr);
  if (X509_cmp_time(X509_get0_notAfter(loaded.leaf.get()), &now) < 0) {
    return absl::InvalidArgumentError(absl::StrCat(cert_name, ": the certificate expired on ",
                                                   FormatTime(loaded.info.not_after)));
  }
  if (X509_cmp_time(X509_get0_notBefore(loaded.leaf.get()), &now) > 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        cert_name, ": the certificate is not valid until ", FormatTime(loaded.info.not_before)));
  }
  return loaded;
}

absl::StatusOr<X509StorePtr> LoadTrustedCa(const config::v1::DataSource& source, std::string* pem) {
  std::string name = DescribeSource(source);
  auto bytes = ReadDataSource(source);
  if (!bytes.ok()) return bytes.status();
  X509StorePtr store(X509_STORE_new());
  BioPtr bio = MemoryBio(*bytes);
  int count = 0;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(store.get(), cert);
    X509_free(cert);
    ++count;
  }
  ERR_clear_error();
  if (count == 0) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": no PEM certificate in it"));
  }
  *pem = *std::move(bytes);
  return store;
}

}  // namespace phoenix::tls
