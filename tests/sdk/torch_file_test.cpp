// torch.save files read with the restricted unpickler, against the values tests/data/pth/make_fixture.py wrote
// beside them with PyTorch; the files we write read back equal.
#include "unit.hpp"

#include <tuple>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <ATen/ATen.h>

#include <saq/torch_file.hpp>

#include "support.hpp"

namespace fs = std::filesystem;
using saq::pickle::Value;

namespace {

fs::path fixture(const std::string& name) { return fs::path(saq::test::env("SAQ_SOURCE_ROOT")) / "tests/data/pth" / name; }

struct Expected {
  std::string dtype;
  std::vector<std::int64_t> shape;
  std::vector<double> values;
};

/// <name>.txt: "key dtype ndim size... value..." per tensor, in state_dict order.
std::vector<std::pair<std::string, Expected>> expected(const std::string& name) {
  std::ifstream in(fixture(name + ".txt"));
  REQUIRE(in);
  std::vector<std::pair<std::string, Expected>> out;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string key;
    Expected e;
    std::int64_t ndim = 0;
    fields >> key >> e.dtype >> ndim;
    e.shape.resize(static_cast<std::size_t>(ndim));
    for (auto& d : e.shape) fields >> d;
    for (std::string v; fields >> v;) e.values.push_back(std::stod(v));
    out.emplace_back(key, e);
  }
  return out;
}

std::string dtype_name(const at::Tensor& t) {
  static const std::map<at::ScalarType, std::string> kNames = {
      {at::kFloat, "float32"}, {at::kDouble, "float64"}, {at::kHalf, "float16"}, {at::kLong, "int64"},
      {at::kInt, "int32"},     {at::kBool, "bool"},      {at::kByte, "uint8"}};
  return kNames.count(t.scalar_type()) ? kNames.at(t.scalar_type()) : "?";
}

void check_equal(const at::Tensor& t, const Expected& e) {
  CHECK(dtype_name(t) == e.dtype);
  REQUIRE(t.sizes().vec() == e.shape);
  at::Tensor flat = t.to(at::kDouble).contiguous().reshape({-1});
  REQUIRE(flat.numel() == static_cast<std::int64_t>(e.values.size()));
  for (std::int64_t i = 0; i < flat.numel(); ++i) CHECK(flat[i].item<double>() == e.values[static_cast<std::size_t>(i)]);
}

std::string error_of(const fs::path& file) {
  try {
    saq::read_state_dict(file.string());
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

using saq::test::contains;

}  // namespace

TEST_CASE("torch file: a model's state_dict saved by torch.save reads with every tensor equal, in order") {
  saq::NamedTensors got = saq::read_state_dict(fixture("model.pth").string());
  auto want = expected("model");
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    CAPTURE(want[i].first);
    CHECK(got[i].first == want[i].first);
    check_equal(got[i].second, want[i].second);
  }
}

TEST_CASE("torch file: every storage type, shared storages with strides and offsets, and empty tensors") {
  saq::NamedTensors got = saq::read_state_dict(fixture("dtypes.pth").string());
  auto want = expected("dtypes");
  REQUIRE(got.size() == want.size());
  std::map<std::string, at::Tensor> by_name(got.begin(), got.end());
  for (const auto& item : want) {
    const auto& key = std::get<0>(item);
    const auto& e = std::get<1>(item);
    CAPTURE(key);
    REQUIRE(by_name.count(key));
    check_equal(by_name[key], e);
  }
  // base.t() has strides (1, 4); base[1, 1:] starts at element 5 of the shared storage.
  CHECK(by_name["transposed"].strides().vec() == std::vector<std::int64_t>{1, 4});
  CHECK(by_name["row"].storage_offset() == 5);
}

TEST_CASE("torch file: a training script's dict wraps the state_dict; the rest is plain data") {
  saq::pickle::ValuePtr top = saq::read_torch_file(fixture("wrapped.pth").string());
  REQUIRE(top->type == Value::Type::Dict);
  CHECK(top->find("epoch")->integer == 7);
  CHECK(top->find("best_acc")->real == 71.25);
  saq::NamedTensors sd = saq::read_state_dict(fixture("wrapped.pth").string());
  REQUIRE(sd.size() == 8);
  CHECK(sd[0].first == "module.conv.weight");
  check_equal(sd[0].second, expected("model")[0].second);  // the same seeded model
}

TEST_CASE("torch file: the legacy format, truncated files and non-tensor entries are refused, naming the file") {
  std::string legacy = error_of(fixture("legacy.pth"));
  CHECK(contains(legacy, fixture("legacy.pth").string() + ": a legacy (pre-1.6, non-zip) torch.save file"));

  saq::test::TempDir dir;
  std::string whole = saq::test::read_file(fixture("model.pth"));
  saq::test::write_file(dir / "cut.pth", whole.substr(0, whole.size() / 2));
  CHECK(contains(error_of(dir / "cut.pth"), (dir / "cut.pth").string() + ": not a readable zip container"));
  saq::test::write_file(dir / "text.pth", "hello");
  CHECK(contains(error_of(dir / "text.pth"), "not a PyTorch file"));
  CHECK(contains(error_of(dir / "none.pth"), (dir / "none.pth").string() + ": cannot open"));

  std::string wrapped = error_of(fixture("dtypes.pth"));
  CHECK(wrapped.empty());  // a plain dict of tensors is a state_dict
  saq::pickle::ValuePtr top = saq::read_torch_file(fixture("wrapped.pth").string());
  CHECK(top->find("optimizer")->type == Value::Type::Dict);
}

TEST_CASE("torch file: what write_state_dict writes reads back equal, names and order kept") {
  saq::test::TempDir dir;
  saq::NamedTensors in = {{"b.weight", at::randn({3, 2})},
                          {"a.running_mean", at::arange(4, at::kFloat)},
                          {"a.num_batches_tracked", at::tensor(std::int64_t{9})},
                          {"view", at::randn({4, 4}).t()}};
  saq::write_state_dict((dir / "w.pth").string(), in);
  saq::NamedTensors out = saq::read_state_dict((dir / "w.pth").string());
  REQUIRE(out.size() == in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    CAPTURE(in[i].first);
    CHECK(out[i].first == in[i].first);
    CHECK((out[i].second.scalar_type() == in[i].second.scalar_type()));
    CHECK(at::equal(out[i].second, in[i].second));
  }
}
