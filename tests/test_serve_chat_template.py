"""/v1/chat/completions renders the messages through the model's own chat_template
(tokenizer_config.json), falls back to the built-in Llama 2 format when there is none or it cannot
be rendered, and turns the template's raise_exception into a 422. Python stdlib only; the
expected prompts are formatted here by hand and tokenized by the server's /tokenize."""
import json
import os
import shutil
import tempfile
import unittest

from lmstest import Server, make_test_model

CHATML = ("{% if messages[0]['role'] == 'system' and messages[0]['content'] == 'forbidden' %}"
          "{{ raise_exception('This system prompt is not allowed') }}{% endif %}"
          "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
UNSUPPORTED = "{% call foo() %}x{% endcall %}"
KEEP = object()  # the generator's own template

MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name a colour."},
            {"role": "assistant", "content": "Blue."}, {"role": "user", "content": "Another, with {braces} and \"quotes\"."}]


def chatml_text(msgs):
    return "".join("<|im_start|>%s\n%s<|im_end|>\n" % (m["role"], m["content"]) for m in msgs) + "<|im_start|>assistant\n"


def model_with_template(root, name, template):
    d = make_test_model(os.path.join(root, name), "hf", "micro", "f16", tokenizer=True)
    p = os.path.join(d, "tokenizer_config.json")
    with open(p) as f:
        cfg = json.load(f)
    if template is KEEP:
        if "[INST]" not in cfg.get("chat_template", ""):
            raise AssertionError("make-test-model wrote no Llama 2 chat_template")
    elif template is None:
        cfg.pop("chat_template", None)
    else:
        cfg["chat_template"] = template
    with open(p, "w") as f:
        json.dump(cfg, f)
    return d


class ChatTemplateServeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="lms-chat-serve-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def chat(self, srv, msgs):
        st, _, body = srv.post_json("/v1/chat/completions", {"model": "m", "messages": msgs, "max_tokens": 3})
        return st, json.loads(body)

    def tokens(self, srv, text):
        st, _, body = srv.post_json("/tokenize", {"inputs": text})
        self.assertEqual(st, 200, body)
        return [t["id"] for t in json.loads(body)]

    def test_model_template_is_rendered(self):
        with Server(model=model_with_template(self.tmp, "chatml", CHATML)) as srv:
            st, j = self.chat(srv, MESSAGES)
            self.assertEqual(st, 200, j)
            # The ChatML text has no <s>: BOS is added once, as /tokenize does.
            want = self.tokens(srv, chatml_text(MESSAGES))
            self.assertEqual(want[0], 1)
            self.assertEqual(j["usage"]["prompt_tokens"], len(want))
            # Not the Llama 2 format: its tokens for the same messages count differently.
            self.assertNotEqual(len(want), len(self.tokens(srv, "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nName a colour. [/INST]")))
            # raise_exception in the template: 422 with the template's own message.
            st, j = self.chat(srv, [{"role": "system", "content": "forbidden"}, {"role": "user", "content": "hi"}])
            self.assertEqual(st, 422, j)
            self.assertIn("This system prompt is not allowed", json.dumps(j))
            self.assertIn("chat: the model's chat_template", srv.read_log())

    def test_llama2_template_and_fallbacks_agree(self):
        # The generator's own Llama 2 template, no template at all, and a template this build
        # cannot render (warned about at start-up) all give the built-in Llama 2 prompt.
        counts = {}
        for name, tpl in (("llama2", KEEP), ("none", None), ("unsupported", UNSUPPORTED)):
            d = model_with_template(self.tmp, name, tpl)
            with Server(model=d) as srv:
                st, j = self.chat(srv, MESSAGES)
                self.assertEqual(st, 200, j)
                counts[name] = j["usage"]["prompt_tokens"]
                if name == "unsupported":
                    self.assertIn("cannot be rendered", srv.read_log())
                # Wrong role order: the Llama 2 rules reject it on every path.
                st, j = self.chat(srv, [{"role": "assistant", "content": "x"}])
                self.assertEqual(st, 422, j)
        self.assertEqual(len(set(counts.values())), 1, counts)

if __name__ == "__main__":
    unittest.main(verbosity=2)
