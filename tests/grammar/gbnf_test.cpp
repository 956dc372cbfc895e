// GBNF parsing and matching: the syntax of llama.cpp's grammars/README.md,
// clear errors for bad grammars, and strings accepted / rejected byte by byte.
#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "runtime/grammar/grammar.h"
#include "tests/grammar/grammar_test_util.h"

namespace yuan::grammar {
namespace {

using testing::IsPrefix;
using testing::Matches;

std::shared_ptr<const Grammar> Parse(const std::string& text) {
  auto g = ParseGbnf(text);
  INFO(text);
  REQUIRE(g.ok());
  return *g;
}

std::string ParseError(const std::string& text) {
  auto g = ParseGbnf(text);
  INFO(text);
  REQUIRE_FALSE(g.ok());
  CHECK(g.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(g.status().message());
}

struct Case {
  const char* grammar;
  std::vector<const char*> accept;
  std::vector<const char*> reject;
};

TEST_CASE("GBNF: accepted and rejected strings", "[grammar][gbnf]") {
  const std::vector<Case> cases = {
      {R"(root ::= "abc")", {"abc"}, {"", "ab", "abcd", "abd"}},
      {R"(root ::= "a" | "bc" | "")", {"a", "bc", ""}, {"b", "ac", "bcc"}},
      {R"(root ::= ("ab")* "c")", {"c", "abc", "ababc"}, {"", "abac", "ab"}},
      {R"(root ::= [a-c]+)", {"a", "cab", "ccc"}, {"", "d", "abd"}},
      {R"(root ::= [^a-c\n]?)", {"", "d", "中"}, {"a", "\n", "dd"}},
      {R"(root ::= . .)", {"ab", "中文", "\n\n"}, {"a", "abc"}},
      {R"(root ::= "x"{3})", {"xxx"}, {"xx", "xxxx"}},
      {R"(root ::= "x"{2,})", {"xx", "xxxxxxx"}, {"x", ""}},
      {R"(root ::= "x"{1,3} "y")", {"xy", "xxxy"}, {"y", "xxxxy"}},
      {R"(root ::= "x"{0,2})", {"", "x", "xx"}, {"xxx"}},
      {R"(root ::= ( "a" | "b" ){2} "!")", {"ab!", "bb!"}, {"a!", "abb!"}},
      // Escapes in literals and classes.
      {R"(root ::= "\x41\u4e2d\U0001F600\n\t\r\\\"")", {"A中😀\n\t\r\\\""}, {"A中"}},
      {R"(root ::= [\x30-\x39\]\-]+)", {"09", "]-"}, {"a"}},
      // Unicode ranges: whole code points, whatever the byte length.
      {R"(root ::= [一-龥]{2})", {"中文", "一龥"}, {"中", "中a", "ab"}},
      // Comments, several lines, newlines inside parentheses, rule order.
      {"# a comment\nroot ::= a b # trailing\n\na ::= \"1\"\nb ::= (\n  \"2\" |\n  \"3\"\n)\n",
       {"12", "13"},
       {"1", "14"}},
      // A continuation line starting with '|'.
      {"root ::= \"a\"\n  | \"b\"\n", {"a", "b"}, {"ab"}},
      // Recursion (not left recursion).
      {R"g(root ::= "(" root ")" | "")g", {"", "()", "((()))"}, {"(()", ")"}},
      // Underscores in names.
      {"root ::= my_rule\nmy_rule ::= \"ok\"", {"ok"}, {"no"}},
  };
  for (const Case& c : cases) {
    INFO(c.grammar);
    auto g = Parse(c.grammar);
    for (const char* s : c.accept) {
      INFO("accept: " << s);
      CHECK(Matches(g, s));
    }
    for (const char* s : c.reject) {
      INFO("reject: " << s);
      CHECK_FALSE(Matches(g, s));
    }
  }
}

TEST_CASE("GBNF: llama.cpp's json.gbnf", "[grammar][gbnf]") {
  // The grammar from llama.cpp's grammars/json.gbnf (its syntax; reproduced
  // for compatibility testing).
  const std::string json_gbnf = R"(
root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws

object ::=
  "{" ws (
            string ":" ws value
    ("," ws string ":" ws value)*
  )? "}" ws

array  ::=
  "[" ws (
            value
    ("," ws value)*
  )? "]" ws

string ::=
  "\"" (
    [^"\\\x7F\x00-\x1F] |
    "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) # escapes
  )* "\"" ws

number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws

# Optional space: by convention, applied in this grammar after literal chars when allowed
ws ::= | " " | "\n" [ \t]{0,20}
)";
  auto g = Parse(json_gbnf);
  CHECK(Matches(g, R"({"a": [1, 2.5, "x\n"], "b": {"c": null}})"));
  CHECK(Matches(g, "{\n  \"名字\": \"张三\"\n}"));
  CHECK_FALSE(Matches(g, R"({"a": })"));
  CHECK_FALSE(Matches(g, R"([1])"));
  CHECK(IsPrefix(g, R"({"a": [1, 2)"));
}

TEST_CASE("GBNF: errors name the line and column", "[grammar][gbnf]") {
  CHECK_THAT(ParseError("root ::= foo\n"), Catch::Contains("line 1, column 10") &&
                                                 Catch::Contains("undefined rule 'foo'"));
  CHECK_THAT(ParseError("a ::= \"x\"\n"), Catch::Contains("no rule named 'root'"));
  CHECK_THAT(ParseError("root ::= root \"x\" | \"y\"\n"), Catch::Contains("left recursion"));
  CHECK_THAT(ParseError("root ::= a\na ::= b? root\nb ::= \"x\"\n"), Catch::Contains("left recursion"));
  CHECK_THAT(ParseError("root ::= \"abc\n"), Catch::Contains("line 1") && Catch::Contains("unterminated"));
  CHECK_THAT(ParseError("root ::= [abc\n"), Catch::Contains("unterminated character class"));
  CHECK_THAT(ParseError("root ::= (\"a\"\n"), Catch::Contains("unclosed"));
  CHECK_THAT(ParseError("root ::= \"a\")\n"), Catch::Contains("unmatched ')'"));
  CHECK_THAT(ParseError("root ::= \"a\"\n\nroot ::= \"b\""), Catch::Contains("line 3, column 1") &&
                                                             Catch::Contains("defined twice"));
  CHECK_THAT(ParseError("root := \"a\""), Catch::Contains("'::='"));
  CHECK_THAT(ParseError("root ::= \"\\q\""), Catch::Contains("unknown escape"));
  CHECK_THAT(ParseError("root ::= \"\\xZZ\""), Catch::Contains("hex"));
  CHECK_THAT(ParseError("root ::= [z-a]"), Catch::Contains("out of order"));
  CHECK_THAT(ParseError("root ::= \"a\"{3,2}"), Catch::Contains("n < m"));
  CHECK_THAT(ParseError("root ::= \"a\"{99999}"), Catch::Contains("repetition count"));
  CHECK_THAT(ParseError("root ::= \"a\" b ::= \"c\""), Catch::Contains("own line"));
  CHECK_THAT(ParseError("root ::= *"), Catch::Contains("unexpected character '*'"));
  CHECK_THAT(ParseError("::= \"a\""), Catch::Contains("expected a rule name"));
  CHECK_THAT(ParseError("root ::= \"\xff\""), Catch::Contains("invalid UTF-8"));
  CHECK_THAT(ParseError(std::string(1000, '(')), Catch::Contains("expected a rule name"));
  CHECK_THAT(ParseError("root ::= " + std::string(1000, '(')), Catch::Contains("nested too deeply"));
  // A different root.
  auto g = ParseGbnf("start ::= \"s\"", "start");
  CHECK(g.ok());
}

TEST_CASE("GBNF: nested repetitions stay small; too large grammars are refused", "[grammar][gbnf]") {
  // 10^12 characters long, but repetitions of a group become references to
  // one helper rule, so the grammar has about 3 * 10000 symbols.
  auto g = Parse("root ::= ((\"a\"{10000}){10000}){10000}");
  CHECK(g->symbols().size() < 100000);
  CHECK(IsPrefix(g, std::string(20000, 'a')));
  // Each "x"{10000} is 10000 symbols of its own: 300 of them pass the limit.
  std::string big = "root ::=";
  for (int i = 0; i < 300; ++i) big += " \"x\"{10000}";
  CHECK_THAT(ParseError(big), Catch::Contains("too large"));
}

TEST_CASE("Matcher: UTF-8 split across tokens and bytes", "[grammar][matcher]") {
  auto g = Parse(R"(root ::= "中" [a-z])");
  GrammarMatcher m(g, testing::SmallVocab());
  // 中 = E4 B8 AD, fed one byte at a time: each partial prefix is alive.
  CHECK(m.AcceptBytes("\xE4").ok());
  CHECK_FALSE(m.IsAccepting());
  CHECK(m.AcceptBytes("\xB8").ok());
  CHECK_FALSE(m.AcceptBytes("\xAE").ok());  // 丮, not 中: rejected, state kept
  CHECK(m.AcceptBytes("\xAD").ok());
  CHECK(m.AcceptBytes("q").ok());
  CHECK(m.IsAccepting());
  CHECK(m.IsDone());
  // A lead byte that cannot start any allowed character is refused at once.
  GrammarMatcher m2(g, testing::SmallVocab());
  CHECK_FALSE(m2.AcceptBytes("\xE5").ok());
  CHECK_FALSE(m2.AcceptBytes("\x80").ok());
  CHECK_FALSE(m2.AcceptBytes("a").ok());
}

TEST_CASE("Matcher: byte tokens, special tokens and EOG", "[grammar][matcher]") {
  auto tok = testing::RandomVocabTokenizer(300);
  auto vocab = TokenVocab::Build(*tok);
  auto g = Parse(R"(root ::= " the" [0-9]?)");
  GrammarMatcher m(g, vocab);
  const int32_t eos = tok->eos();
  const int32_t bos = tok->bos();
  // "▁the" is one token; the byte tokens <0x20> <0x74>... spell it too.
  const std::vector<int32_t> the = tok->Encode("the", EncodeOptions{false, false, false});
  REQUIRE(the.size() == 1);
  CHECK(m.IsTokenAllowed(the[0]));
  CHECK_FALSE(m.IsTokenAllowed(eos));
  CHECK_FALSE(m.IsTokenAllowed(bos));
  CHECK_FALSE(m.Accept(bos).ok());
  CHECK_FALSE(m.Accept(eos).ok());
  const int32_t byte_space = 3 + ' ';  // <0x20>
  CHECK(tok->TokenToPiece(byte_space) == " ");
  CHECK(m.IsTokenAllowed(byte_space));

  std::vector<float> logits(tok->n_vocab() + 5, 1.0f);  // a padded output layer
  m.MaskLogits(logits.data(), static_cast<int32_t>(logits.size()));
  std::vector<int32_t> allowed;
  for (int32_t i = 0; i < static_cast<int32_t>(logits.size()); ++i) {
    if (logits[i] > 0) allowed.push_back(i);
  }
  // Exactly the tokens whose bytes are a prefix of " the" or " the" + digit.
  for (const int32_t t : allowed) {
    const std::string piece = tok->TokenToPiece(t);
    INFO(t << " '" << piece << "'");
    CHECK((std::string(" the").rfind(piece, 0) == 0));
  }
  CHECK(std::find(allowed.begin(), allowed.end(), the[0]) != allowed.end());
  CHECK(std::find(allowed.begin(), allowed.end(), byte_space) != allowed.end());

  REQUIRE(m.Accept(the[0]).ok());
  CHECK(m.IsAccepting());
  CHECK_FALSE(m.IsDone());
  CHECK(m.IsTokenAllowed(eos));
  CHECK(m.IsTokenAllowed(3 + '7'));
  CHECK_FALSE(m.IsTokenAllowed(3 + 'a'));
  CHECK_FALSE(m.Accept(3 + 'a').ok());
  REQUIRE(m.Accept(3 + '7').ok());
  CHECK(m.IsDone());
  REQUIRE(m.Accept(eos).ok());
  CHECK(m.IsDone());
  CHECK_FALSE(m.Accept(3 + '7').ok());
  m.Reset();
  CHECK_FALSE(m.IsAccepting());
  CHECK(m.Accept(the[0]).ok());
}

TEST_CASE("Matcher: MaskLogits agrees with IsTokenAllowed", "[grammar][matcher]") {
  auto tok = testing::RandomVocabTokenizer(2000);
  auto vocab = TokenVocab::Build(*tok);
  auto g = Parse(R"(root ::= ( [a-z ]+ "1" | " w1" [0-9]* "x" ) "中"?)");
  GrammarMatcher m(g, vocab);
  std::vector<float> logits(vocab->n_vocab());
  for (const std::string& step : {std::string(""), std::string(" w1"), std::string("2")}) {
    REQUIRE(m.AcceptBytes(step).ok());
    std::fill(logits.begin(), logits.end(), 0.0f);
    m.MaskLogits(logits.data(), vocab->n_vocab());
    int n_allowed = 0;
    for (int32_t t = 0; t < vocab->n_vocab(); ++t) {
      INFO("token " << t << " '" << tok->TokenToPiece(t) << "' after '" << step << "'");
      CHECK((logits[t] == 0.0f) == m.IsTokenAllowed(t));
      n_allowed += logits[t] == 0.0f;
    }
    CHECK(n_allowed > 0);
  }
}

}  // namespace
}  // namespace yuan::grammar

