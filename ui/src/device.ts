// What a device remembers between visits, through the platform's asynchronous store: its id, and
// the resume tokens that let a reload (or a reopened app) rejoin as the same participant (§3).
import type { TokenStore } from "./client";
import type { KeyValueStore } from "./platform/contract";

const DEVICE_ID = /^[A-Za-z0-9_-]{8,64}$/;

/** This device's stable id for a role (PROTOCOL.md §3: 8 to 64 of [A-Za-z0-9_-]), made once. */
export async function deviceId(store: KeyValueStore, role: string): Promise<string> {
  const key = `device.${role}`;
  const stored = await store.get(key);
  if (stored && DEVICE_ID.test(stored)) return stored;
  const rand = crypto.getRandomValues(new Uint8Array(12));
  const id = `${role}-${Array.from(rand, (b) => b.toString(16).padStart(2, "0")).join("")}`;
  await store.set(key, id);
  return id;
}

/** The teacher's resume token. */
export function teacherTokens(store: KeyValueStore): TokenStore {
  return {
    load: () => store.get("teacher.token"),
    save: (token) => store.set("teacher.token", token),
  };
}

/** A student's resume token, which belongs to the code it joined with: a new lesson's link starts
 * afresh. */
export function studentTokens(store: KeyValueStore, code: string): TokenStore {
  return {
    load: async () => ((await store.get("student.tokenCode")) === code ? store.get("student.token") : null),
    save: async (token) => {
      await store.set("student.token", token);
      await store.set("student.tokenCode", token ? code : null);
    },
  };
}
