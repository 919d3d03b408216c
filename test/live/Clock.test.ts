import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import * as Gateway from "../../src/Gateway.js"
import { allowAll, type Policy } from "../../src/Policy.js"
import { AxFloat, Unit } from "../../src/Value.js"
import { secureRandom } from "../../src/live/Clock.js"
import { capSpans, setup } from "./support.js"

const clockPolicy: Policy = {
  schema_version: 1,
  default_allow: false,
  rules: { "time.now": { allow: true, budget: 0 }, random: { allow: true, budget: 0 }, "ui.render": { allow: true, budget: 0 } }
}

describe("live time.now / random", () => {
  it.effect("time.now reads the Effect Clock (whole Unix seconds), so a TestClock controls it", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(1_712_345_678_999)
      expect(yield* Gateway.call("time.now", [])).toBe(1_712_345_678)
      yield* TestClock.adjust("2 seconds")
      expect(yield* Gateway.call("time.now", [])).toBe(1_712_345_680)
      const spans = yield* capSpans
      expect(spans.map((s) => [s.attributes["cap.name"], s.status])).toEqual([["time.now", "ok"], ["time.now", "ok"]])
    }).pipe(Effect.provide(setup(clockPolicy))))

  it.live("time.now is the wall clock under the live clock", () =>
    Effect.gen(function*() {
      const before = Math.floor(Date.now() / 1000)
      const now = yield* Gateway.call("time.now", [])
      expect(typeof now).toBe("number")
      expect(now).toBeGreaterThanOrEqual(before)
      expect(now).toBeLessThanOrEqual(Math.floor(Date.now() / 1000))
    }).pipe(Effect.provide(setup(clockPolicy))))

  it.effect("random is a Float in [0, 1) from the CSPRNG: varied, not the demo value", () =>
    Effect.gen(function*() {
      const values: Array<number> = []
      for (let i = 0; i < 200; i++) {
        const v = yield* Gateway.call("random", [])
        expect(v).toBeInstanceOf(AxFloat)
        values.push((v as AxFloat).value)
      }
      expect(values.every((x) => x >= 0 && x < 1)).toBe(true)
      expect(new Set(values).size).toBe(200)
      expect(values).not.toContain(0.42)
      // 53 random bits: every value is an exact multiple of 2^-53
      expect(values.every((x) => Number.isInteger(x * 2 ** 53))).toBe(true)
      const spans = yield* capSpans
      expect(spans).toHaveLength(200)
      expect(spans.every((s) => s.attributes["cap.name"] === "random" && s.status === "ok")).toBe(true)
      const e = yield* Effect.flip(Gateway.call("random", [1]))
      expect(e.message).toBe("random failed: expected random(), got 1 arguments")
    }).pipe(Effect.provide(setup(clockPolicy))))

  it("secureRandom stays in [0, 1) over many draws", () => {
    let lo = 1
    let hi = 0
    for (let i = 0; i < 20_000; i++) {
      const x = secureRandom()
      lo = Math.min(lo, x)
      hi = Math.max(hi, x)
    }
    expect(lo).toBeGreaterThanOrEqual(0)
    expect(hi).toBeLessThan(1)
    expect(hi - lo).toBeGreaterThan(0.99)
  })

  it.effect("capabilities the live layer does not perform (ui.render, actors) keep the demo behaviour", () =>
    Effect.gen(function*() {
      expect(yield* Gateway.call("ui.render", ["tree"])).toBe(Unit)
      const [span] = yield* capSpans
      expect(span.status).toBe("ok")
    }).pipe(Effect.provide(setup(clockPolicy))))

  it.effect("under allow-all with no policy knobs the live layer builds (fs root = cwd, db = :memory:)", () =>
    Effect.gen(function*() {
      expect(yield* Gateway.call("db.query", ["SELECT 'ok' AS s", []])).toHaveLength(1)
      const e = yield* Effect.flip(Gateway.call("fs.read", ["../../../../../../etc/passwd"]))
      expect(e._tag).toBe("Denied")
    }).pipe(Effect.provide(setup(allowAll))))
})
