#include "source/tls/ticket_keys.h"

#include <openssl/evp.h>

#include "gtest/gtest.h"

namespace phoenix::tls {
namespace {

// Drives a ring as OpenSSL's ticket callback does, on a clock the test moves.
class TicketKeyRingTest : public ::testing::Test {
 protected:
  TicketKeyRingTest() : ring_(std::chrono::seconds(3600), [this] { return now_; }) {}

  // Seals a ticket: the key name it was sealed under.
  std::string Seal() {
    unsigned char name[16];
    EXPECT_EQ(Process(name, 1), 1);
    return std::string(reinterpret_cast<char*>(name), sizeof(name));
  }
  // Opens a ticket sealed under `name`: 1 (current key), 2 (older key: renew), 0 (unknown).
  int Open(const std::string& name) {
    unsigned char copy[16];
    memcpy(copy, name.data(), sizeof(copy));
    return Process(copy, 0);
  }
  int Process(unsigned char name[16], int encrypt) {
    unsigned char iv[EVP_MAX_IV_LENGTH] = {};
    EVP_CIPHER_CTX* cipher = EVP_CIPHER_CTX_new();
    EVP_MAC* mac_algorithm = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    EVP_MAC_CTX* mac = EVP_MAC_CTX_new(mac_algorithm);
    int result = ring_.Process(name, iv, cipher, mac, encrypt);
    EVP_MAC_CTX_free(mac);
    EVP_MAC_free(mac_algorithm);
    EVP_CIPHER_CTX_free(cipher);
    return result;
  }

  absl::Time now_ = absl::FromUnixSeconds(1'000'000);
  TicketKeyRing ring_;
};

TEST_F(TicketKeyRingTest, ATicketOpensUntilItsKeyIsTwoRotationsOld) {
  std::string first = Seal();
  EXPECT_EQ(Open(first), 1);
  now_ += absl::Hours(1);
  std::string second = Seal();  // Sealing after the interval rotates.
  EXPECT_NE(second, first);
  EXPECT_EQ(Open(first), 2);  // Still opens; the client gets a fresh ticket.
  EXPECT_EQ(Open(second), 1);
  now_ += absl::Hours(1);
  Seal();
  EXPECT_EQ(Open(first), 2);  // Kept: the newest key and the two before it.
  now_ += absl::Hours(1);
  Seal();
  EXPECT_EQ(Open(first), 0);  // Retired: a full handshake.
  EXPECT_EQ(Open(second), 2);
}

TEST_F(TicketKeyRingTest, WithinTheIntervalTheKeyStays) {
  std::string first = Seal();
  now_ += absl::Minutes(59);
  EXPECT_EQ(Seal(), first);
}

TEST_F(TicketKeyRingTest, AnUnknownKeyNameMeansAFullHandshake) {
  Seal();
  EXPECT_EQ(Open(std::string(16, 'x')), 0);
}

TEST(TicketKeyRingRegistryTest, AListenerKeepsItsRingAcrossContexts) {
  auto a = TicketKeyRing::ForListener("ingress", std::chrono::seconds(60));
  auto b = TicketKeyRing::ForListener("ingress", std::chrono::seconds(60));
  auto c = TicketKeyRing::ForListener("other", std::chrono::seconds(60));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

}  // namespace
}  // namespace phoenix::tls
