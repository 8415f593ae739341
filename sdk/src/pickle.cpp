// The pickle VM: a stack machine over the opcodes of protocols 2-5 that plain data uses. It calls nothing but
// the builders of the caller's whitelist; see pickletools.py in CPython for the opcode reference.
#include <saq/pickle.hpp>

#include <cstring>
#include <fstream>
#include <stdexcept>
#include <unordered_map>

namespace saq::pickle {

namespace {

using Type = Value::Type;

class Machine {
 public:
  Machine(const std::uint8_t* data, std::size_t size, const Options& o) : p_(data), n_(size), o_(o) {}

  ValuePtr run() {
    for (;;) {
      op_at_ = pos_;
      const std::uint8_t op = take(1)[0];
      switch (op) {
        case 0x80: protocol(); break;                                   // PROTO
        case 0x95: take(8); break;                                      // FRAME: a length hint only
        case '.': return stop();                                        // STOP
        case '(': marks_.push_back(stack_.size()); break;               // MARK
        case '0': pop(); break;                                         // POP
        case '1': pop_mark(); break;                                    // POP_MARK
        case '2': push(top()); break;                                   // DUP
        case 'N': push(Value::make(Type::None)); break;                 // NONE
        case 0x88: case 0x89: push_bool(op == 0x88); break;             // NEWTRUE, NEWFALSE
        case 'J': push(Value::of_int(static_cast<std::int32_t>(le(4)))); break;  // BININT
        case 'K': push(Value::of_int(static_cast<std::int64_t>(le(1)))); break;  // BININT1
        case 'M': push(Value::of_int(static_cast<std::int64_t>(le(2)))); break;  // BININT2
        case 0x8a: push(long_int(le(1))); break;                        // LONG1
        case 0x8b: push(long_int(length(4, true))); break;              // LONG4
        case 'G': push_float(); break;                                  // BINFLOAT
        case 0x8c: push(Value::of_str(text(le(1)))); break;             // SHORT_BINUNICODE
        case 'X': push(Value::of_str(text(length(4, false)))); break;   // BINUNICODE
        case 0x8d: push(Value::of_str(text(length(8, false)))); break;  // BINUNICODE8
        case 'C': push(Value::of_bytes(text(le(1)))); break;            // SHORT_BINBYTES
        case 'B': push(Value::of_bytes(text(length(4, false)))); break; // BINBYTES
        case 0x8e: push(Value::of_bytes(text(length(8, false)))); break;  // BINBYTES8
        case 0x96: push(Value::of_bytes(text(length(8, false)))); break;  // BYTEARRAY8
        case 'U': push(Value::of_bytes(text(le(1)))); break;            // SHORT_BINSTRING (Python 2 str)
        case 'T': push(Value::of_bytes(text(length(4, true)))); break;  // BINSTRING
        case '}': push(Value::make(Type::Dict)); break;                 // EMPTY_DICT
        case ']': push(Value::make(Type::List)); break;                 // EMPTY_LIST
        case ')': push(Value::make(Type::Tuple)); break;                // EMPTY_TUPLE
        case 0x85: tuple(1); break;                                     // TUPLE1
        case 0x86: tuple(2); break;                                     // TUPLE2
        case 0x87: tuple(3); break;                                     // TUPLE3
        case 't': tuple_mark(); break;                                  // TUPLE
        case 'l': list_mark(); break;                                   // LIST
        case 'd': dict_mark(); break;                                   // DICT
        case 's': setitems(stack_.size() - 2); break;                   // SETITEM
        case 'u': setitems(mark()); break;                              // SETITEMS
        case 'a': appends(stack_.size() - 1); break;                    // APPEND
        case 'e': appends(mark()); break;                               // APPENDS
        case 'q': put(le(1)); break;                                    // BINPUT
        case 'r': put(le(4)); break;                                    // LONG_BINPUT
        case 0x94: put(memo_.size()); break;                            // MEMOIZE
        case 'h': get(le(1)); break;                                    // BINGET
        case 'j': get(le(4)); break;                                    // LONG_BINGET
        case 'c': global_text(); break;                                 // GLOBAL
        case 0x93: global_stack(); break;                               // STACK_GLOBAL
        case 'R': reduce(); break;                                      // REDUCE
        case 0x81: reduce(); break;                                     // NEWOBJ: cls, args -> cls(*args)
        case 'b': build(); break;                                       // BUILD
        case 'Q': persistent(); break;                                  // BINPERSID
        default: fail("opcode 0x" + hex(op) + " (" + printable(op) + ") is not one this reader accepts");
      }
    }
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw std::runtime_error(o_.source + ": " + why + " at byte " + std::to_string(op_at_));
  }

