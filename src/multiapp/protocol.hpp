// protocol.hpp - the skyloftd wire protocol: message types, limits, a validating parser and an encoder.
//
// Every message is a fixed 16-byte header followed by a body of exactly `length` bytes. All integers are
// little-endian (x86-64 is the only target; the encoder and parser still spell the byte order out).
//
//   offset size field
//   0      4    magic    kMagic ("SKLD" read as a little-endian word)
//   4      2    version  kVersion; any other value is refused (no negotiation: both ends ship together)
//   6      2    type     MsgType
//   8      4    length   body length in bytes; bounded per type before any body byte is read
//   12     4    flags    reserved, must be 0
//
// Bodies (requests go app -> daemon, replies daemon -> app):
//   register      u8 class, u8 name_len, u16 demand (cores wanted), u32 pid, name[name_len]
//   unregister    u32 app_id, u32 generation
//   query         (empty)
//   registered    u32 app_id, u32 generation, u8 class, u8 ncores, u8 nfds, u8 max_apps,
//                 u32 region_version, u32 epoch, ncores x u16 core ids (ascending)
//   unregistered  u32 app_id, u32 generation
//   state         u32 daemon_pid, u32 epoch, u32 region_version, u16 ncores, u8 napps, u8 nfds
//   error         u16 code (ErrorCode), u16 text_len, text[text_len] (printable ASCII)
// A `registered` or `state` reply carries `nfds` file descriptors by SCM_RIGHTS (shm_layout.hpp says which).
//
// The parser validates every field: the header (magic, version, type, length within the type's bounds,
// flags), each enum, the name's length and charset, counts against their limits, the core ids (in range,
// strictly ascending) and that the declared fields use the body exactly (no truncation, no trailing bytes).
// It reads only inside the span it was given and reports the first problem as a ProtoError with a code and
// a message that names the field and the bad value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace skyloft::multiapp {

inline constexpr std::uint32_t kMagic = 0x444C4B53;  // bytes 'S' 'K' 'L' 'D'
inline constexpr std::uint16_t kVersion = 1;
inline constexpr std::size_t kHeaderSize = 16;
inline constexpr std::size_t kMaxBodySize = 512;  // no message type allows more
inline constexpr std::size_t kMaxMessageSize = kHeaderSize + kMaxBodySize;

inline constexpr std::size_t kMaxAppName = 32;
inline constexpr std::size_t kMaxErrorText = 255;
inline constexpr std::uint32_t kMaxApps = 16;          // app ids are 0 .. kMaxApps-1
inline constexpr std::uint32_t kMaxManagedCores = 64;  // cores one daemon manages
inline constexpr std::uint32_t kMaxCoreId = 1024;      // the core-list parser's limit
inline constexpr std::uint32_t kMaxFds = 3 + kMaxApps; // see shm_layout.hpp (RegionFds)

enum class MsgType : std::uint16_t {
  register_app = 1,
  unregister_app = 2,
  query = 3,
  registered = 0x81,
  unregistered = 0x82,
  state = 0x83,
  error = 0x84,
};

// Latency-critical apps get cores first; best-effort apps share what is left.
enum class AppClass : std::uint8_t { lc = 0, be = 1 };

// Error codes carried by error replies and by ProtoError. Values are never reused.
enum class ErrorCode : std::uint16_t {
  truncated = 1,        // fewer bytes than the header or the declared body
  oversized = 2,        // length above the type's bound
  bad_magic = 3,
  bad_version = 4,
  bad_type = 5,
  bad_flags = 6,
  bad_length = 7,       // length below the type's minimum, or not what the fields declare
  bad_enum = 8,         // class out of range
  bad_name = 9,         // empty, overlong or bad charset
  bad_count = 10,       // a count (cores, fds, apps, demand) outside its bounds
  bad_field = 11,       // any other field with an impossible value
  trailing_bytes = 12,  // bytes after the last declared field
  not_allowed = 20,     // peer uid/gid not in the allow lists
  unexpected = 21,      // a valid message that makes no sense here (a reply sent to the daemon, ...)
  no_free_slot = 22,    // kMaxApps apps already registered
  already_registered = 23,
  not_registered = 24,
  pid_mismatch = 25,    // the pid field is not the peer's pid (SO_PEERCRED)
  timeout = 26,         // a message stayed incomplete too long
  internal = 27,
};

