// Process-wide counters for /metrics (Prometheus text format).
//
// Counters touched by worker threads are relaxed atomics; those owned by the hub thread (queue topics,
// API calls) are rendered by the hub itself and appended to this text.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "core/send_result.h"

namespace mg {

using Counter = std::atomic<uint64_t>;

// Per client listener.
struct ListenerMetrics {
  std::string name;
  Counter connections{0};         // open now (gauge)
  Counter accepted{0};
  Counter messages_in{0}, messages_out{0};
  Counter bytes_in{0}, bytes_out{0};
};

// HandshakeTimeout: the TLS handshake, the upgrade request or the token line not done within the
// handshake timeout from accept (client_conn.cpp), TLS or not.
enum class RefuseReason { MaxConnections, BadHandshake, PerIp, AcceptRate, Token, Origin, TlsHandshake, HandshakeTimeout, Count };
enum class OutputLimit { Hard, Soft, Count };

struct Metrics {
  std::unique_ptr<ListenerMetrics[]> listeners;
  size_t listener_count = 0;
  Counter refused[static_cast<int>(RefuseReason::Count)] = {};
  Counter output_closes[static_cast<int>(OutputLimit::Count)] = {};
  Counter sends[kSendResultCount] = {};  // mesh.send by SendResult; Closing is shown as buffer_full
  Counter publish_ok{0}, publish_failed{0}, publishes{0};
  Counter closes_by_code[5000 - 1000] = {};  // close codes 1000..4999
  Counter queue_backlog_drops{0};             // events dropped because the hub fell behind
  Counter queue_backlog_pauses{0};            // client reads stopped because the hub fell behind
  Counter protocol_errors{0};                 // clients closed for 1002/1007/1009

  void init_listeners(const std::vector<std::string>& names);
  void count_close(int code) {
    if (code >= 1000 && code < 5000) closes_by_code[code - 1000].fetch_add(1, std::memory_order_relaxed);
  }
  // The worker-side part of the /metrics text.
  std::string render() const;
  // The same counters as members of a JSON object (node.stats): "listeners":[...], "publishes",
  // "deliveries", "sends", "refused", "closes", "output_buffer_closes", "protocol_errors" (no braces).
  std::string stats_json_members() const;
};

Metrics& metrics();

// A Prometheus label value, quoted, with the text format's three escapes (\\, \", \n) and nothing
// else: JSON's \uXXXX is not one of them, and a single bad escape makes a scraper reject the page.
std::string prom_label(const std::string& value);

// The one writer of the Prometheus text format (version 0.0.4) for every part of /metrics: a family's
// HELP and TYPE lines, then its samples, every label value escaped by prom_label.
//
//   PromWriter w;
//   w.family("meshgate_mesh_members", "gauge", "Other nodes known to this node, by state.");
//   w.sample("meshgate_mesh_members", {{"state", "alive"}}, 3);
class PromWriter {
 public:
  using Labels = std::initializer_list<std::pair<const char*, std::string>>;
  void family(const char* name, const char* type, const char* help);
  void sample(const char* name, Labels labels, uint64_t value);
  void sample(const char* name, uint64_t value) { sample(name, {}, value); }
  // Non-integral values (seconds, ratios), printed as %g does.
  void sample_double(const char* name, Labels labels, double value);
  // Appends text another writer produced (parts rendered elsewhere).
  void append(const std::string& text) { out_ += text; }
  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void labels(const char* name, Labels labels);
  std::string out_;
};

inline void inc(Counter& c, uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }

}  // namespace mg
