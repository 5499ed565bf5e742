// Server side of SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677, channel binding
// tls-server-end-point as PostgreSQL implements it), checked against a role's verifier as
// PostgreSQL stores it in pg_authid.rolpassword. No sockets: messages in, messages out.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"

namespace argon::pgwire {

inline constexpr std::string_view kScramSha256 = "SCRAM-SHA-256";
inline constexpr std::string_view kScramSha256Plus = "SCRAM-SHA-256-PLUS";

// "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>" (base64 fields), decoded.
struct ScramVerifier {
  int iterations = 0;
  std::string salt;
  std::string stored_key;  // 32 bytes
  std::string server_key;  // 32 bytes
};

Result<ScramVerifier> parse_scram_verifier(std::string_view rolpassword);
// The verifier PostgreSQL would store for `password` (tests, and nothing else needs it).
std::string make_scram_verifier(std::string_view password, std::string_view salt, int iterations);
// Whether a cleartext password matches the verifier (for the password-prefix endpoint form).
bool scram_password_matches(const ScramVerifier& v, std::string_view password);

std::string base64_encode(std::string_view raw);
std::optional<std::string> base64_decode(std::string_view text);

// One SCRAM exchange. Failures are kUnauthorized (wrong password: say nothing more) or kBadRequest
// (a malformed or inconsistent message, including channel-binding downgrades).
class ScramServer {
 public:
  // `tls_end_point_hash`: the tls-server-end-point binding data of the proxy's certificate, empty
  // when the client is not on TLS (then -PLUS is neither offered nor accepted). `server_nonce` is
  // random when empty (a fixed one only reproduces published test vectors).
  ScramServer(ScramVerifier verifier, std::string tls_end_point_hash,
              std::string server_nonce = {});

  // SASLInitialResponse: returns the server-first-message.
  Result<std::string> client_first(std::string_view mechanism, std::string_view message);
  // SASLResponse: returns the server-final-message when the proof is right.
  Result<std::string> client_final(std::string_view message);

 private:
  ScramVerifier verifier_;
  std::string cbind_data_;
  std::string gs2_header_;
  std::string client_first_bare_;
  std::string server_first_;
  std::string server_nonce_;
  std::string nonce_;
  bool started_ = false;
};

}  // namespace argon::pgwire
