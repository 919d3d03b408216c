/**
 * Live capability handlers: real effects, each bounded by the policy (`boruna run … --live`).
 *
 * `layer(policy)` provides `Handlers` with live `net.fetch` (`live/NetFetch.ts`), `fs.read` /
 * `fs.write` (`live/Fs.ts`), `db.query` (`live/Db.ts`), `llm.call` (`live/Llm.ts`), `time.now` and
 * `random` (`live/Clock.ts`); `ui.render`, `actor.*` and `step.input` keep the demo behaviour (the VM
 * and the workflow runner own them). The layer is scoped: the SQLite connection (a child process,
 * see `live/Db.ts`) and HTTP agents are closed when it is released.
 *
 * Configuration problems are found when the layer is built, before the program runs, as a
 * `LiveConfigError` naming the policy field or environment variable: an invalid
 * `net_policy.allowed_domains` entry (always checked), a missing `fs_policy.root` or no
 * `/proc/self/fd` to confine files with (when `fs.read` or `fs.write` is granted), a database that cannot be opened (when `db.query` is granted), an invalid
 * `OPENAI_BASE_URL` (when `llm.call` is granted). Resources of capabilities the policy does not grant
 * are never touched (no database file is created, no environment is read).
 *
 * This module is loaded with a dynamic `import()` only for `--live`, and it loads each handler's
 * modules (HTTP client, file system, SQLite) only when the policy grants that capability.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Path from "node:path"
import type { CapabilityName } from "./Capability.js"
import { HandlerFailure } from "./Errors.js"
import { demoService, type Handler, Handlers, type HandlersService, override } from "./Handlers.js"
import { isAllowed, type Policy } from "./Policy.js"
import * as LiveClock from "./live/Clock.js"
import type { Resolver } from "./live/Egress.js"
import { compileAllowlist } from "./live/Url.js"

/** The live handlers cannot start under this policy / environment; the message says why. */
export class LiveConfigError extends Data.TaggedError("LiveConfigError")<{ readonly message: string }> {}

export interface LiveOptions {
  /** directory relative `fs_policy.root` / `db_policy.path` resolve against (default `process.cwd()`) */
  readonly cwd?: string
  /** host resolver for `net.fetch` (default the system resolver); tests use it to simulate DNS */
  readonly resolve?: Resolver
  /** `llm.call` request timeout (default 120 s) */
  readonly llmTimeoutMs?: number
}

/** `OPENAI_BASE_URL` when unset (the same value as `live/Llm.ts` documents). */
export const DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"

const configError = (message: string) => Effect.fail(new LiveConfigError({ message }))

const notGranted = (cap: CapabilityName): Handler => () =>
  Effect.fail(new HandlerFailure({ message: `${cap} is not granted by the policy`, denied: true }))

/** Load a handler's modules only when the policy grants its capability (they cost start-up time). */
const load = <A>(what: string, f: () => Promise<A>): Effect.Effect<A, LiveConfigError> =>
  Effect.tryPromise({
    try: f,
    catch: (e) => new LiveConfigError({ message: `cannot load the live ${what} handler: ${e instanceof Error ? e.message : String(e)}` })
  })

const describe = (cause: Cause.Cause<unknown>): string => {
  const e = Cause.squash(cause)
  return e instanceof Error ? e.message : String(e)
}

const openDatabase = (policy: Policy, cwd: string) =>
  Effect.gen(function*() {
    const db = policy.db_policy
    const readOnly = db?.read_only ?? false
    const raw = db?.path ?? ":memory:"
    const memory = raw === ":memory:" || raw === ""
    const filename = memory ? ":memory:" : Path.resolve(cwd, raw)
    const Db = yield* load("db.query", () => import("./live/Db.js"))
    return yield* Db.open({
      filename,
      readOnly,
      maxRows: db?.max_rows,
      maxResultBytes: db?.max_result_bytes,
      timeoutMs: db?.timeout_ms
    }).pipe(
      Effect.catchAll((why) => configError(`db_policy.path: cannot open SQLite database '${memory ? ":memory:" : raw}': ${why}`))
    )
  })

const fsRoot = (policy: Policy, cwd: string, fs: FileSystem.FileSystem) =>
  Effect.gen(function*() {
    const written = policy.fs_policy?.root
    const wanted = Path.resolve(cwd, written ?? ".")
    const label = written === undefined ? `the working directory '${wanted}'` : `fs_policy.root '${written}'`
    const real = yield* fs.realPath(wanted).pipe(Effect.catchAll(() => configError(`${label} does not exist`)))
    const info = yield* fs.stat(real).pipe(Effect.catchAll(() => configError(`${label} cannot be read`)))
    if (info.type !== "Directory") return yield* configError(`${label} is not a directory`)
    return real
  })

