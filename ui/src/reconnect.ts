// When a lesson connection ends: which close codes end it for good (§10), what each says to the
// student, and how long to wait before trying again otherwise.
import { t } from "./strings";

/** Why the client stopped for good (a close code that says "do not reconnect", §10). */
export type StopReason =
  | "ended"
  | "kicked"
  | "denied"
  | "replaced"
  | "credentials"
  | "protocol"
  | "version"
  | "untrusted";

/** Close codes after which the client does not reconnect, and what each means to the page. */
export const STOP_CODES: Record<number, StopReason> = {
  1000: "ended",
  4000: "ended",
  // The app's bridge closes with 1015 when the certificate is not the pinned one, or when a relay's
  // certificate checked by name is not valid.
  1015: "untrusted",
  4001: "credentials",
  4003: "kicked",
  4400: "protocol",
  4409: "replaced",
  4426: "version",
};

/** A certificate problem's key, as the app's bridge gives it, and its sentence. */
const CERT_PROBLEMS: Record<string, "certExpired" | "certNotYetValid" | "certUntrusted" | "certInvalid"> = {
  expired: "certExpired",
  not_yet_valid: "certNotYetValid",
  other_name: "certUntrusted",
  unknown_authority: "certUntrusted",
  revoked: "certInvalid",
  invalid: "certInvalid",
};

/** Whether a stop can end by trying again: a certificate checked by name (the device's clock set
 * right, a Wi-Fi's sign-in page passed, a relay's certificate renewed). */
export function retryable(stop: StopReason | undefined, pinned: boolean): boolean {
  return stop === "untrusted" && !pinned;
}

/** The error codes of §10, the only ones a page names (a relay's error text is never shown). */
export const ERROR_CODES = new Set(["bad_request", "forbidden", "rate_limited", "not_found", "internal"]);

/** An error's text for a person when the server's own may not be shown (behind a relay): what the
 * code means, in the page's language. */
export function errorText(code: string): string {
  if (code === "forbidden") return t("errForbidden");
  if (code === "rate_limited") return t("errRateLimited");
  return t("errOther");
}

/** Reconnect delay for attempt n (0 = at once), capped at 5 s, with jitter. */
export function backoff(attempt: number, random: () => number = Math.random): number {
  if (attempt <= 0) return 0;
  const base = Math.min(5000, 250 * 2 ** (attempt - 1));
  return Math.round(base / 2 + (random() * base) / 2);
}

/** Why the lesson stopped, for the student. `pinned` says whether the link pins the server's
 * certificate: a relay link that does not is checked by name, and its certificate can be expired or
 * for another name rather than "not the class you were given". The app's bridge then gives the
 * problem as a key (`tls::CertProblem::key`); only known keys choose a sentence, so no text a peer
 * wrote is ever shown. */
export function stopText(stop: StopReason | undefined, reason = "", pinned = true): string {
  if (stop === "untrusted" && !pinned) return t(CERT_PROBLEMS[reason] ?? "certInvalid");
  switch (stop) {
    case "ended":
      return t("ended");
    case "kicked":
      return t("kicked");
    case "replaced":
      return t("replaced");
    case "untrusted":
      return t("untrusted");
    default:
      return t("stopped");
  }
}
