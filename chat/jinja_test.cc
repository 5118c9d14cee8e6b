// Tests for chat/jinja: each construct chat templates use (expected outputs were checked
// against Python jinja2 3.1 with trim_blocks/lstrip_blocks/loopcontrols and transformers' tojson
// filter, as apply_chat_template sets it up), whitespace control,
// errors with their template position, and the work/size/depth limits.
#include "chat/jinja.h"

#include <gtest/gtest.h>

#include <string>

namespace lmstream {
namespace {

struct Case {
  const char* name;
  const char* tpl;
  const char* context;
  const char* expected;
};

const Case kCases[] = {
    {"Text", R"J(hello)J", R"J({})J", R"J(hello)J"},
    {"Var", R"J({{ x }})J", R"J({"x": "hi"})J", R"J(hi)J"},
    {"Undefined", R"J([{{ nope }}])J", R"J({})J", R"J([])J"},
    {"UndefinedFalsy", R"J({% if nope %}a{% else %}b{% endif %})J", R"J({})J", R"J(b)J"},
    {"Literals", R"J({{ 1 }} {{ 1.5 }} {{ true }} {{ none }} {{ 'a\n'|length }} {{ "q\"" }})J",
     R"J({})J", R"J(1 1.5 True None 2 q")J"},
    {"ListRepr", R"J({{ [1, 'a', none, false, {'k': 2.0}] }})J", R"J({})J",
     R"J([1, 'a', None, False, {'k': 2.0}])J"},
    {"Tuple", R"J({{ (1,) }}{{ (1, 'b') }})J", R"J({})J", R"J((1,)(1, 'b'))J"},
    {"Attr", R"J({{ m.role }}/{{ m['content'] }}/{{ m.missing }})J",
     R"J({"m": {"role": "user", "content": "c"}})J", R"J(user/c/)J"},
    {"Index", R"J({{ xs[0] }}{{ xs[-1] }}{{ xs[9] }}{{ 'abc'[1] }})J", R"J({"xs": [1, 2, 3]})J",
     R"J(13b)J"},
    {"Slices", R"J({{ xs[1:] }}{{ xs[::-1] }}{{ xs[:-1] }}{{ 'héllo'[1:3] }}{{ 'abc'[::-1] }})J",
     R"J({"xs": [1, 2, 3]})J", R"J([2, 3][3, 2, 1][1, 2]élcba)J"},
    {"Arith",
     R"J({{ 7 + 2 }} {{ 7 - 9 }} {{ 3 * 4 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 1.5 * 2 }} {{ 0.1 + 0.2 }})J",
     R"J({})J", R"J(9 -2 12 3.5 3 -4 2 1024 3.0 0.30000000000000004)J"},
    {"Concat", R"J({{ 'a' + 'b' }}{{ 1 ~ 'x' ~ none ~ nope }}{{ [1] + [2] }})J", R"J({})J",
     R"J(ab1xNone[1, 2])J"},
    {"Compare",
     R"J({{ 1 < 2 }}{{ 2 <= 1 }}{{ 'b' > 'a' }}{{ 1 == 1.0 }}{{ 'a' != 'a' }}{{ 1 < 2 < 3 }}{{ 3 > 2 > 2 }})J",
     R"J({})J", R"J(TrueFalseTrueTrueFalseTrueFalse)J"},
    {"Logic", R"J({{ 0 or 'x' }}{{ 1 and 'y' }}{{ not 0 }}{{ none or [] }})J", R"J({})J",
     R"J(xyTrue[])J"},
    {"In", R"J({{ 'a' in 'cat' }}{{ 2 in [1, 2] }}{{ 'k' in {'k': 1} }}{{ 3 not in [3] }})J",
     R"J({})J", R"J(TrueTrueTrueFalse)J"},
    {"Ternary", R"J({{ 'y' if x else 'n' }}{{ 'y' if not x else 'n' }}[{{ 'z' if false }}])J",
     R"J({"x": 1})J", R"J(yn[])J"},
    {"Tests",
     R"J({{ x is defined }}{{ y is undefined }}{{ none is none }}{{ 's' is string }}{{ {} is mapping }}{{ [] is iterable }}{{ 1.5 is number }}{{ [] is sequence }}{{ 3 is odd }}{{ x is not none }})J",
     R"J({"x": 1})J", R"J(TrueTrueTrueTrueTrueTrueTrueTrueTrueTrue)J"},
    {"TestArg", R"J({{ 'a' is equalto 'a' }}{{ 6 is divisibleby 3 }}{{ 6 is divisibleby(4) }})J",
     R"J({})J", R"J(TrueTrueFalse)J"},
    {"FilterStrings",
     R"J({{ '  a b  '|trim }}|{{ 'Ab'|upper }}{{ 'Ab'|lower }}|{{ "they're here-now"|title }}|{{ 'hELLO'|capitalize }})J",
     R"J({})J", R"J(a b|ABab|They're Here-Now|Hello)J"},
    {"FilterSeq",
     R"J({{ [3, 1]|length }}{{ 'héllo'|length }}{{ [3, 1]|first }}{{ [3, 1]|last }}{{ [1, 2]|join(', ') }}{{ 'abc'|list }}{{ [1, 2]|reverse|list }})J",
     R"J({})J", R"J(25311, 2['a', 'b', 'c'][2, 1])J"},
    {"FilterMisc",
     R"J({{ nope|default('d') }}{{ ''|default('e', true) }}{{ 'aXa'|replace('a', 'b') }}{{ '42'|int + 1 }}{{ 3.9|int }}{{ 5|string ~ 'x' }}{{ {'b': 1, 'a': 2}|items|list }})J",
     R"J({})J", R"J(debXb4335x[('b', 1), ('a', 2)])J"},
    {"ToJson", R"J({{ {'b': [1, 2.5, none, true], 'a': '<é>\n'}|tojson }})J", R"J({})J",
     R"J({"b": [1, 2.5, null, true], "a": "<é>\n"})J"},
    {"ToJsonOptions",
     R"J({{ {'b': 1, 'a': 'é'}|tojson(sort_keys=true, ensure_ascii=true) }} {{ m|tojson }})J",
     R"J({"m": {"role": "user", "content": "x"}})J",
     R"J({"a": "\u00e9", "b": 1} {"role": "user", "content": "x"})J"},
    {"ToJsonIndent", R"J({{ {'a': [1]}|tojson(indent=2) }})J", R"J({})J", R"J({
  "a": [
    1
  ]
})J"},
    {"SelectAttr",
     R"J({{ ms|selectattr('role', 'equalto', 'user')|map(attribute='content')|join(',') }}|{{ ms|rejectattr('role', 'equalto', 'user')|list|length }})J",
     R"J({"ms": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}, {"role": "user", "content": "c"}]})J",
     R"J(a,c|1)J"},
    {"StringMethods",
     R"J({{ ' x '.strip() }}|{{ ' x '.lstrip() }}|{{ ' x '.rstrip() }}|{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}|{{ 'a b  c'.split() }}{{ 'a,b'.split(',') }}|{{ 'aB'.upper() }}{{ 'aB'.lower() }}{{ 'ab cd'.title() }}{{ 'xax'.replace('x', 'yy') }})J",
     R"J({})J", R"J(x|x | x|TrueTrue|['a', 'b', 'c']['a', 'b']|ABabAb Cdyyayy)J"},
    {"DictMethods",
     R"J({% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{{ d.keys()|list }}{{ d.get('a') }}{{ d.get('z', 0) }}{{ d.get('z') }})J",
     R"J({"d": {"a": 1, "b": 2}})J", R"J(a=1;b=2;['a', 'b']10None)J"},
    {"ForLoop",
     R"J({% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %})J",
     R"J({"xs": ["a", "b"]})J", R"J(102TrueFalse2;211FalseTrue2;)J"},
    {"ForElse",
     R"J({% for x in [] %}x{% else %}empty{% endfor %}{% for x in nope %}y{% endfor %})J",
     R"J({})J", R"J(empty)J"},
    {"ForFilter",
     R"J({% for x in [1, 2, 3, 4] if x is even %}{{ x }}{{ loop.length }}{% endfor %})J", R"J({})J",
     R"J(2242)J"},
    {"BreakContinue",
     R"J({% for x in [1, 2, 3, 4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %})J",
     R"J({})J", R"J(13)J"},
    {"LoopScope",
     R"J({% set x = 0 %}{% for i in [1, 2] %}[{{ x }}]{% set x = i %}({{ x }}){% endfor %}{{ x }})J",
     R"J({})J", R"J([0](1)[0](2)0)J"},
    {"Namespace",
     R"J({% set ns = namespace(n=0, s='') %}{% for i in [1, 2, 3] %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }})J",
     R"J({})J", R"J(6)J"},
    {"SetUnpack", R"J({% set a, b = 1, 2 %}{{ a }}{{ b }})J", R"J({})J", R"J(12)J"},
    {"SetBlock", R"J({% set t %}x{{ 1 }}{% endset %}[{{ t }}])J", R"J({})J", R"J([x1])J"},
    {"Macro",
     R"J({% macro greet(name, p='Hi') %}{{ p }} {{ name }}{% endmacro %}{{ greet('a') }}/{{ greet('b', p='Yo') }})J",
     R"J({})J", R"J(Hi a/Yo b)J"},
    {"Comment", R"J(a{# note #}b)J", R"J({})J", R"J(ab)J"},
    {"Raw", R"J({% raw %}{{ x }}{% endraw %})J", R"J({})J", R"J({{ x }})J"},
    {"WhitespaceMinus", R"J(a  {{- 'b' -}}  c {%- if true -%} d {%- endif %})J", R"J({})J",
     R"J(abcd)J"},
    {"TrimBlocks", R"J({% if true %}
x
{% endif %}
y)J",
     R"J({})J", R"J(x
