// TensorBoard event files: CRC-32C against published vectors, and written files read back by a protobuf
// reader written here from the wire-format specification (not the writer's encoder).
#include "unit.hpp"

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>

#include "crc32c.hpp"
#include "errors.hpp"
#include "tfevents.hpp"

namespace fs = std::filesystem;
using saq::host::crc32c;
using saq::host::mask_crc32c;
using saq::host::TfEventsWriter;
using saq::test::TempDir;

namespace {

/// One protobuf field: varint / fixed values as raw bits, length-delimited ones as bytes.
struct Field {
  std::uint32_t number, wire;
  std::uint64_t bits = 0;
  std::string bytes;
  double as_double() const { double d; std::memcpy(&d, &bits, 8); return d; }
  float as_float() const { auto b = static_cast<std::uint32_t>(bits); float f; std::memcpy(&f, &b, 4); return f; }
};

std::uint64_t le(const std::string& s, size_t at, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(s.at(at + i))) << (8 * i);
  return v;
}

std::uint64_t varint(const std::string& s, size_t& at) {
  std::uint64_t v = 0;
  for (int shift = 0;; shift += 7) {
    auto b = static_cast<unsigned char>(s.at(at++));
    v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
    if (!(b & 0x80)) return v;
  }
}

std::multimap<std::uint32_t, Field> parse(const std::string& msg) {
  std::multimap<std::uint32_t, Field> out;
  size_t at = 0;
  while (at < msg.size()) {
    std::uint64_t key = varint(msg, at);
    Field f{static_cast<std::uint32_t>(key >> 3), static_cast<std::uint32_t>(key & 7), 0, {}};
    switch (f.wire) {
      case 0: f.bits = varint(msg, at); break;
      case 1: f.bits = le(msg, at, 8), at += 8; break;
      case 5: f.bits = le(msg, at, 4), at += 4; break;
      case 2: {
        auto n = varint(msg, at);
        f.bytes = msg.substr(at, n);
        REQUIRE(f.bytes.size() == n);
        at += n;
        break;
      }
      default: FAIL("wire type " << f.wire);
    }
    out.emplace(f.number, f);
  }
  return out;
}

const Field& one(const std::multimap<std::uint32_t, Field>& m, std::uint32_t number) {
  REQUIRE(m.count(number) == 1);
  return m.find(number)->second;
}

std::vector<double> packed_doubles(const std::string& bytes) {
  REQUIRE(bytes.size() % 8 == 0);
  std::vector<double> out;
  for (size_t i = 0; i < bytes.size(); i += 8) {
    std::uint64_t b = le(bytes, i, 8);
    double d;
    std::memcpy(&d, &b, 8);
    out.push_back(d);
  }
  return out;
}

