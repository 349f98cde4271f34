#include "common/frame.h"

#include <gtest/gtest.h>

#include <random>

#include "common/crc32c.h"

namespace stria::wire {
namespace {

std::string GoodFrame() {
  Header h;
  h.type = 7;
  h.request_id = 42;
  h.timeout_ms = 1000;
  std::string payload = "raw payload bytes";
  return EncodeFrame(h, "message", std::span<const char>(payload.data(), payload.size()));
}

TEST(Crc32c, KnownVector) {
  // RFC 3720's check value for "123456789".
  EXPECT_EQ(Crc32c(0, "123456789", 9), 0xE3069283u);
  EXPECT_EQ(Crc32c(Crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
}

TEST(Frame, RoundTrip) {
  std::string bytes = GoodFrame();   // the decoded frame points into it
  auto f = DecodeFrame(bytes);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->header.type, 7);
  EXPECT_EQ(f->header.request_id, 42u);
  EXPECT_EQ(f->header.timeout_ms, 1000u);
  EXPECT_EQ(f->message, "message");
  EXPECT_EQ(f->payload, "raw payload bytes");
}

// Every single-byte change of a frame is caught (by a field check or the CRC).
TEST(Frame, EveryByteFlipIsRejected) {
  std::string good = GoodFrame();
  for (size_t i = 0; i < good.size(); i++) {
    for (int bit = 0; bit < 8; bit++) {
      std::string bad = good;
      bad[i] ^= static_cast<char>(1 << bit);
      auto f = DecodeFrame(bad);
      EXPECT_FALSE(f.ok()) << "flip of byte " << i << " bit " << bit << " was accepted";
    }
  }
}

TEST(Frame, ErrorsNameTheCause) {
  std::string good = GoodFrame();
  std::string bad = good;
  bad[0] = 'X';
  EXPECT_NE(DecodeFrame(bad).status().message().find("magic"), std::string::npos);
  bad = good;
  bad[4] = 9;
  EXPECT_EQ(DecodeFrame(bad).status().code(), EPROTO);
  bad = good;
  bad[5] = 0x40;
  EXPECT_NE(DecodeFrame(bad).status().message().find("flags"), std::string::npos);
  bad = good;
  bad[5] = kFlagError;   // error without response
  EXPECT_EQ(DecodeFrame(bad).status().code(), EBADMSG);
  bad = good;
  bad[19] = 0x7f;   // message length far over the limit
  EXPECT_EQ(DecodeFrame(bad).status().code(), EMSGSIZE);
  bad = good;
  bad[23] = 0x7f;
  EXPECT_EQ(DecodeFrame(bad).status().code(), EMSGSIZE);
  EXPECT_NE(DecodeFrame(good.substr(0, 10)).status().message().find("truncated"),
            std::string::npos);
  EXPECT_NE(DecodeFrame(good.substr(0, good.size() - 1)).status().message().find("truncated"),
            std::string::npos);
  EXPECT_NE(DecodeFrame(good + "x").status().message().find("stray"), std::string::npos);
  bad = good;
  bad.back() ^= 1;
  EXPECT_NE(DecodeFrame(bad).status().message().find("checksum"), std::string::npos);
}

TEST(Frame, RandomBytesNeverCrash) {
  unsigned seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);
  for (int i = 0; i < 20000; i++) {
    std::string s(rng() % 80, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    if (s.size() >= 4 && rng() % 2) std::memcpy(s.data(), "STRI", 4);
    (void)DecodeFrame(s);
  }
}

}  // namespace
}  // namespace stria::wire
