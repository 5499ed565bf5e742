#include "pgwire/messages.h"

#include <gtest/gtest.h>

#include "pgwire/message_framer.h"
#include "pgwire/wire_format.h"

namespace argon::pgwire {
namespace {

Message only_message(MessageFramer& f, const std::string& bytes) {
  f.feed(bytes);
  auto m = f.next();
  EXPECT_TRUE(m && *m);
  return **m;
}

TEST(MessagesTest, ErrorResponseRoundTrips) {
  ErrorFields e{"FATAL", "57P01", "terminating connection: branch restored", "detail here",
                "reconnect"};
  MessageFramer f(1 << 20);
  auto m = only_message(f, error_response(e));
  EXPECT_EQ(m.type, 'E');
  auto back = parse_error_response(m.body);
  EXPECT_EQ(back.severity, "FATAL");
  EXPECT_EQ(back.sqlstate, "57P01");
  EXPECT_EQ(back.message, e.message);
  EXPECT_EQ(back.detail, e.detail);
  EXPECT_EQ(back.hint, e.hint);
}

TEST(MessagesTest, NulBytesCannotBreakFraming) {
  ErrorFields e{"FATAL", "08P01", std::string("bad\0user", 8), "", ""};
  auto back = parse_error_response(error_response(e).substr(5));
  EXPECT_EQ(back.message, "bad?user");
}

TEST(MessagesTest, AuthenticationMessages) {
  EXPECT_EQ(authentication_ok(), std::string("R\0\0\0\x08\0\0\0\0", 9));
  auto sasl = authentication_sasl({"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"});
  EXPECT_EQ(sasl.substr(5, 4), std::string("\0\0\0\x0a", 4));
  EXPECT_EQ(sasl.substr(9), std::string("SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0", 34));
  EXPECT_EQ(load_be32(sasl.data() + 1), sasl.size() - 1);
}

TEST(MessagesTest, SaslInitialResponse) {
  std::string body = std::string("SCRAM-SHA-256\0", 14);
  append_be32(body, 5);
  body += "n,,n=";
  auto r = parse_sasl_initial_response(body);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->mechanism, "SCRAM-SHA-256");
  EXPECT_EQ(r->data, "n,,n=");

  std::string truncated = std::string("SCRAM-SHA-256\0", 14);
  append_be32(truncated, 50);
  truncated += "short";
  EXPECT_FALSE(parse_sasl_initial_response(truncated));
  std::string negative = std::string("SCRAM-SHA-256\0", 14);
  append_be32(negative, 0xfffffff0u);
  EXPECT_FALSE(parse_sasl_initial_response(negative));
  EXPECT_FALSE(parse_sasl_initial_response("no-nul"));
}

TEST(MessagesTest, PasswordMessage) {
  EXPECT_EQ(parse_password_message(std::string("secret\0", 7)).value(), "secret");
  EXPECT_FALSE(parse_password_message("secret"));
  EXPECT_FALSE(parse_password_message(std::string("a\0b\0", 4)));
}

TEST(MessagesTest, ExtendedQueryIsFourFramedMessages) {
  MessageFramer f(1 << 20);
  f.feed(extended_query("SELECT $1, $2", {std::string("x"), std::nullopt}));
  std::string types;
  for (;;) {
    auto m = f.next();
    ASSERT_TRUE(m);
    if (!*m) break;
    types.push_back((*m)->type);
  }
  EXPECT_EQ(types, "PBES");
}

TEST(MessagesTest, DataRow) {
  std::string body;
  append_be16(body, 2);
  append_be32(body, 3);
  body += "abc";
  append_be32(body, 0xffffffffu);
  auto row = parse_data_row(body);
  ASSERT_TRUE(row);
  ASSERT_EQ(row->size(), 2u);
  EXPECT_EQ((*row)[0], "abc");
  EXPECT_FALSE((*row)[1]);
  EXPECT_FALSE(parse_data_row(body.substr(0, 8)));
}

}  // namespace
}  // namespace argon::pgwire
