// Abuse limits checked before anything is paid for a recording: anonymous accounts (unless
// ALLOW_ANONYMOUS_UPLOADS), the user's visits in flight (MAX_CONCURRENT_VISITS_PER_USER) and
// recordings per UTC day (UPLOAD_QUOTA_PER_DAY; re-uploads count). Used by the upload trigger
// and by the retry button, which would otherwise be a way around them.

import { getAuth } from "firebase-admin/auth";
import type { Pipeline } from "../pipeline.js";
import { adminApp } from "../store/db.js";
import { claimActiveSlot, claimUploadSlot } from "../store/upload-limits.js";
import type { ErrorCode } from "../visit/errors.js";
import type { Visit } from "../visit/model.js";

export type LimitDecision = { allowed: true } | { allowed: false; code: ErrorCode; retryAfterSeconds?: number };

export async function checkUploadLimits(
  p: Pipeline,
  upload: { uid: string; visitId: string; recording: string; generation: string },
): Promise<LimitDecision> {
  if (!p.config.allowAnonymousUploads && !(await isSignedInAccount(upload.uid))) {
    return { allowed: false, code: "anonymous_upload_refused" };
  }
  const now = p.now();
  // Active first: a refusal there uses no daily quota. A refusal by the daily quota afterwards
  // still records the recording (failed): the start the slot was taken for happened, it is free.
  const active = await claimActiveSlot({
    uid: upload.uid,
    visitId: upload.visitId,
    start: { generation: upload.generation, round: null },
    now,
    maxActive: p.config.maxConcurrentVisitsPerUser,
  });
  if (!active.allowed) return { allowed: false, code: "too_many_active_visits", retryAfterSeconds: active.retryAfterSeconds };
  const daily = await claimUploadSlot({ uid: upload.uid, recording: upload.recording, now, quotaPerDay: p.config.uploadQuotaPerDay });
  if (!daily.allowed) return { allowed: false, code: "upload_quota_exceeded", retryAfterSeconds: daily.retryAfterSeconds };
  return { allowed: true };
}

/**
 * A retry moves a visit back into processing: it takes one of the user's active slots for its
 * round, and a recording that a limit refused at upload now counts against the day's quota.
 */
export async function checkRetryLimits(p: Pipeline, visit: Visit): Promise<LimitDecision> {
  const now = p.now();
  const active = await claimActiveSlot({
    uid: visit.userId,
    visitId: visit.id,
    start: { generation: visit.audio?.generation ?? "none", round: visit.retryCount + 1 },
    now,
    maxActive: p.config.maxConcurrentVisitsPerUser,
  });
  if (!active.allowed) return { allowed: false, code: "too_many_active_visits", retryAfterSeconds: active.retryAfterSeconds };
  const refusedAtUpload = visit.error?.code === "upload_quota_exceeded" || visit.error?.code === "too_many_active_visits";
  if (refusedAtUpload && visit.audio) {
    const recording = `${visit.audio.bucket}/${visit.audio.path}#${visit.audio.generation}`;
    const daily = await claimUploadSlot({ uid: visit.userId, recording, now, quotaPerDay: p.config.uploadQuotaPerDay });
    if (!daily.allowed) return { allowed: false, code: "upload_quota_exceeded", retryAfterSeconds: daily.retryAfterSeconds };
  }
  return { allowed: true };
}

/**
 * Whether the uploader is a real account: anonymous accounts have no sign-in provider, and a
 * deleted account is no account. Asked of Firebase Auth, not taken from the upload.
 */
async function isSignedInAccount(uid: string): Promise<boolean> {
  try {
    const user = await getAuth(adminApp()).getUser(uid);
    return user.providerData.length > 0 && !user.disabled;
  } catch (error) {
    if (typeof error === "object" && error !== null && "code" in error && error.code === "auth/user-not-found") return false;
    throw error;
  }
}
