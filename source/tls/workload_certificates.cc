#include "source/tls/workload_certificates.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "source/tls/certificate.h"

namespace phoenix::tls {
namespace {

// Owning handles for the OpenSSL objects only this file uses (certificate.h has the rest).
struct WorkloadFree {
  void operator()(BIO* b) const { BIO_free(b); }
  void operator()(X509_REQ* r) const { X509_REQ_free(r); }
  void operator()(X509_EXTENSION* e) const { X509_EXTENSION_free(e); }
  void operator()(STACK_OF(X509_EXTENSION) * s) const {
    sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free);
  }
  void operator()(GENERAL_NAMES* n) const { GENERAL_NAMES_free(n); }
  void operator()(X509_NAME* n) const { X509_NAME_free(n); }
  void operator()(BIGNUM* b) const { BN_free(b); }
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
using BioPtr = std::unique_ptr<BIO, WorkloadFree>;
using X509ReqPtr = std::unique_ptr<X509_REQ, WorkloadFree>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, WorkloadFree>;
using ExtensionStackPtr = std::unique_ptr<STACK_OF(X509_EXTENSION), WorkloadFree>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, WorkloadFree>;
using X509NamePtr = std::unique_ptr<X509_NAME, WorkloadFree>;
using BignumPtr = std::unique_ptr<BIGNUM, WorkloadFree>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, WorkloadFree>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, WorkloadFree>;

constexpr char kOrganization[] = "phoenix mesh";
constexpr time_t kClockSkew = 60;

BioPtr MemoryBio(const std::string& bytes) {
  return BioPtr(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  long length = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(length));
}

// An OpenSSL failure as a status: the caller's words and OpenSSL's reason (which never holds
// key bytes), with the error queue cleared.
absl::Status OpenSslError(absl::StatusCode code, const std::string& what) {
  unsigned long error = ERR_peek_last_error();
  std::string reason;
  if (error != 0) {
    const char* text = ERR_reason_error_string(error);
    if (text != nullptr) reason = absl::StrCat(": ", text);
  }
  ERR_clear_error();
  return absl::Status(code, absl::StrCat(what, reason));
}

absl::Status Internal(const std::string& what) {
  return OpenSslError(absl::StatusCode::kInternal, what);
}

time_t ToTimeT(const ASN1_TIME* time) {
  struct tm tm = {};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) return 0;
  return timegm(&tm);
}

EvpPkeyPtr NewP256Key() { return EvpPkeyPtr(EVP_EC_gen("P-256")); }

std::string KeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PKCS8PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    ERR_clear_error();
    return "";
  }
  return BioContents(bio.get());
}

std::string CertPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509(bio.get(), cert) != 1) {
    ERR_clear_error();
    return "";
  }
  return BioContents(bio.get());
}

EvpPkeyPtr ParseKey(const std::string& pem) {
  BioPtr bio = MemoryBio(pem);
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  return key;
}

// Every certificate in `pem`, in order.
std::vector<X509Ptr> ParseCertificates(const std::string& pem) {
  std::vector<X509Ptr> certs;
  BioPtr bio = MemoryBio(pem);
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    certs.emplace_back(cert);
  }
  ERR_clear_error();  // The end of the PEM data.
  return certs;
}

// A store trusting every certificate in `pem`; null when there is none.
X509StorePtr RootStore(const std::string& pem) {
  std::vector<X509Ptr> roots = ParseCertificates(pem);
  if (roots.empty()) return nullptr;
  X509StorePtr store(X509_STORE_new());
  for (const X509Ptr& root : roots) X509_STORE_add_cert(store.get(), root.get());
  return store;
}

std::string SerialHex(const X509* cert) {
  BignumPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (serial == nullptr) return "";
  char* hex = BN_bn2hex(serial.get());
  std::string text = hex;
  OPENSSL_free(hex);
  return text;
}

// The URI SANs among `names`.
std::vector<std::string> UriNames(const GENERAL_NAMES* names) {
  std::vector<std::string> uris;
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI) continue;
    const ASN1_STRING* s = name->d.uniformResourceIdentifier;
    uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                      ASN1_STRING_length(s));
  }
  return uris;
}

std::vector<std::string> CertificateUris(X509* cert) {
  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  return UriNames(names.get());
}

