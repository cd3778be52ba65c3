#include "chat/jinja_builtins.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>

#include "core/check.h"

namespace meshlm::jinja {

constexpr int64_t kMaxRange = 1000000;  // numbers one range() may make
namespace {
using K = Value::Kind;

const char* kSpace = " \t\n\r\f\v";

std::string strip(const std::string& s, const std::string& chars, bool left, bool right) {
  size_t b = 0, e = s.size();
  if (left) b = s.find_first_not_of(chars);
  if (b == std::string::npos) return "";
  if (right) e = s.find_last_not_of(chars) + 1;
  return s.substr(b, e - b);
}

std::string upper(std::string s) {
  for (char& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string title(std::string s) {
  bool start = true;
  for (char& c : s) {
    const bool alpha = std::isalpha(static_cast<unsigned char>(c));
    c = char(start ? std::toupper(static_cast<unsigned char>(c)) : std::tolower(static_cast<unsigned char>(c)));
    start = !alpha;
  }
  return s;
}
std::string replace(std::string s, const std::string& from, const std::string& to, int64_t count = -1) {
  if (from.empty()) return s;
  for (size_t at = s.find(from); at != std::string::npos && count != 0; at = s.find(from, at + to.size()), --count)
    check_text(s.size() + to.size()), s.replace(at, from.size(), to);
  return s;
}

Array items(const Value& v) {
  Array out;
  for (const auto& [k, x] : *v.o) out.push_back(Value::array({Value::string(k), x}));
  return out;
}

// What a for loop or list() sees: list items, dict keys, string characters.
Array iterate(const Value& v) {
  if (v.is(K::kArray)) return *v.a;
  Array out;
  if (v.is(K::kObject))
    for (const auto& [k, x] : *v.o) out.push_back(Value::string(k));
  if (v.is(K::kString))
    for (char c : v.s) out.push_back(Value::string(std::string(1, c)));
  MESH_CHECK(v.is(K::kArray) || v.is(K::kObject) || v.is(K::kString) || !v.defined(), "a ", v.type_name(),
             " is not iterable");
  return out;
}

Value attribute(const Value& v, const std::string& path) {
  Value cur = v;
  size_t pos = 0;
  while (pos <= path.size()) {
    const size_t dot = std::min(path.find('.', pos), path.size());
    const Value* next = cur.find(path.substr(pos, dot - pos));
    cur = next ? *next : Value();
    pos = dot + 1;
  }
  return cur;
}

int64_t length(const Value& v) {
  if (v.is(K::kString)) return int64_t(v.s.size());  // bytes; chat templates compare lengths of ASCII mostly
  if (v.is(K::kArray)) return int64_t(v.a->size());
  if (v.is(K::kObject)) return int64_t(v.o->size());
  fail("length of a ", v.type_name());
}

}  // namespace

Value Args::get(size_t n, const char* name, Value fallback) const {
  if (n < positional.size()) return positional[n];
  for (const auto& [k, v] : keyword)
    if (k == name) return v;
  return fallback;
}

bool apply_test(const std::string& name, const Value& v, const Args& args) {
  if (name == "defined") return v.defined();
  if (name == "undefined") return !v.defined();
  if (name == "none") return v.is(K::kNone);
  if (name == "string") return v.is(K::kString);
  if (name == "number") return v.is_number();
  if (name == "integer") return v.is(K::kInt);
  if (name == "float") return v.is(K::kFloat);
  if (name == "boolean") return v.is(K::kBool);
  if (name == "true") return v.is(K::kBool) && v.b;
  if (name == "false") return v.is(K::kBool) && !v.b;
  if (name == "mapping") return v.is(K::kObject);
  if (name == "sequence") return v.is(K::kArray) || v.is(K::kString) || v.is(K::kObject);
  if (name == "iterable") return v.is(K::kArray) || v.is(K::kString) || v.is(K::kObject);
  if (name == "callable") return false;
  if (name == "even" || name == "odd") {
    MESH_CHECK(v.is(K::kInt), "the test '", name, "' needs an integer");
    return (v.i % 2 == 0) == (name == "even");
  }
  if (name == "divisibleby") return v.is(K::kInt) && args.get(0, "num").i != 0 && v.i % args.get(0, "num").i == 0;
  if (name == "equalto" || name == "eq" || name == "sameas" || name == "==") return equal(v, args.get(0, "other"));
  if (name == "ne" || name == "!=") return !equal(v, args.get(0, "other"));
  if (name == "in") {
    const Value c = args.get(0, "seq");
    return c.is(K::kString) ? c.s.find(v.s) != std::string::npos
                            : std::any_of(c.a->begin(), c.a->end(), [&](const Value& x) { return equal(x, v); });
  }
  if (name == "lower") return v.is(K::kString) && lower(v.s) == v.s;
  if (name == "upper") return v.is(K::kString) && upper(v.s) == v.s;
  fail("the Jinja test '", name, "' is not supported");
}

Value apply_filter(const std::string& name, const Value& v, const Args& args) {
  if (name == "trim") return Value::string(strip(to_string(v), args.get(0, "chars", Value::string(kSpace)).s, true, true));
  if (name == "upper") return Value::string(upper(to_string(v)));
  if (name == "lower") return Value::string(lower(to_string(v)));
  if (name == "capitalize") {
    std::string s = lower(to_string(v));
    if (!s.empty()) s[0] = char(std::toupper(static_cast<unsigned char>(s[0])));
    return Value::string(s);
  }
  if (name == "title") return Value::string(title(to_string(v)));
  if (name == "string") return Value::string(to_string(v));
  if (name == "length" || name == "count") return Value::integer(length(v));
  if (name == "tojson") {
    const Value indent = args.get(0, "indent");
    return Value::string(to_json(v, indent.is(K::kInt) ? int(indent.i) : 0, args.get(1, "sort_keys").truthy()));
  }
  if (name == "default" || name == "d") {
    const bool boolean = args.get(1, "boolean").truthy();
    return (boolean ? v.truthy() : v.defined()) ? v : args.get(0, "default_value", Value::string(""));
  }
  if (name == "join") {
    std::string out;
    const std::string sep = to_string(args.get(0, "d", Value::string("")));
    const Value attr = args.get(1, "attribute");
    bool first = true;
    for (const Value& x : iterate(v)) {
      out += (first ? "" : sep) + to_string(attr.defined() ? attribute(x, attr.s) : x);
      check_text(out.size());
      first = false;
    }
    return Value::string(out);
  }
  if (name == "first" || name == "last") {
    const Array a = iterate(v);
    return a.empty() ? Value() : name == "first" ? a.front() : a.back();
  }
  if (name == "list") return Value::array(iterate(v));
  if (name == "reverse") {
    if (v.is(K::kString)) return Value::string(std::string(v.s.rbegin(), v.s.rend()));
    Array a = iterate(v);
    std::reverse(a.begin(), a.end());
    return Value::array(std::move(a));
  }
  if (name == "int") {
    if (v.is(K::kString)) return Value::integer(std::strtoll(v.s.c_str(), nullptr, 10));
    const double d = v.is_number() || v.is(K::kBool) ? v.as_double() : 0;
    MESH_CHECK(std::fabs(d) < 9.2e18, "int: ", d, " is out of range");  // NaN too
    return Value::integer(v.is(K::kInt) ? v.i : int64_t(d));
  }
  if (name == "float") return Value::number(v.is(K::kString) ? std::strtod(v.s.c_str(), nullptr) : v.as_double());
  if (name == "abs") return v.is(K::kInt) ? Value::integer(v.i < 0 ? -v.i : v.i) : Value::number(std::abs(v.f));
  if (name == "replace")
    return Value::string(replace(to_string(v), to_string(args.get(0, "old")), to_string(args.get(1, "new")),
                                 args.get(2, "count", Value::integer(-1)).i));
  if (name == "items") return Value::array(items(v));
  if (name == "dictsort") {
    Array a = items(v);
    std::stable_sort(a.begin(), a.end(), [](const Value& x, const Value& y) { return (*x.a)[0].s < (*y.a)[0].s; });
    return Value::array(std::move(a));
  }
  if (name == "selectattr" || name == "rejectattr") {
    const std::string attr = to_string(args.get(0, "attr"));
    Args rest;
    for (size_t k = 2; k < args.positional.size(); ++k) rest.positional.push_back(args.positional[k]);
    const std::string test = args.positional.size() > 1 ? to_string(args.positional[1]) : "";
    Array out;
    for (const Value& x : iterate(v)) {
      const Value a = attribute(x, attr);
      const bool ok = test.empty() ? a.truthy() : apply_test(test, a, rest);
      if (ok == (name == "selectattr")) out.push_back(x);
    }
    return Value::array(std::move(out));
  }
  if (name == "map") {
    Array out;
    const Value attr = args.get(99, "attribute");
    const std::string filter = attr.defined() ? "" : to_string(args.get(0, "filter"));
    Args rest;
    for (size_t k = 1; k < args.positional.size(); ++k) rest.positional.push_back(args.positional[k]);
    for (const Value& x : iterate(v))
      out.push_back(attr.defined() ? attribute(x, attr.s) : apply_filter(filter, x, rest));
    return Value::array(std::move(out));
  }
  if (name == "unique") {
    Array out;
    for (const Value& x : iterate(v))
      if (std::none_of(out.begin(), out.end(), [&](const Value& y) { return equal(x, y); })) out.push_back(x);
    return Value::array(std::move(out));
  }
  fail("the Jinja filter '", name, "' is not supported");
}

Value call_method(const Value& obj, const std::string& name, const Args& args, bool& found) {
  found = true;
  if (obj.is(K::kString)) {
    const std::string& s = obj.s;
    const Value chars = args.get(0, "chars");
    const std::string set = chars.is(K::kString) ? chars.s : kSpace;
    if (name == "strip") return Value::string(strip(s, set, true, true));
    if (name == "lstrip") return Value::string(strip(s, set, true, false));
    if (name == "rstrip") return Value::string(strip(s, set, false, true));
    if (name == "upper") return Value::string(upper(s));
    if (name == "lower") return Value::string(lower(s));
    if (name == "title") return Value::string(title(s));
    if (name == "capitalize") return apply_filter("capitalize", obj, {});
    if (name == "startswith" || name == "endswith") {
      const Value p = args.get(0, "prefix");
      const Array options = p.is(K::kArray) ? *p.a : Array{p};
      for (const Value& o : options) {
        const std::string& x = o.s;
        if (x.size() <= s.size() && (name == "startswith" ? s.compare(0, x.size(), x) == 0
                                                          : s.compare(s.size() - x.size(), x.size(), x) == 0))
          return Value::boolean(true);
      }
      return Value::boolean(false);
    }
    if (name == "split") {
      const Value sep = args.get(0, "sep");
      Array out;
      if (!sep.is(K::kString)) {  // runs of whitespace
        size_t at = s.find_first_not_of(kSpace);
        while (at != std::string::npos) {
          const size_t end = std::min(s.find_first_of(kSpace, at), s.size());
          out.push_back(Value::string(s.substr(at, end - at)));
          at = s.find_first_not_of(kSpace, end);
        }
      } else {
        MESH_CHECK(!sep.s.empty(), "split: empty separator");
        size_t at = 0;
        for (size_t k; (k = s.find(sep.s, at)) != std::string::npos; at = k + sep.s.size())
          out.push_back(Value::string(s.substr(at, k - at)));
        out.push_back(Value::string(s.substr(at)));
      }
      return Value::array(std::move(out));
    }
    if (name == "replace")
      return Value::string(replace(s, to_string(args.get(0, "old")), to_string(args.get(1, "new")),
                                   args.get(2, "count", Value::integer(-1)).i));
    if (name == "find") return Value::integer(int64_t(s.find(to_string(args.get(0, "sub")))));
    if (name == "count") {
      const std::string sub = to_string(args.get(0, "sub"));
      int64_t n = 0;
      for (size_t at = s.find(sub); !sub.empty() && at != std::string::npos; at = s.find(sub, at + sub.size())) ++n;
      return Value::integer(n);
    }
    if (name == "join") {
      std::string out;
      bool first = true;
      for (const Value& x : iterate(args.get(0, "iterable")))
        out += (first ? "" : s) + to_string(x), first = false, check_text(out.size());
      return Value::string(out);
    }
  } else if (obj.is(K::kObject)) {
    if (name == "items") return Value::array(items(obj));
    if (name == "keys") return Value::array(iterate(obj));
    if (name == "values") {
      Array out;
      for (const auto& [k, x] : *obj.o) out.push_back(x);
      return Value::array(std::move(out));
    }
    if (name == "get") {
      const Value* x = obj.find(to_string(args.get(0, "key")));
      return x ? *x : args.get(1, "default", Value::none());
    }
  } else if (obj.is(K::kArray)) {
    if (name == "index") {
      const Value x = args.get(0, "value");
      for (size_t k = 0; k < obj.a->size(); ++k)
        if (equal((*obj.a)[k], x)) return Value::integer(int64_t(k));
      fail("list.index: value not in list");
    }
    if (name == "count") {
      const Value x = args.get(0, "value");
      return Value::integer(std::count_if(obj.a->begin(), obj.a->end(), [&](const Value& y) { return equal(x, y); }));
    }
  }
  found = false;
  return Value();
}

Value call_global(const std::string& name, const Args& args) {
  if (name == "raise_exception") fail("the chat template raised an error: ", to_string(args.get(0, "message")));
  if (name == "namespace") {
    Value ns = Value::object();
    for (const auto& [k, v] : args.keyword) check_nesting(v), ns.set(k, v);
    return ns;
  }
  if (name == "dict") {
    Value d = Value::object();
    for (const auto& [k, v] : args.keyword) check_nesting(v), d.set(k, v);
    return d;
  }
  if (name == "range") {
    int64_t start = 0, stop = 0, step = 1;
    if (args.positional.size() == 1) stop = args.positional[0].i;
    if (args.positional.size() >= 2) start = args.positional[0].i, stop = args.positional[1].i;
    if (args.positional.size() == 3) step = args.positional[2].i;
    MESH_CHECK(step != 0, "range: step must not be zero");
    // The count in 128 bits, so that no start, stop or step can overflow.
    const __int128 span = __int128(stop) - start;
    const bool empty = step > 0 ? span <= 0 : span >= 0;
    const __int128 n = empty ? 0 : (span + step + (step > 0 ? -1 : 1)) / step;  // ceil(span / step)
    MESH_CHECK(n <= kMaxRange, "range: ", int64_t(std::min<__int128>(n, INT64_MAX)), " numbers is more than chat "
               "templates may make (", kMaxRange, ")");
    Array out;
    for (int64_t k = 0; k < int64_t(n); ++k) out.push_back(Value::integer(int64_t(start + __int128(k) * step)));
    return Value::array(std::move(out));
  }
  if (name == "strftime_now") {  // transformers: the current local time
    const std::string format = to_string(args.get(0, "format"));
    MESH_CHECK(format.size() <= 64, "strftime_now: a format of ", format.size(), " characters (at most 64)");
    char buf[1024];
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    const size_t n = std::strftime(buf, sizeof buf, format.c_str(), &local);  // 0: empty, or did not fit
    return Value::string(std::string(buf, n));
  }
  fail("the function '", name, "' is not available in chat templates");
}

}  // namespace meshlm::jinja
