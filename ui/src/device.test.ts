// What a device remembers, through an asynchronous store: its id, and resume tokens tied to a code.
import { describe, expect, it } from "vitest";
import { deviceId, studentTokens, teacherTokens } from "./device";
import type { KeyValueStore } from "./platform/contract";

/** An asynchronous in-memory store, as the app's will be (answers come on a later turn). */
function memoryStore(initial: Record<string, string> = {}): KeyValueStore & { data: Map<string, string> } {
  const data = new Map(Object.entries(initial));
  const later = <T>(v: T) => new Promise<T>((r) => setTimeout(() => r(v), 0));
  return {
    data,
    get: (key) => later(data.get(key) ?? null),
    set: async (key, value) => {
      await later(undefined);
      if (value === null) data.delete(key);
      else data.set(key, value);
    },
  };
}

describe("device id", () => {
  it("is made once per role, kept, and valid for hello (§3)", async () => {
    const store = memoryStore();
    const id = await deviceId(store, "student");
    expect(id).toMatch(/^student-[0-9a-f]{24}$/);
    expect(store.data.get("device.student")).toBe(id);
    expect(await deviceId(store, "student")).toBe(id);
    expect(await deviceId(store, "teacher")).not.toBe(id);
  });
  it("replaces a damaged stored id", async () => {
    const store = memoryStore({ "device.student": "bad id!" });
    const id = await deviceId(store, "student");
    expect(id).toMatch(/^[A-Za-z0-9_-]{8,64}$/);
    expect(store.data.get("device.student")).toBe(id);
  });
});

describe("resume tokens", () => {
  it("gives a student's token only for the code it joined with", async () => {
    const store = memoryStore();
    await studentTokens(store, "482913").save("tok");
    expect(await studentTokens(store, "482913").load()).toBe("tok");
    expect(await studentTokens(store, "111111").load()).toBeNull();
    await studentTokens(store, "482913").save(null);
    expect(store.data.size).toBe(0);
  });
  it("keeps the teacher's token", async () => {
    const store = memoryStore();
    await teacherTokens(store).save("t-1");
    expect(await teacherTokens(store).load()).toBe("t-1");
  });
});
