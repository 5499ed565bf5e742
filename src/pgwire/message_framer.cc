#include "pgwire/message_framer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "pgwire/wire_format.h"

namespace argon::pgwire {

void MessageFramer::feed(std::string_view bytes) {
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > 4096 && pos_ > buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes);
}

Result<std::optional<Message>> MessageFramer::next() {
  if (buf_.size() - pos_ < 5) return std::optional<Message>{};
  const char type = buf_[pos_];
  const std::uint32_t len = load_be32(buf_.data() + pos_ + 1);
  if (len < 4 || len > max_length_) {
    return fail(
        ErrorCode::kBadRequest,
        fmt::format("invalid message length {} for message type '{}' (allowed 4..{})", len,
                    std::isprint(static_cast<unsigned char>(type)) ? type : '?', max_length_));
  }
  if (buf_.size() - pos_ < 1 + std::size_t(len)) return std::optional<Message>{};
  Message m{type, std::string_view(buf_).substr(pos_ + 5, len - 4)};
  pos_ += 1 + len;
  return std::optional<Message>{m};
}

std::string MessageFramer::take_rest() {
  std::string rest = buf_.substr(pos_);
  buf_.clear();
  pos_ = 0;
  return rest;
}

bool BoundaryTracker::advance(std::string_view bytes) {
  while (!bytes.empty()) {
    auto n = consume_message_part(bytes);
    if (!n) return false;
    bytes.remove_prefix(*n);
  }
  return true;
}

std::optional<std::size_t> BoundaryTracker::consume_message_part(std::string_view bytes) {
  std::size_t used = 0;
  if (remaining_ == 0) {  // inside (or at the start of) a header
    std::size_t n = std::min<std::size_t>(5 - header_have_, bytes.size());
    std::copy_n(bytes.data(), n, header_ + header_have_);
    header_have_ += n;
    used = n;
    if (header_have_ < 5) return used;
    std::uint32_t len = load_be32(header_ + 1);
    if (len < 4) return std::nullopt;
    header_have_ = 0;
    remaining_ = len - 4;
    if (remaining_ == 0) return used;
  }
  std::size_t n = std::min(remaining_, bytes.size() - used);
  remaining_ -= n;
  return used + n;
}

}  // namespace argon::pgwire
