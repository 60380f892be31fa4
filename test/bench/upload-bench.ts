// The upload trigger, for `npm run bench`: its own overhead per upload, apart from AssemblyAI's
// latency, and its memory with a 10 MiB and a 1 GiB recording.
//
// Overhead: the real onAudioUploaded handler on the local runtime (embedded Firestore, the fake
// Cloud Storage, the fake AssemblyAI over HTTP with the real SDK), one upload at a time. The fake
// answers the submission after exactly `submitMs`; that known latency is subtracted from each
// upload's time, so what remains is the trigger's own work (validation, Firestore reads and writes,
// URL signing, the request budget, the local HTTP round trip). The first upload of the runtime is
// timed apart: it also loads the AssemblyAI adapter (see providers/lazy-adapters.ts).
//
// Memory: the trigger never reads the recording — it validates the event's metadata and hands
// AssemblyAI a signed URL. The objects are stand-ins in the fake Cloud Storage that report the
// full size (event and metadata) and hold a small body; every request the trigger makes to
// storage is counted, so a read of the recording's bytes would show as a media request. The
// process's RSS and heap are sampled every 2 ms during each upload; the peak above the level just
// before it is the trigger's.

import { startLocalRuntime } from "../support/local-runtime.js";
import type { LocalRuntime } from "../support/local-runtime.js";
import { readVisit } from "../support/visits.js";

export interface UploadBenchOptions {
  uploads: number;
  submitMs: number;
}

export interface MemoryFigures {
  label: string;
  sizeBytes: number;
  uploads: number;
  /** Uploads that ended `transcribing` (accepted and submitted). */
  submitted: number;
  peakRssDeltaBytes: number;
  peakHeapDeltaBytes: number;
  /** Requests the trigger made to the recording's bytes (GET alt=media or the download path). */
  mediaReads: number;
  /** All requests the trigger made to Cloud Storage. */
  storageRequests: number;
}

export interface UploadFigures {
  uploads: number;
  submitMs: number;
  firstUploadMs: number;
  totalMs: number[];
  overheadMs: number[];
  memory: MemoryFigures[];
}

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;
export const MEMORY_OBJECTS = [
  { label: "10 MiB", sizeBytes: 10 * MIB },
  { label: "1 GiB", sizeBytes: GIB },
] as const;
const MEMORY_UPLOADS = 10;
const SAMPLE_EVERY_MS = 2;

export async function runUploadBench(options: UploadBenchOptions): Promise<UploadFigures> {
  const runtime = await startLocalRuntime({
    assemblyai: { latencyMs: { submit: options.submitMs } },
    // 1 GiB is over the 250 MiB default: raised so the big object takes the whole accepted path.
    env: { MAX_UPLOAD_BYTES: String(2 * GIB) },
  });
  try {
    runtime.tasks.pause();
    let visit = 0;
    const upload = async (sizeBytes?: number) => {
      const id = `upload-bench-${visit++}`;
      const started = performance.now();
      await runtime.upload({ uid: `${id}-user`, visitId: id, ...(sizeBytes === undefined ? {} : { sizeBytes }) });
      return { visitId: id, ms: performance.now() - started };
    };

    const firstUploadMs = (await upload()).ms;
    const totalMs: number[] = [];
    for (let i = 0; i < options.uploads; i++) totalMs.push((await upload()).ms);

    const memory: MemoryFigures[] = [];
    for (const object of MEMORY_OBJECTS) {
      memory.push(await measureMemory(runtime, object, () => upload(object.sizeBytes)));
    }
    return { uploads: options.uploads, submitMs: options.submitMs, firstUploadMs, totalMs, overheadMs: totalMs.map((ms) => ms - options.submitMs), memory };
  } finally {
    await runtime.close();
  }
}

async function measureMemory(
  runtime: LocalRuntime,
  object: (typeof MEMORY_OBJECTS)[number],
  upload: () => Promise<{ visitId: string }>,
): Promise<MemoryFigures> {
  const figures: MemoryFigures = { ...object, uploads: MEMORY_UPLOADS, submitted: 0, peakRssDeltaBytes: 0, peakHeapDeltaBytes: 0, mediaReads: 0, storageRequests: 0 };
  for (let i = 0; i < MEMORY_UPLOADS; i++) {
    const requestsBefore = runtime.storage.requests.length;
    const before = process.memoryUsage();
    let peak = { rss: before.rss, heap: before.heapUsed };
    const sample = () => {
      const now = process.memoryUsage();
      peak = { rss: Math.max(peak.rss, now.rss), heap: Math.max(peak.heap, now.heapUsed) };
    };
    const sampler = setInterval(sample, SAMPLE_EVERY_MS);
    let visitId: string;
    try {
      ({ visitId } = await upload());
    } finally {
      clearInterval(sampler);
    }
    sample();
    // Nothing else uses the fake Cloud Storage meanwhile: every request is the trigger's.
    const requests = runtime.storage.requests.slice(requestsBefore);
    figures.storageRequests += requests.length;
    figures.mediaReads += requests.filter(readsMedia).length;
    figures.peakRssDeltaBytes = Math.max(figures.peakRssDeltaBytes, peak.rss - before.rss);
    figures.peakHeapDeltaBytes = Math.max(figures.peakHeapDeltaBytes, peak.heap - before.heapUsed);
    if ((await readVisit(visitId)).status === "transcribing") figures.submitted++;
  }
  return figures;
}

/** A request for an object's bytes rather than its metadata. */
function readsMedia(request: { method: string; path: string }): boolean {
  return request.method === "GET" && (/[?&]alt=media(&|$)/.test(request.path) || request.path.startsWith("/download/"));
}
