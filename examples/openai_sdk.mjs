// Talk to a twin with the official openai Node SDK: only the base URL and key change.
// npm install openai; TWINEXPERT_API_URL, TWINEXPERT_API_KEY and TWINEXPERT_TWIN_ID as in README.md.
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.TWINEXPERT_API_URL, apiKey: process.env.TWINEXPERT_API_KEY });
const twin = process.env.TWINEXPERT_TWIN_ID; // a twin is a model

const reply = await client.chat.completions.create({
  model: twin,
  messages: [{ role: "user", content: "Xin chào! Hãy giới thiệu về bạn." }],
});
console.log(reply.choices[0].message.content);

const stream = await client.chat.completions.create({
  model: twin,
  messages: [{ role: "user", content: "Tôi nên ăn gì buổi sáng?" }],
  stream: true,
  stream_options: { include_usage: true },
  user: "your-end-user-42",
});
for await (const chunk of stream) {
  if (chunk.choices[0]?.delta?.content) process.stdout.write(chunk.choices[0].delta.content);
  if (chunk.usage) console.log(`\n[${chunk.usage.total_tokens} tokens]`);
}
