// A cleartext password against a role's SCRAM verifier, as the `endpoint=<id>;<password>` form and
// SQL over HTTP send it. The check derives the key with PBKDF2 (4096 rounds, ~2 ms), which SQL
// over HTTP would pay on every request; so a match is remembered, by a SHA-256 of the verifier and
// the password together (never the password), up to kMaxRemembered, after which the memory starts
// over. A changed password changes the verifier, so the old match no longer applies. Thread-safe.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>

namespace argon::proxy {

class PasswordCheck {
 public:
  static constexpr std::size_t kMaxRemembered = 4096;

  // `verifier`: pg_authid.rolpassword. False for anything that is not a SCRAM-SHA-256 verifier.
  bool matches(std::string_view verifier, std::string_view password);

 private:
  std::mutex mu_;
  std::unordered_set<std::string> matched_;
};

}  // namespace argon::proxy
