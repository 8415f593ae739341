#pragma once
/// TensorBoard event files, written without TensorFlow or protobuf: TFRecord framing around hand-encoded
/// `tensorflow.Event` messages (scalars and histograms), so `tensorboard --logdir runs/` reads a run directly.
///
/// TFRecord: each record is uint64 length (little endian), uint32 masked CRC-32C of those 8 bytes, the data,
/// uint32 masked CRC-32C of the data. The first record is an Event holding file_version "brain.Event:2".
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace saq::host {

/// Seconds since the Unix epoch, as Event.wall_time holds them.
double wall_time_now();

class TfEventsWriter {
 public:
  /// Creates `dir` if needed and a new file `events.out.tfevents.<seconds>.<host>` in it (".1", ".2", ...
  /// appended when that name exists), starting with the file_version record stamped `wall_time`.
  explicit TfEventsWriter(const std::filesystem::path& dir, double wall_time = wall_time_now());
  /// Reopens an event file this class wrote and cuts it back to `size` bytes (a bytes_written() taken after a
  /// flush(), e.g. saved with a checkpoint), dropping what a crashed run appended after it. Every record before
  /// `size` is checked (lengths and both CRCs); a file shorter than `size`, a cut inside a record or a bad CRC
  /// throws RunError naming the file and the byte offset.
  static TfEventsWriter reopen(const std::filesystem::path& file, std::uint64_t size);

  TfEventsWriter(TfEventsWriter&& other) noexcept;
  TfEventsWriter& operator=(TfEventsWriter&& other) noexcept;
  TfEventsWriter(const TfEventsWriter&) = delete;
  TfEventsWriter& operator=(const TfEventsWriter&) = delete;
  /// Flushes; errors at this point are dropped (call flush() to see them).
  ~TfEventsWriter();

  /// One scalar (Summary.Value.simple_value, a float) for `tag` at `step`.
  void scalar(const std::string& tag, std::int64_t step, double value, double wall_time = wall_time_now());
  /// A histogram of `values` (Summary.Value.histo) in `buckets` equal-width buckets between their min and max.
  /// Non-finite values are left out; no finite value gives an empty histogram (num = 0).
  void histogram(const std::string& tag, std::int64_t step, const std::vector<double>& values,
                 int buckets = 30, double wall_time = wall_time_now());
  void histogram(const std::string& tag, std::int64_t step, const float* values, std::size_t n, int buckets = 30,
                 double wall_time = wall_time_now());

  /// Writes buffered records to the file (they survive a crash of this process). Throws RunError on failure.
  void flush();
  /// flush(), then fsync: the records survive a power loss too.
  void sync();
  /// Size of the file once flushed: every record handed over so far, in bytes.
  std::uint64_t bytes_written() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  TfEventsWriter(std::filesystem::path path, int fd, std::uint64_t size);
  void record(const std::string& event);

  std::filesystem::path path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::string buffer_;
};

/// The TFRecord framing of `data`: length, masked CRC of the length, data, masked CRC of the data.
std::string tfrecord(const std::string& data);

}  // namespace saq::host
