// The retry endpoint's response bodies as docs/api.md defines them, for the tests that call it.

export interface ApiErrorBody {
  error: { code: string; message: string; requestId: string; retryAfterSeconds?: number };
}

export interface RetryAcceptedBody {
  visitId: string;
  status: string;
  resumedStage: string;
  retryCount: number;
  requestId: string;
}
