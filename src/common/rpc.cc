#include "common/rpc.h"

#include <sys/socket.h>

#include <array>
#include <deque>
#include <mutex>
#include <vector>

#include <asio.hpp>
#include <spdlog/spdlog.h>

#include "common/crc32c.h"
#include "common/metrics.h"
#include "proto/stria.pb.h"

namespace stria::rpc {

using asio::ip::tcp;

Result<std::pair<std::string, uint16_t>> ParseAddress(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    return Err(EINVAL, "address '{}' is not HOST:PORT", address);
  }
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned long port = 0;
  for (char c : address.substr(colon + 1)) {
    if (c < '0' || c > '9') return Err(EINVAL, "address '{}': port is not a number", address);
    port = port * 10 + (c - '0');
    if (port > 65535) return Err(EINVAL, "address '{}': port out of range", address);
  }
  return std::make_pair(host, static_cast<uint16_t>(port));
}

namespace {

// An outgoing frame: header + message in one buffer, payload shared.
struct OutFrame {
  std::string head;
  Payload payload;
};

OutFrame MakeFrame(wire::Header h, std::string_view message, Payload payload) {
  OutFrame f;
  f.head.resize(wire::kHeaderSize);
  wire::EncodeHeader(h, message, payload.span(), reinterpret_cast<uint8_t*>(f.head.data()), payload.crc);
  f.head.append(message);
  f.payload = std::move(payload);
  return f;
}

Status FromAsio(const asio::error_code& ec, const std::string& what) {
  int code = ECONNRESET;
  if (ec == asio::error::connection_refused) code = ECONNREFUSED;
  else if (ec == asio::error::timed_out) code = ETIMEDOUT;
  else if (ec == asio::error::operation_aborted) code = ECANCELED;
  else if (ec == asio::error::host_unreachable || ec == asio::error::network_unreachable)
    code = EHOSTUNREACH;
  else if (ec == asio::error::not_connected) code = ENOTCONN;
  return Status(code, what + ": " + ec.message());
}

// Serialized writer shared by both sides: frames queue up and one coroutine
// writes them out in batches (one syscall for many small frames). Threads
// other than the io thread may also write a frame straight to the socket
// when nothing is queued before it (TrySendNow): on small machines, waking
// the idle io thread costs more than the send itself. The queue is under
// the writer's mutex, so frames leave in the order they took the lock,
// whichever thread sent them: a frame cut short by a full socket is always
// the first in the queue.
class Writer {
 public:
  explicit Writer(asio::any_io_executor ex) : signal_(ex, Clock::time_point::max()) {}

  // io thread only.
  void Push(OutFrame f) {
    {
      std::lock_guard lk(mu_);
      if (closed_) return;
      unwritten_++;
      queue_.push_back(std::move(f));
    }
    Wake();
  }
  // io thread only: the writer coroutine looks at the queue again.
  void Wake() { signal_.cancel_one(); }

