// Fuzzes what phoenix-cp does with a sidecar's CSR (source/tls/workload_certificates.h): the
// bytes are attacker-controlled (CreateCertificateRequest.csr). tls::CsrSpiffeId must refuse
// or accept them without crashing, and a CSR it accepts must be one the CA can sign: Issue
// succeeds, and the chain it returns verifies against the root (only the proof of key, which
// the fuzzer cannot make, is missing).
//
// Input: the CSR, PEM text when it starts with "-----BEGIN", else DER (wrapped into PEM here).
// OpenSSL is not instrumented, so the fuzzer gets no coverage from inside its parsers: on DER
// its mutations change the ASN.1 itself rather than break the base64. Seeds, in both forms: CSRs
// from the openssl CLI (P-256 with no SAN, one and two URI SANs, DNS + URI, RSA 2048; refused ones:
// P-384, RSA 1024, Ed25519, a broken signature, P-256 with explicit curve parameters, which this
// target found accepted and then not issuable).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "source/tls/workload_certificates.h"
#include "test/fuzz/fuzz_util.h"

namespace phoenix::fuzz {
namespace {

// What Issue is given when the CSR names no SPIFFE ID (in phoenix-cp the entitlements pick one).
constexpr char kDefaultSpiffeId[] = "spiffe://phoenix.local/ns/default/sa/web";
constexpr std::chrono::seconds kValidity{3600};

// A root, an intermediate under it and a signer with them, made once: key generation is far too
// slow to repeat per input, and one fixed CA keeps runs comparable.
struct Ca {
  std::string root_pem;
  tls::CertificateSigner signer;
  // The `now` every input is issued at. The CA is made from the wall clock (GenerateRootCa has
  // no `now`), so it is read once here, then fixed for the whole run.
  time_t now;
};

const Ca& FuzzCa() {
  static const Ca* ca = [] {
    auto root = tls::GenerateRootCa("phoenix.local", "fuzz root", std::chrono::hours(24 * 365));
    FUZZ_CHECK(root.ok());
    auto intermediate = tls::GenerateIntermediateCa(*root, "phoenix.local", "fuzz intermediate",
                                                    std::chrono::hours(24 * 30));
    FUZZ_CHECK(intermediate.ok());
    auto signer = tls::CertificateSigner::Create(*intermediate, root->cert_pem);
    FUZZ_CHECK(signer.ok());
    return new Ca{root->cert_pem, *std::move(signer), time(nullptr)};
  }();
  return *ca;
}

// `der` as a PEM certificate request (64 base64 characters a line, as PEM writers do).
std::string CsrPem(std::string_view der) {
  std::string base64 = absl::Base64Escape(absl::string_view(der.data(), der.size()));
  std::string pem = "-----BEGIN CERTIFICATE REQUEST-----\n";
  for (size_t i = 0; i < base64.size(); i += 64) {
    pem.append(base64, i, 64);
    pem += '\n';
  }
  return pem + "-----END CERTIFICATE REQUEST-----\n";
}

}  // namespace
}  // namespace phoenix::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace phoenix;
  using namespace phoenix::fuzz;
  const Ca& ca = FuzzCa();
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string csr_pem = input.substr(0, 10) == "-----BEGIN" ? std::string(input) : CsrPem(input);
  auto asked = tls::CsrSpiffeId(csr_pem);
  if (!asked.ok()) {
    FUZZ_CHECK(asked.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  // What the CSR asks for is passed on as the granted ID, as phoenix-cp does when the
  // entitlements allow it: arbitrary URI bytes then reach the leaf's SAN.
  std::string spiffe_id = asked->empty() ? kDefaultSpiffeId : *asked;
  auto issued = ca.signer.Issue(csr_pem, spiffe_id, "node-1", kValidity, ca.now);
  // The statuses are printed before the checks abort: they say which step refused the CSR.
  if (!issued.ok()) fprintf(stderr, "Issue: %s\n", issued.status().ToString().c_str());
  FUZZ_CHECK(issued.ok());
  FUZZ_CHECK(issued->spiffe_id == spiffe_id);
  FUZZ_CHECK(issued->not_after == ca.now + kValidity.count());
  FUZZ_CHECK(tls::CertificateNotAfter(issued->chain_pem) == issued->not_after);
  FUZZ_CHECK(tls::CertificateSerials(issued->chain_pem).size() == 2);  // Leaf, intermediate.
  // With no proof, the only thing left to fail is the proof: the chain, its purpose, the single
  // URI SAN and the key kind all pass.
  auto presented =
      tls::VerifyPresentedCertificate(issued->chain_pem, ca.root_pem, csr_pem, "", ca.now);
  if (presented.ok() || presented.status().message() != "proof of key does not verify") {
    fprintf(stderr, "VerifyPresentedCertificate: %s\n", presented.status().ToString().c_str());
  }
  FUZZ_CHECK(!presented.ok());
  FUZZ_CHECK(presented.status().message() == "proof of key does not verify");
  return 0;
}
