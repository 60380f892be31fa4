// The Firebase Admin app and Firestore handle, created on first use so that importing the
// functions (deploy analysis, tests) never touches the network.

import { deleteApp, getApps, initializeApp } from "firebase-admin/app";
import type { App } from "firebase-admin/app";
import { getFirestore } from "firebase-admin/firestore";
import type { DocumentReference, Firestore } from "firebase-admin/firestore";

let firestore: Firestore | undefined;

export function adminApp(): App {
  return getApps()[0] ?? initializeApp();
}

export function db(): Firestore {
  if (!firestore) {
    firestore = getFirestore(adminApp());
    // Optional fields are written as absent, not as errors.
    firestore.settings({ ignoreUndefinedProperties: true });
  }
  return firestore;
}

/**
 * Drops the app and its clients so the next use connects afresh (a local runtime that restarts
 * its emulators on new ports). Never needed in production.
 */
export async function resetAdminApp(): Promise<void> {
  firestore = undefined;
  await Promise.all(getApps().map((app) => deleteApp(app)));
}

/** Firestore's ALREADY_EXISTS, the signal that a create()-claimed key is taken. */
/** A batch holds at most 500 writes; 400 leaves room. */
const DELETE_BATCH = 400;

/** Deletes the documents in batches; returns how many. */
export async function deleteDocuments(refs: readonly DocumentReference[]): Promise<number> {
  for (let start = 0; start < refs.length; start += DELETE_BATCH) {
    const batch = db().batch();
    refs.slice(start, start + DELETE_BATCH).forEach((ref) => batch.delete(ref));
    await batch.commit();
  }
  return refs.length;
}

export function isAlreadyExists(error: unknown): boolean {
  return typeof error === "object" && error !== null && "code" in error && error.code === 6;
}

/** Firestore's NOT_FOUND: an update() of a document that is not there (e.g. a deleted visit's). */
export function isNotFound(error: unknown): boolean {
  return typeof error === "object" && error !== null && "code" in error && error.code === 5;
}

export const COLLECTIONS = {
  visits: "visits",
  actions: "actions",
  /** Operational records (the checker's last run); internal. */
  operations: "operations",
  users: "users",
} as const;

export const SUBCOLLECTIONS = {
  artifacts: "artifacts",
  claims: "claims",
  /** `users/{uid}/devices/{tokenHash}`: the app's FCM registration tokens. */
  devices: "devices",
} as const;
