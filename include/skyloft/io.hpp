// io.hpp - task-aware I/O: sockets, files and fd readiness that park the calling task, not its worker.
//
// In a task, every call below prepares the operation on the current processor's I/O backend and parks the
// task; the completion wakes it through the wait table, on whichever worker it then lands. The kernel
// thread keeps running other tasks meanwhile. From a plain thread (not a task) the same calls simply
// block the thread (poll(2) plus non-blocking system calls), so the API is usable everywhere.
//
// Backends (chosen per runtime by Config::io_backend or SKYLOFT_IO_BACKEND):
//   uring  one io_uring per processor: submissions are batched at the scheduling poll point, completions
//          are reaped there (a look at the CQ tail); deadlines are linked timeouts; a parked worker with
//          operations in flight sleeps in its ring (IORING_OP_FUTEX_WAIT on its park word).
//   epoll  readiness: try the non-blocking call, else wait for readiness in the processor's epoll set.
//          Files are read and written directly (regular files are always "ready").
//   auto   (default) uring when the kernel allows it (not kernel.io_uring_disabled, not a seccomp profile
//          that forbids io_uring_setup, kernel >= 6.7 for the futex wait); otherwise epoll, announced by
//          one line on stderr.
//
// Errors: no call throws for an I/O failure. Every operation returns an error code:
//   Result<T>   value() and error(). error() empty means success. For transfers, value() is the number of
//               bytes moved, also when error() is set (the progress made before the error).
//   Status      (= std::error_code) for operations without a value; empty means success.
// Error codes are std::system_category errno values (compare with std::errc: connection_reset,
// connection_refused, broken_pipe, timed_out (a deadline passed), operation_canceled (runtime shutdown)),
// plus io::Error::eof from read_exact when the peer closed the stream before the requested bytes came.
// A closed peer is not an error for read(): it returns 0 bytes. Writes never raise SIGPIPE (EPIPE instead).
//
// Deadlines: every blocking operation takes an optional skyloft::Deadline (time.hpp; deadline_after(d)
// makes one from a timeout). When it passes, the operation is cancelled and returns std::errc::timed_out.
//
// Objects own their descriptors (closed by the destructor, or close()); they are move-only. Descriptors
// are non-blocking and close-on-exec. One task may read while another writes the same stream.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "skyloft/time.hpp"

namespace skyloft::io {

using Status = std::error_code;

// Errors of this layer that are not errno values.
enum class Error { eof = 1 };
const std::error_category& io_category() noexcept;
inline std::error_code make_error_code(Error e) noexcept { return {static_cast<int>(e), io_category()}; }

template <class T>
class Result {
 public:
  Result(T value) noexcept : value_(std::move(value)) {}                       // NOLINT: implicit success
  Result(std::error_code error, T partial = T{}) noexcept : value_(std::move(partial)), error_(error) {}
  bool ok() const noexcept { return !error_; }
  explicit operator bool() const noexcept { return ok(); }
  const std::error_code& error() const noexcept { return error_; }
  T& value() & noexcept { return value_; }
  const T& value() const& noexcept { return value_; }
  T&& value() && noexcept { return std::move(value_); }
  T* operator->() noexcept { return &value_; }
  T& operator*() & noexcept { return value_; }

 private:
  T value_;
  std::error_code error_;
};

// An IPv4 or IPv6 socket address.
class SocketAddr {
 public:
  SocketAddr() noexcept;
  // "127.0.0.1:8080", "[::1]:8080". Returns invalid_argument for anything else (no name resolution).
  static Result<SocketAddr> parse(std::string_view text);
  static SocketAddr ipv4(std::uint32_t host_order_addr, std::uint16_t port) noexcept;
  static SocketAddr loopback(std::uint16_t port) noexcept;  // 127.0.0.1:port
  std::uint16_t port() const noexcept;
  int family() const noexcept;
  std::string to_string() const;
  const sockaddr* raw() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* raw() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t size() const noexcept { return len_; }
  void set_size(socklen_t len) noexcept { len_ = len; }

 private:
  sockaddr_storage storage_;
  socklen_t len_;
};

// A descriptor owned by one object; closed on destruction.
class Fd {
 public:
  Fd() noexcept = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept;
  ~Fd() { close(); }
  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  Status close() noexcept;
  int release() noexcept { return std::exchange(fd_, -1); }

