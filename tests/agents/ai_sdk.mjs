// Drives the Vercel AI SDK (`ai` + `@ai-sdk/openai`) against Responsa, unchanged
// but for `baseURL`, and prints one JSON object per scenario on stdout.
//
// Usage: node ai_sdk.mjs NODE_MODULES_DIR BASE_URL
// The packages live in a cache directory (installed by tests/agents/ai_sdk.py),
// not next to this script, so they are resolved from NODE_MODULES_DIR.
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [nodeModules, baseURL] = process.argv.slice(2);
const resolve = createRequire(join(nodeModules, "resolver.js")).resolve;
const load = (name) => import(pathToFileURL(resolve(name)).href);
const { generateText, streamText, tool, stepCountIs, Output } = await load("ai");
const { createOpenAI } = await load("@ai-sdk/openai");
const { z } = await load("zod");

const openai = createOpenAI({ baseURL, apiKey: "sk-responsa-test" });
const results = {};

async function scenario(name, run) {
  try {
    results[name] = { ok: true, ...(await run()) };
  } catch (error) {
    results[name] = { ok: false, error: String(error?.stack ?? error), data: error?.responseBody ?? null };
  }
}

await scenario("generate", async () => {
  const r = await generateText({ model: openai.responses("test/echo"), prompt: "Hello from the AI SDK" });
  return { text: r.text, finishReason: r.finishReason, responseId: r.response.id, model: r.response.modelId,
           usage: r.usage };
});

await scenario("stream", async () => {
  const r = streamText({ model: openai.responses("test/echo"), prompt: "Streaming through Responsa works" });
  const chunks = [];
  for await (const chunk of r.textStream) chunks.push(chunk);
  const parts = [];
  for await (const part of r.fullStream) parts.push(part.type);
  return { chunks, text: await r.text, finishReason: await r.finishReason, parts,
           usage: await r.usage };
});

await scenario("tools", async () => {
  const calls = [];
  const r = await generateText({
    model: openai.responses("test/echo"),
    prompt: '[[call:weather {"city": "Paris"}]] What is the weather in Paris?',
    tools: {
      weather: tool({
        description: "The weather in a city",
        inputSchema: z.object({ city: z.string() }),
        execute: async ({ city }) => {
          calls.push(city);
          return { city, forecast: "sunny, 21C" };
        },
      }),
    },
    stopWhen: stepCountIs(3),
  });
  return { calls, text: r.text, finishReason: r.finishReason, steps: r.steps.length,
           toolResults: r.steps.flatMap((s) => s.toolResults.map((t) => t.output)) };
});

const weather = (calls) => tool({
  description: "The weather in a city",
  inputSchema: z.object({ city: z.string() }),
  execute: async ({ city }) => {
    calls.push(city);
    return { city, forecast: "sunny, 21C" };
  },
});

await scenario("streamTools", async () => {
  const calls = [];
  const r = streamText({
    model: openai.responses("test/echo"),
    prompt: '[[call:weather {"city": "Oslo"}]] And in Oslo?',
    tools: { weather: weather(calls) },
    stopWhen: stepCountIs(3),
  });
  const parts = [];
  for await (const part of r.fullStream) {
    if (part.type === "error") throw part.error;
    parts.push(part.type);
  }
  return { calls, parts, text: await r.text, finishReason: await r.finishReason, steps: (await r.steps).length };
});

// The SDK replays an earlier assistant turn of a stored response as an
// `item_reference` to its item id: Responsa must resolve it.
await scenario("multiTurn", async () => {
  const first = await generateText({ model: openai.responses("test/echo"), prompt: "The first turn" });
  const messages = [{ role: "user", content: "The first turn" }, ...first.response.messages,
                    { role: "user", content: "[[history]] the second turn" }];
  const r = await generateText({ model: openai.responses("test/echo"), messages });
  return { text: r.text };
});

await scenario("previousResponse", async () => {
  const first = await generateText({ model: openai.responses("test/echo"), prompt: "Remember the word kiwi" });
  const r = await generateText({
    model: openai.responses("test/echo"),
    prompt: "[[history]] what was the word?",
    providerOptions: { openai: { previousResponseId: first.providerMetadata.openai.responseId } },
  });
  return { text: r.text };
});

await scenario("structured", async () => {
  const r = await generateText({
    model: openai.responses("test/echo"),
    prompt: "A city, please",
    output: Output.object({ schema: z.object({ city: z.string(), population: z.number() }) }),
  });
  return { output: r.output };
});

// Without stored responses the SDK sends the whole history every step.
await scenario("toolsStoreFalse", async () => {
  const calls = [];
  const r = await generateText({
    model: openai.responses("test/echo"),
    prompt: '[[call:weather {"city": "Rome"}]] And in Rome?',
    tools: { weather: weather(calls) },
    stopWhen: stepCountIs(3),
    providerOptions: { openai: { store: false } },
  });
  return { calls, text: r.text, finishReason: r.finishReason, steps: r.steps.length };
});

await scenario("reasoning", async () => {
  const r = streamText({ model: openai.responses("test/echo"), prompt: "[[summary:think it through]] the answer" });
  return { text: await r.text, reasoning: await r.reasoningText };
});

// An OpenAI-shaped error becomes the SDK's APICallError with its status.
await scenario("error", async () => {
  try {
    await generateText({ model: openai.responses("test/echo"), prompt: "[[error:429]] no", maxRetries: 0 });
  } catch (error) {
    return { name: error.name, status: error.statusCode, message: error.message, retryable: error.isRetryable };
  }
  throw new Error("no error was raised");
});

// A failure after the first bytes arrives as the stream's error part.
await scenario("streamError", async () => {
  const r = streamText({ model: openai.responses("test/echo"), prompt: "[[fail-after:2]] one two three four",
                         maxRetries: 0, onError: () => {} });
  const parts = [];
  for await (const part of r.fullStream) parts.push(part.type === "error" ? `error: ${part.error.message}` : part.type);
  return { parts };
});

await scenario("chatStreamTools", async () => {
  const calls = [];
  const r = streamText({
    model: openai.chat("test/echo"),
    prompt: '[[call:weather {"city": "Lima"}]] And in Lima?',
    tools: { weather: weather(calls) },
    stopWhen: stepCountIs(3),
  });
  return { calls, text: await r.text, finishReason: await r.finishReason, steps: (await r.steps).length };
});

await scenario("chat", async () => {
  const r = await generateText({ model: openai.chat("test/echo"), prompt: "Hello through Chat Completions" });
  return { text: r.text, finishReason: r.finishReason, model: r.response.modelId, usage: r.usage };
});

process.stdout.write(JSON.stringify(results) + "\n");
