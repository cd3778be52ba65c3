#include "chat/jinja_parser.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>

#include "core/check.h"

namespace meshlm::jinja {
namespace {

struct Token {
  enum class Kind { kText, kVarBegin, kVarEnd, kBlockBegin, kBlockEnd, kName, kString, kInt, kFloat, kOp, kEnd };
  Kind kind;
  std::string text;
  int line;
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Splits the source into text and tag tokens, applying whitespace control: "-" strips all whitespace on that side,
// trim_blocks drops the newline after a block or comment tag, lstrip_blocks drops spaces and tabs before one that
// starts a line (unless the tag opens with "+").
class Lexer {
 public:
  explicit Lexer(const std::string& s) : s_(s) {}

  std::vector<Token> run() {
    size_t pos = 0;
    bool strip_next = false;
    while (pos <= s_.size()) {
      size_t start = s_.find('{', pos);
      while (start != std::string::npos && start + 1 < s_.size() && !std::strchr("{%#", s_[start + 1]))
        start = s_.find('{', start + 1);
      if (start == std::string::npos || start + 1 >= s_.size()) start = s_.size();
      std::string text = s_.substr(pos, start - pos);
      if (strip_next) text.erase(0, text.find_first_not_of(" \t\n\r") == std::string::npos ? text.size()
                                                                                            : text.find_first_not_of(" \t\n\r"));
      if (start == s_.size()) {
        emit_text(text, pos);
        break;
      }
      const char type = s_[start + 1];
      const char mark = start + 2 < s_.size() ? s_[start + 2] : '\0';
      if (mark == '-') {
        while (!text.empty() && is_space(text.back())) text.pop_back();
      } else if (type != '{' && mark != '+') {
        size_t j = start;
        while (j > pos && (s_[j - 1] == ' ' || s_[j - 1] == '\t')) --j;
        if (j == 0 || s_[j - 1] == '\n') text.resize(text.size() - (start - j));
      }
      emit_text(text, pos);
      size_t at = start + 2 + ((mark == '-' || mark == '+') ? 1 : 0);
      line_ = line_at(start);
      if (type == '#') {
        const size_t end = s_.find("#}", at);
        MESH_CHECK(end != std::string::npos, "line ", line_, ": unclosed comment");
        strip_next = end > 0 && s_[end - 1] == '-';
        pos = end + 2;
      } else {
        tokens_.push_back({type == '{' ? Token::Kind::kVarBegin : Token::Kind::kBlockBegin, "", line_});
        pos = lex_tag(at, type == '{' ? '}' : '%', strip_next);
        tokens_.push_back({type == '{' ? Token::Kind::kVarEnd : Token::Kind::kBlockEnd, "", line_});
      }
      if (type != '{' && !strip_next && pos < s_.size() && s_[pos] == '\n') ++pos;  // trim_blocks
    }
    tokens_.push_back({Token::Kind::kEnd, "", line_});
    return tokens_;
  }

 private:
  // Line of byte `at` (at never decreases between calls: counted incrementally, not from the start each time).
  int line_at(size_t at) {
    line_at_ += int(std::count(s_.begin() + long(counted_), s_.begin() + long(at), '\n'));
    counted_ = at;
    return line_at_;
  }
  void emit_text(const std::string& text, size_t) {
    if (!text.empty()) tokens_.push_back({Token::Kind::kText, text, line_});
  }

