// The restricted unpickler: plain data from hand-assembled opcodes (values from the pickle format's definition),
// numpy arrays as numpy and pickle write them (Python 3, and Python 2's BINSTRING form of the real CIFAR files),
// and refusals: globals off the list, unknown opcodes, truncation — each with its byte offset, nothing run.
#include "unit.hpp"

#include <filesystem>

#include <ATen/ATen.h>

#include <saq/pickle.hpp>

#include "support.hpp"

using namespace std::string_literals;
using saq::pickle::Value;
using saq::pickle::ValuePtr;
namespace fs = std::filesystem;

namespace {

ValuePtr run(const std::string& bytes, const saq::pickle::Globals& globals = {},
             std::size_t max_values = saq::pickle::Options{}.max_values) {
  saq::pickle::Options o;
  o.source = "mem";
  o.globals = globals;
  o.max_values = max_values;
  return saq::pickle::load(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), o);
}

std::string error_of(const std::string& bytes, const saq::pickle::Globals& globals = {}) {
  try {
    run(bytes, globals);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

using saq::test::contains;

fs::path fixture(const std::string& name) { return fs::path(saq::test::env("SAQ_SOURCE_ROOT")) / "tests/data/cifar" / name; }

}  // namespace

TEST_CASE("pickle: integers of every width, floats, strings, bytes, None and booleans") {
  // (BININT1 200, BININT2 0x1234, BININT -2, LONG1 2 bytes 0xff7f = -129, LONG1 0 bytes = 0, BINFLOAT 1.5,
  //  SHORT_BINUNICODE "é" (UTF-8 c3 a9), SHORT_BINBYTES 00 ff, None, True, False)
  ValuePtr v = run("\x80\x02(K\xc8M\x34\x12J\xfe\xff\xff\xff\x8a\x02\x7f\xff\x8a\x00G\x3f\xf8\x00\x00\x00\x00\x00\x00"
                   "\x8c\x02\xc3\xa9" "C\x02\x00\xffN\x88\x89t."s);
  REQUIRE(v->type == Value::Type::Tuple);
  REQUIRE(v->items.size() == 11);
  CHECK(v->items[0]->integer == 200);
  CHECK(v->items[1]->integer == 0x1234);
  CHECK(v->items[2]->integer == -2);
  CHECK(v->items[3]->integer == -129);
  CHECK(v->items[4]->integer == 0);
  CHECK(v->items[5]->real == 1.5);
  CHECK(v->items[6]->text == "\xc3\xa9");
  CHECK(v->items[7]->text == "\x00\xff"s);
  CHECK(v->items[8]->type == Value::Type::None);
  CHECK(v->items[9]->boolean);
  CHECK(!v->items[10]->boolean);
}

TEST_CASE("pickle: dicts, lists and the memo share one object") {
  // {"a": [1, 2], "b": <memo 1, the same list>}: EMPTY_DICT MARK "a" EMPTY_LIST BINPUT 1 MARK 1 2 APPENDS
  // "b" BINGET 1 SETITEMS STOP
  ValuePtr d = run("\x80\x02}(\x8c\x01" "a]q\x01(K\x01K\x02" "e\x8c\x01" "bh\x01u."s);
  REQUIRE(d->type == Value::Type::Dict);
  REQUIRE(d->find("a"));
  CHECK(d->find("a") == d->find("b"));
  CHECK(d->find("a")->items.size() == 2);
  CHECK(d->find("a")->items[1]->integer == 2);
}

TEST_CASE("pickle: a global off the list is refused at its byte offset, and nothing runs") {
  saq::test::TempDir dir;
  const fs::path marker = dir / "marker";
  const std::string cmd = "touch " + marker.string();
  // What pickle.dumps writes for an object whose __reduce__ is (os.system, (cmd,)): os.system is posix.system.
  const std::string reduce = "X"s + std::string(1, static_cast<char>(cmd.size())) + "\x00\x00\x00"s + cmd + "\x85R.";
  for (const std::string module : {"posix", "os"}) {
    CAPTURE(module);
    std::string msg = error_of("\x80\x02" "c" + module + "\nsystem\n" + reduce, saq::pickle::numpy_globals());
    CHECK(contains(msg, "mem: global " + module + ".system is not allowed"));
    CHECK(contains(msg, "at byte 2"));
  }
  // Protocol 4 names it with STACK_GLOBAL: builtins.eval.
  std::string msg = error_of("\x80\x04\x95\x20\x00\x00\x00\x00\x00\x00\x00\x8c\x08" "builtins\x8c\x04" "eval\x93"s + reduce);
  CHECK(contains(msg, "global builtins.eval is not allowed"));
  CHECK(contains(msg, "at byte 27"));  // PROTO 2 + FRAME 9 + SHORT_BINUNICODE 10 + 6, then STACK_GLOBAL
  CHECK(!fs::exists(marker));
}

TEST_CASE("pickle: an opcode outside the accepted set is refused, naming it and its offset") {
  // INST ('i') would call a class by name in protocol 0.
  std::string msg = error_of("\x80\x02(iposix\nsystem\n."s);
  CHECK(contains(msg, "opcode 0x69 ('i') is not one this reader accepts at byte 3"));
  CHECK(contains(error_of("\x80\x02\xff"s), "opcode 0xff"));
  CHECK(contains(error_of("\x80\x07N."s), "pickle protocol 7"));
}

TEST_CASE("pickle: an allowed global is only called as listed; BUILD and persistent ids need a builder") {
  saq::pickle::Globals g;
  g["torch.FloatStorage"] = {};  // may be named, never called
  CHECK(contains(error_of("\x80\x02" "ctorch\nFloatStorage\n)R."s, g), "global torch.FloatStorage may not be called at byte 23"));
  CHECK(contains(error_of("\x80\x02]}b."s), "BUILD on a list is not allowed"));
  CHECK(contains(error_of("\x80\x02NQ."s), "persistent id (BINPERSID) in a file that may not have any"));
}

TEST_CASE("pickle: truncated input and a malformed stream say where") {
  CHECK(contains(error_of("\x80\x02X\x10\x00\x00\x00" "abc"s), "truncated pickle: a length of 16 bytes runs past the end (3 left) at byte 2"));
  CHECK(contains(error_of("\x80\x02J\x01\x00"s), "truncated pickle: needs 4 more bytes, 2 left at byte 2"));
  CHECK(contains(error_of("\x80\x02N"s), "truncated pickle"));
  CHECK(contains(error_of("\x80\x02h\x05."s), "memo entry 5 was never stored at byte 2"));
  CHECK(contains(error_of("\x80\x02NN."s), "STOP with 2 values on the stack at byte 4"));
  CHECK(contains(error_of("\x80\x02t."s), "no MARK to close at byte 2"));
}

TEST_CASE("pickle: numpy arrays as Python 3 pickles them (protocol 2) and as Python 2 did (BINSTRING)") {
  // tests/data/cifar/make_fixture.py: byte j of image i is (7 i + 13 j) % 256; fine labels (37 i) % 100.
  at::Tensor want = at::arange(3072, at::kLong).mul(13).unsqueeze(0) + at::arange(10, at::kLong).mul(7).unsqueeze(1);
  want = want.remainder(256).to(at::kByte);
  for (const fs::path& file : {fixture("cifar-100-python/train"), fixture("train_py2")}) {
    CAPTURE(file);
    saq::pickle::Options o;
    o.globals = saq::pickle::numpy_globals();
    ValuePtr d = saq::pickle::load_file(file.string(), o);
    REQUIRE(d->type == Value::Type::Dict);
    ValuePtr data = d->find("data");
    REQUIRE(data);
    REQUIRE(data->type == Value::Type::Tensor);
    CHECK((data->tensor.scalar_type() == at::kByte));
    CHECK(at::equal(data->tensor, want));
    CHECK(d->find("fine_labels")->items[3]->integer == 11);  // 37 * 3 % 100
    CHECK(d->find("batch_label")->text == "training batch 1 of 1");
    // Without numpy on the list the same file is refused at its first global.
    std::string refused;
    try {
      saq::pickle::load_file(file.string(), {});
    } catch (const std::runtime_error& e) {
      refused = e.what();
    }
    CHECK(contains(refused, file.string() + ": global numpy.core.multiarray._reconstruct is not allowed"));
  }
}

TEST_CASE("pickle: lists nested a million deep load and are released without recursion") {
  // L0 = []; then a million times: a new list, memoised in slot 1, appended to the last one, which it replaces.
  std::string bytes = "\x80\x02]q\x00"s;
  const int depth = 1000000;
  for (int i = 0; i < depth; ++i) bytes += "]q\x01" "a0h\x01"s;
  bytes += "0h\x00."s;
  ValuePtr v = run(bytes, {}, 4 * depth);  // 2 pushes a level: above the default cap
  int seen = 0;
  for (const Value* l = v.get(); !l->items.empty(); l = l->items[0].get()) ++seen;
  CHECK(seen == depth);
  v.reset();  // a recursive release would overflow the stack here
}