  // Any thread. Writes what the socket takes now without blocking, if no
  // frame is waiting before this one; queues the rest. True: nothing is
  // left to do. False: the frame (or its rest) is queued, and the caller
  // must have Wake run on the io thread.
  bool TrySendNow(tcp::socket& sock, OutFrame& f) {
    std::lock_guard lk(mu_);
    if (closed_) return true;
    if (unwritten_ == 0) {
      iovec iov[2];
      int n = 0;
      iov[n++] = {f.head.data(), f.head.size()};
      auto p = f.payload.span();
      if (!p.empty()) iov[n++] = {const_cast<char*>(p.data()), p.size()};
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = n;
      ssize_t sent = ::sendmsg(sock.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
      size_t total = f.head.size() + p.size();
      if (sent > 0 && static_cast<size_t>(sent) == total) return true;
      if (sent > 0) Trim(f, static_cast<size_t>(sent));
      // Errors other than a full socket show again in the queued write,
      // which closes the connection.
    }
    unwritten_++;
    queue_.push_back(std::move(f));
    return false;
  }

  // Closes the socket so that no thread writes to its descriptor after.
  void Close(tcp::socket& sock) {
    std::lock_guard lk(mu_);
    closed_ = true;
    asio::error_code ignore;
    sock.close(ignore);
    signal_.cancel();
  }

  void Shutdown() {
    std::lock_guard lk(mu_);
    closed_ = true;
    signal_.cancel();
  }

  asio::awaitable<void> Run(tcp::socket& sock) {
    std::vector<asio::const_buffer> bufs;
    std::vector<OutFrame> batch;
    while (true) {
      bufs.clear();
      batch.clear();
      {
        std::lock_guard lk(mu_);
        if (closed_) co_return;
        size_t bytes = 0;
        while (!queue_.empty() && batch.size() < 64 && bytes < (8u << 20)) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
          bytes += batch.back().head.size() + batch.back().payload.length;
        }
      }
      if (batch.empty()) {
        // Wake runs on this (the io) thread too, so it cannot slip in
        // between the look at the queue above and this wait.
        asio::error_code ec;
        co_await signal_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      for (auto& f : batch) {
        bufs.emplace_back(asio::buffer(f.head));
        if (f.payload.length) bufs.emplace_back(asio::buffer(f.payload.span().data(), f.payload.length));
      }
      asio::error_code ec;
      co_await asio::async_write(sock, bufs, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        Close(sock);
        co_return;
      }
      std::lock_guard lk(mu_);
      unwritten_ -= batch.size();
    }
  }

 private:
  static void Trim(OutFrame& f, size_t n) {
    if (n < f.head.size()) {
      f.head.erase(0, n);
      return;
    }
    n -= f.head.size();
    f.head.clear();
    f.payload.Consume(n);
  }

  asio::steady_timer signal_;   // io thread only
  std::mutex mu_;
  std::deque<OutFrame> queue_;  // GUARDED_BY(mu_)
  size_t unwritten_ = 0;        // GUARDED_BY(mu_): frames queued or being written
  bool closed_ = false;         // GUARDED_BY(mu_)
};

std::string ErrorMessage(const Status& st) {
  proto::Error e;
  e.set_errno_code(st.code());
  e.set_message(st.message());
  return e.SerializeAsString();
}

Status ParseError(const std::string& message, const std::string& peer) {
  proto::Error e;
  if (!e.ParseFromString(message) || e.errno_code() <= 0) {
    return Err(EBADMSG, "malformed error reply from {}", peer);
  }
  return Status(e.errno_code(), e.message());
}

asio::awaitable<void> RunWriter(std::shared_ptr<Writer> w, std::shared_ptr<tcp::socket> s) {
  co_await w->Run(*s);
}

}  // namespace

// ================================================================ server ==

class ServerConnection : public std::enable_shared_from_this<ServerConnection> {
 public:
  ServerConnection(Server* server, tcp::socket sock)
      : server_(server), sock_(std::move(sock)), writer_(sock_.get_executor()) {
    asio::error_code ec;
    auto ep = sock_.remote_endpoint(ec);
    peer_ = ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
    sock_.set_option(tcp::no_delay(true), ec);
  }

  void Start() {
    auto self = shared_from_this();
    asio::co_spawn(sock_.get_executor(), ReadLoop(self), asio::detached);
    asio::co_spawn(sock_.get_executor(), writer_.Run(sock_), [self](std::exception_ptr) {});
  }

  // Thread-safe: written at once when the socket is free, else queued on
  // the connection's io thread.
  void Send(OutFrame f) {
    if (writer_.TrySendNow(sock_, f)) return;
    auto self = shared_from_this();
    asio::post(sock_.get_executor(), [self] {
      if (!self->closed_) self->writer_.Wake();
    });
  }

  void Close() {
    closed_ = true;
    writer_.Close(sock_);
  }

