#include "proxy/password_check.h"

#include <openssl/evp.h>

#include "pgwire/scram.h"

namespace argon::proxy {

namespace {

std::string digest(std::string_view verifier, std::string_view password) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const unsigned char zero = 0;
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx, verifier.data(), verifier.size());
  EVP_DigestUpdate(ctx, &zero, 1);
  EVP_DigestUpdate(ctx, password.data(), password.size());
  EVP_DigestFinal_ex(ctx, out, &len);
  EVP_MD_CTX_free(ctx);
  return std::string(reinterpret_cast<char*>(out), len);
}

}  // namespace

bool PasswordCheck::matches(std::string_view verifier, std::string_view password) {
  const std::string key = digest(verifier, password);
  {
    std::lock_guard l(mu_);
    if (matched_.contains(key)) return true;
  }
  auto parsed = pgwire::parse_scram_verifier(verifier);
  if (!parsed || !pgwire::scram_password_matches(*parsed, password)) return false;
  std::lock_guard l(mu_);
  if (matched_.size() >= kMaxRemembered) matched_.clear();
  matched_.insert(key);
  return true;
}

}  // namespace argon::proxy
