#pragma once

#include <chrono>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace phoenix::tls {

// The OpenSSL side of mesh identity: a sidecar makes its key and CSR in memory; phoenix-cp's
// CA makes roots and intermediates, signs CSRs into SPIFFE workload certificates and checks
// a certificate a caller presents with a proof of its key. Everything is PEM text, so the
// rest of Phoenix never touches OpenSSL.

// A private key made in memory (ECDSA P-256) and the CSR (PKCS#10, signed by that key) that
// asks for a certificate naming `spiffe_id` as its URI SAN.
struct KeyAndCsr {
  std::string key_pem;  // PKCS#8. Never written to disk, never sent.
  std::string csr_pem;
};
absl::StatusOr<KeyAndCsr> MakeKeyAndCsr(const std::string& spiffe_id);

// ECDSA/SHA-256 signature by `key_pem` over `data` (DER): proves to phoenix-cp that the caller
// holds the key of the certificate it presents.
absl::StatusOr<std::string> SignWithKey(const std::string& key_pem, std::string_view data);

// What a CSR asks for, once its self-signature is checked: its single URI SAN ("" if none).
// INVALID_ARGUMENT for a CSR that does not parse, is not self-signed correctly, or whose key
// is not ECDSA P-256 as a named curve (or RSA >= 2048).
absl::StatusOr<std::string> CsrSpiffeId(const std::string& csr_pem);

// A CA's certificate and its key, PEM.
struct CaMaterial {
  std::string cert_pem;
  std::string key_pem;
};
// A self-signed root CA (ECDSA P-256), subject "O=phoenix mesh, CN=<common_name>", URI SAN
// spiffe://<trust_domain>, basicConstraints CA:TRUE, keyCertSign+cRLSign.
absl::StatusOr<CaMaterial> GenerateRootCa(const std::string& trust_domain,
                                          const std::string& common_name,
                                          std::chrono::seconds validity);
// An intermediate CA (ECDSA P-256, pathlen 0) signed by `root`.
absl::StatusOr<CaMaterial> GenerateIntermediateCa(const CaMaterial& root,
                                                  const std::string& trust_domain,
                                                  const std::string& common_name,
                                                  std::chrono::seconds validity);

// An intermediate CA certificate (as GenerateIntermediateCa makes) for the key of `csr_pem`,
// signed by `root`: another phoenix-cp replica's intermediate under a root only this one
// holds the key of, with that replica's key never leaving it. The CSR's names are not used.
absl::StatusOr<std::string> SignIntermediateCsr(const CaMaterial& root, const std::string& csr_pem,
                                                const std::string& trust_domain,
                                                const std::string& common_name,
                                                std::chrono::seconds validity);

// One certificate a CA signed.
struct IssuedCertificate {
  std::string chain_pem;    // Leaf, then the intermediate.
  std::string serial;       // Hex.
  std::string root_serial;  // Of the root it chains to (filled by the CA that holds the roots).
  std::string spiffe_id;
  time_t not_before = 0;
  time_t not_after = 0;
};

// Signs CSRs with an intermediate CA. Immutable once made; Issue may run on any thread.
class CertificateSigner {
 public:
  // Checks that `intermediate` is a CA whose key matches, and that it chains to one of the
  // roots in `roots_pem`.
  static absl::StatusOr<CertificateSigner> Create(const CaMaterial& intermediate,
                                                  const std::string& roots_pem);

  // A leaf for the CSR's key: URI SAN `spiffe_id` (what the CSR asked for is not copied),
  // subject "O=phoenix mesh, CN=<node_id>", serial 128 random bits, digitalSignature +
  // keyEncipherment, extKeyUsage serverAuth + clientAuth, not before `now` - 60 s (clock skew),
  // not after `now` + `validity` (never past the intermediate's own not-after). The result is
  // verified against the roots before it is returned (a CA checks its own output).
  absl::StatusOr<IssuedCertificate> Issue(const std::string& csr_pem, const std::string& spiffe_id,
                                          const std::string& node_id, std::chrono::seconds validity,
                                          time_t now) const;
  const std::string& intermediate_pem() const;
  time_t not_after() const;  // The intermediate's.

 private:
  // The parsed intermediate, its key and the roots; shared by copies, so a signer is cheap to
  // copy and move (StatusOr needs that) and OpenSSL objects never leave this library's .cc.
  struct State;
  CertificateSigner() = default;

  std::shared_ptr<const State> state_;
};

// Who a presented certificate says its holder is.
struct PresentedIdentity {
  std::string spiffe_id;  // The leaf's URI SAN.
  std::string node_id;    // The leaf's subject CN.
  std::string serial;
  time_t not_after = 0;
};
// Checks a certificate chain a caller presents (leaf first): it leads to one of `roots_pem` at
// `now` (not expired, not yet valid is an error) and `proof` is the leaf key's signature over
// `data`. UNAUTHENTICATED with a short reason otherwise.
absl::StatusOr<PresentedIdentity> VerifyPresentedCertificate(const std::string& chain_pem,
                                                             const std::string& roots_pem,
                                                             std::string_view data,
                                                             std::string_view proof, time_t now);

// Not-after of the first certificate in `pem` (0 when none parses).
time_t CertificateNotAfter(const std::string& pem);
// The serial (hex) of each certificate in `pem`, in order.
std::vector<std::string> CertificateSerials(const std::string& pem);

}  // namespace phoenix::tls
