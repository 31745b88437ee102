"""Talk to a twin with the official openai Python SDK: only the base URL and key change.
pip install openai; TWINEXPERT_API_URL, TWINEXPERT_API_KEY and TWINEXPERT_TWIN_ID as in README.md."""
import os

from openai import OpenAI

client = OpenAI(base_url=os.environ["TWINEXPERT_API_URL"], api_key=os.environ["TWINEXPERT_API_KEY"])
twin = os.environ["TWINEXPERT_TWIN_ID"]  # a twin is a model

reply = client.chat.completions.create(
    model=twin, messages=[{"role": "user", "content": "Xin chào! Hãy giới thiệu về bạn."}])
print(reply.choices[0].message.content)

stream = client.chat.completions.create(
    model=twin, messages=[{"role": "user", "content": "Tôi nên ăn gì buổi sáng?"}],
    stream=True, stream_options={"include_usage": True}, user="your-end-user-42")
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        print(chunk.choices[0].delta.content, end="", flush=True)
    if chunk.usage:
        print(f"\n[{chunk.usage.total_tokens} tokens]")
