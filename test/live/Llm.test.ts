import { describe, expect, it } from "@effect/vitest"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Http from "node:http"
import * as Gateway from "../../src/Gateway.js"
import * as Live from "../../src/Live.js"
import * as Llm from "../../src/live/Llm.js"
import { DEFAULT_MODEL } from "../../src/live/Llm.js"
import type { LlmPolicy, Policy } from "../../src/Policy.js"
import { allSpans, capSpans, dump, events, server, setupWithEnv } from "./support.js"

const KEY = "sk-test-SECRET-0123456789abcdef"

const llmPolicy = (llm?: Partial<LlmPolicy>): Policy => ({
  schema_version: 1,
  default_allow: false,
  rules: { "llm.call": { allow: true, budget: 0 } },
  ...(llm === undefined ? {} : { llm_policy: { allowed_models: [], ...llm } })
})

/** A fake OpenAI-compatible endpoint; behaviour by the prompt text. */
const fakeModel = server((req: Http.IncomingMessage, body: string, res: Http.ServerResponse) => {
  if (req.url !== "/v1/chat/completions" || req.method !== "POST") {
    res.writeHead(404).end()
    return
  }
  const parsed = JSON.parse(body) as { model: string; messages: Array<{ role: string; content: string }> }
  const prompt = parsed.messages[0]?.content ?? ""
  if (req.headers.authorization !== `Bearer ${KEY}`) {
    // like the real API: the error text echoes a fragment of the key
    res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({
      error: { message: `Incorrect API key provided: ${String(req.headers.authorization).slice(7, 14)}***`, type: "invalid_request_error", code: "invalid_api_key" }
    }))
    return
  }
  if (prompt === "garbage") {
    res.writeHead(200, { "content-type": "application/json" }).end(`{"nope": true}`)
    return
  }
  if (prompt === "fail") {
    res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: `internal ${KEY}`, type: "server_error" } }))
    return
  }
  if (prompt === "echo-key") {
    // a hostile endpoint: the key in the error's type and code, and in a completion
    res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: { type: KEY, code: KEY } }))
    return
  }
  if (prompt === "echo-key-ok") {
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({
      id: `id-${KEY}`,
      model: KEY,
      choices: [{ message: { content: `your key is ${req.headers.authorization}` }, finish_reason: KEY }]
    }))
    return
  }
  if (prompt === "slow") {
    setTimeout(() => res.writeHead(200).end("{}"), 3_000).unref()
    return
  }
  res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({
    id: "chatcmpl-1",
    object: "chat.completion",
    model: `${parsed.model}-2024`,
    choices: [{ index: 0, message: { role: "assistant", content: `pong: ${prompt}` }, finish_reason: "stop" }],
    usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 }
  }))
})

/** `key: null` ⇒ OPENAI_API_KEY unset */
const envFor = (origin: string, key: string | null = KEY): Record<string, string> => ({
  OPENAI_BASE_URL: `${origin}/v1`,
  ...(key === null ? {} : { OPENAI_API_KEY: key })
})

