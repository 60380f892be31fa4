import { describe, expect, it } from "vitest";
import { loadConfig, tunables } from "../../functions/src/config.js";
import { PipelineError } from "../../functions/src/visit/errors.js";

describe("loadConfig", () => {
  it("applies every declared default when nothing is set", () => {
    const config = loadConfig({});
    for (const [key, tunable] of Object.entries(tunables)) {
      expect(config[key as keyof typeof tunables]).toBe(tunable.defaultValue);
    }
    expect(config.speechModelList).toEqual(["universal-3-pro", "universal-2"]);
    expect(config.region).toBe("us-central1");
    expect(config.assemblyAiBaseUrl).toBeUndefined();
  });

  it("reads values and strips trailing slashes from provider URLs", () => {
    const config = loadConfig({ CHECK_BATCH_SIZE: "7", OPENAI_BASE_URL: "http://127.0.0.1:1234/v1/", ASSEMBLYAI_SPEECH_MODELS: "best" });
    expect(config.checkBatchSize).toBe(7);
    expect(config.openAiBaseUrl).toBe("http://127.0.0.1:1234/v1");
    expect(config.speechModelList).toEqual(["best"]);
  });

  it("reads the unit prices as exact micro-dollars, and refuses amounts that are not plain decimals", () => {
    expect(loadConfig({}).unitPrices).toEqual({ audioHour: 230_000, millionInputTokens: 400_000, millionOutputTokens: 1_600_000 });
    const config = loadConfig({ ASSEMBLYAI_USD_PER_AUDIO_HOUR: "0.000001", OPENAI_USD_PER_MILLION_INPUT_TOKENS: "2.5", OPENAI_USD_PER_MILLION_OUTPUT_TOKENS: "10" });
    expect(config.unitPrices).toEqual({ audioHour: 1, millionInputTokens: 2_500_000, millionOutputTokens: 10_000_000 });
    for (const bad of ["1e3", "-1", "0.1234567", " 1", "1,5", "$1"]) {
      try {
        loadConfig({ OPENAI_USD_PER_MILLION_INPUT_TOKENS: bad });
        expect.unreachable(`accepted ${JSON.stringify(bad)}`);
      } catch (error) {
        expect((error as PipelineError).code).toBe("config_invalid");
        expect((error as PipelineError).detail).toContain("OPENAI_USD_PER_MILLION_INPUT_TOKENS");
      }
    }
  });

  it("takes FCM_EMULATOR_HOST only as a loopback host:port", () => {
    expect(loadConfig({ FCM_EMULATOR_HOST: "127.0.0.1:9099" }).fcmEmulatorHost).toBe("127.0.0.1:9099");
    expect(loadConfig({}).fcmEmulatorHost).toBeUndefined();
    for (const bad of ["fcm.example.com:443", "10.0.0.5:80", "127.0.0.1"]) {
      expect(() => loadConfig({ FCM_EMULATOR_HOST: bad })).toThrow(PipelineError);
    }
  });

  it("names every invalid setting in one config_invalid error", () => {
    try {
      loadConfig({ CHECK_BATCH_SIZE: "abc", CHECK_CONCURRENCY: "0", OPENAI_BASE_URL: "ftp://x", FUNCTIONS_REGION: "moon" });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(PipelineError);
      const detail = (error as PipelineError).detail ?? "";
      expect((error as PipelineError).code).toBe("config_invalid");
      for (const name of ["CHECK_BATCH_SIZE", "CHECK_CONCURRENCY", "OPENAI_BASE_URL", "FUNCTIONS_REGION"]) {
        expect(detail).toContain(name);
      }
    }
  });

  it("turns the transcription params into one request, and refuses unknown PII policies and out-of-range speaker counts", () => {
    expect(loadConfig({}).transcription).toEqual({ medicalMode: false, redactPiiPolicies: null, speakersExpected: null });
    const on = loadConfig({
      ASSEMBLYAI_MEDICAL_MODE: "true",
      ASSEMBLYAI_REDACT_PII: "true",
      ASSEMBLYAI_REDACT_PII_POLICIES: "person_name,phone_number",
      ASSEMBLYAI_SPEAKERS_EXPECTED: "2",
    });
    expect(on.transcription).toEqual({ medicalMode: true, redactPiiPolicies: ["person_name", "phone_number"], speakersExpected: 2 });
    // The default policy list applies once redaction is on.
    expect(loadConfig({ ASSEMBLYAI_REDACT_PII: "true" }).transcription.redactPiiPolicies).toContain("person_name");
    for (const env of [
      { ASSEMBLYAI_REDACT_PII_POLICIES: "person_name,not_a_policy" },
      { ASSEMBLYAI_REDACT_PII_POLICIES: "person_name,,phone_number" },
      { ASSEMBLYAI_SPEAKERS_EXPECTED: "11" },
      { ASSEMBLYAI_SPEAKERS_EXPECTED: "-1" },
      { ASSEMBLYAI_MEDICAL_MODE: "yes" },
    ]) {
      expect(() => loadConfig(env), JSON.stringify(env)).toThrow(
        expect.objectContaining({ code: "config_invalid", detail: expect.stringContaining(Object.keys(env)[0]!) }),
      );
    }
  });

  it("reads SUMMARY_FORMATS: the patient summary always, a clinician's SOAP note with soap; anything else is config_invalid", () => {
    expect(loadConfig({}).clinicianNote).toBe(false);
    expect(loadConfig({ SUMMARY_FORMATS: "patient,soap" }).clinicianNote).toBe(true);
    expect(loadConfig({ SUMMARY_FORMATS: "soap, patient" }).clinicianNote).toBe(true);
    expect(loadConfig({ SUMMARY_FORMATS: "patient" }).clinicianNote).toBe(false);
    for (const value of ["soap", "patient,soap,soap", "patient,dap", "patient,", "PATIENT", "patient;soap"]) {
      expect(() => loadConfig({ SUMMARY_FORMATS: value }), value).toThrow(
        expect.objectContaining({ code: "config_invalid", detail: expect.stringContaining("SUMMARY_FORMATS") }),
      );
    }
  });

  it("takes provider URLs over https only, except to this machine or under the Firebase emulators", () => {
    const problem = (env: Record<string, string>) => {
      try {
        loadConfig(env);
        return null;
      } catch (error) {
        return (error as PipelineError).code;
      }
    };
    expect(problem({ ASSEMBLYAI_BASE_URL: "https://api.eu.assemblyai.com" })).toBeNull();
    expect(problem({ ASSEMBLYAI_BASE_URL: "http://api.assemblyai.com" })).toBe("config_invalid");
    expect(problem({ OPENAI_BASE_URL: "http://10.0.0.5:8080/v1" })).toBe("config_invalid");
    expect(problem({ OPENAI_BASE_URL: "http://localhost:8080/v1" })).toBeNull();
    expect(problem({ OPENAI_BASE_URL: "http://[::1]:8080/v1" })).toBeNull();
    expect(problem({ OPENAI_BASE_URL: "http://fakes.internal:8080/v1", FUNCTIONS_EMULATOR: "true" })).toBeNull();
    expect(problem({ OPENAI_BASE_URL: "http://fakes.internal:8080/v1", FUNCTIONS_EMULATOR: "false" })).toBe("config_invalid");
    // Not a URL at all: named as a bad setting, not a crash.
    for (const notAUrl of ["api.openai.com/v1", "//host", "https://"]) expect(problem({ OPENAI_BASE_URL: notAUrl })).toBe("config_invalid");
  });

  it("takes WEBHOOK_BASE_URL empty (off, the default) or as an https URL, under the same rule as the provider URLs", () => {
    const webhookBase = (env: Record<string, string>) => {
      try {
        return loadConfig(env).webhookBaseUrl;
      } catch (error) {
        return (error as PipelineError).code;
      }
    };
    expect(webhookBase({})).toBe("");
    expect(webhookBase({ WEBHOOK_BASE_URL: "" })).toBe("");
    expect(webhookBase({ WEBHOOK_BASE_URL: "https://us-central1-p.cloudfunctions.net/api/" })).toBe("https://us-central1-p.cloudfunctions.net/api");
    expect(webhookBase({ WEBHOOK_BASE_URL: "http://127.0.0.1:5001/p/us-central1/api" })).toBe("http://127.0.0.1:5001/p/us-central1/api");
    expect(webhookBase({ WEBHOOK_BASE_URL: "http://api.example.com" })).toBe("config_invalid");
    // A query or fragment would break the `?visit=` the route reads.
    for (const bad of ["https://x.test/api?a=1", "https://x.test/api#f", "x.test/api", "ftp://x.test"]) {
      expect(webhookBase({ WEBHOOK_BASE_URL: bad }), bad).toBe("config_invalid");
    }
  });

  it("reads boolean params from their environment strings", () => {
    expect(loadConfig({ DELETE_PROVIDER_TRANSCRIPTS: "false" }).deleteProviderTranscripts).toBe(false);
    expect(loadConfig({ DELETE_PROVIDER_TRANSCRIPTS: "true" }).deleteProviderTranscripts).toBe(true);
    expect(() => loadConfig({ DELETE_PROVIDER_TRANSCRIPTS: "yes" })).toThrow(PipelineError);
  });
});
