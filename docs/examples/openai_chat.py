# herd serve with the official OpenAI Python SDK (pip install openai).
# HERD_URL=http://127.0.0.1:8000 HERD_MODEL=tiny python3 docs/examples/openai_chat.py
import os

from openai import OpenAI

client = OpenAI(
    base_url=os.environ.get("HERD_URL", "http://127.0.0.1:8000") + "/v1",
    api_key=os.environ.get("HERD_API_KEY", "none"),  # checked only with --api-key
)
model = os.environ.get("HERD_MODEL", "tiny")

reply = client.chat.completions.create(
    model=model,
    messages=[
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Write a haiku about herds."},
    ],
    max_tokens=32,
)
print(reply.choices[0].message.content)
print(reply.usage)

stream = client.chat.completions.create(
    model=model,
    messages=[{"role": "user", "content": "Count to five."}],
    max_tokens=16,
    stream=True,
    stream_options={"include_usage": True},
)
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        print(chunk.choices[0].delta.content, end="", flush=True)
    if chunk.usage:
        print("\n", chunk.usage)