 private:
  int fd_ = -1;
};

class TcpStream {
 public:
  TcpStream() noexcept = default;
  explicit TcpStream(Fd fd) noexcept : fd_(std::move(fd)) {}
  static Result<TcpStream> connect(const SocketAddr& addr, Deadline deadline = kNoDeadline);
  // Up to `len` bytes; 0 means the peer closed its side (or len == 0).
  Result<std::size_t> read(void* buf, std::size_t len, Deadline deadline = kNoDeadline);
  // Up to `len` bytes (a short write is possible; see write_all).
  Result<std::size_t> write(const void* buf, std::size_t len, Deadline deadline = kNoDeadline);
  // Exactly `len` bytes, or an error (Error::eof if the peer closed first); value() is the bytes read.
  Result<std::size_t> read_exact(void* buf, std::size_t len, Deadline deadline = kNoDeadline);
  // All `len` bytes, or an error; value() is the bytes written.
  Result<std::size_t> write_all(const void* buf, std::size_t len, Deadline deadline = kNoDeadline);
  Status shutdown(int how = SHUT_WR) noexcept;  // SHUT_RD, SHUT_WR, SHUT_RDWR
  Status set_nodelay(bool on) noexcept;
  Status close() noexcept { return fd_.close(); }
  int fd() const noexcept { return fd_.get(); }
  Result<SocketAddr> peer_addr() const;

 private:
  Fd fd_;
};

class TcpListener {
 public:
  TcpListener() noexcept = default;
  // Binds (SO_REUSEADDR) and listens. Port 0 picks a free port (see local_addr()).
  static Result<TcpListener> bind(const SocketAddr& addr, int backlog = 1024);
  Result<TcpStream> accept(Deadline deadline = kNoDeadline, SocketAddr* peer = nullptr);
  Result<SocketAddr> local_addr() const;
  Status close() noexcept { return fd_.close(); }
  int fd() const noexcept { return fd_.get(); }

 private:
  explicit TcpListener(Fd fd) noexcept : fd_(std::move(fd)) {}
  Fd fd_;
};

class UdpSocket {
 public:
  UdpSocket() noexcept = default;
  static Result<UdpSocket> bind(const SocketAddr& addr);
  Result<std::size_t> send_to(const void* buf, std::size_t len, const SocketAddr& to, Deadline deadline = kNoDeadline);
  // One datagram (truncated to len); `from` receives the sender when not null.
  Result<std::size_t> recv_from(void* buf, std::size_t len, SocketAddr* from = nullptr, Deadline deadline = kNoDeadline);
  Result<SocketAddr> local_addr() const;
  Status close() noexcept { return fd_.close(); }
  int fd() const noexcept { return fd_.get(); }

 private:
  explicit UdpSocket(Fd fd) noexcept : fd_(std::move(fd)) {}
  Fd fd_;
};

class File {
 public:
  File() noexcept = default;
  // open(2) flags (O_RDONLY, O_RDWR | O_CREAT, ...); O_CLOEXEC is added.
  static Result<File> open(const std::string& path, int flags, mode_t mode = 0644);
  Result<std::size_t> read_at(void* buf, std::size_t len, std::uint64_t offset, Deadline deadline = kNoDeadline);
  Result<std::size_t> write_at(const void* buf, std::size_t len, std::uint64_t offset, Deadline deadline = kNoDeadline);
  Status fsync(Deadline deadline = kNoDeadline);
  Status close() noexcept { return fd_.close(); }
  int fd() const noexcept { return fd_.get(); }

 private:
  explicit File(Fd fd) noexcept : fd_(std::move(fd)) {}
  Fd fd_;
};

// Parks until `fd` (any pollable descriptor: socket, pipe, eventfd, ...) is readable / writable, or the
// deadline passes (timed_out). Hang-up and error conditions count as ready (the next call reports them).
Status wait_readable(int fd, Deadline deadline = kNoDeadline);
Status wait_writable(int fd, Deadline deadline = kNoDeadline);

// The backend the calling task's runtime uses: "uring", "epoll", or "thread" (a plain thread, or no
// runtime). Resolving "auto" happens at the first I/O call of a runtime.
const char* backend_name();
// Whether io_uring with everything the uring backend needs can be set up in this process.
bool uring_available();

}  // namespace skyloft::io

template <>
struct std::is_error_code_enum<skyloft::io::Error> : std::true_type {};
