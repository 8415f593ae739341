// "did you mean" suggestions by edit distance, and join.
#include "unit.hpp"

#include <string>
#include <vector>

#include "errors.hpp"

namespace saq::host {

TEST_CASE("did_you_mean picks the closest candidate within the distance allowed") {
  CHECK(did_you_mean("synthetik", {"fashion_mnist", "synthetic"}) == "did you mean 'synthetic'?");  // 1 substitution
  CHECK(did_you_mean("lrr", {"lr", "momentum"}) == "did you mean 'lr'?");                           // 1 deletion
  CHECK(did_you_mean("trian", {"train", "eval"}) == "did you mean 'train'?");                       // 2 substitutions
  CHECK(did_you_mean("optimiser", {"run", "data", "optimizer"}) == "did you mean 'optimizer'?");
}

TEST_CASE("did_you_mean stays silent when nothing is close") {
  // allowed distance max(2, |word|/3): "xyz" → 2, and "xyz"→"lr" needs 3 edits
  CHECK(did_you_mean("xyz", {"lr"}) == "");
  CHECK(did_you_mean("anything", {}) == "");
  // a 12-letter word allows 4 edits: 4 substitutions pass, 5 do not
  CHECK(did_you_mean("abcdefghijkl", {"abcdefghwxyz"}) == "did you mean 'abcdefghwxyz'?");
  CHECK(did_you_mean("abcdefghijkl", {"abcdefgvwxyz"}) == "");
}

TEST_CASE("did_you_mean names a candidate the word is a prefix of, or that is a prefix of the word") {
  // "weight_clip" → "weight_clip_scale" is 6 insertions, past the 4 edits allowed
  CHECK(did_you_mean("weight_clip", {"activation_clip", "weight_clip_scale"}) == "did you mean 'weight_clip_scale'?");
  CHECK(did_you_mean("checkpoint_every_steps", {"checkpoint_every", "seed"}) == "did you mean 'checkpoint_every'?");
  CHECK(did_you_mean("momentum_x", {"momentum_decay_long", "momentum_decay"}) == "");  // neither extends it
  CHECK(did_you_mean("rho", {"rho_final"}) == "");  // under 4 letters a prefix says too little
}

TEST_CASE("did_you_mean prefers the nearer candidate, and the first on a tie") {
  CHECK(did_you_mean("momentun", {"moment", "momentum"}) == "did you mean 'momentum'?");  // 1 edit against 2
  CHECK(did_you_mean("ab", {"ac", "ad"}) == "did you mean 'ac'?");
}

TEST_CASE("join separates items") {
  CHECK(join({}) == "");
  CHECK(join({"a"}) == "a");
  CHECK(join({"a", "b", "c"}) == "a, b, c");
  CHECK(join({"a", "b"}, " | ") == "a | b");
  CHECK(join({"", "b"}) == ", b");  // an empty first item keeps its separator
}

}  // namespace saq::host