  // Tokens up to the closing "}}" / "%}"; returns the position after it.
  size_t lex_tag(size_t i, char close, bool& strip_next) {
    int depth = 0;  // open brackets: "}}" inside a dict literal does not close the tag
    while (true) {
      while (i < s_.size() && is_space(s_[i])) ++i;
      MESH_CHECK(i < s_.size(), "line ", line_, ": unclosed tag");
      const char c = s_[i];
      if (depth == 0 && c == '-' && i + 2 < s_.size() && s_[i + 1] == close && s_[i + 2] == '}') {
        strip_next = true;
        return i + 3;
      }
      if (depth == 0 && c == close && i + 1 < s_.size() && s_[i + 1] == '}') {
        strip_next = false;
        return i + 2;
      }
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t j = i;
        while (j < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[j])) || s_[j] == '_')) ++j;
        tokens_.push_back({Token::Kind::kName, s_.substr(i, j - i), line_});
        i = j;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        size_t j = i;
        while (j < s_.size() && std::isdigit(static_cast<unsigned char>(s_[j]))) ++j;
        bool is_float = j + 1 < s_.size() && s_[j] == '.' && std::isdigit(static_cast<unsigned char>(s_[j + 1]));
        if (is_float)
          for (++j; j < s_.size() && std::isdigit(static_cast<unsigned char>(s_[j]));) ++j;
        tokens_.push_back({is_float ? Token::Kind::kFloat : Token::Kind::kInt, s_.substr(i, j - i), line_});
        i = j;
      } else if (c == '\'' || c == '"') {
        std::string out;
        size_t j = i + 1;
        for (; j < s_.size() && s_[j] != c; ++j) {
          if (s_[j] != '\\' || j + 1 >= s_.size()) {
            out += s_[j];
            continue;
          }
          const char e = s_[++j];
          out += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
        }
        MESH_CHECK(j < s_.size(), "line ", line_, ": unterminated string");
        tokens_.push_back({Token::Kind::kString, out, line_});
        i = j + 1;
      } else {
        static const char* two[] = {"==", "!=", "<=", ">=", "//", "**"};
        std::string op(1, c);
        for (const char* t : two)
          if (s_.compare(i, 2, t) == 0) op = t;
        MESH_CHECK(op.size() == 2 || std::strchr("+-*/%~|.,:()[]{}<>=", c), "line ", line_, ": unexpected '", c,
                   "' in a template tag");
        tokens_.push_back({Token::Kind::kOp, op, line_});
        if (op.size() == 1 && std::strchr("([{", c)) ++depth;
        if (op.size() == 1 && std::strchr(")]}", c)) --depth;
        i += op.size();
      }
    }
  }

  const std::string& s_;
  std::vector<Token> tokens_;
  int line_ = 1;
  int line_at_ = 1;     // line of byte counted_
  size_t counted_ = 0;
};

class Parser {
 public:
  explicit Parser(std::vector<Token> t) : t_(std::move(t)) {}

  // Templates are untrusted: block nesting, parser recursion and expression trees are bounded, so that neither this
  // parser nor the renderer (both recursive) can run out of stack.
  static constexpr int kMaxNesting = 200;

  Body parse_all() {
    std::string stop;
    Body b = parse_body({}, stop);
    MESH_CHECK(peek().kind == Token::Kind::kEnd, "line ", peek().line, ": unexpected '", stop, "'");
    return b;
  }

 private:
  const Token& peek(size_t k = 0) const { return t_[std::min(pos_ + k, t_.size() - 1)]; }
  Token next() { return t_[pos_ < t_.size() - 1 ? pos_++ : pos_]; }
  bool at_op(const char* op) const { return peek().kind == Token::Kind::kOp && peek().text == op; }
  bool at_name(const char* n) const { return peek().kind == Token::Kind::kName && peek().text == n; }
  [[noreturn]] void error(const std::string& what) const {
    fail("line ", peek().line, ": ", what, peek().text.empty() ? "" : " (at '" + peek().text + "')");
  }
  void expect_op(const char* op) {
    if (!at_op(op)) error(std::string("expected '") + op + "'");
    next();
  }
  std::string expect_name() {
    if (peek().kind != Token::Kind::kName) error("expected a name");
    return next().text;
  }
  void expect_block_end() {
    if (peek().kind != Token::Kind::kBlockEnd) error("expected '%}'");
    next();
  }

