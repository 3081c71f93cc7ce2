// protocol.cpp - parsing and encoding skyloftd messages; every read goes through a bounds-checked Reader.
#include "multiapp/protocol.hpp"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

namespace skyloft::multiapp {
namespace {

constexpr std::uint32_t kPidMax = 4'194'304;  // PID_MAX_LIMIT on 64-bit Linux

// Body bounds per type: [min, max] bytes.
struct Bounds {
  std::size_t min, max;
};

constexpr std::size_t kRegisterFixed = 8;
constexpr std::size_t kRegisteredFixed = 20;
constexpr std::size_t kErrorFixed = 4;

std::optional<Bounds> bounds_of(MsgType t) {
  switch (t) {
    case MsgType::register_app: return Bounds{kRegisterFixed + 1, kRegisterFixed + kMaxAppName};
    case MsgType::unregister_app: return Bounds{8, 8};
    case MsgType::query: return Bounds{0, 0};
    case MsgType::registered: return Bounds{kRegisteredFixed, kRegisteredFixed + 2 * kMaxManagedCores};
    case MsgType::unregistered: return Bounds{8, 8};
    case MsgType::state: return Bounds{16, 16};
    case MsgType::error: return Bounds{kErrorFixed, kErrorFixed + kMaxErrorText};
  }
  return std::nullopt;
}

bool known_error_code(std::uint16_t v) {
  return (v >= 1 && v <= 12) || (v >= 20 && v <= 27);
}

// A cursor over a span; every read checks that the bytes are there.
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> b) : b_(b) {}
  bool u8(std::uint8_t& v) {
    if (left() < 1) return false;
    v = b_[pos_++];
    return true;
  }
  bool u16(std::uint16_t& v) {
    if (left() < 2) return false;
    v = static_cast<std::uint16_t>(b_[pos_] | (b_[pos_ + 1] << 8));
    pos_ += 2;
    return true;
  }
  bool u32(std::uint32_t& v) {
    if (left() < 4) return false;
    v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | b_[pos_ + static_cast<std::size_t>(i)];
    pos_ += 4;
    return true;
  }
  bool bytes(std::size_t n, std::string& out) {
    if (left() < n) return false;
    out.assign(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return true;
  }
  std::size_t left() const { return b_.size() - pos_; }

 private:
  std::span<const std::uint8_t> b_;
  std::size_t pos_ = 0;
};

class Writer {
 public:
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::uint16_t v) {
    out_.push_back(static_cast<std::uint8_t>(v));
    out_.push_back(static_cast<std::uint8_t>(v >> 8));
  }
  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void bytes(std::string_view s) { out_.insert(out_.end(), s.begin(), s.end()); }
  std::vector<std::uint8_t>& data() { return out_; }

 private:
  std::vector<std::uint8_t> out_;
};

template <class T>
Parsed<T> fail(ErrorCode c, std::string msg) {
  Parsed<T> p;
  p.error = ProtoError{c, std::move(msg)};
  return p;
}

template <class T>
Parsed<Message> done(T v) {
  Parsed<Message> p;
  p.value = Message(std::move(v));
  return p;
}

Parsed<Message> short_body(MsgType t, std::string_view field) {
  return fail<Message>(ErrorCode::truncated, fmt::format("{}: body ends inside field '{}'", msg_type_name(t), field));
}

Parsed<Message> check_end(MsgType t, const Reader& r, Parsed<Message> p) {
  if (p.ok() && r.left() != 0) {
    return fail<Message>(ErrorCode::trailing_bytes,
                         fmt::format("{}: {} byte(s) after the last field", msg_type_name(t), r.left()));
  }
  return p;
}

std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char ch : s) {
    if (ch >= 0x20 && ch < 0x7f) out += static_cast<char>(ch);
    else out += fmt::format("\\x{:02x}", ch);
  }
  return out;
}

