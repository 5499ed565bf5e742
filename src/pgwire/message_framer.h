// Splits a byte stream of typed protocol messages (type byte + int32 length + body) into whole
// messages, whatever the read boundaries: bytes are fed as they arrive, complete messages come out.
// Lengths outside 4..max are a protocol error, reported before the body is buffered.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"

namespace argon::pgwire {

struct Message {
  char type = 0;
  std::string_view body;  // valid until the next feed() or next()
};

class MessageFramer {
 public:
  explicit MessageFramer(std::size_t max_length) : max_length_(max_length) {}

  void feed(std::string_view bytes);
  // The next complete message, std::nullopt when more bytes are needed.
  Result<std::optional<Message>> next();
  // Bytes received but not yet returned as messages.
  std::size_t buffered() const { return buf_.size() - pos_; }
  // Takes the unconsumed bytes (for handing the stream to a relay).
  std::string take_rest();

 private:
  std::size_t max_length_;
  std::string buf_;
  std::size_t pos_ = 0;
};

// Follows message boundaries in a stream that is relayed without buffering whole messages: it only
// counts bytes, so a relay knows when it sits between two messages (where an ErrorResponse may be
// injected safely).
class BoundaryTracker {
 public:
  // Accounts for `bytes` passing through; false if a length word is invalid (< 4).
  bool advance(std::string_view bytes);
  // Consumes `bytes` up to the end of the current message: returns how many were consumed (all of
  // them when they end inside a message), or std::nullopt if a length word is invalid.
  std::optional<std::size_t> consume_message_part(std::string_view bytes);
  bool at_boundary() const { return remaining_ == 0 && header_have_ == 0; }

 private:
  char header_[5] = {};
  std::size_t header_have_ = 0;
  std::size_t remaining_ = 0;
};

}  // namespace argon::pgwire
