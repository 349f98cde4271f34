// The RPC layer against a real server on loopback: multiplexing, payloads,
// deadlines, and hostile input that must not stop the server.
#include "common/rpc.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <asio.hpp>
#include <atomic>
#include <cstring>
#include <future>
#include <mutex>
#include <thread>

#include "proto/stria.pb.h"

namespace stria::rpc {
namespace {

class RpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // PING echoes the request payload; GET_ATTR replies after a delay.
    server_.Handle(proto::PING, [](Request&& req, Responder resp) {
      resp.Reply(proto::PingReply(), Payload(std::move(req.payload)));
    });
    server_.Handle(proto::GET_ATTR, [this](Request&&, Responder resp) {
      delayed_.emplace_back([resp] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        resp.Reply(proto::GetAttrReply());
      });
    });
    // STAT_FS echoes its payload from other threads, as stores and meta's
    // syncer reply: those replies go straight to the socket when it is free.
    server_.Handle(proto::STAT_FS, [this](Request&& req, Responder resp) {
      std::lock_guard lk(workers_mu_);
      workers_.emplace_back([resp, data = std::move(req.payload)]() mutable {
        resp.Reply(proto::PingReply(), Payload(std::move(data)));
      });
    });
    auto port = server_.Listen("127.0.0.1", 0);
    ASSERT_TRUE(port.ok());
    port_ = *port;
    server_.Start();
    ch_ = Channel::Create(io_.io(), "127.0.0.1:" + std::to_string(port_));
  }
  void TearDown() override {
    for (auto& t : delayed_) t.join();
    std::lock_guard lk(workers_mu_);
    for (auto& t : workers_) t.join();
  }

  Server server_{"test"};
  uint16_t port_ = 0;
  IoThread io_;
  std::shared_ptr<Channel> ch_;
  std::vector<std::thread> delayed_;
  std::mutex workers_mu_;
  std::vector<std::thread> workers_;
};

TEST_F(RpcTest, ManyCallsInFlightWithPayloads) {
  constexpr int kCalls = 200;
  std::vector<std::future<CallResult>> futs;
  std::vector<std::shared_ptr<std::promise<CallResult>>> proms;
  for (int i = 0; i < kCalls; i++) {
    auto p = std::make_shared<std::promise<CallResult>>();
    futs.push_back(p->get_future());
    std::string data(i * 97, static_cast<char>('a' + i % 26));
    ch_->Call(proto::PING, "", Payload(data), {}, [p](CallResult&& r) { p->set_value(std::move(r)); });
  }
  for (int i = 0; i < kCalls; i++) {
    CallResult r = futs[i].get();
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(r.payload, std::string(i * 97, static_cast<char>('a' + i % 26)));
  }
}

// Replies from many threads at once, some larger than the socket buffer (so
// that a direct send is cut short and the rest must queue in order): every
// reply arrives whole and to its own call.
TEST_F(RpcTest, RepliesFromOtherThreadsStayWholeAndInOrder) {
  constexpr int kCalls = 120;
  std::vector<std::future<CallResult>> futs;
  for (int i = 0; i < kCalls; i++) {
    auto p = std::make_shared<std::promise<CallResult>>();
    futs.push_back(p->get_future());
    size_t len = (i % 3 == 0) ? (3u << 20) + i : 1000 + i * 13;
    std::string data(len, static_cast<char>('A' + i % 26));
    ch_->Call(proto::STAT_FS, "", Payload(std::move(data)), {},
              [p](CallResult&& r) { p->set_value(std::move(r)); });
  }
  for (int i = 0; i < kCalls; i++) {
    CallResult r = futs[i].get();
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    size_t len = (i % 3 == 0) ? (3u << 20) + i : 1000 + i * 13;
    ASSERT_EQ(r.payload.size(), len) << "call " << i;
    EXPECT_EQ(r.payload, std::string(len, static_cast<char>('A' + i % 26))) << "call " << i;
  }
}

