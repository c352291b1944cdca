// Fuzz target: one client connection's whole life, over TLS or not, against a real Worker's tables
// (issue 18). The input picks a listener (wss, ws, TLS tcp with line framing) and then is a script of
// steps, interleaved:
//   client side — the TLS handshake (a client SSL over memory BIOs, its records written to a real
//   socketpair), the upgrade request (valid or mutated), frames (text, binary, fragments, ping,
//   close, raw bytes), a bogus TLS record, raw bytes into the TLS stream, close_notify, TCP shutdown
//   and reset (the client's end closed);
//   server / API side — send to the client, publish to a channel, broadcast, conn.call (subscribe,
//   unsubscribe, set context, close), conn.info, drain.
// After every step the worker's loop runs a few turns and the hub takes the events the worker posted
// (the real EventIntake into a real QueueHub, whose consumer checks them); then the checks:
//   - Worker::check_tables(): no connection reachable from the id table or a channel after it was
//     freed, nor one that is not open; the counts agree (under ASan, a freed connection that the worker
//     still reaches is a heap-use-after-free report at the step that reaches it);
//   - the client's events, as the queue's consumer receives them: open first, then its messages, at
//     most one close and nothing after it; each "d" is valid UTF-8 and valid JSON (what a consumer must
//     be able to take), and the queue discarded none as invalid text.
// At the end the worker is stopped (force_stop), its loop must end with no handle left, and a client
// that opened must have had exactly one close event.
//
// The known defect of f75fdbd this was written for: a wss client's bogus TLS record after its upgrade
// left the freed connection in the id table (ClientConn::on_tls_failed skipped the unregister).
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "client/conn_ops.h"
#include "client/out_message.h"
#include "client/worker.h"
#include "core/config.h"
#include "core/json_check.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/utf8.h"
#include "net/tls.h"
#include "queue/event_intake.h"
#include "queue/queue_hub.h"
#include "fuzz_reader.h"
#include "ws_seeds.h"

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_client_life: %s\n", what.c_str());
  std::abort();
}

using fuzzin::Reader;

enum Listener : unsigned { kWss, kWs, kTlsTcp, kListeners };

// The node's configuration and what the hub shares with its workers, made once.
struct Node {
  mg::Config cfg;
  mg::ListenersShared shared;
  SSL_CTX* client_tls = nullptr;

  Node() {
    mg::log_set_level(mg::LogLevel::Error);
    const char* names[kListeners] = {"wss", "ws", "tlstcp"};
    std::vector<std::string> metric_names;
    for (unsigned i = 0; i < kListeners; i++) {
      mg::ListenerConfig l;
      l.name = names[i];
      l.type = i == kTlsTcp ? mg::ListenerType::Tcp : mg::ListenerType::Ws;
      l.tls = i != kWs;
      l.max_message = 1024;  // reached by the input: 1009
      cfg.listeners.push_back(l);
      metric_names.push_back(l.name);
    }
    cfg.limits.output_hard_limit = 8192;  // a few large sends reach it: the hard-limit close
    mg::metrics().init_listeners(metric_names);
    std::string note, error;
    mg::TlsContextRef tls(mg::tls_server_context("", "", mg::TicketOptions{}, note, error));
    if (!tls) fail("server TLS context: " + error);
    for (const mg::ListenerConfig& l : cfg.listeners) {
      mg::ListenerShared s;
      if (l.tls) {  // one context for both TLS listeners: a reference for each slot
        SSL_CTX_up_ref(tls.get());
        s.tls = std::make_unique<mg::TlsSlot>(mg::TlsContextRef(tls.get()));
      }
      s.guard = std::make_unique<mg::ListenerGuard>(0, 0);
      shared.push_back(std::move(s));
    }
    client_tls = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(client_tls, SSL_VERIFY_NONE, nullptr);
  }
  // At exit, before LeakSanitizer looks (the listeners' slots free the server context).
  ~Node() { SSL_CTX_free(client_tls); }
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
};

Node& node() {
  static Node n;
  return n;
}

// The hub as the worker sees it: the real intake into a real queue, whose one consumer checks every
// event as it arrives. Tasks the worker posts (its event batches) run at the hub's turn (take()).
// The listeners' topic pauses at a bound of 3 (its gate is the queue's): a few events in flight close
// the gate, so pauses and resumes are reached.
class Hub final : public mg::WorkerHost, public mg::QueueSink {
 public:
  mg::Worker* worker = nullptr;