std::string CommonName(X509* cert) {
  X509_NAME* name = X509_get_subject_name(cert);
  int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index < 0) return "";
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                     ASN1_STRING_length(data));
}

// A subjectAltName extension with the one URI `uri`. Built by hand rather than from config
// text, where a comma in the URI would start another name.
ExtensionPtr UriSanExtension(const std::string& uri) {
  GeneralNamesPtr names(GENERAL_NAMES_new());
  GENERAL_NAME* name = GENERAL_NAME_new();
  ASN1_IA5STRING* text = ASN1_IA5STRING_new();
  ASN1_STRING_set(text, uri.data(), static_cast<int>(uri.size()));
  GENERAL_NAME_set0_value(name, GEN_URI, text);
  sk_GENERAL_NAME_push(names.get(), name);
  return ExtensionPtr(X509V3_EXT_i2d(NID_subject_alt_name, 0, names.get()));
}

// Adds the extension `nid` = `value` (OpenSSL's config syntax) to `cert`, issued by `issuer`.
bool AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ExtensionPtr extension(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  return extension != nullptr && X509_add_ext(cert, extension.get(), -1) == 1;
}

// "O=phoenix mesh, CN=<common_name>"; null when OpenSSL refuses the name (a CN over 64
// bytes, or not UTF-8): a certificate must not go out without its node.
X509NamePtr MeshName(const std::string& common_name) {
  X509NamePtr name(X509_NAME_new());
  if (name == nullptr || common_name.empty() ||
      X509_NAME_add_entry_by_txt(name.get(), "O", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(kOrganization), -1, -1,
                                 0) != 1 ||
      X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.c_str()),
                                 static_cast<int>(common_name.size()), -1, 0) != 1) {
    return nullptr;
  }
  return name;
}

// 128 random bits, read as an unsigned number (DER adds a leading zero byte when the top bit is
// set, so it stays positive; 17 bytes is within RFC 5280's 20).
bool SetRandomSerial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) return false;
  BignumPtr serial(BN_bin2bn(bytes, sizeof(bytes), nullptr));
  return serial != nullptr &&
         BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert)) != nullptr;
}

// The fields every certificate made here shares: v3, random serial, names, validity, key.
bool SetBasics(X509* cert, X509_NAME* subject, X509_NAME* issuer, EVP_PKEY* key, time_t not_before,
               time_t not_after) {
  return X509_set_version(cert, X509_VERSION_3) == 1 && SetRandomSerial(cert) &&
         X509_set_subject_name(cert, subject) == 1 && X509_set_issuer_name(cert, issuer) == 1 &&
         ASN1_TIME_set(X509_getm_notBefore(cert), not_before) != nullptr &&
         ASN1_TIME_set(X509_getm_notAfter(cert), not_after) != nullptr &&
         X509_set_pubkey(cert, key) == 1;
}

// Whether `key` is a kind of key a workload may hold: ECDSA P-256, or RSA of 2048 bits or more.
bool AcceptableWorkloadKey(EVP_PKEY* key) {
  if (key == nullptr) return false;
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_EC: {
      // P-256 by name only. Spelled out as explicit curve parameters (RFC 5480 forbids them) it
      // still reports group "prime256v1", but a certificate carrying it fails verification:
      // Issue would sign one and then refuse its own output with an INTERNAL error.
      int explicit_parameters = 1;
      if (EVP_PKEY_get_int_param(key, OSSL_PKEY_PARAM_EC_DECODED_FROM_EXPLICIT_PARAMS,
                                 &explicit_parameters) != 1 ||
          explicit_parameters != 0) {
        ERR_clear_error();
        return false;
      }
      char group[64] = "";
      size_t length = 0;
      if (EVP_PKEY_get_group_name(key, group, sizeof(group), &length) != 1) return false;
      return std::string(group) == "prime256v1" || std::string(group) == "P-256";
    }
    case EVP_PKEY_RSA:
      return EVP_PKEY_get_bits(key) >= 2048;
    default:
      return false;
  }
}