  const std::string& peer() const { return peer_; }

 private:
  asio::awaitable<void> ReadLoop(std::shared_ptr<ServerConnection> self) {
    std::array<uint8_t, wire::kHeaderSize> hbuf;
    while (!closed_) {
      asio::error_code ec;
      co_await asio::async_read(sock_, asio::buffer(hbuf),
                                asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      auto h = wire::DecodeHeader(hbuf);
      if (!h.ok()) {
        // The stream cannot be trusted past a bad header: drop this peer only.
        spdlog::warn("{}: closing connection from {}: {}", server_->name(), peer_,
                     h.status().ToString());
        break;
      }
      Request req;
      req.header = *h;
      req.message.resize(h->message_len);
      req.payload.resize(h->payload_len);
      std::array<asio::mutable_buffer, 2> body{asio::buffer(req.message),
                                               asio::buffer(req.payload)};
      co_await asio::async_read(sock_, body, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      uint32_t crc = wire::FrameCrcStart(hbuf.data());
      crc = Crc32c(crc, req.message.data(), req.message.size());
      crc = Crc32c(crc, req.payload.data(), req.payload.size());
      if (auto st = wire::VerifyCrc(req.header, crc); !st.ok()) {
        spdlog::warn("{}: closing connection from {}: {}", server_->name(), peer_, st.ToString());
        Send(MakeFrame({wire::kWireVersion, wire::kFlagResponse | wire::kFlagError, h->type,
                        h->request_id},
                       ErrorMessage(st), {}));
        break;
      }
      if (h->is_response()) {
        spdlog::warn("{}: closing connection from {}: it sent a reply frame to a server",
                     server_->name(), peer_);
        break;
      }
      req.received = Clock::now();
      req.deadline = req.received + Millis(h->timeout_ms ? h->timeout_ms : 30000);
      server_->Dispatch(self, std::move(req));
    }
    // Let queued replies drain briefly is not needed: callers retry.
    Close();
  }

  Server* server_;
  tcp::socket sock_;
  Writer writer_;
  std::string peer_;
  bool closed_ = false;
};

struct Server::Impl {
  asio::io_context io{1};
  std::unique_ptr<tcp::acceptor> acceptor;
  std::unordered_map<uint16_t, Handler> handlers;
  std::thread thread;
  std::mutex conns_mu;
  std::vector<std::weak_ptr<ServerConnection>> conns;
  metrics::Family* requests = nullptr;
  metrics::Family* errors = nullptr;
  metrics::Family* latency = nullptr;
  metrics::Counter* bytes_in = nullptr;
  metrics::Counter* bytes_out = nullptr;
  metrics::Counter* bad_frames = nullptr;
};

Server::Server(std::string name) : name_(std::move(name)), impl_(std::make_unique<Impl>()) {
  auto& reg = metrics::Registry::Default();
  impl_->requests = &reg.CounterFamily("stria_rpc_requests_total", "Requests served, by type");
  impl_->errors = &reg.CounterFamily("stria_rpc_errors_total", "Requests answered with an error");
  impl_->latency = &reg.HistogramFamily("stria_rpc_latency_seconds",
                                        "Time from a request's arrival to its reply");
  impl_->bytes_in = &reg.GetCounter("stria_rpc_payload_bytes_in_total", "Payload bytes received");
  impl_->bytes_out = &reg.GetCounter("stria_rpc_payload_bytes_out_total", "Payload bytes sent");
  impl_->bad_frames =
      &reg.GetCounter("stria_rpc_rejected_requests_total", "Requests of unknown type");
}

Server::~Server() { Stop(); }

asio::io_context& Server::io() { return impl_->io; }

void Server::Handle(uint16_t type, Handler handler) { impl_->handlers[type] = std::move(handler); }

Result<uint16_t> Server::Listen(const std::string& host, uint16_t port) {
  asio::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) return Err(EINVAL, "listen address '{}': {}", host, ec.message());
  auto acc = std::make_unique<tcp::acceptor>(impl_->io);
  tcp::endpoint ep(addr, port);
  acc->open(ep.protocol(), ec);
  if (!ec) acc->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acc->bind(ep, ec);
  if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Err(EADDRINUSE, "{}: cannot listen on {}:{}: {}", name_, host, port, ec.message());
  uint16_t bound = acc->local_endpoint().port();
  impl_->acceptor = std::move(acc);
  return bound;
}

namespace {
// Coroutines take their state as parameters: a lambda's captures would die
// with the lambda object before the coroutine runs.
asio::awaitable<void> AcceptLoop(Server* server, tcp::acceptor* acceptor,
                                 std::function<void(tcp::socket)> on_accept) {
  while (acceptor->is_open()) {
    asio::error_code ec;
    tcp::socket sock =
        co_await acceptor->async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      spdlog::warn("{}: accept failed: {}", server->name(), ec.message());
      continue;
    }
    on_accept(std::move(sock));
  }
}

}  // namespace

void Server::Start() {
  auto on_accept = [this](tcp::socket sock) {
      auto conn = std::make_shared<ServerConnection>(this, std::move(sock));
      {
        std::lock_guard lk(impl_->conns_mu);
        std::erase_if(impl_->conns, [](auto& w) { return w.expired(); });
        impl_->conns.push_back(conn);
      }
      conn->Start();
  };
  asio::co_spawn(impl_->io, AcceptLoop(this, impl_->acceptor.get(), on_accept), asio::detached);
  impl_->thread = std::thread([this] {
    auto guard = asio::make_work_guard(impl_->io);
    impl_->io.run();
  });
}

void Server::Stop() {
  if (!impl_->thread.joinable()) return;
  asio::post(impl_->io, [this] {
    asio::error_code ec;
    if (impl_->acceptor) impl_->acceptor->close(ec);
    std::lock_guard lk(impl_->conns_mu);
    for (auto& w : impl_->conns) {
      if (auto c = w.lock()) c->Close();
    }
  });
  impl_->io.stop();
  impl_->thread.join();
}

void Server::Dispatch(std::shared_ptr<ServerConnection> conn, Request&& req) {
  impl_->bytes_in->Inc(req.payload.size());
  Responder resp(conn, this, req.header, req.received);
  auto it = impl_->handlers.find(req.header.type);
  if (it == impl_->handlers.end()) {
    impl_->bad_frames->Inc();
    resp.Fail(Err(ENOSYS, "{} does not serve request type {}", name_, req.header.type));
    return;
  }
  it->second(std::move(req), std::move(resp));
}

void Server::RecordReply(uint16_t type, Clock::time_point received, bool error, size_t bytes_out) {
  const std::string& tname = proto::MsgType_Name(static_cast<proto::MsgType>(type));
  metrics::Labels labels{{"server", name_}, {"type", tname.empty() ? std::to_string(type) : tname}};
  impl_->requests->Counter(labels).Inc();
  if (error) impl_->errors->Counter(labels).Inc();
  impl_->latency->Histogram(labels).Observe(
      std::chrono::duration<double>(Clock::now() - received).count());
  impl_->bytes_out->Inc(bytes_out);
}

Responder::Responder(std::shared_ptr<ServerConnection> conn, Server* server, const wire::Header& h,
                     Clock::time_point received)
    : conn_(std::move(conn)), server_(server), id_(h.request_id), type_(h.type),
      received_(received) {}

void Responder::Send(uint8_t flags, std::string message, Payload payload) const {
  if (!conn_) return;
  server_->RecordReply(type_, received_, flags & wire::kFlagError, payload.length);
  wire::Header h;
  h.flags = flags;
  h.type = type_;
  h.request_id = id_;
  conn_->Send(MakeFrame(h, message, std::move(payload)));
}

void Responder::Reply(const google::protobuf::MessageLite& msg, Payload payload) const {
  Send(wire::kFlagResponse, msg.SerializeAsString(), std::move(payload));
}

void Responder::ReplyBytes(std::string message, Payload payload) const {
  Send(wire::kFlagResponse, std::move(message), std::move(payload));
}

void Responder::Fail(const Status& status) const {
  Status st = status.ok() ? Status(EIO, "handler failed without a cause") : status;
  Send(wire::kFlagResponse | wire::kFlagError, ErrorMessage(st), {});
}

// ================================================================ client ==

struct IoThread::Impl {
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard{io.get_executor()};
  std::thread thread{[this] { io.run(); }};
  ~Impl() {
    guard.reset();
    io.stop();
    thread.join();
  }
};

IoThread::IoThread() : impl_(std::make_unique<Impl>()) {}
IoThread::~IoThread() = default;
asio::io_context& IoThread::io() { return impl_->io; }

namespace {

struct Pending {
  uint16_t type = 0;
  CallCallback cb;
  std::span<char> into;
  std::unique_ptr<asio::steady_timer> timer;
  bool receiving = false;   // the reader is filling `into`: the deadline waits
  bool timed_out = false;
};

}  // namespace

// The connection's state is touched only on the io thread; the calls in
// flight, and the writer while connected, also by callers (under mu): a
// call on a connected channel is registered and written by its caller's
// thread, without waking the io thread.
struct Channel::Impl : std::enable_shared_from_this<Channel::Impl> {
  enum class State { kIdle, kConnecting, kConnected };

