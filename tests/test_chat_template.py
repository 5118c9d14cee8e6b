# interpreter: /usr/bin/python3
"""Chat templates through `lmstream tokenize --chat`: real Hugging Face chat_templates (Llama 2,
Mistral, Mixtral, ChatML, Zephyr/TinyLlama, Vicuna, Llama 3, Gemma) and a few written to exercise
namespaces, macros and filters, each rendered for many message lists by our C++ Jinja engine and
by Python jinja2 configured as transformers' apply_chat_template configures it. Outputs must be
byte-identical, and where jinja2 raises (raise_exception, bad role order) ours must fail too.
Also: the built-in Llama 2 format (model without a template) equals the HF Llama 2 template, and
templated text is tokenized with literal <s> as BOS and no second BOS."""
import concurrent.futures
import json
import os
import shutil
import subprocess
import tempfile
import unittest

try:
    import jinja2
    import jinja2.ext
except ImportError:  # reported as a failure in setUpClass
    jinja2 = None
try:
    import sentencepiece as spm
except ImportError:
    spm = None

from lmstest import SANITIZED, binary_path, cached_model, tokenizer_path

BINARY = binary_path()
TOKENIZER = tokenizer_path(required=False)

# meta-llama/Llama-2-7b-chat-hf tokenizer_config.json, verbatim.
LLAMA2 = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"

TEMPLATES = {
    "llama2": LLAMA2,
    # mistralai/Mistral-7B-Instruct-v0.1
    "mistral": "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}",
    # mistralai/Mixtral-8x7B-Instruct-v0.1
    "mixtral": "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}",
    # ChatML, teknium/OpenHermes-2.5-Mistral-7B
    "chatml": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
    # HuggingFaceH4/zephyr-7b-beta and TinyLlama/TinyLlama-1.1B-Chat-v1.0 (newlines: trim_blocks)
    "zephyr": "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}",
    # Vicuna (chujiezheng/chat_templates vicuna.jinja: indented, so lstrip_blocks matters)
    "vicuna": """{% if messages[0]['role'] == 'system' %}
    {% set loop_messages = messages[1:] %}
    {% set system_message = messages[0]['content'].strip() + '\\n\\n' %}
{% else %}
    {% set loop_messages = messages %}
    {% set system_message = '' %}
{% endif %}
{{ bos_token + system_message }}
{% for message in loop_messages %}
    {% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
    {% endif %}
    {% if message['role'] == 'user' %}
        {{ 'USER: ' + message['content'].strip() + '\\n' }}
    {% elif message['role'] == 'assistant' %}
        {{ 'ASSISTANT: ' + message['content'].strip() + eos_token + '\\n' }}
    {% endif %}
{% endfor %}
{% if add_generation_prompt %}
    {{ 'ASSISTANT:' }}
{% endif %}
""",
    # A Vicuna variant written with "-" whitespace control throughout
    "vicuna_dash": """{% for message in messages -%}
    {%- if message['role'] == 'system' -%}
        {{ message['content'].strip() + ' ' }}
    {%- elif message['role'] == 'user' -%}
        {{ 'USER: ' + message['content'].strip() + ' ' }}
    {%- elif message['role'] == 'assistant' -%}
        {{ 'ASSISTANT: '  + message['content'] + eos_token + '' }}
    {%- endif %}
    {%- if loop.last and add_generation_prompt -%}
        {{ 'ASSISTANT:' }}
    {%- endif -%}
{%- endfor %}
""",
    # meta-llama/Meta-Llama-3-8B-Instruct
    "llama3": "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
    # google/gemma-7b-it
    "gemma": "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}",
    # Written for this test: namespace, macro, filters, tojson, slices, loop variables, tests.
    "constructs": """{%- set ns = namespace(system='', turns=0) -%}
{%- macro turn(role, text, last=false) -%}
[{{ role|upper }}{{ '*' if last }}] {{ text|trim|replace('\\n', ' / ') }}
{% endmacro -%}
{%- for m in messages if m.role == 'system' %}{% set ns.system = ns.system ~ m.content %}{% endfor -%}
{%- if ns.system %}SYS {{ ns.system|tojson }} len={{ ns.system|length }}
{% endif -%}
{%- for m in messages|rejectattr('role', 'equalto', 'system') -%}
  {%- set ns.turns = ns.turns + 1 -%}
  {{ loop.index }}/{{ loop.length }}{{ ' first' if loop.first }}{{ ' last' if loop.last }} {{ turn(m['role'], m.content, loop.last) }}
  {%- if m.content is string and m.content.startswith('!') %}  (bang: {{ m.content[1:]|title }}){% endif %}
{% else -%}
  (no turns)
{% endfor -%}
{{ ns.turns }} turns; roles={{ messages|map(attribute='role')|join(',') }}; rev={{ (messages|map(attribute='role')|list)[::-1] }}
last={{ messages[-1:]|tojson }} {{ (messages|last or {}).items()|list }}
{%- if add_generation_prompt %}
{{ turn('assistant', '') }}{% endif %}""",
}

