// Data-parallel batches: the shares of global batch k partition what one process with batch W·B takes as its
// batch k (checked against that single-process slicing position by position), sizes differ by at most one,
// and a world of one slices exactly as the loaders always did (⌈N/B⌉ batches, ⌊N/B⌋ with drop_last).
#include "unit.hpp"

#include <saq/dataset.hpp>

namespace saq {

TEST_CASE("the ranks' shares of each global batch cover it exactly once, in order") {
  for (std::int64_t n : {1, 7, 64, 100, 101, 257})
    for (std::int64_t b : {1, 3, 8, 32})
      for (std::int64_t w : {1, 2, 3, 4}) {
        LoaderSpec one;
        one.batch_size = b * w;
        const std::int64_t single = sliced_batches(one, n);
        LoaderSpec spec;
        spec.batch_size = b;
        spec.world_size = w;
        const std::int64_t batches = sliced_batches(spec, n);
        // only a last global batch of fewer than W samples is dropped
        const std::int64_t rest = n % (b * w);
        CHECK(batches == single - (rest > 0 && rest < w ? 1 : 0));
        for (std::int64_t k = 0; k < batches; ++k) {
          std::int64_t next = k * b * w, smallest = b * w, largest = 0;
          for (std::int64_t r = 0; r < w; ++r) {
            spec.rank = r;
            const BatchSlice s = batch_slice(spec, n, k);
            CHECK(s.first == next);
            CHECK(s.count >= 1);
            next += s.count;
            smallest = std::min(smallest, s.count), largest = std::max(largest, s.count);
          }
          CHECK(largest - smallest <= 1);
          CHECK(next == std::min(n, (k + 1) * b * w));
        }
      }
}

TEST_CASE("a world of one: the loaders' slicing, drop_last included") {
  LoaderSpec spec;
  spec.batch_size = 32;
  CHECK(sliced_batches(spec, 100) == 4);
  CHECK(batch_slice(spec, 100, 3).first == 96);
  CHECK(batch_slice(spec, 100, 3).count == 4);
  spec.drop_last = true;
  CHECK(sliced_batches(spec, 100) == 3);
}

TEST_CASE("a rank outside the world is refused") {
  LoaderSpec spec;
  spec.world_size = 2;
  spec.rank = 2;
  CHECK_THROWS_WITH_AS(batch_slice(spec, 10, 0), "loader: rank 2 of world size 2 is not a rank of that world",
                       std::invalid_argument);
}

}  // namespace saq
