#pragma once
/// What the search-stage CLI tests share: a three-stage pipeline (FP32, search, fine-tuning) on a small synthetic
/// model, the MBOPs of its searched bits by a hand count, and the bits a result.toml holds.
#include <regex>
#include <string>
#include <utility>
#include <vector>

namespace saq::search_test {

// small_cnn width 4 on 12x12 images: MACs conv1 5184 (w8, input counted at 8 bits), conv2 20736, conv3 10368,
// conv4 20736, fc 80 (w8a8). The fixed layers give 5184·64 + 80·64 = 336896 BOPs.
inline double hand_mbops(const std::vector<int>& bits) {
  const double macs[] = {20736, 10368, 20736};
  double bops = 336896;
  for (size_t i = 0; i < 3; ++i) bops += macs[i] * bits[i] * bits[i];
  return bops / 1e6;
}

inline std::string pipeline(const std::string& out, const std::string& search, double target, double window) {
  return "[run]\nname = \"s\"\nout_dir = \"" + out + R"("
[data]
use = "synthetic"
size = 12
train_samples = 512
test_samples = 16
batch_size = 16
eval_batch_size = 16
[model]
use = "small_cnn"
width = 4
[quantizer]
use = "liq_wn"
[optimizer]
use = "sam"
rho = 0.1
base = { use = "sgd", lr = 0.05 }
[[stage]]
use = "train"
epochs = 1
quantized = false
limit_batches = 2
optimizer = { use = "sgd", lr = 0.05 }
[[stage]]
use = "search"
init = "stage0"
)" + "target_mbops = " + std::to_string(target) + "\nwindow_mbops = " + std::to_string(window) + "\n" + search +
         "\n[[stage]]\nuse = \"train\"\nepochs = 1\ninit = \"stage0\"\nlimit_batches = 1\n";
}

/// The (weight, activation) bits of conv2, conv3, conv4 in a result.toml, in file order.
inline std::vector<std::pair<int, int>> result_bits(const std::string& toml) {
  std::vector<std::pair<int, int>> out;
  std::regex rule("match = \"(conv[234])\"\nweight_bits = ([0-9])\nactivation_bits = ([0-9])");
  for (std::sregex_iterator it(toml.begin(), toml.end(), rule), end; it != end; ++it)
    out.emplace_back(std::stoi((*it)[2]), std::stoi((*it)[3]));
  return out;
}

}  // namespace saq::search_test
