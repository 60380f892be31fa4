// The stub restates the pipeline's contract (src/contract.ts) so it can be copied into an app;
// these checks fail when the restatement drifts from the functions code and the rules.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { tunables } from "../../functions/src/config.js";
import { ERROR_CODES, PIPELINE_STAGES as FUNCTIONS_PIPELINE_STAGES, visitError } from "../../functions/src/visit/errors.js";
import type { PipelineStage as FunctionsPipelineStage, VisitError as FunctionsVisitError } from "../../functions/src/visit/errors.js";
import * as functionsStatus from "../../functions/src/visit/status.js";
import type { ResumeStage as FunctionsResumeStage, VisitStatus as FunctionsVisitStatus } from "../../functions/src/visit/status.js";
import { isValidVisitId as functionsIsValidVisitId, parseVisitUploadPath, validateUpload } from "../../functions/src/visit/upload.js";
import { NOTE_SECTIONS as FUNCTIONS_NOTE_SECTIONS } from "../../functions/src/visit/clinician-note.js";
import { ISO_639_1_CODES } from "../../functions/src/visit/language.js";
import { CLINICIAN_NOTE_ARTIFACT_ID, TRANSLATION_ARTIFACT_ID } from "../../functions/src/store/summary-artifacts.js";
import { TRANSCRIPT_ARTIFACT_ID } from "../../functions/src/store/transcripts.js";
import { SUMMARY_EXTRA_STATES as FUNCTIONS_EXTRA_STATES } from "../../functions/src/visit/model.js";
import { ROLE_CERTAINTIES as FUNCTIONS_ROLE_CERTAINTIES, SPEAKER_ROLES as FUNCTIONS_SPEAKER_ROLES } from "../../functions/src/visit/summary.js";
import { AUDIO_CONTENT_TYPES } from "../src/audio-file.js";
import * as stub from "../src/contract.js";
import type { PipelineStage, ResumeStage, VisitError, VisitStatus } from "../src/contract.js";
import { VisitErrorSchema } from "../src/visit-document.js";

// Compile-time agreement: the types are the same sets. This is checked by `npm run typecheck`
// (tsconfig.json includes mobile-client-stub/test), not by vitest, which strips types: a drift
// makes `Assert<false>` a type error there. The runtime tests below compare the values.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;
type _ContractTypesAgree = [
  Assert<Same<VisitStatus, FunctionsVisitStatus>>,
  Assert<Same<ResumeStage, FunctionsResumeStage>>,
  Assert<Same<PipelineStage, FunctionsPipelineStage>>,
  Assert<Same<keyof VisitError, keyof FunctionsVisitError>>,
  Assert<Same<keyof z.infer<typeof VisitErrorSchema>, keyof VisitError>>,
];

const storageRules = readFileSync(new URL("../../storage.rules", import.meta.url), "utf8");
const firestoreRules = readFileSync(new URL("../../firestore.rules", import.meta.url), "utf8");

