// An HTTP listener and the connections it accepted, on one loop (the hub's).
//
// It owns the registry the answers come back through: a call that finishes later finds its
// connection by serial (find), which is nullptr once it closed. It bounds how many connections it
// holds (one listener cannot crowd out another), gives each request a deadline (HttpConn::time_out:
// 408 and closed), counts what it refuses (HttpRefusals), and says when the last connection is gone
// (the hub waits for that at shutdown).
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>

#include "http/http_conn.h"
#include "http/http_refusals.h"

namespace mg {

class HttpServer {
 public:
  // Makes the connection object for an accepted socket (new; deleted by the Stream).
  using Factory = std::function<HttpConn*(HttpServer& server, uint64_t serial)>;

  // `what` names the listener in logs ("control API", "route API"), `label` in metrics ("api").
  // A connection that has not completed a request within `request_timeout_ms` of being ready for
  // one (accept, or the previous answer: the head and the body together) is closed.
  HttpServer(uv_loop_t* loop, std::string what, std::string label, size_t max_connections,
             uint64_t request_timeout_ms, Factory make);
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens; logs and returns false when it cannot.
  bool listen(const std::string& host, int port);
  void stop_listening();

  uv_loop_t* loop() const { return loop_; }
  uint64_t request_timeout_ms() const { return request_timeout_ms_; }
  HttpRefusals& refusals() { return refusals_; }
  const HttpRefusals& refusals() const { return refusals_; }
  // An open connection by serial, or nullptr (closed, or closing).
  HttpConn* find(uint64_t serial) const;
  size_t size() const { return conns_.size(); }
  const std::unordered_map<uint64_t, HttpConn*>& connections() const { return conns_; }
  // Draining: answers say "Connection: close".
  void set_draining(bool d) { draining_ = d; }
  bool draining() const { return draining_; }
  // Closes the connections past their request deadline; call about once a second.
  void tick(uint64_t now_ms);
  void close_all_going_away();
  void close_all_now();
  // Runs whenever the last connection is gone.
  void set_on_empty(std::function<void()> f) { on_empty_ = std::move(f); }

  // From HttpConn::on_close.
  void forget(uint64_t serial);

 private:
  static void on_connection(uv_stream_t* server, int status);

  uv_loop_t* loop_;
  std::string what_;
  size_t max_connections_;
  uint64_t request_timeout_ms_;
  Factory make_;
  HttpRefusals refusals_;
  uv_tcp_t tcp_{};
  bool listening_ = false;
  bool draining_ = false;
  uint64_t next_serial_ = 0;
  std::unordered_map<uint64_t, HttpConn*> conns_;
  std::function<void()> on_empty_;
};

}  // namespace mg