  static std::string hex(std::uint8_t b) {
    const char* d = "0123456789abcdef";
    return {d[b >> 4], d[b & 15]};
  }
  static std::string printable(std::uint8_t b) {
    return b >= 0x20 && b < 0x7f ? "'" + std::string(1, static_cast<char>(b)) + "'" : "binary";
  }

  const std::uint8_t* take(std::size_t k) {
    if (k > n_ - pos_)
      fail("truncated pickle: needs " + std::to_string(k) + " more bytes, " + std::to_string(n_ - pos_) + " left");
    const std::uint8_t* at = p_ + pos_;
    pos_ += k;
    return at;
  }
  std::uint64_t le(int bytes) {
    const std::uint8_t* b = take(static_cast<std::size_t>(bytes));
    std::uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | b[i];
    return v;
  }
  std::uint64_t length(int bytes, bool is_signed) {
    std::uint64_t v = le(bytes);
    if (is_signed && bytes == 4 && (v & 0x80000000u)) fail("negative length");
    if (v > n_ - pos_) fail("truncated pickle: a length of " + std::to_string(v) + " bytes runs past the end (" +
                            std::to_string(n_ - pos_) + " left)");
    return v;
  }
  std::string text(std::uint64_t k) {
    const std::uint8_t* b = take(static_cast<std::size_t>(k));
    return std::string(reinterpret_cast<const char*>(b), static_cast<std::size_t>(k));
  }

  void protocol() {
    std::uint8_t v = take(1)[0];
    if (v < 2 || v > 5) fail("pickle protocol " + std::to_string(v) + " is not one of 2..5");
  }
  ValuePtr long_int(std::uint64_t k) {
    if (k > 8) fail("an integer of " + std::to_string(k) + " bytes does not fit in 64 bits");
    const std::uint8_t* b = take(static_cast<std::size_t>(k));
    std::uint64_t v = 0;
    for (std::uint64_t i = k; i-- > 0;) v = (v << 8) | b[i];
    if (k > 0 && k < 8 && (b[k - 1] & 0x80)) v |= ~std::uint64_t{0} << (8 * k);  // two's complement sign
    return Value::of_int(static_cast<std::int64_t>(v));
  }
  void push_bool(bool b) {
    auto v = Value::make(Type::Bool);
    v->boolean = b;
    push(v);
  }
  void push_float() {
    const std::uint8_t* b = take(8);
    std::uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits = (bits << 8) | b[i];  // big-endian
    auto v = Value::make(Type::Float);
    std::memcpy(&v->real, &bits, 8);
    push(v);
  }

  void push(ValuePtr v) {
    if (++pushed_ > o_.max_values) fail("more than " + std::to_string(o_.max_values) + " values (a state holds far fewer)");
    stack_.push_back(std::move(v));
  }
  const ValuePtr& top() {
    if (stack_.size() <= floor()) fail("stack underflow");
    return stack_.back();
  }
  ValuePtr pop() {
    ValuePtr v = top();
    stack_.pop_back();
    return v;
  }
  std::size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  std::size_t mark() {
    if (marks_.empty()) fail("no MARK to close");
    std::size_t m = marks_.back();
    marks_.pop_back();
    return m;
  }
  void pop_mark() { stack_.resize(mark()); }
  ValuePtr stop() {
    if (stack_.size() != 1 || !marks_.empty())
      fail("STOP with " + std::to_string(stack_.size()) + " values on the stack");
    return stack_.back();
  }

