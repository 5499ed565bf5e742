#include "pgwire/scram.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

namespace argon::pgwire {
namespace {

// RFC 7677 section 3: user "user", password "pencil".
constexpr std::string_view kRfcSalt = "W22ZaJ0SNY7soEsUEjb6gQ==";
constexpr std::string_view kRfcClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view kRfcClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+"
    "Ute9ytag9zjfMHgsqmmiz7AndVQ=";

ScramVerifier rfc_verifier() {
  auto v = parse_scram_verifier(make_scram_verifier("pencil", *base64_decode(kRfcSalt), 4096));
  EXPECT_TRUE(v.has_value());
  return *v;
}

std::string hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), int(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

// A SCRAM client, written from the RFC, to drive the server through whole exchanges.
struct Client {
  std::string password;
  std::string gs2 = "n,,";
  std::string cbind_data;
  std::string bare = "n=,r=clientnonce123";

  std::string first() const { return gs2 + bare; }
  std::string final(std::string_view server_first, bool corrupt_proof = false) const {
    std::string sf(server_first);
    auto r = sf.substr(2, sf.find(',') - 2);
    auto s_at = sf.find(",s=") + 3;
    auto salt = *base64_decode(sf.substr(s_at, sf.find(",i=") - s_at));
    int iters = std::stoi(sf.substr(sf.find(",i=") + 3));
    std::string salted(32, '\0');
    PKCS5_PBKDF2_HMAC(password.data(), int(password.size()),
                      reinterpret_cast<const unsigned char*>(salt.data()), int(salt.size()), iters,
                      EVP_sha256(), 32, reinterpret_cast<unsigned char*>(salted.data()));
    auto client_key = hmac(salted, "Client Key");
    unsigned char stored[32];
    SHA256(reinterpret_cast<const unsigned char*>(client_key.data()), client_key.size(), stored);
    std::string without_proof = "c=" + base64_encode(gs2 + cbind_data) + ",r=" + r;
    auto sig = hmac(std::string_view(reinterpret_cast<char*>(stored), 32),
                    bare + "," + sf + "," + without_proof);
    std::string proof(32, '\0');
    for (int i = 0; i < 32; ++i) proof[i] = char(client_key[i] ^ sig[i]);
    if (corrupt_proof) proof[0] = char(proof[0] ^ 1);
    return without_proof + ",p=" + base64_encode(proof);
  }
};

TEST(ScramTest, ReproducesRfc7677Exchange) {
  ScramServer server(rfc_verifier(), "", std::string(kRfcServerNonce));
  auto first = server.client_first(kScramSha256, kRfcClientFirst);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(
      *first,
      "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
  auto final = server.client_final(kRfcClientFinal);
  ASSERT_TRUE(final) << final.error().message;
  EXPECT_EQ(*final, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
}

TEST(ScramTest, AcceptsAVerifierWrittenByPostgres) {
  // CREATE ROLE r PASSWORD 'pencil' on PostgreSQL 15 (password_encryption = scram-sha-256).
  constexpr std::string_view kFromPostgres =
      "SCRAM-SHA-256$4096:/aJLmwOoFhcY6uba525lfQ==$mfL9uX7rzP8pWEXAqLr7b1Z60SdS8dKldVMY22bZUPc=:"
      "GoZ4CJdLXLWh6hBe1gmYfx0+KrDC43jaocqfuU7QQ2w=";
  auto v = parse_scram_verifier(kFromPostgres);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->iterations, 4096);
  EXPECT_TRUE(scram_password_matches(*v, "pencil"));
  EXPECT_FALSE(scram_password_matches(*v, "pencil "));
}

TEST(ScramTest, WrongPasswordIsUnauthorized) {
  ScramServer server(rfc_verifier(), "");
  Client c{"not-pencil"};
  auto first = server.client_first(kScramSha256, c.first());
  ASSERT_TRUE(first);
  auto final = server.client_final(c.final(*first));
  ASSERT_FALSE(final);
  EXPECT_EQ(final.error().code, ErrorCode::kUnauthorized);
}

TEST(ScramTest, CorruptedProofIsUnauthorized) {
  ScramServer server(rfc_verifier(), "");
  Client c{"pencil"};
  auto first = server.client_first(kScramSha256, c.first());
  ASSERT_TRUE(first);
  EXPECT_TRUE(ScramServer(rfc_verifier(), "").client_first(kScramSha256, c.first()));
  auto final = server.client_final(c.final(*first, /*corrupt_proof=*/true));
  ASSERT_FALSE(final);
  EXPECT_EQ(final.error().code, ErrorCode::kUnauthorized);
}

TEST(ScramTest, ChannelBindingPlusSucceedsWithTheCertificateHash) {
  const std::string cert_hash(32, '\x42');
  ScramServer server(rfc_verifier(), cert_hash);
  Client c{"pencil", "p=tls-server-end-point,,", cert_hash};
  auto first = server.client_first(kScramSha256Plus, c.first());
  ASSERT_TRUE(first) << first.error().message;
  auto final = server.client_final(c.final(*first));
  EXPECT_TRUE(final) << final.error().message;
}

TEST(ScramTest, ChannelBindingToAnotherCertificateFails) {
  ScramServer server(rfc_verifier(), std::string(32, '\x42'));
  Client c{"pencil", "p=tls-server-end-point,,",
           std::string(32, '\x43')};  // a man in the middle's cert
  auto first = server.client_first(kScramSha256Plus, c.first());
  ASSERT_TRUE(first);
  auto final = server.client_final(c.final(*first));
  ASSERT_FALSE(final);
  EXPECT_EQ(final.error().code, ErrorCode::kBadRequest);
  EXPECT_NE(final.error().message.find("channel binding"), std::string::npos);
}

TEST(ScramTest, RefusesChannelBindingDowngradesAndMismatches) {
  const std::string cert_hash(32, '\x42');
  // 'y': the client could bind but was told the server cannot; over TLS we offered -PLUS.
  EXPECT_FALSE(ScramServer(rfc_verifier(), cert_hash).client_first(kScramSha256, "y,,n=,r=abc"));
  // 'y' without TLS is fine.
  EXPECT_TRUE(ScramServer(rfc_verifier(), "").client_first(kScramSha256, "y,,n=,r=abc"));
  // -PLUS without TLS, -PLUS without binding, binding with the plain mechanism, other binding
  // types.
  EXPECT_FALSE(ScramServer(rfc_verifier(), "")
                   .client_first(kScramSha256Plus, "p=tls-server-end-point,,n=,r=a"));
  EXPECT_FALSE(ScramServer(rfc_verifier(), cert_hash).client_first(kScramSha256Plus, "n,,n=,r=a"));
  EXPECT_FALSE(ScramServer(rfc_verifier(), cert_hash)
                   .client_first(kScramSha256, "p=tls-server-end-point,,n=,r=a"));
  EXPECT_FALSE(ScramServer(rfc_verifier(), cert_hash)
                   .client_first(kScramSha256Plus, "p=tls-unique,,n=,r=a"));
  EXPECT_FALSE(ScramServer(rfc_verifier(), "").client_first("SCRAM-SHA-1", "n,,n=,r=a"));
}

TEST(ScramTest, MalformedMessagesAreRejectedNotCrashedOn) {
  for (std::string_view bad :
       {"", "n", "n,", "n,,", "n,,r=abc", "n,,n=", "n,,n=,r=", "n,a=authz,n=,r=x", "x,,n=,r=abc",
        "n,,m=ext,n=,r=abc", "n,,n=,r=ab\x01"}) {
    EXPECT_FALSE(ScramServer(rfc_verifier(), "").client_first(kScramSha256, bad)) << bad;
  }
  ScramServer server(rfc_verifier(), "");
  ASSERT_TRUE(server.client_first(kScramSha256, "n,,n=,r=abc"));
  for (std::string_view bad : {"", "c=biws", "c=biws,r=abc", "c=biws,r=wrongnonce,p=AAAA",
                               "r=x,c=biws,p=x", "c=biws,r=abc,p=not-base64!"}) {
    EXPECT_FALSE(server.client_final(bad)) << bad;
  }
  EXPECT_FALSE(ScramServer(rfc_verifier(), "").client_final("c=biws,r=abc,p=AAAA"))
      << "final before first";
}

TEST(ScramTest, VerifiersThatCannotAuthenticateAreRefused) {
  for (std::string_view bad :
       {"", "md5d41d8cd98f00b204e9800998ecf8427e", "SCRAM-SHA-256$", "SCRAM-SHA-256$x:AA==$A:B",
        "SCRAM-SHA-256$4096:!!$AA==:AA==", "SCRAM-SHA-256$4096:AAAA$AAAA:AAAA"}) {
    EXPECT_FALSE(parse_scram_verifier(bad)) << bad;
  }
}

TEST(ScramTest, Base64RoundTrips) {
  using namespace std::string_literals;
  for (std::string raw : {""s, "a"s, "ab"s, "abc"s, "abcd"s, "\x00\xff\x10"s}) {
    auto enc = base64_encode(raw);
    auto dec = base64_decode(enc);
    ASSERT_TRUE(dec);
    EXPECT_EQ(*dec, raw);
  }
  EXPECT_EQ(base64_encode("n,,"), "biws");
  EXPECT_FALSE(base64_decode("abc"));
  EXPECT_FALSE(base64_decode("ab!="));
}

}  // namespace
}  // namespace argon::pgwire
