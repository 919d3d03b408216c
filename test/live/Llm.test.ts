import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import type * as Http from "node:http"
import * as Gateway from "../../src/Gateway.js"
import * as Live from "../../src/Live.js"
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
  it.scopedLive("request shape and auth header; the reply text; gen_ai attributes on the span; the key nowhere", () =>
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
        expect(spans[0].attributes).toMatchObject({
          "cap.name": "llm.call",
          "gen_ai.operation.name": "chat",
          "gen_ai.request.model": "small-model",
          "gen_ai.request.max_tokens": 64,
          "gen_ai.response.model": "small-model-2024",
          "gen_ai.usage.input_tokens": 11,
          "gen_ai.usage.output_tokens": 7
        })
        expect(spans[1].attributes["gen_ai.request.model"]).toBe("gpt-4o")
        // only the capability spans: the HTTP client records nothing (it would record headers)
        expect((yield* allSpans).map((s) => s.name)).toEqual(["boruna.cap", "boruna.cap"])
        expect(dump(yield* allSpans)).not.toContain("SECRET")
        expect(dump(yield* events)).not.toContain("SECRET")
      }).pipe(Effect.provide(setupWithEnv(llmPolicy({ model: "small-model", max_tokens: 64 }), envFor(o.origin))))
    }))

  it.scopedLive("errors never carry the key: wrong key (401), server error with the key in its body, bad JSON, timeout", () =>
    Effect.gen(function*() {
      const o = yield* fakeModel
      const check = (env: Record<string, string>, prompt: string, expected: string, options: Live.LiveOptions = {}) =>
        Effect.gen(function*() {
          const e = yield* Effect.flip(Gateway.call("llm.call", [prompt]))
          expect(e._tag).toBe("RuntimeError")
          expect(e.message).toBe(expected)
          const [span] = yield* capSpans
          expect(span.attributes["error.kind"]).toBe("runtime_error")
          expect(span.attributes["gen_ai.usage.input_tokens"]).toBeUndefined()
          const everything = dump([e, String(e), e.message, yield* allSpans, yield* events])
          for (const fragment of ["SECRET", "sk-test", "wrong-key", "sk-wron"]) expect(everything).not.toContain(fragment)
        }).pipe(Effect.provide(setupWithEnv(llmPolicy(), env, options)))

      yield* check(envFor(o.origin, "sk-wrong-key-SECRET"), "hello", "llm.call failed: HTTP 401 from the model endpoint (invalid_request_error, invalid_api_key)")
      yield* check(envFor(o.origin, null), "hello", "llm.call failed: HTTP 401 from the model endpoint (invalid_request_error, invalid_api_key) — OPENAI_API_KEY is not set")
      yield* check(envFor(o.origin), "fail", "llm.call failed: HTTP 500 from the model endpoint (server_error)")
      yield* check(envFor(o.origin), "garbage", "llm.call failed: the model endpoint returned an unexpected response (not a chat completion)")
      yield* check(envFor(o.origin), "slow", "llm.call failed: the model endpoint did not answer within 200 ms", { llmTimeoutMs: 200 })
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

  it.effect("no OPENAI_API_KEY with the default OpenAI endpoint: a clear runtime_error before any request", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(Gateway.call("llm.call", ["hello"]))
      expect(e._tag).toBe("RuntimeError")
      expect(e.message).toContain("OPENAI_API_KEY is not set")
      const [span] = yield* capSpans
      expect(span.attributes["error.kind"]).toBe("runtime_error")
    }).pipe(Effect.provide(setupWithEnv(llmPolicy(), {}))))
})