  Hub() : queue_(1, queue_limits()), intake_(queue_, [this] { worker->post([w = worker] { w->resume_paused(); }); }) {
    const std::string& topic = node().cfg.listeners[0].topic;
    queue_.declare(topic);
    for (mg::ListenerShared& s : node().shared) s.gate = queue_.gate(topic);
    std::string error;
    if (queue_.pop(this, {topic}, false, error) != 0) fail("queue.pop: " + error);
  }
  ~Hub() {
    queue_.unpop(this);
    for (mg::ListenerShared& s : node().shared) s.gate.reset();
  }
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  uint64_t client_count() const override { return opened_ - closed_; }
  void client_opened() override { opened_++; }
  void client_closed() override {
    if (closed_ == opened_) fail("client_closed() more often than client_opened()");
    closed_++;
  }
  size_t backlog() const override { return tasks_.size(); }
  void post(mg::Mailbox::Task task) override { tasks_.push_back(std::move(task)); }
  mg::EventIntake& event_intake() override { return intake_; }
  mg::ChannelPresence& channel_presence() override { return presence_; }
  void worker_stopped(unsigned) override { stopped = true; }

  bool sink_ready() const override { return true; }
  void sink_deliver(const mg::QueueEventRef& ev, unsigned, uint64_t) override {
    std::string why;
    if (!mg::is_valid_utf8(ev.data.data(), ev.data.size())) fail("an event's d is not valid UTF-8");
    // json_check refuses \u0000, a policy for what clients send us; RFC 8259 allows it in what we send.
    std::string d(ev.data);
    for (size_t at = 0; (at = d.find("\\u0000", at)) != std::string::npos;) d[at + 5] = '1';
    if (!mg::json_check(d.data(), d.size(), why)) fail("an event's d is not JSON: " + why);
    int& state = clients_[ev.client];  // 0 nothing yet, 1 open, 2 closed
    const bool open = ev.data.rfind("{\"event\":\"open\"", 0) == 0;
    const bool close = ev.data.rfind("{\"event\":\"close\"", 0) == 0;
    if (open ? state != 0 : state != 1) fail("client " + std::to_string(ev.client) + ": event out of order: " + std::string(ev.data));
    state = open ? 1 : close ? 2 : 1;
    if (open) last_opened = ev.client;
  }

  // The hub's turn: runs what the worker posted.
  void take() {
    std::vector<mg::Mailbox::Task> tasks;
    tasks.swap(tasks_);
    for (auto& t : tasks) t();
    if (queue_.discarded(mg::QueueHub::Discard::InvalidText)) fail("the queue discarded an event whose text is not valid UTF-8");
  }
  // Every client that opened got its close event.
  void check_all_closed() const {
    for (const auto& [id, state] : clients_)
      if (state != 2) fail("client " + std::to_string(id) + " opened and never got its close event");
  }

  uint64_t last_opened = 0;
  bool stopped = false;

 private:
  static mg::QueueLimits queue_limits() {
    mg::QueueLimits l;
    l.max_events = 3;
    return l;
  }
  uint64_t opened_ = 0, closed_ = 0;
  std::vector<mg::Mailbox::Task> tasks_;
  mg::QueueHub queue_;
  mg::EventIntake intake_;
  mg::ChannelPresence presence_;
  std::unordered_map<uint64_t, int> clients_;
};

