// synthetic_wire.cpp - encoding and decoding of the synthetic binary protocol (synthetic_wire.hpp).
#include "synthetic_wire.hpp"

namespace skyloft::wire {
namespace {

// Explicit little-endian stores and loads: the layout does not depend on the host's byte order.
template <class T>
void put(std::uint8_t* p, T v) noexcept {
  for (std::size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(v) >> (8 * i));
}

template <class T>
T get(const std::uint8_t* p) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return static_cast<T>(v);
}

void encode(std::uint32_t magic, std::uint16_t code, std::uint64_t id, std::uint64_t service_ns,
            std::uint64_t send_ns, std::uint8_t* out) noexcept {
  put<std::uint32_t>(out, magic);
  put<std::uint16_t>(out + 4, kVersion);
  put<std::uint16_t>(out + 6, code);
  put<std::uint64_t>(out + 8, id);
  put<std::uint64_t>(out + 16, service_ns);
  put<std::uint64_t>(out + 24, send_ns);
}

// The checks common to both directions; on ok, *code is the op / status field.
Decode decode_header(const std::uint8_t* in, std::size_t len, std::uint32_t magic, std::uint16_t* code) noexcept {
  if (len < kMessageSize) return Decode::need_more;
  if (get<std::uint32_t>(in) != magic) return Decode::bad_magic;
  if (get<std::uint16_t>(in + 4) != kVersion) return Decode::bad_version;
  *code = get<std::uint16_t>(in + 6);
  return Decode::ok;
}

}  // namespace

const char* decode_name(Decode d) {
  switch (d) {
    case Decode::ok: return "ok";
    case Decode::need_more: return "need_more";
    case Decode::bad_magic: return "bad_magic";
    case Decode::bad_version: return "bad_version";
    case Decode::bad_op: return "bad_op";
    case Decode::bad_service: return "bad_service";
  }
  return "?";
}

void encode_request(const Request& r, std::uint8_t* out) noexcept {
  encode(kRequestMagic, static_cast<std::uint16_t>(r.op), r.id, r.service_ns, r.send_ns, out);
}

void encode_response(const Response& r, std::uint8_t* out) noexcept {
  encode(kResponseMagic, static_cast<std::uint16_t>(r.status), r.id, r.service_ns, r.send_ns, out);
}

Decode decode_request(const std::uint8_t* in, std::size_t len, Request* out) noexcept {
  std::uint16_t op = 0;
  if (Decode d = decode_header(in, len, kRequestMagic, &op); d != Decode::ok) return d;
  if (op > static_cast<std::uint16_t>(Op::set)) return Decode::bad_op;
  const std::uint64_t service = get<std::uint64_t>(in + 16);
  if (service == 0 || service > kMaxServiceNs) return Decode::bad_service;
  *out = Request{static_cast<Op>(op), get<std::uint64_t>(in + 8), service, get<std::uint64_t>(in + 24)};
  return Decode::ok;
}

Decode decode_response(const std::uint8_t* in, std::size_t len, Response* out) noexcept {
  std::uint16_t status = 0;
  if (Decode d = decode_header(in, len, kResponseMagic, &status); d != Decode::ok) return d;
  if (status > static_cast<std::uint16_t>(Status::rejected)) return Decode::bad_op;
  *out = Response{static_cast<Status>(status), get<std::uint64_t>(in + 8), get<std::uint64_t>(in + 16),
                  get<std::uint64_t>(in + 24)};
  return Decode::ok;
}

}  // namespace skyloft::wire
