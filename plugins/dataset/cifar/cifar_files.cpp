#include "cifar_files.hpp"

#include <fstream>
#include <stdexcept>

#include <ATen/ATen.h>

#include <saq/pickle.hpp>

namespace saq::plugins::cifar {

namespace {

constexpr std::int64_t kPixels = 3 * 32 * 32;

using pickle::Value;
using pickle::ValuePtr;

[[noreturn]] void bad(const fs::path& file, const std::string& why) {
  throw std::runtime_error(file.string() + ": " + why);
}

struct Release {
  std::string folder;
  std::vector<std::string> train, test;
  std::string names, coarse_names;
};

Release release(int classes, Layout layout) {
  if (classes == 10 && layout == Layout::Python)
    return {"cifar-10-batches-py", {"data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"},
            {"test_batch"}, "batches.meta", ""};
  if (classes == 10)
    return {"cifar-10-batches-bin",
            {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"},
            {"test_batch.bin"}, "batches.meta.txt", ""};
  if (layout == Layout::Python) return {"cifar-100-python", {"train"}, {"test"}, "meta", "meta"};
  return {"cifar-100-binary", {"train.bin"}, {"test.bin"}, "fine_label_names.txt", "coarse_label_names.txt"};
}

/// A label list or array as int64 [N], each in [0, classes).
at::Tensor labels_of(const fs::path& file, const ValuePtr& dict, const std::string& key, std::int64_t n,
                     std::int64_t classes) {
  ValuePtr v = dict->find(key);
  if (!v) bad(file, "has no '" + key + "' entry");
  at::Tensor out;
  if (v->type == Value::Type::Tensor) {
    out = v->tensor.to(at::kLong).reshape({-1});
  } else {
    const auto& items = pickle::as_sequence(v, file.string() + ": '" + key + "'");
    out = at::empty({static_cast<std::int64_t>(items.size())}, at::kLong);
    auto* dst = out.data_ptr<std::int64_t>();
    for (const auto& item : items) *dst++ = pickle::as_int(item, file.string() + ": '" + key + "'");
  }
  if (out.size(0) != n)
    bad(file, "has " + std::to_string(out.size(0)) + " '" + key + "' for " + std::to_string(n) + " images");
  if (n > 0 && (out.min().item<std::int64_t>() < 0 || out.max().item<std::int64_t>() >= classes))
    bad(file, "a '" + key + "' value is outside [0, " + std::to_string(classes) + ")");
  return out;
}

std::string read_bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) bad(file, "cannot open");
  in.seekg(0, std::ios::end);
  std::string bytes(static_cast<std::size_t>(in.tellg()), '\0');
  in.seekg(0);
  if (!in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()))) bad(file, "read error");
  return bytes;
}

}  // namespace

Files locate(const fs::path& root, int classes, const std::string& layout) {
  std::vector<Layout> layouts;
  if (layout != "binary") layouts.push_back(Layout::Python);
  if (layout != "python") layouts.push_back(Layout::Binary);
  std::vector<std::string> tried;
  for (Layout l : layouts) {
    Release r = release(classes, l);
    for (const fs::path& dir : {root / r.folder, root}) {
      tried.push_back((dir / r.train[0]).string());
      if (!fs::exists(dir / r.train[0])) continue;
      Files f{l, {}, {}, dir / r.names, r.coarse_names.empty() ? fs::path() : dir / r.coarse_names};
      for (const auto& t : r.train) f.train.push_back(dir / t);
      for (const auto& t : r.test) f.test.push_back(dir / t);
      for (const auto& need : {f.train, f.test, std::vector<fs::path>{f.names}})
        for (const auto& file : need)
          if (!fs::exists(file))
            bad(file, "no such file (the rest of the CIFAR-" + std::to_string(classes) + " release is in " +
                          dir.string() + ")");
      return f;
    }
  }
  std::string list;
  for (const auto& t : tried) list += (list.empty() ? "" : ", ") + t;
  throw std::runtime_error(root.string() + ": no CIFAR-" + std::to_string(classes) + " files (looked for " + list +
                           ")");
}