// The client's end of the socketpair, with its TLS session over memory BIOs when the listener has TLS.
class Client {
 public:
  Client(int fd, SSL_CTX* tls) : fd_(fd) {
    if (!tls) return;
    ssl_ = SSL_new(tls);
    BIO* in = BIO_new(BIO_s_mem());
    BIO* out = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl_, in, out);
    SSL_set_connect_state(ssl_);
    in_ = in;
    out_ = out;
  }
  ~Client() {
    if (ssl_) SSL_free(ssl_);
    reset();
  }

  // Application bytes: through TLS when on (kept until the handshake allows them), else as they are.
  void send(const std::string& s) {
    if (!ssl_) return raw(s);
    pending_ += s;
    pump();
  }
  // Bytes straight onto the socket, past the TLS session.
  void raw(const std::string& s) {
    if (fd_ < 0) return;
    for (size_t off = 0; off < s.size();) {
      ssize_t n = ::write(fd_, s.data() + off, s.size() - off);
      if (n <= 0) return;  // the server's end is gone or full: the rest is lost, as on a network
      off += static_cast<size_t>(n);
    }
  }
  // Moves bytes both ways: what the server wrote is read (and decrypted and dropped), what the
  // client's TLS session has to say is written.
  void pump() {
    if (fd_ < 0) return;
    char buf[16384];
    for (;;) {
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) break;
      if (ssl_) BIO_write(in_, buf, static_cast<int>(n));
    }
    if (!ssl_) return;
    if (!SSL_is_init_finished(ssl_) && !shut_) SSL_do_handshake(ssl_);
    while (SSL_read(ssl_, buf, sizeof buf) > 0) {
    }
    while (!pending_.empty() && !shut_ && SSL_is_init_finished(ssl_)) {
      int n = SSL_write(ssl_, pending_.data(), static_cast<int>(pending_.size()));
      if (n <= 0) break;
      pending_.erase(0, static_cast<size_t>(n));
    }
    flush_tls();
  }
  void close_notify() {
    if (!ssl_ || shut_) return;
    SSL_shutdown(ssl_);
    shut_ = true;
    flush_tls();
  }
  void shutdown_write() {
    if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
  }
  // Closes the client's end (with unread bytes there, the server's next read sees a reset).
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  void flush_tls() {
    char buf[16384];
    for (;;) {
      int n = BIO_read(out_, buf, sizeof buf);
      if (n <= 0) break;
      raw(std::string(buf, static_cast<size_t>(n)));
    }
  }

  int fd_;
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;
  BIO* out_ = nullptr;
  bool shut_ = false;
  std::string pending_;
};

const std::string kUpgrade =
    "GET /p?q=1 HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

// The step a byte of the script names.
enum Step : uint8_t {
  kHandshake, kUpgrade_, kUpgradeMutated, kText, kBinary, kFragment, kPing, kCloseFrame, kClientBytes,
  kBogusRecord, kRawBytes, kCloseNotify, kShutdown, kReset,
  kSend, kPublish, kBroadcast, kSubscribe, kUnsubscribe, kSetContext, kApiClose, kInfo, kDrain, kTurns,
  kHubStall,
  kSteps
};

std::shared_ptr<const mg::OutMessage> message(Reader& r) {
  const uint8_t b = r.byte();
  // Mostly small; 1 in 4 is 5,000 bytes, so that two unread ones pass the output hard limit.
  std::string payload = (b & 3) == 0 ? std::string(5000, 'x') : r.bytes(b >> 3);
  if (!(b & 4) && !mg::is_valid_utf8(payload.data(), payload.size())) payload = "text";
  return mg::make_out_message(payload, b & 4);
}

