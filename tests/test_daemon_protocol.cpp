// test_daemon_protocol.cpp - the skyloftd wire protocol: round trips of every message, and one test per
// kind of bad message (truncated, oversized, wrong magic/version/type/flags, bad enum, bad name, bad
// counts, trailing bytes), each checking the error code and that the message names the problem.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "multiapp/protocol.hpp"

namespace {

using namespace skyloft::multiapp;
using Bytes = std::vector<std::uint8_t>;

Bytes header(std::uint16_t type, std::uint32_t length, std::uint32_t magic = kMagic, std::uint16_t version = kVersion,
             std::uint32_t flags = 0) {
  Bytes b;
  auto u16 = [&](std::uint16_t v) { b.push_back(v & 0xff); b.push_back(v >> 8); };
  auto u32 = [&](std::uint32_t v) { for (int i = 0; i < 4; ++i) b.push_back((v >> (8 * i)) & 0xff); };
  u32(magic);
  u16(version);
  u16(type);
  u32(length);
  u32(flags);
  return b;
}

// A raw register message: header + body with the given fields.
Bytes raw_register(std::uint8_t cls, std::string name, std::uint16_t demand = 2, std::uint32_t pid = 1234,
                   int name_len_override = -1, std::size_t extra = 0) {
  Bytes body;
  body.push_back(cls);
  body.push_back(static_cast<std::uint8_t>(name_len_override >= 0 ? name_len_override : name.size()));
  body.push_back(demand & 0xff);
  body.push_back(demand >> 8);
  for (int i = 0; i < 4; ++i) body.push_back((pid >> (8 * i)) & 0xff);
  body.insert(body.end(), name.begin(), name.end());
  body.insert(body.end(), extra, 0);
  Bytes m = header(static_cast<std::uint16_t>(MsgType::register_app), static_cast<std::uint32_t>(body.size()));
  m.insert(m.end(), body.begin(), body.end());
  return m;
}

void expect_error(const Bytes& b, ErrorCode code, const std::string& needle) {
  Parsed<Message> p = parse_message(b);
  ASSERT_FALSE(p.ok()) << "parsed although it should fail with " << error_code_name(code);
  EXPECT_EQ(p.error.code, code) << "got " << error_code_name(p.error.code) << ": " << p.error.message;
  EXPECT_NE(p.error.message.find(needle), std::string::npos)
      << "message '" << p.error.message << "' should mention '" << needle << "'";
}

template <class T>
T round_trip(const T& v) {
  Bytes b = encode(Message(v));
  Parsed<Message> p = parse_message(b);
  EXPECT_TRUE(p.ok()) << p.error.message;
  if (!p.ok()) return T{};
  EXPECT_TRUE(std::holds_alternative<T>(*p.value));
  return std::get<T>(*p.value);
}

TEST(DaemonProtocol, RoundTripsEveryMessage) {
  RegisterRequest r{"memcached-lc.1", AppClass::lc, 4242, 3};
  RegisterRequest r2 = round_trip(r);
  EXPECT_EQ(r2.name, r.name);
  EXPECT_EQ(r2.app_class, AppClass::lc);
  EXPECT_EQ(r2.pid, 4242u);
  EXPECT_EQ(r2.demand, 3);

  UnregisterRequest u = round_trip(UnregisterRequest{5, 9});
  EXPECT_EQ(u.app_id, 5u);
  EXPECT_EQ(u.generation, 9u);
  round_trip(QueryRequest{});

  RegisteredReply g{3, 7, AppClass::be, 19, 16, 1, 0xabcdef, {0, 1, 5, 1023}};
  RegisteredReply g2 = round_trip(g);
  EXPECT_EQ(g2.app_id, 3u);
  EXPECT_EQ(g2.generation, 7u);
  EXPECT_EQ(g2.app_class, AppClass::be);
  EXPECT_EQ(g2.nfds, 19);
  EXPECT_EQ(g2.epoch, 0xabcdefu);
  EXPECT_EQ(g2.cores, (std::vector<std::uint16_t>{0, 1, 5, 1023}));
  RegisteredReply empty = round_trip(RegisteredReply{0, 1, AppClass::lc, 3, 16, 1, 1, {}});
  EXPECT_TRUE(empty.cores.empty());

  round_trip(UnregisteredReply{1, 2});
  StateReply s = round_trip(StateReply{77, 5, 1, 2, 3, 18});
  EXPECT_EQ(s.daemon_pid, 77u);
  EXPECT_EQ(s.ncores, 2);
  EXPECT_EQ(s.napps, 3);
  ErrorReply e = round_trip(ErrorReply{ErrorCode::no_free_slot, "all 16 app slots are taken"});
  EXPECT_EQ(e.code, ErrorCode::no_free_slot);
  EXPECT_EQ(e.text, "all 16 app slots are taken");
}

TEST(DaemonProtocol, HeaderIsValidatedBeforeTheBody) {
  Bytes h = header(static_cast<std::uint16_t>(MsgType::register_app), 100000);
  Parsed<Header> p = parse_header(h);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error.code, ErrorCode::oversized);
  EXPECT_NE(p.error.message.find("100000"), std::string::npos) << p.error.message;
}

