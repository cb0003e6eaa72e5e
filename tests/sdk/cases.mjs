// The official OpenAI Node SDK against the gateway's /v1 surface, as a user
// would drive it: only the base URL changes.  Run by tests/sdk/run.py, one
// phase per gateway configuration:
//
//   node tests/sdk/cases.mjs open|nomock|token
//
// RF_BASE is the gateway's /v1 base URL, RF_MOCK the scriptable mock
// upstream (tests/mock_upstream.py), RF_TOKEN the API token of the "token"
// phase, RF_PATTERN keeps the cases whose name contains it.  Prints
// "ok sdk.<case>" or "FAIL sdk.<case>: <reason>"
// and a last line "RESULT <passed> <failed>".
import OpenAI, {
  AuthenticationError, InternalServerError, NotFoundError, RateLimitError,
  UnprocessableEntityError,
} from "openai";

const BASE = process.env.RF_BASE;
const MOCK = process.env.RF_MOCK;
const PATTERN = process.env.RF_PATTERN || "";
const GROQ_MODEL = "llama-3.1-8b-instant";


function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

// The client a user makes: any key (none is configured), default retries.
function client(opts = {}) {
  return new OpenAI({ baseURL: BASE, apiKey: "sk-anything", ...opts });
}

async function mock(path, body) {
  const res = await fetch(MOCK + path, body === undefined ? {} : {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return res.json();
}
const script = (name, behaviours) => mock(`/_script/${name}`, behaviours);
const calls = (name) => mock(`/_calls/${name}`);

const user = (text) => [{ role: "user", content: text }];

const WEATHER_TOOL = {
  type: "function",
  function: {
    name: "get_weather", description: "The weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } },
      required: ["city"] },
  },
};

// A full round trip: the model asks for the tool, the tool answers, the
// model answers in text.
async function toolRoundTrip(model, upstream, toolAnswer) {
  const c = client();
  await script(upstream, [toolAnswer, { kind: "ok", text: "It is sunny in Paris." }]);
  const first = await c.chat.completions.create({
    model, messages: user("Weather in Paris?"), tools: [WEATHER_TOOL],
  });
  const msg = first.choices[0].message;
  check(msg.tool_calls && msg.tool_calls.length === 1,
    `no tool call in the answer from ${upstream}: ${JSON.stringify(msg)}`);
  check(first.choices[0].finish_reason === "tool_calls", "finish_reason");
  const call = msg.tool_calls[0];
  check(call.type === "function" && call.function.name === "get_weather",
    `tool call ${JSON.stringify(call)}`);
  check(JSON.parse(call.function.arguments).city === "Paris", "arguments");
  const second = await c.chat.completions.create({
    model, tools: [WEATHER_TOOL], messages: [
      ...user("Weather in Paris?"), msg,
      { role: "tool", tool_call_id: call.id, content: "sunny, 21 C" }],
  });
  check(second.choices[0].message.content === "It is sunny in Paris.",
    `final answer ${JSON.stringify(second.choices[0])}`);
  const sent = (await calls(upstream))[1].body;
  const text = JSON.stringify(sent);
  check(text.includes("sunny, 21 C"), "the tool result did not reach the upstream");
}

const cases = {
  open: {
    async chat_completions_create() {
      await script("groq", [{ kind: "ok", text: "Hello from the SDK test", usage: [7, 5] }]);
      const r = await client().chat.completions.create({
        model: "auto", messages: user("Say hello"),
      });
      check(r.object === "chat.completion" && r.id.startsWith("chatcmpl-"), r.id);
      check(r.choices[0].message.content === "Hello from the SDK test",
        JSON.stringify(r.choices));
      check(r.choices[0].finish_reason === "stop", "finish_reason");
      check(r.model === GROQ_MODEL, `model ${r.model}`);
      check(r.usage.total_tokens === 12, JSON.stringify(r.usage));
      check(r.relayforge.finalProvider === "groq", "relayforge meta");
    },

    async chat_completions_stream_with_usage() {
      await script("groq", [{ kind: "ok", tokens: ["Hel", "lo", " from", " a", " stream"],
        usage: [6, 5], delay_ms: 20 }]);
      const stream = await client().chat.completions.create({
        model: "groq", messages: user("Stream please"), stream: true,
        stream_options: { include_usage: true },
      });
      let text = "", n = 0, usage = null, finish = null;
      for await (const chunk of stream) {
        n++;
        if (chunk.usage) usage = chunk.usage;
        const ch = chunk.choices[0];
        if (ch?.delta?.content) text += ch.delta.content;
        if (ch?.finish_reason) finish = ch.finish_reason;
      }
      check(text === "Hello from a stream", `text ${JSON.stringify(text)}`);
      check(n >= 7, `${n} chunks: not token by token`);
      check(finish === "stop", `finish ${finish}`);
      check(usage && usage.prompt_tokens === 6 && usage.total_tokens === 11,
        `usage ${JSON.stringify(usage)}`);
    },

    async stream_fallback_before_first_token_is_invisible() {
      await script("groq", [{ kind: "status", status: 503 }]);
      await script("gemini", [{ kind: "ok", tokens: ["From", " Gemini"] }]);
      const { data: stream, response } = await client().chat.completions.create({
        model: "auto", messages: user("Fall back"), stream: true,
      }).withResponse();
      let text = "";
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content || "";
      check(text === "From Gemini", `text ${JSON.stringify(text)}`);
      check(response.headers.get("x-relayforge-fallback") === "true", "fallback header");
      check(response.headers.get("x-relayforge-attempts")
        .startsWith("groq:provider_unavailable,"), "attempts header");
    },

    async models_list_and_retrieve() {
      const ids = [];
      for await (const m of client().models.list()) ids.push(m.id);
      for (const want of ["auto", "groq", `groq/${GROQ_MODEL}`, "gemini", "mock"])
        check(ids.includes(want), `${want} not in ${ids}`);
      // The SDK encodes the '/' of the id as %2F.
      const m = await client().models.retrieve(`groq/${GROQ_MODEL}`);
      check(m.id === `groq/${GROQ_MODEL}` && m.owned_by === "groq", JSON.stringify(m));
    },

    async response_format_json_schema() {
      const format = {
        type: "json_schema",
        json_schema: { name: "city", strict: true, schema: {
          type: "object", properties: { name: { type: "string" } },
          required: ["name"], additionalProperties: false } },
      };
      await script("groq", [{ kind: "ok", text: "{\"name\":\"Paris\"}" }]);
      const r = await client().chat.completions.create({
        model: "groq", messages: user("A city as JSON"), response_format: format,
      });
      check(JSON.parse(r.choices[0].message.content).name === "Paris", "answer");
      const sent = (await calls("groq"))[0].body;
      check(JSON.stringify(sent.response_format) === JSON.stringify(format),
        `response_format sent as ${JSON.stringify(sent.response_format)}`);
    },

    async not_found_error() {
      const c = client();
      let err = null;
      try {
        await c.chat.completions.create({ model: "gpt-4o", messages: user("hi") });
      } catch (e) { err = e; }
      check(err instanceof NotFoundError, `got ${err}`);
      check(err.status === 404 && err.code === "model_not_found" && err.param === "model",
        `${err.status} ${err.code} ${err.param}`);
      err = null;
      try { await c.models.retrieve("nope/model"); } catch (e) { err = e; }
      check(err instanceof NotFoundError, `retrieve: got ${err}`);
      check((await calls("groq")).length === 0, "an upstream was called");
    },

    async tool_call_round_trip_openai_wire() {
      await toolRoundTrip("groq", "groq", { kind: "tools", calls: [
        { id: "call_1", name: "get_weather", arguments: { city: "Paris" } }] });
    },

    async tool_call_round_trip_gemini() {
      await toolRoundTrip("gemini", "gemini", { kind: "tools", calls: [
        { name: "get_weather", arguments: { city: "Paris" } }] });
    },
  },

  // One provider, no mock: failures surface.  The SDK retries (2 by
  // default); the mock upstream counts that no 4xx was asked twice.
  nomock: {
    async content_filter_422_is_not_retried() {
      await script("groq", [{ kind: "safety" }, { kind: "safety" }, { kind: "safety" }]);
      let err = null;
      try {
        await client().chat.completions.create({ model: "auto", messages: user("hi") });
      } catch (e) { err = e; }
      check(err instanceof UnprocessableEntityError, `got ${err}`);
      check(err.code === "content_filtered", err.code);
      const n = (await calls("groq")).length;
      check(n === 1, `the upstream was called ${n} times`);
    },

    async upstream_400_is_not_retried() {
      await script("groq", [{ kind: "status", status: 400 }, { kind: "status", status: 400 },
        { kind: "status", status: 400 }]);
      let err = null;
      try {
        await client().chat.completions.create({ model: "auto", messages: user("hi") });
      } catch (e) { err = e; }
      check(err instanceof InternalServerError && err.status === 502, `got ${err}`);
      check(err.code === "provider_bad_request", err.code);
      const n = (await calls("groq")).length;
      check(n === 1, `the upstream was called ${n} times`);
    },

    async rate_limit_error() {
      // A 429 is worth retrying later (no x-should-retry), and the SDK
      // waits for Retry-After first: with 30 s a test would wait, so this
      // client does not retry; the second request shows that asking again
      // while the provider cools down calls no upstream.
      await script("groq", [{ kind: "status", status: 429, headers: { "Retry-After": "30" } }]);
      const c = client({ maxRetries: 0 });
      for (let i = 0; i < 2; i++) {
        let err = null, hdr = null;
        try {
          await c.chat.completions.create({ model: "auto", messages: user("hi") });
        } catch (e) { err = e; hdr = e.headers; }
        check(err instanceof RateLimitError, `got ${err}`);
        check(err.code === "provider_rate_limited" && err.type === "rate_limit_error",
          `${err.code} ${err.type}`);
        const ra = Number(hdr.get("retry-after"));
        check(Number.isInteger(ra) && ra >= 1 && ra <= 30, `Retry-After ${ra}`);
        check(hdr.get("x-should-retry") === null, "x-should-retry on a 429");
      }
      const n = (await calls("groq")).length;
      check(n === 1, `the upstream was called ${n} times`);
    },
  },

  token: {
    async authentication_error() {
      let err = null;
      try {
        await client().chat.completions.create({ model: "auto", messages: user("hi") });
      } catch (e) { err = e; }
      check(err instanceof AuthenticationError, `got ${err}`);
      check(err.status === 401 && err.type === "authentication_error", `${err.status}`);
      check((await calls("groq")).length === 0, "an upstream was called");
      const r = await client({ apiKey: process.env.RF_TOKEN }).chat.completions.create({
        model: "auto", messages: user("hi"),
      });
      check(r.choices[0].message.content, "no answer with the right token");
    },
  },
};

async function main() {
  const phase = process.argv[2];
  let passed = 0, failed = 0;
  for (const [name, fn] of Object.entries(cases[phase] || {})) {
    if (PATTERN && !`sdk.${name}`.includes(PATTERN)) continue;
    await mock("/_reset", {});
    try {
      await fn();
      console.log(`ok sdk.${name}`);
      passed++;
    } catch (e) {
      console.log(`FAIL sdk.${name}: ${String(e && e.message || e).split("\n")[0]}`);
      failed++;
    }
  }
  console.log(`RESULT ${passed} ${failed}`);
  process.exitCode = failed ? 1 : 0;
}

await main();