class Life {
 public:
  explicit Life(Reader& r) : r_(r), worker_(hub_, node().cfg, node().shared, 0, 1) {
    hub_.worker = &worker_;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) fail("socketpair");
    listener_ = r_.byte() % kListeners;
    client_ = std::make_unique<Client>(sv[1], node().shared[listener_].tls ? node().client_tls : nullptr);
    worker_.adopt(sv[0], listener_);
    turns(1);
  }

  void run() {
    for (int steps = 0; r_.more() && steps < 200; steps++) {
      step(static_cast<Step>(r_.byte() % kSteps));
      turns(3);
      check();
    }
    finish();
  }

 private:
  void turns(int n) {
    for (int i = 0; i < n; i++) {
      client_->pump();
      uv_run(worker_.loop(), UV_RUN_NOWAIT);
      if (!hub_stalled_) hub_.take();
    }
    client_->pump();
  }
  void check() {
    std::string why = worker_.check_tables();
    if (!why.empty()) fail("worker tables: " + why);
  }
  uint64_t target() { return hub_.last_opened + (r_.byte() & 1); }  // this client, or an id nobody has
  std::string channel() { return (r_.byte() & 1) ? "a" : "b"; }
  std::string frame(uint8_t opcode) {
    const uint8_t b = r_.byte();
    return wsseed::frame(static_cast<uint8_t>(((b & 1) ? 0 : 0x80) | opcode), r_.bytes(b >> 1));
  }

  void step(Step s) {
    switch (s) {
      case kHandshake: return turns(4);
      case kUpgrade_: return client_->send(listener_ == kTlsTcp ? std::string("hello\n") : kUpgrade);
      case kUpgradeMutated: {
        std::string req = kUpgrade;
        const uint8_t at = r_.byte();
        req[at % req.size()] = static_cast<char>(r_.byte());
        return client_->send(req);
      }
      case kText: return client_->send(frame(0x1));
      case kBinary: return client_->send(frame(0x2));
      case kFragment: return client_->send(frame(0x0));
      case kPing: return client_->send(frame(0x9));
      case kCloseFrame: {
        const uint8_t b = r_.byte();
        // No code, 1000, or a code from the input (most of them invalid: 1002).
        const uint8_t low = (b & 2) ? b : 0xE8;
        std::string payload = b & 1 ? std::string() : std::string{static_cast<char>(0x03), static_cast<char>(low)};
        return client_->send(wsseed::frame(0x88, payload + r_.bytes(b >> 4)));
      }
      case kClientBytes: return client_->send(r_.bytes(r_.byte()));
      case kBogusRecord: return client_->raw(std::string("\x17\x03\x03\x00\x20", 5) + std::string(32, '\x5a'));
      case kRawBytes: return client_->raw(r_.bytes(r_.byte() % 64));
      case kCloseNotify: return client_->close_notify();
      case kShutdown: return client_->shutdown_write();
      case kReset: return client_->reset();
      case kSend: {  // 1 to 4 in a row, with no loop turn between: the output hard limit is reachable
        const uint64_t to = target();
        const int k = 1 + r_.byte() % 4;
        const auto msg = message(r_);
        for (int i = 0; i < k; i++) (void)worker_.send(to, *msg);
        return;
      }
      case kPublish: {
        const std::string ch = channel();  // read before the message: arguments have no order
        (void)worker_.publish(ch, *message(r_));
        return;
      }
      case kBroadcast: (void)worker_.broadcast(*message(r_)); return;
      case kSubscribe:
      case kUnsubscribe: {
        mg::ConnCall call;
        call.fn = s == kSubscribe ? mg::ConnCall::Fn::Subscribe : mg::ConnCall::Fn::Unsubscribe;
        call.channels = {channel()};
        if (r_.byte() & 1) call.channels.push_back(channel());
        (void)worker_.conn_call(target(), call);
        return;
      }
      case kSetContext: {
        mg::ConnCall call;
        call.fn = mg::ConnCall::Fn::SetContextValue;
        call.key = "k";
        call.value_json = std::to_string(r_.byte());
        (void)worker_.conn_call(target(), call);
        return;
      }
      case kApiClose: {
        mg::ConnCall call;
        call.fn = mg::ConnCall::Fn::Close;
        call.code = (r_.byte() & 1) ? 1000 : 4000;
        call.reason = "closed by the API";
        (void)worker_.conn_call(target(), call);
        return;
      }
      case kInfo: (void)worker_.conn_info(target()); return;
      case kDrain: return worker_.drain();
      case kTurns: return turns(1 + r_.byte() % 8);
      // The hub stops taking events (or starts again): with the gate's bound of 3 in flight, the
      // client is paused after its next messages, and resumed when the hub takes them.
      case kHubStall: hub_stalled_ = !hub_stalled_; return;
      case kSteps: return;
    }
  }

  // The server stops: every client is closed, the loop must end with nothing left open, and the
  // client must have had its close event.
  void finish() {
    hub_stalled_ = false;
    worker_.force_stop();
    for (int i = 0; i < 100 && uv_loop_alive(worker_.loop()); i++) turns(1);
    hub_.take();  // the hub's last turn (the loop may have ended while the hub was stalled)
    check();
    if (uv_loop_alive(worker_.loop())) fail("the worker's loop still has handles after force_stop");
    if (!hub_.stopped) fail("the worker never reported that it stopped");
    hub_.check_all_closed();
  }

  Reader& r_;
  Hub hub_;
  mg::Worker worker_;
  unsigned listener_ = 0;
  bool hub_stalled_ = false;
  std::unique_ptr<Client> client_;
};

