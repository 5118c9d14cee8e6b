"""`lmstream generate --chat` formats the prompt with the model's own chat_template, as serve's
chat routes do (chat/formatter.h): a ChatML model gets the ChatML prompt, `--chat-template FILE`
overrides the model's template, and a model without a usable template gets the built-in Llama 2
format. Checked through the CLI only: a greedy `generate --chat` must produce exactly the prompt
and tokens of a plain `generate --prompt` of the hand-formatted text. Python stdlib only; it does
not start servers (test_serve_chat_template.py covers serve) and imports no other test."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from lmstest import binary, make_test_model

CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
UNSUPPORTED = "{% call foo() %}x{% endcall %}"
SYSTEM, USER = "You are terse.", "Name a colour."


def run(*args, stdin=None):
    return subprocess.run([binary(), *args], input=stdin, capture_output=True, text=True, timeout=300)


def chatml_text(msgs):
    return "".join("<|im_start|>%s\n%s<|im_end|>\n" % (m["role"], m["content"]) for m in msgs) + "<|im_start|>assistant\n"


class GenerateChatTemplateTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="lms-generate-chat-")
        cls.models = {}
        for name, template in (("chatml", CHATML), ("llama2", None), ("bare", ""), ("unsupported", UNSUPPORTED)):
            d = os.path.join(cls.tmp, name)
            make_test_model(d, "hf", "micro", "f32", tokenizer=True, seed=3)
            p = os.path.join(d, "tokenizer_config.json")
            with open(p) as f:
                cfg = json.load(f)
            if name == "llama2":
                cls.llama2_template = cfg["chat_template"]
                if "[INST]" not in cls.llama2_template:
                    raise AssertionError("make-test-model wrote no Llama 2 chat_template")
            elif template == "":
                cfg.pop("chat_template", None)
            else:
                cfg["chat_template"] = template
            with open(p, "w") as f:
                json.dump(cfg, f)
            cls.models[name] = d
        cls.files = {}
        for name, tpl in (("chatml", CHATML), ("llama2", cls.llama2_template)):
            path = os.path.join(cls.tmp, name + ".jinja")
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(tpl)
            cls.files[name] = path

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def generate(self, model, *args):
        """(prompt token count, generated ids, stderr) of a greedy generate."""
        r = run("generate", "--model", model, "--max-new-tokens", "6", "--seed", "1", "--ignore-eos",
                "--print-ids", "--threads", "1", *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        m = re.search(r"\[lmstream\] prompt (\d+) tokens, generated (\d+) \((\w+)\)", r.stderr)
        self.assertIsNotNone(m, r.stderr)
        ids = json.loads(r.stderr.strip().splitlines()[-1])
        self.assertEqual(len(ids), int(m.group(2)))
        return int(m.group(1)), ids, r.stderr

    def chat(self, model, *extra):
        return self.generate(model, "--chat", "--system", SYSTEM, "--prompt", USER, *extra)

    def test_model_chatml_template_is_rendered(self):
        msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}]
        text = chatml_text(msgs)
        n_chat, ids_chat, _ = self.chat(self.models["chatml"])
        # The same prompt given as text: BOS (the ChatML text has none) + the text's tokens.
        n_plain, ids_plain, _ = self.generate(self.models["chatml"], "--prompt", text)
        self.assertEqual(n_chat, n_plain)
        self.assertEqual(ids_chat, ids_plain)
        r = run("tokenize", "--model", self.models["chatml"], "--parse-special", stdin=text)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(n_chat, len(json.loads(r.stdout)))
        # Not the Llama 2 format the model used to get.
        n_llama2, _, _ = self.chat(self.models["bare"])
        self.assertNotEqual(n_chat, n_llama2)

    def test_llama2_template_builtin_and_fallback_agree(self):
        # The HF Llama 2 template renders exactly the built-in format; a model without a template
        # and one whose template this build cannot render (with a warning) use the built-in one.
        want = self.chat(self.models["bare"])[:2]
        self.assertEqual(self.chat(self.models["llama2"])[:2], want)
        n, ids, err = self.chat(self.models["unsupported"])
        self.assertEqual((n, ids), want)
        self.assertIn("cannot be rendered", err)

    def test_chat_template_file_overrides_the_model(self):
        self.assertEqual(self.chat(self.models["llama2"], "--chat-template", self.files["chatml"])[:2],
                         self.chat(self.models["chatml"])[:2])
        self.assertEqual(self.chat(self.models["chatml"], "--chat-template", self.files["llama2"])[:2],
                         self.chat(self.models["bare"])[:2])
        r = run("generate", "--model", self.models["chatml"], "--prompt", USER, "--chat-template",
                self.files["chatml"])
        self.assertNotEqual(r.returncode, 0, "--chat-template without --chat was accepted")
        bad = os.path.join(self.tmp, "bad.jinja")
        with open(bad, "w") as f:
            f.write("ok\n{% for m in messages %}{{ m.content }")
        r = run("generate", "--model", self.models["chatml"], "--chat", "--prompt", USER, "--chat-template", bad)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("template line 2", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
