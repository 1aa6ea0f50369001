# Renders the chat-template cases with Python's Jinja2 configured as Hugging Face's
# apply_chat_template configures it; the output is the golden data for chattemplate's tests.
import json, sys, os
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.exceptions import TemplateError
D = sys.argv[1]
toks = {"llama3.2": ("<|begin_of_text|>", "<|eot_id|>"), "mistral": ("<s>", "</s>"),
        "qwen2.5": ("<|endoftext|>", "<|im_end|>"), "qwen3": ("<|endoftext|>", "<|im_end|>"),
        "smollm2": ("<|im_start|>", "<|im_end|>")}
def raise_exception(msg): raise TemplateError(msg)
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
env.globals["raise_exception"] = raise_exception
cases = json.load(open(os.path.join(D, "cases.json")))
out = {}
for name, (bos, eos) in sorted(toks.items()):
    t = env.from_string(open(os.path.join(D, "templates", name + ".jinja")).read())
    for c in cases:
        try:
            s = t.render(messages=c["messages"], add_generation_prompt=c["add_generation_prompt"], bos_token=bos, eos_token=eos, date_string="26 Jul 2024")
            out[name + "/" + c["name"]] = {"text": s}
        except TemplateError as e:
            out[name + "/" + c["name"]] = {"error": str(e)}
json.dump(out, open(os.path.join(D, "golden", "rendered.json"), "w"), indent=1, ensure_ascii=False, sort_keys=True)
