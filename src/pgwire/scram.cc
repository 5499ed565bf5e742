#include "pgwire/scram.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cctype>
#include <charconv>
#include <optional>

#include "common/random.h"

namespace argon::pgwire {

namespace {

constexpr std::size_t kKeyLength = 32;

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string sha256(std::string_view data) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out);
  return std::string(reinterpret_cast<char*>(out), sizeof out);
}

std::string salted_password(std::string_view password, std::string_view salt, int iterations) {
  // PostgreSQL SASLprep-normalizes passwords; ours are ASCII, for which SASLprep is the identity.
  std::string out(kKeyLength, '\0');
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), iterations, EVP_sha256(),
                    static_cast<int>(out.size()), reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

std::string xor_bytes(std::string_view a, std::string_view b) {
  std::string out(a.size(), '\0');
  for (std::size_t i = 0; i < a.size(); ++i) out[i] = static_cast<char>(a[i] ^ b[i]);
  return out;
}

// "k=value" attribute at the front of `s`, which is consumed up to and including the next comma.
std::optional<std::string_view> take_attribute(std::string_view& s, char key) {
  if (s.size() < 2 || s[0] != key || s[1] != '=') return std::nullopt;
  auto comma = s.find(',');
  auto value = s.substr(2, comma == std::string_view::npos ? std::string_view::npos : comma - 2);
  s = comma == std::string_view::npos ? std::string_view{} : s.substr(comma + 1);
  return value;
}

std::unexpected<Error> malformed(std::string_view what) {
  return fail(ErrorCode::kBadRequest, "malformed SCRAM message (" + std::string(what) + ")");
}

std::unexpected<Error> wrong_password() {
  return fail(ErrorCode::kUnauthorized, "password authentication failed");
}

}  // namespace

