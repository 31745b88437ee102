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

// A tool-calling round trip: tools → tool_calls → the tool's result → the final answer.
const tools = [{ type: "function", function: {
  name: "get_weather", description: "The weather now in a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } }];
const ask = [{ role: "user", content: "What is the weather in Hanoi?" }];
const withResult = (assistant, call) => {
  assert.equal(call.function.name, "get_weather");
  assert.deepEqual(JSON.parse(call.function.arguments), { city: "Hanoi" });
  return [...ask, assistant, { role: "tool", tool_call_id: call.id, content: JSON.stringify({ temperature_c: 31 }) }];
};
const first = await client.chat.completions.create({ model: twin, messages: ask, tools, tool_choice: "auto" });
assert.equal(first.choices[0].finish_reason, "tool_calls");
const asked = first.choices[0].message;
const final = await client.chat.completions.create({ model: twin, messages: withResult(asked, asked.tool_calls[0]), tools });
assert.equal(final.choices[0].finish_reason, "stop");
assert.ok(final.choices[0].message.content.includes("31"), final.choices[0].message.content);

const calls = [];
let finish;
for await (const c of await client.chat.completions.create({ model: twin, messages: ask, tools, stream: true })) {
  for (const d of c.choices[0]?.delta?.tool_calls ?? []) {
    const acc = (calls[d.index] ??= { id: "", type: "function", function: { name: "", arguments: "" } });
    acc.id = d.id ?? acc.id;
    acc.function.name += d.function?.name ?? "";
    acc.function.arguments += d.function?.arguments ?? "";
  }
  finish = c.choices[0]?.finish_reason ?? finish;
}
assert.equal(finish, "tool_calls");
assert.equal(calls.length, 1);
let answer = "";
const assistant = { role: "assistant", content: null, tool_calls: calls };
for await (const c of await client.chat.completions.create({ model: twin, messages: withResult(assistant, calls[0]), tools, stream: true })) {
  answer += c.choices[0]?.delta?.content ?? "";
}
assert.ok(answer.includes("31"), answer);

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
