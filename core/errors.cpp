#include "errors.hpp"

#include <algorithm>

namespace saq::host {

namespace {
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}
}  // namespace

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best_d) best_d = d, best = c;
  }
  // A name cut short or run on ("weight_clip" for "weight_clip_scale") is far by edit distance but plainly meant:
  // the shortest candidate that extends the word, or that the word extends, when it shares at least 4 letters.
  if (best.empty() && word.size() >= 4)
    for (const auto& c : candidates)
      if (c.size() >= 4 && (c.rfind(word, 0) == 0 || word.rfind(c, 0) == 0) && (best.empty() || c.size() < best.size()))
        best = c;
  return best.empty() ? "" : "did you mean '" + best + "'?";
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

}  // namespace saq::host
