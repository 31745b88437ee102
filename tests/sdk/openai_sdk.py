"""The official openai Python SDK against TwinExpert's OpenAI-compatible endpoint.
Env: BASE (…/api/v1), KEY (full_access), READ_ONLY_KEY, LIMITED_KEY (read_only, its hourly
limit is tiny), TWIN (a twin id)."""
import json
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

# A tool-calling round trip: tools → tool_calls → the tool's result → the final answer.
tools = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather now in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
ask = [{"role": "user", "content": "What is the weather in Hanoi?"}]

def finish_with_tool(assistant, call_id, name, arguments):
    assert name == "get_weather", name
    assert json.loads(arguments) == {"city": "Hanoi"}, arguments
    result = {"city": "Hanoi", "temperature_c": 31}
    return ask + [assistant, {"role": "tool", "tool_call_id": call_id, "content": json.dumps(result)}]

first = client.chat.completions.create(model=twin, messages=ask, tools=tools, tool_choice="auto")
assert first.choices[0].finish_reason == "tool_calls", first
message = first.choices[0].message
call = message.tool_calls[0]
follow = finish_with_tool(message, call.id, call.function.name, call.function.arguments)
final = client.chat.completions.create(model=twin, messages=follow, tools=tools)
assert final.choices[0].finish_reason == "stop" and "31" in final.choices[0].message.content, final

calls, finish = {}, None
for c in client.chat.completions.create(model=twin, messages=ask, tools=tools, stream=True):
    for d in (c.choices[0].delta.tool_calls or []) if c.choices else []:
        acc = calls.setdefault(d.index, {"id": None, "name": "", "arguments": ""})
        acc["id"] = d.id or acc["id"]
        acc["name"] += (d.function.name or "") if d.function else ""
        acc["arguments"] += (d.function.arguments or "") if d.function else ""
    if c.choices and c.choices[0].finish_reason:
        finish = c.choices[0].finish_reason
assert finish == "tool_calls" and len(calls) == 1, (finish, calls)
acc = calls[0]
assistant = {"role": "assistant", "content": None, "tool_calls": [
    {"id": acc["id"], "type": "function", "function": {"name": acc["name"], "arguments": acc["arguments"]}}]}
follow = finish_with_tool(assistant, acc["id"], acc["name"], acc["arguments"])
streamed = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
    model=twin, messages=follow, tools=tools, stream=True) if c.choices)
assert "31" in streamed, streamed

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
