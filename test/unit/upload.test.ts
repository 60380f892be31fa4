import { describe, expect, it } from "vitest";
import { normalizeMediaType, parseObjectSize, parseVisitUploadPath, validateUpload } from "../../functions/src/visit/upload.js";

describe("parseVisitUploadPath", () => {
  it("accepts users/{uid}/visits/{visitId}/{fileName}", () => {
    expect(parseVisitUploadPath("users/u_1/visits/V-9/recording 1.m4a")).toEqual({
      ok: true,
      path: { uid: "u_1", visitId: "V-9", fileName: "recording 1.m4a" },
    });
  });

  it.each([
    ["", "not_a_visit_path"],
    ["users/u1/visits/v1", "not_a_visit_path"],
    ["users/u1/visits/v1/a/b.m4a", "not_a_visit_path"],
    ["Users/u1/visits/v1/a.m4a", "not_a_visit_path"],
    ["users/u1/visit/v1/a.m4a", "not_a_visit_path"],
    ["users//visits/v1/a.m4a", "invalid_uid"],
    ["users/u1/visits/v.1/a.m4a", "invalid_visit_id"],
    ["users/u1/visits/__x__/a.m4a", "invalid_visit_id"],
    ["users/u1/visits/v 1/a.m4a", "invalid_visit_id"],
    [`users/u1/visits/${"v".repeat(101)}/a.m4a`, "invalid_visit_id"],
    ["users/u1/visits/v1/", "invalid_file_name"],
    ["users/u1/visits/v1/..", "invalid_file_name"],
    ["users/u1/visits/v1/a\u0000.m4a", "invalid_file_name"],
  ])("rejects %j as %s", (name, reason) => {
    expect(parseVisitUploadPath(name)).toEqual({ ok: false, reason });
  });
});

describe("validateUpload", () => {
  const cap = 1000;
  it.each([
    ["audio/mp4", "audio/mp4"],
    ["Audio/MP4; codecs=mp4a.40.2", "audio/mp4"],
    ["audio/x-m4a", "audio/x-m4a"],
    ["audio/mpeg", "audio/mpeg"],
    ["audio/webm;codecs=opus", "audio/webm"],
  ])("accepts %s as %s", (contentType, normalized) => {
    expect(validateUpload({ contentType, sizeBytes: 10 }, cap)).toEqual({ ok: true, contentType: normalized });
  });

  it.each([undefined, "", "video/mp4", "application/octet-stream", "audio/", "audio", "text/plain", "audio/<script>"])(
    "rejects content type %j",
    (contentType) => {
      expect(validateUpload({ contentType, sizeBytes: 10 }, cap)).toEqual({ ok: false, code: "invalid_content_type" });
    },
  );

  it("rejects empty, unreadable and oversize recordings with distinct codes", () => {
    expect(validateUpload({ contentType: "audio/mp4", sizeBytes: 0 }, cap)).toEqual({ ok: false, code: "empty_audio" });
    expect(validateUpload({ contentType: "audio/mp4", sizeBytes: Number.NaN }, cap)).toEqual({ ok: false, code: "empty_audio" });
    expect(validateUpload({ contentType: "audio/mp4", sizeBytes: cap + 1 }, cap)).toEqual({ ok: false, code: "audio_too_large" });
    expect(validateUpload({ contentType: "audio/mp4", sizeBytes: cap }, cap)).toEqual({ ok: true, contentType: "audio/mp4" });
  });

  it("checks the content type before the size", () => {
    expect(validateUpload({ contentType: "image/png", sizeBytes: 0 }, cap)).toEqual({ ok: false, code: "invalid_content_type" });
  });
});

describe("event field parsing", () => {
  it("reads sizes sent as strings or numbers", () => {
    expect(parseObjectSize("1234")).toBe(1234);
    expect(parseObjectSize(" 12 ")).toBe(12);
    expect(parseObjectSize(56)).toBe(56);
    expect(parseObjectSize("12abc")).toBeNaN();
    expect(parseObjectSize(undefined)).toBeNaN();
  });

  it("normalizes media types", () => {
    expect(normalizeMediaType(" AUDIO/OGG ; x=y")).toBe("audio/ogg");
    expect(normalizeMediaType(";")).toBeUndefined();
  });
});