# Message lists: (name, messages). Some are invalid for some templates (those raise).
S, U, A = "system", "user", "assistant"


def conv(*pairs):
    return [{"role": r, "content": c} for r, c in pairs]


MESSAGES = [
    ("one_user", conv((U, "Hello"))),
    ("system_user", conv((S, "You are a helpful assistant"), (U, "Hello"))),
    ("multi_turn", conv((U, "Hello"), (A, "Hi there"), (U, "Who are you"), (A, "   I am an assistant   "),
                        (U, "Another question"))),
    ("system_multi", conv((S, "Be brief.\n"), (U, "Hi"), (A, "Hello!"), (U, "Bye"))),
    ("ends_assistant", conv((U, "Q"), (A, "A"))),
    ("unicode", conv((S, "R\u00e9ponds en fran\u00e7ais \U0001F600"), (U, "\u4f60\u597d\uff0c\u4e16\u754c \u041f\u0440\u0438\u0432\u0435\u0442"),
                     (A, "\u3053\u3093\u306b\u3061\u306f \U0001F468\u200d\U0001F469\u200d\U0001F467"), (U, "caf\u00e9 \u00a0nbsp\u2003em"))),
    ("quotes", conv((U, "He said \"hi\" and 'bye' \\ back\\slash"), (A, "It's \"fine\""), (U, "`code` <tag> & amp"))),
    ("braces", conv((U, "{{ not a template }} {% if %} {# c #}"), (A, "}}{%"), (U, "{'a': 1}"))),
    ("empty_content", conv((U, ""), (A, ""), (U, ""))),
    ("whitespace", conv((S, "  \n "), (U, "\n\n  spaced  \t\n"), (A, " \t"), (U, "x\r\ny"))),
    ("newlines", conv((U, "line1\nline2\n\nline4"), (A, "a\nb"), (U, "!shout this\nout"))),
    ("special_text", conv((U, "</s><s>[INST] fake [/INST] <<SYS>>"), (A, "<|im_end|>"), (U, "<unk>"))),
    ("long", conv(*[((U, "question %d " % i + "word " * 40) if i % 2 == 0 else (A, "answer %d" % i))
                    for i in range(21)])),
    # Invalid role orders: templates with raise_exception must fail, others render what they render.
    ("assistant_first", conv((A, "I start"), (U, "Hello"))),
    ("two_users", conv((U, "a"), (U, "b"))),
    ("system_only", conv((S, "only a system prompt"))),
    ("system_late", conv((U, "a"), (S, "late system"), (U, "b"))),
    ("unknown_role", conv((U, "a"), (A, "b"), ("tool", "c"))),
    ("empty_list", []),
]


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def hf_tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    """The tojson filter transformers installs in place of jinja2's HTML-escaping one."""
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def oracle(template, messages, add_generation_prompt):
    """transformers' apply_chat_template(tokenize=False) rendering, or None when it raises."""
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.globals["raise_exception"] = raise_exception
    env.filters["tojson"] = hf_tojson
    try:
        return env.from_string(template).render(messages=messages, bos_token="<s>", eos_token="</s>",
                                                 add_generation_prompt=add_generation_prompt)
    except jinja2.exceptions.TemplateError:
        return None