  Impl(asio::io_context& io, std::string address) : io(io), address(std::move(address)) {}

  asio::io_context& io;
  std::string address;
  State state = State::kIdle;
  std::shared_ptr<tcp::socket> sock;
  std::shared_ptr<Writer> writer;
  std::deque<OutFrame> waiting;   // frames queued while connecting
  uint64_t generation = 0;        // bumps on every new connection

  std::mutex mu;
  std::unordered_map<uint64_t, Pending> pending;   // GUARDED_BY(mu)
  uint64_t next_id = 1;                            // GUARDED_BY(mu)
  // Set while connected, for callers that write themselves.
  std::shared_ptr<tcp::socket> open_sock;          // GUARDED_BY(mu)
  std::shared_ptr<Writer> open_writer;             // GUARDED_BY(mu)

  // Registers a call (caller holds mu); its id.
  uint64_t AddLocked(uint16_t type, const CallOptions& opts, CallCallback cb) {
    uint64_t id = next_id++;
    Pending p;
    p.type = type;
    p.cb = std::move(cb);
    p.into = opts.into;
    p.timer = std::make_unique<asio::steady_timer>(io, opts.timeout);
    std::weak_ptr<Impl> weak = weak_from_this();
    p.timer->async_wait([weak, id](const asio::error_code& ec) {
      if (ec) return;
      if (auto i = weak.lock()) i->OnTimeout(id);
    });
    pending.emplace(id, std::move(p));
    return id;
  }

