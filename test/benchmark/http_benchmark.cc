// Micro-benchmarks of the per-request hot path pieces: HTTP/1 parsing and route matching.
#include <string>

#include "benchmark/benchmark.h"
#include "source/config/yaml_loader.h"
#include "source/http/http1_codec.h"
#include "source/router/route_table.h"

namespace phoenix {
namespace {

class NullConnection : public network::Connection {
 public:
  void SetCallbacks(network::ConnectionCallbacks*) override {}
  void Write(const std::string_view*, size_t) override {}
  void ReadDisable(bool) override {}
  void CloseAfterFlush() override {}
  void Close() override {}
  bool closed() const override { return false; }
  size_t BufferedBytes() const override { return 0; }
  const std::string& peer_address() const override { return peer_; }
  uint64_t bytes_written() const override { return 0; }

 private:
  std::string peer_ = "127.0.0.1:1";
};

class CountingCallbacks : public http::ServerConnectionCallbacks, public http::RequestDecoder {
 public:
  void OnRequestBegin() override {}
  http::RequestDecoder& NewStream(http::ResponseEncoder&) override { return *this; }
  void OnProtocolError(int, std::string_view, bool) override {}
  void DecodeHeaders(http::RequestHeadersPtr headers, bool) override {
    benchmark::DoNotOptimize(headers->path.size());
    ++requests;
  }
  void DecodeData(std::string_view, bool) override {}
  void DecodeTrailers(http::HeaderMap) override {}
  int requests = 0;
};

void BM_ParseRequestHead(benchmark::State& state) {
  const std::string request =
      "GET /api/v1/users/12345?expand=true HTTP/1.1\r\nHost: api.example.com\r\n"
      "User-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: application/json\r\n"
      "Accept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n"
      "Cookie: session=abcdef0123456789\r\n\r\n";
  NullConnection connection;
  CountingCallbacks callbacks;
  http::CodecLimits limits;
  for (auto _ : state) {
    http::Http1ServerCodec codec(connection, callbacks, limits);
    codec.Dispatch(request.data(), request.size());
  }
  state.SetItemsProcessed(callbacks.requests);
}
BENCHMARK(BM_ParseRequestHead);

void BM_RouteMatch(benchmark::State& state) {
  config::v1::RouteConfiguration proto;
  absl::Status status = config::LoadYamlString(R"(
virtual_hosts:
- name: app
  domains: ["*"]
  routes:
  - {match: {path: /crash, case_sensitive: false}, direct_response: {status: 403}}
  - {match: {safe_regex: {regex: "/users/[0-9]+"}}, route: {cluster: users}}
  - {match: {prefix: /api/v2}, route: {cluster: v2}}
  - {match: {prefix: /api/v1, headers: [{name: x-canary, present_match: true}]}, route: {cluster: canary}}
  - {match: {prefix: /}, route: {cluster: app}}
)",
                                               &proto, nullptr);
  if (!status.ok()) state.SkipWithError("bad config");
  config::ConfigErrors errors;
  router::RouteTable table(proto, "route_config", errors);
  http::RequestHeaders request;
  request.method = "GET";
  request.path = "/api/v1/users/12345?expand=true";
  request.authority = "api.example.com";
  for (auto _ : state) benchmark::DoNotOptimize(table.Match(request));
}
BENCHMARK(BM_RouteMatch);

}  // namespace
}  // namespace phoenix
