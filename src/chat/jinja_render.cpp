#include "chat/jinja_render.h"

#include <climits>
#include <cmath>

#include "chat/jinja_builtins.h"
#include "core/check.h"

namespace meshlm::jinja {
namespace {
using K = Value::Kind;

enum class Flow { kNormal, kBreak, kContinue };

class Renderer {
 public:
  static constexpr int64_t kMaxSteps = 5000000;  // evaluations and loop iterations per render

  explicit Renderer(const Value& context) { scopes_.push_back(context.is(K::kObject) ? *context.o : Object{}); }

  Flow run(const Body& body, std::string& out) {
    for (const Node& n : body) {
      const Flow f = node(n, out);
      if (f != Flow::kNormal) return f;
    }
    return Flow::kNormal;
  }

 private:
  void step() {
    MESH_CHECK(++steps_ <= kMaxSteps, "the chat template takes more than ", kMaxSteps,
               " steps (a loop that does not end?)");
  }

  Flow node(const Node& n, std::string& out) {
    step();
    switch (n.kind) {
      case Node::Kind::kText: check_text(out.size() + n.text.size()), out += n.text; return Flow::kNormal;
      case Node::Kind::kOutput: {
        const std::string text = to_string(eval(*n.expr));
        check_text(out.size() + text.size());
        out += text;
        return Flow::kNormal;
      }
      case Node::Kind::kIf:
        for (const auto& [cond, body] : n.branches)
          if (!cond || eval(*cond).truthy()) return run(body, out);
        return Flow::kNormal;
      case Node::Kind::kFor: return loop(n, out);
      case Node::Kind::kSet: assign(n, eval(*n.expr)); return Flow::kNormal;
      case Node::Kind::kSetBlock: {
        std::string captured;
        run(n.body, captured);
        assign(n, Value::string(captured));
        return Flow::kNormal;
      }
      case Node::Kind::kBreak: return Flow::kBreak;
      case Node::Kind::kContinue: return Flow::kContinue;
    }
    return Flow::kNormal;
  }

  void assign(const Node& n, Value v) {
    if (n.attr.empty()) {
      set_var(n.targets[0], std::move(v));
      return;
    }
    Value ns = lookup(n.targets[0]);
    MESH_CHECK(ns.is(K::kObject), "line ", n.line, ": cannot set an attribute of a ", ns.type_name());
    check_nesting(v, ns.o.get());
    ns.set(n.attr, std::move(v));  // shared: changes the namespace object everywhere
  }

  Flow loop(const Node& n, std::string& out) {
    const Value seq = eval(*n.expr);
    Array all;
    if (seq.is(K::kArray)) all = *seq.a;
    else if (seq.is(K::kObject)) for (const auto& [k, v] : *seq.o) all.push_back(Value::string(k));
    else if (seq.is(K::kString)) for (char c : seq.s) all.push_back(Value::string(std::string(1, c)));
    else MESH_CHECK(!seq.defined() || seq.is(K::kNone), "line ", n.line, ": cannot loop over a ", seq.type_name());
    Array items;
    for (const Value& item : all) {
      step();
      if (n.filter) {
        scopes_.emplace_back();
        bind(n, item);
        const bool keep = eval(*n.filter).truthy();
        scopes_.pop_back();
        if (!keep) continue;
      }
      items.push_back(item);
    }
    if (items.empty()) return run(n.else_body, out);
    const int64_t len = int64_t(items.size());
    for (int64_t k = 0; k < len; ++k) {
      step();
      scopes_.emplace_back();
      bind(n, items[size_t(k)]);
      Value info = Value::object({{"index", Value::integer(k + 1)}, {"index0", Value::integer(k)},
                                  {"revindex", Value::integer(len - k)}, {"revindex0", Value::integer(len - k - 1)},
                                  {"first", Value::boolean(k == 0)}, {"last", Value::boolean(k == len - 1)},
                                  {"length", Value::integer(len)}});
      if (k > 0) info.set("previtem", items[size_t(k - 1)]);
      if (k + 1 < len) info.set("nextitem", items[size_t(k + 1)]);
      scopes_.back().emplace_back("loop", info);
      const Flow f = run(n.body, out);
      scopes_.pop_back();
      if (f == Flow::kBreak) break;
    }
    return Flow::kNormal;
  }

  void bind(const Node& n, const Value& item) {
    if (n.targets.size() == 1) {
      set_var(n.targets[0], item);
      return;
    }
    MESH_CHECK(item.is(K::kArray) && item.a->size() == n.targets.size(), "line ", n.line, ": cannot unpack a ",
               item.type_name(), " into ", n.targets.size(), " loop variables");
    for (size_t k = 0; k < n.targets.size(); ++k) set_var(n.targets[k], (*item.a)[k]);
  }

