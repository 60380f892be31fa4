// The app's push registrations: `users/{uid}/devices/{deviceId}`, written by the app itself (its
// owner only, firestore.rules), read here to send outcome notifications. The document id is the
// app's choice — the SHA-256 of the token in hex, so re-registering the same token overwrites one
// document. A document that does not match the schema is skipped, never sent to.

import { z } from "zod";
import { COLLECTIONS, SUBCOLLECTIONS, db } from "./db.js";

export const DEVICE_PLATFORMS = ["ios", "android", "web"] as const;

export type Device = {
  id: string;
  token: string;
  platform: (typeof DEVICE_PLATFORMS)[number] | null;
  updatedAt: Date | null;
};

const DeviceSchema = z.object({
  // FCM registration tokens are ~150–200 characters; the rules bound them at 4096.
  token: z.string().min(1).max(4096),
  platform: z.enum(DEVICE_PLATFORMS).nullish().transform((value) => value ?? null),
  updatedAt: z
    .custom<{ toDate(): Date }>((value) => typeof value === "object" && value !== null && "toDate" in value)
    .nullish()
    .transform((value) => value?.toDate() ?? null),
});

/** More registrations than this on one account are not all notified (the newest are kept in practice by the app). */
export const MAX_DEVICES_PER_USER = 20;

function devices(uid: string) {
  return db().collection(COLLECTIONS.users).doc(uid).collection(SUBCOLLECTIONS.devices);
}

/** The user's registered devices (at most MAX_DEVICES_PER_USER), unreadable documents skipped. */
export async function listDevices(uid: string): Promise<Device[]> {
  const snapshot = await devices(uid).limit(MAX_DEVICES_PER_USER).get();
  return snapshot.docs.flatMap((doc) => {
    const parsed = DeviceSchema.safeParse(doc.data());
    return parsed.success ? [{ id: doc.id, ...parsed.data }] : [];
  });
}

/** A token FCM no longer accepts; removing an already removed one is no error. */
export async function removeDevice(uid: string, deviceId: string): Promise<void> {
  await devices(uid).doc(deviceId).delete();
}

/** Every registration of the user (account deletion); returns how many were removed. */
export async function deleteUserDevices(uid: string): Promise<number> {
  let removed = 0;
  for (;;) {
    const snapshot = await devices(uid).limit(400).get();
    if (snapshot.empty) return removed;
    const batch = db().batch();
    snapshot.docs.forEach((doc) => batch.delete(doc.ref));
    await batch.commit();
    removed += snapshot.size;
  }
}
