// Test-only helpers for tests that speak HTTP to a server on loopback over raw sockets, so they
// see the exact bytes (header-only, never part of lms_http; used by http/server_test.cc and
// server/http_test.cc).
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>

namespace lmstream::http::testing {

// A socket connected to 127.0.0.1:port, with a 5 s receive timeout.
inline int connect_loopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

inline void send_all(int fd, const std::string& s) {
  ASSERT_EQ(::send(fd, s.data(), s.size(), MSG_NOSIGNAL), ssize_t(s.size()));
}

// Reads until `end` has arrived (or the peer closes); returns everything read.
inline std::string read_until(int fd, const std::string& end) {
  std::string got;
  char buf[4096];
  while (got.find(end) == std::string::npos) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, size_t(n));
  }
  return got;
}

// Reads until the peer closes; true when it did (rather than the 5 s receive timeout).
inline bool read_to_close(int fd, std::string* got = nullptr) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
    if (got) got->append(buf, size_t(n));
  }
}

}  // namespace lmstream::http::testing
