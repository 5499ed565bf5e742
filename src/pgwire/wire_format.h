// Byte-level helpers of the PostgreSQL v3 protocol: big-endian integers and NUL-terminated strings
// read from an untrusted buffer without ever reading past its end.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace argon::pgwire {

inline constexpr std::int32_t kProtocolVersion3 = 196608;  // 3.0
inline constexpr std::int32_t kSslRequestCode = 80877103;
inline constexpr std::int32_t kGssEncRequestCode = 80877104;
inline constexpr std::int32_t kCancelRequestCode = 80877102;
// PostgreSQL's own limit for a startup packet (MAX_STARTUP_PACKET_LENGTH).
inline constexpr std::size_t kMaxStartupPacketLength = 10000;
// Limit for messages before authentication completes (PostgreSQL uses 65535 for auth tokens).
inline constexpr std::size_t kMaxAuthMessageLength = 65535;

inline std::uint32_t load_be32(const char* p) {
  return (std::uint32_t(std::uint8_t(p[0])) << 24) | (std::uint32_t(std::uint8_t(p[1])) << 16) |
         (std::uint32_t(std::uint8_t(p[2])) << 8) | std::uint32_t(std::uint8_t(p[3]));
}

inline void append_be32(std::string& out, std::uint32_t v) {
  out.push_back(char(v >> 24));
  out.push_back(char(v >> 16));
  out.push_back(char(v >> 8));
  out.push_back(char(v));
}

inline void append_be16(std::string& out, std::uint16_t v) {
  out.push_back(char(v >> 8));
  out.push_back(char(v));
}

// Sequential reader over one message body; every read reports truncation instead of overrunning.
class WireReader {
 public:
  explicit WireReader(std::string_view data) : data_(data) {}

  std::optional<std::int32_t> int32() {
    if (data_.size() - pos_ < 4) return std::nullopt;
    auto v = static_cast<std::int32_t>(load_be32(data_.data() + pos_));
    pos_ += 4;
    return v;
  }
  std::optional<std::int16_t> int16() {
    if (data_.size() - pos_ < 2) return std::nullopt;
    auto v = static_cast<std::int16_t>((std::uint16_t(std::uint8_t(data_[pos_])) << 8) |
                                       std::uint8_t(data_[pos_ + 1]));
    pos_ += 2;
    return v;
  }
  // A NUL-terminated string (the NUL is consumed, not returned).
  std::optional<std::string_view> cstring() {
    auto end = data_.find('\0', pos_);
    if (end == std::string_view::npos) return std::nullopt;
    auto s = data_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }
  std::optional<std::string_view> bytes(std::size_t n) {
    if (data_.size() - pos_ < n) return std::nullopt;
    auto s = data_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::string_view rest() {
    auto s = data_.substr(pos_);
    pos_ = data_.size();
    return s;
  }
  bool at_end() const { return pos_ == data_.size(); }

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
};

}  // namespace argon::pgwire