  void set_var(const std::string& name, Value v) {
    for (auto& [k, x] : scopes_.back())
      if (k == name) {
        x = std::move(v);
        return;
      }
    scopes_.back().emplace_back(name, std::move(v));
  }

  Value lookup(const std::string& name) const {
    for (auto s = scopes_.rbegin(); s != scopes_.rend(); ++s)
      for (const auto& [k, v] : *s)
        if (k == name) return v;
    return Value();
  }

  Args args_of(const Expr& e, size_t first) {
    Args a;
    for (size_t k = first; k < e.args.size(); ++k) a.positional.push_back(eval(*e.args[k]));
    for (const auto& [k, x] : e.kwargs) a.keyword.emplace_back(k, eval(*x));
    return a;
  }

  Value eval(const Expr& e) {
    step();
    switch (e.kind) {
      case Expr::Kind::kLiteral: return e.literal;
      case Expr::Kind::kName: return lookup(e.name);
      case Expr::Kind::kList: {
        Array a;
        for (const ExprPtr& x : e.args) a.push_back(eval(*x));
        Value list = Value::array(std::move(a));
        check_nesting(list);
        return list;
      }
      case Expr::Kind::kDict: {
        Value d = Value::object();
        for (size_t k = 0; k < e.args.size(); ++k) d.set(to_string(eval(*e.dict_keys[k])), eval(*e.args[k]));
        check_nesting(d);
        return d;
      }
      case Expr::Kind::kAttr: {
        const Value obj = eval(*e.args[0]);
        const Value* v = obj.find(e.name);
        return v ? *v : Value();
      }
      case Expr::Kind::kIndex: return index(eval(*e.args[0]), eval(*e.args[1]));
      case Expr::Kind::kSlice: return slice(e);
      case Expr::Kind::kCall: return call(e);
      case Expr::Kind::kFilter: return apply_filter(e.name, eval(*e.args[0]), args_of(e, 1));
      case Expr::Kind::kTest: return Value::boolean(apply_test(e.name, eval(*e.args[0]), args_of(e, 1)) != e.negate);
      case Expr::Kind::kUnary: {
        const Value v = eval(*e.args[0]);
        if (e.name == "not") return Value::boolean(!v.truthy());
        MESH_CHECK(v.is_number(), "unary ", e.name, " on a ", v.type_name());
        if (e.name == "+") return v;
        return v.is(K::kInt) ? Value::integer(-v.i) : Value::number(-v.f);
      }
      case Expr::Kind::kBinary: return binary(e);
      case Expr::Kind::kTernary:
        if (eval(*e.args[1]).truthy()) return eval(*e.args[0]);
        return e.args[2] ? eval(*e.args[2]) : Value();
    }
    return Value();
  }

  Value call(const Expr& e) {
    const Expr& callee = *e.args[0];
    const Args args = args_of(e, 1);
    if (callee.kind == Expr::Kind::kAttr) {
      const Value obj = eval(*callee.args[0]);
      bool found = false;
      Value r = call_method(obj, callee.name, args, found);
      MESH_CHECK(found, "a ", obj.type_name(), " has no method '", callee.name, "' in meshlm's chat templates");
      return r;
    }
    MESH_CHECK(callee.kind == Expr::Kind::kName, "only named functions and methods can be called");
    return call_global(callee.name, args);
  }

  static Value index(const Value& obj, const Value& key) {
    if (obj.is(K::kObject)) {
      const Value* v = obj.find(to_string(key));
      return v ? *v : Value();
    }
    if ((obj.is(K::kArray) || obj.is(K::kString)) && key.is(K::kInt)) {
      const int64_t n = obj.is(K::kArray) ? int64_t(obj.a->size()) : int64_t(obj.s.size());
      const int64_t k = key.i < 0 ? key.i + n : key.i;
      if (k < 0 || k >= n) return Value();
      return obj.is(K::kArray) ? (*obj.a)[size_t(k)] : Value::string(obj.s.substr(size_t(k), 1));
    }
    return Value();
  }

  Value slice(const Expr& e) {
    const Value obj = eval(*e.args[0]);
    MESH_CHECK(obj.is(K::kArray) || obj.is(K::kString), "cannot slice a ", obj.type_name());
    const int64_t n = obj.is(K::kArray) ? int64_t(obj.a->size()) : int64_t(obj.s.size());
    const int64_t step = e.args[3] ? eval(*e.args[3]).i : 1;
    MESH_CHECK(step != 0, "slice step must not be zero");
    auto bound = [&](const ExprPtr& p, int64_t dflt) {
      if (!p) return dflt;
      int64_t k = eval(*p).i;
      if (k < 0) k += n;
      return step > 0 ? std::clamp<int64_t>(k, 0, n) : std::clamp<int64_t>(k, -1, n - 1);
    };
    const int64_t b = bound(e.args[1], step > 0 ? 0 : n - 1), end = bound(e.args[2], step > 0 ? n : -1);
    Array a;
    std::string s;
    for (int64_t k = b; step > 0 ? k < end : k > end; k += step) {
      if (obj.is(K::kArray)) a.push_back((*obj.a)[size_t(k)]);
      else s += obj.s[size_t(k)];
    }
    return obj.is(K::kArray) ? Value::array(std::move(a)) : Value::string(s);
  }

