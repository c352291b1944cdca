#include "http/http_server.h"

#include <vector>

#include "core/addr.h"
#include "core/log.h"
#include "net/listen_socket.h"
#include "net/stream.h"

namespace mg {

HttpServer::HttpServer(uv_loop_t* loop, std::string what, std::string label, size_t max_connections,
                       uint64_t request_timeout_ms, Factory make)
    : loop_(loop), what_(what), max_connections_(max_connections), request_timeout_ms_(request_timeout_ms),
      make_(std::move(make)), refusals_(std::move(what), std::move(label)) {}

bool HttpServer::listen(const std::string& host, int port) {
  std::string error;
  int fd = open_listen_socket(host, port, false, error);
  if (fd < 0) {
    LOG_ERROR("cannot listen for the %s on %s", what_.c_str(), error.c_str());
    return false;
  }
  int rc = start_listening(loop_, &tcp_, fd, &HttpServer::on_connection);
  if (rc != 0) {
    LOG_ERROR("cannot listen on %s: %s", host_port(host, port).c_str(), uv_strerror(rc));
    return false;
  }
  tcp_.data = this;
  listening_ = true;
  return true;
}

void HttpServer::stop_listening() {
  if (!listening_) return;
  listening_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), nullptr);
}

void HttpServer::on_connection(uv_stream_t* listener, int status) {
  if (status < 0) return;
  auto* self = static_cast<HttpServer*>(listener->data);
  HttpConn* conn = self->make_(*self, ++self->next_serial_);
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(conn->tcp())) != 0) {
    conn->close_now();
    return;
  }
  self->conns_.emplace(conn->serial(), conn);
  if (self->conns_.size() > self->max_connections_) {
    LOG_DEBUG("%s connection refused: %zu connections open", self->what_.c_str(), self->conns_.size() - 1);
    conn->close_now();
    return;
  }
  uv_tcp_nodelay(conn->tcp(), 1);
  conn->start();
}

HttpConn* HttpServer::find(uint64_t serial) const {
  auto it = conns_.find(serial);
  return it == conns_.end() || it->second->closing() ? nullptr : it->second;
}

void HttpServer::forget(uint64_t serial) {
  conns_.erase(serial);
  if (conns_.empty() && on_empty_) on_empty_();
}

void HttpServer::tick(uint64_t now_ms) {
  std::vector<HttpConn*> stalled;
  for (auto& [serial, c] : conns_)
    if (c->stalled(now_ms)) stalled.push_back(c);
  for (HttpConn* c : stalled) c->time_out(now_ms);
}

void HttpServer::close_all_going_away() {
  std::vector<HttpConn*> all;
  for (auto& [serial, c] : conns_) all.push_back(c);
  for (HttpConn* c : all) c->close_going_away();
}

void HttpServer::close_all_now() {
  std::vector<HttpConn*> all;
  for (auto& [serial, c] : conns_) all.push_back(c);
  for (HttpConn* c : all) c->close_now();
}

}  // namespace mg
