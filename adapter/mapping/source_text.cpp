#include "mapping/source_text.h"

#include "common/utf8.h"
#include "mapping/json.h"

namespace adapter::mapping {

std::string SourcePos::to_string() const {
  return (file ? *file : std::string("<text>")) + ":" + std::to_string(line) + ":" +
         std::to_string(column);
}

const PNode* PNode::find(std::string_view key) const {
  for (const auto& m : members) {
    if (m.key == key) return &m.value;
  }
  return nullptr;
}

namespace {

class Parser {
 public:
  Parser(std::string_view text, std::shared_ptr<const std::string> file)
      : t_(text), file_(std::move(file)) {}

  Result<PNode> parse() {
    PNode root;
    if (!value(root, 0)) return error_;
    skip_space();
    if (!failed_ && i_ < t_.size()) fail("unexpected text after the JSON value");
    if (failed_) return error_;
    return root;
  }

 private:
  static constexpr int kMaxDepth = 128;

  SourcePos pos() const {
    SourcePos p;
    p.file = file_;
    p.line = line_;
    p.column = static_cast<std::uint32_t>(i_ - line_start_ + 1);
    return p;
  }

  bool fail(const std::string& message) {
    if (!failed_) {
      failed_ = true;
      error_ = make_error(Errc::bad_config, message, pos().to_string());
    }
    return false;
  }

  void advance() {
    if (t_[i_] == '\n') {
      ++line_;
      line_start_ = i_ + 1;
    }
    ++i_;
  }

  void skip_space() {
    while (i_ < t_.size()) {
      const char c = t_[i_];
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        advance();
      } else if (c == '/' && i_ + 1 < t_.size() && t_[i_ + 1] == '/') {
        while (i_ < t_.size() && t_[i_] != '\n') advance();
      } else if (c == '/' && i_ + 1 < t_.size() && t_[i_ + 1] == '*') {
        const SourcePos start = pos();
        advance();
        advance();
        while (i_ + 1 < t_.size() && !(t_[i_] == '*' && t_[i_ + 1] == '/')) advance();
        if (i_ + 1 >= t_.size()) {
          failed_ = true;
          error_ = make_error(Errc::bad_config, "unterminated /* comment", start.to_string());
          i_ = t_.size();
          return;
        }
        advance();
        advance();
      } else {
        return;
      }
    }
  }

  bool literal(std::string_view word) {
    if (t_.substr(i_, word.size()) != word) return false;
    for (std::size_t k = 0; k < word.size(); ++k) advance();
    return true;
  }

  bool value(PNode& out, int depth) {
    skip_space();
    if (failed_) return false;
    if (depth > kMaxDepth) return fail("nesting deeper than 128 levels");
    if (i_ >= t_.size()) return fail("unexpected end of file: expected a value");
    out.pos = pos();
    const char c = t_[i_];
    if (c == '{') return object(out, depth);
    if (c == '[') return array(out, depth);
    if (c == '"') {
      out.kind = PNode::Kind::string;
      return string(out.text);
    }
    if (c == '-' || (c >= '0' && c <= '9')) return number(out);
    if (literal("true")) {
      out.kind = PNode::Kind::boolean;
      out.boolean = true;
      return true;
    }
    if (literal("false")) {
      out.kind = PNode::Kind::boolean;
      return true;
    }
    if (literal("null")) {
      out.kind = PNode::Kind::null;
      return true;
    }
    return fail(std::string("unexpected character '") + c + "': expected a value");
  }

  bool object(PNode& out, int depth) {
    out.kind = PNode::Kind::object;
    advance();  // {
    for (;;) {
      skip_space();
      if (failed_) return false;
      if (i_ < t_.size() && t_[i_] == '}') {
        advance();
        return true;
      }
      if (i_ >= t_.size() || t_[i_] != '"')
        return fail("expected a member name in double quotes or '}'");
      PMember m;
      m.key_pos = pos();
      if (!string(m.key)) return false;
      for (const auto& other : out.members) {
        if (other.key == m.key) {
          return fail("member \"" + m.key + "\" appears twice (first at " +
                      other.key_pos.to_string() + ")");
        }
      }
      skip_space();
      if (i_ >= t_.size() || t_[i_] != ':') return fail("expected ':' after the member name");
      advance();
      if (!value(m.value, depth + 1)) return false;
      out.members.push_back(std::move(m));
      skip_space();
      if (i_ < t_.size() && t_[i_] == ',') {
        advance();
        continue;
      }
      if (i_ < t_.size() && t_[i_] == '}') continue;
      return fail("expected ',' or '}'");
    }
  }

