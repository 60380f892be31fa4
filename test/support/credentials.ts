// A service-account key generated on the fly, so firebase-admin can sign Cloud Storage URLs
// (v4, signed locally) with no Google account and no network.

import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export function writeLocalServiceAccount(projectId: string): string {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const key = {
    type: "service_account",
    project_id: projectId,
    private_key_id: "local-runtime",
    private_key: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    client_email: `local-runtime@${projectId}.iam.gserviceaccount.com`,
    client_id: "0",
    // Never used: signing is local and every Google API is emulated.
    token_uri: "http://127.0.0.1:9/token",
  };
  const file = path.join(mkdtempSync(path.join(tmpdir(), "visit-pipeline-")), "service-account.json");
  writeFileSync(file, JSON.stringify(key), { mode: 0o600 });
  return file;
}