  Value binary(const Expr& e) {
    const std::string& op = e.name;
    const Value x = eval(*e.args[0]);
    if (op == "and") return x.truthy() ? eval(*e.args[1]) : x;
    if (op == "or") return x.truthy() ? x : eval(*e.args[1]);
    const Value y = eval(*e.args[1]);
    if (op == "==") return Value::boolean(equal(x, y));
    if (op == "!=") return Value::boolean(!equal(x, y));
    if (op == "~") {
      std::string a = to_string(x), b = to_string(y);
      check_text(a.size() + b.size());
      return Value::string(a + b);
    }
    if (op == "in" || op == "notin") {
      bool in = false;
      if (y.is(K::kString)) in = y.s.find(to_string(x)) != std::string::npos;
      else if (y.is(K::kArray)) for (const Value& v : *y.a) in = in || equal(v, x);
      else if (y.is(K::kObject)) in = y.find(to_string(x)) != nullptr;
      else MESH_CHECK(!y.defined(), "'in' needs a string, list or dict on the right, got ", y.type_name());
      return Value::boolean(in == (op == "in"));
    }
    if (op == "+" && x.is(K::kString) && y.is(K::kString)) {
      check_text(x.s.size() + y.s.size());
      return Value::string(x.s + y.s);
    }
    if (op == "+" && x.is(K::kArray) && y.is(K::kArray)) {
      Array a = *x.a;
      a.insert(a.end(), y.a->begin(), y.a->end());
      return Value::array(std::move(a));
    }
    if (op == "*" && x.is(K::kString) && y.is(K::kInt)) {
      MESH_CHECK(y.i <= 0 || x.s.empty() || x.s.size() <= kMaxText / size_t(y.i),
                 "the chat template builds a string of more than ", kMaxText >> 20, " MiB");
      std::string s;
      for (int64_t k = 0; k < y.i; ++k) s += x.s;
      return Value::string(s);
    }
    if ((op == "<" || op == ">" || op == "<=" || op == ">=") && x.is(K::kString) && y.is(K::kString)) {
      const int c = x.s.compare(y.s);
      return Value::boolean(op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0);
    }
    MESH_CHECK(x.is_number() && y.is_number(), "cannot apply '", op, "' to a ", x.type_name(), " and a ",
               y.type_name());
    const bool ints = x.is(K::kInt) && y.is(K::kInt);
    const double a = x.as_double(), b = y.as_double();
    if (op == "<") return Value::boolean(a < b);
    if (op == ">") return Value::boolean(a > b);
    if (op == "<=") return Value::boolean(a <= b);
    if (op == ">=") return Value::boolean(a >= b);
    if (op == "+" || op == "-" || op == "*") {
      if (!ints) return Value::number(op == "+" ? a + b : op == "-" ? a - b : a * b);
      int64_t r = 0;  // overflow is an error (Python's integers would grow)
      const bool overflow = op == "+"   ? __builtin_add_overflow(x.i, y.i, &r)
                            : op == "-" ? __builtin_sub_overflow(x.i, y.i, &r)
                                        : __builtin_mul_overflow(x.i, y.i, &r);
      MESH_CHECK(!overflow, "integer overflow in the chat template");
      return Value::integer(r);
    }
    if (op == "**") {
      if (!ints || y.i < 0) return Value::number(std::pow(a, b));
      const double p = std::pow(a, b);
      MESH_CHECK(std::fabs(p) < 9.2e18, "integer overflow in the chat template");
      return Value::integer(int64_t(p));
    }
    MESH_CHECK(b != 0, "division by zero in the chat template");
    if (op == "/") return Value::number(a / b);
    MESH_CHECK(!ints || !(x.i == INT64_MIN && y.i == -1), "integer overflow in the chat template");
    if (op == "//") return ints ? Value::integer(int64_t(std::floor(a / b))) : Value::number(std::floor(a / b));
    if (op == "%") {
      if (ints) return Value::integer(x.i % y.i + (x.i % y.i != 0 && (x.i % y.i < 0) != (y.i < 0) ? y.i : 0));
      return Value::number(a - b * std::floor(a / b));
    }
    fail("unknown operator '", op, "'");
  }

  std::vector<Object> scopes_;
  int64_t steps_ = 0;
};

}  // namespace

std::string render(const Body& body, const Value& context) {
  std::string out;
  Renderer(context).run(body, out);
  return out;
}

}  // namespace meshlm::jinja
