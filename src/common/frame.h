// The frame: Stria's one wire format (docs/wire_protocol.md).
//
//   offset size field
//        0    4 magic        0x49525453 ("STRI" in memory order)
//        4    1 version      kWireVersion
//        5    1 flags        kFlagResponse | kFlagError
//        6    2 type         proto::MsgType of the request
//        8    8 request_id   chosen by the caller, echoed by the reply
//       16    4 message_len  bytes of protobuf message after the header
//       20    4 payload_len  bytes of raw payload after the message
//       24    4 timeout_ms   time the caller still waits (0 on replies)
//       28    4 crc          CRC32C of bytes 0..27, the message and payload
//
// All integers are little-endian. The decoder treats every byte as hostile:
// it checks magic, version, flags, lengths against limits, and the CRC.
// Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"

namespace stria::wire {

inline constexpr uint32_t kMagic = 0x49525453;
inline constexpr uint8_t kWireVersion = 1;
inline constexpr size_t kHeaderSize = 32;
inline constexpr uint8_t kFlagResponse = 1;
inline constexpr uint8_t kFlagError = 2;
inline constexpr uint8_t kKnownFlags = kFlagResponse | kFlagError;
// Limits on what a peer may send; larger frames are refused unread.
inline constexpr uint32_t kMaxMessage = 4u << 20;   // 4 MiB of protobuf
inline constexpr uint32_t kMaxPayload = 64u << 20;  // 64 MiB of data

struct Header {
  uint8_t version = kWireVersion;
  uint8_t flags = 0;
  uint16_t type = 0;
  uint64_t request_id = 0;
  uint32_t message_len = 0;
  uint32_t payload_len = 0;
  uint32_t timeout_ms = 0;
  uint32_t crc = 0;

  bool is_response() const { return flags & kFlagResponse; }
  bool is_error() const { return flags & kFlagError; }
};

// Writes the header into out (kHeaderSize bytes), computing the CRC over the
// header, message and payload. payload_crc, when given, is the payload's
// CRC32C already known to the caller (a store's checked block CRCs): a large
// payload is then not read again. A wrong one makes the frame fail its check.
void EncodeHeader(Header h, std::string_view message, std::span<const char> payload,
                  uint8_t* out, std::optional<uint32_t> payload_crc = std::nullopt);

// Parses and validates a header (not its CRC, which needs the body).
// EBADMSG names the bad field; EMSGSIZE when a length is over the limits.
Result<Header> DecodeHeader(std::span<const uint8_t> bytes);

// Running CRC of a frame: header bytes 0..27, then the message, then payload.
uint32_t FrameCrcStart(const uint8_t* header);
// Checks the CRC once the body is read; EBADMSG on mismatch.
Status VerifyCrc(const Header& h, uint32_t computed);

// A whole frame decoded from one buffer (used by tests and the fuzzer; the
// network path reads the same fields incrementally).
struct Frame {
  Header header;
  std::string_view message;
  std::string_view payload;
};
Result<Frame> DecodeFrame(std::string_view bytes);

// Builds a whole frame into a string (header + message + payload).
std::string EncodeFrame(Header h, std::string_view message, std::span<const char> payload);

}  // namespace stria::wire