Split read_python_batch(const fs::path& file, int classes) {
  pickle::Options o;
  o.globals = pickle::numpy_globals();
  ValuePtr dict = pickle::load_file(file.string(), o);
  if (dict->type != Value::Type::Dict) bad(file, "holds a " + dict->describe() + ", not a dict");
  ValuePtr data = dict->find("data");
  if (!data) bad(file, "has no 'data' entry");
  if (data->type != Value::Type::Tensor || data->tensor.scalar_type() != at::kByte || data->tensor.dim() != 2 ||
      data->tensor.size(1) != kPixels)
    bad(file, "'data' is not a uint8 array of shape [N, 3072]");
  const std::int64_t n = data->tensor.size(0);
  Split s;
  s.images = data->tensor.reshape({n, 3, 32, 32}).contiguous();
  s.labels = labels_of(file, dict, classes == 10 ? "labels" : "fine_labels", n, classes);
  if (classes == 100) s.coarse = labels_of(file, dict, "coarse_labels", n, 20);
  return s;
}

Split read_binary_batch(const fs::path& file, int classes) {
  const std::int64_t head = classes == 10 ? 1 : 2, record = head + kPixels;
  std::string bytes = read_bytes(file);
  const auto size = static_cast<std::int64_t>(bytes.size());
  if (size == 0 || size % record)
    bad(file, "truncated or not a CIFAR-" + std::to_string(classes) + " binary batch: " + std::to_string(size) +
                  " bytes is not a whole number of " + std::to_string(record) + "-byte records");
  const std::int64_t n = size / record;
  at::Tensor all = at::from_blob(bytes.data(), {n, record}, at::kByte);
  Split s;
  s.images = all.slice(1, head).reshape({n, 3, 32, 32}).clone();
  s.labels = all.select(1, head - 1).to(at::kLong);
  if (classes == 100) s.coarse = all.select(1, 0).to(at::kLong);
  if (s.labels.max().item<std::int64_t>() >= classes)
    bad(file, "a label is outside [0, " + std::to_string(classes) + ") (not a CIFAR-" + std::to_string(classes) +
                  " binary batch?)");
  if (classes == 100 && s.coarse.max().item<std::int64_t>() >= 20) bad(file, "a coarse label is outside [0, 20)");
  return s;
}

std::vector<std::string> read_python_names(const fs::path& meta, int classes, bool coarse) {
  pickle::Options o;  // a meta pickle holds lists of strings and ints only: no global at all
  ValuePtr dict = pickle::load_file(meta.string(), o);
  if (dict->type != Value::Type::Dict) bad(meta, "holds a " + dict->describe() + ", not a dict");
  const std::string key = classes == 10 ? "label_names" : coarse ? "coarse_label_names" : "fine_label_names";
  ValuePtr list = dict->find(key);
  if (!list) bad(meta, "has no '" + key + "' entry");
  std::vector<std::string> names;
  for (const auto& v : pickle::as_sequence(list, meta.string() + ": '" + key + "'"))
    names.push_back(pickle::as_text(v, meta.string() + ": '" + key + "'"));
  return names;
}

std::vector<std::string> read_text_names(const fs::path& file) {
  std::ifstream in(file);
  if (!in) bad(file, "cannot open");
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  return names;
}

Split read_split(const std::vector<fs::path>& files, Layout layout, int classes) {
  std::vector<at::Tensor> images, labels, coarse;
  for (const auto& f : files) {
    Split s = layout == Layout::Python ? read_python_batch(f, classes) : read_binary_batch(f, classes);
    images.push_back(s.images);
    labels.push_back(s.labels);
    if (s.coarse.defined()) coarse.push_back(s.coarse);
  }
  if (files.size() == 1) return {images[0], labels[0], coarse.empty() ? at::Tensor() : coarse[0]};  // no copy
  Split out{at::cat(images), at::cat(labels), {}};
  if (!coarse.empty()) out.coarse = at::cat(coarse);
  return out;
}

}  // namespace saq::plugins::cifar
