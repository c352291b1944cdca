#include "core/metrics.h"

#include <cstdio>
#include <sstream>

#include "core/json_text.h"
#include "core/log_text.h"

namespace mg {

Metrics& metrics() {
  static Metrics m;
  return m;
}

void Metrics::init_listeners(const std::vector<std::string>& names) {
  listeners.reset(new ListenerMetrics[names.size()]);
  listener_count = names.size();
  for (size_t i = 0; i < names.size(); i++) listeners[i].name = names[i];
}

namespace {

uint64_t get(const Counter& c) { return c.load(std::memory_order_relaxed); }

}  // namespace

const char* const kRefuseNames[] = {"max_connections", "bad_handshake", "per_ip", "accept_rate",
                                    "token", "origin", "tls_handshake", "handshake_timeout"};
static_assert(sizeof(kRefuseNames) / sizeof(kRefuseNames[0]) == static_cast<size_t>(RefuseReason::Count),
              "a name for every refusal reason");

std::string Metrics::render() const {
  PromWriter w;
  struct PerListener { const char* name; const char* type; const char* help; Counter ListenerMetrics::*field; };
  static const PerListener per_listener[] = {
      {"meshgate_connections", "gauge", "Client connections open now.", &ListenerMetrics::connections},
      {"meshgate_connections_accepted_total", "counter", "Client connections accepted.", &ListenerMetrics::accepted},
      {"meshgate_messages_in_total", "counter", "Messages received from clients.", &ListenerMetrics::messages_in},
      {"meshgate_messages_out_total", "counter", "Messages queued to clients.", &ListenerMetrics::messages_out},
      {"meshgate_bytes_in_total", "counter", "Bytes read from clients.", &ListenerMetrics::bytes_in},
      {"meshgate_bytes_out_total", "counter", "Bytes written to clients.", &ListenerMetrics::bytes_out},
  };
  for (const auto& f : per_listener) {
    w.family(f.name, f.type, f.help);
    for (size_t i = 0; i < listener_count; i++)
      w.sample(f.name, {{"listener", listeners[i].name}}, get(listeners[i].*(f.field)));
  }
  w.family("meshgate_connections_refused_total", "counter", "Client connections refused, by reason.");
  for (int i = 0; i < static_cast<int>(RefuseReason::Count); i++)
    w.sample("meshgate_connections_refused_total", {{"reason", kRefuseNames[i]}}, get(refused[i]));
  w.family("meshgate_output_buffer_closes_total", "counter", "Clients closed for exceeding an output buffer limit.");
  w.sample("meshgate_output_buffer_closes_total", {{"limit", "hard"}}, get(output_closes[static_cast<int>(OutputLimit::Hard)]));
  w.sample("meshgate_output_buffer_closes_total", {{"limit", "soft"}}, get(output_closes[static_cast<int>(OutputLimit::Soft)]));
  w.family("meshgate_sends_total", "counter", "mesh.send calls by result.");
  w.sample("meshgate_sends_total", {{"result", "ok"}}, get(sends[static_cast<int>(SendResult::Ok)]));
  w.sample("meshgate_sends_total", {{"result", "not_connected"}}, get(sends[static_cast<int>(SendResult::NotConnected)]));
  // A client that is closing could not take the message either: one label for both, as before
  // SendResult told them apart.
  w.sample("meshgate_sends_total", {{"result", "buffer_full"}},
           get(sends[static_cast<int>(SendResult::BufferFull)]) + get(sends[static_cast<int>(SendResult::Closing)]));
  w.family("meshgate_publishes_total", "counter", "mesh.publish and mesh.broadcast calls.");
  w.sample("meshgate_publishes_total", get(publishes));
  w.family("meshgate_publish_deliveries_total", "counter", "Publish/broadcast fan-out per recipient, by result.");
  w.sample("meshgate_publish_deliveries_total", {{"result", "ok"}}, get(publish_ok));
  w.sample("meshgate_publish_deliveries_total", {{"result", "failed"}}, get(publish_failed));
  w.family("meshgate_client_closes_total", "counter", "Client connections closed, by close code.");
  for (int i = 0; i < 4000; i++) {
    uint64_t v = get(closes_by_code[i]);
    if (v) w.sample("meshgate_client_closes_total", {{"code", std::to_string(1000 + i)}}, v);
  }
  w.family("meshgate_protocol_errors_total", "counter", "Clients closed for protocol errors, bad UTF-8 or oversized messages.");
  w.sample("meshgate_protocol_errors_total", get(protocol_errors));
  w.family("meshgate_queue_backlog_drops_total", "counter", "Client events dropped because the queue thread fell behind.");
  w.sample("meshgate_queue_backlog_drops_total", get(queue_backlog_drops));
  w.family("meshgate_queue_backlog_pauses_total", "counter",
           "Times a client was not read until the queue thread caught up with the events of every client.");
  w.sample("meshgate_queue_backlog_pauses_total", get(queue_backlog_pauses));
  return w.take();
}

std::string Metrics::stats_json_members() const {
  std::ostringstream o;
  o << "\"listeners\":[";
  for (size_t i = 0; i < listener_count; i++) {
    const ListenerMetrics& l = listeners[i];
    std::string name;
    json_append_string(name, l.name);  // a section name may hold any character but ']'
    o << (i ? "," : "") << "{\"name\":" << name << ",\"connections\":" << get(l.connections)
      << ",\"accepted\":" << get(l.accepted) << ",\"messages_in\":" << get(l.messages_in)
      << ",\"messages_out\":" << get(l.messages_out) << ",\"bytes_in\":" << get(l.bytes_in)
      << ",\"bytes_out\":" << get(l.bytes_out) << '}';
  }
  o << "],\"publishes\":" << get(publishes) << ",\"deliveries\":{\"ok\":" << get(publish_ok)
    << ",\"failed\":" << get(publish_failed) << "},\"sends\":{\"ok\":" << get(sends[0])
    << ",\"not_connected\":" << get(sends[1]) << ",\"buffer_full\":" << get(sends[2]) << "},\"refused\":{";
  for (int i = 0; i < static_cast<int>(RefuseReason::Count); i++)
    o << (i ? "," : "") << '"' << kRefuseNames[i] << "\":" << get(refused[i]);
  o << "},\"closes\":{";
  bool first = true;
  for (int i = 0; i < 4000; i++) {
    uint64_t v = get(closes_by_code[i]);
    if (!v) continue;
    o << (first ? "" : ",") << '"' << (1000 + i) << "\":" << v;
    first = false;
  }
  o << "},\"output_buffer_closes\":{\"hard\":" << get(output_closes[0]) << ",\"soft\":" << get(output_closes[1])
    << "},\"protocol_errors\":" << get(protocol_errors);
  return o.str();
}

void PromWriter::family(const char* name, const char* type, const char* help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += help;
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void PromWriter::labels(const char* name, Labels labels) {
  out_ += name;
  if (labels.size() == 0) return;
  char sep = '{';
  for (const auto& [key, value] : labels) {
    out_ += sep;
    out_ += key;
    out_ += '=';
    out_ += prom_label(value);
    sep = ',';
  }
  out_ += '}';
}

void PromWriter::sample(const char* name, Labels l, uint64_t value) {
  labels(name, l);
  out_ += ' ';
  out_ += std::to_string(value);
  out_ += '\n';
}

void PromWriter::sample_double(const char* name, Labels l, double value) {
  labels(name, l);
  char buf[32];
  std::snprintf(buf, sizeof buf, " %.15g\n", value);
  out_ += buf;
}

std::string prom_label(const std::string& value) {
  // The text format escapes only \\, \" and \n, and needs UTF-8. Label values can be a peer's
  // text (a topic name from queue.pop): every control byte (\n and \r included) and every byte
  // that is not valid UTF-8 is first written as the four characters \xNN (log_safe_line,
  // core/log_text.h), so the page stays one sample per line and parses.
  const std::string safe = log_safe_line(value);
  std::string out;
  out.reserve(safe.size() + 2);
  out += '"';
  for (char c : safe) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else out += c;
  }
  out += '"';
  return out;
}

}  // namespace mg
