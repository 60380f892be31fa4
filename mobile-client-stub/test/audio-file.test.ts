import { describe, expect, it } from "vitest";
import { checkAudioFile, contentTypeForFileName } from "../src/audio-file.js";
import { MAX_UPLOAD_BYTES } from "../src/contract.js";

describe("contentTypeForFileName", () => {
  it.each([
    ["visit.m4a", "audio/mp4"],
    ["visit.mp3", "audio/mpeg"],
    ["visit.wav", "audio/wav"],
    ["visit.webm", "audio/webm"],
    ["visit.ogg", "audio/ogg"],
    ["visit.aac", "audio/aac"],
    ["visit.flac", "audio/flac"],
  ])("%s → %s", (fileName, contentType) => {
    expect(contentTypeForFileName(fileName)).toBe(contentType);
  });

  it("ignores the extension's case and earlier dots", () => {
    expect(contentTypeForFileName("Visit.2026-03-01.M4A")).toBe("audio/mp4");
  });

  it.each(["notes.txt", "video.mp4", "visit.m4a.zip", "visit", "visit.", "m4a", "visit.toString", "visit.__proto__"])("refuses %s", (fileName) => {
    expect(contentTypeForFileName(fileName)).toBeNull();
  });
});

describe("checkAudioFile", () => {
  it("accepts a supported recording from 1 byte up to exactly 250 MiB", () => {
    expect(checkAudioFile("visit.m4a", 1)).toEqual({ ok: true, contentType: "audio/mp4" });
    expect(checkAudioFile("visit.wav", 250 * 1024 * 1024)).toEqual({ ok: true, contentType: "audio/wav" });
  });

  it("refuses a file one byte over the storage.rules limit, saying how large it is", () => {
    expect(checkAudioFile("visit.m4a", MAX_UPLOAD_BYTES + 1)).toEqual({
      ok: false,
      problem: "file_too_large",
      message: '"visit.m4a" is 250 MiB; recordings can be at most 250 MiB.',
    });
    expect(checkAudioFile("long.m4a", 300 * 1024 * 1024)).toMatchObject({ message: '"long.m4a" is 300 MiB; recordings can be at most 250 MiB.' });
  });

  it("refuses an empty file", () => {
    expect(checkAudioFile("visit.m4a", 0)).toEqual({ ok: false, problem: "empty_file", message: '"visit.m4a" is empty.' });
  });

  it("refuses an unsupported type, listing what is supported", () => {
    expect(checkAudioFile("notes.pdf", 10)).toEqual({
      ok: false,
      problem: "unsupported_file_type",
      message: '"notes.pdf" is not a supported recording; use one of .m4a, .mp3, .wav, .webm, .ogg, .aac, .flac.',
    });
  });

  it("refuses a name the upload path cannot hold", () => {
    expect(checkAudioFile("a\nb.m4a", 10)).toMatchObject({ ok: false, problem: "invalid_file_name" });
    expect(checkAudioFile(`${"x".repeat(252)}.m4a`, 10)).toMatchObject({ ok: false, problem: "invalid_file_name" });
  });
});
