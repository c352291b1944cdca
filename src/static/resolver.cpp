// getaddrinfo(), freeaddrinfo() and getnameinfo() for the statically linked binary (meson -Dstatic=true only; the
// other name-service functions are in libc_stubs.cpp).
//
// glibc's own getaddrinfo() loads NSS modules (libnss_files, libnss_dns) with dlopen at run time; a
// static binary on a host without the same glibc, or in an empty root, then cannot resolve anything,
// and linking it draws the "requires at runtime the shared libraries" warning. Defining both symbols
// here keeps glibc's getaddrinfo.o out of the link: every caller (libuv's uv_getaddrinfo for mesh
// seeds, our listener binding, OpenSSL's BIO_lookup) gets this one. Names are resolved by c-ares,
// which reads /etc/hosts and asks the servers of /etc/resolv.conf itself (docs/decisions.md).
//
// Contract: the subset of POSIX getaddrinfo() that meshgate and its libraries use. The service must be
// numeric (a port) or null; a null host means the wildcard address with AI_PASSIVE, else loopback.
// Calls block (libuv runs them on its thread pool) for at most c-ares's timeouts (resolv.conf
// `options timeout/attempts`), and are thread-safe: each call has its own c-ares channel.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <ares.h>

#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <mutex>

namespace {

// One result entry with its address in the same allocation, so freeaddrinfo() frees one block each.
addrinfo* make_entry(int family, int socktype, int protocol, const sockaddr* sa, socklen_t len) {
  auto* ai = static_cast<addrinfo*>(std::calloc(1, sizeof(addrinfo) + sizeof(sockaddr_storage)));
  if (!ai) return nullptr;
  ai->ai_family = family;
  ai->ai_socktype = socktype;
  ai->ai_protocol = protocol;
  ai->ai_addrlen = len;
  ai->ai_addr = reinterpret_cast<sockaddr*>(ai + 1);
  std::memcpy(ai->ai_addr, sa, len);
  return ai;
}

// Appends one entry per requested socket type (0 means both TCP and UDP, as glibc does); false when
// out of memory.
bool append(addrinfo**& tail, const addrinfo& hints, const sockaddr* sa, socklen_t len) {
  static const int kTypes[][2] = {{SOCK_STREAM, IPPROTO_TCP}, {SOCK_DGRAM, IPPROTO_UDP}};
  for (const auto& t : kTypes) {
    if (hints.ai_socktype != 0 && hints.ai_socktype != t[0]) continue;
    addrinfo* ai = make_entry(sa->sa_family, t[0], t[1], sa, len);
    if (!ai) return false;
    *tail = ai;
    tail = &ai->ai_next;
  }
  return true;
}

// The address of a numeric host (or the wildcard/loopback for a null one) into `out`; false when the
// host is not a numeric address of an allowed family.
bool numeric(const char* host, int family, bool passive, uint16_t port, sockaddr_storage& out, socklen_t& len) {
  std::memset(&out, 0, sizeof out);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (family != AF_INET6) {
    v4->sin_family = AF_INET;
    v4->sin_port = port;
    len = sizeof *v4;
    if (!host) {
      v4->sin_addr.s_addr = htonl(passive ? INADDR_ANY : INADDR_LOOPBACK);
      return true;
    }
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) return true;
  }
  if (family != AF_INET) {
    std::memset(&out, 0, sizeof out);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = port;
    len = sizeof *v6;
    if (!host) {
      v6->sin6_addr = passive ? in6addr_any : in6addr_loopback;
      return true;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) return true;
  }
  return false;
}

struct Lookup {
  bool done = false;
  int status = ARES_ENOTFOUND;
  ares_addrinfo* result = nullptr;
};

int eai_of(int ares_status) {
  switch (ares_status) {
    case ARES_ENOTFOUND:
    case ARES_ENONAME:
    case ARES_ENODATA:
      return EAI_NONAME;
    case ARES_ENOMEM:
      return EAI_MEMORY;
    case ARES_EBADFAMILY:
      return EAI_FAMILY;
    default:
      return EAI_AGAIN;
  }
}

// Runs one c-ares lookup of `host` to completion on a private channel; returns an EAI_ code or 0.
int lookup(const char* host, int family, ares_addrinfo** out) {
  static std::once_flag init_once;
  static int init_status = ARES_SUCCESS;
  std::call_once(init_once, [] { init_status = ares_library_init(ARES_LIB_INIT_ALL); });
  if (init_status != ARES_SUCCESS) return EAI_FAIL;

  ares_channel channel = nullptr;
  if (ares_init(&channel) != ARES_SUCCESS) return EAI_FAIL;
  ares_addrinfo_hints hints{};
  hints.ai_family = family;
  hints.ai_socktype = SOCK_STREAM;
  Lookup lk;
  ares_getaddrinfo(channel, host, nullptr, &hints, [](void* arg, int status, int, ares_addrinfo* res) {
    auto* l = static_cast<Lookup*>(arg);
    l->done = true;
    l->status = status;
    l->result = res;
  }, &lk);
  while (!lk.done) {
    ares_socket_t socks[ARES_GETSOCK_MAXNUM];
    int mask = ares_getsock(channel, socks, ARES_GETSOCK_MAXNUM);
    pollfd fds[ARES_GETSOCK_MAXNUM];
    nfds_t n = 0;
    for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
      short ev = 0;
      if (ARES_GETSOCK_READABLE(mask, i)) ev |= POLLIN;
      if (ARES_GETSOCK_WRITABLE(mask, i)) ev |= POLLOUT;
      if (ev) fds[n++] = pollfd{socks[i], ev, 0};
    }
    if (n == 0) break;  // nothing in flight and no answer: c-ares has given up
    timeval tv{};
    timeval* tvp = ares_timeout(channel, nullptr, &tv);
    int ms = tvp ? static_cast<int>(tvp->tv_sec * 1000 + tvp->tv_usec / 1000) : 1000;
    if (poll(fds, n, ms) < 0 && errno != EINTR) break;
    // ares_process_fd on each ready socket, then once with none to run the timeouts.
    for (nfds_t i = 0; i < n; i++) {
      ares_socket_t r = (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) ? fds[i].fd : ARES_SOCKET_BAD;
      ares_socket_t w = (fds[i].revents & POLLOUT) ? fds[i].fd : ARES_SOCKET_BAD;
      if (r != ARES_SOCKET_BAD || w != ARES_SOCKET_BAD) ares_process_fd(channel, r, w);
    }
    ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  }
  ares_destroy(channel);  // calls back with ARES_EDESTRUCTION if still pending
  if (lk.status != ARES_SUCCESS) {
    if (lk.result) ares_freeaddrinfo(lk.result);
    return eai_of(lk.status);
  }
  *out = lk.result;
  return 0;
}

}  // namespace

