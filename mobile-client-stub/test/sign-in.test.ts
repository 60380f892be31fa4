import { describe, expect, it } from "vitest";
import { signIn, SignInError } from "../src/sign-in.js";
import type { AuthPort } from "../src/sign-in.js";

const authError = (code: string) => Object.assign(new Error(`Firebase: Error (${code}).`), { code });

/** An Auth with one account; records the calls it gets. */
function fakeAuth(accounts: Map<string, string>, options: { anonymousError?: string } = {}): AuthPort & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    signInAnonymously: () => {
      calls.push("anonymous");
      return options.anonymousError ? Promise.reject(authError(options.anonymousError)) : Promise.resolve({ uid: "anon-1" });
    },
    signInWithEmail: (email, password) => {
      calls.push(`signIn ${email}`);
      const stored = accounts.get(email);
      if (stored === undefined) return Promise.reject(authError("auth/user-not-found"));
      if (stored !== password) return Promise.reject(authError("auth/wrong-password"));
      return Promise.resolve({ uid: `uid-${email}` });
    },
    createUserWithEmail: (email, password) => {
      calls.push(`create ${email}`);
      if (accounts.has(email)) return Promise.reject(authError("auth/email-already-in-use"));
      accounts.set(email, password);
      return Promise.resolve({ uid: `uid-${email}` });
    },
  };
}

async function signInError(promise: Promise<unknown>): Promise<SignInError> {
  const error: unknown = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  if (!(error instanceof SignInError)) throw new Error(`expected a SignInError, got ${String(error)}`);
  return error;
}

describe("signIn", () => {
  it("signs in anonymously", async () => {
    await expect(signIn(fakeAuth(new Map()), { method: "anonymous" })).resolves.toEqual({ uid: "anon-1", method: "anonymous", created: false });
  });

  it("explains a disabled sign-in method", async () => {
    const error = await signInError(signIn(fakeAuth(new Map(), { anonymousError: "auth/operation-not-allowed" }), { method: "anonymous" }));
    expect(error.code).toBe("auth/operation-not-allowed");
    expect(error.message).toContain("disabled for the project");
  });

  it("signs in to an existing account", async () => {
    const auth = fakeAuth(new Map([["a@example.com", "pw"]]));
    await expect(signIn(auth, { method: "email", email: "a@example.com", password: "pw", createIfMissing: true })).resolves.toEqual({
      uid: "uid-a@example.com",
      method: "email",
      created: false,
    });
    expect(auth.calls).toEqual(["signIn a@example.com"]);
  });

  it("creates the test account on first use, then signs in to it", async () => {
    const accounts = new Map<string, string>();
    const method = { method: "email", email: "stub@example.com", password: "pw", createIfMissing: true } as const;
    await expect(signIn(fakeAuth(accounts), method)).resolves.toMatchObject({ created: true });
    await expect(signIn(fakeAuth(accounts), method)).resolves.toMatchObject({ created: false });
  });

  it("creates the account when Auth hides unknown accounts behind invalid-credential", async () => {
    const auth = fakeAuth(new Map());
    auth.signInWithEmail = () => Promise.reject(authError("auth/invalid-credential"));
    await expect(signIn(auth, { method: "email", email: "b@example.com", password: "pw", createIfMissing: true })).resolves.toMatchObject({ created: true });
  });

  it("says the password is wrong when the account turns out to exist", async () => {
    const auth = fakeAuth(new Map([["a@example.com", "right"]]));
    auth.signInWithEmail = () => Promise.reject(authError("auth/invalid-credential"));
    const error = await signInError(signIn(auth, { method: "email", email: "a@example.com", password: "wrong", createIfMissing: true }));
    expect(error).toMatchObject({ code: "wrong_password", message: "The password for a@example.com was rejected." });
  });

  it("never creates an account unless told to (a real project)", async () => {
    const auth = fakeAuth(new Map());
    const error = await signInError(signIn(auth, { method: "email", email: "c@example.com", password: "pw", createIfMissing: false }));
    expect(error).toMatchObject({ code: "auth/user-not-found", message: "Sign-in failed (auth/user-not-found): No account has this email address." });
    expect(auth.calls).toEqual(["signIn c@example.com"]);
  });

  it("passes on the SDK's message for errors it has no words for", async () => {
    const auth = fakeAuth(new Map());
    auth.signInAnonymously = () => Promise.reject(authError("auth/too-many-requests"));
    const error = await signInError(signIn(auth, { method: "anonymous" }));
    expect(error.message).toBe("Sign-in failed (auth/too-many-requests): Firebase: Error (auth/too-many-requests).");
  });

  it("points at the emulator when Auth cannot be reached", async () => {
    const auth = fakeAuth(new Map());
    auth.signInWithEmail = () => Promise.reject(authError("auth/network-request-failed"));
    const error = await signInError(signIn(auth, { method: "email", email: "d@example.com", password: "pw", createIfMissing: true }));
    expect(error.message).toBe("Sign-in failed (auth/network-request-failed): The Auth service could not be reached (is the Auth emulator running?).");
    // An unreachable service is not a missing account.
    expect(auth.calls).not.toContain("create d@example.com");
  });
});