const llmConfig = Effect.gen(function*() {
  const baseUrl = yield* Config.string("OPENAI_BASE_URL").pipe(Config.withDefault(DEFAULT_OPENAI_BASE_URL))
  const key = yield* Config.option(Config.redacted("OPENAI_API_KEY"))
  return { baseUrl, apiKey: Option.filter(key, (k) => Redacted.value(k) !== "") }
}).pipe(Effect.catchAll(() => configError(`OPENAI_BASE_URL / OPENAI_API_KEY could not be read`)))

/** The live handler set for `policy`. */
export const make = (
  policy: Policy,
  options: LiveOptions = {}
): Effect.Effect<HandlersService, LiveConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const cwd = options.cwd ?? process.cwd()
    const granted = (cap: CapabilityName) => isAllowed(policy, cap)
    const live: Partial<Record<CapabilityName, Handler>> = {
      "time.now": LiveClock.timeNow,
      random: LiveClock.random
    }

    // net.fetch: the allowlist is always validated (a bad policy is bad whatever it grants)
    const compiled = compileAllowlist(policy.net_policy?.allowed_domains ?? [])
    if (!compiled.ok) return yield* configError(compiled.problems.join("; "))
    if (granted("net.fetch")) {
      const NetFetch = yield* load("net.fetch", () => import("./live/NetFetch.js"))
      live["net.fetch"] = NetFetch.make({
        allowlist: compiled.allowlist,
        net: policy.net_policy ?? NetFetch.defaultNetPolicy,
        ...(options.resolve === undefined ? {} : { resolve: options.resolve })
      })
    } else {
      live["net.fetch"] = notGranted("net.fetch")
    }

    if (granted("fs.read") || granted("fs.write")) {
      const [Fs, FileSystemM, NodeFileSystem] = yield* load("fs", () =>
        Promise.all([import("./live/Fs.js"), import("@effect/platform/FileSystem"), import("@effect/platform-node/NodeFileSystem")])
      )
      const fs = Context.get(yield* Layer.build(NodeFileSystem.layer), FileSystemM.FileSystem)
      const root = yield* fsRoot(policy, cwd, fs)
      // confinement checks what a descriptor really is through /proc/self/fd (live/Fs.ts)
      const procFd = yield* fs.exists("/proc/self/fd").pipe(Effect.orElseSucceed(() => false))
      if (!procFd) return yield* configError(`fs.read / fs.write need Linux's /proc/self/fd to confine files to fs_policy.root`)
      const fp = policy.fs_policy
      const h = Fs.make({
        root,
        readOnly: fp?.read_only ?? false,
        allowHardlinks: fp?.allow_hardlinks,
        maxReadBytes: fp?.max_read_bytes,
        maxWriteBytes: fp?.max_write_bytes
      })
      live["fs.read"] = h.read
      live["fs.write"] = h.write
    } else {
      live["fs.read"] = notGranted("fs.read")
      live["fs.write"] = notGranted("fs.write")
    }

    live["db.query"] = granted("db.query") ? yield* openDatabase(policy, cwd) : notGranted("db.query")

    if (granted("llm.call")) {
      const { baseUrl, apiKey } = yield* llmConfig
      let parsed: URL | undefined
      try {
        parsed = new URL(baseUrl)
      } catch {
        parsed = undefined
      }
      if (parsed === undefined || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
        return yield* configError(`OPENAI_BASE_URL is not an http(s) URL`)
      }
      const [Llm, HttpClientM, NodeHttpClient] = yield* load("llm.call", () =>
        Promise.all([import("./live/Llm.js"), import("@effect/platform/HttpClient"), import("@effect/platform-node/NodeHttpClient")])
      )
      live["llm.call"] = Llm.make({
        client: Context.get(yield* Layer.build(NodeHttpClient.layer), HttpClientM.HttpClient),
        baseUrl,
        apiKey,
        policy: policy.llm_policy,
        ...(options.llmTimeoutMs === undefined ? {} : { timeoutMs: options.llmTimeoutMs })
      })
    } else {
      live["llm.call"] = notGranted("llm.call")
    }

    return override(demoService, live)
  })

/**
 * Live `Handlers` for one run under `policy`. Scoped: release it to close the database and agents.
 * Fails with `LiveConfigError` when the policy or environment cannot be honoured.
 */
export const layer = (policy: Policy, options: LiveOptions = {}): Layer.Layer<Handlers, LiveConfigError, never> =>
  Layer.scoped(Handlers, make(policy, options))
