#include "image_folder.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <system_error>

namespace saq::plugins::imagenet {

namespace fs = std::filesystem;

namespace {

bool is_jpeg_name(const std::string& name) {
  const auto dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  std::string ext = name.substr(dot + 1);
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == "jpeg" || ext == "jpg";
}

std::string first_few(const std::vector<std::string>& items, std::size_t shown = 5) {
  std::string out;
  for (std::size_t i = 0; i < items.size() && i < shown; ++i) out += (i ? ", " : "") + items[i];
  if (items.size() > shown) out += " and " + std::to_string(items.size() - shown) + " more";
  return out;
}

}  // namespace

std::string ImageFolder::path(std::int64_t i) const {
  return dir + "/" + classes[static_cast<std::size_t>(labels[i])] + "/" +
         names.substr(offsets[i], offsets[i + 1] - offsets[i]);
}

ImageFolder scan_image_folder(const std::string& dir, const std::vector<std::string>& wanted,
                              std::int64_t expected_classes) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw std::invalid_argument(dir + ": no such folder");
  if (!fs::is_directory(dir, ec)) throw std::invalid_argument(dir + ": not a folder");
  ImageFolder f;
  f.dir = dir;
  if (wanted.empty()) {
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.is_directory()) f.classes.push_back(e.path().filename().string());
    if (ec) throw std::invalid_argument(dir + ": cannot list (" + ec.message() + ")");
    std::sort(f.classes.begin(), f.classes.end());
    if (expected_classes > 0 && static_cast<std::int64_t>(f.classes.size()) != expected_classes)
      throw std::invalid_argument(dir + ": holds " + std::to_string(f.classes.size()) + " class folders, want " +
                                  std::to_string(expected_classes) + " (num_classes)");
  } else {
    std::vector<std::string> missing;
    for (const auto& w : wanted)
      if (!fs::is_directory(fs::path(dir) / w, ec)) missing.push_back(w);
    if (!missing.empty())
      throw std::invalid_argument(dir + ": lacks " + std::to_string(missing.size()) + " of the " +
                                  std::to_string(wanted.size()) + " listed classes: " + first_few(missing));
    f.classes = wanted;
  }
  f.offsets.push_back(0);
  std::vector<std::string> names;
  for (std::size_t c = 0; c < f.classes.size(); ++c) {
    const fs::path class_dir = fs::path(dir) / f.classes[c];
    names.clear();
    for (const auto& e : fs::directory_iterator(class_dir, ec)) {
      std::string name = e.path().filename().string();
      if (!e.is_regular_file(ec)) continue;
      if (is_jpeg_name(name)) names.push_back(std::move(name));
      else ++f.ignored;
    }
    if (ec) throw std::invalid_argument(class_dir.string() + ": cannot list (" + ec.message() + ")");
    if (names.empty()) throw std::invalid_argument(class_dir.string() + ": no .JPEG/.jpg/.jpeg images");
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
      f.names += n;
      f.offsets.push_back(f.names.size());
      f.labels.push_back(static_cast<std::int32_t>(c));
    }
  }
  return f;
}

std::vector<std::string> parse_class_list(const std::string& text, const std::string& origin) {
  std::vector<std::string> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line.substr(0, line.find('#')));
    for (std::string w; words >> w;) out.push_back(w);
  }
  if (out.empty()) throw std::invalid_argument(origin + ": lists no classes");
  std::sort(out.begin(), out.end());
  auto dup = std::adjacent_find(out.begin(), out.end());
  if (dup != out.end()) throw std::invalid_argument(origin + ": lists " + *dup + " twice");
  return out;
}

}  // namespace saq::plugins::imagenet
