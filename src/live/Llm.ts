/**
 * Live `llm.call(prompt)` / `llm.call(model, prompt)` → String on an OpenAI-compatible Chat
 * Completions endpoint: `POST {OPENAI_BASE_URL}/chat/completions` with `Authorization: Bearer
 * {OPENAI_API_KEY}`, one user message, and `max_tokens` from `llm_policy.max_tokens`.
 *
 * Built on the platform `HttpClient` and an `effect/Schema` decode of the response rather than
 * `@effect/ai-openai`: that package's language model speaks OpenAI's Responses API (`/responses`),
 * which most OpenAI-compatible servers (vLLM, Ollama, llama.cpp, LiteLLM, …) do not serve, while
 * `/chat/completions` is what they share.
 *
 * The key is held as `Redacted` and only ever written into the request's Authorization header: the
 * HTTP client's own tracing is off (it would record headers), and every error message is composed
 * here from the status and short error codes, never from a response body (providers echo parts of a
 * bad key in theirs). On top of that, every string the handler returns or fails with, and every
 * span attribute it sets, has the exact key (and so any `Authorization: Bearer <key>` value)
 * replaced by `[REDACTED]`: an endpoint that echoes the key in an error code or a completion cannot
 * make it reach stderr, the event log, a record file or a span.
 *
 * With telemetry on, the request is a GenAI client span `chat {model}` (kind CLIENT), the child of
 * the call's `boruna.cap` span, with the GenAI semantic-convention attributes (`gen_ai.operation.name`,
 * `gen_ai.provider.name`, `gen_ai.request.model`, `gen_ai.request.max_tokens`, `gen_ai.response.*`,
 * `gen_ai.usage.*`, `server.address`, `server.port`, and `error.type` on failure). No prompt or
 * completion content is recorded unless `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Tracer from "effect/Tracer"
import { HandlerFailure } from "../Errors.js"
import type { Handler } from "../Handlers.js"
import type { LlmPolicy } from "../Policy.js"
import { sameFailure, TelemetryEnabled } from "../TelemetryFlag.js"
import { typeName } from "../Value.js"
import { readCapped } from "./Body.js"
import { errorCode } from "./Egress.js"

export const DEFAULT_BASE_URL = "https://api.openai.com/v1"
export const DEFAULT_MODEL = "gpt-4o-mini"
export const DEFAULT_TIMEOUT_MS = 120_000
/** cap on a model response body */
export const MAX_RESPONSE_BYTES = 16 * 1024 * 1024

const fail = (message: string) => Effect.fail(new HandlerFailure({ message }))
const deny = (message: string) => Effect.fail(new HandlerFailure({ message, denied: true }))

const Usage = Schema.Struct({
  prompt_tokens: Schema.optional(Schema.Number),
  completion_tokens: Schema.optional(Schema.Number)
})

export const ChatCompletion = Schema.Struct({
  id: Schema.optional(Schema.String),
  model: Schema.optional(Schema.String),
  choices: Schema.NonEmptyArray(
    Schema.Struct({
      message: Schema.Struct({ content: Schema.optional(Schema.NullOr(Schema.String)) }),
      finish_reason: Schema.optional(Schema.NullOr(Schema.String))
    })
  ),
  usage: Schema.optional(Schema.NullOr(Usage))
})

const ErrorBody = Schema.Struct({
  error: Schema.Struct({
    type: Schema.optional(Schema.NullOr(Schema.String)),
    code: Schema.optional(Schema.NullOr(Schema.Union(Schema.String, Schema.Number)))
  })
})

const decodeCompletion = Schema.decodeUnknownEither(Schema.parseJson(ChatCompletion))
const decodeError = Schema.decodeUnknownEither(Schema.parseJson(ErrorBody))