TEST(DaemonProtocol, Truncated) {
  Bytes m = raw_register(0, "app");
  for (std::size_t n = 0; n < m.size(); ++n) {
    Parsed<Message> p = parse_message(std::span(m.data(), n));
    ASSERT_FALSE(p.ok()) << n << " bytes";
    EXPECT_EQ(p.error.code, ErrorCode::truncated) << n << " bytes: " << p.error.message;
  }
  expect_error(Bytes(5, 0), ErrorCode::truncated, "5 byte(s)");
  // A name_len that points past the body.
  expect_error(raw_register(0, "ab", 1, 1, 10), ErrorCode::truncated, "name_len 10");
}

TEST(DaemonProtocol, Oversized) {
  expect_error(header(static_cast<std::uint16_t>(MsgType::register_app), 41), ErrorCode::oversized, "max 40");
  expect_error(header(static_cast<std::uint16_t>(MsgType::error), 0xffffffffu), ErrorCode::oversized, "4294967295");
  expect_error(header(static_cast<std::uint16_t>(MsgType::query), 1), ErrorCode::oversized, "query");
}

TEST(DaemonProtocol, WrongMagicVersionTypeFlags) {
  Bytes q = header(static_cast<std::uint16_t>(MsgType::query), 0, 0x50545448);
  expect_error(q, ErrorCode::bad_magic, "0x50545448");
  expect_error(header(3, 0, kMagic, 2), ErrorCode::bad_version, "version 2");
  expect_error(header(3, 0, kMagic, 0), ErrorCode::bad_version, "version 0");
  expect_error(header(0x42, 0), ErrorCode::bad_type, "0x0042");
  expect_error(header(0, 0), ErrorCode::bad_type, "0x0000");
  expect_error(header(3, 0, kMagic, kVersion, 1), ErrorCode::bad_flags, "0x00000001");
}

TEST(DaemonProtocol, BodyShorterThanTheTypeAllows) {
  expect_error(header(static_cast<std::uint16_t>(MsgType::unregister_app), 4), ErrorCode::bad_length, "min 8");
  expect_error(header(static_cast<std::uint16_t>(MsgType::register_app), 8), ErrorCode::bad_length, "min 9");
}

TEST(DaemonProtocol, BadEnum) {
  expect_error(raw_register(2, "app"), ErrorCode::bad_enum, "class 2");
  expect_error(raw_register(255, "app"), ErrorCode::bad_enum, "class 255");
  Bytes e = header(static_cast<std::uint16_t>(MsgType::error), 4);
  e.insert(e.end(), {99, 0, 0, 0});
  expect_error(e, ErrorCode::bad_enum, "error code 99");
}

TEST(DaemonProtocol, BadNames) {
  expect_error(raw_register(0, std::string(33, 'a')), ErrorCode::oversized, "max 40");  // header bound first
  expect_error(raw_register(0, "abc", 1, 1, 33), ErrorCode::bad_name, "name length 33");
  expect_error(raw_register(0, "", 1, 1, 0, 1), ErrorCode::bad_name, "name length 0");
  expect_error(raw_register(0, "a b"), ErrorCode::bad_name, "character ' ' at 1");
  expect_error(raw_register(0, "app/1"), ErrorCode::bad_name, "character '/'");
  expect_error(raw_register(0, std::string("ap\0p", 4)), ErrorCode::bad_name, "\\x00");
  expect_error(raw_register(0, "\xff\xfe"), ErrorCode::bad_name, "\\xff");
  expect_error(raw_register(0, "-app"), ErrorCode::bad_name, "start with a letter or digit");
  expect_error(raw_register(0, ".hidden"), ErrorCode::bad_name, "start with");
  EXPECT_TRUE(parse_message(raw_register(0, std::string(32, 'z'))).ok()) << "32 characters is the maximum";
  EXPECT_TRUE(parse_message(raw_register(1, "A.b_c-9")).ok());
}