class ChatTemplate(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        missing = []
        if jinja2 is None:
            missing.append("python module jinja2 (Debian python3-jinja2)")
        if spm is None:
            missing.append("python module sentencepiece (Debian python3-sentencepiece)")
        if not BINARY or not os.path.isfile(BINARY):
            missing.append("LMSTREAM_BINARY (the lmstream executable), got %r" % BINARY)
        if not os.path.isfile(TOKENIZER):
            missing.append("the Llama-2 tokenizer at %s" % TOKENIZER)
        if missing:
            raise RuntimeError("cannot run: missing " + "; ".join(missing))
        cls.sp = spm.SentencePieceProcessor(model_file=TOKENIZER)
        cls.tmp = tempfile.mkdtemp(prefix="lms-chat-")
        cls.model = cached_model("hf", "micro", "f32", tokenizer=TOKENIZER)  # read-only
        # The same model without a chat_template: lmstream falls back to its built-in Llama 2 format.
        cls.bare = os.path.join(cls.tmp, "bare")
        shutil.copytree(cls.model, cls.bare)
        cfg_path = os.path.join(cls.bare, "tokenizer_config.json")
        with open(cfg_path) as f:
            cfg = json.load(f)
        if cfg.pop("chat_template", None) is None:
            raise RuntimeError("make-test-model wrote no chat_template to tokenizer_config.json")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        cls.files = {}
        for name, tpl in TEMPLATES.items():
            path = os.path.join(cls.tmp, name + ".jinja")
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(tpl)
            cls.files["tpl:" + name] = path
        for name, msgs in MESSAGES:
            path = os.path.join(cls.tmp, name + ".json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(msgs, f, ensure_ascii=False)
            cls.files["msg:" + name] = path

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "tmp", None):
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def tokenize(self, *args, model=None):
        r = subprocess.run([BINARY, "tokenize", "--model", model or self.model, *args], capture_output=True,
                           timeout=120)
        return r.returncode, r.stdout.decode("utf-8"), r.stderr.decode("utf-8", "replace")

    def test_templates_match_jinja2(self):
        jobs = []
        messages = MESSAGES if not SANITIZED else MESSAGES[::3]
        for tname, tpl in TEMPLATES.items():
            for mname, msgs in messages:
                for agp in (True, False):
                    jobs.append((tname, mname, agp, oracle(tpl, msgs, agp)))

        def run(job):
            tname, mname, agp, _ = job
            args = ["--chat", self.files["msg:" + mname], "--chat-template", self.files["tpl:" + tname], "--text"]
            if not agp:
                args.append("--no-generation-prompt")
            return self.tokenize(*args)

        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(run, jobs))
        raised = rendered = 0
        for (tname, mname, agp, want), (rc, out, err) in zip(jobs, results):
            with self.subTest(template=tname, messages=mname, add_generation_prompt=agp):
                if want is None:
                    raised += 1
                    self.assertNotEqual(rc, 0, "jinja2 raised but lmstream rendered %r" % out)
                    self.assertIn("template line", err)
                else:
                    rendered += 1
                    self.assertEqual(rc, 0, err)
                    self.assertEqual(out, want)
        # The corpus must exercise both outcomes.
        self.assertGreater(raised, 10)
        self.assertGreater(rendered, 100)

    def test_raise_exception_message_reaches_user(self):
        rc, out, err = self.tokenize("--chat", self.files["msg:two_users"], "--chat-template",
                                     self.files["tpl:llama2"], "--text")
        self.assertNotEqual(rc, 0)
        self.assertIn("Conversation roles must alternate user/assistant/user/assistant/...", err)

    def test_model_template_and_builtin_fallback_equal_hf_llama2(self):
        def builtin_accepts(msgs):
            """engine/chat.h's rule: (system)? user (assistant user)*."""
            roles = [m["role"] for m in msgs]
            if roles[:1] == [S]:
                roles = roles[1:]
            return bool(roles) and all(r == (U if i % 2 == 0 else A) for i, r in enumerate(roles)) and roles[-1] == U

        compared = 0
        for mname, msgs in MESSAGES:
            want = oracle(LLAMA2, msgs, True)
            with self.subTest(messages=mname):
                rc, out, err = self.tokenize("--chat", self.files["msg:" + mname], "--text")
                if want is None:
                    self.assertNotEqual(rc, 0, out)
                else:
                    self.assertEqual(rc, 0, err)
                    self.assertEqual(out, want)
                rc, out, err = self.tokenize("--chat", self.files["msg:" + mname], "--text", model=self.bare)
                if builtin_accepts(msgs):
                    compared += 1
                    self.assertEqual(rc, 0, err)
                    self.assertEqual(out, want)
                else:
                    # Stricter than the HF template (which e.g. silently drops a late system
                    # message or renders a conversation ending with the assistant): an error.
                    self.assertNotEqual(rc, 0, out)
                    self.assertIn("chat:", err)
        self.assertGreater(compared, 8)

    def test_token_ids_use_literal_bos_once(self):
        for mname in ("system_user", "multi_turn", "special_text", "unicode"):
            with self.subTest(messages=mname):
                rc, text, err = self.tokenize("--chat", self.files["msg:" + mname], "--text")
                self.assertEqual(rc, 0, err)
                self.assertTrue(text.startswith("<s>"))
                rc, out, err = self.tokenize("--chat", self.files["msg:" + mname])
                self.assertEqual(rc, 0, err)
                ids = json.loads(out)
                # HF semantics: the template's literal <s>/</s> are BOS/EOS, and no BOS is added
                # in front of the one the template wrote.
                self.assertEqual(ids[0], self.sp.bos_id())
                self.assertNotEqual(ids[1], self.sp.bos_id())
                self.assertEqual(ids.count(self.sp.bos_id()), text.count("<s>"))
                self.assertEqual(ids.count(self.sp.eos_id()), text.count("</s>"))
                # Exactly the ids of the rendered text tokenized with --parse-special --no-bos.
                r = subprocess.run([BINARY, "tokenize", "--model", self.model, "--parse-special", "--no-bos"],
                                   input=text.encode("utf-8"), capture_output=True, timeout=120)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(json.loads(r.stdout), ids)
        # A template that does not start with bos_token gets the model's BOS (add_bos) prepended.
        rc, out, err = self.tokenize("--chat", self.files["msg:one_user"], "--chat-template", self.files["tpl:chatml"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)[0], self.sp.bos_id())
        self.assertEqual(json.loads(out).count(self.sp.bos_id()), 1)

    def test_bad_inputs_fail_clearly(self):
        bad_json = os.path.join(self.tmp, "bad.json")
        with open(bad_json, "w") as f:
            f.write('[{"role": "user"}]')
        rc, out, err = self.tokenize("--chat", bad_json, "--text")
        self.assertNotEqual(rc, 0)
        self.assertIn("content", err)
        bad_tpl = os.path.join(self.tmp, "bad.jinja")
        with open(bad_tpl, "w") as f:
            f.write("ok\n{% for m in messages %}{{ m.content }")
        rc, out, err = self.tokenize("--chat", self.files["msg:one_user"], "--chat-template", bad_tpl, "--text")
        self.assertNotEqual(rc, 0)
        self.assertIn("template line 2", err)


if __name__ == "__main__":
    unittest.main()
