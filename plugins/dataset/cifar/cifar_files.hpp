#pragma once
/// CIFAR-10 and CIFAR-100 in both releases (Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html):
/// the python one (pickled dicts of numpy arrays) and the binary one (fixed-size records).
#include <filesystem>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace saq::plugins::cifar {

namespace fs = std::filesystem;

enum class Layout { Python, Binary };

/// One split as read: images uint8 [N, 3, 32, 32]; labels int64 [N] (CIFAR-100: fine); coarse int64 [N]
/// (CIFAR-100 only, else undefined).
struct Split {
  at::Tensor images, labels, coarse;
};

/// Where one release's files are.
struct Files {
  Layout layout;
  std::vector<fs::path> train, test;
  fs::path names, coarse_names;  ///< python: the meta pickle (both lists); binary: the .txt files
};

/// The files of CIFAR-`classes` (10 or 100) under `root`: root may be the folder that holds
/// cifar-100-python / cifar-100-binary (cifar-10-batches-py / -bin) or one of those folders itself. `layout` is
/// "auto" (python first), "python" or "binary". Throws std::runtime_error listing what was looked for.
Files locate(const fs::path& root, int classes, const std::string& layout);

/// A python batch: a pickled dict with "data" (uint8 [N, 3072]) and "labels" (CIFAR-10) or "fine_labels" and
/// "coarse_labels" (CIFAR-100), as lists or arrays. Errors name the file.
Split read_python_batch(const fs::path& file, int classes);

/// A binary batch: records <label><3072 bytes> (CIFAR-10) or <coarse><fine><3072 bytes> (CIFAR-100).
Split read_binary_batch(const fs::path& file, int classes);

/// Class names: the python meta pickle ("label_names", or "fine_label_names" / "coarse_label_names" when
/// `coarse`), or a binary release's .txt file, one name a line. Errors name the file.
std::vector<std::string> read_python_names(const fs::path& meta, int classes, bool coarse);
std::vector<std::string> read_text_names(const fs::path& file);

/// The batches of a split, read and concatenated in order.
Split read_split(const std::vector<fs::path>& files, Layout layout, int classes);

}  // namespace saq::plugins::cifar