y)J"},
    {"LstripBlocks", R"J(  {% if true %}
  x
  {% endif %}
)J",
     R"J({})J", R"J(  x
)J"},
    {"LstripNotForVars", R"J(  {{ 'v' }}
)J",
     R"J({})J", R"J(  v)J"},
    {"PlusDisablesLstrip", R"J(  {%+ if true %}x{% endif %})J", R"J({})J", R"J(  x)J"},
    {"CommentTrim", R"J(a
  {# c #}
b)J",
     R"J({})J", R"J(a
b)J"},
    {"TrailingNewline", R"J(x
)J",
     R"J({})J", R"J(x)J"},
    {"CRLF", R"J({% if true %}
a
{% endif %}
)J",
     R"J({})J", R"J(a
)J"},
    {"NestedBraces", R"J({{ {'a': {'b': 1}} }})J", R"J({})J", R"J({'a': {'b': 1}})J"},
    {"FilterPrecedence", R"J({{ 'a' + ' b '|trim + 'c' }}{{ -1|abs }})J", R"J({})J", R"J(abc1)J"},
    {"Range", R"J({% for i in range(3) %}{{ i }}{% endfor %}{{ range(1, 7, 2)|list }})J", R"J({})J",
     R"J(012[1, 3, 5])J"},
    {"Escapes", R"J({{ 'a\tb\u00e9\x41\\' }})J", R"J({})J", R"J(a	béA\)J"},
    {"Unicode", R"J({{ msg }}{{ msg|length }})J", R"J({"msg": "héllo 世界 😀"})J",
     R"J(héllo 世界 😀10)J"},
    {"FloatRepr", R"J({{ 1e16 }} {{ 1.5e-05 }} {{ 100.0 }} {{ 1/3 }})J", R"J({})J",
     R"J(1e+16 1.5e-05 100.0 0.3333333333333333)J"},
};