// A CSR parsed, its self-signature and its key's kind checked.
absl::StatusOr<X509ReqPtr> ParseCheckedCsr(const std::string& csr_pem) {
  BioPtr bio = MemoryBio(csr_pem);
  X509ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  if (req == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError("CSR: no PEM certificate request in it");
  }
  EVP_PKEY* key = X509_REQ_get0_pubkey(req.get());
  if (key == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError("CSR: its public key does not parse");
  }
  if (!AcceptableWorkloadKey(key)) {
    return absl::InvalidArgumentError(
        "CSR: the key must be ECDSA P-256 (a named curve) or RSA of 2048 bits or more");
  }
  if (X509_REQ_verify(req.get(), key) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("CSR: its signature does not verify");
  }
  return req;
}

// Why verification failed, in a few words.
std::string VerifyFailureReason(int error) {
  switch (error) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return "certificate expired";
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return "certificate not yet valid";
    case X509_V_ERR_INVALID_PURPOSE:
      return "certificate not for client authentication";
    default:
      return absl::StrCat("certificate not signed by the mesh CA (",
                          X509_verify_cert_error_string(error), ")");
  }
}

// Verifies `leaf` (with `untrusted` intermediates) against `roots` at `now` for client
// authentication; OK or the OpenSSL verify error code.
int VerifyChain(X509_STORE* roots, X509* leaf, STACK_OF(X509) * untrusted, time_t now) {
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (ctx == nullptr || X509_STORE_CTX_init(ctx.get(), roots, leaf, untrusted) != 1) {
    ERR_clear_error();
    return X509_V_ERR_UNSPECIFIED;
  }
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
  X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx.get()), now);
  int ok = X509_verify_cert(ctx.get());
  int error = X509_STORE_CTX_get_error(ctx.get());
  ERR_clear_error();
  if (ok == 1) return X509_V_OK;
  return error == X509_V_OK ? X509_V_ERR_UNSPECIFIED : error;
}

X509StackPtr StackOf(const std::vector<X509Ptr>& certs, size_t from) {
  X509StackPtr stack(sk_X509_new_null());
  for (size_t i = from; i < certs.size(); ++i) {
    X509_up_ref(certs[i].get());
    sk_X509_push(stack.get(), certs[i].get());
  }
  return stack;
}

// Parses a CA's certificate (the first in its PEM) and key, and checks they belong together.
absl::Status ParseCa(const CaMaterial& ca, X509Ptr* cert, EvpPkeyPtr* key) {
  std::vector<X509Ptr> certs = ParseCertificates(ca.cert_pem);
  if (certs.empty()) return absl::InvalidArgumentError("CA: no PEM certificate in it");
  *key = ParseKey(ca.key_pem);
  if (*key == nullptr) return absl::InvalidArgumentError("CA: no PEM private key in it");
  if (X509_check_private_key(certs[0].get(), key->get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("CA: the private key does not match the certificate");
  }
  if (X509_check_ca(certs[0].get()) < 1) {
    return absl::InvalidArgumentError("CA: the certificate is not a CA (basicConstraints)");
  }
  *cert = std::move(certs[0]);
  return absl::OkStatus();
}

// A CA certificate (PEM) for `key` (its public half is all it needs) issued by `issuer` with
// `issuer_key` (self-signed when `issuer` is null): the extensions of a mesh CA, pathlen 0 for
// an intermediate.
absl::StatusOr<std::string> MakeCaCertificate(EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key,
                                              const std::string& trust_domain,
                                              const std::string& common_name,
                                              std::chrono::seconds validity) {
  if (validity.count() <= 0) return absl::InvalidArgumentError("CA validity must be positive");
  time_t now = time(nullptr);
  time_t not_after = now + static_cast<time_t>(validity.count());
  if (issuer != nullptr) {
    not_after = std::min(not_after, ToTimeT(X509_get0_notAfter(issuer)));
    if (not_after <= now) return absl::FailedPreconditionError("the root CA has expired");
  }
  X509Ptr cert(X509_new());
  X509NamePtr subject = MeshName(common_name);
  if (subject == nullptr) {
    return absl::InvalidArgumentError("a CA name is 1 to 64 bytes of UTF-8");
  }
  bool root = issuer == nullptr;
  X509* signer = root ? cert.get() : issuer;
  if (!SetBasics(cert.get(), subject.get(), root ? subject.get() : X509_get_subject_name(issuer),
                 key, now - kClockSkew, not_after)) {
    return Internal("cannot fill the CA certificate");
  }
  ExtensionPtr san = UriSanExtension(absl::StrCat("spiffe://", trust_domain));
  if (!AddExtension(cert.get(), signer, NID_basic_constraints,
                    root ? "critical,CA:TRUE" : "critical,CA:TRUE,pathlen:0") ||
      !AddExtension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign") ||
      !AddExtension(cert.get(), signer, NID_subject_key_identifier, "hash") ||
      !AddExtension(cert.get(), signer, NID_authority_key_identifier, "keyid:always") ||
      san == nullptr || X509_add_ext(cert.get(), san.get(), -1) != 1) {
    return Internal("cannot add the CA certificate's extensions");
  }
  if (X509_sign(cert.get(), root ? key : issuer_key, EVP_sha256()) <= 0) {
    return Internal("cannot sign the CA certificate");
  }
  std::string pem = CertPem(cert.get());
  if (pem.empty()) return Internal("cannot write the CA certificate as PEM");
  return pem;
}

// MakeCaCertificate for a key made here, with the key.
absl::StatusOr<CaMaterial> MakeCa(EvpPkeyPtr key, X509* issuer, EVP_PKEY* issuer_key,
                                  const std::string& trust_domain, const std::string& common_name,
                                  std::chrono::seconds validity) {
  if (key == nullptr) return Internal("cannot make an ECDSA P-256 key");
  auto cert_pem =
      MakeCaCertificate(key.get(), issuer, issuer_key, trust_domain, common_name, validity);
  if (!cert_pem.ok()) return cert_pem.status();
  CaMaterial material;
  material.cert_pem = *std::move(cert_pem);
  material.key_pem = KeyPem(key.get());
  if (material.key_pem.empty()) return Internal("cannot write the CA key as PEM");
  return material;
}

}  // namespace

