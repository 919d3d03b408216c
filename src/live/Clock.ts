/**
 * Live `time.now()` → Int (Unix seconds, from `effect/Clock`, so a `TestClock` controls it in tests)
 * and `random()` → Float in [0, 1) from the operating system's CSPRNG (`node:crypto`): 53 random
 * bits scaled by 2^-53, so every value is an exact multiple of 2^-53 and 1.0 never occurs.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { randomBytes } from "node:crypto"
import { HandlerFailure } from "../Errors.js"
import type { Handler } from "../Handlers.js"
import { AxFloat } from "../Value.js"

const noArgs = (name: string, n: number) => Effect.fail(new HandlerFailure({ message: `expected ${name}(), got ${n} arguments` }))

export const timeNow: Handler = (args) =>
  args.length !== 0 ? noArgs("time.now", args.length) : Effect.map(Clock.currentTimeMillis, (ms) => Math.floor(ms / 1000))

/** A uniformly distributed double in [0, 1) from 53 CSPRNG bits. */
export const secureRandom = (): number => Number(randomBytes(8).readBigUInt64BE() >> 11n) / 2 ** 53

export const random: Handler = (args) =>
  args.length !== 0 ? noArgs("random", args.length) : Effect.sync(() => new AxFloat(secureRandom()))