  void Complete(uint64_t id, CallResult&& r) {
    Pending p;
    {
      std::lock_guard lk(mu);
      auto it = pending.find(id);
      if (it == pending.end()) return;
      p = std::move(it->second);
      pending.erase(it);
    }
    if (p.timer) p.timer->cancel();
    p.cb(std::move(r));
  }

  void FailAll(const Status& st) {
    std::unordered_map<uint64_t, Pending> all;
    {
      std::lock_guard lk(mu);
      all = std::move(pending);
      pending.clear();
    }
    waiting.clear();
    for (auto& [id, p] : all) {
      if (p.timer) p.timer->cancel();
      CallResult r;
      r.status = st;
      p.cb(std::move(r));
    }
  }

  void Disconnect(const Status& why) {
    {
      std::lock_guard lk(mu);
      open_sock.reset();
      open_writer.reset();
    }
    if (writer) writer->Shutdown();
    if (sock) {
      asio::error_code ec;
      sock->close(ec);
    }
    sock.reset();
    writer.reset();
    state = State::kIdle;
    generation++;
    FailAll(why);
  }

  void Send(OutFrame f) {
    if (state == State::kConnected) {
      writer->Push(std::move(f));
      return;
    }
    waiting.push_back(std::move(f));
    if (state == State::kIdle) Connect();
  }

