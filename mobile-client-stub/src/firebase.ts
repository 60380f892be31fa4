// Initializes the Firebase app, Auth, Firestore and Storage, connected to the emulator suite when configured.

import { deleteApp, initializeApp } from "firebase/app";
import type { FirebaseApp } from "firebase/app";
import { connectAuthEmulator, getAuth } from "firebase/auth";
import type { Auth } from "firebase/auth";
import { connectFirestoreEmulator, getFirestore, terminate } from "firebase/firestore";
import type { Firestore } from "firebase/firestore";
import { connectStorageEmulator, getStorage } from "firebase/storage";
import type { FirebaseStorage } from "firebase/storage";
import type { StubConfig } from "./config.js";

export interface FirebaseHandles {
  app: FirebaseApp;
  auth: Auth;
  db: Firestore;
  storage: FirebaseStorage;
}

export function initFirebase(config: StubConfig): FirebaseHandles {
  const app = initializeApp(config.firebase);
  const auth = getAuth(app);
  const db = getFirestore(app);
  const storage = getStorage(app);
  const emulators = config.emulators;
  if (emulators !== null) {
    // Must happen before the first request through each service.
    connectAuthEmulator(auth, `http://${emulators.host}:${emulators.authPort}`, { disableWarnings: true });
    connectFirestoreEmulator(db, emulators.host, emulators.firestorePort);
    connectStorageEmulator(storage, emulators.host, emulators.storagePort);
  }
  return { app, auth, db, storage };
}

/** Ends listeners and connections so a command-line process can exit. */
export async function closeFirebase(handles: FirebaseHandles): Promise<void> {
  await terminate(handles.db);
  await deleteApp(handles.app);
}
