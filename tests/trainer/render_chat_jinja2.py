#!/usr/bin/python3
"""Reference for the training-data tests (tests/trainer/data_test.cpp).

Renders conversations with Python's jinja2 the way Hugging Face transformers'
apply_chat_template does (ImmutableSandboxedEnvironment, trim_blocks,
lstrip_blocks, loopcontrols, raise_exception), and finds the assistant text
the way transformers' return_assistant_tokens_mask does: from the
{% generation %} ... {% endgeneration %} blocks of the template. Written from
transformers' chat_template_utils.py, not from trainer/data.cpp, which finds
the assistant text a different way (rendering prefixes of the conversation).

Usage: render_chat_jinja2.py CASES.json
CASES.json: a list of {"template", "messages", "add_generation_prompt",
"bos_token", "eos_token"}. Prints a JSON list with one
{"text": str, "spans": [str, ...]} per case: the rendered text and, in order,
the text of every {% generation %} block.
Exit status 2 when jinja2 cannot be imported (the C++ test then skips).
"""
import json
import sys

try:
    import jinja2
    from jinja2 import nodes
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError:
    sys.stderr.write("render_chat_jinja2.py: jinja2 is not installed for %s\n" % sys.executable)
    sys.exit(2)

# Private-use characters bracket each generation block in the output; they
# are removed again and their positions give the spans.
START = "\ue000"
END = "\ue001"


class GenerationTracker(Extension):
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return START + caller() + END


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTracker, loopcontrols])
    env.globals["raise_exception"] = raise_exception
    results = []
    for case in cases:
        out = env.from_string(case["template"]).render(
            messages=case["messages"],
            add_generation_prompt=case["add_generation_prompt"],
            bos_token=case["bos_token"],
            eos_token=case["eos_token"])
        text = []
        spans = []
        current = None
        for ch in out:
            if ch == START:
                current = []
            elif ch == END:
                spans.append("".join(current))
                current = None
            else:
                text.append(ch)
                if current is not None:
                    current.append(ch)
        results.append({"text": "".join(text), "spans": spans})
    sys.stdout.write(json.dumps(results, ensure_ascii=True))


if __name__ == "__main__":
    main()
