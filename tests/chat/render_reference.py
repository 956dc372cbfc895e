#!/usr/bin/python3
"""Reference renderer for the chat-template conformance tests.

Renders chat templates with Python's jinja2 exactly the way Hugging Face
transformers' apply_chat_template does (transformers/utils/chat_template_utils.py):
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the
loopcontrols extension and a no-op {% generation %} tag, `tojson` replaced by
json.dumps(ensure_ascii=False, ...), and the globals raise_exception and
strftime_now.

Usage: render_reference.py CASES.json
CASES.json is a list of {"template": str, "context": {...}}. Prints a JSON list
with one {"ok": true, "out": str} or {"ok": false, "error": str} per case.
Exit status 2 when jinja2 cannot be imported (the C++ test then skips).
"""
import json
import sys
from datetime import datetime

try:
    import jinja2
    from jinja2 import nodes
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError:
    sys.stderr.write("render_reference.py: jinja2 is not installed for %s\n" % sys.executable)
    sys.exit(2)


class GenerationTag(Extension):
    """HF's AssistantTracker without the tracking: renders the body as is."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return datetime.now().strftime(format)


def make_env():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTag, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)
    env = make_env()
    compiled = {}
    results = []
    for case in cases:
        try:
            source = case["template"]
            if source not in compiled:
                compiled[source] = env.from_string(source)
            out = compiled[source].render(**case["context"])
            results.append({"ok": True, "out": out})
        except Exception as e:  # any jinja2 or Python error is an expected-failure case
            results.append({"ok": False, "error": "%s: %s" % (type(e).__name__, e)})
    sys.stdout.write(json.dumps(results, ensure_ascii=True))


if __name__ == "__main__":
    main()
