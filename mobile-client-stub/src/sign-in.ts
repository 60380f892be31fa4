// Signing in: anonymous, or email/password with the test account created on first use (emulator only).

import { errorCode } from "./error-code.js";

/** The slice of Firebase Auth sign-in needs; firebase-ports.ts implements it with the SDK. */
export interface AuthPort {
  signInAnonymously(): Promise<{ uid: string }>;
  signInWithEmail(email: string, password: string): Promise<{ uid: string }>;
  createUserWithEmail(email: string, password: string): Promise<{ uid: string }>;
}

export type SignInMethod =
  | { method: "anonymous" }
  | { method: "email"; email: string; password: string; createIfMissing: boolean };

export interface SignedInUser {
  uid: string;
  method: SignInMethod["method"];
  /** True when the account did not exist and was created by this call. */
  created: boolean;
}

export class SignInError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "SignInError";
  }
}

// With email-enumeration protection on, Auth reports an unknown account as invalid-credential.
const NO_SUCH_ACCOUNT = new Set(["auth/user-not-found", "auth/invalid-credential", "auth/invalid-login-credentials"]);

export async function signIn(auth: AuthPort, method: SignInMethod): Promise<SignedInUser> {
  if (method.method === "anonymous") {
    const user = await attempt(() => auth.signInAnonymously());
    return { uid: user.uid, method: "anonymous", created: false };
  }
  try {
    const user = await auth.signInWithEmail(method.email, method.password);
    return { uid: user.uid, method: "email", created: false };
  } catch (error) {
    if (!method.createIfMissing || !NO_SUCH_ACCOUNT.has(errorCode(error))) throw asSignInError(error);
    try {
      const user = await auth.createUserWithEmail(method.email, method.password);
      return { uid: user.uid, method: "email", created: true };
    } catch (createError) {
      // The account exists after all, so the first failure was the password.
      if (errorCode(createError) === "auth/email-already-in-use") {
        throw new SignInError("wrong_password", `The password for ${method.email} was rejected.`, { cause: error });
      }
      throw asSignInError(createError);
    }
  }
}

async function attempt<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw asSignInError(error);
  }
}

// What to tell the user for the Auth errors a developer running the stub meets most.
const HINTS: Record<string, string> = {
  "auth/operation-not-allowed": "This sign-in method is disabled for the project (enable it in the Firebase console).",
  "auth/network-request-failed": "The Auth service could not be reached (is the Auth emulator running?).",
  "auth/user-not-found": "No account has this email address.",
  "auth/wrong-password": "The password was rejected.",
  "auth/invalid-credential": "The email address or password was rejected.",
};

function asSignInError(error: unknown): SignInError {
  const code = errorCode(error) || "sign_in_failed";
  const hint = HINTS[code] ?? (error instanceof Error ? error.message : String(error));
  return new SignInError(code, `Sign-in failed (${code}): ${hint}`, { cause: error });
}
