// StateDict files: every value type round-trips bit-exactly (and rewrites to the same bytes), typed reads name
// what is wrong, module states load only when names, shapes and dtypes all match, and hostile files — views
// past their storage, overflowing shapes, deep nesting, value floods, TorchScript archives — are refused.
#include "unit.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/serialize/output-archive.h>

#include <saq/torch_file.hpp>

namespace {

using saq::StateDict;

std::string bytes_of(const at::Tensor& t) {
  at::Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), static_cast<std::size_t>(c.numel() * c.element_size()));
}

using saq::test::contains;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

/// A torch.save-shaped zip whose data.pkl is `pickle` and whose data/0 holds `storage` bytes.
void write_zip(const std::string& path, const std::string& pickle, const std::string& storage) {
  std::string bytes;
  {
    caffe2::serialize::PyTorchStreamWriter w([&](const void* d, std::size_t n) {
      bytes.append(static_cast<const char*>(d), n);
      return n;
    });
    w.writeRecord("data.pkl", pickle.data(), pickle.size());
    w.writeRecord("data/0", storage.data(), storage.size());
    w.writeEndOfFile();
  }
  saq::test::write_file(path, bytes);
}

std::string u32(std::uint32_t v) {
  std::string s;
  for (int i = 0; i < 4; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}
std::string str(const std::string& s) { return "X" + u32(static_cast<std::uint32_t>(s.size())) + s; }
std::string long8(std::int64_t v) {
  std::string s = "\x8a\x08";
  for (int i = 0; i < 8; ++i) s += static_cast<char>((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xff);
  return s;
}

/// {"t": a float tensor of `size`/`stride` over a 4-element storage}
std::string tensor_pickle(const std::vector<std::int64_t>& size, const std::vector<std::int64_t>& stride) {
  std::string p = "\x80\x02}(" + str("t") + "ctorch._utils\n_rebuild_tensor_v2\n((" + str("storage") +
                  "ctorch\nFloatStorage\n" + str("0") + str("cpu") + "J" + u32(4) + "tQJ" + u32(0) + "(";
  for (auto s : size) p += long8(s);
  p += "t(";
  for (auto s : stride) p += long8(s);
  p += "t\x89\x63" "collections\nOrderedDict\n)RtRu.";
  return p;
}

}  // namespace

TEST_CASE("state file: every value type round-trips bit-exactly, and rewrites to the same bytes") {
  saq::test::TempDir dir;
  StateDict s;
  s.put_tensor("weights", at::randn({3, 4}).t());  // a non-contiguous view
  s.put_tensor("scalar", at::scalar_tensor(2.5));
  s.put_tensor("empty", at::empty({0, 3}));
  s.put_tensor("half", at::randn({5}).to(at::kHalf));
  s.put_tensor("bf16", at::randn({5}).to(at::kBFloat16));
  s.put_tensor("mask", at::rand({7}) > 0.5);
  s.put_tensor("bytes", at::randint(0, 255, {6}, at::kByte));
  s.put_tensor("codes", at::randint(-8, 8, {6}, at::kChar));
  s.put_tensor("counts", at::randint(-100000, 100000, {4}, at::kInt));
  s.put_int("small", -7);
  s.put_int("big", std::int64_t{1} << 40);
  s.put_int("min", std::numeric_limits<std::int64_t>::min());
  s.put_real("nan", std::numeric_limits<double>::quiet_NaN());
  s.put_real("third", 1.0 / 3.0);
  s.put_bool("yes", true);
  s.put_bool("no", false);
  s.put_text("name", "W4A4 · ε-ball");
  s.child("nested").child("deeper").put_int("x", 3);
  s.child("nothing");
  const std::string path = (dir / "s.pt").string();
  saq::write_state(path, s);
  const StateDict r = saq::read_state(path);
  REQUIRE(r.size() == s.size());
  for (std::size_t i = 0; i < s.size(); ++i) CHECK(r.entries()[i].first == s.entries()[i].first);  // order kept
  for (const char* k : {"weights", "scalar", "empty", "half", "bf16", "mask", "bytes", "codes", "counts"}) {
    CAPTURE(k);
    CHECK((r.tensor(k).scalar_type() == s.tensor(k).scalar_type()));
    CHECK(r.tensor(k).sizes() == s.tensor(k).sizes());
    CHECK(bytes_of(r.tensor(k)) == bytes_of(s.tensor(k)));
  }
  CHECK(r.integer("small") == -7);
  CHECK(r.integer("big") == (std::int64_t{1} << 40));
  CHECK(r.integer("min") == std::numeric_limits<std::int64_t>::min());
  CHECK(std::isnan(r.real("nan")));
  const double third = r.real("third");
  CHECK(third == 1.0 / 3.0);
  CHECK(r.boolean("yes"));
  CHECK_FALSE(r.boolean("no"));
  CHECK(r.text("name") == "W4A4 · ε-ball");
  CHECK(r.child("nested").child("deeper").integer("x") == 3);
  CHECK(r.child("nothing").size() == 0);
  CHECK(saq::torch_file_bytes(r) == saq::test::read_file(path));
}

TEST_CASE("state: typed reads name the file, the key and both types") {
  saq::test::TempDir dir;
  StateDict s;
  s.child("optimizer").put_int("step", 3);
  saq::write_state((dir / "o.pt").string(), s);
  const StateDict r = saq::read_state((dir / "o.pt").string());
  const std::string where = (dir / "o.pt").string() + ": optimizer";
  CHECK(error_of([&] { r.child("optimizer").real("lr"); }) == where + ": 'lr' is missing");
  CHECK(error_of([&] { r.child("optimizer").text("step"); }) == where + ": 'step' is a int, not a str");
  CHECK(error_of([&] { r.tensor("optimizer"); }) == (dir / "o.pt").string() + ": 'optimizer' is a dict, not a tensor");
}

TEST_CASE("module state: loads only when every name, shape and dtype matches, and lists what does not") {
  torch::nn::Linear a(3, 2), b(3, 2);
  saq::load_module_state(*b, saq::module_state(*a));
  CHECK(at::equal(a->weight, b->weight));
  CHECK(at::equal(a->bias, b->bias));

  torch::nn::Linear c(4, 2);
  const at::Tensor before = c->weight.clone();
  StateDict wrong = saq::module_state(*a);
  wrong.put_tensor("extra", at::zeros({1}));
  const std::string msg = error_of([&] { saq::load_module_state(*c, wrong); });
  CHECK(contains(msg, "does not match the model; unexpected (1): extra; different (1): weight: Float[2, 3] in the file, "
                 "Float[2, 4] in the model"));
  CHECK(at::equal(c->weight, before));  // nothing copied

  torch::nn::BatchNorm1d bn(2);
  StateDict counts = saq::module_state(*bn);
  counts.put_tensor("num_batches_tracked", at::zeros({}, at::kInt));  // Long in the model
  CHECK(contains(error_of([&] { saq::load_module_state(*bn, counts); }), "num_batches_tracked: Int[] in the file, Long[]"));
  StateDict fewer;
  fewer.put_tensor("weight", bn->weight);
  CHECK(contains(error_of([&] { saq::load_module_state(*bn, fewer); }), "missing (4): bias, running_mean, running_var, "
                                                                    "num_batches_tracked"));
}

TEST_CASE("hostile state files: views past their storage, overflowing shapes, deep nesting, lists") {
  saq::test::TempDir dir;
  const std::string storage(16, '\0');  // 4 floats
  const std::string ok = (dir / "ok.pt").string();
  write_zip(ok, tensor_pickle({2, 2}, {2, 1}), storage);
  CHECK(saq::read_state(ok).tensor("t").sizes() == at::IntArrayRef({2, 2}));

  const std::string past = (dir / "past.pt").string();
  write_zip(past, tensor_pickle({2, 2}, {3, 1}), storage);  // reaches element 4 of 0..3
  CHECK(contains(error_of([&] { saq::read_state(past); }), "reaches past its storage of 4 elements"));
  const std::string huge = (dir / "huge.pt").string();
  write_zip(huge, tensor_pickle({std::int64_t{1} << 62, 8}, {1, 1}), storage);  // numel overflows int64
  CHECK(contains(error_of([&] { saq::read_state(huge); }), huge + ": data.pkl: torch._utils._rebuild_tensor_v2: a tensor"));
  const std::string wrap = (dir / "wrap.pt").string();
  write_zip(wrap, tensor_pickle({3}, {std::int64_t{1} << 62}), storage);  // (3 - 1) * stride wraps around
  CHECK(contains(error_of([&] { saq::read_state(wrap); }), "reaches past its storage"));

  std::string deep = "\x80\x02}(" + str("a");
  for (int i = 0; i < 40; ++i) deep += "}(" + str("a");
  deep += "J" + u32(1);
  for (int i = 0; i < 41; ++i) deep += "u";
  deep += ".";
  const std::string nested = (dir / "deep.pt").string();
  write_zip(nested, deep, storage);
  CHECK(contains(error_of([&] { saq::read_state(nested); }), "dicts nested deeper than 16"));

  const std::string list = (dir / "list.pt").string();
  write_zip(list, "\x80\x02}(" + str("l") + "]u.", storage);
  CHECK(error_of([&] { saq::read_state(list); }) == list + ": 'l' is a list, which a state does not hold");
}

TEST_CASE("pickle: a flood of values is refused at the cap, before its memory is spent") {
  std::string flood = "\x80\x02(";
  for (int i = 0; i < 100; ++i) flood += "N";
  flood += "t.";
  saq::pickle::Options o;
  o.source = "flood";
  o.max_values = 64;
  CHECK(contains(error_of([&] { saq::pickle::load(reinterpret_cast<const std::uint8_t*>(flood.data()), flood.size(), o); }),
            "flood: more than 64 values"));
  o.max_values = 200;
  CHECK(saq::pickle::load(reinterpret_cast<const std::uint8_t*>(flood.data()), flood.size(), o)->items.size() == 100);
}

TEST_CASE("a TorchScript archive (LibTorch's torch::save, saqhost's old checkpoints) is refused unread") {
  saq::test::TempDir dir;
  torch::serialize::OutputArchive archive;
  archive.write("weight", at::ones({2}));
  const std::string old = (dir / "old.pt").string();
  archive.save_to(old);
  CHECK(saq::is_torchscript_archive(old));
  const std::string msg = error_of([&] { saq::read_state(old); });
  CHECK(contains(msg, old + ": a TorchScript archive"));
  CHECK(contains(msg, "saqhost convert " + old + " NEW.pt"));
  StateDict s;
  s.put_int("x", 1);
  saq::write_state((dir / "new.pt").string(), s);
  CHECK_FALSE(saq::is_torchscript_archive((dir / "new.pt").string()));
}