  void Connect() {
    state = State::kConnecting;
    auto self = shared_from_this();
    asio::co_spawn(io, ConnectAndServe(self), asio::detached);
  }

  asio::awaitable<void> ConnectAndServe(std::shared_ptr<Impl> self) {
    uint64_t gen = ++generation;
    auto addr = ParseAddress(address);
    if (!addr.ok()) {
      if (gen == generation) Disconnect(addr.status());
      co_return;
    }
    tcp::resolver resolver(io);
    asio::error_code ec;
    auto results = co_await resolver.async_resolve(addr->first, std::to_string(addr->second),
                                                   asio::redirect_error(asio::use_awaitable, ec));
    if (gen != generation) co_return;
    if (ec) {
      Disconnect(Err(EHOSTUNREACH, "cannot resolve {}: {}", address, ec.message()));
      co_return;
    }
    auto s = std::make_shared<tcp::socket>(io);
    sock = s;
    co_await asio::async_connect(*s, results, asio::redirect_error(asio::use_awaitable, ec));
    if (gen != generation) co_return;
    if (ec) {
      Disconnect(FromAsio(ec, "connect to " + address));
      co_return;
    }
    // While nothing listens on a loopback port in the ephemeral range (a
    // daemon restarting), the kernel may give our socket that very port and
    // connect it to itself. That is no server; and it would hold the port
    // the daemon is about to bind again.
    asio::error_code lec, rec;
    if (s->local_endpoint(lec) == s->remote_endpoint(rec) && !lec && !rec) {
      Disconnect(Err(ECONNREFUSED, "connect to {}: connection refused (connected to itself)", address));
      co_return;
    }
    s->set_option(tcp::no_delay(true), ec);
    writer = std::make_shared<Writer>(io.get_executor());
    state = State::kConnected;
    for (auto& f : waiting) writer->Push(std::move(f));
    waiting.clear();
    {
      std::lock_guard lk(mu);
      open_sock = s;
      open_writer = writer;
    }
    auto w = writer;
    asio::co_spawn(io, RunWriter(w, s), asio::detached);
    co_await ReadLoop(s, gen);
  }

  asio::awaitable<void> ReadLoop(std::shared_ptr<tcp::socket> s, uint64_t gen) {
    std::array<uint8_t, wire::kHeaderSize> hbuf;
    Status why;
    while (true) {
      asio::error_code ec;
      co_await asio::async_read(*s, asio::buffer(hbuf), asio::redirect_error(asio::use_awaitable, ec));
      if (gen != generation) co_return;
      if (ec) {
        why = FromAsio(ec, "connection to " + address);
        break;
      }
      auto h = wire::DecodeHeader(hbuf);
      if (!h.ok()) {
        why = h.status().Prefixed("reply from " + address);
        break;
      }
      if (!h->is_response()) {
        why = Err(EPROTO, "{} sent a request frame to a client", address);
        break;
      }
      CallResult r;
      r.message.resize(h->message_len);
      r.payload_len = h->payload_len;
      std::span<char> dest;
      {
        std::lock_guard lk(mu);
        auto it = pending.find(h->request_id);
        if (it != pending.end() && !h->is_error() && it->second.into.size() >= h->payload_len) {
          dest = it->second.into.first(h->payload_len);
          it->second.receiving = true;
        }
      }
      if (dest.data() == nullptr) {
        r.payload.resize(h->payload_len);
        dest = std::span<char>(r.payload.data(), r.payload.size());
      }
      std::array<asio::mutable_buffer, 2> body{asio::buffer(r.message),
                                               asio::buffer(dest.data(), dest.size())};
      co_await asio::async_read(*s, body, asio::redirect_error(asio::use_awaitable, ec));
      if (gen != generation) co_return;
      if (ec) {
        why = FromAsio(ec, "connection to " + address);
        break;
      }
      uint32_t crc = wire::FrameCrcStart(hbuf.data());
      crc = Crc32c(crc, r.message.data(), r.message.size());
      crc = Crc32c(crc, dest.data(), dest.size());
      if (auto st = wire::VerifyCrc(*h, crc); !st.ok()) {
        why = st.Prefixed("reply from " + address);
        break;
      }
      bool timed_out;
      {
        std::lock_guard lk(mu);
        auto it = pending.find(h->request_id);
        if (it == pending.end()) continue;   // timed out earlier: drop the reply
        timed_out = it->second.timed_out;
      }
      if (timed_out) {
        r = CallResult();
        r.status = Err(ETIMEDOUT, "request to {} timed out", address);
      } else if (h->is_error()) {
        r.status = ParseError(r.message, address);
      }
      Complete(h->request_id, std::move(r));
    }
    Disconnect(why);
  }