  // Parses nodes until a block tag whose keyword is in `stops` (consumed up to the keyword; returned in stop).
  Body parse_body(const std::vector<std::string>& stops, std::string& stop) {
    const Nest nest(*this);
    Body body;
    while (peek().kind != Token::Kind::kEnd) {
      const Token& t = peek();
      if (t.kind == Token::Kind::kText) {
        Node n;
        n.kind = Node::Kind::kText;
        n.text = next().text;
        body.push_back(std::move(n));
      } else if (t.kind == Token::Kind::kVarBegin) {
        next();
        Node n;
        n.kind = Node::Kind::kOutput;
        n.line = t.line;
        n.expr = expression();
        if (peek().kind != Token::Kind::kVarEnd) error("expected '}}'");
        next();
        body.push_back(std::move(n));
      } else if (t.kind == Token::Kind::kBlockBegin) {
        const std::string kw = peek(1).text;
        if (std::find(stops.begin(), stops.end(), kw) != stops.end()) {
          next();
          next();
          stop = kw;
          return body;
        }
        next();
        statement(body);
      } else {
        error("unexpected token");
      }
    }
    if (!stops.empty()) fail("line ", peek().line, ": missing {% ", stops.back(), " %}");
    return body;
  }

  void statement(Body& body) {
    Node n;
    n.line = peek().line;
    const std::string kw = expect_name();
    std::string stop;
    if (kw == "if") {
      ExprPtr cond = expression();
      expect_block_end();
      while (true) {
        Body b = parse_body({"elif", "else", "endif"}, stop);
        n.branches.emplace_back(cond, std::move(b));
        if (stop == "endif") break;
        cond = stop == "elif" ? expression() : nullptr;
        expect_block_end();
        if (stop == "else") {
          n.branches.emplace_back(nullptr, parse_body({"endif"}, stop));
          break;
        }
      }
      n.kind = Node::Kind::kIf;
    } else if (kw == "for") {
      n.kind = Node::Kind::kFor;
      n.targets.push_back(expect_name());
      while (at_op(",")) next(), n.targets.push_back(expect_name());
      if (!at_name("in")) error("expected 'in'");
      next();
      n.expr = ternary(false);
      if (at_name("if")) next(), n.filter = expression();
      if (at_name("recursive")) error("recursive loops are not supported");
      expect_block_end();
      n.body = parse_body({"else", "endfor"}, stop);
      if (stop == "else") expect_block_end(), n.else_body = parse_body({"endfor"}, stop);
    } else if (kw == "set") {
      n.targets.push_back(expect_name());
      if (at_op(".")) next(), n.attr = expect_name();
      if (at_op(",")) error("tuple assignment in set is not supported");
      if (at_op("=")) {
        next();
        n.kind = Node::Kind::kSet;
        n.expr = expression();
      } else {
        n.kind = Node::Kind::kSetBlock;
        expect_block_end();
        n.body = parse_body({"endset"}, stop);
      }
    } else if (kw == "break" || kw == "continue") {
      n.kind = kw == "break" ? Node::Kind::kBreak : Node::Kind::kContinue;
    } else if (kw == "generation") {  // transformers' assistant-mask marker: renders its body unchanged
      expect_block_end();
      Body inner = parse_body({"endgeneration"}, stop);
      expect_block_end();
      for (Node& x : inner) body.push_back(std::move(x));
      return;
    } else {
      fail("line ", n.line, ": the Jinja tag '", kw, "' is not supported by meshlm's chat templates");
    }
    expect_block_end();
    body.push_back(std::move(n));
  }

  ExprPtr make(Expr::Kind k, std::string name, std::vector<ExprPtr> args) {
    auto e = std::make_shared<Expr>();
    e->kind = k;
    e->name = std::move(name);
    e->args = std::move(args);
    for (const ExprPtr& a : e->args)
      if (a) e->depth = std::max(e->depth, a->depth + 1);
    if (e->depth > kMaxNesting) error("expression nested deeper than " + std::to_string(kMaxNesting) + " levels");
    return e;
  }

