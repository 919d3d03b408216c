/** Signed attestations of evidence bundles (in progress). */
import * as Effect from "effect/Effect"
import type { Files } from "./EvidenceVerify.js"
import type { Manifest } from "./EvidenceBundle.js"

export interface AttestationCheck {
  readonly problems: ReadonlyArray<{ readonly file: string; readonly message: string }>
  readonly notes: ReadonlyArray<string>
}

export const verifyAttestation = (_files: Files, _m: Manifest, _options: { readonly verifyKey?: string | undefined }): Effect.Effect<AttestationCheck> =>
  Effect.succeed({ problems: [{ file: "attestation.intoto.dsse.json", message: "attestations cannot be checked by this build yet" }], notes: [] })
