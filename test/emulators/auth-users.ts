// Test users of a running Auth emulator, signed up over its REST API: a uid and a real ID token each.

export interface TestUser {
  uid: string;
  email: string;
  idToken: string;
}

let userCounter = 0;

/** Signs up a new email/password user (the Auth emulator accepts any API key) and returns its first ID token. */
export async function signUpTestUser(authHost: string, label: string): Promise<TestUser> {
  userCounter += 1;
  const email = `${label}-${process.pid}-${userCounter}@users.test`;
  const response = await fetch(`http://${authHost}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=fake-api-key`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password: "test-password-1234", returnSecureToken: true }),
  });
  const body = (await response.json()) as { localId?: string; idToken?: string; error?: { message?: string } };
  if (!response.ok || !body.localId || !body.idToken) {
    throw new Error(`signUp of ${email} at the Auth emulator failed: ${response.status} ${body.error?.message ?? ""}`);
  }
  return { uid: body.localId, email, idToken: body.idToken };
}