// Calls from many threads at once on a connected channel are written by
// their callers' threads; requests larger than the socket buffer are cut
// short and the rest queues behind them: every call still gets its own
// payload back, whole.
TEST_F(RpcTest, CallsFromManyThreadsStayWhole) {
  ASSERT_TRUE(ch_->CallSync(proto::PING, "", {}, {}).status.ok());   // connected
  constexpr int kThreads = 6, kCalls = 40;
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      std::vector<std::future<CallResult>> futs;
      std::vector<std::string> sent;
      for (int i = 0; i < kCalls; i++) {
        size_t len = (i % 7 == 0) ? (2u << 20) + i : 100 + (t * kCalls + i) * 31;
        sent.emplace_back(len, static_cast<char>('a' + (t * 5 + i) % 26));
        auto p = std::make_shared<std::promise<CallResult>>();
        futs.push_back(p->get_future());
        ch_->Call(proto::PING, "", Payload(sent.back()), {}, [p](CallResult&& r) { p->set_value(std::move(r)); });
      }
      for (int i = 0; i < kCalls; i++) {
        CallResult r = futs[i].get();
        if (!r.status.ok() || r.payload != sent[i]) bad++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST_F(RpcTest, PayloadIntoCallerBuffer) {
  std::string buf(1000, '\0');
  CallOptions opts;
  opts.into = std::span<char>(buf.data(), buf.size());
  CallResult r = ch_->CallSync(proto::PING, "", Payload(std::string(600, 'z')), opts);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.payload_len, 600u);
  EXPECT_TRUE(r.payload.empty());
  EXPECT_EQ(buf.substr(0, 600), std::string(600, 'z'));
}

TEST_F(RpcTest, DeadlineGivesTimeoutNotHang) {
  CallOptions opts;
  opts.timeout = Millis(50);
  auto t0 = Clock::now();
  CallResult r = ch_->CallSync(proto::GET_ATTR, "", {}, opts);
  EXPECT_EQ(r.status.code(), ETIMEDOUT) << r.status.ToString();
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
  // The late reply is dropped and the channel still works.
  r = ch_->CallSync(proto::PING, "", Payload(std::string("x")), {});
  EXPECT_TRUE(r.status.ok());
}

TEST_F(RpcTest, UnknownTypeIsRejectedAndServerGoesOn) {
  CallResult r = ch_->CallSync(999, "", {}, {});
  EXPECT_EQ(r.status.code(), ENOSYS);
  EXPECT_NE(r.status.message().find("999"), std::string::npos);
  EXPECT_TRUE(ch_->CallSync(proto::PING, "", {}, {}).status.ok());
}

TEST_F(RpcTest, GarbageConnectionIsDroppedOthersServed) {
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), port_});
  std::string junk(64, '\x5a');
  asio::write(s, asio::buffer(junk));
  char c;
  asio::error_code ec;
  s.read_some(asio::buffer(&c, 1), ec);   // the server closes this connection
  EXPECT_TRUE(ec);
  EXPECT_TRUE(ch_->CallSync(proto::PING, "", {}, {}).status.ok());
}

TEST(RpcClient, DeadServerGivesClearError) {
  IoThread io;
  // Bind and close a port so that nothing listens there.
  uint16_t port;
  {
    asio::io_context ctx;
    asio::ip::tcp::acceptor a(ctx, {asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }
  auto ch = Channel::Create(io.io(), "127.0.0.1:" + std::to_string(port));
  CallResult r = ch->CallSync(proto::PING, "", {}, {});
  EXPECT_EQ(r.status.code(), ECONNREFUSED) << r.status.ToString();
  EXPECT_NE(r.status.message().find(std::to_string(port)), std::string::npos);
}

// While a daemon restarts, nothing listens on its port; a client that
// retries may be given that very port as its own and connect to itself.
// Here the ephemeral range is that one port (in a network namespace of the
// test's own), so the first connect does: it must count as refused.
TEST(RpcClient, ConnectionToItselfIsRefused) {
  // Back to the test's own namespace however this test ends.
  struct Home {
    int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    bool left = false;
    ~Home() {
      if (left) {
        EXPECT_EQ(setns(fd, CLONE_NEWNET), 0) << std::strerror(errno);
      }
      close(fd);
    }
  } home;
  ASSERT_GE(home.fd, 0);
  if (unshare(CLONE_NEWNET) != 0) GTEST_SKIP() << "needs root for a network namespace: " << std::strerror(errno);
  home.left = true;
  {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::strcpy(ifr.ifr_name, "lo");
    ASSERT_EQ(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
    ifr.ifr_flags |= IFF_UP;
    ASSERT_EQ(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
    close(s);
    int f = open("/proc/sys/net/ipv4/ip_local_port_range", O_WRONLY | O_CLOEXEC);
    ASSERT_GE(f, 0);
    ASSERT_EQ(write(f, "40000 40000", 11), 11);
    close(f);
    IoThread io;   // its thread is in this namespace too
    auto ch = Channel::Create(io.io(), "127.0.0.1:40000");
    CallOptions o;
    o.timeout = std::chrono::seconds(5);
    CallResult r = ch->CallSync(proto::PING, "", {}, o);
    EXPECT_EQ(r.status.code(), ECONNREFUSED) << r.status.ToString();
    ch->Close();
  }
}

}  // namespace
}  // namespace stria::rpc