  // Counts one level of parser recursion (blocks inside blocks, expressions inside expressions) while in scope.
  struct Nest {
    Parser& p;
    explicit Nest(Parser& parser) : p(parser) {
      if (++p.nesting_ > kMaxNesting) p.error("nested deeper than " + std::to_string(kMaxNesting) + " levels");
    }
    ~Nest() { --p.nesting_; }
  };
  int nesting_ = 0;

  ExprPtr expression() { return ternary(true); }

  ExprPtr ternary(bool allow_if) {
    ExprPtr e = or_expr();
    while (allow_if && at_name("if")) {
      next();
      ExprPtr cond = or_expr();
      ExprPtr other;
      if (at_name("else")) next(), other = ternary(true);
      e = make(Expr::Kind::kTernary, "", {e, cond, other});
    }
    return e;
  }
  // One level of left-associative binary operators: operand (op operand)*. Keywords (or, and) or symbols.
  ExprPtr left_assoc(ExprPtr (Parser::*operand)(), std::initializer_list<const char*> ops) {
    ExprPtr e = (this->*operand)();
    while (true) {
      const char* op = nullptr;
      for (const char* o : ops)
        if (at_op(o) || at_name(o)) op = o;
      if (!op) return e;
      next();
      e = make(Expr::Kind::kBinary, op, {e, (this->*operand)()});
    }
  }
  ExprPtr or_expr() { return left_assoc(&Parser::and_expr, {"or"}); }
  ExprPtr and_expr() { return left_assoc(&Parser::not_expr, {"and"}); }
  ExprPtr not_expr() {
    const Nest nest(*this);
    if (at_name("not")) return next(), make(Expr::Kind::kUnary, "not", {not_expr()});
    return compare();
  }
  ExprPtr compare() {
    ExprPtr e = math1();
    while (true) {
      std::string op;
      if (peek().kind == Token::Kind::kOp && (peek().text == "==" || peek().text == "!=" || peek().text == "<" ||
                                              peek().text == ">" || peek().text == "<=" || peek().text == ">="))
        op = next().text;
      else if (at_name("in"))
        next(), op = "in";
      else if (at_name("not") && peek(1).kind == Token::Kind::kName && peek(1).text == "in")
        next(), next(), op = "notin";
      else
        return e;
      e = make(Expr::Kind::kBinary, op, {e, math1()});
    }
  }
  ExprPtr math1() { return left_assoc(&Parser::concat, {"+", "-"}); }
  ExprPtr concat() { return left_assoc(&Parser::math2, {"~"}); }
  ExprPtr math2() { return left_assoc(&Parser::power, {"*", "/", "//", "%"}); }
  ExprPtr power() { return left_assoc(&Parser::unary, {"**"}); }
  ExprPtr unary() {
    const Nest nest(*this);
    if (at_op("-") || at_op("+")) {
      const std::string op = next().text;
      return make(Expr::Kind::kUnary, op, {unary()});
    }
    return filters(postfix(primary()));
  }

  // Items separated by commas up to `close` (a trailing comma allowed); consumes the closer.
  template <typename Item>
  void comma_list(const char* close, Item item) {
    while (!at_op(close)) {
      item();
      if (!at_op(",")) break;
      next();
    }
    expect_op(close);
  }

  void call_args(Expr& e) {  // after '(' : positional and keyword arguments up to ')'
    comma_list(")", [&] {
      if (peek().kind == Token::Kind::kName && peek(1).kind == Token::Kind::kOp && peek(1).text == "=") {
        const std::string key = next().text;
        next();
        e.kwargs.emplace_back(key, expression());
      } else {
        e.args.push_back(expression());
      }
    });
  }

