#include "pgwire/message_framer.h"

#include <gtest/gtest.h>

#include "pgwire/messages.h"
#include "pgwire/wire_format.h"

namespace argon::pgwire {
namespace {

std::vector<std::pair<char, std::string>> drain(MessageFramer& f) {
  std::vector<std::pair<char, std::string>> out;
  for (;;) {
    auto m = f.next();
    EXPECT_TRUE(m) << m.error().message;
    if (!m || !*m) return out;
    out.emplace_back((*m)->type, std::string((*m)->body));
  }
}

const std::string kStream =
    frame('Q', std::string("select 1\0", 9)) + frame('S', "") + frame('p', std::string(300, 'x'));

TEST(MessageFramerTest, CoalescedMessagesComeOutOneByOne) {
  MessageFramer f(kMaxAuthMessageLength);
  f.feed(kStream);
  auto msgs = drain(f);
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(msgs[0].first, 'Q');
  EXPECT_EQ(msgs[0].second, std::string("select 1\0", 9));
  EXPECT_EQ(msgs[1].first, 'S');
  EXPECT_EQ(msgs[1].second, "");
  EXPECT_EQ(msgs[2].second.size(), 300u);
  EXPECT_EQ(f.buffered(), 0u);
}

TEST(MessageFramerTest, EverySplitPointGivesTheSameMessages) {
  for (std::size_t split = 0; split <= kStream.size(); ++split) {
    MessageFramer f(kMaxAuthMessageLength);
    f.feed(kStream.substr(0, split));
    auto msgs = drain(f);
    f.feed(kStream.substr(split));
    auto more = drain(f);
    msgs.insert(msgs.end(), more.begin(), more.end());
    ASSERT_EQ(msgs.size(), 3u) << "split at " << split;
    EXPECT_EQ(msgs[2].second, std::string(300, 'x'));
  }
}

TEST(MessageFramerTest, ByteAtATime) {
  MessageFramer f(kMaxAuthMessageLength);
  std::vector<std::pair<char, std::string>> msgs;
  for (char c : kStream) {
    f.feed(std::string_view(&c, 1));
    auto got = drain(f);
    msgs.insert(msgs.end(), got.begin(), got.end());
  }
  EXPECT_EQ(msgs.size(), 3u);
}

TEST(MessageFramerTest, LengthsOutsideTheLimitAreRejectedBeforeBuffering) {
  std::string header = "p";
  append_be32(header, 3);
  MessageFramer f(100);
  f.feed(header);
  EXPECT_FALSE(f.next());

  header = "p";
  append_be32(header, 105);  // 101 bytes of body: one over the limit
  MessageFramer g(100);
  g.feed(header);
  auto r = g.next();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("invalid message length"), std::string::npos);

  header = "p";
  append_be32(header, 100);  // exactly the maximum
  MessageFramer h(100);
  h.feed(header + std::string(96, 'y'));
  auto ok = h.next();
  ASSERT_TRUE(ok && *ok);
  EXPECT_EQ((*ok)->body.size(), 96u);
}

TEST(MessageFramerTest, TakeRestHandsOverUnconsumedBytes) {
  MessageFramer f(kMaxAuthMessageLength);
  f.feed(frame('p', "abc") + "partial");
  ASSERT_TRUE(f.next().value());
  EXPECT_EQ(f.take_rest(), "partial");
  EXPECT_EQ(f.buffered(), 0u);
}

TEST(BoundaryTrackerTest, KnowsWhereMessagesEndAcrossAnySplit) {
  for (std::size_t split = 0; split <= kStream.size(); ++split) {
    BoundaryTracker t;
    EXPECT_TRUE(t.at_boundary());
    ASSERT_TRUE(t.advance(kStream.substr(0, split)));
    ASSERT_TRUE(t.advance(kStream.substr(split)));
    EXPECT_TRUE(t.at_boundary()) << split;
  }
  BoundaryTracker t;
  ASSERT_TRUE(t.advance(kStream.substr(0, 7)));
  EXPECT_FALSE(t.at_boundary());
}

TEST(BoundaryTrackerTest, ConsumeStopsAtTheEndOfEachMessage) {
  BoundaryTracker t;
  std::string_view s = kStream;
  std::vector<std::size_t> parts;
  while (!s.empty()) {
    auto n = t.consume_message_part(s);
    ASSERT_TRUE(n);
    parts.push_back(*n);
    EXPECT_TRUE(t.at_boundary());
    s.remove_prefix(*n);
  }
  EXPECT_EQ(parts, (std::vector<std::size_t>{5 + 9, 5, 5 + 300}));
}

TEST(BoundaryTrackerTest, RejectsImpossibleLengths) {
  std::string bad = "D";
  append_be32(bad, 2);
  BoundaryTracker t;
  EXPECT_FALSE(t.advance(bad));
}

}  // namespace
}  // namespace argon::pgwire