// Scripts: listener byte, then steps (each step's own bytes follow it).
std::string script(Listener l, std::initializer_list<std::string> steps) {
  std::string s(1, static_cast<char>(l));
  for (const std::string& st : steps) s += st;
  return s;
}
std::string op(Step s, std::string args = {}) { return std::string(1, static_cast<char>(s)) + args; }
std::string op(Step s, const char* args, size_t n) { return op(s, std::string(args, n)); }  // bytes with NULs

}  // namespace

std::vector<std::string> fuzz_seeds() {
  const std::string text = op(kText, std::string(1, '\x0a') + "hello");  // fin, 5 bytes
  const std::string sub = op(kSubscribe, "\x01\x00", 2) + std::string(1, '\x00');  // "a", one channel, this client
  const std::string bcast = op(kBroadcast, "\x11hi");  // a text message of 2 bytes
  const std::string publish = op(kPublish, "\x01\x11hi");  // the same to channel "a"
  std::vector<std::string> seeds = {
      // The whole life of a wss client: handshake, upgrade, a message, a channel, a publish, its close.
      script(kWss, {op(kHandshake), op(kUpgrade_), op(kHandshake), text, sub, publish, bcast,
                    op(kCloseFrame, "\x08", 1), op(kTurns, "\x03", 1)}),
      // The defect of f75fdbd: a bogus TLS record after the upgrade, then a broadcast and a publish.
      script(kWss, {op(kHandshake), op(kUpgrade_), op(kHandshake), sub, op(kBogusRecord), op(kTurns, "\x02", 1), bcast,
                    publish}),
      // close_notify, TCP shutdown and reset after the upgrade; the API's close; a drain.
      script(kWss, {op(kHandshake), op(kUpgrade_), op(kHandshake), sub, op(kCloseNotify), bcast}),
      script(kWss, {op(kHandshake), op(kUpgrade_), op(kHandshake), op(kShutdown), bcast}),
      script(kWss, {op(kHandshake), op(kUpgrade_), op(kHandshake), sub, op(kReset), bcast}),
      script(kWss, {op(kHandshake), op(kUpgrade_), op(kHandshake), sub, op(kApiClose, "\x01\x00", 2), bcast}),
      script(kWss, {op(kHandshake), op(kUpgrade_), op(kHandshake), sub, op(kDrain), op(kTurns, "\x04", 1), bcast}),
      // Bytes instead of a TLS handshake; a mutated upgrade; output over the hard limit.
      script(kWss, {op(kRawBytes, "\x10", 1) + std::string(16, '\x16'), bcast}),
      script(kWss, {op(kHandshake), op(kUpgradeMutated, "\x05\xff", 2), op(kHandshake), bcast}),
      script(kWss, {op(kHandshake), op(kUpgrade_), op(kHandshake), op(kSend, "\x00\x03\x00", 3), bcast}),
      // Plain ws: fragments, pings, a message over max_message, a violation.
      script(kWs, {op(kUpgrade_), op(kText, "\x07", 1) + "abc", op(kPing, "\x04", 1) + "pi",
                   op(kFragment, "\x04", 1) + "de", op(kText, "\x0a", 1) + "hello", sub, bcast}),
      // The hub stalls: the client is paused after three messages in flight; closed while paused.
      script(kWs, {op(kUpgrade_), op(kHubStall), text, text, text, text, text, op(kApiClose, "\x01\x00", 2),
                   op(kHubStall), op(kTurns, "\x03", 1)}),
      script(kWs, {op(kUpgrade_), op(kHubStall), text, text, text, text, op(kHubStall), text, sub, bcast}),
      script(kWs, {op(kUpgrade_), op(kClientBytes, "\x08", 1) + std::string("\x81\xfe\x08\x00\x00\x00\x00\x00", 8), bcast}),
      // TLS tcp: open on the handshake, a line, the bogus record.
      script(kTlsTcp, {op(kHandshake), op(kUpgrade_), sub, op(kBogusRecord), op(kTurns, "\x02", 1), bcast}),
      script(kTlsTcp, {op(kHandshake), op(kClientBytes, "\x06", 1) + "line\n\n", op(kCloseNotify), bcast}),
  };
  return seeds;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool ignore_sigpipe = [] { return signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();
  (void)ignore_sigpipe;
  (void)node();
  Reader r{data, size};
  Life life(r);
  life.run();
  return 0;
}
