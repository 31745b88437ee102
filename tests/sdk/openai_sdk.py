"""The official openai Python SDK against TwinExpert's OpenAI-compatible endpoint.
Env: BASE (…/api/v1), KEY (full_access), READ_ONLY_KEY, LIMITED_KEY (read_only, its hourly
limit is tiny), TWIN (a twin id)."""
import os

import openai
from openai import OpenAI

base, key, twin = os.environ["BASE"], os.environ["KEY"], os.environ["TWIN"]
client = OpenAI(base_url=base, api_key=key)

models = [m.id for m in client.models.list()]
assert twin in models, models
assert client.models.retrieve(twin).id == twin

question = [{"role": "user", "content": "Xin chào, giới thiệu về bạn [[words:12]]"}]
plain = client.chat.completions.create(model=twin, messages=question)
text = plain.choices[0].message.content
assert text and plain.choices[0].finish_reason == "stop", plain
assert plain.model == twin and plain.object == "chat.completion"
assert plain.usage.total_tokens == plain.usage.prompt_tokens + plain.usage.completion_tokens > 0

chunks = list(client.chat.completions.create(
    model=twin, messages=question, stream=True, stream_options={"include_usage": True}))
streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
assert streamed == text, (streamed, text)
assert chunks[0].choices[0].delta.role == "assistant"
assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == plain.usage.total_tokens, chunks[-1]

helper = getattr(client.chat.completions, "stream", None) or client.beta.chat.completions.stream
with helper(model=twin, messages=question) as s:
    for _ in s:
        pass
    final = s.get_final_completion()
assert final.choices[0].message.content == text

def raises(kind, call):
    try:
        call()
    except kind:
        return
    raise AssertionError(f"expected {kind.__name__}")

raises(openai.AuthenticationError,
       lambda: OpenAI(base_url=base, api_key="te_" + "0" * 36).models.list())
raises(openai.PermissionDeniedError,
       lambda: OpenAI(base_url=base, api_key=os.environ["READ_ONLY_KEY"]).chat.completions.create(
           model=twin, messages=question))
raises(openai.NotFoundError, lambda: client.chat.completions.create(model="twn_nope", messages=question))
limited = OpenAI(base_url=base, api_key=os.environ["LIMITED_KEY"])
def spend_the_limit():
    for _ in range(100):
        limited.models.list()
raises(openai.RateLimitError, spend_the_limit)
print("python sdk ok")