std::string base64_encode(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(raw.data()),
                          static_cast<int>(raw.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  for (char c : text) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '='))
      return std::nullopt;
  }
  std::string out(3 * text.size() / 4, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts padding as zero bytes; drop them.
  std::size_t pad = 0;
  if (!text.empty() && text.back() == '=') ++pad;
  if (text.size() > 1 && text[text.size() - 2] == '=') ++pad;
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

Result<ScramVerifier> parse_scram_verifier(std::string_view s) {
  auto unusable = [] {
    return fail(ErrorCode::kUnauthorized, "password authentication failed",
                "role has no SCRAM-SHA-256 verifier (no password, or an md5 one)");
  };
  constexpr std::string_view kPrefix = "SCRAM-SHA-256$";
  if (!s.starts_with(kPrefix)) return unusable();
  s.remove_prefix(kPrefix.size());
  auto colon = s.find(':');
  auto dollar = s.find('$');
  if (colon == std::string_view::npos || dollar == std::string_view::npos || colon > dollar)
    return unusable();
  ScramVerifier v;
  auto iter = s.substr(0, colon);
  if (std::from_chars(iter.data(), iter.data() + iter.size(), v.iterations).ec != std::errc() ||
      v.iterations < 1) {
    return unusable();
  }
  auto salt = base64_decode(s.substr(colon + 1, dollar - colon - 1));
  auto keys = s.substr(dollar + 1);
  auto colon2 = keys.find(':');
  if (!salt || colon2 == std::string_view::npos) return unusable();
  auto stored = base64_decode(keys.substr(0, colon2));
  auto server = base64_decode(keys.substr(colon2 + 1));
  if (!stored || !server || stored->size() != kKeyLength || server->size() != kKeyLength)
    return unusable();
  v.salt = std::move(*salt);
  v.stored_key = std::move(*stored);
  v.server_key = std::move(*server);
  return v;
}

std::string make_scram_verifier(std::string_view password, std::string_view salt, int iterations) {
  auto salted = salted_password(password, salt, iterations);
  auto stored = sha256(hmac_sha256(salted, "Client Key"));
  auto server = hmac_sha256(salted, "Server Key");
  return "SCRAM-SHA-256$" + std::to_string(iterations) + ":" + base64_encode(salt) + "$" +
         base64_encode(stored) + ":" + base64_encode(server);
}

bool scram_password_matches(const ScramVerifier& v, std::string_view password) {
  auto salted = salted_password(password, v.salt, v.iterations);
  return constant_time_equal(sha256(hmac_sha256(salted, "Client Key")), v.stored_key);
}

ScramServer::ScramServer(ScramVerifier verifier, std::string tls_end_point_hash,
                         std::string server_nonce)
    : verifier_(std::move(verifier)),
      cbind_data_(std::move(tls_end_point_hash)),
      server_nonce_(std::move(server_nonce)) {
  if (server_nonce_.empty()) {
    unsigned char raw[18];
    RAND_bytes(raw, sizeof raw);
    server_nonce_ = base64_encode(std::string_view(reinterpret_cast<char*>(raw), sizeof raw));
  }
}

Result<std::string> ScramServer::client_first(std::string_view mechanism, std::string_view msg) {
  if (started_) return malformed("unexpected client-first-message");
  started_ = true;
  const bool plus = mechanism == kScramSha256Plus;
  if (!plus && mechanism != kScramSha256) {
    return fail(ErrorCode::kBadRequest, "client selected an invalid SASL authentication mechanism");
  }
  if (plus && cbind_data_.empty()) {
    return fail(ErrorCode::kBadRequest,
                "SCRAM-SHA-256-PLUS needs a TLS connection; connect with sslmode=require");
  }
  std::string_view s = msg;
  // gs2-header: cbind-flag "," [authzid] ","
  if (s.empty()) return malformed("empty client-first-message");
  std::size_t flag_end = s.find(',');
  if (flag_end == std::string_view::npos) return malformed("no GS2 header");
  std::string_view flag = s.substr(0, flag_end);
  if (flag == "n") {
    if (plus) return malformed("SCRAM-SHA-256-PLUS without channel binding");
  } else if (flag == "y") {
    // The client could bind but thinks we cannot; we offered -PLUS over TLS, so someone removed it.
    if (!cbind_data_.empty()) {
      return fail(ErrorCode::kBadRequest, "SCRAM channel binding negotiation error",
                  "client says server does not support channel binding, but it was offered");
    }
    if (plus) return malformed("channel binding flag 'y' with SCRAM-SHA-256-PLUS");
  } else if (flag == "p=tls-server-end-point") {
    if (!plus)
      return malformed("channel binding requested with SCRAM-SHA-256; select SCRAM-SHA-256-PLUS");
  } else if (flag.starts_with("p=")) {
    return fail(ErrorCode::kBadRequest,
                "unsupported SCRAM channel-binding type; only tls-server-end-point is supported");
  } else {
    return malformed("invalid channel binding flag");
  }
  s.remove_prefix(flag_end + 1);
  if (s.empty() || s[0] != ',')
    return fail(ErrorCode::kBadRequest,
                "client uses authorization identity, which is not supported");
  s.remove_prefix(1);
  gs2_header_ = std::string(msg.substr(0, flag_end + 2));
  client_first_bare_ = std::string(s);
  if (s.starts_with("m="))
    return fail(ErrorCode::kBadRequest, "client requires an unsupported SCRAM extension");
  if (!take_attribute(s, 'n')) return malformed("no user name attribute");  // PostgreSQL ignores it
  auto client_nonce = take_attribute(s, 'r');
  if (!client_nonce || client_nonce->empty()) return malformed("no client nonce");
  for (char c : *client_nonce) {
    if (c < 0x21 || c > 0x7e || c == ',') return malformed("invalid client nonce");
  }
  nonce_ = std::string(*client_nonce) + server_nonce_;
  server_first_ = "r=" + nonce_ + ",s=" + base64_encode(verifier_.salt) +
                  ",i=" + std::to_string(verifier_.iterations);
  return server_first_;
}

Result<std::string> ScramServer::client_final(std::string_view msg) {
  if (!started_ || server_first_.empty()) return malformed("unexpected client-final-message");
  std::string_view s = msg;
  auto cbind = take_attribute(s, 'c');
  if (!cbind) return malformed("no channel binding attribute");
  std::string expected = gs2_header_;
  if (gs2_header_.starts_with("p=")) expected += cbind_data_;
  if (*cbind != base64_encode(expected)) {
    return fail(ErrorCode::kBadRequest, "SCRAM channel binding check failed");
  }
  auto nonce = take_attribute(s, 'r');
  if (!nonce || *nonce != nonce_) return malformed("nonce does not match");
  // Skip extensions up to the proof, which must come last.
  auto proof_at = msg.rfind(",p=");
  if (proof_at == std::string_view::npos) return malformed("no proof");
  auto proof = base64_decode(msg.substr(proof_at + 3));
  if (!proof || proof->size() != kKeyLength) return malformed("invalid proof");
  std::string auth_message =
      client_first_bare_ + "," + server_first_ + "," + std::string(msg.substr(0, proof_at));
  auto client_signature = hmac_sha256(verifier_.stored_key, auth_message);
  auto client_key = xor_bytes(*proof, client_signature);
  if (!constant_time_equal(sha256(client_key), verifier_.stored_key)) return wrong_password();
  return "v=" + base64_encode(hmac_sha256(verifier_.server_key, auth_message));
}

}  // namespace argon::pgwire