absl::StatusOr<KeyAndCsr> MakeKeyAndCsr(const std::string& spiffe_id) {
  EvpPkeyPtr key = NewP256Key();
  if (key == nullptr) return Internal("cannot make an ECDSA P-256 key");
  X509ReqPtr req(X509_REQ_new());
  if (X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1 ||
      X509_REQ_set_pubkey(req.get(), key.get()) != 1) {
    return Internal("cannot fill the CSR");
  }
  if (!spiffe_id.empty()) {
    ExtensionStackPtr extensions(sk_X509_EXTENSION_new_null());
    ExtensionPtr san = UriSanExtension(spiffe_id);
    if (san == nullptr) return Internal("cannot encode the CSR's URI SAN");
    sk_X509_EXTENSION_push(extensions.get(), san.release());
    if (X509_REQ_add_extensions(req.get(), extensions.get()) != 1) {
      return Internal("cannot add the CSR's URI SAN");
    }
  }
  if (X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0) {
    return Internal("cannot sign the CSR");
  }
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1) return Internal("cannot write the CSR");
  KeyAndCsr result;
  result.csr_pem = BioContents(bio.get());
  result.key_pem = KeyPem(key.get());
  if (result.key_pem.empty()) return Internal("cannot write the key as PEM");
  return result;
}

absl::StatusOr<std::string> SignWithKey(const std::string& key_pem, std::string_view data) {
  EvpPkeyPtr key = ParseKey(key_pem);
  if (key == nullptr) return absl::InvalidArgumentError("no PEM private key in it");
  MdCtxPtr ctx(EVP_MD_CTX_new());
  size_t length = 0;
  if (ctx == nullptr ||
      EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &length,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    return Internal("cannot sign");
  }
  std::string signature(length, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    return Internal("cannot sign");
  }
  signature.resize(length);
  return signature;
}

absl::StatusOr<std::string> CsrSpiffeId(const std::string& csr_pem) {
  auto req = ParseCheckedCsr(csr_pem);
  if (!req.ok()) return req.status();
  ExtensionStackPtr extensions(X509_REQ_get_extensions(req->get()));
  ERR_clear_error();
  if (extensions == nullptr) return std::string();
  GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(
      X509V3_get_d2i(extensions.get(), NID_subject_alt_name, nullptr, nullptr)));
  std::vector<std::string> uris = UriNames(names.get());
  if (uris.size() > 1) return absl::InvalidArgumentError("CSR: more than one URI SAN");
  return uris.empty() ? std::string() : uris[0];
}

