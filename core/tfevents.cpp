#include "tfevents.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <utility>

#include "crc32c.hpp"
#include "errors.hpp"

namespace saq::host {

namespace fs = std::filesystem;

namespace {

// Protocol buffers wire format, the few parts an Event needs: a key is (field << 3) | wire type.
enum Wire : std::uint32_t { kVarint = 0, kFixed64 = 1, kBytes = 2, kFixed32 = 5 };

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

void put_key(std::string& out, std::uint32_t field, Wire wire) { put_varint(out, (field << 3) | wire); }

void put_double(std::string& out, std::uint32_t field, double v) {
  std::uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  put_key(out, field, kFixed64);
  put_le(out, bits, 8);
}

void put_float(std::string& out, std::uint32_t field, float v) {
  std::uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  put_key(out, field, kFixed32);
  put_le(out, bits, 4);
}

void put_bytes(std::string& out, std::uint32_t field, const std::string& bytes) {
  put_key(out, field, kBytes);
  put_varint(out, bytes.size());
  out += bytes;
}

void put_packed_doubles(std::string& out, std::uint32_t field, const std::vector<double>& v) {
  std::string packed;
  for (double d : v) {
    std::uint64_t bits;
    std::memcpy(&bits, &d, sizeof bits);
    put_le(packed, bits, 8);
  }
  put_bytes(out, field, packed);
}

/// Event{wall_time = 1, step = 2, summary = 5 {value = 1 [value_fields]}}
std::string summary_event(double wall_time, std::int64_t step, const std::string& value_fields) {
  std::string summary, event;
  put_bytes(summary, 1, value_fields);
  put_double(event, 1, wall_time);
  put_key(event, 2, kVarint);
  put_varint(event, static_cast<std::uint64_t>(step));
  put_bytes(event, 5, summary);
  return event;
}

/// HistogramProto{min 1, max 2, num 3, sum 4, sum_squares 5, bucket_limit 6, bucket 7}. Bucket i holds the
/// values in [limit[i-1], limit[i]) (TensorBoard reads the first left edge as min and the last right edge as max).
std::string histogram_proto(std::vector<double> values, int buckets) {
  values.erase(std::remove_if(values.begin(), values.end(), [](double v) { return !std::isfinite(v); }),
               values.end());
  double lo = 0, hi = 0, sum = 0, sum_sq = 0;
  std::vector<double> limits, counts;
  if (!values.empty()) {
    auto [mn, mx] = std::minmax_element(values.begin(), values.end());
    lo = *mn, hi = *mx;
    for (double v : values) sum += v, sum_sq += v * v;
    const int n = hi > lo ? std::max(1, buckets) : 1;
    const double width = (hi - lo) / n;
    counts.assign(static_cast<size_t>(n), 0.0);
    for (int i = 0; i < n; ++i) limits.push_back(i + 1 == n ? hi : lo + width * (i + 1));
    for (double v : values) {
      auto i = n == 1 ? 0 : static_cast<std::ptrdiff_t>((v - lo) / width);
      counts[static_cast<size_t>(std::clamp<std::ptrdiff_t>(i, 0, n - 1))] += 1;
    }
  }
  std::string h;
  put_double(h, 1, lo);
  put_double(h, 2, hi);
  put_double(h, 3, static_cast<double>(values.size()));
  put_double(h, 4, sum);
  put_double(h, 5, sum_sq);
  put_packed_doubles(h, 6, limits);
  put_packed_doubles(h, 7, counts);
  return h;
}

std::uint64_t get_le(const unsigned char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return v;
}

[[noreturn]] void fail_errno(const fs::path& path, const std::string& what) {
  throw RunError(path.string() + ": " + what + ": " + std::strerror(errno));
}

void write_all(int fd, const fs::path& path, const std::string& bytes) {
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_errno(path, "cannot write event records");
    p += n, left -= static_cast<size_t>(n);
  }
}

/// Checks every record in the first `size` bytes of `fd`: each must be whole, with both CRCs right.
void check_records(int fd, const fs::path& path, std::uint64_t size) {
  std::string data(size, '\0');
  if (::pread(fd, data.data(), size, 0) != static_cast<ssize_t>(size)) fail_errno(path, "cannot read");
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  std::uint64_t at = 0;
  while (at < size) {
    auto bad = [&](const std::string& why) {
      throw RunError(path.string() + ": byte " + std::to_string(at) + ": " + why + "; cannot resume this event file at " +
                     std::to_string(size) + " bytes");
    };
    if (size - at < 12) bad("a record header cut at the resume point");
    std::uint64_t len = get_le(p + at, 8);
    if (get_le(p + at + 8, 4) != mask_crc32c(crc32c(p + at, 8))) bad("bad CRC of the record length");
    if (len > size - at - 16) bad("a record of " + std::to_string(len) + " bytes cut at the resume point");
    if (get_le(p + at + 12 + len, 4) != mask_crc32c(crc32c(p + at + 12, len))) bad("bad CRC of the record data");
    at += 16 + len;
  }
}

}  // namespace

