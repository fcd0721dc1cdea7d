// Micro-benchmarks of mesh identity: how many workload certificates phoenix-cp's CA signs per
// second (each verified against the roots before it is returned), and how fast a sidecar
// makes its key and CSR.
#include <chrono>
#include <ctime>
#include <string>

#include "benchmark/benchmark.h"
#include "source/tls/workload_certificates.h"

namespace phoenix::tls {
namespace {

constexpr char kWeb[] = "spiffe://phoenix.local/ns/default/sa/web";

void BM_MakeKeyAndCsr(benchmark::State& state) {
  for (auto _ : state) {
    auto key = MakeKeyAndCsr(kWeb);
    if (!key.ok()) state.SkipWithError("MakeKeyAndCsr failed");
    benchmark::DoNotOptimize(key);
  }
  state.counters["per_second"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_MakeKeyAndCsr)->Unit(benchmark::kMicrosecond);

void BM_IssueWorkloadCertificate(benchmark::State& state) {
  auto root = GenerateRootCa("phoenix.local", "root", std::chrono::hours(24 * 365));
  auto intermediate =
      GenerateIntermediateCa(*root, "phoenix.local", "intermediate", std::chrono::hours(24 * 30));
  auto signer = CertificateSigner::Create(*intermediate, root->cert_pem);
  auto key = MakeKeyAndCsr(kWeb);
  if (!signer.ok() || !key.ok()) {
    state.SkipWithError("no CA");
    return;
  }
  for (auto _ : state) {
    auto cert = signer->Issue(key->csr_pem, kWeb, "node-1", std::chrono::hours(24), time(nullptr));
    if (!cert.ok()) state.SkipWithError("Issue failed");
    benchmark::DoNotOptimize(cert);
  }
  state.counters["per_second"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_IssueWorkloadCertificate)->Unit(benchmark::kMicrosecond);

void BM_VerifyPresentedCertificate(benchmark::State& state) {
  auto root = GenerateRootCa("phoenix.local", "root", std::chrono::hours(24 * 365));
  auto intermediate =
      GenerateIntermediateCa(*root, "phoenix.local", "intermediate", std::chrono::hours(24 * 30));
  auto signer = CertificateSigner::Create(*intermediate, root->cert_pem);
  auto key = MakeKeyAndCsr(kWeb);
  auto cert = signer->Issue(key->csr_pem, kWeb, "node-1", std::chrono::hours(24), time(nullptr));
  auto proof = SignWithKey(key->key_pem, "nonce");
  if (!cert.ok() || !proof.ok()) {
    state.SkipWithError("no certificate");
    return;
  }
  for (auto _ : state) {
    auto identity =
        VerifyPresentedCertificate(cert->chain_pem, root->cert_pem, "nonce", *proof, time(nullptr));
    if (!identity.ok()) state.SkipWithError("Verify failed");
    benchmark::DoNotOptimize(identity);
  }
  state.counters["per_second"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_VerifyPresentedCertificate)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace phoenix::tls