Parsed<Message> parse_register(Reader& r) {
  constexpr MsgType t = MsgType::register_app;
  std::uint8_t cls = 0, name_len = 0;
  std::uint16_t demand = 0;
  std::uint32_t pid = 0;
  if (!r.u8(cls)) return short_body(t, "class");
  if (!r.u8(name_len)) return short_body(t, "name_len");
  if (!r.u16(demand)) return short_body(t, "demand");
  if (!r.u32(pid)) return short_body(t, "pid");
  if (cls > static_cast<std::uint8_t>(AppClass::be)) {
    return fail<Message>(ErrorCode::bad_enum, fmt::format("register: class {} is neither 0 (lc) nor 1 (be)", cls));
  }
  if (name_len == 0 || name_len > kMaxAppName) {
    return fail<Message>(ErrorCode::bad_name,
                         fmt::format("register: name length {} (allowed 1..{})", name_len, kMaxAppName));
  }
  if (demand == 0 || demand > kMaxManagedCores) {
    return fail<Message>(ErrorCode::bad_count,
                         fmt::format("register: demand {} cores (allowed 1..{})", demand, kMaxManagedCores));
  }
  if (pid == 0 || pid > kPidMax) {
    return fail<Message>(ErrorCode::bad_field, fmt::format("register: pid {} (allowed 1..{})", pid, kPidMax));
  }
  RegisterRequest m;
  if (!r.bytes(name_len, m.name)) {
    return fail<Message>(ErrorCode::truncated,
                         fmt::format("register: name_len {} but only {} name byte(s) in the body", name_len, r.left()));
  }
  if (std::string why = check_app_name(m.name); !why.empty()) {
    return fail<Message>(ErrorCode::bad_name, fmt::format("register: {}", why));
  }
  m.app_class = static_cast<AppClass>(cls);
  m.pid = pid;
  m.demand = demand;
  return check_end(t, r, done(std::move(m)));
}

template <class T>
Parsed<Message> parse_id_gen(MsgType t, Reader& r) {
  T m;
  if (!r.u32(m.app_id)) return short_body(t, "app_id");
  if (!r.u32(m.generation)) return short_body(t, "generation");
  if (m.app_id >= kMaxApps) {
    return fail<Message>(ErrorCode::bad_field,
                         fmt::format("{}: app_id {} (allowed 0..{})", msg_type_name(t), m.app_id, kMaxApps - 1));
  }
  if (m.generation == 0) {
    return fail<Message>(ErrorCode::bad_field, fmt::format("{}: generation 0 (generations start at 1)", msg_type_name(t)));
  }
  return check_end(t, r, done(std::move(m)));
}

Parsed<Message> parse_registered(Reader& r) {
  constexpr MsgType t = MsgType::registered;
  RegisteredReply m;
  std::uint8_t cls = 0, ncores = 0;
  if (!r.u32(m.app_id)) return short_body(t, "app_id");
  if (!r.u32(m.generation)) return short_body(t, "generation");
  if (!r.u8(cls)) return short_body(t, "class");
  if (!r.u8(ncores)) return short_body(t, "ncores");
  if (!r.u8(m.nfds)) return short_body(t, "nfds");
  if (!r.u8(m.max_apps)) return short_body(t, "max_apps");
  if (!r.u32(m.region_version)) return short_body(t, "region_version");
  if (!r.u32(m.epoch)) return short_body(t, "epoch");
  if (m.app_id >= kMaxApps) {
    return fail<Message>(ErrorCode::bad_field, fmt::format("registered: app_id {} (allowed 0..{})", m.app_id, kMaxApps - 1));
  }
  if (m.generation == 0) return fail<Message>(ErrorCode::bad_field, "registered: generation 0 (generations start at 1)");
  if (cls > static_cast<std::uint8_t>(AppClass::be)) {
    return fail<Message>(ErrorCode::bad_enum, fmt::format("registered: class {} is neither 0 (lc) nor 1 (be)", cls));
  }
  if (ncores > kMaxManagedCores) {
    return fail<Message>(ErrorCode::bad_count, fmt::format("registered: ncores {} (max {})", ncores, kMaxManagedCores));
  }
  if (m.nfds == 0 || m.nfds > kMaxFds) {
    return fail<Message>(ErrorCode::bad_count, fmt::format("registered: nfds {} (allowed 1..{})", m.nfds, kMaxFds));
  }
  if (m.max_apps == 0 || m.max_apps > kMaxApps || m.app_id >= m.max_apps) {
    return fail<Message>(ErrorCode::bad_count,
                         fmt::format("registered: max_apps {} (allowed {}..{})", m.max_apps, m.app_id + 1, kMaxApps));
  }
  if (m.region_version == 0) return fail<Message>(ErrorCode::bad_field, "registered: region_version 0");
  for (unsigned i = 0; i < ncores; ++i) {
    std::uint16_t c = 0;
    if (!r.u16(c)) return short_body(t, fmt::format("cores[{}]", i));
    if (c >= kMaxCoreId) {
      return fail<Message>(ErrorCode::bad_field, fmt::format("registered: core {} out of range (max {})", c, kMaxCoreId - 1));
    }
    if (!m.cores.empty() && c <= m.cores.back()) {
      return fail<Message>(ErrorCode::bad_field,
                           fmt::format("registered: core list not strictly ascending ({} after {})", c, m.cores.back()));
    }
    m.cores.push_back(c);
  }
  m.app_class = static_cast<AppClass>(cls);
  return check_end(t, r, done(std::move(m)));
}