  void OnTimeout(uint64_t id) {
    uint16_t type;
    {
      std::lock_guard lk(mu);
      auto it = pending.find(id);
      if (it == pending.end()) return;
      if (it->second.receiving) {
        it->second.timed_out = true;   // finish reading into the buffer first
        return;
      }
      type = it->second.type;
    }
    CallResult r;
    r.status = Err(ETIMEDOUT, "request {} to {} timed out",
                   proto::MsgType_Name(static_cast<proto::MsgType>(type)), address);
    Complete(id, std::move(r));
  }
};

std::shared_ptr<Channel> Channel::Create(asio::io_context& io, std::string address) {
  return std::shared_ptr<Channel>(new Channel(io, std::move(address)));
}

Channel::Channel(asio::io_context& io, std::string address)
    : address_(address), impl_(std::make_shared<Impl>(io, std::move(address))) {}

Channel::~Channel() { Close(); }

void Channel::Close() {
  auto impl = impl_;
  asio::post(impl->io, [impl] { impl->Disconnect(Status(ECANCELED, "channel closed")); });
}

void Channel::Call(uint16_t type, std::string message, Payload payload, CallOptions opts,
                   CallCallback cb) {
  auto impl = impl_;
  wire::Header h;
  h.type = type;
  h.timeout_ms = static_cast<uint32_t>(opts.timeout.count());
  {
    std::unique_lock lk(impl->mu);
    if (impl->open_writer) {
      // Connected: written from this thread. Waking the io thread to write
      // it costs a thread wake-up (tens of microseconds on an idle CPU).
      h.request_id = impl->AddLocked(type, opts, std::move(cb));
      auto w = impl->open_writer;
      auto s = impl->open_sock;
      lk.unlock();
      OutFrame f = MakeFrame(h, message, std::move(payload));
      if (!w->TrySendNow(*s, f)) asio::post(impl->io, [w] { w->Wake(); });
      return;
    }
  }
  asio::post(impl->io, [impl, h, message = std::move(message), payload = std::move(payload), opts,
                        cb = std::move(cb)]() mutable {
    {
      std::lock_guard lk(impl->mu);
      h.request_id = impl->AddLocked(h.type, opts, std::move(cb));
    }
    impl->Send(MakeFrame(h, message, std::move(payload)));
  });
}

CallResult Channel::CallSync(uint16_t type, std::string message, Payload payload,
                             CallOptions opts) {
  std::promise<CallResult> done;
  auto fut = done.get_future();
  Call(type, std::move(message), std::move(payload), opts,
       [&done](CallResult&& r) { done.set_value(std::move(r)); });
  return fut.get();
}

}  // namespace stria::rpc
