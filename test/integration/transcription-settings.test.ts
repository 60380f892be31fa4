// What the transcription params ask of AssemblyAI (Medical Mode, PII redaction, the expected
// speaker count) reaches the submit request through the real SDK, and the visit's transcript
// info records what the job was asked for and did — from the job, not from today's params.

import { beforeEach, describe, expect, it } from "vitest";
import { useLocalRuntime } from "../support/use-local-runtime.js";
import { newVisitId, readVisit } from "../support/visits.js";

const runtime = useLocalRuntime();

const MEDICAL_AND_REDACTION = {
  ASSEMBLYAI_MEDICAL_MODE: "true",
  ASSEMBLYAI_REDACT_PII: "true",
  ASSEMBLYAI_REDACT_PII_POLICIES: "person_name,phone_number",
  ASSEMBLYAI_SPEAKERS_EXPECTED: "2",
};
/** What a job submitted with MEDICAL_AND_REDACTION records, for a language Medical Mode serves. */
const MEDICAL_AND_REDACTION_APPLIED = { medicalMode: "applied", redactedPiiPolicies: ["person_name", "phone_number"], speakersExpected: 2 };
const PARAMS_OFF = {
  ASSEMBLYAI_MEDICAL_MODE: undefined,
  ASSEMBLYAI_REDACT_PII: undefined,
  ASSEMBLYAI_REDACT_PII_POLICIES: undefined,
  ASSEMBLYAI_SPEAKERS_EXPECTED: undefined,
};

beforeEach(async () => {
  await runtime().setEnv(PARAMS_OFF);
});

function submitBodies(): Record<string, unknown>[] {
  return runtime().assemblyai.requests
    .filter((request) => request.method === "POST" && request.path.startsWith("/v2/transcript"))
    .map((request) => request.body as Record<string, unknown>);
}

describe("transcription params", () => {
  it("by default ask for nothing beyond the speech models, and the transcript info says so", async () => {
    const visitId = newVisitId();
    await runtime().upload({ uid: "user-1", visitId, fileName: "visit-en.m4a" });
    await runtime().runUntilSettled([visitId]);
    const [body] = submitBodies();
    expect(body).toBeDefined();
    for (const field of ["domain", "redact_pii", "redact_pii_policies", "redact_pii_sub", "speakers_expected"]) {
      expect(body, field).not.toHaveProperty(field);
    }
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(visit.transcript?.settings).toEqual({ medicalMode: "off", redactedPiiPolicies: [], speakersExpected: null });
  });

  it("send Medical Mode, redaction and the speaker count; the visit records Medical Mode applied", async () => {
    await runtime().setEnv(MEDICAL_AND_REDACTION);
    const visitId = newVisitId();
    await runtime().upload({ uid: "user-1", visitId, fileName: "visit-en.m4a" });
    await runtime().runUntilSettled([visitId]);
    expect(submitBodies()).toEqual([
      expect.objectContaining({
        domain: "medical-v1",
        redact_pii: true,
        redact_pii_policies: ["person_name", "phone_number"],
        redact_pii_sub: "entity_name",
        speakers_expected: 2,
        speaker_labels: true,
        language_detection: true,
      }),
    ]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(visit.transcript?.settings).toEqual(MEDICAL_AND_REDACTION_APPLIED);
  });

  it("a recording in a language Medical Mode does not serve is transcribed and summarized without it, and says skipped", async () => {
    await runtime().setEnv({ ASSEMBLYAI_MEDICAL_MODE: "true" });
    runtime().assemblyai.registerAudio("visita-it", {
      kind: "transcript",
      languageCode: "it",
      turns: [
        { speaker: "doctor", text: "Buongiorno, come si sente oggi?" },
        { speaker: "patient", text: "Ho mal di testa da tre giorni." },
      ],
    });
    const visitId = newVisitId();
    await runtime().upload({ uid: "user-1", visitId, fileName: "visita-it.m4a" });
    await runtime().runUntilSettled([visitId]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(visit.transcript?.languageCode).toBe("it");
    // Asked for (the request carried the domain), answered with `domain_used: null` and the warning.
    expect(submitBodies()).toEqual([expect.objectContaining({ domain: "medical-v1" })]);
    expect(visit.transcript?.settings?.medicalMode).toBe("skipped");
  });

  it("record what the job was asked for, not the params in force when it is saved", async () => {
    await runtime().setEnv(MEDICAL_AND_REDACTION);
    const visitId = newVisitId();
    await runtime().upload({ uid: "user-1", visitId, fileName: "visit-es.m4a" });
    // The params change while AssemblyAI works on the job.
    await runtime().setEnv(PARAMS_OFF);
    await runtime().runUntilSettled([visitId]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(visit.transcript?.settings).toEqual(MEDICAL_AND_REDACTION_APPLIED);
  });
});