Parsed<Message> parse_state(Reader& r) {
  constexpr MsgType t = MsgType::state;
  StateReply m;
  if (!r.u32(m.daemon_pid)) return short_body(t, "daemon_pid");
  if (!r.u32(m.epoch)) return short_body(t, "epoch");
  if (!r.u32(m.region_version)) return short_body(t, "region_version");
  if (!r.u16(m.ncores)) return short_body(t, "ncores");
  if (!r.u8(m.napps)) return short_body(t, "napps");
  if (!r.u8(m.nfds)) return short_body(t, "nfds");
  if (m.daemon_pid == 0 || m.daemon_pid > kPidMax) {
    return fail<Message>(ErrorCode::bad_field, fmt::format("state: daemon_pid {} (allowed 1..{})", m.daemon_pid, kPidMax));
  }
  if (m.region_version == 0) return fail<Message>(ErrorCode::bad_field, "state: region_version 0");
  if (m.ncores == 0 || m.ncores > kMaxManagedCores) {
    return fail<Message>(ErrorCode::bad_count, fmt::format("state: ncores {} (allowed 1..{})", m.ncores, kMaxManagedCores));
  }
  if (m.napps > kMaxApps) {
    return fail<Message>(ErrorCode::bad_count, fmt::format("state: napps {} (max {})", m.napps, kMaxApps));
  }
  if (m.nfds > kMaxFds) return fail<Message>(ErrorCode::bad_count, fmt::format("state: nfds {} (max {})", m.nfds, kMaxFds));
  return check_end(t, r, done(std::move(m)));
}

Parsed<Message> parse_error(Reader& r) {
  constexpr MsgType t = MsgType::error;
  std::uint16_t code = 0, len = 0;
  if (!r.u16(code)) return short_body(t, "code");
  if (!r.u16(len)) return short_body(t, "text_len");
  if (!known_error_code(code)) return fail<Message>(ErrorCode::bad_enum, fmt::format("error: unknown error code {}", code));
  if (len > kMaxErrorText) {
    return fail<Message>(ErrorCode::bad_count, fmt::format("error: text_len {} (max {})", len, kMaxErrorText));
  }
  ErrorReply m;
  m.code = static_cast<ErrorCode>(code);
  if (!r.bytes(len, m.text)) {
    return fail<Message>(ErrorCode::truncated,
                         fmt::format("error: text_len {} but only {} text byte(s) in the body", len, r.left()));
  }
  for (unsigned char ch : m.text) {
    if (ch < 0x20 || ch >= 0x7f) {
      return fail<Message>(ErrorCode::bad_field, fmt::format("error: text byte 0x{:02x} is not printable ASCII", ch));
    }
  }
  return check_end(t, r, done(std::move(m)));
}

}  // namespace

std::string_view error_code_name(ErrorCode c) noexcept {
  switch (c) {
    case ErrorCode::truncated: return "truncated";
    case ErrorCode::oversized: return "oversized";
    case ErrorCode::bad_magic: return "bad_magic";
    case ErrorCode::bad_version: return "bad_version";
    case ErrorCode::bad_type: return "bad_type";
    case ErrorCode::bad_flags: return "bad_flags";
    case ErrorCode::bad_length: return "bad_length";
    case ErrorCode::bad_enum: return "bad_enum";
    case ErrorCode::bad_name: return "bad_name";
    case ErrorCode::bad_count: return "bad_count";
    case ErrorCode::bad_field: return "bad_field";
    case ErrorCode::trailing_bytes: return "trailing_bytes";
    case ErrorCode::not_allowed: return "not_allowed";
    case ErrorCode::unexpected: return "unexpected";
    case ErrorCode::no_free_slot: return "no_free_slot";
    case ErrorCode::already_registered: return "already_registered";
    case ErrorCode::not_registered: return "not_registered";
    case ErrorCode::pid_mismatch: return "pid_mismatch";
    case ErrorCode::timeout: return "timeout";
    case ErrorCode::internal: return "internal";
  }
  return "unknown";
}

