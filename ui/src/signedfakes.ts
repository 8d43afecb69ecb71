// The teacher's key the tests sign with, made in Rust too (`Signer::from_secret([7; 32])`), so that the
// browser's checks and the Rust signer cannot drift apart: its public half, its private half, and the
// beat it signed for the tests' room and clock. Test code only.

/** `Signer::from_secret([7; 32]).public()`. */
export const PK = "6kpsY-KcUgq-9VB7Ey7F-ZVHdq6-vnuSQh7qaRRG0iw";

/** The teacher's clock in the tests (Unix ms). */
export const AT = 1_800_000_000_000;

/** `Signer::from_secret([7; 32]).sign_beat("r1", 5, 3, 1, AT, true)`: the teacher is there at seq 3. */
export const BEAT_SIG = "BHkD_hQE6rMgy85EHcl7DczhJIQP_OnXzqs1DgJTpr91_5lfrpzs6iRjkt6KjUcM5R7jaElDj10wGmDhJCwuDA";
export const BEAT = { seq: 3, n: 1, at: AT, teacher: true, signed: { epoch: 5, sig: BEAT_SIG } };

/** The same key's private half (PKCS #8 around the 32-byte seed). */
export const signingKey = globalThis.crypto.subtle.importKey(
  "pkcs8",
  new Uint8Array([...[0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20], ...new Array(32).fill(7)]),
  { name: "Ed25519" },
  false,
  ["sign"],
);

/** Bytes as base64url without padding, as signatures and keys travel. */
export const base64url = (bytes: ArrayBuffer) =>
  btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
