// RPC over the framed protocol (common/frame.h): a multiplexing server and a
// multiplexing client channel, both on standalone asio with C++20 coroutines.
//
// Threading: every Server and every IoThread runs its io_context on one
// thread; connection state is touched only there, so it needs no locks.
// Handlers run on that thread too and must not block: a handler hands slow
// work (disk I/O, RocksDB) to its own workers and replies later from any
// thread through its Responder. Channel::Call may be called from any thread;
// its callback runs on the channel's io thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>

#include <google/protobuf/message_lite.h>

#include "common/frame.h"
#include "common/status.h"

namespace asio {
class io_context;
}

namespace stria::rpc {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

// Raw bytes that travel after the message, never copied into protobuf.
// Shares ownership of the memory it points into (a string, or any buffer
// that owner keeps alive) so that a frame can sit in a write queue after
// the caller has moved on.
struct Payload {
  std::shared_ptr<const void> owner;
  const char* data = nullptr;
  size_t length = 0;

  Payload() = default;
  explicit Payload(std::string s) {
    auto b = std::make_shared<const std::string>(std::move(s));
    data = b->data();
    length = b->size();
    owner = std::move(b);
  }
  Payload(std::shared_ptr<const std::string> b, size_t off, size_t len)
      : owner(b), data(b->data() + off), length(len) {}
  Payload(std::shared_ptr<const void> o, const char* p, size_t len) : owner(std::move(o)), data(p), length(len) {}
  std::span<const char> span() const { return std::span<const char>(data, length); }
  void Consume(size_t n) {
    data += n;
    length -= n;
    crc.reset();
  }
  // The CRC32C of these bytes when the sender already knows it (a store's
  // checked blocks): the frame's CRC is then combined, not computed again.
  std::optional<uint32_t> crc;
};

// ---------------------------------------------------------------- server --

class ServerConnection;
class Server;

// A request as the server received it (header checked, CRC verified).
struct Request {
  wire::Header header;
  std::string message;
  std::string payload;
  Clock::time_point received;
  Clock::time_point deadline;   // received + the caller's timeout

  bool expired() const { return Clock::now() > deadline; }
};

// Sends the one reply to a request. Copyable; safe to use from any thread.
// A request that is never replied to times out at its caller.
class Responder {
 public:
  Responder() = default;
  Responder(std::shared_ptr<ServerConnection> conn, Server* server, const wire::Header& h,
            Clock::time_point received);

  void Reply(const google::protobuf::MessageLite& msg, Payload payload = {}) const;
  // Same, with the reply message already serialized.
  void ReplyBytes(std::string message, Payload payload = {}) const;
  void Fail(const Status& status) const;
  uint16_t type() const { return type_; }

 private:
  void Send(uint8_t flags, std::string message, Payload payload) const;

  std::shared_ptr<ServerConnection> conn_;
  Server* server_ = nullptr;
  uint64_t id_ = 0;
  uint16_t type_ = 0;
  Clock::time_point received_;
};

using Handler = std::function<void(Request&& req, Responder resp)>;

class Server {
 public:
  // name: used in logs and as the metrics' "server" label ("meta", "store").
  explicit Server(std::string name);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Registers the handler of one request type. REQUIRES: before Start.
  void Handle(uint16_t type, Handler handler);

  // Typed form: parses the message as Req first; a message that does not
  // parse gets EBADMSG and the handler is not called.
  template <typename Req>
  void HandleTyped(uint16_t type, std::function<void(Req&&, Request&&, Responder)> fn) {
    Handle(type, [fn = std::move(fn), type](Request&& req, Responder resp) {
      Req msg;
      if (!msg.ParseFromString(req.message)) {
        resp.Fail(Err(EBADMSG, "request type {}: message does not parse ({} bytes)", type,
                      req.message.size()));
        return;
      }
      fn(std::move(msg), std::move(req), std::move(resp));
    });
  }

  // Binds host:port (port 0 picks a free one). Returns the bound port.
  Result<uint16_t> Listen(const std::string& host, uint16_t port);
  // Starts accepting and serving on a background thread.
  void Start();
  // Stops accepting, closes every connection and joins the thread.
  void Stop();

  const std::string& name() const { return name_; }
  asio::io_context& io();

  // Internal: used by connections.
  void Dispatch(std::shared_ptr<ServerConnection> conn, Request&& req);
  void RecordReply(uint16_t type, Clock::time_point received, bool error, size_t bytes_out);

 private:
  struct Impl;
  std::string name_;
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------- client --

// One running io_context with its thread, for clients.
class IoThread {
 public:
  IoThread();
  ~IoThread();
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;
  asio::io_context& io();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct CallResult {
  Status status;
  std::string message;       // the reply's protobuf bytes
  std::string payload;       // the reply's payload, unless read into `into`
  size_t payload_len = 0;    // payload bytes received (also when read into `into`)
};
using CallCallback = std::function<void(CallResult&&)>;

// Options of one call.
struct CallOptions {
  Millis timeout{30000};      // the deadline, counted from the call
  // Where the reply's payload goes, if it fits (no copy); the memory must
  // stay valid until the callback has run.
  std::span<char> into;
};

// A connection to one server that many requests share (multiplexed by
// request id). Connects on first use and again after a failure.
class Channel : public std::enable_shared_from_this<Channel> {
 public:
  static std::shared_ptr<Channel> Create(asio::io_context& io, std::string address);
  ~Channel();

  // Sends one request; cb gets the reply, or ETIMEDOUT at the deadline, or
  // ECONNREFUSED/ECONNRESET/ENOTCONN when the server is gone. Never blocks.
  void Call(uint16_t type, std::string message, Payload payload, CallOptions opts,
            CallCallback cb);

  // Same, waiting for the result.
  CallResult CallSync(uint16_t type, std::string message, Payload payload, CallOptions opts);

  const std::string& address() const { return address_; }
  // Closes the connection; pending calls fail with ECANCELED.
  void Close();

 private:
  Channel(asio::io_context& io, std::string address);
  struct Impl;
  std::string address_;
  std::shared_ptr<Impl> impl_;
};

// Typed call: serializes req, waits, parses the reply into Reply.
template <typename Reply>
Result<Reply> Call(Channel& ch, uint16_t type, const google::protobuf::MessageLite& req,
                   CallOptions opts = {}, Payload payload = {}, CallResult* raw = nullptr) {
  CallResult r = ch.CallSync(type, req.SerializeAsString(), std::move(payload), opts);
  if (!r.status.ok()) return r.status;
  Reply reply;
  if (!reply.ParseFromString(r.message)) {
    return Err(EBADMSG, "reply of type {} from {} does not parse", type, ch.address());
  }
  if (raw) *raw = std::move(r);
  return reply;
}

// Parses "host:port". EINVAL with the text when it is not one.
Result<std::pair<std::string, uint16_t>> ParseAddress(const std::string& address);

}  // namespace stria::rpc