std::string_view error_code_name(ErrorCode c) noexcept;
std::string_view msg_type_name(MsgType t) noexcept;
std::string_view app_class_name(AppClass c) noexcept;

struct ProtoError {
  ErrorCode code = ErrorCode::internal;
  std::string message;
};

struct Header {
  std::uint32_t magic = kMagic;
  std::uint16_t version = kVersion;
  MsgType type = MsgType::query;
  std::uint32_t length = 0;
  std::uint32_t flags = 0;
};

struct RegisterRequest {
  std::string name;
  AppClass app_class = AppClass::be;
  std::uint32_t pid = 0;
  std::uint16_t demand = 1;  // cores wanted, 1 .. kMaxManagedCores
};
struct UnregisterRequest {
  std::uint32_t app_id = 0;
  std::uint32_t generation = 0;
};
struct QueryRequest {};
struct RegisteredReply {
  std::uint32_t app_id = 0;
  std::uint32_t generation = 0;
  AppClass app_class = AppClass::be;
  std::uint8_t nfds = 0;
  std::uint8_t max_apps = kMaxApps;
  std::uint32_t region_version = 0;
  std::uint32_t epoch = 0;
  std::vector<std::uint16_t> cores;  // ascending core ids granted now (may be empty: waiting for a core)
};
struct UnregisteredReply {
  std::uint32_t app_id = 0;
  std::uint32_t generation = 0;
};
struct StateReply {
  std::uint32_t daemon_pid = 0;
  std::uint32_t epoch = 0;
  std::uint32_t region_version = 0;
  std::uint16_t ncores = 0;
  std::uint8_t napps = 0;
  std::uint8_t nfds = 0;
};
struct ErrorReply {
  ErrorCode code = ErrorCode::internal;
  std::string text;
};

using Message = std::variant<RegisterRequest, UnregisterRequest, QueryRequest, RegisteredReply,
                             UnregisteredReply, StateReply, ErrorReply>;

// Either a value or the first problem found.
template <class T>
struct Parsed {
  std::optional<T> value;
  ProtoError error;
  bool ok() const noexcept { return value.has_value(); }
};

// Validates the first kHeaderSize bytes of `bytes` (fewer: truncated). Checks magic, version, type, flags and
// the length against the type's bounds, so a receiver can refuse an oversized message before reading it.
Parsed<Header> parse_header(std::span<const std::uint8_t> bytes);
// Parses a body that a valid header announced; `body.size()` must equal `header.length`.
Parsed<Message> parse_body(const Header& header, std::span<const std::uint8_t> body);
// Parses exactly one whole message: fewer bytes than it declares is `truncated`, more is `trailing_bytes`.
Parsed<Message> parse_message(std::span<const std::uint8_t> bytes);

// Encodes a message (header + body). The encoder checks what the parser checks and throws
// std::invalid_argument on a value the parser would refuse, so a bad message is never sent by us.
std::vector<std::uint8_t> encode(const Message& m);

MsgType type_of(const Message& m) noexcept;
bool is_request(MsgType t) noexcept;

// An error reply whose text is cut to kMaxErrorText and made printable (non-printable bytes become '?'),
// so any message, even one quoting a peer's bytes, can be sent.
ErrorReply make_error_reply(ErrorCode code, std::string_view text);

// The app name rule: 1 .. kMaxAppName characters from [A-Za-z0-9._-], starting with a letter or digit.
// Returns an empty string if fine, else why not.
std::string check_app_name(std::string_view name);

}  // namespace skyloft::multiapp
