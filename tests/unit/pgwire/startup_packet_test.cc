#include "pgwire/startup_packet.h"

#include <gtest/gtest.h>

#include "pgwire/wire_format.h"

namespace argon::pgwire {
namespace {

std::string packet(std::int32_t code, std::string_view rest) {
  std::string out;
  append_be32(out, static_cast<std::uint32_t>(8 + rest.size()));
  append_be32(out, static_cast<std::uint32_t>(code));
  return out + std::string(rest);
}

Result<StartupPacket> parse_whole(std::string_view bytes) {
  auto len = startup_body_length(bytes.substr(0, 4));
  if (!len) return std::unexpected(len.error());
  EXPECT_EQ(*len, bytes.size() - 4);
  return parse_startup_packet(bytes.substr(4));
}

TEST(StartupPacketTest, ParsesTheFourKinds) {
  auto ssl = parse_whole(packet(kSslRequestCode, ""));
  ASSERT_TRUE(ssl);
  EXPECT_TRUE(std::holds_alternative<SslRequest>(*ssl));
  auto gss = parse_whole(packet(kGssEncRequestCode, ""));
  ASSERT_TRUE(gss);
  EXPECT_TRUE(std::holds_alternative<GssEncRequest>(*gss));

  auto cancel = parse_whole(encode_cancel_request({1234, -5}));
  ASSERT_TRUE(cancel);
  ASSERT_TRUE(std::holds_alternative<CancelRequest>(*cancel));
  EXPECT_EQ(std::get<CancelRequest>(*cancel).process_id, 1234);
  EXPECT_EQ(std::get<CancelRequest>(*cancel).secret_key, -5);

  StartupMessage m;
  m.set("user", "neondb_owner");
  m.set("database", "neondb");
  m.set("options", "endpoint=ep-a-b-1");
  auto startup = parse_whole(encode_startup_message(m));
  ASSERT_TRUE(startup);
  const auto& got = std::get<StartupMessage>(*startup);
  EXPECT_EQ(got.get("user"), "neondb_owner");
  EXPECT_EQ(got.get("database"), "neondb");
  EXPECT_EQ(got.get("options"), "endpoint=ep-a-b-1");
  EXPECT_FALSE(got.get("application_name"));
}

TEST(StartupPacketTest, NewerMinorVersionsAndProtocolOptionsAreReported) {
  const char raw[] = "user\0u\0_pq_.fancy\0on\0";  // the literal's own NUL ends the list
  std::string body(raw, sizeof raw);
  auto r = parse_whole(packet((3 << 16) | 2, body));
  ASSERT_TRUE(r);
  const auto& m = std::get<StartupMessage>(*r);
  EXPECT_EQ(m.minor_version, 2);
  EXPECT_EQ(m.protocol_options(), std::vector<std::string>{"_pq_.fancy"});
}

TEST(StartupPacketTest, LengthWordIsBounded) {
  std::string w;
  append_be32(w, 7);
  EXPECT_FALSE(startup_body_length(w));
  w.clear();
  append_be32(w, kMaxStartupPacketLength + 1);
  EXPECT_FALSE(startup_body_length(w));
  w.clear();
  append_be32(w, 0xffffffffu);
  EXPECT_FALSE(startup_body_length(w));
  w.clear();
  append_be32(w, kMaxStartupPacketLength);
  EXPECT_EQ(startup_body_length(w), kMaxStartupPacketLength - 4);
  EXPECT_FALSE(startup_body_length("abc"));
}

TEST(StartupPacketTest, MalformedBodiesAreErrorsWithReasons) {
  struct Case {
    std::string bytes;
    std::string_view message_part;
  };
  const std::vector<Case> cases = {
      {packet(kSslRequestCode, "x"), "SSLRequest"},
      {packet(kCancelRequestCode, "1234"), "CancelRequest"},
      {packet(2 << 16, std::string("user\0u\0\0", 8)), "unsupported frontend protocol 2.0"},
      {packet(kProtocolVersion3, std::string("user\0u\0", 7)), "terminator"},
      {packet(kProtocolVersion3, std::string("user\0u", 6)), "terminator"},
      {packet(kProtocolVersion3, std::string("user\0u\0\0extra", 13)), "terminator"},
      {packet(kProtocolVersion3, std::string("database\0d\0\0", 12)), "no PostgreSQL user name"},
      {packet(kProtocolVersion3, std::string("user\0\0\0", 7)), "no PostgreSQL user name"},
      {packet(kProtocolVersion3, std::string("user\0a\0user\0b\0\0", 15)), "duplicate"},
  };
  for (const auto& c : cases) {
    auto r = parse_whole(c.bytes);
    ASSERT_FALSE(r) << c.message_part;
    EXPECT_EQ(r.error().code, ErrorCode::kBadRequest);
    EXPECT_NE(r.error().message.find(c.message_part), std::string::npos) << r.error().message;
  }
  EXPECT_FALSE(parse_startup_packet(""));
  EXPECT_FALSE(parse_startup_packet("ab"));
}

TEST(StartupPacketTest, EditingParameters) {
  StartupMessage m;
  m.set("user", "a");
  m.set("options", "endpoint=ep-x -c search_path=s");
  m.set("user", "b");
  m.erase("options");
  ASSERT_EQ(m.params.size(), 1u);
  EXPECT_EQ(m.get("user"), "b");
}

}  // namespace
}  // namespace argon::pgwire