std::string_view msg_type_name(MsgType t) noexcept {
  switch (t) {
    case MsgType::register_app: return "register";
    case MsgType::unregister_app: return "unregister";
    case MsgType::query: return "query";
    case MsgType::registered: return "registered";
    case MsgType::unregistered: return "unregistered";
    case MsgType::state: return "state";
    case MsgType::error: return "error";
  }
  return "unknown";
}

std::string_view app_class_name(AppClass c) noexcept { return c == AppClass::lc ? "lc" : "be"; }

std::string check_app_name(std::string_view name) {
  if (name.empty()) return "app name is empty";
  if (name.size() > kMaxAppName) {
    return fmt::format("app name is {} characters long (max {})", name.size(), kMaxAppName);
  }
  for (std::size_t i = 0; i < name.size(); ++i) {
    unsigned char ch = static_cast<unsigned char>(name[i]);
    bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
    if (i == 0 && !alnum) {
      return fmt::format("app name '{}' must start with a letter or digit", printable(name));
    }
    if (!alnum && ch != '.' && ch != '_' && ch != '-') {
      return fmt::format("app name '{}' has character '{}' at {} (allowed: A-Z a-z 0-9 . _ -)", printable(name),
                         printable(name.substr(i, 1)), i);
    }
  }
  return {};
}

Parsed<Header> parse_header(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < kHeaderSize) {
    return fail<Header>(ErrorCode::truncated,
                        fmt::format("message header is {} byte(s), needs {}", bytes.size(), kHeaderSize));
  }
  Reader r(bytes.first(kHeaderSize));
  Header h;
  std::uint16_t type = 0;
  r.u32(h.magic);
  r.u16(h.version);
  r.u16(type);
  r.u32(h.length);
  r.u32(h.flags);
  if (h.magic != kMagic) {
    return fail<Header>(ErrorCode::bad_magic,
                        fmt::format("bad magic 0x{:08x} (expected 0x{:08x}: not a skyloftd message)", h.magic, kMagic));
  }
  if (h.version != kVersion) {
    return fail<Header>(ErrorCode::bad_version,
                        fmt::format("unsupported protocol version {} (this side speaks {})", h.version, kVersion));
  }
  h.type = static_cast<MsgType>(type);
  std::optional<Bounds> b = bounds_of(h.type);
  if (!b) return fail<Header>(ErrorCode::bad_type, fmt::format("unknown message type 0x{:04x}", type));
  if (h.flags != 0) return fail<Header>(ErrorCode::bad_flags, fmt::format("reserved flags 0x{:08x} must be 0", h.flags));
  if (h.length > b->max) {
    return fail<Header>(ErrorCode::oversized, fmt::format("{} body of {} bytes (max {})", msg_type_name(h.type),
                                                          h.length, b->max));
  }
  if (h.length < b->min) {
    return fail<Header>(ErrorCode::bad_length, fmt::format("{} body of {} bytes (min {})", msg_type_name(h.type),
                                                           h.length, b->min));
  }
  Parsed<Header> p;
  p.value = h;
  return p;
}

Parsed<Message> parse_body(const Header& h, std::span<const std::uint8_t> body) {
  if (body.size() != h.length) {
    return fail<Message>(body.size() < h.length ? ErrorCode::truncated : ErrorCode::trailing_bytes,
                         fmt::format("{} body has {} bytes, the header declared {}", msg_type_name(h.type),
                                     body.size(), h.length));
  }
  Reader r(body);
  switch (h.type) {
    case MsgType::register_app: return parse_register(r);
    case MsgType::unregister_app: return parse_id_gen<UnregisterRequest>(h.type, r);
    case MsgType::query: return done(QueryRequest{});
    case MsgType::registered: return parse_registered(r);
    case MsgType::unregistered: return parse_id_gen<UnregisteredReply>(h.type, r);
    case MsgType::state: return parse_state(r);
    case MsgType::error: return parse_error(r);
  }
  return fail<Message>(ErrorCode::bad_type, fmt::format("unknown message type 0x{:04x}", static_cast<unsigned>(h.type)));
}