absl::StatusOr<CaMaterial> GenerateRootCa(const std::string& trust_domain,
                                          const std::string& common_name,
                                          std::chrono::seconds validity) {
  return MakeCa(NewP256Key(), nullptr, nullptr, trust_domain, common_name, validity);
}

absl::StatusOr<CaMaterial> GenerateIntermediateCa(const CaMaterial& root,
                                                  const std::string& trust_domain,
                                                  const std::string& common_name,
                                                  std::chrono::seconds validity) {
  X509Ptr root_cert;
  EvpPkeyPtr root_key;
  if (absl::Status status = ParseCa(root, &root_cert, &root_key); !status.ok()) return status;
  return MakeCa(NewP256Key(), root_cert.get(), root_key.get(), trust_domain, common_name, validity);
}

absl::StatusOr<std::string> SignIntermediateCsr(const CaMaterial& root, const std::string& csr_pem,
                                                const std::string& trust_domain,
                                                const std::string& common_name,
                                                std::chrono::seconds validity) {
  X509Ptr root_cert;
  EvpPkeyPtr root_key;
  if (absl::Status status = ParseCa(root, &root_cert, &root_key); !status.ok()) return status;
  auto req = ParseCheckedCsr(csr_pem);
  if (!req.ok()) return req.status();
  EvpPkeyPtr key(X509_REQ_get_pubkey(req->get()));
  if (key == nullptr) return absl::InvalidArgumentError("CSR: no public key");
  return MakeCaCertificate(key.get(), root_cert.get(), root_key.get(), trust_domain, common_name,
                           validity);
}

// What a signer holds; shared by its copies, never changed once made.
struct CertificateSigner::State {
  X509Ptr intermediate;
  X509StackPtr untrusted;  // The intermediate and any certificate above it but below a root.
  EvpPkeyPtr key;
  X509StorePtr roots;
  std::string intermediate_pem;
  time_t not_after = 0;
};

absl::StatusOr<CertificateSigner> CertificateSigner::Create(const CaMaterial& intermediate,
                                                            const std::string& roots_pem) {
  auto state = std::make_shared<State>();
  if (absl::Status status = ParseCa(intermediate, &state->intermediate, &state->key);
      !status.ok()) {
    return status;
  }
  state->roots = RootStore(roots_pem);
  if (state->roots == nullptr) return absl::InvalidArgumentError("roots: no PEM certificate in it");
  std::vector<X509Ptr> certs = ParseCertificates(intermediate.cert_pem);
  state->untrusted = StackOf(certs, 0);
  for (const X509Ptr& cert : certs) state->intermediate_pem += CertPem(cert.get());
  state->not_after = ToTimeT(X509_get0_notAfter(state->intermediate.get()));
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (X509_STORE_CTX_init(ctx.get(), state->roots.get(), state->intermediate.get(),
                          state->untrusted.get()) != 1) {
    return Internal("cannot verify the intermediate CA");
  }
  X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx.get()), time(nullptr));
  if (X509_verify_cert(ctx.get()) != 1) {
    int error = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(
        "the intermediate CA does not chain to the roots: ", X509_verify_cert_error_string(error)));
  }
  CertificateSigner signer;
  signer.state_ = std::move(state);
  return signer;
}

const std::string& CertificateSigner::intermediate_pem() const { return state_->intermediate_pem; }

time_t CertificateSigner::not_after() const { return state_->not_after; }