/** Short identifier-like codes from an error body (`invalid_api_key`), never free text. */
const errorCodes = (body: string): string => {
  const r = decodeError(body)
  if (Either.isLeft(r)) return ""
  const codes = [r.right.error.type, r.right.error.code]
    .filter((c): c is string | number => c !== undefined && c !== null)
    .map(String)
    .filter((c) => /^[A-Za-z0-9_.-]{1,64}$/.test(c))
  return codes.length > 0 ? ` (${[...new Set(codes)].join(", ")})` : ""
}

/** Replace every occurrence of `secret` in `s` (no-op for an empty secret). */
export const scrub = (s: string, secret: string | undefined): string =>
  secret === undefined || secret === "" || !s.includes(secret) ? s : s.split(secret).join("[REDACTED]")

/** GenAI `error.type` of a failed request: the HTTP status, `timeout`, or `_OTHER`. */
class ChatFailure {
  constructor(readonly errorType: string) {}
}

export interface LlmOptions {
  readonly client: HttpClient.HttpClient
  /** base URL of the API, e.g. `https://api.openai.com/v1` */
  readonly baseUrl: string
  readonly apiKey: Option.Option<Redacted.Redacted<string>>
  readonly policy: LlmPolicy | undefined
  readonly timeoutMs?: number
  /** record prompt and completion on the GenAI span (`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`) */
  readonly captureContent?: boolean
}

