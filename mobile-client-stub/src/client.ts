// Everything an app screen needs (sign in, upload, watch, retry) wired to Firebase and fetch; no logic of its own.

import type { StubConfig } from "./config.js";
import type { VisitView } from "./describe-visit.js";
import { closeFirebase, initFirebase } from "./firebase.js";
import {
  authPort,
  currentUid,
  documentReader,
  firestoreVisitIdFactory,
  idTokenProvider,
  profileWriter,
  storageUploader,
  visitDocumentSource,
} from "./firebase-ports.js";
import { setPreferredLanguage } from "./preferred-language.js";
import type { PreferredLanguageOutcome } from "./preferred-language.js";
import { retryVisit } from "./retry.js";
import type { RetryOutcome } from "./retry.js";
import { systemScheduler } from "./scheduler.js";
import type { Scheduler } from "./scheduler.js";
import { signIn } from "./sign-in.js";
import type { SignInMethod, SignedInUser } from "./sign-in.js";
import { uploadVisitAudio } from "./upload.js";
import type { UploadOptions, UploadedVisit, VisitAudioFile } from "./upload.js";
import { describeVisitContent, loadVisitContent } from "./visit-content.js";
import type { SummaryChoice, VisitContentView } from "./visit-content.js";
import { watchVisit } from "./watch-visit.js";
import type { WatchVisitOptions } from "./watch-visit.js";

export interface VisitPipelineClient {
  /** Signs in with the configured method unless another is given. */
  signIn(method?: SignInMethod): Promise<SignedInUser>;
  uploadVisitAudio(file: VisitAudioFile, options?: UploadOptions): Promise<UploadedVisit>;
  /** Returns a function that stops watching. */
  watchVisit(visitId: string, onChange: (view: VisitView) => void, options?: WatchVisitOptions): () => void;
  retryVisit(visitId: string): Promise<RetryOutcome>;
  /** The summary (preferred language or original), speakers by role, transcript and clinician's note. */
  readVisitContent(visitId: string, choice?: SummaryChoice): Promise<VisitContentView>;
  /** Sets (a code) or clears (null) the signed-in user's preferred language. */
  setPreferredLanguage(language: string | null): Promise<PreferredLanguageOutcome>;
  /** Releases the SDK's connections (a command-line process cannot exit before). */
  close(): Promise<void>;
}

export interface ClientOverrides {
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
  scheduler?: Scheduler;
}

export function createVisitPipelineClient(config: StubConfig, overrides: ClientOverrides = {}): VisitPipelineClient {
  const firebase = initFirebase(config);
  const scheduler = overrides.scheduler ?? systemScheduler;
  const uploadDeps = {
    uploader: storageUploader(firebase.storage),
    currentUid: currentUid(firebase.auth),
    newVisitId: firestoreVisitIdFactory(firebase.db),
  };
  const watchDeps = { source: visitDocumentSource(firebase.db), scheduler };
  const retryTransport = {
    apiBaseUrl: config.apiBaseUrl,
    fetch: overrides.fetch ?? ((url: string, init: RequestInit) => fetch(url, init)),
    getIdToken: idTokenProvider(firebase.auth),
  };
  return {
    signIn: (method = config.signIn) => signIn(authPort(firebase.auth), method),
    uploadVisitAudio: (file, options) => uploadVisitAudio(uploadDeps, file, options),
    watchVisit: (visitId, onChange, options) => watchVisit(watchDeps, visitId, onChange, options),
    retryVisit: (visitId) => retryVisit(retryTransport, visitId),
    readVisitContent: async (visitId, choice) => describeVisitContent(await loadVisitContent(documentReader(firebase.db), visitId), choice),
    setPreferredLanguage: (language) => setPreferredLanguage({ writer: profileWriter(firebase.db), currentUid: currentUid(firebase.auth) }, language),
    close: () => closeFirebase(firebase),
  };
}
