// Who each speaker label is — clinician, patient, caregiver, interpreter, other, or unknown — from
// the summary model's structured output, recorded on the summary and on the transcript artifact,
// through the real handlers (the real openai SDK against the fake OpenAI, the embedded Firestore).
// Unknown stays unknown; a summary written in parts combines its parts' roles by the merge rule.

import { describe, expect, it } from "vitest";
import { db } from "../../functions/src/store/db.js";
import type { SpeakerRole } from "../../functions/src/visit/summary.js";
import { responseFormatName } from "../fakes/openai.js";
import type { ChatRequestBody } from "../fakes/openai.js";
import { useLocalRuntime } from "../support/use-local-runtime.js";
import { visitSummary } from "../support/summaries.js";
import { newVisitId, readTranscriptArtifact, readVisit } from "../support/visits.js";

const runtime = useLocalRuntime({ assemblyai: { queuedMs: 0, processingMs: 0 } });

const role = (speaker: string, name: SpeakerRole["role"], certainty: SpeakerRole["certainty"]): SpeakerRole => ({ speaker, role: name, certainty });

async function summarized(turns: { speaker: string; text: string }[], answer?: (body: ChatRequestBody) => unknown): Promise<string> {
  const name = `roles-${newVisitId()}`;
  runtime().assemblyai.registerAudio(name, { kind: "transcript", languageCode: "en", turns });
  if (answer) runtime().openai.respondWith((body) => (responseFormatName(body) === "visit_summary" ? answer(body) : undefined));
  const visitId = newVisitId();
  await runtime().upload({ uid: "user-roles", visitId, fileName: `${name}.m4a` });
  await runtime().runUntilSettled([visitId]);
  return visitId;
}

const FAMILY_VISIT = [
  { speaker: "doctor", text: "Hello, I'm Doctor Ruiz. Who have you brought with you today?" },
  { speaker: "patient", text: "This is my daughter, she helps me with my medicines." },
  { speaker: "daughter", text: "He has been forgetting his evening tablets." },
  { speaker: "doctor", text: "Let's set up a pill organizer and review in a month." },
];

/** A model's summary answer for the family visit with the given speakers. */
function answerWith(speakers: SpeakerRole[]) {
  return () => visitSummary({ speakers, overview: "Medication review." });
}

describe("speaker roles", () => {
  it("are recorded on the summary and on the transcript artifact, for exactly the transcript's labels", async () => {
    const visitId = await summarized(
      FAMILY_VISIT,
      answerWith([role("A", "clinician", "stated"), role("B", "patient", "inferred"), role("C", "caregiver", "stated"), role("D", "other", "inferred")]),
    );
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    const expected = [role("A", "clinician", "stated"), role("B", "patient", "inferred"), role("C", "caregiver", "stated")];
    // "D" is not a speaker of this transcript: dropped.
    expect(visit.summary?.speakers).toEqual(expected);
    expect((await readTranscriptArtifact(visitId))?.speakerRoles).toEqual(expected);
    // The app can label the transcript's lines by role instead of by letter.
    const utterances = (await readTranscriptArtifact(visitId))?.utterances as { speaker: string }[];
    expect(new Set(utterances.map((u) => u.speaker))).toEqual(new Set(["A", "B", "C"]));
  });

  it("stay unknown when the model cannot tell, and a label it leaves out is unknown — never guessed", async () => {
    const visitId = await summarized(FAMILY_VISIT, answerWith([role("A", "clinician", null), role("B", "unknown", "stated")]));
    const visit = await readVisit(visitId);
    expect(visit.summary?.speakers).toEqual([
      // A role without a certainty is only inferred; an unknown one has none; C was not named.
      role("A", "clinician", "inferred"),
      role("B", "unknown", null),
      role("C", "unknown", null),
    ]);
    expect((await readTranscriptArtifact(visitId))?.speakerRoles).toEqual(visit.summary?.speakers);
  });

  it("are asked for in the prompt and the strict schema", async () => {
    await summarized(FAMILY_VISIT);
    const [request] = runtime().openai.requests.map((entry) => entry.body as ChatRequestBody);
    const system = String(request?.messages[0]?.content);
    expect(system).toContain('"unknown"');
    expect(system).toContain("Never guess");
    const schema = JSON.stringify(request?.response_format);
    expect(schema).toContain('"speakers"');
    expect(schema).toContain('"interpreter"');
  });

  it("of a summary written in parts are combined by the merge rule: a stated role outweighs inferences, disagreement is unknown", async () => {
    await runtime().setEnv({ SUMMARY_CONTEXT_TOKENS: "1650" });
    try {
      const turns = Array.from({ length: 24 }, (_, i) => ({
        speaker: ["doctor", "patient", "interpreter"][i % 3]!,
        text: `t${i} we talk about the tablets and how the evenings have been going for some weeks now.`,
      }));
      let part = 0;
      const visitId = await summarized(turns, () => {
        part += 1;
        // Part 1 infers A is the clinician; a later part hears her introduced. B is inferred as the
        // patient by one part and as a caregiver by another: nobody knows. C is only ever unknown.
        const speakers =
          part === 1
            ? [role("A", "clinician", "inferred"), role("B", "patient", "inferred"), role("C", "unknown", null)]
            : part === 2
              ? [role("A", "clinician", "stated"), role("B", "caregiver", "inferred")]
              : [role("A", "patient", "inferred")];
        return { ...answerWith(speakers)(), overview: `Part ${part}.` };
      });
      const visit = await readVisit(visitId);
      expect(visit.status).toBe("completed");
      expect(visit.summaryParts).toBeGreaterThan(2);
      expect(visit.summary?.speakers).toEqual([role("A", "clinician", "stated"), role("B", "unknown", null), role("C", "unknown", null)]);
      expect((await readTranscriptArtifact(visitId))?.speakerRoles).toEqual(visit.summary?.speakers);
    } finally {
      await runtime().setEnv({ SUMMARY_CONTEXT_TOKENS: undefined });
    }
  });

  it("of a summary saved before roles were recorded read as none", async () => {
    const visitId = await summarized(FAMILY_VISIT);
    const stored = (await db().doc(`visits/${visitId}`).get()).data() as { summary: Record<string, unknown> };
    const { speakers: _speakers, ...older } = stored.summary;
    await db().doc(`visits/${visitId}`).update({ summary: older });
    expect((await readVisit(visitId)).summary?.speakers).toEqual([]);
  });
});
