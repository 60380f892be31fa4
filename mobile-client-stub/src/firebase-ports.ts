// The narrow interfaces the logic depends on, implemented with the Firebase modular SDK (thin: no decisions here).

import { createUserWithEmailAndPassword, signInAnonymously, signInWithEmailAndPassword } from "firebase/auth";
import type { Auth } from "firebase/auth";
import { collection, doc, getDoc, onSnapshot, setDoc } from "firebase/firestore";
import type { Firestore } from "firebase/firestore";
import { ref, uploadBytesResumable } from "firebase/storage";
import type { FirebaseStorage } from "firebase/storage";
import type { AuthPort } from "./sign-in.js";
import type { ProfileWriter } from "./preferred-language.js";
import type { StorageUploader } from "./upload.js";
import type { DocumentReader } from "./visit-content.js";
import type { VisitDocumentSource } from "./watch-visit.js";

export function authPort(auth: Auth): AuthPort {
  return {
    signInAnonymously: async () => (await signInAnonymously(auth)).user,
    signInWithEmail: async (email, password) => (await signInWithEmailAndPassword(auth, email, password)).user,
    createUserWithEmail: async (email, password) => (await createUserWithEmailAndPassword(auth, email, password)).user,
  };
}

export function currentUid(auth: Auth): () => string | null {
  return () => auth.currentUser?.uid ?? null;
}

export function idTokenProvider(auth: Auth): () => Promise<string> {
  return async () => {
    const user = auth.currentUser;
    if (user === null) throw new Error("Nobody is signed in.");
    return user.getIdToken();
  };
}

/** Firestore auto-ids are generated on the device; no request is made. */
export function firestoreVisitIdFactory(db: Firestore): () => string {
  return () => doc(collection(db, "visits")).id;
}

export function storageUploader(storage: FirebaseStorage): StorageUploader {
  return {
    start(path, data, contentType, onProgress) {
      const task = uploadBytesResumable(ref(storage, path), data, { contentType });
      // Failure and completion are reported through the task's promise below.
      task.on("state_changed", (snapshot) => onProgress(snapshot.bytesTransferred, snapshot.totalBytes));
      return {
        done: Promise.resolve(task).then(() => undefined),
        cancel: () => {
          task.cancel();
        },
      };
    },
  };
}

export function visitDocumentSource(db: Firestore): VisitDocumentSource {
  return {
    listen(visitId, onData, onError) {
      return onSnapshot(
        doc(db, "visits", visitId),
        (snapshot) => onData(snapshot.exists() ? snapshot.data() : null),
        onError,
      );
    },
  };
}

export function documentReader(db: Firestore): DocumentReader {
  return {
    async read(path) {
      const snapshot = await getDoc(doc(db, path));
      return snapshot.exists() ? snapshot.data() : null;
    },
  };
}

export function profileWriter(db: Firestore): ProfileWriter {
  return {
    async writePreferredLanguage(uid, language) {
      // The whole profile: firestore.rules let it hold this one field only.
      await setDoc(doc(db, "users", uid), { preferredLanguage: language });
    },
  };
}
