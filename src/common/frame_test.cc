#include "common/frame.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

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

// The CRC of two pieces joined, from theirs, equals the CRC of the bytes.
TEST(Crc32c, CombineEqualsTheCrcOfTheJoinedBytes) {
  std::mt19937_64 rng(7);
  std::string bytes((1u << 20) + 4099, '\0');
  for (auto& c : bytes) c = static_cast<char>(rng());
  for (size_t len_a : {size_t(0), size_t(1), size_t(9), size_t(4096), size_t(300000)}) {
    for (size_t len_b : {size_t(0), size_t(1), size_t(5), size_t(4096), size_t(65537), bytes.size() - 300000}) {
      const uint32_t a = Crc32c(0, bytes.data(), len_a), b = Crc32c(0, bytes.data() + len_a, len_b);
      EXPECT_EQ(Crc32cCombine(a, b, len_b), Crc32c(0, bytes.data(), len_a + len_b))
          << "pieces of " << len_a << " and " << len_b << " bytes";
    }
  }
  EXPECT_EQ(Crc32cCombine(Crc32c(0, "1234", 4), Crc32c(0, "56789", 5), 5), 0xE3069283u);
}

TEST(Crc32c, JoinerAddsBlocksOfItsLength) {
  std::mt19937_64 rng(8);
  constexpr size_t kBlock = 4096;
  std::string bytes(kBlock * 64, '\0');
  for (auto& c : bytes) c = static_cast<char>(rng());
  const Crc32cJoiner join(kBlock);
  uint32_t crc = Crc32c(0, "head", 4);
  for (size_t i = 0; i < 64; i++) crc = join.Join(crc, Crc32c(0, bytes.data() + i * kBlock, kBlock));
  EXPECT_EQ(crc, Crc32c(Crc32c(0, "head", 4), bytes.data(), bytes.size()));
  // Any range, from the blocks' CRCs where they are known and whole.
  std::vector<uint32_t> known(40);   // blocks past the 40th are read
  for (size_t i = 0; i < known.size(); i++) known[i] = Crc32c(0, bytes.data() + i * kBlock, kBlock);
  for (int i = 0; i < 200; i++) {
    size_t from = rng() % bytes.size(), to = from + rng() % (bytes.size() - from + 1);
    if (i % 3 == 0) from -= from % kBlock;   // some start on a block
    EXPECT_EQ(Crc32cOfRange(join, bytes.data(), from, to, known), Crc32c(0, bytes.data() + from, to - from))
        << "bytes " << from << ".." << to;
  }
  // A block changed changes the sum.
  bytes[kBlock * 10 + 3] ^= 1;
  EXPECT_NE(crc, Crc32c(Crc32c(0, "head", 4), bytes.data(), bytes.size()));
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

// A payload's CRC given by the sender yields the same header as the bytes'
// own; a wrong one yields a frame that fails its check.
TEST(Frame, PayloadCrcGivenByTheSender) {
  std::string payload(200000, 'p');
  payload[77777] = 'q';
  const std::span<const char> body(payload.data(), payload.size());
  Header h;
  h.type = 3;
  h.request_id = 9;
  uint8_t computed[kHeaderSize], given[kHeaderSize], wrong[kHeaderSize];
  EncodeHeader(h, "msg", body, computed);
  EncodeHeader(h, "msg", body, given, Crc32c(0, payload.data(), payload.size()));
  EXPECT_EQ(std::string_view(reinterpret_cast<char*>(computed), kHeaderSize),
            std::string_view(reinterpret_cast<char*>(given), kHeaderSize));
  EncodeHeader(h, "msg", body, wrong, Crc32c(0, payload.data(), payload.size()) ^ 1);
  std::string frame(reinterpret_cast<char*>(wrong), kHeaderSize);
  frame += "msg";
  frame += payload;
  auto f = DecodeFrame(frame);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), EBADMSG);
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