TEST(DaemonProtocol, BadCountsAndFields) {
  expect_error(raw_register(0, "app", 0), ErrorCode::bad_count, "demand 0");
  expect_error(raw_register(0, "app", 65), ErrorCode::bad_count, "demand 65");
  expect_error(raw_register(0, "app", 1, 0), ErrorCode::bad_field, "pid 0");
  expect_error(raw_register(0, "app", 1, 4'194'305), ErrorCode::bad_field, "pid 4194305");

  Bytes u = header(static_cast<std::uint16_t>(MsgType::unregister_app), 8);
  u.insert(u.end(), {16, 0, 0, 0, 1, 0, 0, 0});
  expect_error(u, ErrorCode::bad_field, "app_id 16");
  Bytes u0 = header(static_cast<std::uint16_t>(MsgType::unregister_app), 8);
  u0.insert(u0.end(), {1, 0, 0, 0, 0, 0, 0, 0});
  expect_error(u0, ErrorCode::bad_field, "generation 0");

  // registered: ncores says 2 but only one core id follows; core ids out of order / out of range.
  auto registered = [](std::uint8_t ncores, std::vector<std::uint16_t> cores, std::uint8_t nfds = 19,
                       std::uint8_t max_apps = 16) {
    Bytes body = {1, 0, 0, 0, 1, 0, 0, 0, 0, ncores, nfds, max_apps, 1, 0, 0, 0, 9, 0, 0, 0};
    for (auto c : cores) { body.push_back(c & 0xff); body.push_back(c >> 8); }
    Bytes m = header(static_cast<std::uint16_t>(MsgType::registered), static_cast<std::uint32_t>(body.size()));
    m.insert(m.end(), body.begin(), body.end());
    return m;
  };
  EXPECT_TRUE(parse_message(registered(2, {0, 1})).ok());
  expect_error(registered(2, {0}), ErrorCode::truncated, "cores[1]");
  expect_error(registered(2, {1, 0}), ErrorCode::bad_field, "0 after 1");
  expect_error(registered(2, {3, 3}), ErrorCode::bad_field, "ascending");
  expect_error(registered(1, {1024}), ErrorCode::bad_field, "core 1024");
  expect_error(registered(65, {}), ErrorCode::bad_count, "ncores 65");
  expect_error(registered(0, {}, 0), ErrorCode::bad_count, "nfds 0");
  expect_error(registered(0, {}, 20), ErrorCode::bad_count, "nfds 20");
  expect_error(registered(0, {}, 19, 17), ErrorCode::bad_count, "max_apps 17");
  expect_error(registered(0, {}, 19, 1), ErrorCode::bad_count, "max_apps 1");  // app_id 1 needs max_apps >= 2

  Bytes s = header(static_cast<std::uint16_t>(MsgType::state), 16);
  s.insert(s.end(), {1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0});
  expect_error(s, ErrorCode::bad_count, "ncores 0");

  Bytes e = header(static_cast<std::uint16_t>(MsgType::error), 6);
  e.insert(e.end(), {1, 0, 2, 0, 'o', '\n'});
  expect_error(e, ErrorCode::bad_field, "0x0a");
}

TEST(DaemonProtocol, TrailingBytes) {
  expect_error(raw_register(0, "app", 1, 1, -1, 3), ErrorCode::trailing_bytes, "3 byte(s) after the last field");
  Bytes q = encode(Message(QueryRequest{}));
  q.push_back(0);
  expect_error(q, ErrorCode::trailing_bytes, "1 byte(s) after a whole query");
  Bytes e = header(static_cast<std::uint16_t>(MsgType::error), 7);
  e.insert(e.end(), {1, 0, 2, 0, 'o', 'k', '!'});
  expect_error(e, ErrorCode::trailing_bytes, "1 byte(s)");
}

TEST(DaemonProtocol, BodyMustMatchTheHeader) {
  Header h;
  h.type = MsgType::unregister_app;
  h.length = 8;
  Bytes body(7, 0);
  Parsed<Message> p = parse_body(h, body);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error.code, ErrorCode::truncated);
}

TEST(DaemonProtocol, EncoderRefusesWhatTheParserRefuses) {
  EXPECT_THROW(encode(Message(RegisterRequest{"bad name", AppClass::lc, 1, 1})), std::invalid_argument);
  EXPECT_THROW(encode(Message(RegisterRequest{std::string(300, 'a'), AppClass::lc, 1, 1})), std::invalid_argument);
  EXPECT_THROW(encode(Message(RegisterRequest{"ok", AppClass::lc, 1, 0})), std::invalid_argument);
  EXPECT_THROW(encode(Message(UnregisterRequest{99, 1})), std::invalid_argument);
  EXPECT_THROW(encode(Message(ErrorReply{ErrorCode::internal, std::string(256, 'x')})), std::invalid_argument);
}

TEST(DaemonProtocol, ErrorRepliesAreMadeSendable) {
  ErrorReply e = make_error_reply(ErrorCode::bad_name, std::string(300, 'x') + "\n");
  EXPECT_EQ(e.text.size(), kMaxErrorText);
  ErrorReply n = make_error_reply(ErrorCode::bad_name, "a\nb\x01");
  EXPECT_EQ(n.text, "a?b?");
  EXPECT_NO_THROW(encode(Message(n)));
}

TEST(DaemonProtocol, RequestsAndReplies) {
  EXPECT_TRUE(is_request(MsgType::register_app));
  EXPECT_TRUE(is_request(MsgType::query));
  EXPECT_FALSE(is_request(MsgType::registered));
  EXPECT_FALSE(is_request(MsgType::error));
  EXPECT_EQ(type_of(Message(StateReply{})), MsgType::state);
}

}  // namespace
