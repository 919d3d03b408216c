/**
 * Reading a response body under a byte cap: stream it and stop at the first chunk that would pass
 * the cap (an error, never a silently truncated body); then decode strict UTF-8.
 */
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { HandlerFailure } from "../Errors.js"
import { errorCode } from "./Egress.js"

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

export const readCapped = (
  response: HttpClientResponse.HttpClientResponse,
  maxBytes: number,
  what: string
): Effect.Effect<string, HandlerFailure> => {
  const tooBig = (n: string) =>
    new HandlerFailure({ message: `${what} exceeds max_response_bytes (${maxBytes} bytes; got ${n})` })
  const declared = Number(response.headers["content-length"])
  if (Number.isFinite(declared) && declared > maxBytes) return Effect.fail(tooBig(`content-length ${declared}`))
  return Stream.runFoldEffect(
    Stream.mapError(response.stream, (e) => new HandlerFailure({ message: `reading ${what} failed: ${errorCode(e)}` })),
    { chunks: [] as Array<Uint8Array>, size: 0 },
    (acc, chunk) => {
      const size = acc.size + chunk.length
      if (size > maxBytes) return Effect.fail(tooBig(`more than ${maxBytes}`))
      acc.chunks.push(chunk)
      return Effect.succeed({ chunks: acc.chunks, size })
    }
  ).pipe(
    Effect.flatMap(({ chunks, size }) => {
      const all = new Uint8Array(size)
      let off = 0
      for (const c of chunks) {
        all.set(c, off)
        off += c.length
      }
      try {
        return Effect.succeed(utf8.decode(all))
      } catch {
        return Effect.fail(new HandlerFailure({ message: `${what} is not valid UTF-8` }))
      }
    })
  )
}
