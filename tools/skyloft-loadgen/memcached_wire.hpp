// memcached_wire.hpp - the client side of the memcached text protocol (memcached 1.6 protocol.txt): the
// requests skyloft-loadgen sends (get, set) and a parser of the replies to them.
//
//   get <key>\r\n                             -> VALUE <key> <flags> <bytes>\r\n<data>\r\nEND\r\n | END\r\n
//   set <key> <flags> <exptime> <bytes>\r\n<data>\r\n -> STORED\r\n | NOT_STORED\r\n | EXISTS | NOT_FOUND
//   any                                       -> ERROR\r\n | CLIENT_ERROR <msg>\r\n | SERVER_ERROR <msg>\r\n
//
// Replies come in request order on a connection, so a client pairs them with a FIFO of its requests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace skyloft::wire::memcached {

// Keys are 1..250 printable bytes without spaces or control characters; anything else throws
// std::invalid_argument.
void append_get(std::string& out, std::string_view key);
void append_set(std::string& out, std::string_view key, std::uint32_t flags, std::string_view value);

enum class Reply {
  incomplete,    // more bytes needed (nothing consumed)
  hit,           // VALUE ... END
  miss,          // END
  stored,        // STORED
  not_stored,    // NOT_STORED, EXISTS, NOT_FOUND
  error,         // ERROR, CLIENT_ERROR ..., SERVER_ERROR ...: a reply, but a failed request
  malformed,     // not a reply to get or set: the stream cannot be trusted any more
};
const char* reply_name(Reply r);

// Parses the first reply in `buf`; on anything but incomplete and malformed, *consumed is its length.
Reply parse_reply(std::string_view buf, std::size_t* consumed);

}  // namespace skyloft::wire::memcached
