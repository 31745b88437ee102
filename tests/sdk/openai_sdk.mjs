// The official openai Node SDK against TwinExpert's OpenAI-compatible endpoint.
// Env: BASE (…/api/v1), KEY (full_access), READ_ONLY_KEY, LIMITED_KEY, TWIN.
import OpenAI from "openai";
import assert from "node:assert/strict";

const { BASE: baseURL, KEY: apiKey, TWIN: twin } = process.env;
const client = new OpenAI({ baseURL, apiKey });

const ids = [];
for await (const m of client.models.list()) ids.push(m.id);
assert.ok(ids.includes(twin), String(ids));
assert.equal((await client.models.retrieve(twin)).id, twin);

const messages = [{ role: "user", content: "Hello, who are you? [[words:12]]" }];
const plain = await client.chat.completions.create({ model: twin, messages });
const text = plain.choices[0].message.content;
assert.ok(text);
assert.equal(plain.choices[0].finish_reason, "stop");
assert.equal(plain.usage.total_tokens, plain.usage.prompt_tokens + plain.usage.completion_tokens);

const stream = await client.chat.completions.create({
  model: twin, messages, stream: true, stream_options: { include_usage: true },
});
const chunks = [];
for await (const c of stream) chunks.push(c);
const streamed = chunks.filter((c) => c.choices.length).map((c) => c.choices[0].delta.content ?? "").join("");
assert.equal(streamed, text);
assert.equal(chunks[0].choices[0].delta.role, "assistant");
assert.deepEqual(chunks.at(-1).choices, []);
assert.equal(chunks.at(-1).usage.total_tokens, plain.usage.total_tokens);

const rejects = async (kind, call) => {
  await assert.rejects(call, (e) => e instanceof kind, `expected ${kind.name}`);
};
await rejects(OpenAI.AuthenticationError, () => new OpenAI({ baseURL, apiKey: "te_" + "0".repeat(36) }).models.list());
await rejects(OpenAI.PermissionDeniedError, () =>
  new OpenAI({ baseURL, apiKey: process.env.READ_ONLY_KEY }).chat.completions.create({ model: twin, messages }));
await rejects(OpenAI.NotFoundError, () => client.chat.completions.create({ model: "twn_nope", messages }));
const limited = new OpenAI({ baseURL, apiKey: process.env.LIMITED_KEY });
await rejects(OpenAI.RateLimitError, async () => {
  for (let i = 0; i < 100; i++) await limited.models.list();
});
console.log("node sdk ok");