std::uint32_t masked(const std::string& s, size_t at, size_t n) {
  std::uint32_t c = crc32c(s.data() + at, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

/// Splits a TFRecord file into its records, checking each length and both CRCs.
std::vector<std::string> records(const fs::path& file) {
  std::string s = saq::test::read_file(file);
  std::vector<std::string> out;
  size_t at = 0;
  while (at < s.size()) {
    REQUIRE(s.size() - at >= 16);
    std::uint64_t n = le(s, at, 8);
    CHECK(le(s, at + 8, 4) == masked(s, at, 8));
    REQUIRE(s.size() - at - 16 >= n);
    CHECK(le(s, at + 12 + n, 4) == masked(s, at + 12, n));
    out.push_back(s.substr(at + 12, n));
    at += 16 + n;
  }
  return out;
}

struct Summary {
  double wall_time;
  std::int64_t step;
  std::string tag;
  std::multimap<std::uint32_t, Field> value;
};

/// Event{wall_time 1, step 2, summary 5{value 1{tag 1, ...}}}
Summary summary(const std::string& record) {
  auto ev = parse(record);
  auto sum = parse(one(ev, 5).bytes);
  auto value = parse(one(sum, 1).bytes);
  return {one(ev, 1).as_double(), static_cast<std::int64_t>(one(ev, 2).bits), one(value, 1).bytes, value};
}

std::vector<unsigned char> bytes(size_t n, int first, int inc) {
  std::vector<unsigned char> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<unsigned char>(first + inc * static_cast<int>(i));
  return v;
}

}  // namespace

TEST_CASE("crc32c matches RFC 3720 B.4 and the catalogue check value") {
  CHECK(crc32c(bytes(32, 0, 0).data(), 32) == 0x8A9136AAu);
  CHECK(crc32c(bytes(32, 0xFF, 0).data(), 32) == 0x62A8AB43u);
  CHECK(crc32c(bytes(32, 0, 1).data(), 32) == 0x46DD794Eu);
  CHECK(crc32c(bytes(32, 31, -1).data(), 32) == 0x113FDB5Cu);
  CHECK(crc32c("123456789", 9) == 0xE3069283u);
  CHECK(crc32c("", 0) == 0u);
  // Continuing from an earlier result is the CRC of the concatenation.
  CHECK(crc32c("56789", 5, crc32c("1234", 4)) == 0xE3069283u);
}

TEST_CASE("masked crc: rotate right 15, add 0xa282ead8") {
  // 0xE3069283 >> 15 = 0x0001C60D; << 17 keeps 0x1283 << 17 = 0x25060000; 0x2507C60D + 0xA282EAD8 = 0xC78AB0E5.
  CHECK(mask_crc32c(0xE3069283u) == 0xC78AB0E5u);
  CHECK(mask_crc32c(0x8A9136AAu) == 0x0FD7FFFAu);
}

TEST_CASE("an event file: file_version first, then scalars and histograms, every record checksummed") {
  TempDir dir;
  std::string file;
  {
    TfEventsWriter w(dir / "tb", 1700000000.25);
    file = w.path().filename().string();
    w.scalar("train/loss", 7, 0.5, 1700000001.5);
    w.scalar("test/top1", 1LL << 40, -3.25, 1700000002.0);
    w.histogram("weights/conv1", 9, {1, 2, 3, 4, NAN}, 3, 1700000003.0);
    w.histogram("weights/const", 10, std::vector<double>(5, 0.5), 30, 1700000004.0);
    w.flush();
    CHECK(w.bytes_written() == fs::file_size(w.path()));
  }
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  CHECK(file == std::string("events.out.tfevents.1700000000.") + host);

  auto recs = records(dir / "tb" / file);
  REQUIRE(recs.size() == 5);
  auto first = parse(recs[0]);
  CHECK(one(first, 1).as_double() == 1700000000.25);
  CHECK(one(first, 2).bits == 0);
  CHECK(one(first, 3).bytes == "brain.Event:2");

  Summary loss = summary(recs[1]);
  CHECK(loss.wall_time == 1700000001.5);
  CHECK(loss.step == 7);
  CHECK(loss.tag == "train/loss");
  CHECK(one(loss.value, 2).wire == 5);  // simple_value is a float
  CHECK(one(loss.value, 2).as_float() == 0.5f);
  Summary top1 = summary(recs[2]);
  CHECK(top1.step == (1LL << 40));
  CHECK(one(top1.value, 2).as_float() == -3.25f);

  // {1, 2, 3, 4} (NaN left out) in 3 buckets of width 1 from 1: [1,2) [2,3) [3,4], by hand 1, 1, 2.
  Summary h = summary(recs[3]);
  CHECK(h.tag == "weights/conv1");
  CHECK(h.step == 9);
  auto histo = parse(one(h.value, 5).bytes);
  CHECK(one(histo, 1).as_double() == 1.0);
  CHECK(one(histo, 2).as_double() == 4.0);
  CHECK(one(histo, 3).as_double() == 4.0);
  CHECK(one(histo, 4).as_double() == 10.0);
  CHECK(one(histo, 5).as_double() == 30.0);
  CHECK(one(histo, 6).wire == 2);  // packed
  CHECK(packed_doubles(one(histo, 6).bytes) == std::vector<double>{2, 3, 4});
  CHECK(packed_doubles(one(histo, 7).bytes) == std::vector<double>{1, 1, 2});

  auto flat = parse(one(summary(recs[4]).value, 5).bytes);
  CHECK(packed_doubles(one(flat, 6).bytes) == std::vector<double>{0.5});
  CHECK(packed_doubles(one(flat, 7).bytes) == std::vector<double>{5});
}

TEST_CASE("a second writer in the same second gets its own file") {
  TempDir dir;
  TfEventsWriter a(dir.path(), 5.0), b(dir.path(), 5.0);
  CHECK(a.path() != b.path());
  CHECK(b.path().filename().string() == a.path().filename().string() + ".1");
}

TEST_CASE("reopen cuts a file back to a recorded size and appends after it") {
  TempDir dir;
  fs::path file;
  std::uint64_t saved = 0;
  {
    TfEventsWriter w(dir.path(), 1.0);
    file = w.path();
    w.scalar("loss", 1, 1.0, 2.0);
    w.flush();
    saved = w.bytes_written();
    w.scalar("loss", 2, 2.0, 3.0);  // lost in the "crash": after the checkpoint
    w.scalar("loss", 3, 3.0, 4.0);
  }
  {
    TfEventsWriter w = TfEventsWriter::reopen(file, saved);
    CHECK(fs::file_size(file) == saved);
    CHECK(w.bytes_written() == saved);
    w.scalar("loss", 2, 20.0, 5.0);
  }
  auto recs = records(file);
  REQUIRE(recs.size() == 3);
  CHECK(summary(recs[1]).step == 1);
  CHECK(summary(recs[2]).step == 2);
  CHECK(one(summary(recs[2]).value, 2).as_float() == 20.0f);

  // A size inside a record, past the end, or a corrupted record are refused with the file and offset.
  auto error = [&](std::uint64_t size) {
    try {
      TfEventsWriter::reopen(file, size);
    } catch (const saq::host::RunError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  std::uint64_t full = fs::file_size(file);
  CHECK(error(saved - 3).find(file.string() + ": byte ") != std::string::npos);
  CHECK(error(full + 1).find("shorter than the " + std::to_string(full + 1)) != std::string::npos);
  std::string s = saq::test::read_file(file);
  s[saved + 14] ^= 0x01;  // a bit of the third record's data
  saq::test::write_file(file, s);
  CHECK(error(full).find("byte " + std::to_string(saved) + ": bad CRC of the record data") != std::string::npos);
  CHECK(fs::file_size(file) == full);  // a refused reopen leaves the file as it was
}
