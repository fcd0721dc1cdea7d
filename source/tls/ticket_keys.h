#pragma once

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace phoenix::tls {

// The session ticket keys of one listener, rotated on a schedule so that a stolen key opens
// only a few hours of sessions. New tickets are sealed with the newest key; a ticket sealed
// with one of the two before it still resumes, and its client gets a fresh ticket. A ring
// outlives the TLS contexts that use it, so rotating a certificate or reloading the config
// does not end every session.
class TicketKeyRing {
 public:
  // The ring of listener `name`, made on first use; `rotation` is how long a key seals.
  static std::shared_ptr<TicketKeyRing> ForListener(const std::string& name,
                                                    std::chrono::seconds rotation);
  // A ring on its own clock (tests); ForListener's rings use absl::Now.
  TicketKeyRing(std::chrono::seconds rotation, std::function<absl::Time()> now)
      : rotation_(absl::FromChrono(rotation)), now_(std::move(now)) {}

  // OpenSSL's ticket key callback (SSL_CTX_set_tlsext_ticket_key_evp_cb), for this ring.
  int Process(unsigned char key_name[16], unsigned char* iv, EVP_CIPHER_CTX* cipher,
              EVP_MAC_CTX* mac, int encrypt);

 private:
  struct Key {
    unsigned char name[16];
    unsigned char aes_key[32];
    unsigned char hmac_key[32];
    absl::Time created;
  };
  static constexpr size_t kKeysKept = 3;

  void RotateIfDue() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const absl::Duration rotation_;
  const std::function<absl::Time()> now_;
  absl::Mutex mu_;
  std::deque<Key> keys_ ABSL_GUARDED_BY(mu_);  // Newest first.
};

}  // namespace phoenix::tls
