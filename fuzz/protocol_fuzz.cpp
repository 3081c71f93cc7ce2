// protocol_fuzz.cpp - libFuzzer target for the skyloftd protocol parser.
//
// Properties checked on every input (ASan and UBSan catch reads out of bounds and undefined behaviour):
//   1. parse_message() never crashes, and a failure always carries a message;
//   2. a message it accepts is canonical: encode(parse(x)) == x, byte for byte;
//   3. the header/body path the daemon uses agrees with parse_message() on every input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "multiapp/protocol.hpp"

using namespace skyloft::multiapp;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> in(data, size);
  Parsed<Message> whole = parse_message(in);
  if (!whole.ok() && whole.error.message.empty()) std::abort();
  if (whole.ok()) {
    std::vector<std::uint8_t> again = encode(*whole.value);
    if (again.size() != size || !std::equal(again.begin(), again.end(), data)) std::abort();
  }

  // The daemon's path: a header first, then exactly `length` body bytes.
  Parsed<Header> h = parse_header(in);
  if (h.ok() && size >= kHeaderSize + h.value->length) {
    Parsed<Message> body = parse_body(*h.value, in.subspan(kHeaderSize, h.value->length));
    bool exact = size == kHeaderSize + h.value->length;
    if (exact && body.ok() != whole.ok()) std::abort();
  } else if (whole.ok()) {
    std::abort();  // parse_message accepted what the header check refuses, or more than it declared
  }
  return 0;
}