  bool array(PNode& out, int depth) {
    out.kind = PNode::Kind::array;
    advance();  // [
    for (;;) {
      skip_space();
      if (failed_) return false;
      if (i_ < t_.size() && t_[i_] == ']') {
        advance();
        return true;
      }
      PNode item;
      if (!value(item, depth + 1)) return false;
      out.items.push_back(std::move(item));
      skip_space();
      if (i_ < t_.size() && t_[i_] == ',') {
        advance();
        continue;
      }
      if (i_ < t_.size() && t_[i_] == ']') continue;
      return fail("expected ',' or ']'");
    }
  }

  bool number(PNode& out) {
    out.kind = PNode::Kind::number;
    const std::size_t start = i_;
    if (t_[i_] == '-') advance();
    auto digits = [&] {
      const std::size_t s = i_;
      while (i_ < t_.size() && t_[i_] >= '0' && t_[i_] <= '9') advance();
      return i_ > s;
    };
    if (!digits()) return fail("malformed number");
    if (i_ < t_.size() && t_[i_] == '.') {
      advance();
      if (!digits()) return fail("malformed number: digits expected after '.'");
    }
    if (i_ < t_.size() && (t_[i_] == 'e' || t_[i_] == 'E')) {
      advance();
      if (i_ < t_.size() && (t_[i_] == '+' || t_[i_] == '-')) advance();
      if (!digits()) return fail("malformed number: digits expected in the exponent");
    }
    out.text = std::string(t_.substr(start, i_ - start));
    return true;
  }

  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  bool string(std::string& out) {
    advance();  // opening quote
    for (;;) {
      if (i_ >= t_.size()) return fail("unterminated string");
      const char c = t_[i_];
      if (c == '"') {
        advance();
        return true;
      }
      if (c == '\n') return fail("line break inside a string");
      if (c != '\\') {
        out.push_back(c);
        advance();
        continue;
      }
      advance();
      if (i_ >= t_.size()) return fail("unterminated string");
      const char e = t_[i_];
      advance();
      switch (e) {
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '/':
          out.push_back('/');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          char32_t cp = 0;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF) {  // surrogate pair
            char32_t low = 0;
            if (t_.substr(i_, 2) != "\\u") return fail("unpaired UTF-16 surrogate in \\u escape");
            advance();
            advance();
            if (!hex4(low) || low < 0xDC00 || low > 0xDFFF)
              return fail("invalid UTF-16 surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return fail("unpaired UTF-16 surrogate in \\u escape");
          }
          append_utf8(out, cp);
          break;
        }
        default:
          return fail(std::string("invalid escape \\") + e);
      }
    }
  }

  bool hex4(char32_t& cp) {
    if (i_ + 4 > t_.size()) return fail("\\u needs four hex digits");
    for (int k = 0; k < 4; ++k) {
      const int h = hex(t_[i_]);
      if (h < 0) return fail("\\u needs four hex digits");
      cp = cp * 16 + static_cast<char32_t>(h);
      advance();
    }
    return true;
  }

  std::string_view t_;
  std::shared_ptr<const std::string> file_;
  std::size_t i_ = 0;
  std::uint32_t line_ = 1;
  std::size_t line_start_ = 0;
  bool failed_ = false;
  Error error_;
};

}  // namespace

Result<PNode> parse_positioned_json(std::string_view text,
                                    std::shared_ptr<const std::string> file) {
  if (text.size() >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.remove_prefix(3);
  return Parser(text, std::move(file)).parse();
}

Json to_json(const PNode& n) {
  switch (n.kind) {
    case PNode::Kind::null:
      return Json();
    case PNode::Kind::boolean:
      return Json::boolean(n.boolean);
    case PNode::Kind::number:
      return Json::number(n.text);
    case PNode::Kind::string:
      return Json::string(n.text);
    case PNode::Kind::array: {
      JsonArray a;
      for (const auto& i : n.items) a.push_back(to_json(i));
      return Json::array(std::move(a));
    }
    case PNode::Kind::object: {
      JsonObject o;
      for (const auto& m : n.members) o.emplace_back(m.key, to_json(m.value));
      return Json::object(std::move(o));
    }
  }
  return Json();
}

Result<Json> parse_json(std::string_view text, const std::string& name) {
  auto node = parse_positioned_json(text, std::make_shared<const std::string>(name));
  if (!node) return node.error();
  return to_json(*node);
}

}  // namespace adapter::mapping