namespace yuan::grammar {
namespace {

TEST_CASE("Matcher: caches are dropped past their limit, the state kept", "[grammar][matcher]") {
  // Every position of a 9000-character run is a new parse state, more than
  // the matcher caches (8192): it must compact and go on exactly as before.
  auto g = ParseGbnf("root ::= [a-z]{0,9000} \"!\"");
  REQUIRE(g.ok());
  auto tok = testing::RandomVocabTokenizer(300);
  GrammarMatcher m(*g, testing::SmallVocab());
  size_t max_states = 0;
  for (int i = 0; i < 9000; ++i) {
    REQUIRE(m.AcceptBytes(std::string(1, static_cast<char>('a' + i % 26))).ok());
    max_states = std::max(max_states, m.num_cached_states());
  }
  CHECK(max_states <= 8192 + 64);
  CHECK_FALSE(m.AcceptBytes("a").ok());  // the 9001st letter
  std::vector<float> logits(tok->n_vocab(), 0.0f);
  m.MaskLogits(logits.data(), tok->n_vocab());
  for (int32_t t = 0; t < tok->n_vocab(); ++t) {
    CHECK((logits[t] == 0.0f) == (tok->TokenToPiece(t) == "!" && tok->Type(t) == TokenType::kByte));
  }
  REQUIRE(m.AcceptBytes("!").ok());
  CHECK(m.IsDone());
  m.Reset();
  CHECK(m.AcceptBytes("abc!").ok());
  CHECK(m.IsAccepting());
}

}  // namespace
}  // namespace yuan::grammar
