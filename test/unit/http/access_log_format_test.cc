#include "source/http/access_log_format.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace phoenix::http {
namespace {

using testing::ElementsAre;
using testing::HasSubstr;

class AccessLogFormatTest : public testing::Test {
 protected:
  AccessLogFormatTest() {
    request_.method = "GET";
    request_.path = "/a?b=1";
    request_.authority = "example.com";
    request_.headers.Add("user-agent", "curl/8");
    request_.headers.Add("x-request-id", "abc");
    context_.start_wall_us = 1704067200123456;  // 2024-01-01T00:00:00.123456Z
    context_.method = request_.method;
    context_.path = request_.path;
    context_.authority = request_.authority;
    context_.protocol = Protocol::kHttp2;
    context_.code = 503;
    context_.flags = "UF";
    context_.bytes_received = 12;
    context_.bytes_sent = 34;
    context_.duration_ms = 56;
    context_.upstream_host = "127.0.0.1:8080";
    context_.downstream_address = "10.0.0.1:5555";
    context_.request = &request_;
    context_.response_headers = &response_headers_;
  }

  std::string Text(std::string_view format) {
    auto formatter = ParseTextAccessLogFormat(format);
    EXPECT_TRUE(formatter.ok()) << formatter.status();
    return formatter.ok() ? (*formatter)->Format(context_) : "";
  }

  RequestHeaders request_;
  std::vector<std::pair<std::string, std::string>> response_headers_;
  AccessLogContext context_;
};

TEST_F(AccessLogFormatTest, TextOperators) {
  EXPECT_EQ(Text("%START_TIME% \"%REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL%\" %RESPONSE_CODE% "
                 "%RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %UPSTREAM_HOST%"),
            "2024-01-01T00:00:00.123Z \"GET /a?b=1 HTTP/2\" 503 UF 12 34 56 127.0.0.1:8080\n");
  EXPECT_EQ(Text("%DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%\n"),
            "10.0.0.1:5555 10.0.0.1\n");
  EXPECT_EQ(Text("100%% %START_TIME(%Y/%m/%d %H)%"), "100% 2024/01/01 00\n");
}

TEST_F(AccessLogFormatTest, RequestHeadersWithFallbackAndLength) {
  EXPECT_EQ(Text("%REQ(USER-AGENT)% %REQ(X-MISSING)% %REQ(X-MISSING?X-REQUEST-ID)%"),
            "curl/8 - abc\n");
  EXPECT_EQ(Text("%REQ(:AUTHORITY):4% %REQ(HOST)%"), "exam example.com\n");
}

TEST_F(AccessLogFormatTest, ResponseHeadersAreDeclaredAndRead) {
  auto formatter = ParseTextAccessLogFormat("%RESP(Content-Type)% %RESP(X-A?X-B)%");
  ASSERT_TRUE(formatter.ok());
  EXPECT_THAT((*formatter)->response_headers(), ElementsAre("content-type", "x-a", "x-b"));
  response_headers_ = {{"content-type", "text/plain"}, {"x-b", "bee"}};
  EXPECT_EQ((*formatter)->Format(context_), "text/plain bee\n");
}

TEST_F(AccessLogFormatTest, AbsentValuesPrintADash) {
  context_.flags = "";
  context_.upstream_host = "";
  context_.request = nullptr;
  EXPECT_EQ(Text("%RESPONSE_FLAGS% %UPSTREAM_HOST% %REQ(USER-AGENT)% %DOWNSTREAM_PEER_URI_SAN% "
                 "%DOWNSTREAM_TLS_VERSION% %ROUTE_NAME% %POLICY_RULE%"),
            "- - - - - - -\n");
}

TEST_F(AccessLogFormatTest, BadFormatsNameTheProblem) {
  auto error = [](std::string_view format) {
    auto formatter = ParseTextAccessLogFormat(format);
    EXPECT_FALSE(formatter.ok()) << format;
    return formatter.ok() ? std::string() : std::string(formatter.status().message());
  };
  EXPECT_THAT(error("%NOPE%"), HasSubstr("unknown access log operator %NOPE%"));
  EXPECT_THAT(error("50% off"), HasSubstr("unterminated"));
  EXPECT_THAT(error("%REQ()%"), HasSubstr("malformed"));
  EXPECT_THAT(error("%REQ(X):0%"), HasSubstr("malformed length"));
  EXPECT_THAT(error("%REQ(X?)%"), HasSubstr("empty header name"));
}

TEST_F(AccessLogFormatTest, JsonTypesNumbersStringsAndNull) {
  std::map<std::string, std::string> fields = {
      {"status", "%RESPONSE_CODE%"},   {"path", "%REQ(:PATH)%"},
      {"missing", "%REQ(X-MISSING)%"}, {"mixed", "%REQ(:METHOD)% took %DURATION%ms"},
      {"duration", "%DURATION%"},
  };
  auto formatter = ParseJsonAccessLogFormat(fields);
  ASSERT_TRUE(formatter.ok()) << formatter.status();
  EXPECT_EQ((*formatter)->Format(context_),
            "{\"duration\":56,\"missing\":null,\"mixed\":\"GET took 56ms\",\"path\":\"/a?b=1\","
            "\"status\":503}\n");
}

TEST_F(AccessLogFormatTest, JsonEscapesEverythingThatCouldBreakTheLine) {
  request_.headers.Add("x-evil", "a\"b\\c\x01\xff");
  auto formatter = ParseJsonAccessLogFormat({{"evil", "%REQ(X-EVIL)%"}});
  ASSERT_TRUE(formatter.ok());
  EXPECT_EQ((*formatter)->Format(context_), "{\"evil\":\"a\\\"b\\\\c\\u0001\\u00ff\"}\n");
}

TEST_F(AccessLogFormatTest, JsonErrorsNameTheKey) {
  auto formatter = ParseJsonAccessLogFormat({{"bad", "%WHAT%"}});
  ASSERT_FALSE(formatter.ok());
  EXPECT_THAT(std::string(formatter.status().message()), HasSubstr("key 'bad'"));
}

TEST_F(AccessLogFormatTest, DefaultLineIsUnchanged) {
  EXPECT_EQ(DefaultAccessLogFormatter()->Format(context_),
            "[2024-01-01T00:00:00.123Z] \"GET /a?b=1 HTTP/2\" 503 UF 12 34 56 \"-\" \"-\" \"-\" "
            "\"example.com\" \"127.0.0.1:8080\" - \"-\" \"-\"\n");
}

}  // namespace
}  // namespace phoenix::http