describe("live llm.call", () => {
  it.scopedLive("request shape and auth header; the reply text; a GenAI client span under the cap span; the key nowhere", () =>
    Effect.gen(function*() {
      const o = yield* fakeModel
      yield* Effect.gen(function*() {
        const out = yield* Gateway.call("llm.call", ["ping"])
        expect(out).toBe("pong: ping")
        const out2 = yield* Gateway.call("llm.call", ["gpt-4o", "again"])
        expect(out2).toBe("pong: again")

        expect(o.requests).toHaveLength(2)
        const [r1, r2] = o.requests
        expect(r1.method).toBe("POST")
        expect(r1.url).toBe("/v1/chat/completions")
        expect(r1.headers.authorization).toBe(`Bearer ${KEY}`)
        expect(r1.headers["content-type"]).toBe("application/json")
        expect(r1.headers["traceparent"]).toBeUndefined()
        expect(JSON.parse(r1.body)).toEqual({ model: "small-model", messages: [{ role: "user", content: "ping" }], max_tokens: 64 })
        expect(JSON.parse(r2.body).model).toBe("gpt-4o")

        const spans = yield* capSpans
        expect(spans).toHaveLength(2)
        expect(spans[0].status).toBe("ok")
        expect(spans[0].attributes["cap.name"]).toBe("llm.call")
        // the GenAI attributes are on the client span, not on the internal cap span
        expect(Object.keys(spans[0].attributes).filter((k) => k.startsWith("gen_ai."))).toEqual([])
        const all = yield* allSpans
        // the HTTP client records nothing (it would record headers): one chat span per cap span
        expect(all.map((s) => s.name)).toEqual(["chat small-model", "boruna.cap", "chat gpt-4o", "boruna.cap"])
        const chat = all[0]
        expect(chat.parentSpanId).toBe(spans[0].spanId)
        expect(chat.traceId).toBe(spans[0].traceId)
        expect(chat.status).toBe("ok")
        expect(chat.attributes).toEqual({
          "gen_ai.operation.name": "chat",
          "gen_ai.provider.name": "openai",
          "gen_ai.request.model": "small-model",
          "gen_ai.request.max_tokens": 64,
          "gen_ai.response.model": "small-model-2024",
          "gen_ai.response.id": "chatcmpl-1",
          "gen_ai.response.finish_reasons": ["stop"],
          "gen_ai.usage.input_tokens": 11,
          "gen_ai.usage.output_tokens": 7,
          "server.address": "127.0.0.1",
          "server.port": o.port
        })
        expect(all[2].attributes["gen_ai.request.model"]).toBe("gpt-4o")
        expect(all[2].parentSpanId).toBe(spans[1].spanId)
        // no content unless opted in
        expect(dump(all)).not.toContain("ping")
        expect(dump(yield* allSpans)).not.toContain("SECRET")
        expect(dump(yield* events)).not.toContain("SECRET")
      }).pipe(Effect.provide(setupWithEnv(llmPolicy({ model: "small-model", max_tokens: 64 }), envFor(o.origin))))
    }))

  it.scopedLive("errors never carry the key: wrong key (401), server error with the key in its body, bad JSON, timeout", () =>
    Effect.gen(function*() {
      const o = yield* fakeModel
      const check = (env: Record<string, string>, prompt: string, expected: string, errorType: string, options: Live.LiveOptions = {}) =>
        Effect.gen(function*() {
          const e = yield* Effect.flip(Gateway.call("llm.call", [prompt]))
          expect(e._tag).toBe("RuntimeError")
          expect(e.message).toBe(expected)
          const [span] = yield* capSpans
          expect(span.attributes["error.kind"]).toBe("runtime_error")
          expect(span.attributes["error.type"]).toBe("runtime_error")
          const chat = (yield* allSpans).find((s) => s.name.startsWith("chat "))
          expect(chat?.status).toBe("error")
          expect(chat?.attributes["error.type"]).toBe(errorType)
          expect(chat?.attributes["gen_ai.usage.input_tokens"]).toBeUndefined()
          const everything = dump([e, String(e), e.message, yield* allSpans, yield* events])
          for (const fragment of ["SECRET", "sk-test", "wrong-key", "sk-wron"]) expect(everything).not.toContain(fragment)
        }).pipe(Effect.provide(setupWithEnv(llmPolicy(), env, options)))

      yield* check(envFor(o.origin, "sk-wrong-key-SECRET"), "hello", "llm.call failed: HTTP 401 from the model endpoint (invalid_request_error, invalid_api_key)", "401")
      yield* check(envFor(o.origin, null), "hello", "llm.call failed: HTTP 401 from the model endpoint (invalid_request_error, invalid_api_key) — OPENAI_API_KEY is not set", "401")
      yield* check(envFor(o.origin), "fail", "llm.call failed: HTTP 500 from the model endpoint (server_error)", "500")
      yield* check(envFor(o.origin), "garbage", "llm.call failed: the model endpoint returned an unexpected response (not a chat completion)", "_OTHER")
      yield* check(envFor(o.origin), "slow", "llm.call failed: the model endpoint did not answer within 200 ms", "timeout", { llmTimeoutMs: 200 })
      // the key in the error body's type and code (both pass the short-code filter): scrubbed
      yield* check(envFor(o.origin), "echo-key", "llm.call failed: HTTP 400 from the model endpoint ([REDACTED])", "400")
      expect(o.requests.filter((r) => r.headers.authorization === undefined)).toHaveLength(1)
    }))

  it.scopedLive("allowed_models is enforced (denied, no request); the default model applies without a policy", () =>
    Effect.gen(function*() {
      const o = yield* fakeModel
      yield* Effect.gen(function*() {
        const e = yield* Effect.flip(Gateway.call("llm.call", ["gpt-5-huge", "hi"]))
        expect(e._tag).toBe("Denied")
        expect(e.message).toBe("capability denied: llm.call: model 'gpt-5-huge' is not in llm_policy.allowed_models [cheap-model]")
        expect(yield* Gateway.call("llm.call", ["cheap-model", "hi"])).toBe("pong: hi")
        expect((yield* capSpans).map((s) => s.attributes["error.kind"])).toEqual(["denied", undefined])
      }).pipe(Effect.provide(setupWithEnv(llmPolicy({ allowed_models: ["cheap-model"] }), envFor(o.origin))))
      expect(o.requests.map((r) => JSON.parse(r.body).model)).toEqual(["cheap-model"])

      yield* Gateway.call("llm.call", ["hi"]).pipe(Effect.provide(setupWithEnv(llmPolicy(), envFor(o.origin))))
      const last = JSON.parse(o.requests[o.requests.length - 1].body)
      expect(last.model).toBe(DEFAULT_MODEL)
      expect(last.max_tokens).toBeUndefined()
    }))

  it.effect("an invalid OPENAI_BASE_URL fails the live layer when llm.call is granted", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Effect.scoped(Layer.build(setupWithEnv(llmPolicy(), { OPENAI_BASE_URL: "ftp://x", OPENAI_API_KEY: KEY }))))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        expect(String(exit.cause)).toContain("OPENAI_BASE_URL is not an http(s) URL")
        expect(String(exit.cause)).not.toContain("SECRET")
      }
    }))

  it.scopedLive("a completion that echoes the key: the returned text and every span attribute are scrubbed", () =>
    Effect.gen(function*() {
      const o = yield* fakeModel
      yield* Effect.gen(function*() {
        const out = yield* Gateway.call("llm.call", ["echo-key-ok"])
        expect(out).toBe("your key is Bearer [REDACTED]")
        const chat = (yield* allSpans).find((s) => s.name.startsWith("chat "))
        expect(chat?.attributes["gen_ai.response.id"]).toBe("id-[REDACTED]")
        expect(chat?.attributes["gen_ai.response.model"]).toBe("[REDACTED]")
        expect(chat?.attributes["gen_ai.response.finish_reasons"]).toEqual(["[REDACTED]"])
        const everything = dump([out, yield* allSpans, yield* events])
        expect(everything).not.toContain("SECRET")
      }).pipe(Effect.provide(setupWithEnv(llmPolicy(), envFor(o.origin))))
    }))

  it.scopedLive("no OPENAI_API_KEY with the default OpenAI endpoint: a clear runtime_error before any request", () =>
    Effect.gen(function*() {
      const o = yield* fakeModel
      // the handler believes it talks to api.openai.com; every request really goes to the loopback server
      const client = (yield* HttpClient.HttpClient).pipe(
        HttpClient.mapRequest((r) => HttpClientRequest.setUrl(r, `${o.origin}/v1/chat/completions`))
      )
      const call = (apiKey: Option.Option<Redacted.Redacted<string>>) =>
        Llm.make({ client, baseUrl: Live.DEFAULT_OPENAI_BASE_URL, apiKey, policy: undefined })(["hello"], {
          capability: "llm.call",
          policy: llmPolicy(),
          annotate: () => {},
          event: () => {}
        })
      const e = yield* Effect.flip(call(Option.none()))
      expect(e.message).toContain("OPENAI_API_KEY is not set")
      expect(o.requests).toHaveLength(0)
      // the control: with a key the very same handler does send the request
      expect(yield* call(Option.some(Redacted.make(KEY)))).toBe("pong: hello")
      expect(o.requests).toHaveLength(1)
    }).pipe(Effect.provide(NodeHttpClient.layer)))

  it.effect("no OPENAI_API_KEY with the default OpenAI endpoint: the gateway reports a runtime_error", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(Gateway.call("llm.call", ["hello"]))
      expect(e._tag).toBe("RuntimeError")
      expect(e.message).toContain("OPENAI_API_KEY is not set")
      const [span] = yield* capSpans
      expect(span.attributes["error.kind"]).toBe("runtime_error")
    }).pipe(Effect.provide(setupWithEnv(llmPolicy(), {}))))
})