double wall_time_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string tfrecord(const std::string& data) {
  std::string out;
  put_le(out, data.size(), 8);
  put_le(out, mask_crc32c(crc32c(out.data(), 8)), 4);
  out += data;
  put_le(out, mask_crc32c(crc32c(data.data(), data.size())), 4);
  return out;
}

TfEventsWriter::TfEventsWriter(fs::path path, int fd, std::uint64_t size)
    : path_(std::move(path)), fd_(fd), size_(size) {}

TfEventsWriter::TfEventsWriter(const fs::path& dir, double wall_time) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw RunError(dir.string() + ": cannot create the folder for event files: " + ec.message());
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || !host[0]) std::strcpy(host, "localhost");
  const std::string base = "events.out.tfevents." + std::to_string(static_cast<std::int64_t>(wall_time)) + "." + host;
  for (int n = 0; fd_ < 0; ++n) {
    path_ = dir / (n ? base + "." + std::to_string(n) : base);
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0 && errno != EEXIST) fail_errno(path_, "cannot create the event file");
  }
  std::string event;
  put_double(event, 1, wall_time);
  put_key(event, 2, kVarint);
  put_varint(event, 0);
  put_bytes(event, 3, "brain.Event:2");
  record(event);
  flush();
}

TfEventsWriter TfEventsWriter::reopen(const fs::path& file, std::uint64_t size) {
  int fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) fail_errno(file, "cannot reopen the event file");
  TfEventsWriter w(file, fd, size);  // closes fd if a check below throws
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail_errno(file, "cannot stat");
  if (static_cast<std::uint64_t>(st.st_size) < size)
    throw RunError(file.string() + ": " + std::to_string(st.st_size) + " bytes, shorter than the " +
                   std::to_string(size) + " bytes recorded at the checkpoint");
  check_records(fd, file, size);
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) fail_errno(file, "cannot truncate");
  if (::lseek(fd, 0, SEEK_END) < 0) fail_errno(file, "cannot seek");
  return w;
}

TfEventsWriter::TfEventsWriter(TfEventsWriter&& o) noexcept
    : path_(std::move(o.path_)), fd_(std::exchange(o.fd_, -1)), size_(o.size_), buffer_(std::move(o.buffer_)) {}

TfEventsWriter& TfEventsWriter::operator=(TfEventsWriter&& o) noexcept {
  if (this == &o) return *this;
  TfEventsWriter old(std::move(*this));  // flushes and closes our file as it goes
  path_ = std::move(o.path_);
  fd_ = std::exchange(o.fd_, -1);
  size_ = o.size_;
  buffer_ = std::move(o.buffer_);
  return *this;
}

TfEventsWriter::~TfEventsWriter() {
  if (fd_ < 0) return;
  try {
    flush();
  } catch (...) {  // a destructor cannot report; flush() explicitly to see write errors
  }
  ::close(fd_);
}

void TfEventsWriter::record(const std::string& event) {
  std::string r = tfrecord(event);
  buffer_ += r;
  size_ += r.size();
  if (buffer_.size() >= (1u << 16)) flush();
}

void TfEventsWriter::scalar(const std::string& tag, std::int64_t step, double value, double wall_time) {
  std::string v;
  put_bytes(v, 1, tag);
  put_float(v, 2, static_cast<float>(value));
  record(summary_event(wall_time, step, v));
}

void TfEventsWriter::histogram(const std::string& tag, std::int64_t step, const std::vector<double>& values,
                               int buckets, double wall_time) {
  std::string v;
  put_bytes(v, 1, tag);
  put_bytes(v, 5, histogram_proto(values, buckets));
  record(summary_event(wall_time, step, v));
}

void TfEventsWriter::histogram(const std::string& tag, std::int64_t step, const float* values, std::size_t n,
                               int buckets, double wall_time) {
  histogram(tag, step, std::vector<double>(values, values + n), buckets, wall_time);
}

void TfEventsWriter::flush() {
  if (buffer_.empty()) return;
  std::string pending;
  pending.swap(buffer_);  // a failed write is not retried: the file's size is then unknown
  write_all(fd_, path_, pending);
}

void TfEventsWriter::sync() {
  flush();
  if (::fsync(fd_) != 0) fail_errno(path_, "cannot sync the event file");
}

}  // namespace saq::host