  ExprPtr postfix(ExprPtr e) {
    while (true) {
      if (at_op(".")) {
        next();
        e = make(Expr::Kind::kAttr, expect_name(), {e});
      } else if (at_op("[")) {
        next();
        ExprPtr parts[3];
        int colons = 0;
        while (!at_op("]")) {
          if (at_op(":")) {
            MESH_CHECK(++colons <= 2, "line ", peek().line, ": bad slice");
            next();
            continue;
          }
          parts[colons] = expression();
        }
        next();
        e = colons == 0 ? make(Expr::Kind::kIndex, "", {e, parts[0]})
                        : make(Expr::Kind::kSlice, "", {e, parts[0], parts[1], parts[2]});
      } else if (at_op("(")) {
        next();
        auto call = make(Expr::Kind::kCall, "", {e});
        call_args(*call);
        e = call;
      } else {
        return e;
      }
    }
  }

  ExprPtr filters(ExprPtr e) {
    while (true) {
      if (at_op("|")) {
        next();
        auto f = make(Expr::Kind::kFilter, expect_name(), {e});
        if (at_op("(")) next(), call_args(*f);
        e = f;
      } else if (at_name("is")) {
        next();
        bool negate = false;
        if (at_name("not")) next(), negate = true;
        std::string test = peek().kind == Token::Kind::kName ? next().text : "";
        if (test.empty() && peek().kind == Token::Kind::kName) test = next().text;
        if (test.empty()) error("expected a test name after 'is'");
        auto t = make(Expr::Kind::kTest, test, {e});
        t->negate = negate;
        if (at_op("(")) next(), call_args(*t);
        else if (peek().kind == Token::Kind::kString || peek().kind == Token::Kind::kInt) t->args.push_back(primary());
        e = t;
      } else {
        return e;
      }
    }
  }

  ExprPtr primary() {
    const Token t = next();
    auto lit = [](Value v) {
      auto e = std::make_shared<Expr>();
      e->literal = std::move(v);
      return e;
    };
    switch (t.kind) {
      case Token::Kind::kString: {
        std::string s = t.text;
        while (peek().kind == Token::Kind::kString) s += next().text;  // adjacent literals join
        return lit(Value::string(s));
      }
      case Token::Kind::kInt: {
        int64_t v = 0;
        const auto [end, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
        if (ec != std::errc() || end != t.text.data() + t.text.size())
          fail("line ", t.line, ": integer ", t.text.substr(0, 40), " is out of range");
        return lit(Value::integer(v));
      }
      case Token::Kind::kFloat: return lit(Value::number(std::strtod(t.text.c_str(), nullptr)));
      case Token::Kind::kName:
        if (t.text == "true" || t.text == "True") return lit(Value::boolean(true));
        if (t.text == "false" || t.text == "False") return lit(Value::boolean(false));
        if (t.text == "none" || t.text == "None") return lit(Value::none());
        return make(Expr::Kind::kName, t.text, {});
      case Token::Kind::kOp:
        if (t.text == "(") {
          ExprPtr e = expression();
          if (at_op(",")) {  // a tuple: kept as a list
            auto list = make(Expr::Kind::kList, "", {e});
            while (at_op(",")) {
              next();
              if (at_op(")")) break;
              list->args.push_back(expression());
            }
            e = list;
          }
          expect_op(")");
          return e;
        }
        if (t.text == "[") {
          auto list = make(Expr::Kind::kList, "", {});
          comma_list("]", [&] { list->args.push_back(expression()); });
          return list;
        }
        if (t.text == "{") {
          auto dict = make(Expr::Kind::kDict, "", {});
          comma_list("}", [&] {
            dict->dict_keys.push_back(expression());
            expect_op(":");
            dict->args.push_back(expression());
          });
          return dict;
        }
        break;
      default: break;
    }
    fail("line ", t.line, ": unexpected '", t.text, "' in an expression");
  }

  std::vector<Token> t_;
  size_t pos_ = 0;
};

}  // namespace

Body parse_template(const std::string& source) { return Parser(Lexer(source).run()).parse_all(); }

}  // namespace meshlm::jinja
