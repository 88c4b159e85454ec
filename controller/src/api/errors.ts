// API errors in Cloud Foundry v3's shape: `{errors: [{code, title, detail}]}`, one class per failure.

export class ApiError extends Error {
  override name = "ApiError";
  constructor(readonly status: number, readonly code: number, readonly title: string, detail: string, readonly headers: Record<string, string> = {}) {
    super(detail);
  }
  body() {
    return { errors: [{ code: this.code, title: this.title, detail: this.message }] };
  }
}

export const notAuthenticated = (detail = "Authentication required: run `skiff login` or send `Authorization: bearer <token>`.") =>
  new ApiError(401, 10002, "CF-NotAuthenticated", detail);
export const notAuthorized = (detail = "You are not authorized to perform the requested action.") =>
  new ApiError(403, 10003, "CF-NotAuthorized", detail);
export const notFound = (what: string) => new ApiError(404, 10010, "CF-ResourceNotFound", `${what} not found`);
export const unprocessable = (detail: string) => new ApiError(422, 10008, "CF-UnprocessableEntity", detail);
export const badRequest = (detail: string) => new ApiError(400, 10001, "CF-MessageParseError", detail);
export const uniqueness = (detail: string) => new ApiError(422, 10016, "CF-UniquenessError", detail);
export const tooLarge = (detail: string) => new ApiError(413, 10011, "CF-PayloadTooLarge", detail);
/** A login refused while the account is locked (UAA answers 401 too); the same for names that do not exist. */
export const accountLocked = (until: number, now: number) => {
  const seconds = Math.max(1, Math.ceil((until - now) / 1000));
  return new ApiError(401, 10002, "CF-AccountLocked",
    `Too many failed logins in a row: this account is locked for ${seconds} s more, until ${new Date(until).toISOString()}. Try again then.`,
    { "retry-after": String(seconds) });
};
export const rateLimited = (retryAfterMs: number, what: string) => {
  const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new ApiError(429, 10013, "CF-RateLimitExceeded", `Rate limit exceeded: ${what}. Try again in ${seconds} s.`, { "retry-after": String(seconds) });
};
export const unavailable = (detail: string) => new ApiError(503, 10015, "CF-ServiceUnavailable", detail);

export function errorResponse(e: ApiError): Response {
  return Response.json(e.body(), { status: e.status, headers: e.headers });
}