TEST(Jinja, MatchesJinja2OnEachConstruct) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    std::string got;
    try {
      got = render_jinja(c.tpl, nlohmann::ordered_json::parse(c.context));
    } catch (const std::exception& e) {
      got = std::string("error: ") + e.what();
    }
    EXPECT_EQ(got, c.expected);
  }
}

// The error's position, or fails the test when rendering succeeds.
JinjaError error_of(const std::string& tpl, const nlohmann::json& ctx = nlohmann::json::object(),
                    const JinjaLimits& limits = {}) {
  try {
    std::string out = render_jinja(tpl, ctx, limits);
    ADD_FAILURE() << "rendered without error: " << out;
  } catch (const JinjaError& e) {
    return e;
  }
  return JinjaError("none", 0, 0);
}

TEST(Jinja, SyntaxErrorsCarryLineAndColumn) {
  JinjaError e = error_of("line one\n  {% if x %}a{% endfor %}");
  EXPECT_EQ(e.line(), 2);
  EXPECT_NE(e.message().find("endfor"), std::string::npos) << e.what();

  e = error_of("ab\ncd {{ 1 + }}");
  EXPECT_EQ(e.line(), 2);
  EXPECT_EQ(e.column(), 11);  // the "}}" where an operand was expected
  EXPECT_EQ(std::string(e.what()).rfind("template line 2, column 11: ", 0), 0u) << e.what();

  EXPECT_EQ(error_of("{{ 'abc }}").column(), 4);
  EXPECT_EQ(error_of("x {# never closed").column(), 3);
  EXPECT_NE(error_of("{% if x %}no end").message().find("endif"), std::string::npos);
  EXPECT_NE(error_of("{% frobnicate %}").message().find("frobnicate"), std::string::npos);
  EXPECT_NE(error_of("{{ (1 ]] }}").message().find("unexpected"), std::string::npos);
  EXPECT_NE(error_of("{{ x | nosuchfilter }}").message().find("nosuchfilter"), std::string::npos);
  EXPECT_NE(error_of("{% break %}").message().find("loop"), std::string::npos);
}

