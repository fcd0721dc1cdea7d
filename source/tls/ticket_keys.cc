#include "source/tls/ticket_keys.h"

#include <openssl/core_names.h>
#include <openssl/rand.h>

#include <cstring>
#include <map>

namespace phoenix::tls {
namespace {

bool SetMacKey(EVP_MAC_CTX* mac, unsigned char* key) {
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, 32),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_end(),
  };
  return EVP_MAC_CTX_set_params(mac, params) == 1;
}

}  // namespace

std::shared_ptr<TicketKeyRing> TicketKeyRing::ForListener(const std::string& name,
                                                          std::chrono::seconds rotation) {
  static absl::Mutex mu(absl::kConstInit);
  static auto* rings = new std::map<std::pair<std::string, int64_t>, std::weak_ptr<TicketKeyRing>>;
  absl::MutexLock lock(&mu);
  auto& slot = (*rings)[{name, rotation.count()}];
  std::shared_ptr<TicketKeyRing> ring = slot.lock();
  if (ring == nullptr) {
    ring = std::make_shared<TicketKeyRing>(rotation, [] { return absl::Now(); });
    slot = ring;
  }
  return ring;
}

void TicketKeyRing::RotateIfDue() {
  absl::Time now = now_();
  if (!keys_.empty() && now - keys_.front().created < rotation_) return;
  Key key;
  RAND_bytes(key.name, sizeof(key.name));
  RAND_bytes(key.aes_key, sizeof(key.aes_key));
  RAND_bytes(key.hmac_key, sizeof(key.hmac_key));
  key.created = now;
  keys_.push_front(key);
  if (keys_.size() > kKeysKept) keys_.pop_back();
}

int TicketKeyRing::Process(unsigned char key_name[16], unsigned char* iv, EVP_CIPHER_CTX* cipher,
                           EVP_MAC_CTX* mac, int encrypt) {
  absl::MutexLock lock(&mu_);
  RotateIfDue();
  if (encrypt == 1) {
    Key& key = keys_.front();
    memcpy(key_name, key.name, sizeof(key.name));
    if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1) return -1;
    if (EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes_key, iv) != 1) return -1;
    return SetMacKey(mac, key.hmac_key) ? 1 : -1;
  }
  for (size_t i = 0; i < keys_.size(); ++i) {
    Key& key = keys_[i];
    if (memcmp(key_name, key.name, sizeof(key.name)) != 0) continue;
    if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes_key, iv) != 1) return -1;
    if (!SetMacKey(mac, key.hmac_key)) return -1;
    return i == 0 ? 1 : 2;  // 2: resume, and issue a ticket under the newest key.
  }
  return 0;  // Unknown or retired key: a full handshake.
}

}  // namespace phoenix::tls
