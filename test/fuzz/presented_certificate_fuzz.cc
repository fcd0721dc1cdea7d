// Fuzzes phoenix-cp's check of a certificate chain a caller presents with a proof of its key
// (tls::VerifyPresentedCertificate, source/tls/workload_certificates.h): the chain and the
// proof are attacker-controlled (CreateCertificateRequest.presented_certificate_chain and
// .proof). Whatever they are, the check must not crash, must refuse with UNAUTHENTICATED, and
// what it accepts must be a well-formed identity valid at `now`.
//
// Input: 2 bytes, big-endian: the proof's length (cut to what follows), then the proof, then the
// chain (PEM, leaf first). Seeds: chains under the fixed roots below with valid and broken
// proofs (ECDSA, RSA), a CA as the leaf, no or two URI SANs, serverAuth only, expired, the
// intermediate missing, a foreign root.
#include <algorithm>
#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "source/tls/workload_certificates.h"
#include "test/fuzz/fuzz_util.h"

namespace phoenix::fuzz {
namespace {

// The trust bundle, fixed so that the seeds (made with the openssl CLI under "fuzz root", valid
// until 2126) keep verifying: the current root and the next one, as during a root rotation.
constexpr char kRootsPem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIB4TCCAYigAwIBAgIUMKEokiFYfcJnVfzKgONoJhf2YmgwCgYIKoZIzj0EAwIw\n"
    "KzEVMBMGA1UECgwMcGhvZW5peCBtZXNoMRIwEAYDVQQDDAlmdXp6IHJvb3QwIBcN\n"
    "MjYxMjA3MDkwODQzWhgPMjEyNjExMTMwOTA4NDNaMCsxFTATBgNVBAoMDHBob2Vu\n"
    "aXggbWVzaDESMBAGA1UEAwwJZnV6eiByb290MFkwEwYHKoZIzj0CAQYIKoZIzj0D\n"
    "AQcDQgAE0SZ8euNqVPScskT5/zztB/nbGrBNcZXN8IlqvTrBpJRHY07CgqWY28p7\n"
    "/TLvrH4ZbfpOyB3dFOQYNVrL4DhSx6OBhzCBhDAPBgNVHRMBAf8EBTADAQH/MA4G\n"
    "A1UdDwEB/wQEAwIBBjAdBgNVHQ4EFgQUD+TIQHBwx7QRG36o940oQq7LVGswHwYD\n"
    "VR0jBBgwFoAUD+TIQHBwx7QRG36o940oQq7LVGswIQYDVR0RBBowGIYWc3BpZmZl\n"
    "Oi8vcGhvZW5peC5sb2NhbDAKBggqhkjOPQQDAgNHADBEAiA+QFpPNQKfpTKEQbwh\n"
    "DrmSpHBJ4DqIX/4cLsdv/RIeZQIgQwFMlidATE4sJT7TXltVE6/Wk/qw4jZd57lq\n"
    "+Gin18g=\n"
    "-----END CERTIFICATE-----\n"
    "-----BEGIN CERTIFICATE-----\n"
    "MIIB7DCCAZKgAwIBAgIUApGh7nQBVb7h1u7W5cs2tPQT+gcwCgYIKoZIzj0EAwIw\n"
    "MDEVMBMGA1UECgwMcGhvZW5peCBtZXNoMRcwFQYDVQQDDA5mdXp6IG5leHQgcm9v\n"
    "dDAgFw0yNjEyMDcwOTA5MTdaGA8yMTI2MTExMzA5MDkxN1owMDEVMBMGA1UECgwM\n"
    "cGhvZW5peCBtZXNoMRcwFQYDVQQDDA5mdXp6IG5leHQgcm9vdDBZMBMGByqGSM49\n"
    "AgEGCCqGSM49AwEHA0IABMM1mY9cJrR5ZpvErYadLLLef0kvWqZubnor1NiVz4U6\n"
    "PRQM6hrZb/CUf6/yyCFAkwfvJJYlcSTbsAPQDHSpQw6jgYcwgYQwDwYDVR0TAQH/\n"
    "BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYwHQYDVR0OBBYEFBzKBhhUKFHA69C2VtLT\n"
    "vXjCeeaHMB8GA1UdIwQYMBaAFBzKBhhUKFHA69C2VtLTvXjCeeaHMCEGA1UdEQQa\n"
    "MBiGFnNwaWZmZTovL3Bob2VuaXgubG9jYWwwCgYIKoZIzj0EAwIDSAAwRQIhAOoJ\n"
    "Z2tEobEhonYUijqkANfy+U9ZCGSA2KlMEgzAaEIPAiB6NykrAlvcXqXl9CHdOm18\n"
    "yQxq9DEyighZz5spiMY5JA==\n"
    "-----END CERTIFICATE-----\n";

// 2027-01-01T00:00:00Z: inside the seeds' validity, after the "expired" seed's end.
constexpr time_t kNow = 1798761600;

// What the proof signs. In phoenix-cp it is the request's CSR; its bytes are only hashed, so a
// fixed value loses nothing and keeps the seeds' proofs valid.
constexpr std::string_view kSignedData = "phoenix presented_certificate fuzz: the signed data";

}  // namespace
}  // namespace phoenix::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace phoenix;
  using namespace phoenix::fuzz;
  static const std::string roots_pem = kRootsPem;
  if (size < 2) return 0;
  std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);
  size_t proof_length = std::min<size_t>((size_t{data[0]} << 8) | data[1], input.size());
  // Their own allocations, so that ASan sees any read past either.
  std::string proof(input.substr(0, proof_length));
  std::string chain_pem(input.substr(proof_length));
  auto identity = tls::VerifyPresentedCertificate(chain_pem, roots_pem, kSignedData, proof, kNow);
  if (!identity.ok()) {
    FUZZ_CHECK(identity.status().code() == absl::StatusCode::kUnauthenticated);
    return 0;
  }
  FUZZ_CHECK(!identity->spiffe_id.empty());
  FUZZ_CHECK(!identity->serial.empty());
  FUZZ_CHECK(identity->not_after >= kNow);
  FUZZ_CHECK(identity->not_after == tls::CertificateNotAfter(chain_pem));
  return 0;
}