  std::vector<ValuePtr> take_from(std::size_t at) {
    std::vector<ValuePtr> items(stack_.begin() + static_cast<std::ptrdiff_t>(at), stack_.end());
    stack_.resize(at);
    return items;
  }
  void tuple(std::size_t k) {
    if (stack_.size() < floor() + k) fail("stack underflow");
    auto t = Value::make(Type::Tuple);
    t->items = take_from(stack_.size() - k);
    push(t);
  }
  void tuple_mark() {
    auto t = Value::make(Type::Tuple);
    t->items = take_from(mark());
    push(t);
  }
  void list_mark() {
    auto l = Value::make(Type::List);
    l->items = take_from(mark());
    push(l);
  }
  void dict_mark() {
    push(Value::make(Type::Dict));
    setitems(mark(), stack_.size() - 1);
  }
  void setitems(std::size_t from) {
    if (from == 0 || from > stack_.size()) fail("stack underflow");
    setitems(from, from - 1);
  }
  void setitems(std::size_t from, std::size_t target) {
    if (target < floor()) fail("stack underflow");
    if ((stack_.size() - from) % 2) fail("SETITEMS with an odd number of values");
    const ValuePtr& d = stack_[target];
    if (d->type != Type::Dict) fail("SETITEM on a " + d->describe());
    for (std::size_t i = from; i < stack_.size(); i += 2) {
      ValuePtr& k = stack_[i];
      bool replaced = false;
      if (k->is_text())
        for (auto& e : d->entries)
          if (e.first->type == k->type && e.first->text == k->text) e.second = stack_[i + 1], replaced = true;
      if (!replaced) d->entries.emplace_back(k, stack_[i + 1]);
    }
    stack_.resize(from);
  }
  void appends(std::size_t from) {
    if (from == 0 || from > stack_.size() || from - 1 < floor()) fail("stack underflow");
    const ValuePtr& l = stack_[from - 1];
    if (l->type != Type::List) fail("APPEND to a " + l->describe());
    l->items.insert(l->items.end(), stack_.begin() + static_cast<std::ptrdiff_t>(from), stack_.end());
    stack_.resize(from);
  }

  void put(std::uint64_t index) { memo_[index] = top(); }
  void get(std::uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) fail("memo entry " + std::to_string(index) + " was never stored");
    push(it->second);
  }

  void global(const std::string& module, const std::string& name) {
    const std::string full = module + "." + name;
    if (!o_.globals.count(full)) fail("global " + full + " is not allowed in this file (nothing was run)");
    auto g = Value::make(Type::Global);
    g->cls = full;
    push(g);
  }
  void global_text() {
    auto line = [&] {
      std::string s;
      for (;;) {
        char c = static_cast<char>(take(1)[0]);
        if (c == '\n') return s;
        if (s.size() > 256) fail("GLOBAL name longer than 256 characters");
        s += c;
      }
    };
    std::string module = line();
    global(module, line());
  }
  void global_stack() {
    ValuePtr name = pop(), module = pop();
    if (!name->is_text() || !module->is_text()) fail("STACK_GLOBAL needs two strings");
    global(module->text, name->text);
  }

  void reduce() {
    ValuePtr args = pop(), callee = pop();
    if (callee->type != Type::Global) fail("call of a " + callee->describe() + " (only listed globals are called)");
    if (args->type != Type::Tuple) fail("call of " + callee->cls + " with a " + args->describe() + " for arguments");
    const Global& g = o_.globals.at(callee->cls);
    if (!g.call) fail("global " + callee->cls + " may not be called");
    ValuePtr out;
    try {
      out = g.call(args->items);
    } catch (const std::exception& e) {
      fail(callee->cls + ": " + e.what());
    }
    if (out->type == Type::Object && out->cls.empty()) out->cls = callee->cls;
    push(out);
  }
  void build() {
    ValuePtr state = pop();
    Value& self_value = *top();
    Value* self = &self_value;
    auto it = self->cls.empty() ? o_.globals.end() : o_.globals.find(self->cls);
    if (it == o_.globals.end() || !it->second.set_state) fail("BUILD on a " + self->describe() + " is not allowed");
    try {
      it->second.set_state(self_value, state);
    } catch (const std::exception& e) {
      fail(self->cls + " state: " + e.what());
    }
  }
  void persistent() {
    ValuePtr pid = pop();
    if (!o_.persistent_load) fail("persistent id (BINPERSID) in a file that may not have any");
    try {
      push(o_.persistent_load(pid));
    } catch (const std::exception& e) {
      fail(std::string("persistent id: ") + e.what());
    }
  }

  const std::uint8_t* p_;
  std::size_t n_, pos_ = 0, op_at_ = 0, pushed_ = 0;
  const Options& o_;
  std::vector<ValuePtr> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint64_t, ValuePtr> memo_;
};

}  // namespace

ValuePtr load(const std::uint8_t* data, std::size_t size, const Options& options) {
  return Machine(data, size, options).run();
}

ValuePtr load_file(const std::string& path, Options options) {
  if (options.source.empty()) options.source = path;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  in.seekg(0, std::ios::end);
  std::string bytes(static_cast<std::size_t>(in.tellg()), '\0');
  in.seekg(0);
  if (!in.read(bytes.data(), static_cast<std::streamsize>(bytes.size())))
    throw std::runtime_error(path + ": read error");
  return load(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), options);
}

}  // namespace saq::pickle