Parsed<Message> parse_message(std::span<const std::uint8_t> bytes) {
  Parsed<Header> h = parse_header(bytes);
  if (!h.ok()) return fail<Message>(h.error.code, std::move(h.error.message));
  std::size_t total = kHeaderSize + h.value->length;
  if (bytes.size() < total) {
    return fail<Message>(ErrorCode::truncated, fmt::format("{} message has {} bytes, the header declared {}",
                                                           msg_type_name(h.value->type), bytes.size(), total));
  }
  if (bytes.size() > total) {
    return fail<Message>(ErrorCode::trailing_bytes, fmt::format("{} byte(s) after a whole {} message",
                                                                bytes.size() - total, msg_type_name(h.value->type)));
  }
  return parse_body(*h.value, bytes.subspan(kHeaderSize));
}

MsgType type_of(const Message& m) noexcept {
  constexpr MsgType kTypes[] = {MsgType::register_app, MsgType::unregister_app, MsgType::query, MsgType::registered,
                                MsgType::unregistered, MsgType::state, MsgType::error};
  return kTypes[m.index()];
}

ErrorReply make_error_reply(ErrorCode code, std::string_view text) {
  ErrorReply e;
  e.code = code;
  for (unsigned char ch : text) {
    if (e.text.size() == kMaxErrorText) break;
    e.text += (ch >= 0x20 && ch < 0x7f) ? static_cast<char>(ch) : '?';
  }
  return e;
}

bool is_request(MsgType t) noexcept {
  return t == MsgType::register_app || t == MsgType::unregister_app || t == MsgType::query;
}

std::vector<std::uint8_t> encode(const Message& m) {
  Writer body;
  if (const auto* v = std::get_if<RegisterRequest>(&m)) {
    body.u8(static_cast<std::uint8_t>(v->app_class));
    body.u8(static_cast<std::uint8_t>(std::min<std::size_t>(v->name.size(), 255)));
    body.u16(v->demand);
    body.u32(v->pid);
    body.bytes(std::string_view(v->name).substr(0, 255));
  } else if (const auto* v = std::get_if<UnregisterRequest>(&m)) {
    body.u32(v->app_id);
    body.u32(v->generation);
  } else if (std::holds_alternative<QueryRequest>(m)) {
  } else if (const auto* v = std::get_if<RegisteredReply>(&m)) {
    body.u32(v->app_id);
    body.u32(v->generation);
    body.u8(static_cast<std::uint8_t>(v->app_class));
    body.u8(static_cast<std::uint8_t>(std::min<std::size_t>(v->cores.size(), 255)));
    body.u8(v->nfds);
    body.u8(v->max_apps);
    body.u32(v->region_version);
    body.u32(v->epoch);
    for (std::size_t i = 0; i < v->cores.size() && i < 255; ++i) body.u16(v->cores[i]);
  } else if (const auto* v = std::get_if<UnregisteredReply>(&m)) {
    body.u32(v->app_id);
    body.u32(v->generation);
  } else if (const auto* v = std::get_if<StateReply>(&m)) {
    body.u32(v->daemon_pid);
    body.u32(v->epoch);
    body.u32(v->region_version);
    body.u16(v->ncores);
    body.u8(v->napps);
    body.u8(v->nfds);
  } else if (const auto* v = std::get_if<ErrorReply>(&m)) {
    body.u16(static_cast<std::uint16_t>(v->code));
    body.u16(static_cast<std::uint16_t>(std::min<std::size_t>(v->text.size(), 0xffff)));
    body.bytes(v->text);
  }
  Writer out;
  out.u32(kMagic);
  out.u16(kVersion);
  out.u16(static_cast<std::uint16_t>(type_of(m)));
  out.u32(static_cast<std::uint32_t>(body.data().size()));
  out.u32(0);
  out.data().insert(out.data().end(), body.data().begin(), body.data().end());
  // The parser is the one definition of a valid message: whatever it refuses, we refuse to send.
  Parsed<Message> check = parse_message(out.data());
  if (!check.ok()) throw std::invalid_argument("skyloftd protocol: refusing to encode: " + check.error.message);
  return std::move(out.data());
}

}  // namespace skyloft::multiapp