export const make = (options: LlmOptions): Handler => {
  const { baseUrl, apiKey, policy } = options
  const client = options.client.pipe(HttpClient.withTracerDisabledWhen(() => true), HttpClient.withTracerPropagation(false))
  const endpoint = baseUrl.replace(/\/+$/, "") + "/chat/completions"
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const allowed = new Set(policy?.allowed_models ?? [])
  const maxTokens = policy?.max_tokens
  const liveClock = Clock.make()
  // OpenAI itself always needs a key; a compatible server elsewhere (a local model) may not
  const endpointUrl = new URL(endpoint)
  const missingKey = Option.isNone(apiKey) && endpointUrl.hostname === "api.openai.com"
  const secret = Option.isSome(apiKey) ? Redacted.value(apiKey.value) : undefined
  const serverAddress = endpointUrl.hostname.replace(/^\[|\]$/g, "")
  const serverPort = Number(endpointUrl.port || (endpointUrl.protocol === "https:" ? 443 : 80))
  const captureContent = options.captureContent ??
    process.env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT?.trim().toLowerCase() === "true"

  const handler: Handler = (args, ctx) =>
    Effect.gen(function*() {
      if (args.length < 1 || args.length > 2) return yield* fail(`expected llm.call(prompt) or llm.call(model, prompt), got ${args.length} arguments`)
      if (missingKey) {
        return yield* fail("OPENAI_API_KEY is not set (set it, or point OPENAI_BASE_URL at an OpenAI-compatible server that needs no key)")
      }
      const prompt = args[args.length - 1]
      if (typeof prompt !== "string") return yield* fail(`prompt must be a String, got ${typeName(prompt)}`)
      let model = policy?.model ?? DEFAULT_MODEL
      if (args.length === 2) {
        const m = args[0]
        if (typeof m !== "string") return yield* fail(`model must be a String, got ${typeName(m)}`)
        model = m
      }
      if (allowed.size > 0 && !allowed.has(model)) {
        return yield* deny(`model '${model}' is not in llm_policy.allowed_models [${[...allowed].join(", ")}]`)
      }
      const body: Record<string, unknown> = { model, messages: [{ role: "user", content: prompt }] }
      if (maxTokens !== undefined) body.max_tokens = maxTokens
      let request = HttpClientRequest.post(endpoint).pipe(
        HttpClientRequest.acceptJson,
        HttpClientRequest.bodyText(JSON.stringify(body), "application/json")
      )
      if (Option.isSome(apiKey)) request = HttpClientRequest.bearerToken(request, Redacted.value(apiKey.value))

      const traced = yield* TelemetryEnabled
      let span: Tracer.Span | undefined
      const annotate = (key: string, value: string | number | ReadonlyArray<string>): void => {
        span?.attribute(key, typeof value === "string" ? scrub(value, secret) : Array.isArray(value) ? value.map((v: string) => scrub(v, secret)) : value)
      }
      const failChat = (errorType: string, message: string) => {
        annotate("error.type", errorType)
        return fail(message)
      }

      const exchange = Effect.scoped(
        Effect.gen(function*() {
          const response = yield* client.execute(request).pipe(
            Effect.mapError((e) => new ChatFailure(`request to the model endpoint failed: ${errorCode(e)}`))
          )
          const raw = yield* readCapped(response, MAX_RESPONSE_BYTES, "model response").pipe(
            Effect.mapError((e) => new ChatFailure(e.message))
          )
          if (response.status < 200 || response.status > 299) {
            const hint = (response.status === 401 || response.status === 403) && Option.isNone(apiKey) ? " — OPENAI_API_KEY is not set" : ""
            return yield* failChat(String(response.status), `HTTP ${response.status} from the model endpoint${errorCodes(raw)}${hint}`)
          }
          return raw
        })
      ).pipe(
        Effect.catchIf((e): e is ChatFailure => e instanceof ChatFailure, (e) => failChat("_OTHER", e.errorType)),
        Effect.timeoutFail({
          duration: Duration.millis(timeoutMs),
          onTimeout: () => {
            annotate("error.type", "timeout")
            return new HandlerFailure({ message: `the model endpoint did not answer within ${timeoutMs} ms` })
          }
        }),
        Effect.withClock(liveClock),
        Effect.flatMap((text) => {
          const decoded = decodeCompletion(text)
          if (Either.isLeft(decoded)) return failChat("_OTHER", `the model endpoint returned an unexpected response (not a chat completion)`)
          const completion = decoded.right
          if (completion.id !== undefined) annotate("gen_ai.response.id", completion.id)
          if (completion.model !== undefined) annotate("gen_ai.response.model", completion.model)
          const reasons = completion.choices.flatMap((c) => (typeof c.finish_reason === "string" ? [c.finish_reason] : []))
          if (reasons.length > 0) annotate("gen_ai.response.finish_reasons", reasons)
          const usage = completion.usage
          if (usage !== undefined && usage !== null) {
            if (usage.prompt_tokens !== undefined) annotate("gen_ai.usage.input_tokens", usage.prompt_tokens)
            if (usage.completion_tokens !== undefined) annotate("gen_ai.usage.output_tokens", usage.completion_tokens)
          }
          const content = completion.choices[0].message.content
          if (content === undefined || content === null) return failChat("_OTHER", `the model returned no text content`)
          if (captureContent) {
            annotate("gen_ai.input.messages", JSON.stringify([{ role: "user", parts: [{ type: "text", content: prompt }] }]))
            annotate("gen_ai.output.messages", JSON.stringify([{ role: "assistant", parts: [{ type: "text", content }] }]))
          }
          return Effect.succeed(content)
        })
      )

      if (!traced) return yield* exchange
      const attributes: Record<string, unknown> = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": scrub(model, secret),
        "server.address": serverAddress,
        "server.port": serverPort
      }
      if (maxTokens !== undefined) attributes["gen_ai.request.max_tokens"] = maxTokens
      return yield* Effect.useSpan(`chat ${scrub(model, secret)}`, { kind: "client", captureStackTrace: false, attributes }, (s) => {
        span = s
        return exchange
      })
    })

  // nothing the handler returns or fails with carries the key
  return (args, ctx) =>
    handler(args, ctx).pipe(
      Effect.map((v) => (typeof v === "string" ? scrub(v, secret) : v)),
      Effect.mapError((e) => {
        if (secret === undefined || !e.message.includes(secret)) return e
        const clean = new HandlerFailure({ message: scrub(e.message, secret), ...(e.denied === undefined ? {} : { denied: e.denied }) })
        sameFailure(e, clean)
        return clean
      }),
      Effect.catchAllDefect((d) => fail(scrub(`the handler failed: ${d instanceof Error ? d.message : String(d)}`, secret)))
    )
}