describe("contract restated in mobile-client-stub/src/contract.ts", () => {
  it("lists the statuses of the visit state machine, in order", () => {
    expect(stub.VISIT_STATUSES).toEqual(functionsStatus.VISIT_STATUSES);
  });

  it("agrees on which statuses are terminal and which are processing", () => {
    expect([...stub.TERMINAL_STATUSES].sort()).toEqual([...functionsStatus.TERMINAL_STATUSES].sort());
    expect([...stub.PROCESSING_STATUSES].sort()).toEqual([...functionsStatus.PROCESSING_STATUSES].sort());
  });

  it("names the same <status>At time field for every status", () => {
    expect(stub.STATUS_TIME_FIELD).toEqual(functionsStatus.STATUS_TIME_FIELD);
  });

  it("lists the resume stages of the state machine, in order", () => {
    expect(stub.RESUME_STAGES).toEqual(functionsStatus.RESUME_STAGES);
  });

  it("lists the stages a stored error may name, in order", () => {
    expect(stub.PIPELINE_STAGES).toEqual(FUNCTIONS_PIPELINE_STAGES);
  });

  it("accepts every resume stage the state machine accepts, each leading to a processing status", () => {
    for (const resume of stub.RESUME_STAGES) {
      const planned = functionsStatus.planTransition("failed", { type: "retry_accepted", resume }, new Date(0));
      expect(stub.PROCESSING_STATUSES.has(planned.status)).toBe(true);
    }
  });

  it("reads the error exactly as the pipeline stores it, for every error code", () => {
    const stages: FunctionsPipelineStage[] = [...stub.PIPELINE_STAGES];
    for (const code of Object.keys(ERROR_CODES) as (keyof typeof ERROR_CODES)[]) {
      for (const stage of stages) {
        const stored = visitError(stage, code);
        expect(VisitErrorSchema.parse(stored)).toEqual(stored);
      }
    }
  });

  it("reads exactly the keys of the stored error", () => {
    const storedKeys = new Set<string>();
    for (const code of Object.keys(ERROR_CODES) as (keyof typeof ERROR_CODES)[]) {
      for (const stage of stub.PIPELINE_STAGES) for (const key of Object.keys(visitError(stage, code))) storedKeys.add(key);
    }
    expect(Object.keys(VisitErrorSchema.shape).sort()).toEqual([...storedKeys].sort());
  });

  it("validates visit ids like the upload trigger", () => {
    const samples = ["a", "AbC_12-x", "x".repeat(100), "x".repeat(101), "", "__id__", "_id_", "a/b", "a.b", "a b", "é"];
    for (const visitId of samples) expect(stub.isValidVisitId(visitId), visitId).toBe(functionsIsValidVisitId(visitId));
  });

  it("uses storage.rules' visit id pattern", () => {
    const rulePattern = /visitId\.matches\('([^']+)'\)/.exec(storageRules)?.[1];
    expect(rulePattern).toBe(stub.VISIT_ID_PATTERN.source);
  });

  it("builds upload paths the upload trigger parses back", () => {
    const path = stub.visitAudioPath("uid-1", "visit_1", "visit-en.m4a");
    expect(parseVisitUploadPath(path)).toEqual({ ok: true, path: { uid: "uid-1", visitId: "visit_1", fileName: "visit-en.m4a" } });
    expect(storageRules).toContain("match /users/{uid}/visits/{visitId}/{fileName}");
  });

  it("refuses the file names the upload trigger refuses", () => {
    for (const fileName of ["a.m4a", "with space.m4a", "x".repeat(255), "x".repeat(256), "a\u0001.m4a", ".", ".."]) {
      const parsed = parseVisitUploadPath(`users/u/visits/v/${fileName}`);
      expect(stub.isValidFileName(fileName), JSON.stringify(fileName)).toBe(parsed.ok);
    }
  });

  it("has the upload size limit of storage.rules and of the MAX_UPLOAD_BYTES default", () => {
    const factors = /request\.resource\.size <= ([\d\s*]+);/.exec(storageRules)?.[1]?.split("*").map((factor) => Number(factor.trim()));
    expect(factors?.reduce((product, factor) => product * factor, 1)).toBe(stub.MAX_UPLOAD_BYTES);
    expect(tunables.maxUploadBytes.defaultValue).toBe(stub.MAX_UPLOAD_BYTES);
  });

  it("uploads only content types storage.rules and the upload trigger accept", () => {
    const ruleContentType = /request\.resource\.contentType\.matches\('([^']+)'\)/.exec(storageRules)?.[1];
    expect(ruleContentType).toBeDefined();
    for (const contentType of Object.values(AUDIO_CONTENT_TYPES)) {
      expect(contentType).toMatch(new RegExp(`^${ruleContentType}$`));
      expect(validateUpload({ contentType, sizeBytes: 1 }, stub.MAX_UPLOAD_BYTES)).toEqual({ ok: true, contentType });
    }
  });

  it("names the speaker roles, certainties, SOAP sections and companion states the pipeline writes", () => {
    expect(stub.SPEAKER_ROLES).toEqual(FUNCTIONS_SPEAKER_ROLES);
    expect(stub.ROLE_CERTAINTIES).toEqual(FUNCTIONS_ROLE_CERTAINTIES);
    expect(stub.NOTE_SECTIONS).toEqual(FUNCTIONS_NOTE_SECTIONS);
    expect(stub.SUMMARY_EXTRA_STATES).toEqual(FUNCTIONS_EXTRA_STATES);
  });

  it("accepts exactly the preferred languages the pipeline and firestore.rules accept", () => {
    expect(stub.PREFERRED_LANGUAGE_CODES).toEqual([...ISO_639_1_CODES]);
    const ruleCodes = /function preferredLanguageCodes\(\) \{\s*return \[([^\]]*)\];/.exec(firestoreRules)?.[1];
    expect([...(ruleCodes ?? "").matchAll(/'([a-z]+)'/g)].map((match) => match[1])).toEqual([...stub.PREFERRED_LANGUAGE_CODES]);
    expect(firestoreRules).toContain("match /users/{uid} {");
  });

  it("reads the artifacts the pipeline writes, by their ids", () => {
    expect(stub.ARTIFACT_IDS).toEqual({ transcript: TRANSCRIPT_ARTIFACT_ID, translation: TRANSLATION_ARTIFACT_ID, clinicianNote: CLINICIAN_NOTE_ARTIFACT_ID });
  });
});
