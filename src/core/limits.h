// Every limit's default, and the limit structs that Config is built from (as h2o's nested
// configuration): Config holds a ClientLimits ([limits]) and a QueueLimits ([queue]), and the part
// that applies them copies the struct whole, at start and on SIGHUP, so each field list is written
// once. Parts built without a Config (a unit test, the CLI) start from the same defaults.
//
// The HTTP and token limits (http/http_parser.h HttpLimits, client/connect_token.h TokenLimits) stay
// in their layers: each is a few of these numbers, picked where the layer is started.
#pragma once

#include <cstdint>

namespace mg {

namespace limit_defaults {
constexpr uint32_t kApiMaxBody = 1048576;
constexpr uint64_t kApiMaxOutput = 64ull << 20;
constexpr uint32_t kRouteMaxBatch = 10000;
constexpr uint32_t kRouteMaxBody = 65536;  // the public route API buffers each body whole: keep it small
constexpr uint32_t kMaxConnections = 100000;
constexpr uint32_t kMaxHeaderBytes = 8192;
constexpr uint32_t kMaxHeaders = 64;
constexpr uint32_t kMaxContextBytes = 4096;
constexpr uint32_t kMaxContextKeys = 64;
constexpr uint32_t kMaxChannels = 256;
constexpr uint64_t kOutputHardLimit = 4ull << 20;
constexpr uint64_t kOutputSoftLimit = 1ull << 20;
constexpr uint32_t kOutputSoftSeconds = 10;
constexpr uint32_t kMessageTimeout = 60;
constexpr uint32_t kQueueMaxEvents = 10000;
constexpr uint64_t kQueueMaxBytes = 16ull << 20;
constexpr uint32_t kAckTimeout = 30;
constexpr uint32_t kMaxUnacked = 1000;
constexpr uint32_t kMaxDeliveries = 10;  // times one event is handed out before it is dropped as poison
constexpr uint32_t kQueueMaxTopics = 10000;
constexpr uint32_t kQueueTopicIdleTimeout = 300;  // seconds
constexpr uint64_t kQueueMaxDisk = 1ull << 30;      // a disk topic's log
constexpr uint64_t kMeshMaxLinkBuffer = 64ull << 20;
constexpr uint32_t kMaxTokenBytes = 8192;  // a connect token (not configurable: it bounds a header anyway)
// [listener] ticket_rotate: seconds between TLS ticket key rotations (net/tls_tickets.h).
constexpr uint32_t kTicketRotate = 43200;
constexpr uint32_t kTicketRotateMin = 60;
constexpr uint32_t kTicketRotateMax = 604800;
// [limits] handshake_budget / accept_budget: TLS handshake steps and accepts per worker loop turn
// (net/stream.h, client/worker.h); 0 = no budget.
constexpr uint32_t kHandshakeBudget = 8;
constexpr uint32_t kAcceptBudget = 16;
}  // namespace limit_defaults

// [limits]: what one client connection may take, applied by the workers (client/).
struct ClientLimits {
  uint32_t max_connections = limit_defaults::kMaxConnections;  // per node: the worker's share is checked against the node total
  uint32_t max_header_bytes = limit_defaults::kMaxHeaderBytes;
  uint32_t max_headers = limit_defaults::kMaxHeaders;
  uint32_t max_context_bytes = limit_defaults::kMaxContextBytes;
  uint32_t max_context_keys = limit_defaults::kMaxContextKeys;
  uint32_t max_channels = limit_defaults::kMaxChannels;
  uint64_t output_hard_limit = limit_defaults::kOutputHardLimit;
  uint64_t output_soft_limit = limit_defaults::kOutputSoftLimit;
  uint32_t output_soft_seconds = limit_defaults::kOutputSoftSeconds;
  uint32_t message_timeout = limit_defaults::kMessageTimeout;  // seconds a client may take to complete one message; 0 = no limit
  uint32_t handshake_budget = limit_defaults::kHandshakeBudget;  // TLS handshake steps per worker loop turn; 0 = no budget
  uint32_t accept_budget = limit_defaults::kAcceptBudget;        // accepts per worker loop turn; 0 = no budget
};

// [queue]: the queue's bounds, applied by QueueHub (queue/).
struct QueueLimits {
  uint32_t max_events = limit_defaults::kQueueMaxEvents;
  uint64_t max_bytes = limit_defaults::kQueueMaxBytes;
  uint32_t ack_timeout_s = limit_defaults::kAckTimeout;
  uint32_t max_unacked = limit_defaults::kMaxUnacked;
  uint32_t max_deliveries = limit_defaults::kMaxDeliveries;
  uint32_t max_topics = limit_defaults::kQueueMaxTopics;
  uint32_t topic_idle_s = limit_defaults::kQueueTopicIdleTimeout;
  // Disk topics: the bytes of one topic's log, and of every log of the node (0: no node bound, the
  // file system's free space is the bound). At either, the topic's overflow policy applies.
  uint64_t max_disk = limit_defaults::kQueueMaxDisk;
  uint64_t max_disk_total = 0;
};

// [queue] store, fsync, fsync_interval: where topics keep their events (queue/log_store.h). A
// listener's topic may choose its own store; fsync is the node's.
enum class FsyncMode { Batch, Always, Off };
struct QueueStorage {
  bool disk = false;  // [queue] store = disk (else memory)
  FsyncMode fsync = FsyncMode::Batch;
  uint32_t fsync_interval_ms = 5;
};

}  // namespace mg
