// The user's profile, `users/{uid}`: one field, `preferredLanguage`, written by the app itself
// (its owner only, and only that field: firestore.rules) and read here when a visit is summarized.
// A value the rules should have refused (written around them, e.g. from the console) is not used:
// the summary is then written in the recording's language only, and the reason is logged.

import { z } from "zod";
import { parsePreferredLanguage } from "../visit/language.js";
import type { PreferredLanguage } from "../visit/language.js";
import { COLLECTIONS, db } from "./db.js";

// Only the field the pipeline uses is read; whatever else the document holds is not its business.
const ProfileSchema = z.object({ preferredLanguage: z.unknown() });

function profileRef(uid: string) {
  return db().collection(COLLECTIONS.users).doc(uid);
}

/** The user's preferred language: none when there is no profile, or what the profile holds, checked. */
export async function readPreferredLanguage(uid: string): Promise<PreferredLanguage> {
  const snapshot = await profileRef(uid).get();
  if (!snapshot.exists) return { ok: true, language: null };
  return parsePreferredLanguage(ProfileSchema.parse(snapshot.data() ?? {}).preferredLanguage);
}

/** The profile as stored, for the user's data export: null when there is none. */
export async function exportProfile(uid: string): Promise<{ preferredLanguage: string | null } | null> {
  const snapshot = await profileRef(uid).get();
  if (!snapshot.exists) return null;
  const stored = ProfileSchema.parse(snapshot.data() ?? {}).preferredLanguage;
  return { preferredLanguage: typeof stored === "string" ? stored : null };
}

/** Deletes the profile (account deletion); 1 if there was one. Its subcollections (devices) are deleted apart. */
export async function deleteProfile(uid: string): Promise<number> {
  const ref = profileRef(uid);
  if (!(await ref.get()).exists) return 0;
  await ref.delete();
  return 1;
}