extern "C" int getaddrinfo(const char* host, const char* service, const addrinfo* hints_in, addrinfo** res) {
  if (!res || (!host && !service)) return EAI_NONAME;
  *res = nullptr;
  addrinfo hints{};
  if (hints_in) hints = *hints_in;
  hints.ai_family = hints_in ? hints_in->ai_family : AF_UNSPEC;
  if (hints.ai_family != AF_UNSPEC && hints.ai_family != AF_INET && hints.ai_family != AF_INET6) return EAI_FAMILY;

  uint16_t port = 0;
  if (service && *service) {
    char* end = nullptr;
    errno = 0;
    long p = std::strtol(service, &end, 10);
    if (*end != '\0' || errno != 0 || p < 0 || p > 65535) return EAI_SERVICE;  // no services database
    port = htons(static_cast<uint16_t>(p));
  }

  addrinfo* head = nullptr;
  addrinfo** tail = &head;
  sockaddr_storage ss;
  socklen_t len = 0;
  bool passive = hints.ai_flags & AI_PASSIVE;
  if (!host || numeric(host, hints.ai_family, passive, port, ss, len)) {
    if (!host) {
      // Both wildcards/loopbacks for AF_UNSPEC, IPv4 first (glibc's order for a null host).
      for (int fam : {AF_INET, AF_INET6}) {
        if (hints.ai_family != AF_UNSPEC && hints.ai_family != fam) continue;
        numeric(nullptr, fam, passive, port, ss, len);
        if (!append(tail, hints, reinterpret_cast<sockaddr*>(&ss), len)) {
          freeaddrinfo(head);
          return EAI_MEMORY;
        }
      }
    } else if (!append(tail, hints, reinterpret_cast<sockaddr*>(&ss), len)) {
      return EAI_MEMORY;
    }
    *res = head;
    return 0;
  }
  if (hints.ai_flags & AI_NUMERICHOST) return EAI_NONAME;

  ares_addrinfo* found = nullptr;
  int rc = lookup(host, hints.ai_family, &found);
  if (rc != 0) return rc;
  for (ares_addrinfo_node* n = found->nodes; n; n = n->ai_next) {
    if (n->ai_family != AF_INET && n->ai_family != AF_INET6) continue;
    std::memcpy(&ss, n->ai_addr, n->ai_addrlen);
    if (n->ai_family == AF_INET) reinterpret_cast<sockaddr_in*>(&ss)->sin_port = port;
    else reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = port;
    if (!append(tail, hints, reinterpret_cast<sockaddr*>(&ss), n->ai_addrlen)) {
      ares_freeaddrinfo(found);
      freeaddrinfo(head);
      return EAI_MEMORY;
    }
  }
  ares_freeaddrinfo(found);
  if (!head) return EAI_NONAME;
  *res = head;
  return 0;
}

extern "C" void freeaddrinfo(addrinfo* ai) {
  while (ai) {
    addrinfo* next = ai->ai_next;
    std::free(ai);
    ai = next;
  }
}

// Numeric only (NI_NUMERICHOST, NI_NUMERICSERV): there is no hosts or services database to ask for
// names. OpenSSL's BIO_ADDR_hostname_string is the caller it exists for; meshgate does not use it.
extern "C" int getnameinfo(const sockaddr* sa, socklen_t salen, char* host, socklen_t hostlen, char* serv,
                           socklen_t servlen, int flags) {
  if (host && hostlen && !(flags & NI_NUMERICHOST)) return EAI_NONAME;
  const void* addr = nullptr;
  uint16_t port = 0;
  if (sa->sa_family == AF_INET && salen >= sizeof(sockaddr_in)) {
    addr = &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr;
    port = ntohs(reinterpret_cast<const sockaddr_in*>(sa)->sin_port);
  } else if (sa->sa_family == AF_INET6 && salen >= sizeof(sockaddr_in6)) {
    addr = &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
    port = ntohs(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port);
  } else {
    return EAI_FAMILY;
  }
  if (host && hostlen && !inet_ntop(sa->sa_family, addr, host, hostlen)) return EAI_OVERFLOW;
  if (serv && servlen) {
    int n = std::snprintf(serv, servlen, "%u", static_cast<unsigned>(port));
    if (n < 0 || static_cast<socklen_t>(n) >= servlen) return EAI_OVERFLOW;
  }
  return 0;
}
