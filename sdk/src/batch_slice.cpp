#include <saq/dataset.hpp>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace saq {

namespace {

void check(const LoaderSpec& spec) {
  if (spec.world_size < 1 || spec.rank < 0 || spec.rank >= spec.world_size)
    throw std::invalid_argument("loader: rank " + std::to_string(spec.rank) + " of world size " +
                                std::to_string(spec.world_size) + " is not a rank of that world");
  if (spec.batch_size <= 0) throw std::invalid_argument("batch_size must be > 0, got " + std::to_string(spec.batch_size));
}

}  // namespace

std::int64_t sliced_batches(const LoaderSpec& spec, std::int64_t samples) {
  check(spec);
  const std::int64_t global = spec.batch_size * spec.world_size;
  std::int64_t full = samples / global, rest = samples % global;
  if (spec.drop_last || rest < spec.world_size) rest = 0;
  return full + (rest > 0 ? 1 : 0);
}

BatchSlice batch_slice(const LoaderSpec& spec, std::int64_t samples, std::int64_t k) {
  check(spec);
  const std::int64_t global = spec.batch_size * spec.world_size;
  const std::int64_t start = k * global;
  const std::int64_t n = std::max<std::int64_t>(0, std::min(global, samples - start));
  const std::int64_t base = n / spec.world_size, extra = n % spec.world_size;
  BatchSlice s;
  s.first = start + spec.rank * base + std::min(spec.rank, extra);
  s.count = base + (spec.rank < extra ? 1 : 0);
  return s;
}

}  // namespace saq
