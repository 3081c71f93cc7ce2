// synthetic_wire.hpp - the binary protocol between skyloft-loadgen and the synthetic server.
//
// One request and one response are 32 bytes each, all fields little-endian, no padding:
//
//   offset size field        request                                   response
//   0      4    magic        kRequestMagic ("SKYQ")                    kResponseMagic ("SKYP")
//   4      2    version      kVersion (1)                              kVersion
//   6      2    op / status  Op: 0 GET, 1 SCAN, 2 SET                  Status: 0 ok, 1 rejected
//   8      8    id           chosen by the client, echoed              the request's id
//   16     8    service_ns   how long the server spins (1 .. 10 s)     echoed
//   24     8    send_ns      the client's INTENDED send time (its      echoed
//                            clock; the server does not interpret it)
//
// Over TCP the messages follow each other on the stream (a server answers in any order when it runs
// requests concurrently); over UDP one datagram carries exactly one message. The echoed send time lets a
// client measure from the intended send time without keeping state; the op is only a label for the
// server (a synthetic server spins service_ns whatever the op).
//
// A message that is not one of these is malformed: the server closes a TCP stream (it cannot resynchronize)
// and drops a UDP datagram.
#pragma once

#include <cstddef>
#include <cstdint>

namespace skyloft::wire {

inline constexpr std::size_t kMessageSize = 32;
inline constexpr std::uint32_t kRequestMagic = 0x51594b53;   // "SKYQ" as little-endian bytes
inline constexpr std::uint32_t kResponseMagic = 0x50594b53;  // "SKYP"
inline constexpr std::uint16_t kVersion = 1;
inline constexpr std::uint64_t kMaxServiceNs = 10'000'000'000;  // 10 s

enum class Op : std::uint16_t { get = 0, scan = 1, set = 2 };
enum class Status : std::uint16_t { ok = 0, rejected = 1 };

struct Request {
  Op op = Op::get;
  std::uint64_t id = 0;
  std::uint64_t service_ns = 0;
  std::uint64_t send_ns = 0;
};

struct Response {
  Status status = Status::ok;
  std::uint64_t id = 0;
  std::uint64_t service_ns = 0;
  std::uint64_t send_ns = 0;
};

enum class Decode {
  ok,           // one message decoded from the first kMessageSize bytes
  need_more,    // fewer than kMessageSize bytes
  bad_magic,
  bad_version,
  bad_op,       // request: op not in Op; response: status not in Status
  bad_service,  // request: service_ns 0 or above kMaxServiceNs
};
const char* decode_name(Decode d);

// Writes exactly kMessageSize bytes at `out`.
void encode_request(const Request& r, std::uint8_t* out) noexcept;
void encode_response(const Response& r, std::uint8_t* out) noexcept;
// Decodes the first message of `len` bytes at `in`.
Decode decode_request(const std::uint8_t* in, std::size_t len, Request* out) noexcept;
Decode decode_response(const std::uint8_t* in, std::size_t len, Response* out) noexcept;

}  // namespace skyloft::wire
