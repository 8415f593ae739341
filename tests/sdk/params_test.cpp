// Schema ranges and choices, Params reads and failure messages, and to_toml of every value type.
#include "unit.hpp"

#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <saq/params.hpp>

namespace saq {

namespace {
std::string failure(const Params& p, const std::string& key, const std::string& message) {
  try {
    p.fail(key, message);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("a closed range accepts its ends and rejects what lies outside") {
  Schema s;
  ParamSpec& spec = s.real("momentum", 0.9, "doc").min(0).max(1);
  CHECK(spec.range_text() == "[0, 1]");
  CHECK(spec.check(0.0) == "");
  CHECK(spec.check(1.0) == "");
  CHECK(spec.check(0.5) == "");
  CHECK(spec.check(-0.25) == "must be in [0, 1], got -0.25");
  CHECK(spec.check(1.5) == "must be in [0, 1], got 1.5");
}

TEST_CASE("an open range rejects its ends") {
  Schema s;
  ParamSpec& spec = s.real("beta", 0.5, "doc").above(0).below(1);
  CHECK(spec.range_text() == "(0, 1)");
  CHECK(spec.check(0.0) == "must be in (0, 1), got 0");
  CHECK(spec.check(1.0) == "must be in (0, 1), got 1");
  CHECK(spec.check(1e-12) == "");
}

TEST_CASE("a half-bounded range checks its finite end; an unbounded one has no text") {
  Schema s;
  ParamSpec& lr = s.real("lr", 0.1, "doc").above(0);
  CHECK(lr.check(1e300) == "");
  CHECK(lr.check(0.0) == "must be in (0, inf), got 0");
  CHECK(s.real("free", 0.0, "doc").range_text() == "");
  CHECK(s.real("free2", 0.0, "doc").check(-1e300) == "");
}

TEST_CASE("an infinite end of a range is written open, as params.hpp documents") {
  Schema s;
  CHECK(s.real("lr", 0.1, "doc").above(0).range_text() == "(0, inf)");
  CHECK(s.integer("n", 1, "doc").min(0).range_text() == "[0, inf)");
  CHECK(s.real("neg", -1.0, "doc").below(0).range_text() == "(-inf, 0)");
}

TEST_CASE("NaN is outside every range") {
  Schema s;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK(s.real("x", 0.0, "doc").min(0).max(1).check(nan).rfind("must be in [0, 1], got ", 0) == 0);
  CHECK(s.real("y", 0.0, "doc").check(nan) == "must be a number, got nan");  // unbounded, still refused
}

TEST_CASE("to_toml escapes control characters, which TOML forbids raw in strings") {
  CHECK(to_toml(std::string("a\rb\tc")) == "\"a\\rb\\tc\"");
  CHECK(to_toml(std::string("bell\x07")) == "\"bell\\u0007\"");
}

TEST_CASE("get<int> refuses a value outside int") {
  Params p("s", "x", "f.toml:1:1");
  p.set("n", std::int64_t{1} << 40, "f.toml:2:5");
  CHECK_THROWS_WITH_AS(p.get<int>("n"), "f.toml:2:5: s.n: does not fit in an int, got 1099511627776",
                       std::invalid_argument);
}

TEST_CASE("choices accept listed strings only and list them when refusing") {
  Schema s;
  ParamSpec& spec = s.choice("mode", "a", {"a", "b"}, "doc");
  CHECK(spec.check(std::string("b")) == "");
  CHECK(spec.check(std::string("c")) == "must be one of \"a\", \"b\", got \"c\"");
  CHECK(s.string("free", "", "doc").check(std::string("anything")) == "");
}

TEST_CASE("a schema refuses a name twice, also across merge") {
  Schema s;
  s.real("lr", 0.1, "doc");
  CHECK_THROWS_AS(s.integer("lr", 1, "doc"), std::logic_error);

  Schema other;
  other.integer("batch_size", 128, "doc");
  other.boolean("flag", false, "doc");
  s.merge(other);
  REQUIRE(s.specs().size() == 3);  // lr + the two merged
  REQUIRE(s.find("batch_size") != nullptr);
  CHECK(s.find("batch_size")->type == ParamType::Int);
  CHECK(std::get<std::int64_t>(*s.find("batch_size")->fallback) == 128);
  CHECK(s.find("nope") == nullptr);
  CHECK_THROWS_AS(s.merge(other), std::logic_error);
}

TEST_CASE("references handed out by a schema stay valid as it grows") {
  Schema s;
  ParamSpec& first = s.real("first", 1.0, "doc");
  for (int i = 0; i < 100; ++i) s.integer("k" + std::to_string(i), i, "doc");
  first.min(0);  // would write to freed memory if specs lived in a vector
  CHECK(s.find("first")->lo == 0.0);
}

TEST_CASE("Params reads typed values; an integer reads as a double") {
  Params p("optimizer", "sgd", "pipeline.toml:3:1");
  p.set("steps", std::int64_t{7}, "pipeline.toml:4:1");
  p.set("lr", 0.25, "pipeline.toml:5:1");
  p.set("name", std::string("x"), "default");
  p.set("on", true, "default");
  p.set("ms", std::vector<std::int64_t>{2, 4}, "default");
  CHECK(p.get<std::int64_t>("steps") == 7);
  CHECK(p.get<int>("steps") == 7);
  CHECK(p.get<double>("steps") == 7.0);
  CHECK(p.get<double>("lr") == 0.25);
  CHECK(p.get<std::string>("name") == "x");
  CHECK(p.get<bool>("on"));
  CHECK(p.get<std::vector<std::int64_t>>("ms") == std::vector<std::int64_t>{2, 4});
  CHECK(p.has("lr"));
  CHECK_FALSE(p.has("momentum"));
}

TEST_CASE("a read of the wrong type or of an undeclared key fails with the key's place") {
  Params p("optimizer", "sgd", "pipeline.toml:3:1");
  p.set("lr", 0.25, "pipeline.toml:5:1");
  CHECK_THROWS_WITH_AS(p.get<std::int64_t>("lr"), "pipeline.toml:5:1: optimizer.lr: has the wrong type for this read",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(p.get<double>("momentum"), "optimizer.momentum: read but not declared in the schema of 'sgd'",
                       std::logic_error);
}

TEST_CASE("fail() names the entry's origin, or the section's when the entry is a default") {
  Params p("optimizer", "sgd", "pipeline.toml:3:1");
  p.set("lr", 0.1, "pipeline.toml:5:6");
  p.set("momentum", 0.9, "default");
  CHECK(failure(p, "lr", "too big") == "pipeline.toml:5:6: optimizer.lr: too big");
  CHECK(failure(p, "momentum", "too big") == "pipeline.toml:3:1: optimizer.momentum: too big");
  CHECK(failure(p, "absent", "bad") == "pipeline.toml:3:1: optimizer.absent: bad");

  Params bare("", "sgd", "");  // no section, no origin: just the key
  CHECK(failure(bare, "lr", "bad") == "lr: bad");
}

TEST_CASE("child() gives the Params of a component-valued key") {
  auto base = std::make_shared<Params>("optimizer.base", "sgd", "pipeline.toml:4:8");
  base->set("lr", 0.05, "pipeline.toml:4:27");
  Params p("optimizer", "sam", "pipeline.toml:1:1");
  p.set("base", ParamsPtr(base), "pipeline.toml:4:8");
  p.set("rho", 0.05, "default");
  CHECK(p.child("base").use() == "sgd");
  CHECK(p.child("base").get<double>("lr") == 0.05);
  CHECK_THROWS_AS(p.child("rho"), std::invalid_argument);
}

TEST_CASE("to_toml writes doubles as the shortest text that reads back, always with a point or exponent") {
  CHECK(to_toml(0.1) == "0.1");
  CHECK(to_toml(1.0) == "1.0");
  CHECK(to_toml(-2.0) == "-2.0");
  CHECK(to_toml(5e-4) == "0.0005");
  CHECK(to_toml(1e-5) == "1e-05");
  CHECK(to_toml(0.1 + 0.2) == "0.30000000000000004");  // 0.1 + 0.2 != 0.3 in binary: 17 digits needed
  CHECK(to_toml(std::numeric_limits<double>::infinity()) == "inf");
  const double third = 1.0 / 3.0;
  CHECK(std::stod(to_toml(third)) == third);
}

TEST_CASE("to_toml writes booleans, integers, strings and lists as TOML") {
  CHECK(to_toml(true) == "true");
  CHECK(to_toml(false) == "false");
  CHECK(to_toml(std::int64_t{-42}) == "-42");
  CHECK(to_toml(std::string("sgd")) == "\"sgd\"");
  CHECK(to_toml(std::string("a\"b\\c")) == "\"a\\\"b\\\\c\"");
  CHECK(to_toml(std::string("two\nlines")) == "\"two\\nlines\"");
  CHECK(to_toml(std::vector<std::int64_t>{80, 120}) == "[80, 120]");
  CHECK(to_toml(std::vector<std::int64_t>{}) == "[]");
  CHECK(to_toml(std::vector<double>{0.5, 2.0}) == "[0.5, 2.0]");
  CHECK(to_toml(std::vector<std::string>{"a", "b"}) == "[\"a\", \"b\"]");
}

TEST_CASE("to_toml writes a nested component as an inline table, keys in order") {
  auto base = std::make_shared<Params>("optimizer.base", "sgd", "default");
  base->set("momentum", 0.9, "default");
  base->set("lr", 0.1, "default");
  base->set("nesterov", true, "default");
  CHECK(to_toml(ParamsPtr(base)) == "{ use = \"sgd\", lr = 0.1, momentum = 0.9, nesterov = true }");
}

TEST_CASE("a table list reads back in file order and writes as an array of inline tables") {
  auto first = std::make_shared<Params>("stage[0].group[0]", "", "default");
  first->set("match", std::string("*.bias"), "default");
  first->set("lr", 0.5, "default");
  auto second = std::make_shared<Params>("stage[0].group[1]", "", "default");
  second->set("match", std::string("fc.*"), "default");
  Params stage("stage[0]", "train", "default");
  stage.set("group", std::vector<ParamsPtr>{first, second}, "default");
  REQUIRE(stage.tables("group").size() == 2);
  CHECK(stage.tables("group")[1]->get<std::string>("match") == "fc.*");
  // no `use` in a plain table; keys in name order
  CHECK(to_toml(stage.entries().at("group").value) == "[{ lr = 0.5, match = \"*.bias\" }, { match = \"fc.*\" }]");
}

TEST_CASE("optional() and required() both drop the default; only optional() lets the key be absent") {
  Schema s;
  ParamSpec& opt = s.real("lr", 0.1, "doc").optional();
  CHECK_FALSE(opt.fallback.has_value());
  CHECK(opt.is_optional);
  ParamSpec& req = s.real("rho", 0.1, "doc").optional().required();
  CHECK_FALSE(req.fallback.has_value());
  CHECK_FALSE(req.is_optional);
}

TEST_CASE("kind and type names are the words the messages use") {
  CHECK(std::string(kind_name(Kind::Dataset)) == "dataset");
  CHECK(std::string(kind_name(Kind::Optimizer)) == "optimizer");
  CHECK(std::string(type_name(ParamType::FloatList)) == "float list");
}

}  // namespace saq
