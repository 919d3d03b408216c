/** The HTML report, rendered in headless Chromium (Debian's `chromium`, driven by playwright-core). */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { chromium } from "playwright-core"
import { inflateSync } from "node:zlib"
import * as Bundle from "../src/EvidenceBundle.js"
import * as Report from "../src/EvidenceReport.js"
import * as Verify from "../src/EvidenceVerify.js"
import { smallRun } from "./EvidenceFixture.js"

const fixed = { createdAt: new Date("2026-12-01T00:00:00.000Z"), env: { boruna_version: "0.1.0" } }

/** Distinct colours in a PNG (8-bit RGB/RGBA, non-interlaced, as Chromium writes them). */
const distinctColours = (png: Buffer): number => {
  let pos = 8
  let width = 0
  let height = 0
  let channels = 4
  const idat: Array<Buffer> = []
  while (pos < png.length) {
    const len = png.readUInt32BE(pos)
    const type = png.toString("ascii", pos + 4, pos + 8)
    const data = png.subarray(pos + 8, pos + 8 + len)
    if (type === "IHDR") {
      width = data.readUInt32BE(0)
      height = data.readUInt32BE(4)
      channels = data[9] === 6 ? 4 : 3
    } else if (type === "IDAT") idat.push(data)
    pos += 12 + len
  }
  const raw = inflateSync(Buffer.concat(idat))
  const stride = width * channels
  const prev = Buffer.alloc(stride)
  const cur = Buffer.alloc(stride)
  const colours = new Set<number>()
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)]
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1))
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? cur[x - channels] : 0
      const b = prev[x]
      const c = x >= channels ? prev[x - channels] : 0
      const p = a + b - c
      const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c)
      const pred = f === 0 ? 0 : f === 1 ? a : f === 2 ? b : f === 3 ? (a + b) >> 1 : pa <= pb && pa <= pc ? a : pb <= pc ? b : c
      cur[x] = (line[x] + pred) & 0xff
    }
    for (let x = 0; x < stride; x += channels) colours.add((cur[x] << 16) | (cur[x + 1] << 8) | cur[x + 2])
    cur.copy(prev)
  }
  return colours.size
}

describe("evidence report", () => {
  it("is one self-contained file: no script, no external reference", () => {
    const files = Bundle.buildBundle(smallRun(), fixed)
    const v = Effect.runSync(Verify.verifyFiles(files, { reexecute: false }))
    const html = Either.getOrThrow(Report.renderReport(files, v))
    expect(html.replace(/http:\/\/www\.w3\.org\/2000\/svg/g, "")).not.toMatch(/https?:\/\//)
    expect(html).not.toMatch(/<script|<link\b|@import|<img\b|<iframe\b/i)
    expect(html).toMatch(/default-src 'none'/)
    // text from the run is escaped
    const evil = smallRun()
    const withTag = { ...evil, approvals: evil.approvals.map((a) => ({ ...a, approver: "<b>x</b>" })) }
    const f2 = Bundle.buildBundle(withTag, fixed)
    const h2 = Either.getOrThrow(Report.renderReport(f2, Effect.runSync(Verify.verifyFiles(f2, { reexecute: false }))))
    expect(h2).toContain("&lt;b&gt;x&lt;/b&gt;")
    expect(h2).not.toContain("<b>x</b>")
  })

  it("renders in headless Chromium with no console error, shows every step and call, and paints", async () => {
    const root = mkdtempSync(join(tmpdir(), "ev-rep-"))
    const dir = join(root, "bundle")
    const out = join(root, "report.html")
    const v = await Effect.runPromise(Effect.flatMap(Bundle.createBundle(smallRun(), dir, fixed), () => Report.reportDir(dir, out)))
    expect(v.ok).toBe(true)
    const userData = mkdtempSync(join(tmpdir(), "ev-chromium-"))
    // a fresh profile (the --user-data-dir) for this run only
    const browser = await chromium.launchPersistentContext(userData, {
      executablePath: "/usr/bin/chromium",
      headless: true,
      viewport: { width: 1200, height: 900 },
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    })
    try {
      const page = await browser.newPage()
      const errors: Array<string> = []
      const requests: Array<string> = []
      page.on("console", (m) => {
        if (m.type() === "error") errors.push(m.text())
      })
      page.on("pageerror", (e) => errors.push(String(e)))
      page.on("request", (r) => requests.push(r.url()))
      await page.goto(`file://${out}`)
      expect(errors).toEqual([])
      // nothing but the file itself is fetched
      expect(requests).toEqual([`file://${out}`])
      expect(await page.textContent("#verification")).toBe("VERIFIED")
      // every step (graph table and timeline) and every call
      const record = smallRun()
      for (const s of record.steps) {
        expect(await page.locator(`[data-step="${s.id}"]`).count()).toBe(1)
        expect(await page.locator(`svg text`, { hasText: s.id }).count()).toBeGreaterThan(0)
        for (const a of s.attempts) {
          for (const c of a.calls) {
            const row = page.locator(`[data-row="call-${s.id}-${a.attempt}-${c.seq}"]`)
            expect(await row.count()).toBe(1)
            expect(await row.textContent()).toContain(c.capability)
          }
        }
      }
      expect(await page.locator(`[data-approval="approve"]`).textContent()).toContain("alice")
      expect(await page.locator("#policy pre").textContent()).toContain("default_allow")
      // a screenshot that is not blank: many colours, not one background
      const png = await page.screenshot({ fullPage: true })
      expect(distinctColours(png)).toBeGreaterThan(20)
      // and it prints (a PDF with pages)
      const pdf = await page.pdf({ format: "A4" })
      expect(pdf.subarray(0, 5).toString()).toBe("%PDF-")
      expect(readFileSync(out, "utf8").length).toBeGreaterThan(1000)
    } finally {
      await browser.close()
      rmSync(userData, { recursive: true, force: true })
    }
  }, 60_000)
})