TEST(Jinja, RuntimeErrorsCarryPosition) {
  JinjaError e =
      error_of("{% for m in messages %}\n{{ raise_exception('roles must alternate') }}{% endfor %}",
               {{"messages", {1}}});
  EXPECT_EQ(e.message(), "roles must alternate");
  EXPECT_EQ(e.line(), 2);
  EXPECT_EQ(e.column(), 19);  // the call's "("

  // jinja2's default Undefined: printing is fine, but attributes and arithmetic are errors.
  EXPECT_EQ(error_of("{{ nope.attr }}").message(), "'nope' is undefined");
  EXPECT_EQ(error_of("{{ nope + 'x' }}").message(), "'nope' is undefined");
  EXPECT_NE(error_of("{{ 'a' + 1 }}").message().find("unsupported operand"), std::string::npos);
  EXPECT_NE(error_of("{{ 1 // 0 }}").message().find("zero"), std::string::npos);
  EXPECT_NE(error_of("{{ 9223372036854775807 + 1 }}").message().find("overflow"),
            std::string::npos);
  EXPECT_NE(error_of("{{ 1 < 'a' }}").message().find("not supported"), std::string::npos);
  EXPECT_NE(error_of("{% set x = 1 %}{% set x.a = 2 %}").message().find("namespace"),
            std::string::npos);
  EXPECT_NE(error_of("{{ 'x'() }}").message().find("not callable"), std::string::npos);
  EXPECT_THROW(render_jinja("x", nlohmann::json::array()), std::invalid_argument);
}

TEST(Jinja, LimitsStopHostileTemplates) {
  JinjaLimits small;
  small.max_output_bytes = 1000;
  EXPECT_NE(
      error_of("{% for i in 'x' * 500 %}xxxxxxxxxx{% endfor %}", nlohmann::json::object(), small)
          .message()
          .find("output"),
      std::string::npos);
  EXPECT_NE(error_of("{{ 'x' * 5000 }}", nlohmann::json::object(), small).message().find("limit"),
            std::string::npos);
  EXPECT_NE(error_of("{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s + "
                     "ns.s %}{% endfor %}",
                     nlohmann::json::object(), small)
                .message()
                .find("limit"),
            std::string::npos);

  JinjaLimits little_work;
  little_work.max_work = 100000;
  // Nested loops that would run for 10^15 steps end at the work limit.
  EXPECT_NE(
      error_of(
          "{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}"
          "{% endfor %}{% endfor %}{% endfor %}",
          nlohmann::json::object(), little_work)
          .message()
          .find("work limit"),
      std::string::npos);

  EXPECT_NE(error_of("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}")
                .message()
                .find("deep"),
            std::string::npos);
  EXPECT_NE(
      error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}").message().find("deep"),
      std::string::npos);
  JinjaLimits tiny_tpl;
  tiny_tpl.max_template_bytes = 10;
  EXPECT_THROW(render_jinja("0123456789ab", nlohmann::json::object(), tiny_tpl), JinjaError);
}

TEST(Jinja, NeverCrashesOnTruncatedTemplates) {
  // Every prefix of a template using most of the syntax either renders or throws JinjaError.
  const std::string tpl =
      "{%- set ns = namespace(a=[1, 2.5, 'x\\n'], b={'k': none}) -%}\n"
      "{% for m in messages if m.role != 'x' %}{{ loop.index ~ m['content'][1:]|trim|tojson }}"
      "{% if m is mapping and not (m.role in ['a', \"b\"]) %}{{ m.get('role', 0) - -1 if false "
      "else 1 }}{% endif %}"
      "{% else %}{# none #}{% endfor %}{% macro q(a, b=2) %}{{ a // b }}{% endmacro %}{{ q(7) }}";
  nlohmann::json ctx = {{"messages", {{{"role", "user"}, {"content", "hello"}}}}};
  EXPECT_EQ(render_jinja(tpl, ctx), "1\"ello\"13");
  for (size_t n = 0; n < tpl.size(); ++n) {
    try {
      render_jinja(tpl.substr(0, n), ctx);
    } catch (const JinjaError&) {
    }
  }
}

// A namespace that holds itself is a reference cycle; the render frees it (the sanitizer build's
// LeakSanitizer fails this binary otherwise). Found by jinja_fuzz.
TEST(JinjaMemory, NamespaceCyclesAreFreed) {
  const auto ctx = nlohmann::json::object();
  EXPECT_EQ(
      render_jinja("{% set ns = namespace(a=1) %}{% set ns.self = [ns, (ns, 2)] %}{{ ns.a }}", ctx),
      "1");
  EXPECT_EQ(
      render_jinja("{% set ns = namespace(s='') %}{% set ns.s = ns, ns %}{{ ns.s|length }}", ctx),
      "2");
  EXPECT_THROW(
      render_jinja("{% set ns = namespace() %}{% set ns.x = ns %}{{ raise_exception('x') }}", ctx),
      JinjaError);
}

}  // namespace
}  // namespace lmstream