absl::StatusOr<IssuedCertificate> CertificateSigner::Issue(const std::string& csr_pem,
                                                           const std::string& spiffe_id,
                                                           const std::string& node_id,
                                                           std::chrono::seconds validity,
                                                           time_t now) const {
  if (spiffe_id.empty()) return absl::InvalidArgumentError("no SPIFFE ID to issue for");
  if (validity.count() <= 0) return absl::InvalidArgumentError("validity must be positive");
  auto req = ParseCheckedCsr(csr_pem);
  if (!req.ok()) return req.status();
  time_t not_after = std::min(now + static_cast<time_t>(validity.count()), state_->not_after);
  if (not_after <= now) return absl::FailedPreconditionError("the intermediate CA has expired");

  X509Ptr leaf(X509_new());
  X509NamePtr subject = MeshName(node_id);
  if (subject == nullptr) {
    return absl::InvalidArgumentError("a node id in a certificate is 1 to 64 bytes of UTF-8");
  }
  X509* issuer = state_->intermediate.get();
  if (!SetBasics(leaf.get(), subject.get(), X509_get_subject_name(issuer),
                 X509_REQ_get0_pubkey(req->get()), now - kClockSkew, not_after)) {
    return Internal("cannot fill the certificate");
  }
  ExtensionPtr san = UriSanExtension(spiffe_id);
  if (!AddExtension(leaf.get(), issuer, NID_basic_constraints, "critical,CA:FALSE") ||
      !AddExtension(leaf.get(), issuer, NID_key_usage,
                    "critical,digitalSignature,keyEncipherment") ||
      !AddExtension(leaf.get(), issuer, NID_ext_key_usage, "serverAuth,clientAuth") ||
      !AddExtension(leaf.get(), issuer, NID_authority_key_identifier, "keyid:always") ||
      san == nullptr || X509_add_ext(leaf.get(), san.get(), -1) != 1) {
    return Internal("cannot add the certificate's extensions");
  }
  if (X509_sign(leaf.get(), state_->key.get(), EVP_sha256()) <= 0) {
    return Internal("cannot sign the certificate");
  }
  if (int error = VerifyChain(state_->roots.get(), leaf.get(), state_->untrusted.get(), now);
      error != X509_V_OK) {
    return absl::InternalError(absl::StrCat("the issued certificate does not verify: ",
                                            X509_verify_cert_error_string(error)));
  }
  IssuedCertificate issued;
  issued.chain_pem = CertPem(leaf.get()) + state_->intermediate_pem;
  issued.serial = SerialHex(leaf.get());
  issued.spiffe_id = spiffe_id;
  issued.not_before = now - kClockSkew;
  issued.not_after = not_after;
  return issued;
}

absl::StatusOr<PresentedIdentity> VerifyPresentedCertificate(const std::string& chain_pem,
                                                             const std::string& roots_pem,
                                                             std::string_view data,
                                                             std::string_view proof, time_t now) {
  std::vector<X509Ptr> chain = ParseCertificates(chain_pem);
  if (chain.empty()) return absl::UnauthenticatedError("no certificate presented");
  X509StorePtr roots = RootStore(roots_pem);
  if (roots == nullptr) return absl::UnauthenticatedError("no mesh CA root to verify against");
  X509* leaf = chain[0].get();
  X509StackPtr untrusted = StackOf(chain, 1);
  if (int error = VerifyChain(roots.get(), leaf, untrusted.get(), now); error != X509_V_OK) {
    return absl::UnauthenticatedError(VerifyFailureReason(error));
  }
  if (X509_check_ca(leaf) != 0) return absl::UnauthenticatedError("certificate is a CA's");
  std::vector<std::string> uris = CertificateUris(leaf);
  if (uris.size() != 1) return absl::UnauthenticatedError("certificate has no single URI SAN");

  EVP_PKEY* key = X509_get0_pubkey(leaf);
  int type = key == nullptr ? 0 : EVP_PKEY_get_base_id(key);
  if (type != EVP_PKEY_EC && type != EVP_PKEY_RSA) {
    return absl::UnauthenticatedError("certificate key is neither ECDSA nor RSA");
  }
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (ctx == nullptr || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(proof.data()),
                       proof.size(), reinterpret_cast<const unsigned char*>(data.data()),
                       data.size()) != 1) {
    ERR_clear_error();
    return absl::UnauthenticatedError("proof of key does not verify");
  }
  PresentedIdentity identity;
  identity.spiffe_id = uris[0];
  identity.node_id = CommonName(leaf);
  identity.serial = SerialHex(leaf);
  identity.not_after = ToTimeT(X509_get0_notAfter(leaf));
  return identity;
}

time_t CertificateNotAfter(const std::string& pem) {
  BioPtr bio = MemoryBio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  return cert == nullptr ? 0 : ToTimeT(X509_get0_notAfter(cert.get()));
}

std::vector<std::string> CertificateSerials(const std::string& pem) {
  std::vector<std::string> serials;
  for (const X509Ptr& cert : ParseCertificates(pem)) serials.push_back(SerialHex(cert.get()));
  return serials;
}

}  // namespace phoenix::tls
